use std::sync::Once;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{LogFormat, TelemetryConfig};

/// Spans at this level and above get OpenTelemetry context whatever the log filter says, so turning logs
/// down never breaks trace propagation.
const TRACE_LEVEL: LevelFilter = LevelFilter::INFO;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter: {0}")]
    LogFilter(#[from] tracing_subscriber::filter::ParseError),
    #[error("cannot build the otlp span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Flushes and shuts down the tracer provider when dropped; keep it alive until the end of `main`.
///
/// With an OTLP exporter, drop it while the Tokio runtime that [`init`] ran in is still running: the export
/// of the last batch goes through that runtime.
#[must_use = "dropping the guard shuts tracing export down"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard").finish_non_exhaustive()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "tracer provider shutdown failed");
        }
    }
}

/// Installs the global subscriber and the W3C trace-context propagator.
///
/// With an OTLP endpoint this must run inside a Tokio runtime: the gRPC exporter's channel lives there.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let log_filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(directives)?,
        _ => EnvFilter::try_new(&config.log_filter)?,
    };
    let endpoint = config
        .otlp_endpoint
        .clone()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|endpoint| !endpoint.trim().is_empty());

    let provider = tracer_provider(&config.service_name, endpoint.as_deref())?;
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
        .with_filter(TRACE_LEVEL);
    let fmt_layer = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    }
    .with_filter(log_filter);

    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    install_propagator();
    opentelemetry::global::set_tracer_provider(provider.clone());

    tracing::info!(
        service_name = %config.service_name,
        otlp_endpoint = endpoint.as_deref().unwrap_or("none"),
        "telemetry initialised"
    );
    Ok(TelemetryGuard { provider })
}

/// Installs a subscriber for tests: output through the test harness's capture, filter from `RUST_LOG` or
/// `warn`, spans with OpenTelemetry context but no exporter. Safe to call from every test.
pub fn init_for_tests() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let log_filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
        let provider = SdkTracerProvider::builder().build();
        let otel_layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(env!("CARGO_PKG_NAME")))
            .with_filter(TRACE_LEVEL);
        let fmt_layer = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(log_filter);
        // Another subscriber may already be installed by the test binary; keep it.
        let _ = tracing_subscriber::registry()
            .with(fmt_layer)
            .with(otel_layer)
            .try_init();
        install_propagator();
    });
}

fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

/// Without an endpoint the provider has no span processor: spans still get sampled ids (so context
/// propagates) and are dropped when they end.
fn tracer_provider(
    service_name: &str,
    endpoint: Option<&str>,
) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = match endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            builder.with_batch_exporter(exporter)
        }
        None => builder,
    };
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn otlp_exporter_builds_and_shuts_down_without_a_collector() {
        let provider = tracer_provider("socialops-test", Some("http://127.0.0.1:1")).unwrap();
        let guard = TelemetryGuard { provider };
        drop(guard);
    }

    #[test]
    fn bad_log_filter_is_an_error() {
        let config = TelemetryConfig {
            log_filter: "socialops=loud".to_owned(),
            ..TelemetryConfig::default()
        };
        // RUST_LOG, when set, replaces the configured filter.
        if std::env::var_os("RUST_LOG").is_none() {
            assert!(matches!(init(&config), Err(TelemetryError::LogFilter(_))));
        }
    }
}
