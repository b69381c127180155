//! PayPal Payments v2 connector: OAuth2 client credentials, the capture and void calls with their
//! headers, and the reading of PayPal's error bodies. Wire types live in [`wire`], their
//! conversion to and from the domain in `mapping`.

mod account;
#[cfg(test)]
mod fuzz;
mod mapping;
mod webhook;
pub mod wire;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use http::StatusCode;
use tokio::sync::Mutex;

use super::http::{HttpAnswer, ProviderHttp, RetryPolicy};
use super::kit::{self, Kit};
use super::webhook::{Delivery, Screened, Trust, WebhookError, WebhookEvent};
use super::{CaptureCall, Connector, ProviderError, Rejection, ReleaseCall};
use crate::config::Secret;
use crate::domain::capture::is_path_segment;
use crate::domain::outcome::ProviderFailure;
use crate::domain::{
    CaptureCommand, CaptureRecord, FieldViolation, Provider, ProviderOutcome, ReleaseMechanism,
    ReleaseRules,
};

pub use account::PaypalAccount;

/// The rules every connector shares, for Paypal.
const KIT: Kit = Kit::new(Provider::Paypal);

/// A token is dropped this long before PayPal says it expires, so a capture never leaves with a
/// token that dies in flight.
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// PayPal's longest documented money `value`.
const MAX_VALUE_CHARS: usize = 32;

/// An OAuth access token and when to stop using it.
struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

/// Captures at one PayPal REST app (one configured account).
pub struct PaypalConnector {
    /// Without a trailing slash.
    base_url: String,
    client_id: String,
    client_secret: Secret,
    /// `PayPal-Auth-Assertion`, when a partner captures for a merchant.
    auth_assertion: Option<Secret>,
    webhook_id: Option<String>,
    http: ProviderHttp,
    /// Held across a token fetch, so concurrent captures wait for one fetch instead of each
    /// asking PayPal for a token.
    token: Mutex<Option<CachedToken>>,
}

impl PaypalConnector {
    pub fn new(account: &PaypalAccount, http: ProviderHttp) -> Self {
        PaypalConnector {
            base_url: account.base_url.trim_end_matches('/').to_owned(),
            client_id: account.client_id.clone(),
            client_secret: account.client_secret.clone(),
            auth_assertion: account.auth_assertion.clone(),
            webhook_id: account.webhook_id.clone(),
            http,
            token: Mutex::new(None),
        }
    }

    /// The cached token, or a new one if there is none or it is about to expire.
    async fn token(&self) -> Result<Secret, ProviderError> {
        let mut cached = self.token.lock().await;
        if let Some(current) = cached.as_ref() {
            if Instant::now() < current.refresh_at {
                return Ok(current.token.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Forgets `stale` after PayPal refused it, unless another capture already replaced it.
    async fn drop_token(&self, stale: &Secret) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == stale) {
            *cached = None;
        }
    }

    /// `POST /v1/oauth2/token` with HTTP Basic credentials.
    async fn fetch_token(&self) -> Result<CachedToken, ProviderError> {
        let request = self
            .http
            .client()
            .post(format!("{}/v1/oauth2/token", self.base_url))
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header(http::header::ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")])
            .build()
            .map_err(|e| {
                KIT.unknown(format!(
                    "cannot build the token request: {}",
                    e.without_url()
                ))
            })?;
        // Asking for a token has no effect at PayPal: every failure may be retried.
        let answer = self
            .http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer("token request", e))?;
        if answer.status != StatusCode::OK {
            let failure = failure(&answer);
            tracing::warn!(
                status = failure.http_status, code = %failure.code,
                debug_id = failure.debug_id.as_deref().unwrap_or(""),
                "PayPal refused the token request"
            );
            let rejection = match answer.status {
                // Wrong credentials or an app without the permission: configuration problems.
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    Rejection::Unauthorized
                }
                StatusCode::TOO_MANY_REQUESTS => Rejection::RateLimited,
                status => {
                    return Err(KIT.unknown(format!("token request answered HTTP {status}")));
                }
            };
            return Err(KIT.rejected(rejection, failure, answer.retry_after()));
        }
        let parsed: wire::TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| KIT.unknown(format!("unreadable token answer: {e}")))?;
        let lifetime = Duration::from_secs(parsed.expires_in).saturating_sub(TOKEN_EXPIRY_MARGIN);
        tracing::debug!(
            expires_in = parsed.expires_in,
            "fetched a PayPal access token"
        );
        Ok(CachedToken {
            token: Secret::new(parsed.access_token),
            refresh_at: Instant::now() + lifetime,
        })
    }

