//! `socialops`: runs the services (`dev`, `serve`) and talks to them (`events send`, `tokens issue`);
//! with the `bench` feature, also runs the benchmarks (`bench ingest`, `bench segmentation`,
//! `bench sentiment`).

mod commands;
mod config;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "socialops",
    version,
    about = "Backend for brand social-media operations"
)]
struct Cli {
    /// TOML configuration file; `SOCIALOPS_*` environment variables override it.
    #[arg(long, global = true, env = "SOCIALOPS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every service in one process on embedded defaults: SQLite files and an in-process broker.
    Dev(commands::dev::DevArgs),
    /// One service against real Kafka and PostgreSQL, as the containers run it.
    Serve(commands::serve::ServeArgs),
    /// Events: send a JSON-lines file over gRPC.
    #[command(subcommand)]
    Events(commands::events::EventsCommand),
    /// Bearer tokens: issue one and print its configuration entry.
    #[command(subcommand)]
    Tokens(commands::tokens::TokensCommand),
    /// Benchmarks that print rates and their ratios to a raw baseline measured in the same run.
    #[cfg(feature = "bench")]
    #[command(subcommand)]
    Bench(socialops_bench::BenchCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => commands::dev::run(cli.config.as_deref(), args).await,
        Command::Serve(args) => commands::serve::run(cli.config.as_deref(), args).await,
        Command::Events(command) => commands::events::run(command).await,
        Command::Tokens(command) => commands::tokens::run(command),
        #[cfg(feature = "bench")]
        Command::Bench(command) => socialops_bench::run(command).await,
    }
}
