//! The gRPC server's metrics, in one tower layer around every service (the API, health,
//! reflection), named as the gRPC ecosystem's interceptors name them:
//! `grpc_server_started_total`, `grpc_server_handled_total` and `grpc_server_handling_seconds`,
//! labelled `grpc_type`, `grpc_service`, `grpc_method` (and `grpc_code` on handled calls,
//! spelled as Go's `codes.Code.String()`, so existing dashboards and alerts apply).
//!
//! A call's code is in the response headers when it failed before any message
//! (trailers-only), else in the trailers at the body's end; a body dropped before its end
//! (the caller went away) counts as `Canceled`. The handling time runs to that moment, so a
//! stream's is its whole life.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;
use tower::{Layer, Service};

use super::metrics::{metrics, GrpcCall, GrpcHandled};

/// Adds the gRPC server metrics to a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcMetrics<S> {
    inner: S,
}

/// The methods this server serves, with their kinds; any other path is `unknown` (a label
/// must never take a caller's string).
const METHODS: &[(&str, &str, &str, &str)] = &[
    (
        "/capture.v1.CaptureService/Capture",
        "capture.v1.CaptureService",
        "Capture",
        "unary",
    ),
    (
        "/capture.v1.CaptureService/GetCapture",
        "capture.v1.CaptureService",
        "GetCapture",
        "unary",
    ),
    (
        "/capture.v1.CaptureService/ListCaptures",
        "capture.v1.CaptureService",
        "ListCaptures",
        "unary",
    ),
    (
        "/capture.v1.CaptureService/WatchCaptures",
        "capture.v1.CaptureService",
        "WatchCaptures",
        "server_stream",
    ),
    (
        "/grpc.health.v1.Health/Check",
        "grpc.health.v1.Health",
        "Check",
        "unary",
    ),
    (
        "/grpc.health.v1.Health/Watch",
        "grpc.health.v1.Health",
        "Watch",
        "server_stream",
    ),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
        "bidi_stream",
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection",
        "ServerReflectionInfo",
        "bidi_stream",
    ),
];

fn call_of(path: &str) -> GrpcCall {
    let (grpc_service, grpc_method, grpc_type) = METHODS
        .iter()
        .find(|(p, ..)| *p == path)
        .map(|(_, service, method, kind)| (*service, *method, *kind))
        .unwrap_or(("unknown", "unknown", "unknown"));
    GrpcCall {
        grpc_type,
        grpc_service,
        grpc_method,
    }
}

/// A `grpc-status` value as Go's `codes.Code.String()` spells it.
fn code_name(status: Option<&http::HeaderValue>) -> &'static str {
    let code = status
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    match code {
        Some(0) => "OK",
        Some(1) => "Canceled",
        Some(2) => "Unknown",
        Some(3) => "InvalidArgument",
        Some(4) => "DeadlineExceeded",
        Some(5) => "NotFound",
        Some(6) => "AlreadyExists",
        Some(7) => "PermissionDenied",
        Some(8) => "ResourceExhausted",
        Some(9) => "FailedPrecondition",
        Some(10) => "Aborted",
        Some(11) => "OutOfRange",
        Some(12) => "Unimplemented",
        Some(13) => "Internal",
        Some(14) => "Unavailable",
        Some(15) => "DataLoss",
        Some(16) => "Unauthenticated",
        _ => "Unknown",
    }
}

impl<S, B, RB> Service<http::Request<B>> for GrpcMetrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Body + Unpin,
{
    type Response = http::Response<MeteredBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = call_of(request.uri().path());
        metrics().grpc_started.get_or_create(&call).inc();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let mut ended = Ended {
                call,
                started,
                done: false,
            };
            // Trailers-only: the code is in the headers and the body carries nothing more.
            if let Some(status) = response.headers().get("grpc-status") {
                ended.record(Some(status));
            }
            Ok(response.map(|inner| MeteredBody { inner, ended }))
        })
    }
}

/// Records a call's end once: its code and how long it took.
struct Ended {
    call: GrpcCall,
    started: Instant,
    done: bool,
}

impl Ended {
    fn record(&mut self, status: Option<&http::HeaderValue>) {
        if self.done {
            return;
        }
        self.done = true;
        let metrics = metrics();
        metrics
            .grpc_handled
            .get_or_create(&GrpcHandled {
                grpc_type: self.call.grpc_type,
                grpc_service: self.call.grpc_service,
                grpc_method: self.call.grpc_method,
                grpc_code: code_name(status),
            })
            .inc();
        metrics
            .grpc_handling_seconds
            .get_or_create(&self.call)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// A response body that records its call's code when the trailers pass.
pub struct MeteredBody<B> {
    inner: B,
    ended: Ended,
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.ended.record(trailers.get("grpc-status"));
                }
            }
            // The stream failed, or ended without trailers: no code was sent.
            Some(Err(_)) | None => this.ended.record(None),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for MeteredBody<B> {
    fn drop(&mut self) {
        // Dropped before its end: the caller went away.
        let canceled = http::HeaderValue::from_static("1");
        self.ended.record(Some(&canceled));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_methods_become_labels() {
        let watch = call_of("/capture.v1.CaptureService/WatchCaptures");
        assert_eq!(
            (watch.grpc_type, watch.grpc_method),
            ("server_stream", "WatchCaptures")
        );
        let unknown = call_of("/evil.Service/AnythingTheCallerLikes");
        assert_eq!(unknown.grpc_service, "unknown");
    }

    #[test]
    fn codes_are_spelled_as_go_spells_them() {
        let header = http::HeaderValue::from_static("3");
        assert_eq!(code_name(Some(&header)), "InvalidArgument");
        assert_eq!(code_name(None), "Unknown");
    }
}
