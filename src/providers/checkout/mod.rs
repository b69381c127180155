//! Checkout.com connector: the capture call with its headers, the payment lookup that guards its
//! currency, the actions lookup that confirms it, and the reading of Checkout.com's error
//! answers. Wire types live in [`wire`], their conversion to and from the domain in `mapping`.
//!
//! A capture's `amount` carries no currency: it is taken in the payment's, fixed at
//! authorization. So before a capture with an amount, `GET /payments/{id}` reads the payment and
//! a capture in another currency is refused (`currency_mismatch`) without being sent.
//!
//! Checkout.com answers a capture with **202 Accepted**: the capture is recorded as `PENDING`
//! (`AWAITING_PROVIDER_CONFIRMATION`) with the action id, and [`Connector::fetch_outcome`] reads
//! `GET /payments/{id}/actions` to learn whether it was approved.

mod account;
#[cfg(test)]
mod fuzz;
mod mapping;
mod webhook;
pub mod wire;

use async_trait::async_trait;
use http::StatusCode;

use super::http::{HttpAnswer, ProviderHttp, RetryPolicy};
use super::kit::Kit;
use super::webhook::{Delivery, Screened, Trust, WebhookError, WebhookEvent};
use super::{CaptureCall, Connector, ProviderError, Rejection};
use crate::config::Secret;
use crate::domain::outcome::ProviderFailure;
use crate::domain::{
    CaptureCommand, CaptureRecord, Currency, FieldViolation, Provider, ProviderOutcome,
};

pub use mapping::{
    CurrencyUnit, CURRENCY_MISMATCH, MAX_AMOUNT, MAX_REFERENCE_CHARS, STATE_ERROR_CODES,
};

pub use account::CheckoutAccount;

/// The rules every connector shares, for Checkout.
const KIT: Kit = Kit::new(Provider::Checkout);

/// The header Checkout.com puts its correlation id in, on every answer.
const REQUEST_ID_HEADER: &str = "cko-request-id";

/// Captures at one configured Checkout.com account.
pub struct CheckoutConnector {
    /// Without a trailing slash.
    base_url: String,
    secret_key: Secret,
    webhook_secret: Option<Secret>,
    http: ProviderHttp,
}

impl CheckoutConnector {
    pub fn new(account: &CheckoutAccount, http: ProviderHttp) -> Self {
        CheckoutConnector {
            base_url: account.base_url.trim_end_matches('/').to_owned(),
            secret_key: account.secret_key.clone(),
            webhook_secret: account.webhook_secret.clone(),
            http,
        }
    }

    /// `GET {path}` (`what` names it in errors); a read, so every failure may be retried.
    async fn read(&self, path: &str, what: &str) -> Result<HttpAnswer, ProviderError> {
        let request = self
            .http
            .client()
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(self.secret_key.expose())
            .build()
            .map_err(|e| KIT.unknown(format!("cannot build the {what}: {}", e.without_url())))?;
        self.http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer(what, e))
    }

    /// Reads the payment (`GET /payments/{id}`) and refuses a capture in another currency than
    /// its own. Every error here means the capture was not sent; one without a definite answer is
    /// still [`ProviderError::OutcomeUnknown`], the trait's only such variant.
    async fn check_currency(&self, payment_id: &str, asked: Currency) -> Result<(), ProviderError> {
        const WHAT: &str = "payment lookup (capture not sent)";
        let answer = self.read(&format!("/payments/{payment_id}"), WHAT).await?;
        if answer.status != StatusCode::OK {
            return Err(lookup_refusal(&answer));
        }
        let payment = mapping::payment_from_body(&answer.body).map_err(|detail| {
            tracing::warn!(status = 200, %detail, "unusable Checkout.com payment answer");
            KIT.unknown(format!("{WHAT}: {detail}"))
        })?;
        mapping::check_currency(&payment, asked).map_err(|failure| {
            let failure = ProviderFailure {
                debug_id: answer.header(REQUEST_ID_HEADER).map(str::to_owned),
                ..failure
            };
            tracing::warn!(payment_currency = %payment.currency, asked = %asked,
                "capture refused before sending: the payment is in another currency");
            KIT.rejected(Rejection::FailedPrecondition, failure, None)
        })
    }
}

#[async_trait]
impl Connector for CheckoutConnector {
    fn provider(&self) -> Provider {
        KIT.provider
    }

    fn check(&self, command: &CaptureCommand) -> Vec<FieldViolation> {
        let parts = command.parts();
        let mut violations = Vec::new();
        if let Some(Err(problem)) = parts.amount.as_ref().map(mapping::amount_to_wire) {
            violations.push(FieldViolation::new("amount.value", problem));
        }
        let too_long = parts
            .reference
            .as_ref()
            .is_some_and(|r| r.as_str().chars().count() > MAX_REFERENCE_CHARS);
        if too_long {
            violations.push(FieldViolation::new(
                "reference",
                format!("Checkout.com takes at most {MAX_REFERENCE_CHARS} characters"),
            ));
        }
        violations
    }