    /// `POST url` (the `what` request: a capture, a void) under the cached token. A 401 means the
    /// token was revoked or expired early: one new token, one more try; a second 401 is final.
    async fn post(
        &self,
        url: &str,
        body: Option<&[u8]>,
        idempotency_key: &str,
        what: &str,
    ) -> Result<HttpAnswer, ProviderError> {
        let token = self.token().await?;
        let answer = self
            .post_once(url, &token, body, idempotency_key, what)
            .await?;
        if answer.status != StatusCode::UNAUTHORIZED {
            return Ok(answer);
        }
        tracing::info!("PayPal refused the access token; fetching a new one");
        self.drop_token(&token).await;
        let token = self.token().await?;
        self.post_once(url, &token, body, idempotency_key, what)
            .await
    }

    /// One `POST` (with the transport's retries) under `token`; `None` sends no body at all.
    async fn post_once(
        &self,
        url: &str,
        token: &Secret,
        body: Option<&[u8]>,
        idempotency_key: &str,
        what: &str,
    ) -> Result<HttpAnswer, ProviderError> {
        let mut builder = self
            .http
            .client()
            .post(url)
            .bearer_auth(token.expose())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .header("PayPal-Request-Id", idempotency_key)
            .header("Prefer", "return=representation");
        if let Some(assertion) = &self.auth_assertion {
            builder = builder.header("PayPal-Auth-Assertion", assertion.expose());
        }
        if let Some(body) = body {
            builder = builder.body(body.to_vec());
        }
        let request = builder.build().map_err(|e| {
            KIT.unknown(format!(
                "cannot build the {what} request: {}",
                e.without_url()
            ))
        })?;
        // `PayPal-Request-Id` makes a resent request return the first one's result.
        self.http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer(what, e))
    }
}

#[async_trait]
impl Connector for PaypalConnector {
    fn provider(&self) -> Provider {
        KIT.provider
    }

    fn check(&self, command: &CaptureCommand) -> Vec<FieldViolation> {
        let parts = command.parts();
        let mut violations = Vec::new();
        let too_long = |m: &crate::domain::Money| m.to_major_string().len() > MAX_VALUE_CHARS;
        if parts.amount.as_ref().is_some_and(too_long) {
            violations.push(FieldViolation::new(
                "amount.value",
                format!("PayPal takes at most {MAX_VALUE_CHARS} characters"),
            ));
        }
        for (i, fee) in parts.platform_fees.iter().enumerate() {
            if too_long(&fee.amount) {
                violations.push(FieldViolation::new(
                    format!("platform_fees[{i}].amount.value"),
                    format!("PayPal takes at most {MAX_VALUE_CHARS} characters"),
                ));
            }
        }
        violations
    }

