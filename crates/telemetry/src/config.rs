use std::net::SocketAddr;

use serde::Deserialize;

/// How logs, traces and metrics are set up; read once at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `EnvFilter` directives for the log output; `RUST_LOG`, when set, wins.
    pub log_filter: String,
    pub log_format: LogFormat,
    /// OTLP/gRPC collector address, e.g. `http://otel-collector:4317`. Falls back to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; with neither, spans are not exported (but trace context still propagates).
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute on exported spans.
    pub service_name: String,
    /// Where to serve Prometheus `GET /metrics` (see [`crate::serve_metrics`]); `None` serves nothing.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_filter: "info".to_owned(),
            log_format: LogFormat::default(),
            otlp_endpoint: None,
            service_name: "socialops".to_owned(),
            metrics_listen: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_to_missing_fields() {
        let config: TelemetryConfig =
            serde_json::from_str(r#"{"log_format": "json", "service_name": "ingestion", "metrics_listen": "0.0.0.0:9090"}"#).unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.service_name, "ingestion");
        assert_eq!(config.log_filter, "info");
        assert_eq!(config.otlp_endpoint, None);
        assert_eq!(config.metrics_listen, Some("0.0.0.0:9090".parse().unwrap()));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let result = serde_json::from_str::<TelemetryConfig>(r#"{"log_level": "debug"}"#);
        assert!(result.is_err());
    }
}