    #[tracing::instrument(
        skip_all,
        fields(provider = "checkout", payment_id = %call.command.parts().authorization_id)
    )]
    async fn capture(&self, call: CaptureCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        let parts = call.command.parts();
        let payment_id = parts.authorization_id.as_str();
        // Without an amount Checkout.com captures what remains, in the payment's own currency.
        if let Some(amount) = &parts.amount {
            self.check_currency(payment_id, amount.currency()).await?;
        }
        let body = mapping::request(call.command, call.idempotency_key)
            .and_then(|r| serde_json::to_vec(&r).map_err(|e| e.to_string()))
            .map_err(|e| {
                KIT.unknown(format!("cannot encode the capture request (not sent): {e}"))
            })?;
        let request = self
            .http
            .client()
            .post(format!("{}/payments/{payment_id}/captures", self.base_url))
            .bearer_auth(self.secret_key.expose())
            .header("Cko-Idempotency-Key", call.idempotency_key)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .build()
            .map_err(|e| {
                KIT.unknown(format!(
                    "cannot build the capture request: {}",
                    e.without_url()
                ))
            })?;
        // `Cko-Idempotency-Key` makes a resent capture return the first one's answer.
        let answer = self
            .http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer("capture", e))?;
        if answer.status != StatusCode::ACCEPTED {
            return Err(refusal(&answer, "capture"));
        }
        let outcome = mapping::outcome(&answer.body).map_err(|detail| {
            tracing::warn!(status = 202, request_id = answer.header(REQUEST_ID_HEADER).unwrap_or_default(),
                %detail, "unusable Checkout.com capture answer");
            KIT.unknown(detail)
        })?;
        tracing::info!(
            status = 202,
            action_id = outcome.provider_capture_id.as_deref().unwrap_or_default(),
            attempts = answer.attempts,
            "Checkout.com accepted the capture"
        );
        Ok(outcome)
    }

    /// Reads the payment's actions and reports the capture's: by its action id once known;
    /// before that (the capture call ended without a readable answer), by the `reference` we
    /// sent when exactly one capture carries it, else by re-sending the capture with its
    /// `Cko-Idempotency-Key`, which Checkout.com answers with the original. The re-send checks
    /// the payment's currency first, as the first attempt did: that attempt may have ended
    /// before its lookup answered, so the capture may never have been checked nor sent.
    #[tracing::instrument(skip_all, fields(
        provider = "checkout",
        payment_id = %capture.command.parts().authorization_id,
        capture_id = %capture.id,
    ))]
    async fn fetch_outcome(
        &self,
        capture: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        let parts = capture.command.parts();
        let payment_id = parts.authorization_id.as_str();
        let answer = self
            .read(&format!("/payments/{payment_id}/actions"), "actions lookup")
            .await?;
        if answer.status != StatusCode::OK {
            return Err(refusal(&answer, "actions lookup"));
        }
        let actions = mapping::actions_from_body(&answer.body).map_err(|detail| {
            tracing::warn!(status = 200, %detail, "unusable Checkout.com actions answer");
            KIT.unknown(detail)
        })?;
        let currency = parts
            .amount
            .or(parts.authorized_amount)
            .map(|m| m.currency());
        let mut captures = actions
            .into_iter()
            .filter(|(action, _)| action.kind == wire::Action::CAPTURE);
        let found = match capture.provider_capture_id.as_deref() {
            Some(action_id) => match captures.find(|(action, _)| action.id == action_id) {
                Some(found) => found,
                None => {
                    tracing::info!(action_id, "capture not listed yet");
                    return Ok(mapping::still_awaiting(action_id));
                }
            },
            None => {
                let sent = mapping::reference(&capture.command, &capture.id);
                let mut matching: Vec<_> = captures
                    .filter(|(action, _)| action.reference.as_deref() == Some(sent))
                    .collect();
                match (matching.pop(), matching.is_empty()) {
                    (Some(only), true) => only,
                    _ => {
                        tracing::info!("capture not identifiable by reference; re-sending it");
                        return self.capture(CaptureCall::of(capture)).await;
                    }
                }
            }
        };
        let (action, json) = found;
        let outcome = mapping::action_outcome(action, json, currency)
            .map_err(|detail| KIT.unknown(detail))?;
        tracing::info!(
            action_id = outcome.provider_capture_id.as_deref().unwrap_or_default(),
            capture_status = %outcome.status,
            "Checkout.com reported the capture"
        );
        Ok(outcome)
    }

    /// `Cko-Signature`, the HMAC of the body with the account's webhook secret.
    fn screen_webhook(&self, delivery: Delivery<'_>) -> Result<Screened, WebhookError> {
        webhook::verify(delivery, self.webhook_secret.as_ref())?;
        Ok(Screened::Trusted(Trust::Signed))
    }

    fn read_webhook(&self, body: &[u8], _trust: Trust) -> Result<WebhookEvent, WebhookError> {
        webhook::read(body)
    }
}