    #[tracing::instrument(
        skip_all,
        fields(provider = "paypal", authorization_id = %call.command.parts().authorization_id)
    )]
    async fn capture(&self, call: CaptureCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        let authorization_id = call.command.parts().authorization_id.as_str();
        let url = format!(
            "{}/v2/payments/authorizations/{authorization_id}/capture",
            self.base_url
        );
        let body = serde_json::to_vec(&mapping::request(call.command))
            .map_err(|e| KIT.unknown(format!("cannot encode the capture request: {e}")))?;
        let answer = self
            .post(&url, Some(&body), call.idempotency_key, "capture")
            .await?;
        classify(answer)
    }

    /// A void releases the authorization before any capture, and after partial captures made
    /// with `final_capture: false`; a capture with `final_capture: true` closes it by itself.
    fn release_rules(&self) -> ReleaseRules {
        ReleaseRules {
            before_capture: ReleaseMechanism::Call,
            after_partial_capture: ReleaseMechanism::Call,
            final_capture_releases: true,
        }
    }

    /// `POST /v2/payments/authorizations/{id}/void` with no body, under the same headers as a
    /// capture: its `PayPal-Request-Id` makes a re-sent void return the first one's answer.
    #[tracing::instrument(
        skip_all,
        fields(provider = "paypal", authorization_id = %call.authorization_id)
    )]
    async fn release(&self, call: ReleaseCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        let authorization_id = call.authorization_id.as_str();
        let url = format!(
            "{}/v2/payments/authorizations/{authorization_id}/void",
            self.base_url
        );
        let answer = self.post(&url, None, call.idempotency_key, "void").await?;
        classify_void(answer, authorization_id)
    }

    /// `GET /v2/payments/captures/{id}` once PayPal's capture id is known; before that, the
    /// capture re-sent with its `PayPal-Request-Id`, which PayPal answers with the original.
    #[tracing::instrument(skip_all, fields(provider = "paypal", capture_id = %capture.id))]
    async fn fetch_outcome(
        &self,
        capture: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        let Some(paypal_id) = capture
            .provider_capture_id
            .as_deref()
            .filter(|id| is_path_segment(id))
        else {
            return self.capture(CaptureCall::of(capture)).await;
        };
        let url = format!("{}/v2/payments/captures/{paypal_id}", self.base_url);
        let mut answer = self.get_capture(&url, &self.token().await?).await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            let stale = self.token().await?;
            self.drop_token(&stale).await;
            answer = self.get_capture(&url, &self.token().await?).await?;
        }
        classify(answer)
    }

    /// A delivery with the five transmission headers, a configured webhook id and a JSON body
    /// can be put to PayPal; anything less is refused here.
    fn screen_webhook(&self, delivery: Delivery<'_>) -> Result<Screened, WebhookError> {
        webhook::verify_request(delivery, self.webhook_id.as_deref())?;
        Ok(Screened::AskProvider)
    }

    /// Asks PayPal's `verify-webhook-signature` whether the delivery is genuine.
    #[tracing::instrument(skip_all, fields(provider = "paypal"))]
    async fn verify_webhook(&self, delivery: Delivery<'_>) -> Result<Trust, WebhookError> {
        let body = webhook::verify_request(delivery, self.webhook_id.as_deref())?;
        let unavailable = |e: ProviderError| WebhookError::VerifierUnavailable(e.to_string());
        let mut answer = self
            .post_verification(&body, &self.token().await.map_err(unavailable)?)
            .await
            .map_err(unavailable)?;
        if answer.status == StatusCode::UNAUTHORIZED {
            let stale = self.token().await.map_err(unavailable)?;
            self.drop_token(&stale).await;
            answer = self
                .post_verification(&body, &self.token().await.map_err(unavailable)?)
                .await
                .map_err(unavailable)?;
        }
        if answer.status != StatusCode::OK {
            return Err(WebhookError::VerifierUnavailable(format!(
                "verify-webhook-signature answered HTTP {}",
                answer.status.as_u16()
            )));
        }
        match webhook::verified(&answer.body) {
            Ok(true) => Ok(Trust::Signed),
            Ok(false) => Err(WebhookError::Unauthenticated(
                "PayPal did not verify the signature".into(),
            )),
            Err(detail) => Err(WebhookError::VerifierUnavailable(detail)),
        }
    }

    fn read_webhook(&self, body: &[u8], _trust: Trust) -> Result<WebhookEvent, WebhookError> {
        webhook::read(body)
    }
}

impl PaypalConnector {
    /// `POST /v1/notifications/verify-webhook-signature` under `token`; it changes nothing at
    /// PayPal, so every failure may be retried.
    async fn post_verification(
        &self,
        body: &[u8],
        token: &Secret,
    ) -> Result<HttpAnswer, ProviderError> {
        let request = self
            .http
            .client()
            .post(format!(
                "{}/v1/notifications/verify-webhook-signature",
                self.base_url
            ))
            .bearer_auth(token.expose())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(body.to_vec())
            .build()
            .map_err(|e| {
                KIT.unknown(format!(
                    "cannot build the verification request: {}",
                    e.without_url()
                ))
            })?;
        self.http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer("webhook verification", e))
    }

    /// One capture lookup under `token`; a read, so every failure may be retried.
    async fn get_capture(&self, url: &str, token: &Secret) -> Result<HttpAnswer, ProviderError> {
        let mut builder = self
            .http
            .client()
            .get(url)
            .bearer_auth(token.expose())
            .header(http::header::ACCEPT, "application/json");
        if let Some(assertion) = &self.auth_assertion {
            builder = builder.header("PayPal-Auth-Assertion", assertion.expose());
        }
        let request = builder.build().map_err(|e| {
            KIT.unknown(format!(
                "cannot build the capture lookup: {}",
                e.without_url()
            ))
        })?;
        self.http
            .send(request, RetryPolicy::Idempotent)
            .await
            .map_err(|e| KIT.no_answer("capture lookup", e))
    }
}

