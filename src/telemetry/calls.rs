//! How tower-http's trace layers log a failed call. Their default writes an ERROR line for every
//! non-OK gRPC answer and every 5xx, with no method: a caller's mistake (`INVALID_ARGUMENT`,
//! `NOT_FOUND`…) is not the service's error, and shedding or an unavailable database come in
//! storms that are logged as episodes ([`super::shed`], [`super::store_unavailable`]). Only
//! what an operator must act on stays at ERROR.

use std::time::Duration;

use tonic::Code;
use tower_http::classify::{GrpcFailureClass, ServerErrorsFailureClass};
use tower_http::trace::OnFailure;
use tracing::Span;

/// The span of one gRPC call: its method, request id and trace id on every line logged inside
/// it, the caller's `traceparent` its parent. The API's calls are INFO spans; health checks
/// and reflection are DEBUG, so that probes do not fill the traces.
pub fn grpc_span<B>(request: &http::Request<B>) -> Span {
    let method = request.uri().path();
    let request_id = caller_request_id(request.headers());
    let span = if method.starts_with("/capture.") {
        tracing::info_span!("grpc", method = %method, request_id = %request_id,
            trace_id = tracing::field::Empty, otel.kind = "server")
    } else {
        tracing::debug_span!("grpc", method = %method, request_id = %request_id,
            trace_id = tracing::field::Empty, otel.kind = "server")
    };
    super::traces::adopt_caller_context(&span, request.headers());
    span
}

/// The span of one HTTP request: webhooks are INFO spans (with the caller's `traceparent` as
/// parent); probes and scrapes are DEBUG.
pub fn http_span<B>(request: &http::Request<B>) -> Span {
    let path = request.uri().path();
    let request_id = caller_request_id(request.headers());
    let span = if path.starts_with("/webhooks/") {
        tracing::info_span!("http", method = %request.method(), path = %path,
            request_id = %request_id, trace_id = tracing::field::Empty, otel.kind = "server")
    } else {
        tracing::debug_span!("http", method = %request.method(), path = %path,
            request_id = %request_id)
    };
    super::traces::adopt_caller_context(&span, request.headers());
    span
}

/// The caller's `x-request-id` (or the one set for it): bounded, and never a card number in
/// the logs.
fn caller_request_id(headers: &http::HeaderMap) -> String {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let request_id: String = request_id.chars().take(128).collect();
    crate::domain::pan::mask_card_numbers(&request_id).into_owned()
}

/// The gRPC server's failure log.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcFailures;

impl OnFailure<GrpcFailureClass> for GrpcFailures {
    fn on_failure(&mut self, failure: GrpcFailureClass, latency: Duration, _span: &Span) {
        let latency_ms = latency.as_millis() as u64;
        match failure {
            GrpcFailureClass::Code(code) => {
                let code = Code::from_i32(code.get());
                if is_service_fault(code) {
                    tracing::error!(code = ?code, latency_ms, "call failed");
                } else {
                    tracing::debug!(code = ?code, latency_ms, "call answered with an error");
                }
            }
            GrpcFailureClass::Error(error) => {
                tracing::error!(%error, latency_ms, "call failed");
            }
        }
    }
}

/// Whether a code says the service itself is broken (a bug, or a state an operator must fix);
/// the rest are the caller's mistakes or passing conditions counted elsewhere.
fn is_service_fault(code: Code) -> bool {
    match code {
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unimplemented => true,
        Code::Ok
        | Code::Cancelled
        | Code::InvalidArgument
        | Code::DeadlineExceeded
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::Unauthenticated => false,
    }
}

/// The HTTP port's failure log: a 503 is load shed or a database away (episodes), other 5xx
/// are errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpFailures;

impl OnFailure<ServerErrorsFailureClass> for HttpFailures {
    fn on_failure(&mut self, failure: ServerErrorsFailureClass, latency: Duration, _span: &Span) {
        let latency_ms = latency.as_millis() as u64;
        match failure {
            ServerErrorsFailureClass::StatusCode(status) if status.as_u16() == 503 => {
                tracing::debug!(status = status.as_u16(), latency_ms, "request answered 503");
            }
            ServerErrorsFailureClass::StatusCode(status) => {
                tracing::error!(status = status.as_u16(), latency_ms, "request failed");
            }
            ServerErrorsFailureClass::Error(error) => {
                tracing::error!(%error, latency_ms, "request failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_services_own_faults_are_errors() {
        assert!(is_service_fault(Code::Internal));
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::Unauthenticated,
            Code::AlreadyExists,
            Code::Unavailable,
            Code::ResourceExhausted,
        ] {
            assert!(!is_service_fault(code), "{code:?}");
        }
    }
}
