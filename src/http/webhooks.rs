//! `POST /webhooks/{provider}` and `/webhooks/{provider}/{account}`: provider notifications.
//!
//! Answers: 200 `{"result": "applied" | "unchanged" | "kept" | "duplicate" | "ignored"}` once
//! the delivery is kept (or needs nothing); 401 for a missing or wrong signature, with nothing
//! changed; 404 for a provider or account we do not serve, or one without capture webhooks
//! (PaymentOptions); 413 for a body over [`MAX_BODY_BYTES`]; 400 for a genuine delivery we
//! cannot read; 408 for a body not sent whole in time; 503 when the provider's verification or
//! our database cannot be reached now, or too many deliveries are in progress (the provider
//! delivers again).
//!
//! The order keeps cheap refusals cheap: at most `max_receiving` deliveries are read at once
//! (the rest get 503 before their body is read, and the connection closes), each body within its
//! deadline; then the connector's local checks (a missing signature, a wrong HMAC) refuse
//! forgeries before they hold one of the provider's slots ([`crate::capture::WebhookLimits`]).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use crate::capture::{Admission, Captures, WebhookFailure};
use crate::domain::{pan, Provider};
use crate::providers::webhook::{Delivery, WebhookError};

/// The largest body taken: provider events are a few KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// How deliveries are received.
#[derive(Debug, Clone, Copy)]
pub struct ReceiveLimits {
    /// Deliveries being received and handled at once (all providers); past it 503 before the
    /// body is read.
    pub max_receiving: usize,
    /// How long a delivery has to send its whole body.
    pub body_timeout: Duration,
}

#[derive(Clone)]
struct Receiver {
    captures: Captures,
    receiving: Admission,
    body_timeout: Duration,
}

pub fn routes(captures: Captures, limits: ReceiveLimits) -> Router {
    Router::new()
        .route("/webhooks/{provider}", post(to_default_account))
        .route("/webhooks/{provider}/{account}", post(to_account))
        .with_state(Receiver {
            captures,
            receiving: Admission::new("webhook deliveries received", limits.max_receiving),
            body_timeout: limits.body_timeout,
        })
}

async fn to_default_account(
    State(receiver): State<Receiver>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(&receiver, &provider, None, &headers, body).await
}

async fn to_account(
    State(receiver): State<Receiver>,
    Path((provider, account)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    receive(&receiver, &provider, Some(&account), &headers, body).await
}

fn answer(status: StatusCode, key: &str, value: String) -> Response {
    (status, Json(serde_json::json!({ key: value }))).into_response()
}

/// An answer given before the body was read whole: the connection closes after it, so that a
/// sender that is still sending (or never will) holds nothing.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

/// 503 with `Retry-After: 1`: the provider delivers again.
fn busy(message: &str) -> Response {
    crate::telemetry::shed().record(&message);
    let mut busy = answer(StatusCode::SERVICE_UNAVAILABLE, "error", message.into());
    busy.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    busy
}

/// Answers one delivery, and counts it in `capture_webhooks_total` by provider and result.
async fn receive(
    receiver: &Receiver,
    provider: &str,
    account: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let Some(provider) = Provider::parse(provider) else {
        crate::telemetry::metrics::metrics().webhook("unknown", "not_found");
        return closing(answer(
            StatusCode::NOT_FOUND,
            "error",
            "no such provider".into(),
        ));
    };
    let (result, response) = handle(receiver, provider, account, headers, body).await;
    crate::telemetry::metrics::metrics().webhook(provider.as_str(), result);
    response
}

async fn handle(
    receiver: &Receiver,
    provider: Provider,
    account: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> (&'static str, Response) {
    let Ok(_receiving) = receiver.receiving.admit() else {
        return (
            "overloaded",
            closing(busy("too many deliveries in progress; deliver again")),
        );
    };
    let body = match tokio::time::timeout(
        receiver.body_timeout,
        axum::body::to_bytes(body, MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(err)) => {
            let too_large = std::error::Error::source(&err)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            return if too_large {
                (
                    "too_large",
                    closing(answer(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "error",
                        format!("the body is over {MAX_BODY_BYTES} bytes"),
                    )),
                )
            } else {
                (
                    "malformed",
                    closing(answer(
                        StatusCode::BAD_REQUEST,
                        "error",
                        "the body could not be read".into(),
                    )),
                )
            };
        }
        Err(_) => {
            tracing::info!(%provider, "webhook body not received in time");
            return (
                "too_slow",
                closing(answer(
                    StatusCode::REQUEST_TIMEOUT,
                    "error",
                    format!(
                        "the body was not received within {:?}",
                        receiver.body_timeout
                    ),
                )),
            );
        }
    };
    let body: &[u8] = &body;
    let captures = &receiver.captures;
    let delivery = Delivery { headers, body };
    match captures.receive_webhook(provider, account, delivery).await {
        Ok(receipt) => (
            receipt.as_str(),
            answer(StatusCode::OK, "result", receipt.as_str().into()),
        ),
        Err(failure) => {
            let (status, result) = match &failure {
                WebhookFailure::UnknownAccount(_) => (StatusCode::NOT_FOUND, "not_found"),
                WebhookFailure::Refused(WebhookError::NotSupported(_)) => {
                    (StatusCode::NOT_FOUND, "not_found")
                }
                WebhookFailure::Refused(WebhookError::Unauthenticated(_)) => {
                    (StatusCode::UNAUTHORIZED, "bad_signature")
                }
                WebhookFailure::Refused(WebhookError::Malformed(_)) => {
                    (StatusCode::BAD_REQUEST, "malformed")
                }
                WebhookFailure::Refused(WebhookError::VerifierUnavailable(_)) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                }
                WebhookFailure::Store(err) if err.is_unavailable() => {
                    (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
                }
                WebhookFailure::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "error"),
                WebhookFailure::Overloaded(_) => {
                    return (
                        "overloaded",
                        busy("too many deliveries of this provider in progress; deliver again"),
                    );
                }
            };
            // A parse error may quote what the provider sent: no card number may leave here.
            let error = pan::mask_card_numbers(&failure.to_string()).into_owned();
            // A verifier or a database away comes in storms: each is one episode.
            if let WebhookFailure::Refused(WebhookError::VerifierUnavailable(_)) = &failure {
                crate::telemetry::verifier_unavailable().record(&error);
            } else if status == StatusCode::SERVICE_UNAVAILABLE {
                crate::telemetry::store_unavailable().record(&error);
            } else {
                tracing::warn!(%provider, status = status.as_u16(), %error, "webhook refused");
            }
            let message = match &failure {
                // Our own failures say nothing of our internals.
                WebhookFailure::Store(_) => {
                    "the delivery could not be recorded; deliver again".into()
                }
                _ => error,
            };
            (result, answer(status, "error", message))
        }
    }
}
