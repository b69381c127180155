//! Stax (formerly Fattmerchant) connector: `POST {base}/transaction/{id}/capture` with the
//! merchant's API key as a bearer token, and the reading of Stax's answers and error bodies.
//! Wire types and the exact JSON-number helpers live in [`wire`], their conversion to and from
//! the domain in `mapping`.
//!
//! Idempotency: Stax documents `idempotency_id` for captures (seed 002), sent in the body with
//! every capture as the capture's stable key, so a resent capture gets the first one's answer.
//! Captures therefore go out under [`RetryPolicy::Idempotent`]. No `Idempotency-Key` header is
//! sent: Stax does not document one.
//!
//! Currency: a capture's `total` carries none; Stax takes it in the pre-authorization's
//! currency. So a capture of an amount first reads the pre-authorization
//! (`GET {base}/transaction/{id}`) and is refused, unsent, when its currency is another one
//! ([`mapping::CURRENCY_MISMATCH`]). A full capture (no amount) names no currency to compare.

mod account;
#[cfg(test)]
mod fuzz;
mod mapping;
pub mod wire;

use async_trait::async_trait;
use http::StatusCode;

use super::http::{HttpAnswer, ProviderHttp, RetryPolicy};
use super::kit::Kit;
use super::{CaptureCall, Connector, ProviderError, Rejection, ReleaseCall};
use crate::config::Secret;
use crate::domain::capture::is_path_segment;
use crate::domain::outcome::ProviderFailure;
use crate::domain::{
    CaptureCommand, CaptureRecord, Currency, FieldViolation, Provider, ProviderOutcome,
    ReleaseMechanism, ReleaseRules,
};

pub use account::StaxAccount;

/// The rules every connector shares, for Stax.
const KIT: Kit = Kit::new(Provider::Stax);

/// Significant digits a `total` may have. Stax takes a JSON number, and RFC 8259 (§6) warns
/// that only what an IEEE 754 double holds exactly (15 significant digits) is read the same by
/// every JSON implementation; beyond that the amount could be changed on the way.
pub const MAX_TOTAL_DIGITS: usize = 15;

/// Response header some Stax gateways add to correlate a request in their logs.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// Captures at one configured Stax merchant account.
pub struct StaxConnector {
    /// Without a trailing slash.
    base_url: String,
    api_key: Secret,
    http: ProviderHttp,
}

impl StaxConnector {
    pub fn new(account: &StaxAccount, http: ProviderHttp) -> Self {
        StaxConnector {
            base_url: account.base_url.trim_end_matches('/').to_owned(),
            api_key: account.api_key.clone(),
            http,
        }
    }

