use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use socialops_auth::BearerToken;
use socialops_proto::events::v1::SocialEvent;
use socialops_proto::ingestion::v1::ingestion_service_client::IngestionServiceClient;
use socialops_proto::ingestion::v1::{IngestEventsRequest, Outcome};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// The most rejection reasons printed; the counts are always complete.
const MAX_REASONS_SHOWN: usize = 50;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Streams a JSON-lines file (one event per line, in the JSON form) to ingestion and prints how
    /// many were accepted, duplicate and rejected, with the reasons.
    Send {
        file: PathBuf,
        /// The ingestion service's gRPC address.
        #[arg(
            long,
            env = "SOCIALOPS_ENDPOINT",
            default_value = "http://127.0.0.1:50051"
        )]
        endpoint: String,
        /// A bearer token with the writer role.
        #[arg(long, env = "SOCIALOPS_TOKEN", hide_env_values = true)]
        token: String,
        /// Events per message on the stream.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

/// A line that could not be sent, or an event the service did not accept.
struct Problem {
    line: usize,
    what: String,
}

pub async fn run(command: EventsCommand) -> anyhow::Result<()> {
    let EventsCommand::Send {
        file,
        endpoint,
        token,
        batch,
    } = command;
    anyhow::ensure!(batch > 0, "--batch must be at least 1");
    let size = tokio::fs::metadata(&file)
        .await
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let reader = BufReader::new(tokio::fs::File::open(&file).await?);

    let progress = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta} {msg}")
            .expect("progress template is valid"),
    );
    let channel = socialops_grpc::connect(&endpoint)
        .await
        .with_context(|| format!("connecting to {endpoint}"))?;
    let mut client = IngestionServiceClient::with_interceptor(channel, BearerToken::new(&token)?)
        .max_decoding_message_size(64 * 1024 * 1024);

    // Lines that parse go on the stream; the line number of each sent event is kept so the service's
    // stream indexes can be reported as line numbers.
    let (batches_tx, batches_rx) = mpsc::channel::<IngestEventsRequest>(4);
    let reading = tokio::spawn({
        let progress = progress.clone();
        async move {
            let mut lines = reader.lines();
            let (mut sent_lines, mut unparsed) = (Vec::new(), Vec::new());
            let mut pending = Vec::with_capacity(batch);
            let mut line_number = 0;
            while let Some(line) = lines.next_line().await? {
                line_number += 1;
                progress.inc(line.len() as u64 + 1);
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<SocialEvent>(&line) {
                    Ok(event) => {
                        pending.push(event);
                        sent_lines.push(line_number);
                    }
                    Err(e) => unparsed.push(Problem {
                        line: line_number,
                        what: format!("invalid JSON: {e}"),
                    }),
                }
                if pending.len() == batch {
                    let events = std::mem::replace(&mut pending, Vec::with_capacity(batch));
                    if batches_tx
                        .send(IngestEventsRequest { events })
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
            if !pending.is_empty() {
                let _ = batches_tx
                    .send(IngestEventsRequest { events: pending })
                    .await;
            }
            anyhow::Ok((sent_lines, unparsed))
        }
    });

    let response = client
        .ingest_event_stream(ReceiverStream::new(batches_rx))
        .await;
    let (sent_lines, mut problems) = reading.await??;
    progress.finish_and_clear();
    let response = response
        .context("ingestion refused the stream")?
        .into_inner();

    for result in &response.results {
        let line = sent_lines
            .get(result.index as usize)
            .copied()
            .unwrap_or_default();
        let what = match Outcome::try_from(result.outcome) {
            Ok(Outcome::Duplicate) => continue,
            _ => format!("event `{}` rejected: {}", result.event_id, result.reason),
        };
        problems.push(Problem { line, what });
    }
    problems.sort_by_key(|p| p.line);

    println!(
        "accepted {}  duplicate {}  rejected {}",
        response.accepted,
        response.duplicate,
        response.rejected
            + problems
                .iter()
                .filter(|p| p.what.starts_with("invalid JSON"))
                .count() as u64
    );
    for problem in problems.iter().take(MAX_REASONS_SHOWN) {
        println!("  line {}: {}", problem.line, problem.what);
    }
    if problems.len() > MAX_REASONS_SHOWN {
        println!("  … and {} more", problems.len() - MAX_REASONS_SHOWN);
    }
    Ok(())
}
