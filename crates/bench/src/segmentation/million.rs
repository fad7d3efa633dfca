//! A million profiles on PostgreSQL: `PreviewSegment` through the gRPC API, and RFM quintile
//! recomputation next to the same quintiles written as one `ntile` query on the same tables. The
//! profiles and the recomputation go through the store ([`crate::internals`]).

use std::time::Instant;

use socialops_proto::segmentation::v1::PreviewSegmentRequest;
use socialops_segmentation::SegmentationConfig;
use socialops_storage::DatabaseConfig;

use super::Client;
use crate::internals::SegmentationTables;

pub const TENANT: &str = "bench1m";
const DAY_US: i64 = 86_400_000_000;

pub async fn run(
    database: &DatabaseConfig,
    mut client: Client,
    profiles: usize,
    config: &SegmentationConfig,
) -> anyhow::Result<()> {
    let tables = SegmentationTables::connect(database, TENANT).await?;
    let now_us = socialops_storage::now_micros();
    let started = Instant::now();
    let num_orders = tables.generate(profiles, now_us).await?;
    println!(
        "{profiles} profiles with {num_orders} orders generated in PostgreSQL in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for rule in [
        "stage in [active, loyal] and r >= 4",
        r#"has tag "need:sensitive-skin" and last_order_at within 90d and not has platform weibo"#,
        "count.comment >= 10 and (tier = high_value or orders_total_cents > 100000)",
    ] {
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..3 {
            let started = Instant::now();
            let preview = client
                .preview_segment(PreviewSegmentRequest {
                    rule: rule.into(),
                    sample_size: 10,
                })
                .await?
                .into_inner();
            times.push(started.elapsed().as_secs_f64() * 1_000.0);
            count = preview.count;
            anyhow::ensure!(
                preview.evaluated as usize == profiles,
                "evaluated {}",
                preview.evaluated
            );
        }
        println!(
            "PreviewSegment over {profiles} profiles, PostgreSQL: {} ms (three runs) → {count} match `{rule}`",
            times
                .iter()
                .map(|t| format!("{t:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let sweep = tables.rfm_sweep(config, now_us).await?;
    let started = Instant::now();
    let same_moment = sweep.run().await?;
    let ours = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let num_cells = tables.ntile_cells(now_us).await?;
    let ntile = started.elapsed().as_secs_f64();
    println!(
        "RFM recomputation, {} buyers, PostgreSQL: {ours:.2} s (edges, scores, {} rescored); one ntile query: {ntile:.2} s ({num_cells} cells); ratio {:.2}",
        same_moment.buyers,
        same_moment.rescored,
        ours / ntile
    );
    sweep.set_now(now_us + DAY_US);
    let started = Instant::now();
    let next_day = sweep.run().await?;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "RFM recomputation a day later, PostgreSQL: {elapsed:.2} s, {} of {} buyers rescored ({:.0} rescored/s, each with its RfmChanged queued for publishing)",
        next_day.rescored,
        next_day.buyers,
        next_day.rescored as f64 / elapsed
    );
    tables.close().await;
    Ok(())
}
