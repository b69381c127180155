//! OTLP traces from the real binary: an OTLP/gRPC trace receiver inside the test (the
//! collector's own service definition, from `opentelemetry-proto`), a stand-in PayPal that
//! records every request, and grpcurl as the caller with a W3C `traceparent`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use sha2::{Digest, Sha256};

use super::common::mock_provider::{MockProvider, Reply};
use super::{capture_body, Res, Server, TestResult, CAPTURE};

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
const WEBHOOK_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const WEBHOOK_SPAN: &str = "b7ad6b7169203331";
const KEY: &str = "traces-test-key-0123456789";

/// Every span the service exported.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self
            .spans
            .lock()
            .map_err(|_| tonic::Status::internal("poisoned"))?;
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// Starts it on a free port; its `http://` endpoint.
    async fn start(&self) -> Res<String> {
        let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse()?)?;
        let endpoint = format!("http://{}", incoming.local_addr()?);
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
        Ok(endpoint)
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until `found` picks something out of the spans received (the batch processor
    /// sends every 100 ms here).
    async fn wait_for<T>(&self, what: &str, found: impl Fn(&[Span]) -> Option<T>) -> Res<T> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(found) = found(&self.spans()) {
                return Ok(found);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no {what} among the spans received:\n{}",
                    describe(&self.spans())
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            AnyValue::StringValue(s) => s.clone(),
            other => format!("{other:?}"),
        })
}

fn describe(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} trace={} span={} parent={} {:?}",
                s.name,
                hex::encode(&s.trace_id),
                hex::encode(&s.span_id),
                hex::encode(&s.parent_span_id),
                s.attributes
                    .iter()
                    .map(|kv| kv.key.as_str())
                    .collect::<Vec<_>>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The chain of parents from `span` up to the root of its trace (`span` first).
fn ancestry<'a>(spans: &'a [Span], span: &'a Span) -> Vec<&'a Span> {
    let mut chain = vec![span];
    let mut current = span;
    while let Some(parent) = spans
        .iter()
        .find(|s| !current.parent_span_id.is_empty() && s.span_id == current.parent_span_id)
    {
        chain.push(parent);
        current = parent;
    }
    chain
}

/// PayPal as it documents itself: a token, then a COMPLETED capture.
async fn stand_in_paypal(authorization: &str) -> Res<MockProvider> {
    let paypal = MockProvider::paypal_granting_tokens().await?;
    paypal.default_for(
        http::Method::POST,
        &format!("/v2/payments/authorizations/{authorization}/capture"),
        |_| {
            Reply::json(
                201,
                r#"{"id":"2GG279541U471931P","status":"COMPLETED","amount":{"currency_code":"USD","value":"10.00"}}"#,
            )
        },
    );
    Ok(paypal)
}

