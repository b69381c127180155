//! PaymentOptions server-to-server connector (seed 001): the capture and void calls with their
//! two keys, and the reading of PaymentOptions' answers. Wire types live in [`wire`], their conversion to
//! and from the domain (and the masking of the card number the answer carries) in `mapping`.
//!
//! What PaymentOptions offers and what follows:
//! - One capture per authorization, of at most the authorized amount; a smaller capture
//!   releases the rest. The amount is required (no full-amount default), an integer in the
//!   currency's minor unit of at most 10 digits; the request names no currency.
//! - No idempotency key: a capture is sent with [`RetryPolicy::NotIdempotent`] (retried only
//!   when it provably was not sent). A re-sent capture that went through the first time is
//!   answered `response_code` 94 (duplicate), which is an unknown outcome, never a failure.
//! - No capture lookup: `fetch_outcome` cannot resolve anything and says so.
//! - The void (the release) has no idempotency key either, and how PaymentOptions answers a
//!   second void of one authorization is not documented: see `fetch_release_outcome`.
//! - The answer carries the full card number; `mapping::read_body` masks it before anything
//!   else reads the answer. Bodies are never logged.

mod account;
#[cfg(test)]
mod fuzz;
mod mapping;
pub mod wire;

use async_trait::async_trait;
use http::{HeaderValue, StatusCode};

use super::http::{HttpAnswer, ProviderHttp, RetryPolicy};
use super::kit::Kit;
use super::{CaptureCall, Connector, ProviderError, Rejection, ReleaseCall};
use crate::config::Secret;
use crate::domain::outcome::ProviderFailure;
use crate::domain::{
    CaptureCommand, CaptureRecord, CaptureStatus, FieldViolation, Provider, ProviderOutcome,
    ReleaseMechanism, ReleaseRules,
};
use mapping::{Meaning, Parsed};

pub use account::PaymentOptionsAccount;

/// The rules every connector shares, for PaymentOptions.
const KIT: Kit = Kit::new(Provider::PaymentOptions);

/// The interface's path, after the configurable path prefix; its endpoints are `/capture` and
/// `/void`.
const INTERFACE_PATH: &str = "/server-to-server-interface";

/// Captures at one configured PaymentOptions merchant.
pub struct PaymentOptionsConnector {
    /// `{base_url}{path_prefix}/server-to-server-interface`.
    interface_url: String,
    /// Sent verbatim after `Basic `: PaymentOptions issues it already encoded.
    basic_key: Secret,
    /// Sent as `x-api-key`.
    api_key: Secret,
    merchant_id: String,
    http: ProviderHttp,
}

impl PaymentOptionsConnector {
    pub fn new(account: &PaymentOptionsAccount, http: ProviderHttp) -> Self {
        PaymentOptionsConnector {
            interface_url: interface_url(&account.base_url, &account.path_prefix),
            basic_key: account.basic_key.clone(),
            api_key: account.api_key.clone(),
            merchant_id: account.merchant_id.clone(),
            http,
        }
    }

