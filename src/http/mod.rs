//! The HTTP port: `/healthz` (the process runs), `/readyz` (the database answers), and, in
//! sandbox mode, the emulator's helper endpoints under `/sandbox/`; provider webhooks under
//! `/webhooks/` ([`webhooks`]).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::capture::Captures;

pub mod readiness;
pub mod webhooks;

pub use readiness::{NotReady, Readiness};

/// Gives every request an `x-request-id` unless the caller sent one.
#[derive(Clone, Copy, Default)]
pub struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        let mut bytes = [0u8; 12];
        getrandom::fill(&mut bytes).ok()?;
        http::HeaderValue::from_str(&hex::encode(bytes))
            .ok()
            .map(RequestId::new)
    }
}

/// The router of the HTTP port; `extra` carries optional routes (the sandbox's). Every request
/// has `request_timeout` from its head to its answer (408, and the connection closes), and
/// webhook bodies their own bounds ([`webhooks::ReceiveLimits`]).
pub fn router(
    captures: Captures,
    readiness: Readiness,
    extra: Option<Router>,
    webhook_limits: webhooks::ReceiveLimits,
    request_timeout: Duration,
) -> Router {
    let mut app = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .with_state(readiness)
        .route(
            "/metrics",
            get({
                let store = captures.store().clone();
                move || metrics(store.clone())
            }),
        )
        .merge(webhooks::routes(captures, webhook_limits));
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    app.layer(axum::middleware::map_response(close_after_timeout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(crate::telemetry::calls::http_span)
                .on_failure(crate::telemetry::calls::HttpFailures),
        )
        .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
}

/// A request cut off by its deadline may not have sent its whole body: its connection closes.
async fn close_after_timeout(mut response: axum::response::Response) -> axum::response::Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// `GET /metrics`: every metric as OpenMetrics text, the pool's gauges read now.
async fn metrics(store: crate::store::Store) -> axum::response::Response {
    use axum::response::IntoResponse;
    let metrics = crate::telemetry::metrics::metrics();
    let (in_use, idle, max) = store.pool_connections();
    for (state, value) in [("in_use", in_use), ("idle", idle), ("max", max)] {
        metrics
            .db_pool_connections
            .get_or_create(&crate::telemetry::metrics::PoolState { state })
            .set(i64::try_from(value).unwrap_or(i64::MAX));
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}

async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, Json<serde_json::Value>) {
    match readiness.check().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))),
        Err(NotReady::Draining) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "shutting down"})),
        ),
        Err(NotReady::Database(err)) => {
            tracing::debug!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "database unavailable"})),
            )
        }
    }
}
