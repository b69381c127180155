//! Cybersource REST payments connector: the capture call and the capture lookup, both signed
//! with an HTTP Signature ([`signature`]), and the reading of Cybersource's error bodies. Wire
//! types live in [`wire`], their conversion to and from the domain in `mapping` (which also
//! records how the request is built).
//!
//! Cybersource has no idempotency header on this API, so the capture is sent with
//! [`RetryPolicy::NotIdempotent`]: only a connection that never opened (or a 429) is retried.
//! What makes a resent capture harmless is `clientReferenceInformation.code` = our capture id:
//! Cybersource refuses a second capture with the same code and amount as `DUPLICATE_REQUEST`,
//! which this connector reads as "the earlier attempt reached Cybersource". Its answer is lost and
//! Cybersource's capture id unknown, so the outcome stays unknown (the capture stays
//! `PROCESSING`) rather than being guessed.

mod account;
#[cfg(test)]
mod fuzz;
mod mapping;
pub mod signature;
pub mod wire;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use http::StatusCode;

use super::http::{HttpAnswer, ProviderHttp, RetryPolicy};
use super::kit::Kit;
use super::{CaptureCall, Connector, ProviderError, Rejection, ReleaseCall};
use crate::domain::capture::is_path_segment;
use crate::domain::outcome::ProviderFailure;
use crate::domain::record::now_micros;
use crate::domain::{
    CaptureCommand, CaptureRecord, FieldViolation, Provider, ProviderOutcome, ReleaseMechanism,
    ReleaseRules,
};
use mapping::Sent;
use signature::{SignedRequest, SigningKey};

pub use account::CybersourceAccount;

/// The rules every connector shares, for Cybersource.
const KIT: Kit = Kit::new(Provider::Cybersource);

/// Cybersource's longest `totalAmount` (String (19)).
const MAX_AMOUNT_CHARS: usize = 19;
/// Longest `merchantDefinedInformation[].value`.
const MAX_MDD_VALUE_CHARS: usize = 255;
/// The content type Cybersource documents for its JSON requests.
const CONTENT_TYPE: &str = "application/json;charset=utf-8";
/// The response header carrying Cybersource's correlation id, for its support.
const CORRELATION_HEADER: &str = "v-c-correlation-id";

/// Captures at one Cybersource merchant (one configured account).
pub struct CybersourceConnector {
    /// Without a trailing slash.
    base_url: String,
    merchant_id: String,
    key_id: String,
    /// `None` when the configured secret is not base64: every call is then refused as a
    /// configuration error, without being sent.
    key: Option<SigningKey>,
    http: ProviderHttp,
    /// How long Transaction Search may lag behind a capture.
    search_grace: Duration,
}

impl CybersourceConnector {
    pub fn new(account: &CybersourceAccount, http: ProviderHttp) -> Self {
        let key = SigningKey::decode(&account.shared_secret);
        if key.is_none() {
            tracing::error!(
                account = %account.name,
                "Cybersource shared_secret is not base64; captures will be refused"
            );
        }
        CybersourceConnector {
            base_url: account.base_url.trim_end_matches('/').to_owned(),
            merchant_id: account.merchant_id.clone(),
            key_id: account.key_id.clone(),
            key,
            http,
            search_grace: Duration::from_secs(account.search_grace_seconds),
        }
    }