    /// The request to `endpoint` (`capture`, `void`) with its headers; credentials are marked
    /// sensitive so no `Debug` of the request shows them.
    fn build_request(
        &self,
        endpoint: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Request, ProviderError> {
        let authorization = secret_header(&format!("Basic {}", self.basic_key.expose()))?;
        let api_key = secret_header(self.api_key.expose())?;
        self.http
            .client()
            .post(format!("{}/{endpoint}", self.interface_url))
            .header(http::header::AUTHORIZATION, authorization)
            .header("x-api-key", api_key)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .build()
            .map_err(|e| {
                KIT.unknown(format!(
                    "cannot build the {endpoint} request: {}",
                    e.without_url()
                ))
            })
    }

    /// Sends the request to `endpoint` once more only when it provably never left: neither call
    /// has an idempotency key.
    async fn send(&self, endpoint: &str, body: Vec<u8>) -> Result<HttpAnswer, ProviderError> {
        let request = self.build_request(endpoint, body)?;
        self.http
            .send(request, RetryPolicy::NotIdempotent)
            .await
            .map_err(|e| KIT.unknown(format!("{endpoint}: {e}")))
    }
}

/// `base_url` + `/prefix` + the interface's path, with exactly one slash at each joint.
fn interface_url(base_url: &str, path_prefix: &str) -> String {
    let base = base_url.trim_end_matches('/');
    match path_prefix.trim_matches('/') {
        "" => format!("{base}{INTERFACE_PATH}"),
        prefix => format!("{base}/{prefix}{INTERFACE_PATH}"),
    }
}

/// A credential as a header value. One that cannot be a header is a configuration problem,
/// found before anything is sent.
fn secret_header(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        KIT.rejected(
            Rejection::Unauthorized,
            ProviderFailure {
                code: "INVALID_CREDENTIAL_FORMAT".to_owned(),
                message: "a configured PaymentOptions key is not a valid HTTP header value; \
                          nothing was sent"
                    .to_owned(),
                debug_id: None,
                http_status: 0,
            },
            None,
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[async_trait]
impl Connector for PaymentOptionsConnector {
    fn provider(&self) -> Provider {
        KIT.provider
    }

    fn check(&self, command: &CaptureCommand) -> Vec<FieldViolation> {
        let parts = command.parts();
        let mut violations = Vec::new();
        let mut refuse = |field: &str, description: String| {
            violations.push(FieldViolation::new(field, description));
        };
        if parts.authorization_id.as_str().chars().count() > mapping::MAX_TRANSACTION_ID_CHARS {
            refuse(
                "authorization_id",
                format!(
                    "PaymentOptions' transactionId takes at most {} characters",
                    mapping::MAX_TRANSACTION_ID_CHARS
                ),
            );
        }
        match &parts.amount {
            None => refuse(
                "amount",
                "PaymentOptions needs the amount to capture: its capture has no full-amount \
                 default"
                    .to_owned(),
            ),
            Some(amount) if amount.minor_units() > mapping::MAX_AMOUNT_MINOR_UNITS => refuse(
                "amount.value",
                format!(
                    "PaymentOptions takes at most 10 digits of {} minor units ({} decimals)",
                    amount.currency().code(),
                    amount.currency().exponent()
                ),
            ),
            Some(_) => {}
        }
        if let Some((field, text)) = mapping::notes(command) {
            if text.chars().count() > mapping::MAX_NOTES_CHARS {
                refuse(
                    field,
                    format!(
                        "sent as PaymentOptions' notes, which take at most {} characters",
                        mapping::MAX_NOTES_CHARS
                    ),
                );
            }
        }
        let absent = "PaymentOptions' capture has no such field";
        if parts.invoice_id.is_some() {
            refuse("invoice_id", absent.to_owned());
        }
        if parts.soft_descriptor.is_some() {
            refuse("soft_descriptor", absent.to_owned());
        }
        if !parts.platform_fees.is_empty() {
            refuse("platform_fees", absent.to_owned());
        }
        if parts.disbursement_mode.is_some() {
            refuse("disbursement_mode", absent.to_owned());
        }
        violations
    }

    #[tracing::instrument(skip_all, fields(
        provider = "payment_options",
        authorization_id = %call.command.parts().authorization_id,
        capture_id = %call.idempotency_key,
    ))]
    async fn capture(&self, call: CaptureCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        let Some(request) = mapping::request(call.command, &self.merchant_id) else {
            return Err(KIT.rejected(
                Rejection::InvalidArgument,
                ProviderFailure {
                    code: "AMOUNT_REQUIRED".to_owned(),
                    message: "PaymentOptions needs the amount to capture; nothing was sent"
                        .to_owned(),
                    debug_id: None,
                    http_status: 0,
                },
                None,
            ));
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| KIT.unknown(format!("cannot encode the capture request: {e}")))?;
        let answer = self.send("capture", body).await?;
        classify(&answer, Sent::Capture(call.command))
    }

    /// A void releases an authorization not captured yet; a capture of less than the authorized
    /// amount releases the rest by itself ("If the capture is for a lesser amount, the remaining
    /// funds will be released"), and only one capture is allowed, so none is ever needed after it.
    fn release_rules(&self) -> ReleaseRules {
        ReleaseRules {
            before_capture: ReleaseMechanism::Call,
            after_partial_capture: ReleaseMechanism::Automatic,
            final_capture_releases: true,
        }
    }