/// Turns a non-success answer into the error the caller sees.
fn refusal(answer: &HttpAnswer, what: &str) -> ProviderError {
    let status = answer.status;
    let failure = failure(answer, documented_description);
    tracing::warn!(
        status = failure.http_status, code = %failure.code,
        request_id = failure.debug_id.as_deref().unwrap_or(""), attempts = answer.attempts,
        "Checkout.com refused the {what}"
    );
    let rejection = match status {
        StatusCode::UNAUTHORIZED => Rejection::Unauthorized,
        // "Capture not allowed": voided, expired, already fully captured.
        StatusCode::FORBIDDEN => Rejection::FailedPrecondition,
        StatusCode::NOT_FOUND => Rejection::NotFound,
        StatusCode::UNPROCESSABLE_ENTITY => mapping::rejection(first_code(answer).as_deref()),
        StatusCode::TOO_MANY_REQUESTS => Rejection::RateLimited,
        // 5xx, other 2xx, redirects and undocumented 4xx: Checkout.com may have captured.
        _ => {
            return KIT.unknown(format!(
                "Checkout.com answered the {what} with HTTP {} ({})",
                status.as_u16(),
                failure.code
            ));
        }
    };
    KIT.rejected(rejection, failure, answer.retry_after())
}

/// Turns a non-200 payment lookup into the error the caller sees; the capture was not sent.
fn lookup_refusal(answer: &HttpAnswer) -> ProviderError {
    let rejection = match answer.status {
        StatusCode::NOT_FOUND => Rejection::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Rejection::Unauthorized,
        StatusCode::TOO_MANY_REQUESTS => Rejection::RateLimited,
        // 5xx, other 2xx, redirects and undocumented 4xx: no usable answer.
        status => {
            return KIT.unknown(format!(
                "Checkout.com answered the payment lookup with HTTP {} (capture not sent)",
                status.as_u16()
            ));
        }
    };
    let failure = failure(answer, lookup_description);
    tracing::warn!(
        status = failure.http_status, code = %failure.code,
        request_id = failure.debug_id.as_deref().unwrap_or(""), attempts = answer.attempts,
        "Checkout.com refused the payment lookup; capture not sent"
    );
    KIT.rejected(rejection, failure, answer.retry_after())
}

/// Checkout.com's error as a failure: `code` is the first of `error_codes` (else `error_type`,
/// else `HTTP_<status>` for the documented answers without a body), `message` every code,
/// `debug_id` the `request_id` (else the `Cko-Request-Id` header). `describe` words the answers
/// without a body.
fn failure(answer: &HttpAnswer, describe: fn(StatusCode) -> String) -> ProviderFailure {
    let body: wire::ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
    let status = answer.status;
    let codes = body.error_codes.join(", ");
    let message = match (&body.error_type, codes.is_empty()) {
        (Some(kind), false) => format!("{kind}: {codes}"),
        (None, false) => codes,
        (Some(kind), true) => kind.clone(),
        (None, true) => describe(status),
    };
    ProviderFailure {
        code: body
            .error_codes
            .first()
            .cloned()
            .or(body.error_type)
            .unwrap_or_else(|| format!("HTTP_{}", status.as_u16())),
        message,
        debug_id: body
            .request_id
            .or_else(|| answer.header(REQUEST_ID_HEADER).map(str::to_owned)),
        http_status: status.as_u16(),
    }
}

/// How Checkout.com's capture reference describes its answers without a body.
fn documented_description(status: StatusCode) -> String {
    match status {
        StatusCode::UNAUTHORIZED => "Unauthorized".to_owned(),
        StatusCode::FORBIDDEN => "Capture not allowed".to_owned(),
        StatusCode::NOT_FOUND => "Payment not found".to_owned(),
        StatusCode::TOO_MANY_REQUESTS => "Too many requests".to_owned(),
        other => other.canonical_reason().unwrap_or("").to_owned(),
    }
}

/// How the payment lookup's answers without a body read: a 403 there refuses the read, not a
/// capture.
fn lookup_description(status: StatusCode) -> String {
    match status {
        StatusCode::FORBIDDEN => "Not allowed to read the payment".to_owned(),
        other => documented_description(other),
    }
}

fn first_code(answer: &HttpAnswer) -> Option<String> {
    let body: wire::ErrorBody = serde_json::from_slice(&answer.body).ok()?;
    body.error_codes.into_iter().next()
}