// Multi-threaded: grpcurl blocks its thread while the stand-in PayPal and the receiver answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_is_traced_from_the_caller_to_the_provider_call() -> TestResult {
    let receiver = Receiver::default();
    let endpoint = receiver.start().await?;
    let authorization = "0VF52814937998046";
    let paypal = stand_in_paypal(authorization).await?;
    let digest = hex::encode(Sha256::digest(KEY.as_bytes()));
    let api_keys = format!("traces:{digest}");
    let paypal_url = paypal.url();
    let server = Server::start(&[
        ("CAPTURE_SANDBOX", "off"),
        ("CAPTURE_API_KEYS", &api_keys),
        ("CAPTURE_PAYPAL_BASE_URL", &paypal_url),
        ("CAPTURE_PAYPAL_CLIENT_ID", "client"),
        ("CAPTURE_PAYPAL_CLIENT_SECRET", "secret"),
        ("CAPTURE_OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("CAPTURE_READINESS_CHECK_INTERVAL_MS", "200"),
    ])
    .await?;

    // The caller's trace: `traceparent` in the gRPC metadata, as a traced client sends it.
    let traceparent = format!("traceparent: 00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let body = capture_body(authorization, "10.00", "traced-1");
    let target = server.grpc_target();
    let auth = format!("authorization: Bearer {KEY}");
    let answer = super::grpcurl(&[
        "-plaintext",
        "-H",
        &auth,
        "-H",
        &traceparent,
        "-d",
        &body,
        &target,
        CAPTURE,
    ])?
    .json()?;
    assert_eq!(
        answer["capture"]["status"], "CAPTURE_STATUS_COMPLETED",
        "{answer}"
    );

    let caller_trace = hex::decode(CALLER_TRACE)?;
    let caller_span = hex::decode(CALLER_SPAN)?;
    let provider_call = receiver
        .wait_for("provider call span", |spans| {
            spans
                .iter()
                .find(|s| {
                    s.name == "provider call"
                        && attribute(s, "operation").as_deref() == Some("capture")
                })
                .cloned()
        })
        .await?;
    let spans = receiver.spans();
    // The provider call is in the caller's trace, a descendant of the server span whose parent
    // is the caller's span.
    assert_eq!(provider_call.trace_id, caller_trace, "{}", describe(&spans));
    assert_eq!(
        attribute(&provider_call, "provider").as_deref(),
        Some("paypal")
    );
    assert_eq!(attribute(&provider_call, "outcome").as_deref(), Some("ok"));
    let chain = ancestry(&spans, &provider_call);
    let root = chain.last().ok_or("no chain")?;
    assert_eq!(root.name, "grpc", "{}", describe(&spans));
    assert_eq!(
        root.parent_span_id, caller_span,
        "the server span's parent is the caller's"
    );
    assert_eq!(
        attribute(root, "method").as_deref(),
        Some("/capture.v1.CaptureService/Capture")
    );
    assert!(
        chain.len() >= 2,
        "the provider call is a child span: {}",
        describe(&spans)
    );
    // The store's transactions are children in the same trace.
    let store_ops: Vec<String> = spans
        .iter()
        .filter(|s| s.name == "store" && s.trace_id == caller_trace)
        .filter_map(|s| attribute(s, "operation"))
        .collect();
    for operation in ["begin capture", "record outcome"] {
        assert!(store_ops.iter().any(|o| o == operation), "{store_ops:?}");
    }

    // Probes and background queries start no trace of their own (the readiness check pings
    // the database every 200 ms here, and /readyz is polled at start).
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert!(
        roots.iter().all(|s| s.name == "grpc" || s.name == "http"),
        "{}",
        describe(&spans)
    );

    // Nothing of the trace went to the provider: it is a third party.
    let requests = paypal.requests();
    assert!(requests.len() >= 2, "token and capture calls");
    for request in &requests {
        for header in ["traceparent", "tracestate", "baggage"] {
            assert!(
                request.header(header).is_none(),
                "{header} sent to {}",
                request.path
            );
        }
        assert!(!request.text().contains(CALLER_TRACE));
    }

    // A webhook's `traceparent` is its span's parent too (here a delivery refused at once).
    let refused = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/webhooks/paypal",
            server.http_port
        ))
        .header(
            "traceparent",
            format!("00-{WEBHOOK_TRACE}-{WEBHOOK_SPAN}-01"),
        )
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await?;
    assert_eq!(refused.status(), 401);
    let webhook_trace = hex::decode(WEBHOOK_TRACE)?;
    let webhook_span = receiver
        .wait_for("webhook span", |spans| {
            spans
                .iter()
                .find(|s| s.trace_id == webhook_trace && s.name == "http")
                .cloned()
        })
        .await?;
    assert_eq!(
        attribute(&webhook_span, "path").as_deref(),
        Some("/webhooks/paypal")
    );
    assert_eq!(webhook_span.parent_span_id, hex::decode(WEBHOOK_SPAN)?);

    // Log lines inside the call carry its trace id.
    let output = server.output();
    let resolved = output
        .lines()
        .find(|line| line.contains("capture resolved"))
        .ok_or_else(|| format!("no `capture resolved` line:\n{output}"))?;
    assert!(
        resolved.contains(&format!("trace_id={CALLER_TRACE}")),
        "{resolved}"
    );
    Ok(())
}