    /// `POST {path_prefix}/server-to-server-interface/void` with `{transactionId, merchant_id}`,
    /// authenticated as a capture is, answered 201 `transaction_type: VOID`. Its refusals read as
    /// a capture's (PaymentOptions documents none of its own for the void).
    #[tracing::instrument(skip_all, fields(
        provider = "payment_options",
        authorization_id = %call.authorization_id,
        release_id = %call.idempotency_key,
    ))]
    async fn release(&self, call: ReleaseCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        let request = mapping::void_request(call.authorization_id.as_str(), &self.merchant_id);
        let body = serde_json::to_vec(&request)
            .map_err(|e| KIT.unknown(format!("cannot encode the void request: {e}")))?;
        let answer = self.send("void", body).await?;
        classify(&answer, Sent::Void)
    }

    /// A void sent before whose answer was lost is sent again (no lookup exists). How
    /// PaymentOptions answers a second void of one authorization is not documented, so a refusal
    /// of the repeat (or a decline) may only mean that the first void went through: it leaves the
    /// outcome unknown, to reconcile in the portal, rather than fail a release that may be done.
    /// A void taken now, and a refusal the first void cannot have caused (no such transaction,
    /// our credentials, a throttle), stand.
    #[tracing::instrument(skip_all, fields(provider = "payment_options", release_id = %release.id))]
    async fn fetch_release_outcome(
        &self,
        release: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        let repeat = self.release(ReleaseCall::of(release)).await;
        let said = match &repeat {
            Ok(outcome) if outcome.status == CaptureStatus::Declined => {
                format!("declined ({})", outcome.provider_status)
            }
            Err(ProviderError::Rejected {
                rejection: Rejection::FailedPrecondition | Rejection::InvalidArgument,
                failure,
                ..
            }) => format!("refused ({}: {})", failure.code, failure.message),
            _ => return repeat,
        };
        tracing::warn!("PaymentOptions {said} the void sent again; the outcome stays unknown");
        Err(KIT.unknown(format!(
            "PaymentOptions {said} the void sent again, and an earlier attempt may have voided \
             transactionId {}: reconcile release {} in the PaymentOptions portal",
            release.command.parts().authorization_id,
            release.id
        )))
    }

    /// PaymentOptions documents no capture lookup, and re-sending a capture is not idempotent:
    /// nothing here can resolve an outcome.
    /// No idempotency key, and a repeat's answer (a duplicate, or whatever a lost connection
    /// leaves of it) cannot tell what the first attempt did: never re-sent.
    fn resends_safely(&self) -> bool {
        false
    }

    #[tracing::instrument(skip_all, fields(provider = "payment_options", capture_id = %capture.id))]
    async fn fetch_outcome(
        &self,
        capture: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        tracing::info!("PaymentOptions offers no capture lookup; the outcome stays unknown");
        Err(KIT.unknown(format!(
            "PaymentOptions offers no capture lookup and its capture is not idempotent: \
             reconcile capture {} (transactionId {}) in the PaymentOptions portal",
            capture.id,
            capture.command.parts().authorization_id
        )))
    }
}

/// What a call sent, for reading its answer.
#[derive(Debug, Clone, Copy)]
enum Sent<'a> {
    Capture(&'a CaptureCommand),
    Void,
}

impl Sent<'_> {
    fn what(self) -> &'static str {
        match self {
            Sent::Capture(_) => "capture",
            Sent::Void => "void",
        }
    }
}