    /// A signed request to `url`: `body` for a POST, `None` for a GET.
    fn signed(&self, url: &str, body: Option<Vec<u8>>) -> Result<reqwest::Request, ProviderError> {
        let Some(key) = &self.key else {
            return Err(KIT.rejected(
                Rejection::Unauthorized,
                ProviderFailure {
                    code: "INVALID_SHARED_SECRET".to_owned(),
                    message: "the configured shared_secret is not base64 (nothing was sent)"
                        .to_owned(),
                    debug_id: None,
                    http_status: 0,
                },
                None,
            ));
        };
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| KIT.unknown(format!("unusable Cybersource URL (not sent): {e}")))?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(KIT.unknown("Cybersource URL has no host (not sent)")),
        };
        let path = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let date = httpdate::fmt_http_date(SystemTime::now());
        let method = if body.is_some() { "POST" } else { "GET" };
        let headers = signature::sign(
            key,
            &self.key_id,
            &SignedRequest {
                method,
                host: &host,
                path: &path,
                date: &date,
                merchant_id: &self.merchant_id,
                body: body.as_deref(),
            },
        );
        let client = self.http.client();
        let mut builder = match &body {
            Some(_) => client
                .post(parsed)
                .header(http::header::CONTENT_TYPE, CONTENT_TYPE),
            None => client.get(parsed),
        };
        builder = builder
            .header(http::header::ACCEPT, "application/hal+json;charset=utf-8")
            .header("v-c-merchant-id", &self.merchant_id)
            .header(http::header::DATE, &date)
            .header(http::header::HOST, &host)
            .header("Signature", headers.signature);
        if let Some(digest) = headers.digest {
            builder = builder.header("Digest", digest);
        }
        if let Some(body) = body {
            builder = builder.body(body);
        }
        builder
            .build()
            .map_err(|e| KIT.unknown(format!("cannot build the request: {}", e.without_url())))
    }
}

#[async_trait]
impl Connector for CybersourceConnector {
    fn provider(&self) -> Provider {
        KIT.provider
    }

    fn check(&self, command: &CaptureCommand) -> Vec<FieldViolation> {
        let parts = command.parts();
        let mut violations = Vec::new();
        let too_long = |m: &crate::domain::Money| m.to_major_string().len() > MAX_AMOUNT_CHARS;
        match (&parts.amount, &parts.authorized_amount) {
            (None, None) => violations.push(FieldViolation::new(
                "amount",
                "required by Cybersource, which has no full-amount capture (or give \
                 authorized_amount to capture all of it)",
            )),
            (Some(amount), _) if too_long(amount) => violations.push(FieldViolation::new(
                "amount.value",
                format!("Cybersource takes at most {MAX_AMOUNT_CHARS} characters"),
            )),
            (None, Some(authorized)) if too_long(authorized) => {
                violations.push(FieldViolation::new(
                    "authorized_amount.value",
                    format!("Cybersource takes at most {MAX_AMOUNT_CHARS} characters"),
                ))
            }
            _ => {}
        }
        if !parts.platform_fees.is_empty() {
            violations.push(FieldViolation::new(
                "platform_fees",
                "Cybersource captures take no platform fees",
            ));
        }
        if parts.disbursement_mode.is_some() {
            violations.push(FieldViolation::new(
                "disbursement_mode",
                "Cybersource captures have no disbursement mode",
            ));
        }
        for (key, value) in parts.metadata.entries() {
            if value.chars().count() > MAX_MDD_VALUE_CHARS {
                violations.push(FieldViolation::new(
                    format!("metadata[{key}]"),
                    format!("Cybersource takes values of at most {MAX_MDD_VALUE_CHARS} characters"),
                ));
            } else if parts.reference.is_some() && key == mapping::REFERENCE_KEY {
                violations.push(FieldViolation::new(
                    format!("metadata[{key}]"),
                    "reserved for the capture's reference at Cybersource",
                ));
            }
        }
        violations
    }

