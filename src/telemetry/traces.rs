//! Optional OTLP trace export, and the W3C trace context of incoming calls.
//!
//! Off unless `CAPTURE_OTLP_ENDPOINT` is set: then `tracing` spans of this crate go to that
//! OTLP/gRPC collector through the OpenTelemetry SDK's batch processor (the standard
//! `OTEL_*` variables tune it: `OTEL_TRACES_SAMPLER`, `OTEL_BSP_SCHEDULE_DELAY`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`…). A caller's `traceparent` header becomes
//! the parent of the call's span, with or without export, and its trace id is on every log line
//! of the call. Nothing is injected into provider requests: providers are third parties.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The installed tracer provider, while export is on; flushed by [`Traces::shutdown`].
pub struct Traces {
    provider: SdkTracerProvider,
}

/// Whether spans are exported (set once, at start).
static EXPORTING: OnceLock<bool> = OnceLock::new();

fn exporting() -> bool {
    EXPORTING.get().copied().unwrap_or(false)
}

impl Traces {
    /// An exporter to `endpoint` (`http://` or `https://`, OTLP over gRPC). The channel
    /// connects lazily: an unreachable collector loses spans, never a call.
    pub fn start(endpoint: &str) -> Result<Traces, opentelemetry_otlp::ExporterBuildError> {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(10));
        if endpoint.starts_with("https://") {
            exporter = exporter.with_tls_config(
                opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new()
                    .with_webpki_roots(),
            );
        }
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("capture-service");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter.build()?)
            .with_resource(
                resource
                    .with_attribute(opentelemetry::KeyValue::new(
                        "service.version",
                        env!("CARGO_PKG_VERSION"),
                    ))
                    .build(),
            )
            .build();
        let _ = EXPORTING.set(true);
        Ok(Traces { provider })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans of this provider.
    pub fn layer<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("capture-service"))
            .with_location(false)
            .with_threads(false)
    }

    /// Sends the spans still queued; called once the server has stopped.
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(error = %err, "traces not all exported at shutdown");
        }
    }
}

/// Makes the caller's W3C `traceparent` (and `tracestate`) the parent of `span`, and records
/// the call's trace id in the span's `trace_id` field, so that every log line of the call
/// carries it. Without a `traceparent`, an exported span starts a trace of its own (whose id is
/// recorded); without either, nothing is recorded.
pub fn adopt_caller_context(span: &Span, headers: &http::HeaderMap) {
    let caller = headers
        .contains_key("traceparent")
        .then(|| TraceContextPropagator::new().extract(&HeaderExtractor(headers)));
    let caller_trace = caller
        .as_ref()
        .map(|cx| cx.span().span_context().trace_id())
        .filter(|id| *id != TraceId::INVALID);
    if exporting() {
        if let Some(cx) = caller {
            let _ = span.set_parent(cx);
        }
        record_trace_id(span);
    } else if let Some(trace_id) = caller_trace {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Records the trace id of `span`'s exported span in its `trace_id` field (nothing when
/// export is off): for spans that start traces of their own, such as a reconciler's look.
pub fn record_trace_id(span: &Span) {
    if !exporting() {
        return;
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Reads trace context headers out of an HTTP (or gRPC) request's headers.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_traceparent_is_read() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        let caller = cx.span().span_context().clone();
        assert_eq!(
            caller.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(caller.span_id().to_string(), "00f067aa0ba902b7");
        assert!(caller.is_remote() && caller.is_sampled());
    }

    #[test]
    fn a_malformed_traceparent_is_no_parent() {
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", http::HeaderValue::from_static("00-zz-01"));
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(&headers));
        assert!(!cx.span().span_context().is_valid());
    }
}