/// Turns the answer to the `sent` call into an outcome or an error. The response code decides
/// wherever PaymentOptions sends one; otherwise the HTTP status does.
fn classify(answer: &HttpAnswer, sent: Sent<'_>) -> Result<ProviderOutcome, ProviderError> {
    let what = sent.what();
    let status = answer.status;
    let http_status = status.as_u16();
    let parsed = mapping::read_body(&answer.body);
    // Correlation fields for the log lines (never the body), owned so the answer can move.
    let (gateway_code, response_code, transaction_id) = match &parsed {
        Ok(p) => (
            p.answer.gateway_code().unwrap_or("").to_owned(),
            p.answer.response_code(),
            p.answer.transaction_id().unwrap_or("").to_owned(),
        ),
        Err(_) => (String::new(), None, String::new()),
    };
    let (gateway_code, transaction_id) = (gateway_code.as_str(), transaction_id.as_str());
    if status.is_success() {
        let outcome = parsed
            .and_then(|parsed| read_success(http_status, parsed, sent))
            .map_err(|detail| {
                tracing::warn!(
                    status = http_status, gateway_code, response_code, transaction_id,
                    %detail, "unusable PaymentOptions {what} answer"
                );
                KIT.unknown(format!("HTTP {http_status}: {detail}"))
            })?;
        if let Sent::Capture(command) = sent {
            warn_if_other_amount(&outcome, command);
        }
        tracing::info!(
            status = http_status, capture_status = %outcome.status, gateway_code, response_code,
            transaction_id, attempts = answer.attempts, "PaymentOptions answered the {what}"
        );
        return Ok(outcome);
    }
    // Read before the body may be consumed by a decline below.
    let failure = mapping::failure(parsed.as_ref().ok(), http_status);
    let rejection = match status {
        StatusCode::BAD_REQUEST | StatusCode::NOT_ACCEPTABLE | StatusCode::PRECONDITION_FAILED => {
            // A refusal that carries a decline or an unresolved code says more than its status.
            if let Ok(parsed) = parsed {
                if let Ok(Some(code)) = mapping::response_code(&parsed.answer) {
                    match mapping::meaning(code) {
                        Meaning::Declined => {
                            tracing::info!(
                                status = http_status,
                                gateway_code,
                                response_code,
                                transaction_id,
                                "PaymentOptions declined the {what}"
                            );
                            return Ok(mapping::declined(parsed, code));
                        }
                        Meaning::Unresolved(detail) => {
                            tracing::warn!(
                                status = http_status,
                                gateway_code,
                                response_code,
                                transaction_id,
                                "PaymentOptions did not say whether it did the {what}"
                            );
                            return Err(KIT.unknown(format!("HTTP {http_status}: {detail}")));
                        }
                        // The default code on a refusal: the status decides.
                        Meaning::Approved => {}
                    }
                }
            }
            if status == StatusCode::PRECONDITION_FAILED {
                Rejection::FailedPrecondition
            } else {
                Rejection::InvalidArgument
            }
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Rejection::Unauthorized,
        StatusCode::NOT_FOUND => Rejection::NotFound,
        StatusCode::TOO_MANY_REQUESTS => Rejection::RateLimited,
        // 500, 502, 504, redirects and undocumented statuses: PaymentOptions may have acted.
        _ => {
            tracing::warn!(
                status = http_status,
                gateway_code,
                response_code,
                transaction_id,
                attempts = answer.attempts,
                "PaymentOptions gave no definite answer"
            );
            return Err(KIT.unknown(format!(
                "PaymentOptions answered HTTP {http_status} ({})",
                failure.code
            )));
        }
    };
    tracing::warn!(
        status = http_status, code = %failure.code, response_code, transaction_id,
        attempts = answer.attempts, "PaymentOptions refused the {what}"
    );
    Err(KIT.rejected(rejection, failure, answer.retry_after()))
}

/// A 2xx answer: captured (or voided) only with HTTP 201, `success: true` and response code 0.
fn read_success(
    http_status: u16,
    parsed: Parsed,
    sent: Sent<'_>,
) -> Result<ProviderOutcome, String> {
    let code = mapping::response_code(&parsed.answer)?
        .ok_or("the answer has no payment_details.response_code")?;
    match mapping::meaning(code) {
        Meaning::Approved if http_status != 201 => Err(format!(
            "response_code 0 with HTTP {http_status}; a {} is answered 201",
            sent.what()
        )),
        Meaning::Approved if parsed.answer.success != Some(true) => {
            Err("response_code 0 but success is not true".to_owned())
        }
        Meaning::Approved => match sent {
            Sent::Capture(_) => Ok(mapping::completed(parsed)),
            Sent::Void => mapping::voided(parsed),
        },
        Meaning::Declined => Ok(mapping::declined(parsed, code)),
        Meaning::Unresolved(detail) => Err(detail.to_owned()),
    }
}

/// The request names no currency: PaymentOptions captures in the authorization's. Says so in
/// the log when that, or the amount, differs from what was asked (the outcome keeps what
/// PaymentOptions reported).
fn warn_if_other_amount(outcome: &ProviderOutcome, command: &CaptureCommand) {
    if let (Some(captured), Some(asked)) = (&outcome.captured_amount, &command.parts().amount) {
        if captured != asked {
            tracing::warn!(
                %captured, %asked,
                "PaymentOptions reports a captured amount other than the one asked for"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_url_joins_base_and_prefix_with_single_slashes() {
        let url = |b, p| interface_url(b, p);
        assert_eq!(
            url("https://api-dev.paymentoptions.com/", "/api/v1"),
            "https://api-dev.paymentoptions.com/api/v1/server-to-server-interface"
        );
        assert_eq!(
            url("http://h/payment_options", "api/v1/api/v1/"),
            "http://h/payment_options/api/v1/api/v1/server-to-server-interface"
        );
        assert_eq!(url("http://h", ""), "http://h/server-to-server-interface");
    }
}
