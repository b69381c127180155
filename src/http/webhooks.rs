//! `POST /webhooks/{provider}` and `/webhooks/{provider}/{account}`: provider notifications.
//!
//! Answers: 200 `{"result": "applied" | "unchanged" | "kept" | "duplicate" | "ignored"}` once
//! the delivery is kept (or needs nothing); 401 for a missing or wrong signature, with nothing
//! changed; 404 for a provider or account we do not serve, or one without capture webhooks
//! (PaymentOptions); 413 for a body over [`MAX_BODY_BYTES`]; 400 for a genuine delivery we
//! cannot read; 503 when the provider's verification or our database cannot be reached now, or
//! [`MAX_IN_FLIGHT`] deliveries are being handled (the provider delivers again).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use crate::capture::{Admission, Captures, WebhookFailure};
use crate::domain::{pan, Provider};
use crate::providers::webhook::{Delivery, WebhookError};

/// The largest body taken: provider events are a few KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Deliveries handled at once; past it 503 (the provider delivers again). Each may ask the
/// provider something (PayPal's verification, a hint's look), so a flood of them must not
/// become a flood of provider calls.
pub const MAX_IN_FLIGHT: usize = 64;

#[derive(Clone)]
struct Receiver {
    captures: Captures,
    admission: Admission,
}

pub fn routes(captures: Captures) -> Router {
    Router::new()
        .route("/webhooks/{provider}", post(to_default_account))
        .route("/webhooks/{provider}/{account}", post(to_account))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Receiver {
            captures,
            admission: Admission::new("webhook deliveries", MAX_IN_FLIGHT),
        })
}

async fn to_default_account(
    State(receiver): State<Receiver>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(&receiver, &provider, None, &headers, &body).await
}

async fn to_account(
    State(receiver): State<Receiver>,
    Path((provider, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(&receiver, &provider, Some(&account), &headers, &body).await
}

async fn receive(
    receiver: &Receiver,
    provider: &str,
    account: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let answer = |status: StatusCode, key: &str, value: String| {
        (status, Json(serde_json::json!({ key: value }))).into_response()
    };
    let Ok(_admitted) = receiver.admission.admit() else {
        let mut busy = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "error",
            "too many deliveries in progress; deliver again".into(),
        );
        busy.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        return busy;
    };
    let captures = &receiver.captures;
    let Some(provider) = Provider::parse(provider) else {
        return answer(StatusCode::NOT_FOUND, "error", "no such provider".into());
    };
    let delivery = Delivery { headers, body };
    match captures.receive_webhook(provider, account, delivery).await {
        Ok(receipt) => answer(StatusCode::OK, "result", receipt.as_str().into()),
        Err(failure) => {
            let status = match &failure {
                WebhookFailure::UnknownAccount(_) => StatusCode::NOT_FOUND,
                WebhookFailure::Refused(WebhookError::NotSupported(_)) => StatusCode::NOT_FOUND,
                WebhookFailure::Refused(WebhookError::Unauthenticated(_)) => {
                    StatusCode::UNAUTHORIZED
                }
                WebhookFailure::Refused(WebhookError::Malformed(_)) => StatusCode::BAD_REQUEST,
                WebhookFailure::Refused(WebhookError::VerifierUnavailable(_)) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                WebhookFailure::Store(err) if err.is_unavailable() => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                WebhookFailure::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            // A parse error may quote what the provider sent: no card number may leave here.
            let error = pan::mask_card_numbers(&failure.to_string()).into_owned();
            tracing::warn!(%provider, status = status.as_u16(), %error, "webhook refused");
            let message = match &failure {
                // Our own failures say nothing of our internals.
                WebhookFailure::Store(_) => {
                    "the delivery could not be recorded; deliver again".into()
                }
                _ => error,
            };
            answer(status, "error", message)
        }
    }
}
