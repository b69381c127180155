//! Faults the sandbox injects into the provider API requests of chosen authorizations, and the
//! record of every such request: what the fault suite (`capture-faults --scenario
//! provider_faults`) breaks the service's provider calls with, and counts its attempts by.
//!
//! An authorization made with `"faults": [...]` is *observed*: each capture request of it (as
//! its emulator tells them apart) takes the next fault of its list, and is recorded at
//! `GET /sandbox/attempts` with the idempotency key it carried. Once the list is used up,
//! requests go through untouched (and are still recorded). Lookups, searches and the rest are
//! never faulted, so a reconciler can learn what happened.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::kit::Locked;
use super::Emulator;

/// The largest request body the injector reads to find the authorization it names.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Attempts kept (oldest dropped first): a long-running standalone sandbox must not grow
/// without bound.
const KEPT_ATTEMPTS: usize = 100_000;

/// One fault, applied to one provider API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Fault {
    /// The request is processed at once; its answer is held back `millis`.
    Latency { millis: u64 },
    /// The request is processed; the status, headers and half the body are sent, then the
    /// connection is cut.
    ResetMidBody,
    /// A load balancer's HTML 502 page: the request never reached the provider.
    Html502,
    /// The request is processed; the answer's JSON body is cut short (a complete HTTP message).
    TruncatedJson,
    /// The request is processed; its body is sent one byte every `millis`.
    Trickle { millis: u64 },
    /// 429, not processed; with `Retry-After: seconds` when given.
    RateLimited { retry_after: Option<u64> },
    /// Not processed; a 200 whose JSON body says the capture was declined.
    Contradicting200,
}

impl Fault {
    /// Whether the provider acts on a request that meets this fault (it may have captured,
    /// whatever its caller heard).
    pub fn reaches_provider(self) -> bool {
        match self {
            Fault::Latency { .. }
            | Fault::ResetMidBody
            | Fault::TruncatedJson
            | Fault::Trickle { .. } => true,
            Fault::Html502 | Fault::RateLimited { .. } | Fault::Contradicting200 => false,
        }
    }
}

/// One POST naming an observed authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub provider: String,
    pub authorization_id: String,
    pub path: String,
    /// The idempotency key it carried (as the book's [`super::Charge::key`]).
    pub key: Option<String>,
    /// When it arrived: milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The fault it met; none once the authorization's list is used up.
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Table {
    /// Faults still to apply, by observed authorization id.
    plans: HashMap<String, VecDeque<Fault>>,
    attempts: VecDeque<Attempt>,
}

/// The observed authorizations and their attempts, shared by every emulator (cheap to clone).
#[derive(Clone, Default)]
pub(super) struct Faults(Arc<Locked<Table>>);

impl Faults {
    /// Observes `authorization_id` from now on: its POSTs meet `faults` in turn.
    pub(super) fn observe(&self, authorization_id: &str, faults: Vec<Fault>) {
        self.0
            .lock()
            .plans
            .insert(authorization_id.to_owned(), faults.into());
    }

    fn observes_any(&self) -> bool {
        !self.0.lock().plans.is_empty()
    }

    fn observes(&self, authorization_id: &str) -> bool {
        self.0.lock().plans.contains_key(authorization_id)
    }

    /// Records an attempt on `authorization_id`; the fault it meets.
    fn attempt(&self, mut attempt: Attempt) -> Option<Fault> {
        let mut table = self.0.lock();
        let fault = table
            .plans
            .get_mut(&attempt.authorization_id)
            .and_then(VecDeque::pop_front);
        attempt.fault = fault;
        attempt.at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if table.attempts.len() == KEPT_ATTEMPTS {
            table.attempts.pop_front();
        }
        table.attempts.push_back(attempt);
        fault
    }

    /// `GET /sandbox/attempts`: every attempt on an observed authorization, oldest first.
    pub(super) fn routes(&self) -> Router {
        Router::new()
            .route("/sandbox/attempts", get(attempts))
            .with_state(self.clone())
    }
}

async fn attempts(State(faults): State<Faults>) -> Json<Vec<Attempt>> {
    Json(faults.0.lock().attempts.iter().cloned().collect())
}

/// The id in `path` between `prefix` and `suffix` (`/payments/{id}/captures`), if it is one
/// path segment.
pub(super) fn id_between<'a>(path: &'a str, prefix: &str, suffix: &str) -> Option<&'a str> {
    let id = path.strip_prefix(prefix)?.strip_suffix(suffix)?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// The middleware in front of one emulator's API: records and faults the capture requests of
/// observed authorizations; everything else goes straight through.
pub(super) async fn inject(
    State((faults, emulator)): State<(Faults, Arc<dyn Emulator>)>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST || !faults.observes_any() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path = parts.uri.path().to_owned();
    let captured = emulator.captured_authorization(&path, &body);
    let Some(authorization_id) = captured.filter(|id| faults.observes(id)) else {
        return next.run(Request::from_parts(parts, Body::from(body))).await;
    };
    let fault = faults.attempt(Attempt {
        provider: emulator.provider().as_str().to_owned(),
        authorization_id,
        key: emulator.idempotency_key(&parts.headers, &body),
        path,
        at_ms: 0,
        fault: None,
    });
    let request = Request::from_parts(parts, Body::from(body));
    match fault {
        None => next.run(request).await,
        Some(Fault::Html502) => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><head><title>502 Bad Gateway</title></head><body><center>\
             <h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
        )
            .into_response(),
        Some(Fault::RateLimited { retry_after }) => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"message":"Too many requests"}"#,
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        Some(Fault::Contradicting200) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"DECLINED","approved":false,"message":"Declined by the issuer"}"#,
        )
            .into_response(),
        Some(Fault::Latency { millis }) => {
            let response = next.run(request).await;
            tokio::time::sleep(Duration::from_millis(millis)).await;
            response
        }
        Some(Fault::ResetMidBody) => {
            let (parts, body) = whole(next.run(request).await).await;
            let half = body.slice(..body.len() / 2);
            // The full Content-Length stays: the client waits for bytes that never come.
            let cut = futures_util::stream::iter([
                Ok(half),
                Err(std::io::Error::other("connection cut mid-body")),
            ]);
            Response::from_parts(parts, Body::from_stream(cut))
        }
        Some(Fault::TruncatedJson) => {
            let (mut parts, body) = whole(next.run(request).await).await;
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body.slice(..body.len() / 2)))
        }
        Some(Fault::Trickle { millis }) => {
            let (parts, body) = whole(next.run(request).await).await;
            let pause = Duration::from_millis(millis);
            let bytes = futures_util::stream::unfold(0, move |at| {
                let body = body.clone();
                async move {
                    if at >= body.len() {
                        return None;
                    }
                    tokio::time::sleep(pause).await;
                    Some((Ok::<_, std::io::Error>(body.slice(at..at + 1)), at + 1))
                }
            });
            Response::from_parts(parts, Body::from_stream(bytes))
        }
    }
}

/// A response's head and its whole body (an emulator's answers are small and in memory).
async fn whole(response: Response) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    (parts, body)
}