/// Turns the capture call's final answer into an outcome or an error.
fn classify(answer: HttpAnswer) -> Result<ProviderOutcome, ProviderError> {
    let status = answer.status;
    if status == StatusCode::OK || status == StatusCode::CREATED {
        let outcome = mapping::outcome(&answer.body).map_err(|detail| {
            tracing::warn!(status = status.as_u16(), %detail, "unusable PayPal capture answer");
            KIT.unknown(detail)
        })?;
        tracing::info!(
            status = status.as_u16(), capture_status = %outcome.status,
            attempts = answer.attempts, "PayPal answered the capture"
        );
        return Ok(outcome);
    }
    let on_422 = mapping::rejection(first_issue(&answer.body).as_deref());
    Err(refusal(&answer, "capture", on_422))
}

/// Turns the void's final answer into an outcome or an error: 204 (no body) or 200 (the
/// authorization, `VOIDED`) is the release done, and so is a 422 `PREVIOUSLY_VOIDED`.
fn classify_void(
    answer: HttpAnswer,
    authorization_id: &str,
) -> Result<ProviderOutcome, ProviderError> {
    let status = answer.status;
    let read = match status {
        StatusCode::NO_CONTENT => Ok(kit::released(
            mapping::VOIDED,
            Some(authorization_id.to_owned()),
        )),
        StatusCode::OK => mapping::voided_authorization(&answer.body, authorization_id),
        StatusCode::UNPROCESSABLE_ENTITY => {
            match mapping::void_refusal(first_issue(&answer.body).as_deref()) {
                mapping::VoidRefusal::AlreadyVoided => {
                    Ok(mapping::previously_voided(authorization_id, &answer.body))
                }
                mapping::VoidRefusal::Refused => {
                    return Err(refusal(&answer, "void", Rejection::FailedPrecondition))
                }
            }
        }
        _ => return Err(refusal(&answer, "void", Rejection::FailedPrecondition)),
    };
    let outcome = read.map_err(|detail| {
        tracing::warn!(status = status.as_u16(), %detail, "unusable PayPal void answer");
        KIT.unknown(detail)
    })?;
    tracing::info!(
        status = status.as_u16(), provider_status = %outcome.provider_status,
        provider_reason = outcome.provider_reason.as_deref().unwrap_or(""),
        attempts = answer.attempts, "PayPal answered the void"
    );
    Ok(outcome)
}

/// Turns a non-success answer to the `what` request into the error the caller sees; a 422 is
/// `on_422` (read from its issue by the caller).
fn refusal(answer: &HttpAnswer, what: &str, on_422: Rejection) -> ProviderError {
    let status = answer.status;
    let failure = failure(answer);
    tracing::warn!(
        status = failure.http_status, code = %failure.code,
        debug_id = failure.debug_id.as_deref().unwrap_or(""), attempts = answer.attempts,
        "PayPal did not take the {what}"
    );
    let rejection = match status {
        StatusCode::BAD_REQUEST => Rejection::InvalidArgument,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Rejection::Unauthorized,
        StatusCode::NOT_FOUND => Rejection::NotFound,
        StatusCode::UNPROCESSABLE_ENTITY => on_422,
        StatusCode::TOO_MANY_REQUESTS => Rejection::RateLimited,
        // 5xx, 409 (a previous request on the authorization still in progress), other 2xx,
        // redirects and undocumented 4xx: PayPal may have acted.
        _ => {
            return KIT.unknown(format!(
                "PayPal answered the {what} with HTTP {} ({})",
                status.as_u16(),
                failure.code
            ));
        }
    };
    KIT.rejected(rejection, failure, answer.retry_after())
}

/// PayPal's error body as a failure: `code` is the first `details[].issue`, else `name`.
fn failure(answer: &HttpAnswer) -> ProviderFailure {
    let body: wire::ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
    let issue = body.details.iter().find_map(|d| d.issue.clone());
    let description = body.details.iter().find_map(|d| d.description.clone());
    let status = answer.status;
    ProviderFailure {
        code: issue
            .or(body.name)
            .or(body.error)
            .unwrap_or_else(|| format!("HTTP_{}", status.as_u16())),
        message: body
            .message
            .or(description)
            .or(body.error_description)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned()),
        debug_id: body.debug_id,
        http_status: status.as_u16(),
    }
}

fn first_issue(body: &[u8]) -> Option<String> {
    let body: wire::ErrorBody = serde_json::from_slice(body).ok()?;
    body.details.into_iter().find_map(|d| d.issue)
}
