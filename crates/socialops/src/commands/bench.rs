//! `socialops bench …`: benchmarks that print each rate with its ratio to a raw baseline measured in
//! the same run.

mod ingest;
mod segmentation;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Raw produce rate, end-to-end ingestion rate (raw topic → validation, dedup, store, republish)
    /// on SQLite and PostgreSQL, and the gRPC streaming rate.
    Ingest(ingest::IngestArgs),
    /// Profile updates from the canonical topic against the raw consume rate, segment enter/leave
    /// latency under load, PreviewSegment and RFM recomputation over a million profiles.
    Segmentation(segmentation::SegmentationArgs),
}

pub async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Segmentation(args) => segmentation::run(args).await,
    }
}
