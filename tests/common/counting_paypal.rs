//! A stand-in PayPal that counts capture calls, for tests that must prove how many provider
//! calls a scenario made. It answers as PayPal documents: token, then a COMPLETED capture
//! echoing the requested amount, after a short delay so concurrent requests really overlap.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

#[derive(Clone, Default)]
pub struct Counter {
    captures: Arc<AtomicUsize>,
}

impl Counter {
    pub fn captures(&self) -> usize {
        self.captures.load(Ordering::SeqCst)
    }
}

/// Starts it on a random port; returns its base URL and the counter.
pub async fn start() -> Result<(String, Counter), std::io::Error> {
    let counter = Counter::default();
    let router = Router::new()
        .route(
            "/v1/oauth2/token",
            post(|| async {
                Json(serde_json::json!({"access_token": "A21AA-test", "token_type": "Bearer", "expires_in": 32400}))
            }),
        )
        .route("/v2/payments/authorizations/{id}/capture", post(capture))
        .with_state(counter.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((format!("http://{addr}"), counter))
}

async fn capture(
    State(counter): State<Counter>,
    Path(id): Path<String>,
    body: Option<Json<serde_json::Value>>,
) -> (StatusCode, Json<serde_json::Value>) {
    let n = counter.captures.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let amount = body
        .and_then(|Json(b)| b.get("amount").cloned())
        .unwrap_or(serde_json::json!({"currency_code": "USD", "value": "100.00"}));
    (
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": format!("CAPTURE{n:010}"),
            "status": "COMPLETED",
            "amount": amount,
            "final_capture": false,
            "supplementary_data": {"related_ids": {"authorization_id": id}},
            "create_time": "2026-11-23T10:00:00Z",
            "update_time": "2026-11-23T10:00:00Z"
        })),
    )
}