    /// Sends a request built by `build` with the API key and JSON headers.
    async fn send(
        &self,
        what: &str,
        builder: reqwest::RequestBuilder,
    ) -> Result<HttpAnswer, ProviderError> {
        let request = builder
            .bearer_auth(self.api_key.expose())
            .header(http::header::ACCEPT, "application/json")
            .build()
            .map_err(|e| KIT.unknown(format!("cannot build the {what}: {}", e.without_url())))?;
        // Captures carry `idempotency_id`; lookups have no effect; a void sent twice finds the
        // pre-authorization voided, which `classify_void` reads as done: all may be retried.
        self.http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer(what, e))
    }

    /// Captures after checking the pre-authorization's currency when the command has an amount.
    /// `Ok(Err(failure))` is a capture refused, unsent, for a currency mismatch: the caller
    /// decides what that refusal means.
    async fn checked_capture(
        &self,
        call: CaptureCall<'_>,
    ) -> Result<Result<ProviderOutcome, ProviderFailure>, ProviderError> {
        let transaction_id = call.command.parts().authorization_id.as_str();
        if let Some(amount) = &call.command.parts().amount {
            if let Err(failure) = self
                .check_currency(transaction_id, amount.currency())
                .await?
            {
                return Ok(Err(failure));
            }
        }
        let url = format!("{}/transaction/{transaction_id}/capture", self.base_url);
        let body = mapping::request(call.command, call.idempotency_key)
            .map_err(|e| KIT.unknown(format!("cannot encode the capture request: {e}")))?;
        let builder = self
            .http
            .client()
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        let answer = self.send("capture", builder).await?;
        classify(answer, call.command).map(Ok)
    }

    /// Reads the pre-authorization (`GET /transaction/{id}`) and compares its currency with
    /// `asked`. `Ok(Err(failure))`: they differ. A 404, 401/403 or 429 is Stax's refusal; any
    /// other answer, or an unreadable one, is unknown (nothing was captured, but the capture
    /// cannot go out unchecked).
    async fn check_currency(
        &self,
        transaction_id: &str,
        asked: Currency,
    ) -> Result<Result<(), ProviderFailure>, ProviderError> {
        let url = format!("{}/transaction/{transaction_id}", self.base_url);
        let what = "pre-authorization lookup";
        let answer = self.send(what, self.http.client().get(url)).await?;
        if answer.status != StatusCode::OK {
            let documented = matches!(
                answer.status,
                StatusCode::NOT_FOUND
                    | StatusCode::UNAUTHORIZED
                    | StatusCode::FORBIDDEN
                    | StatusCode::TOO_MANY_REQUESTS
            );
            let refused = documented.then(|| refusal(&answer, mapping::code_for_400));
            if let Some((rejection, failure)) = refused.flatten() {
                return Err(KIT.refused(&answer, what, rejection, failure));
            }
            tracing::warn!(
                status = answer.status.as_u16(),
                attempts = answer.attempts,
                request_id = answer.header(REQUEST_ID_HEADER).unwrap_or_default(),
                "Stax gave no definite answer to the pre-authorization lookup"
            );
            return Err(KIT.unknown(format!(
                "Stax answered the pre-authorization lookup with HTTP {} (capture not sent)",
                answer.status.as_u16()
            )));
        }
        let held = wire::pre_auth_currency(&answer.body)
            .map_err(|e| KIT.unknown(format!("{e} (capture not sent)")))?;
        // Without a currency Stax gives nothing to compare: the capture goes out as asked rather
        // than refused on a guess; the capture answer's currency is still checked (`classify`).
        let Some(held) = held else {
            tracing::info!("the Stax pre-authorization names no currency; capturing unchecked");
            return Ok(Ok(()));
        };
        let checked = mapping::check_currency(transaction_id, &held, asked);
        if let Err(failure) = &checked {
            tracing::warn!(code = %failure.code, held = %held, asked = %asked,
                "capture not sent: the pre-authorization is in another currency");
        }
        Ok(checked)
    }
}

#[async_trait]
impl Connector for StaxConnector {
    fn provider(&self) -> Provider {
        KIT.provider
    }

    /// Refuses what a Stax capture cannot carry: an amount with more significant digits than a
    /// JSON number keeps exactly, and the PayPal-only fields (Stax has no invoice, payer note,
    /// soft descriptor, platform fees or disbursement mode on a capture; dropping them silently
    /// would mislead). `final_capture` is accepted: Stax has no such flag, so it is enforced by
    /// the service's ledger only (later captures are refused here; Stax keeps the rest held
    /// until the pre-authorization expires).
    fn check(&self, command: &CaptureCommand) -> Vec<FieldViolation> {
        let parts = command.parts();
        let mut violations = Vec::new();
        if let Some(amount) = &parts.amount {
            if amount.minor_units().unsigned_abs().to_string().len() > MAX_TOTAL_DIGITS {
                violations.push(FieldViolation::new(
                    "amount.value",
                    format!("Stax takes at most {MAX_TOTAL_DIGITS} significant digits"),
                ));
            }
        }
        let unsupported = [
            ("invoice_id", parts.invoice_id.is_some()),
            ("note_to_payer", parts.note_to_payer.is_some()),
            ("soft_descriptor", parts.soft_descriptor.is_some()),
            ("platform_fees", !parts.platform_fees.is_empty()),
            ("disbursement_mode", parts.disbursement_mode.is_some()),
        ];
        for (field, set) in unsupported {
            if set {
                violations.push(FieldViolation::new(
                    field,
                    "Stax captures have no such field; leave it unset",
                ));
            }
        }
        let reference_key = mapping::REFERENCE_META_KEY;
        if parts.reference.is_some() && parts.metadata.entries().contains_key(reference_key) {
            violations.push(FieldViolation::new(
                "metadata",
                format!(
                    "key {reference_key:?} is where Stax receives `reference`; use another key"
                ),
            ));
        }
        violations
    }

