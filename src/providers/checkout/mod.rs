//! Checkout.com connector: the capture call with its headers, the payment lookup that guards its
//! currency, the actions lookup that confirms it, and the reading of Checkout.com's error
//! answers. Wire types live in [`wire`], their conversion to and from the domain in `mapping`.
//!
//! A capture's `amount` carries no currency: it is taken in the payment's, fixed at
//! authorization. So before a capture with an amount, `GET /payments/{id}` reads the payment and
//! a capture in another currency is refused (`currency_mismatch`) without being sent.
//!
//! Checkout.com answers a capture, and a void (the release), with **202 Accepted**: it is
//! recorded as `PENDING` (`AWAITING_PROVIDER_CONFIRMATION`) with the action id, and
//! [`Connector::fetch_outcome`] / [`Connector::fetch_release_outcome`] read
//! `GET /payments/{id}/actions` to learn whether the action was approved. The actions list, not
//! the payment's status, decides: it names the action itself, approved or declined (a card
//! scheme may decline a void: `payment_void_declined`), where the payment's status could not tell
//! a declined void from one not processed yet.

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
use super::{CaptureCall, Connector, ProviderError, Rejection, ReleaseCall};
use crate::config::Secret;
use crate::domain::outcome::ProviderFailure;
use crate::domain::{
    CaptureCommand, CaptureRecord, Currency, FieldViolation, Provider, ProviderOutcome,
    ReleaseMechanism, ReleaseRules,
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

    /// `POST {path}` with `body` (the `what` request), under `Cko-Idempotency-Key`, which makes a
    /// resent request return the first one's answer: every failure may be retried.
    async fn post(
        &self,
        path: &str,
        idempotency_key: &str,
        body: Vec<u8>,
        what: &str,
    ) -> Result<HttpAnswer, ProviderError> {
        let request = self
            .http
            .client()
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(self.secret_key.expose())
            .header("Cko-Idempotency-Key", idempotency_key)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .build()
            .map_err(|e| {
                KIT.unknown(format!(
                    "cannot build the {what} request: {}",
                    e.without_url()
                ))
            })?;
        self.http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer(what, e))
    }

    /// Finds `record`'s action of `kind` among its payment's actions: by the action id the 202
    /// gave, once known; else by `reference` when exactly one action of that kind carries it.
    async fn find_action(
        &self,
        record: &CaptureRecord,
        kind: &str,
        reference: &str,
    ) -> Result<Listed, ProviderError> {
        let payment_id = record.command.parts().authorization_id.as_str();
        let answer = self
            .read(&format!("/payments/{payment_id}/actions"), "actions lookup")
            .await?;
        if answer.status != StatusCode::OK {
            return Err(refusal(&answer, "actions lookup", documented_description));
        }
        let actions = mapping::actions_from_body(&answer.body).map_err(|detail| {
            tracing::warn!(status = 200, %detail, "unusable Checkout.com actions answer");
            KIT.unknown(detail)
        })?;
        let mut of_kind = actions
            .into_iter()
            .filter(|(action, _)| action.kind == kind);
        let listed = match record.provider_capture_id.as_deref() {
            Some(action_id) => match of_kind.find(|(action, _)| action.id == action_id) {
                Some((action, json)) => Listed::Found(action, json),
                None => Listed::NotYet(action_id.to_owned()),
            },
            None => {
                let mut matching: Vec<_> = of_kind
                    .filter(|(action, _)| action.reference.as_deref() == Some(reference))
                    .collect();
                match (matching.pop(), matching.is_empty()) {
                    (Some((action, json)), true) => Listed::Found(action, json),
                    _ => Listed::Unidentified,
                }
            }
        };
        match &listed {
            Listed::Found(action, _) => {
                tracing::info!(action_id = %action.id, kind, "action listed")
            }
            Listed::NotYet(action_id) => tracing::info!(action_id, kind, "action not listed yet"),
            Listed::Unidentified => {
                tracing::info!(kind, "action not identifiable by reference; re-sending it")
            }
        }
        Ok(listed)
    }

    /// After a 403 to a void: the release done when the payment is `Voided` already, else `None`
    /// (also when the payment cannot be read: the 403 then stands).
    async fn voided_already(&self, payment_id: &str) -> Option<ProviderOutcome> {
        let answer = self
            .read(&format!("/payments/{payment_id}"), "payment lookup")
            .await
            .ok()?;
        let payment = (answer.status == StatusCode::OK)
            .then(|| mapping::payment_from_body(&answer.body).ok())
            .flatten()?;
        let done = mapping::already_voided(&payment)?;
        tracing::info!(
            payment_id,
            "void refused on a payment Voided already: released"
        );
        Some(done)
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
        let path = format!("/payments/{payment_id}/captures");
        let answer = self
            .post(&path, call.idempotency_key, body, "capture")
            .await?;
        if answer.status != StatusCode::ACCEPTED {
            return Err(refusal(&answer, "capture", documented_description));
        }
        accepted(&answer, "capture")
    }

    /// A void releases the authorization before any capture and, for American Express,
    /// Mastercard and Visa, the rest of a partially captured payment; a capture with
    /// `capture_type: Final` (which this connector sends for a closing capture) voids the rest by
    /// itself.
    fn release_rules(&self) -> ReleaseRules {
        ReleaseRules {
            before_capture: ReleaseMechanism::Call,
            after_partial_capture: ReleaseMechanism::Call,
            final_capture_releases: true,
        }
    }

    /// `POST /payments/{id}/voids` with our reference and `Cko-Idempotency-Key`, answered 202:
    /// accepted, `PENDING` until the void action is approved. A 403 ("Void not allowed") on a
    /// payment that is `Voided` already is the release done (see `mapping::already_voided`).
    #[tracing::instrument(
        skip_all,
        fields(provider = "checkout", payment_id = %call.authorization_id)
    )]
    async fn release(&self, call: ReleaseCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        let payment_id = call.authorization_id.as_str();
        let body = serde_json::to_vec(&mapping::void_request(call.idempotency_key))
            .map_err(|e| KIT.unknown(format!("cannot encode the void request (not sent): {e}")))?;
        let path = format!("/payments/{payment_id}/voids");
        let answer = self.post(&path, call.idempotency_key, body, "void").await?;
        match answer.status {
            StatusCode::ACCEPTED => accepted(&answer, "void"),
            StatusCode::FORBIDDEN => match self.voided_already(payment_id).await {
                Some(done) => Ok(done),
                None => Err(refusal(&answer, "void", void_description)),
            },
            _ => Err(refusal(&answer, "void", void_description)),
        }
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
        let reference = mapping::reference(&capture.command, &capture.id);
        let (action, json) = match self
            .find_action(capture, wire::Action::CAPTURE, reference)
            .await?
        {
            Listed::Found(action, json) => (action, json),
            Listed::NotYet(action_id) => return Ok(mapping::still_awaiting(&action_id)),
            Listed::Unidentified => return self.capture(CaptureCall::of(capture)).await,
        };
        let currency = parts
            .amount
            .or(parts.authorized_amount)
            .map(|m| m.currency());
        reported(mapping::action_outcome(action, json, currency), "capture")
    }

    /// Reads the payment's actions and reports the void's, found as a capture's is (by action
    /// id, else by our reference): approved is `COMPLETED`, declined (the card scheme refused the
    /// void) `DECLINED`, not processed yet `PENDING`. A void found nowhere is sent again with its
    /// `Cko-Idempotency-Key`.
    #[tracing::instrument(skip_all, fields(
        provider = "checkout",
        payment_id = %release.command.parts().authorization_id,
        release_id = %release.id,
    ))]
    async fn fetch_release_outcome(
        &self,
        release: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        let call = ReleaseCall::of(release);
        match self
            .find_action(release, wire::Action::VOID, call.idempotency_key)
            .await?
        {
            // A void captures nothing: no amount to read.
            Listed::Found(action, json) => {
                reported(mapping::action_outcome(action, json, None), "void")
            }
            Listed::NotYet(action_id) => Ok(mapping::still_awaiting(&action_id)),
            Listed::Unidentified => self.release(call).await,
        }
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

/// Where an action stands among its payment's actions.
enum Listed {
    /// Listed: the action, with its JSON for the stored body.
    Found(wire::Action, serde_json::Value),
    /// Accepted under this action id, not listed yet.
    NotYet(String),
    /// No action id known, and the reference names no single action of the kind: the request
    /// may never have arrived.
    Unidentified,
}

/// The 202 answer to the `what` request: accepted, to be confirmed later.
fn accepted(answer: &HttpAnswer, what: &str) -> Result<ProviderOutcome, ProviderError> {
    let outcome = mapping::outcome(&answer.body).map_err(|detail| {
        tracing::warn!(status = 202, request_id = answer.header(REQUEST_ID_HEADER).unwrap_or_default(),
            %detail, "unusable Checkout.com {what} answer");
        KIT.unknown(detail)
    })?;
    tracing::info!(
        status = 202,
        action_id = outcome.provider_capture_id.as_deref().unwrap_or_default(),
        attempts = answer.attempts,
        "Checkout.com accepted the {what}"
    );
    Ok(outcome)
}

/// What a listed action reports about the `what`, logged; unreadable is unknown.
fn reported(
    read: Result<ProviderOutcome, String>,
    what: &str,
) -> Result<ProviderOutcome, ProviderError> {
    let outcome = read.map_err(|detail| KIT.unknown(detail))?;
    tracing::info!(
        action_id = outcome.provider_capture_id.as_deref().unwrap_or_default(),
        status = %outcome.status,
        "Checkout.com reported the {what}"
    );
    Ok(outcome)
}

/// Turns a non-success answer to the `what` request into the error the caller sees; `describe`
/// words the documented answers without a body.
fn refusal(answer: &HttpAnswer, what: &str, describe: fn(StatusCode) -> String) -> ProviderError {
    let status = answer.status;
    let failure = failure(answer, describe);
    tracing::warn!(
        status = failure.http_status, code = %failure.code,
        request_id = failure.debug_id.as_deref().unwrap_or(""), attempts = answer.attempts,
        "Checkout.com refused the {what}"
    );
    let rejection = match status {
        StatusCode::UNAUTHORIZED => Rejection::Unauthorized,
        // "Capture not allowed" (voided, expired, fully captured), "Void not allowed".
        StatusCode::FORBIDDEN => Rejection::FailedPrecondition,
        StatusCode::NOT_FOUND => Rejection::NotFound,
        StatusCode::UNPROCESSABLE_ENTITY => mapping::rejection(first_code(answer).as_deref()),
        StatusCode::TOO_MANY_REQUESTS => Rejection::RateLimited,
        // 5xx, other 2xx, redirects and undocumented 4xx: Checkout.com may have acted.
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

/// How Checkout.com's void reference describes its answers without a body.
fn void_description(status: StatusCode) -> String {
    match status {
        StatusCode::FORBIDDEN => "Void not allowed".to_owned(),
        other => documented_description(other),
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
