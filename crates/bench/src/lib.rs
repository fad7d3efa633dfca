//! Benchmarks for the socialops services, run as `socialops bench …` (the binary's `bench` feature).
//! Each prints its rates and their ratios to a raw baseline measured in the same run.
//!
//! The services run in this process, started as the binary starts them, and are driven the way their
//! users drive them: events go in on Kafka topics and gRPC, results are read back from the output
//! topics and the gRPC API, and progress is the consumers' `socialops_consumer_messages_total`
//! counter from the Prometheus metrics ([`consumed`]). The one exception is the million-profile
//! segmentation measurement, which writes its profiles into the store and calls the RFM sweep
//! directly; that is all in [`internals`].

pub mod campaign;
mod consumed;
pub mod ingest;
mod internals;
pub mod promotions;
pub mod segmentation;
pub mod sentiment;

use clap::Subcommand;
use socialops_storage::DatabaseConfig;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Raw produce rate, end-to-end ingestion rate (raw topic → validation, dedup, store, republish)
    /// on SQLite and PostgreSQL, and the gRPC streaming rate.
    Ingest(ingest::IngestArgs),
    /// Profile updates from the canonical topic against the raw consume rate, segment enter/leave
    /// latency under load, PreviewSegment and RFM recomputation over a million profiles.
    Segmentation(segmentation::SegmentationArgs),
    /// Send decisions through the pressure rules, published, against the raw produce rate, on
    /// PostgreSQL.
    Campaign(campaign::CampaignArgs),
    /// Coupon redemption over gRPC against raw single-row update transactions, with the value
    /// budget checked to the cent, and GetCampaignReport over a seeded campaign, on PostgreSQL.
    Promotions(promotions::PromotionsArgs),
    /// Sentiment consume rate against raw consume, and the latency from the mention that crosses a
    /// spike threshold to its crisis alert, under background traffic, on PostgreSQL.
    Sentiment(sentiment::SentimentArgs),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Segmentation(args) => segmentation::run(args).await,
        BenchCommand::Sentiment(args) => sentiment::run(args).await,
        BenchCommand::Campaign(args) => campaign::run(args).await,
        BenchCommand::Promotions(args) => promotions::run(args).await,
    }
}

/// The stores a benchmark runs against, named: a SQLite file in `dir` unless `sqlite` is false, and a
/// scratch PostgreSQL database (its name starting with `prefix`) on the server of `postgres_admin`.
async fn backends(
    sqlite: bool,
    postgres_admin: Option<&str>,
    prefix: &str,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<(&'static str, DatabaseConfig)>> {
    let mut backends = Vec::new();
    if sqlite {
        backends.push(("SQLite", DatabaseConfig::sqlite_file(&dir.join("bench.db"))));
    }
    if let Some(admin) = postgres_admin {
        let url = socialops_storage::create_scratch_postgres(admin, prefix).await?;
        backends.push((
            "PostgreSQL",
            DatabaseConfig {
                url,
                max_connections: 8,
            },
        ));
    }
    Ok(backends)
}