    #[tracing::instrument(
        skip_all,
        fields(
            provider = "cybersource",
            authorization_id = %call.command.parts().authorization_id,
            capture_id = %call.idempotency_key,
        )
    )]
    async fn capture(&self, call: CaptureCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        let authorization_id = call.command.parts().authorization_id.as_str();
        let request = match mapping::request(&call) {
            Ok(request) => request,
            Err(mapping::Unsendable::NoAmount) => {
                return Err(KIT.unknown("no amount to capture (not sent)"))
            }
            Err(mapping::Unsendable::TooManyCaptures) => {
                let failure = ProviderFailure {
                    code: "TOO_MANY_CAPTURES".into(),
                    message: format!(
                        "Cybersource numbers at most {} captures of one authorization; \
                         this would be capture {} (not sent)",
                        mapping::MAX_CAPTURES,
                        call.capture_sequence
                    ),
                    debug_id: None,
                    http_status: 0,
                };
                return Err(KIT.rejected(Rejection::FailedPrecondition, failure, None));
            }
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| KIT.unknown(format!("cannot encode the capture request: {e}")))?;
        let url = format!(
            "{}/pts/v2/payments/{authorization_id}/captures",
            self.base_url
        );
        let request = self.signed(&url, Some(body))?;
        let answer = self
            .http
            .send(request, RetryPolicy::NotIdempotent)
            .await
            .map_err(|e| KIT.no_answer("capture", e))?;
        classify(answer, StatusCode::CREATED, Sent::Capture)
    }

    /// An authorization reversal releases an authorization not captured yet; a capture with
    /// `isFinal` "true" releases the rest by itself. Cybersource documents the reversal for the
    /// whole authorized amount only, and nothing for what is left after captures.
    fn release_rules(&self) -> ReleaseRules {
        ReleaseRules {
            before_capture: ReleaseMechanism::Call,
            after_partial_capture: ReleaseMechanism::Unsupported(
                "Cybersource documents its authorization reversal for the whole authorized \
                 amount only, not for what captures left; capture with final_capture to release \
                 the rest",
            ),
            final_capture_releases: true,
        }
    }

    /// `POST /pts/v2/payments/{id}/reversals`, signed as a capture is, reversing the whole
    /// `authorized_amount`; without it the reversal cannot be written and nothing is sent. No
    /// idempotency header exists: as a capture, the request is retried only when it provably
    /// never left, and a reversal sent again later (the reconciler's) is answered
    /// `AUTH_ALREADY_REVERSED` when the first went through, which settles the release.
    #[tracing::instrument(
        skip_all,
        fields(
            provider = "cybersource",
            authorization_id = %call.authorization_id,
            release_id = %call.idempotency_key,
        )
    )]
    async fn release(&self, call: ReleaseCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        let Some(authorized) = call.authorized_amount else {
            let failure = ProviderFailure {
                code: mapping::AUTHORIZED_AMOUNT_REQUIRED.to_owned(),
                message: "Cybersource reverses an authorization by its whole authorized amount: \
                          give authorized_amount (nothing was sent)"
                    .to_owned(),
                debug_id: None,
                http_status: 0,
            };
            return Err(KIT.rejected(Rejection::InvalidArgument, failure, None));
        };
        let body = serde_json::to_vec(&mapping::reversal_request(&call, &authorized))
            .map_err(|e| KIT.unknown(format!("cannot encode the reversal request: {e}")))?;
        let url = format!(
            "{}/pts/v2/payments/{}/reversals",
            self.base_url, call.authorization_id
        );
        let request = self.signed(&url, Some(body))?;
        let answer = self
            .http
            .send(request, RetryPolicy::NotIdempotent)
            .await
            .map_err(|e| KIT.no_answer("reversal", e))?;
        classify(answer, StatusCode::CREATED, Sent::Reversal)
    }

    /// `GET /pts/v2/captures/{id}` once Cybersource's capture id is known. Without it (the
    /// answer to the capture was lost), Transaction Search looks for the capture by our capture
    /// id. Found, it is read as above. Not found, the capture is sent again (same code, same
    /// number) once the search has had `search_grace_seconds` to show it: before that the
    /// outcome stays unknown. A capture that did arrive after all is refused as
    /// `DUPLICATE_REQUEST` (outcome unknown), never taken twice.
    #[tracing::instrument(skip_all, fields(provider = "cybersource", capture_id = %capture.id))]
    async fn fetch_outcome(
        &self,
        capture: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        let known = capture
            .provider_capture_id
            .as_deref()
            .filter(|id| is_path_segment(id))
            .map(str::to_owned);
        let cybersource_id = match known {
            Some(id) => id,
            None => match self.search(&capture.id).await? {
                Some(id) if is_path_segment(&id) => id,
                Some(id) => return Err(KIT.unknown(format!("unusable Cybersource id {id:?}"))),
                None if self.search_grace_passed(capture) => {
                    tracing::info!(
                        "Transaction Search does not show the capture: sending it again"
                    );
                    return self.capture(CaptureCall::of(capture)).await;
                }
                None => {
                    return Err(KIT.unknown(
                        "Transaction Search does not show the capture yet; looking again later",
                    ))
                }
            },
        };
        let url = format!("{}/pts/v2/captures/{cybersource_id}", self.base_url);
        let request = self.signed(&url, None)?;
        // A read: every failure may be retried.
        let answer = self
            .http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer("capture lookup", e))?;
        classify(answer, StatusCode::OK, Sent::Capture)
    }

    /// Cybersource's webhook signature is not confirmed in our material: a delivery is taken only as
    /// a hint to look its capture up (`fetch_outcome`), never believed.
    fn screen_webhook(
        &self,
        _delivery: crate::providers::webhook::Delivery<'_>,
    ) -> Result<crate::providers::webhook::Screened, crate::providers::webhook::WebhookError> {
        Ok(crate::providers::webhook::Screened::Trusted(
            crate::providers::webhook::Trust::Hint,
        ))
    }

    /// The ids it names (`eventType`, which names the event in logs, is an *unconfirmed* field name).
    fn read_webhook(
        &self,
        body: &[u8],
        _trust: crate::providers::webhook::Trust,
    ) -> Result<crate::providers::webhook::WebhookEvent, crate::providers::webhook::WebhookError>
    {
        Ok(crate::providers::webhook::hint(body, "eventType"))
    }
}