    #[tracing::instrument(
        skip_all,
        fields(provider = "stax", authorization_id = %call.command.parts().authorization_id)
    )]
    async fn capture(&self, call: CaptureCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        self.checked_capture(call)
            .await?
            .map_err(|failure| KIT.rejected(Rejection::FailedPrecondition, failure, None))
    }

    /// A void releases a pre-authorization not captured yet. Stax's seed says that after a partial
    /// capture "remaining pre-authorized funds may need to be released": the void is the call for
    /// that (*unconfirmed* whether it releases the rest of a partly captured pre-authorization).
    /// Stax has no final-capture flag.
    fn release_rules(&self) -> ReleaseRules {
        ReleaseRules {
            before_capture: ReleaseMechanism::Call,
            after_partial_capture: ReleaseMechanism::Call,
            final_capture_releases: false,
        }
    }

    /// `POST /transaction/{id}/void` with no body, under the capture's headers; answered with a
    /// transaction (`mapping::void_outcome`). A 400 saying the pre-authorization is voided
    /// already is the release done.
    #[tracing::instrument(
        skip_all,
        fields(provider = "stax", authorization_id = %call.authorization_id)
    )]
    async fn release(&self, call: ReleaseCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        let pre_auth_id = call.authorization_id.as_str();
        let url = format!("{}/transaction/{pre_auth_id}/void", self.base_url);
        let answer = self.send("void", self.http.client().post(url)).await?;
        classify_void(answer, pre_auth_id)
    }

    /// `GET /transaction/{id}` once Stax's transaction id is known; before that, the capture
    /// re-sent with its `idempotency_id`, which Stax answers with the original result.
    ///
    /// A currency mismatch found then is not a refusal but an unknown outcome: the capture is
    /// not re-sent, yet an attempt made before the currency check existed may have been
    /// captured (in the pre-authorization's currency), so it must not be settled as failed.
    #[tracing::instrument(skip_all, fields(provider = "stax", capture_id = %capture.id))]
    async fn fetch_outcome(
        &self,
        capture: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        let Some(stax_id) = capture
            .provider_capture_id
            .as_deref()
            .filter(|id| is_path_segment(id))
        else {
            let call = CaptureCall::of(capture);
            return self.checked_capture(call).await?.map_err(|failure| {
                KIT.unknown(format!(
                    "{} (an earlier attempt may have captured in that currency)",
                    failure.message
                ))
            });
        };
        let url = format!("{}/transaction/{stax_id}", self.base_url);
        let answer = self
            .send("transaction lookup", self.http.client().get(url))
            .await?;
        classify(answer, &capture.command)
    }

    /// Stax's webhook signature is not confirmed in our material: a delivery is taken only as
    /// a hint to look its capture up (`fetch_outcome`), never believed.
    fn screen_webhook(
        &self,
        _delivery: crate::providers::webhook::Delivery<'_>,
    ) -> Result<crate::providers::webhook::Screened, crate::providers::webhook::WebhookError> {
        Ok(crate::providers::webhook::Screened::Trusted(
            crate::providers::webhook::Trust::Hint,
        ))
    }

    /// The ids it names (`event`, which names the event in logs, is an *unconfirmed* field name).
    fn read_webhook(
        &self,
        body: &[u8],
        _trust: crate::providers::webhook::Trust,
    ) -> Result<crate::providers::webhook::WebhookEvent, crate::providers::webhook::WebhookError>
    {
        Ok(crate::providers::webhook::hint(body, "event"))
    }
}

/// Turns the final answer into an outcome or an error.
fn classify(
    answer: HttpAnswer,
    command: &CaptureCommand,
) -> Result<ProviderOutcome, ProviderError> {
    let status = answer.status;
    let request_id = answer.header(REQUEST_ID_HEADER).map(str::to_owned);
    if status == StatusCode::OK {
        let outcome = mapping::outcome(&answer.body, command).map_err(|detail| {
            tracing::warn!(status = status.as_u16(), request_id = request_id.as_deref().unwrap_or(""),
                %detail, "unusable Stax transaction answer");
            KIT.unknown(detail)
        })?;
        tracing::info!(
            status = status.as_u16(), capture_status = %outcome.status,
            transaction_id = outcome.provider_capture_id.as_deref().unwrap_or(""),
            request_id = request_id.as_deref().unwrap_or(""),
            attempts = answer.attempts, "Stax answered the capture"
        );
        return Ok(outcome);
    }
    Err(refused_or_unknown(
        &answer,
        "capture",
        mapping::code_for_400,
    ))
}

