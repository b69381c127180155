//! A stand-in PayPal that counts capture calls, for tests that must prove how many provider
//! calls a scenario made. It answers as PayPal documents: token, then a COMPLETED capture
//! echoing the requested amount, after a delay so concurrent requests really overlap.
//!
//! A test may also give it a hook that runs after a capture call arrived and before it is
//! answered (to break something at exactly that moment), and extra fields for its answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};

/// Runs between a capture call's arrival and its answer.
pub type Hook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// How the stand-in behaves.
#[derive(Clone)]
pub struct Behaviour {
    pub delay: Duration,
    pub before_answer: Option<Hook>,
    /// Merged into every capture answer (for answers carrying unusual fields).
    pub extra_fields: serde_json::Value,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            delay: Duration::from_millis(200),
            before_answer: None,
            extra_fields: serde_json::json!({}),
        }
    }
}

#[derive(Clone, Default)]
pub struct Counter {
    captures: Arc<AtomicUsize>,
    request_ids: Arc<Mutex<Vec<String>>>,
}

impl Counter {
    pub fn captures(&self) -> usize {
        self.captures.load(Ordering::SeqCst)
    }

    /// The `PayPal-Request-Id` of every capture call, in order.
    pub fn request_ids(&self) -> Vec<String> {
        self.request_ids
            .lock()
            .map(|ids| ids.clone())
            .unwrap_or_default()
    }
}

#[derive(Clone)]
struct Shared {
    counter: Counter,
    behaviour: Behaviour,
}

/// Starts it on a random port; returns its base URL and the counter.
pub async fn start() -> Result<(String, Counter), std::io::Error> {
    start_with(Behaviour::default()).await
}

/// Starts it with `behaviour`; returns its base URL and the counter.
pub async fn start_with(behaviour: Behaviour) -> Result<(String, Counter), std::io::Error> {
    let counter = Counter::default();
    let router = Router::new()
        .route(
            "/v1/oauth2/token",
            post(|| async {
                Json(serde_json::json!({"access_token": "A21AA-test", "token_type": "Bearer", "expires_in": 32400}))
            }),
        )
        .route("/v2/payments/authorizations/{id}/capture", post(capture))
        .with_state(Shared {
            counter: counter.clone(),
            behaviour,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((format!("http://{addr}"), counter))
}

async fn capture(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Option<Json<serde_json::Value>>,
) -> (StatusCode, Json<serde_json::Value>) {
    let n = shared.counter.captures.fetch_add(1, Ordering::SeqCst);
    if let Some(request_id) = headers
        .get("paypal-request-id")
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(mut ids) = shared.counter.request_ids.lock() {
            ids.push(request_id.to_owned());
        }
    }
    tokio::time::sleep(shared.behaviour.delay).await;
    if let Some(hook) = &shared.behaviour.before_answer {
        hook().await;
    }
    let amount = body
        .and_then(|Json(b)| b.get("amount").cloned())
        .unwrap_or(serde_json::json!({"currency_code": "USD", "value": "100.00"}));
    let mut answer = serde_json::json!({
        "id": format!("CAPTURE{n:010}"),
        "status": "COMPLETED",
        "amount": amount,
        "final_capture": false,
        "supplementary_data": {"related_ids": {"authorization_id": id}},
        "create_time": "2026-11-23T10:00:00Z",
        "update_time": "2026-11-23T10:00:00Z"
    });
    if let (Some(answer), Some(extra)) = (
        answer.as_object_mut(),
        shared.behaviour.extra_fields.as_object(),
    ) {
        answer.extend(extra.clone());
    }
    (StatusCode::CREATED, Json(answer))
}