impl CybersourceConnector {
    /// `POST /tss/v2/searches` for the capture sent as `capture_id`: its Cybersource id when
    /// it was taken. Any answer but a search result leaves the outcome unknown.
    async fn search(&self, capture_id: &str) -> Result<Option<String>, ProviderError> {
        let body = serde_json::to_vec(&mapping::search_request(capture_id))
            .map_err(|e| KIT.unknown(format!("cannot encode the search: {e}")))?;
        let url = format!("{}/tss/v2/searches", self.base_url);
        let request = self.signed(&url, Some(body))?;
        // A search changes nothing: every failure may be retried.
        let answer = self
            .http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer("transaction search", e))?;
        if !answer.status.is_success() {
            return Err(KIT.unknown(format!(
                "Transaction Search answered HTTP {}",
                answer.status.as_u16()
            )));
        }
        let found = mapping::found_capture(&answer.body, capture_id).map_err(|e| KIT.unknown(e))?;
        tracing::info!(
            found = found.as_deref().unwrap_or(""),
            "Transaction Search answered"
        );
        Ok(found)
    }

    /// Whether the search has had its grace period since the capture was first recorded.
    fn search_grace_passed(&self, capture: &CaptureRecord) -> bool {
        let grace = i64::try_from(self.search_grace.as_micros()).unwrap_or(i64::MAX);
        now_micros().saturating_sub(capture.create_time) >= grace
    }
}