/// Turns the void's final answer into an outcome or an error.
fn classify_void(answer: HttpAnswer, pre_auth_id: &str) -> Result<ProviderOutcome, ProviderError> {
    let status = answer.status;
    let request_id = answer.header(REQUEST_ID_HEADER).unwrap_or_default();
    let voided_already = (status == StatusCode::BAD_REQUEST)
        .then(|| message_of(&answer))
        .filter(|message| mapping::says_already_voided(message));
    let outcome = match (status, voided_already) {
        (StatusCode::OK, _) => {
            mapping::void_outcome(&answer.body, pre_auth_id).map_err(|detail| {
                tracing::warn!(status = 200, request_id, %detail, "unusable Stax void answer");
                KIT.unknown(detail)
            })?
        }
        (_, Some(message)) => mapping::already_voided(pre_auth_id, message),
        _ => {
            return Err(refused_or_unknown(
                &answer,
                "void",
                mapping::void_code_for_400,
            ))
        }
    };
    tracing::info!(
        status = status.as_u16(), release_status = %outcome.status,
        provider_status = %outcome.provider_status, request_id,
        attempts = answer.attempts, "Stax answered the void"
    );
    Ok(outcome)
}

/// A documented refusal of the `what` request, logged, or else an unknown outcome;
/// `code_for_400` names a 400 from its words.
fn refused_or_unknown(
    answer: &HttpAnswer,
    what: &str,
    code_for_400: fn(&str) -> &'static str,
) -> ProviderError {
    let Some((rejection, failure)) = refusal(answer, code_for_400) else {
        // 5xx, other 2xx, redirects and undocumented 4xx: Stax may have acted.
        tracing::warn!(
            status = answer.status.as_u16(),
            request_id = answer.header(REQUEST_ID_HEADER).unwrap_or_default(),
            attempts = answer.attempts,
            "Stax gave no definite answer to the {what}"
        );
        return KIT.unknown(format!(
            "Stax answered the {what} with HTTP {}",
            answer.status.as_u16()
        ));
    };
    KIT.refused(answer, what, rejection, failure)
}

/// What a documented error answer refuses, read from its status and body (a 400's code from its
/// words by `code_for_400`); `None` for any other answer.
fn refusal(
    answer: &HttpAnswer,
    code_for_400: fn(&str) -> &'static str,
) -> Option<(Rejection, ProviderFailure)> {
    let status = answer.status;
    let (rejection, code, message) = match status {
        StatusCode::BAD_REQUEST => {
            let message = message_of(answer);
            let code = code_for_400(&message).to_owned();
            (Rejection::FailedPrecondition, code, message)
        }
        StatusCode::NOT_FOUND => (Rejection::NotFound, "NOT_FOUND".into(), message_of(answer)),
        StatusCode::UNPROCESSABLE_ENTITY => {
            let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
            let (code, message) = mapping::validation_failure(&body)
                .unwrap_or_else(|| ("UNPROCESSABLE_ENTITY".to_owned(), message_of(answer)));
            (Rejection::InvalidArgument, code, message)
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            let code = if status == StatusCode::UNAUTHORIZED {
                "UNAUTHORIZED"
            } else {
                "FORBIDDEN"
            };
            (Rejection::Unauthorized, code.into(), message_of(answer))
        }
        StatusCode::TOO_MANY_REQUESTS => (
            Rejection::RateLimited,
            "RATE_LIMITED".into(),
            message_of(answer),
        ),
        _ => return None,
    };
    Some((rejection, failure(answer, code, message)))
}

fn failure(answer: &HttpAnswer, code: String, message: String) -> ProviderFailure {
    ProviderFailure {
        code,
        message,
        debug_id: answer.header(REQUEST_ID_HEADER).map(str::to_owned),
        http_status: answer.status.as_u16(),
    }
}

/// The message of an error body, else the status's reason phrase.
fn message_of(answer: &HttpAnswer) -> String {
    serde_json::from_slice::<serde_json::Value>(&answer.body)
        .ok()
        .and_then(|body| mapping::error_message(&body))
        .unwrap_or_else(|| answer.status.canonical_reason().unwrap_or("").to_owned())
}
