use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// W3C trace-context headers (`traceparent`, and `tracestate` when non-empty) of the current span.
///
/// Empty when the current span has no valid OpenTelemetry context: no span, a span below the traced level
/// (INFO), or no subscriber from [`crate::init`].
pub fn current_trace_headers() -> Vec<(String, String)> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    let mut headers: Vec<(String, String)> = carrier
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    headers.sort();
    headers
}

/// Makes the remote span described by W3C headers the parent of `span`.
///
/// Call it right after creating `span` and before entering it: OpenTelemetry fixes a span's parent when the
/// span starts. Missing or malformed headers leave `span` where it is (child of the current span, or a root).
pub fn set_parent_from_headers(span: &tracing::Span, get: impl Fn(&str) -> Option<String>) {
    let propagator = TraceContextPropagator::new();
    let carrier: HashMap<String, String> = propagator
        .fields()
        .filter_map(|field| get(field).map(|value| (field.to_owned(), value)))
        .collect();
    if carrier.is_empty() {
        return;
    }
    let parent = propagator.extract(&carrier);
    if !parent.span().span_context().is_valid() {
        tracing::debug!("ignored invalid trace context");
        return;
    }
    if let Err(error) = span.set_parent(parent) {
        tracing::debug!(%error, "could not set remote trace parent");
    }
}

/// The span for one incoming gRPC request, for tonic's `Server::trace_fn`: named after the method, child of
/// the caller's span when the request carries `traceparent`.
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let span = tracing::info_span!(
        "grpc request",
        otel.name = %path,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
    );
    let headers = request.headers();
    set_parent_from_headers(&span, |name| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    });
    span
}

/// Client interceptor that sends the current span's trace context in the request metadata.
#[derive(Debug, Clone, Default)]
pub struct TracePropagationInterceptor;

impl tonic::service::Interceptor for TracePropagationInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_metadata(request.metadata_mut());
        Ok(request)
    }
}

pub(crate) fn inject_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    for (name, value) in current_trace_headers() {
        // The propagator only produces lower-case ASCII names and visible ASCII values; skip anything else.
        let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(name.as_bytes()),
            MetadataValue::try_from(value),
        ) else {
            continue;
        };
        metadata.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor as _;

    fn trace_id(span: &tracing::Span) -> opentelemetry::trace::TraceId {
        span.context().span().span_context().trace_id()
    }

    #[test]
    fn headers_round_trip_to_a_child_span_in_the_same_trace() {
        crate::init_for_tests();
        let origin = tracing::info_span!("origin");
        let headers = origin.in_scope(current_trace_headers);
        let traceparent = headers
            .iter()
            .find(|(name, _)| name == "traceparent")
            .map(|(_, value)| value.clone())
            .expect("a traceparent header");
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts.len(), 4, "{traceparent}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1], trace_id(&origin).to_string());
        assert_eq!(parts[3], "01", "spans are sampled without an exporter");

        let remote = tracing::info_span!("remote");
        set_parent_from_headers(&remote, |name| {
            headers
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        });
        assert_eq!(trace_id(&remote), trace_id(&origin));
        assert_ne!(
            remote.context().span().span_context().span_id(),
            origin.context().span().span_context().span_id()
        );
    }

    #[test]
    fn missing_or_malformed_headers_keep_the_local_parent() {
        crate::init_for_tests();
        let origin = tracing::info_span!("origin");
        let (missing, malformed) = origin.in_scope(|| {
            let missing = tracing::info_span!("missing");
            set_parent_from_headers(&missing, |_| None);
            let malformed = tracing::info_span!("malformed");
            set_parent_from_headers(&malformed, |name| {
                (name == "traceparent").then(|| "00-not-a-trace-01".to_owned())
            });
            (missing, malformed)
        });
        assert_eq!(trace_id(&missing), trace_id(&origin));
        assert_eq!(trace_id(&malformed), trace_id(&origin));
    }

    #[test]
    fn no_headers_outside_a_span() {
        crate::init_for_tests();
        assert!(current_trace_headers().is_empty());
    }

    #[test]
    fn grpc_server_span_continues_the_callers_trace() {
        crate::init_for_tests();
        let client = tracing::info_span!("client call");
        let mut request = tonic::Request::new(());
        client.in_scope(|| {
            TracePropagationInterceptor
                .call(tonic::Request::new(()))
                .map(|intercepted| request = intercepted)
                .unwrap();
        });
        assert!(request.metadata().get("traceparent").is_some());

        let http_request = http::Request::builder()
            .uri("http://localhost/socialops.ingestion.v1.IngestionService/Ingest")
            .body(())
            .unwrap();
        let (mut parts, ()) = http_request.into_parts();
        parts.headers = request.metadata().clone().into_headers();
        let server = grpc_server_span(&http::Request::from_parts(parts, ()));
        assert_eq!(trace_id(&server), trace_id(&client));
    }
}