/// Turns a final answer to the `sent` request into an outcome or an error; `success` is the
/// documented 2xx.
fn classify(
    answer: HttpAnswer,
    success: StatusCode,
    sent: Sent,
) -> Result<ProviderOutcome, ProviderError> {
    let status = answer.status;
    let what = sent.what();
    let correlation_id = answer.header(CORRELATION_HEADER).map(str::to_owned);
    if status == success {
        let outcome = sent.outcome(&answer.body).map_err(|detail| {
            tracing::warn!(
                status = status.as_u16(), correlation_id = correlation_id.as_deref().unwrap_or(""),
                %detail, "unusable Cybersource {what} answer"
            );
            KIT.unknown(detail)
        })?;
        tracing::info!(
            status = status.as_u16(), capture_status = %outcome.status,
            provider_status = %outcome.provider_status,
            cybersource_id = outcome.provider_capture_id.as_deref().unwrap_or(""),
            correlation_id = correlation_id.as_deref().unwrap_or(""),
            attempts = answer.attempts, "Cybersource answered"
        );
        return Ok(outcome);
    }
    let parsed = serde_json::from_slice::<wire::ErrorBody>(&answer.body);
    let readable = parsed.is_ok();
    let body = parsed.unwrap_or_default();
    let failure = failure(&body, status, correlation_id);
    tracing::warn!(
        status = failure.http_status, code = %failure.code,
        correlation_id = failure.debug_id.as_deref().unwrap_or(""), attempts = answer.attempts,
        "Cybersource answered with an error"
    );
    let rejection = match status {
        StatusCode::BAD_REQUEST => {
            let fields: Vec<&str> = body
                .details
                .iter()
                .filter_map(|d| d.field.as_deref())
                .collect();
            match body.reason.as_deref().and_then(wire::parse_name) {
                Some(reason) => match sent.refusal_for_400(reason, &fields) {
                    mapping::Refusal::Rejected(rejection) => rejection,
                    mapping::Refusal::Duplicate => {
                        return Err(KIT.unknown(format!(
                            "Cybersource reports DUPLICATE_REQUEST: an earlier attempt of this \
                             {what} reached it, and its answer and id are unknown here"
                        )));
                    }
                    mapping::Refusal::ProcessorUnavailable => {
                        return Err(KIT.unknown(format!(
                            "Cybersource reports PROCESSOR_UNAVAILABLE for the {what}"
                        )));
                    }
                    mapping::Refusal::AlreadyReversed => {
                        tracing::info!(
                            correlation_id = failure.debug_id.as_deref().unwrap_or(""),
                            "Cybersource reports the authorization reversed already: released"
                        );
                        return Ok(mapping::already_reversed(&answer.body));
                    }
                },
                // An undocumented reason is still INVALID_REQUEST: nothing was done.
                None if readable => Rejection::InvalidArgument,
                // Cut short, or a proxy's page: it may have been a DUPLICATE_REQUEST.
                None => {
                    return Err(KIT.unknown(
                        "Cybersource answered HTTP 400 with a body that is not its error \
                         (cut short, or a proxy's): it may be a DUPLICATE_REQUEST",
                    ));
                }
            }
        }
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Rejection::Unauthorized,
        StatusCode::NOT_FOUND => Rejection::NotFound,
        StatusCode::TOO_MANY_REQUESTS => Rejection::RateLimited,
        StatusCode::BAD_GATEWAY => {
            match body
                .reason
                .as_deref()
                .and_then(wire::parse_name)
                .and_then(mapping::rejection_for_502)
            {
                Some(rejection) => rejection,
                None => {
                    return Err(
                        KIT.unknown(format!("Cybersource answered HTTP 502 ({})", failure.code))
                    )
                }
            }
        }
        // Other 5xx, other 2xx, redirects and undocumented 4xx: Cybersource may have acted.
        _ => {
            return Err(KIT.unknown(format!(
                "Cybersource answered HTTP {} ({})",
                status.as_u16(),
                failure.code
            )));
        }
    };
    Err(KIT.rejected(rejection, failure, answer.retry_after()))
}

/// Cybersource's error body as a failure: `code` is `reason` (the most specific), else
/// `status`; `message` adds the fields `details[]` names.
fn failure(
    body: &wire::ErrorBody,
    status: StatusCode,
    correlation_id: Option<String>,
) -> ProviderFailure {
    let message = body
        .message
        .clone()
        .or_else(|| body.response.as_ref().and_then(|r| r.rmsg.clone()))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned());
    let details: Vec<String> = body
        .details
        .iter()
        .filter_map(|d| match (&d.field, &d.reason) {
            (Some(field), Some(reason)) => Some(format!("{field}: {reason}")),
            (Some(field), None) => Some(field.clone()),
            (None, _) => None,
        })
        .collect();
    ProviderFailure {
        code: body
            .reason
            .clone()
            .or_else(|| body.status.clone())
            .unwrap_or_else(|| format!("HTTP_{}", status.as_u16())),
        message: if details.is_empty() {
            message
        } else {
            format!("{message} [{}]", details.join("; "))
        },
        debug_id: correlation_id.or_else(|| body.id.clone()),
        http_status: status.as_u16(),
    }
}
