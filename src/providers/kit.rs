//! The rules every connector shares, once: how an answer without a definite outcome, a lost
//! call and a refusal become a [`ProviderError`] for one provider, with the refusal logged and
//! the provider's `Retry-After` kept only where it throttled; and what a release the provider
//! reports done looks like ([`released`]).

use std::time::Duration;

use super::http::{HttpAnswer, NoAnswer};
use super::{ProviderError, Rejection};
use crate::domain::outcome::ProviderFailure;
use crate::domain::{CaptureStatus, Provider, ProviderOutcome};

/// The shared rules, bound to one provider: each connector holds one as a `const`.
#[derive(Debug, Clone, Copy)]
pub struct Kit {
    pub provider: Provider,
}

impl Kit {
    pub const fn new(provider: Provider) -> Self {
        Kit { provider }
    }

    /// The call ended without a definite answer: the provider may have captured.
    pub fn unknown(self, detail: impl Into<String>) -> ProviderError {
        ProviderError::unknown(self.provider, detail)
    }

    /// The transport got no answer to `what`.
    pub fn no_answer(self, what: &str, error: NoAnswer) -> ProviderError {
        ProviderError::no_answer(self.provider, what, &error)
    }

    /// A definite refusal; `retry_after` is kept only where the provider throttled.
    pub fn rejected(
        self,
        rejection: Rejection,
        failure: ProviderFailure,
        retry_after: Option<Duration>,
    ) -> ProviderError {
        ProviderError::rejected(self.provider, rejection, failure, retry_after)
    }

    /// The provider's refusal of the `what` request in `answer`, logged, with the wait it asked
    /// for (`Retry-After`) when it throttled.
    pub fn refused(
        self,
        answer: &HttpAnswer,
        what: &str,
        rejection: Rejection,
        failure: ProviderFailure,
    ) -> ProviderError {
        tracing::warn!(
            provider = %self.provider, status = failure.http_status, code = %failure.code,
            debug_id = failure.debug_id.as_deref().unwrap_or(""), attempts = answer.attempts,
            "{} refused the {what}; nothing was done", self.provider
        );
        self.rejected(rejection, failure, answer.retry_after())
    }
}

/// A release the provider reports done: `COMPLETED`, in the provider's words (`provider_status`),
/// naming what the provider gave an id (the void, the reversal, or the authorization released).
/// Nothing is captured by a release, so no amount or breakdown is reported.
pub fn released(
    provider_status: impl Into<String>,
    provider_id: Option<String>,
) -> ProviderOutcome {
    ProviderOutcome {
        status: CaptureStatus::Completed,
        reason: None,
        provider_capture_id: provider_id,
        provider_status: provider_status.into(),
        provider_reason: None,
        captured_amount: None,
        breakdown: None,
        network_reference: None,
        seller_protection: None,
        processor_response: None,
        redacted_body: None,
    }
}
