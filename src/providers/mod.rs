//! Provider connectors: one trait, one folder per provider, one registry.
//!
//! Every connector has the same shape: `client.rs`-like transport (URL, headers, auth, error
//! body) in its `mod.rs`, serde wire types in `wire.rs`, and the mapping between wire types and
//! the domain in `mapping.rs`, where status mapping is an exhaustive `match`.

pub mod account;
pub mod checkout;
pub mod cybersource;
pub mod http;
pub mod payment_options;
pub mod paypal;
pub mod registry;
pub mod stax;

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::outcome::ProviderFailure;
use crate::domain::{CaptureCommand, CaptureRecord, FieldViolation, Provider, ProviderOutcome};

pub use account::Account;
pub use registry::{Connectors, Registration, PROVIDERS};

/// One capture call to a provider.
#[derive(Debug, Clone, Copy)]
pub struct CaptureCall<'a> {
    pub command: &'a CaptureCommand,
    /// Stable per capture: the first attempt, every retry and every later reconciliation send the
    /// same key, so the provider can never capture twice.
    pub idempotency_key: &'a str,
}

/// How the provider refused a request; decides the gRPC code the caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The authorization (or payment) does not exist at the provider.
    NotFound,
    /// The authorization cannot be captured as asked: expired, voided, already captured,
    /// amount above what is left, currency mismatch.
    FailedPrecondition,
    /// The provider found the request itself invalid.
    InvalidArgument,
    /// The provider throttled us; nothing was captured.
    RateLimited,
    /// The provider refused our credentials or permissions: a configuration problem.
    Unauthorized,
}

/// Why a provider call did not produce an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with a definite refusal: nothing was captured.
    #[error("{provider} refused the capture ({}: {})", failure.code, failure.message)]
    Rejected {
        provider: Provider,
        rejection: Rejection,
        failure: ProviderFailure,
        /// How long the provider asked us to wait (429 `Retry-After`).
        retry_after: Option<Duration>,
    },
    /// The call ended without a definite answer (timeout, 5xx, connection lost, unreadable
    /// body): the capture may or may not have happened at the provider.
    #[error("{provider} gave no definite answer: {detail}")]
    OutcomeUnknown { provider: Provider, detail: String },
}

impl ProviderError {
    /// The call ended without a definite answer.
    pub fn unknown(provider: Provider, detail: impl Into<String>) -> Self {
        ProviderError::OutcomeUnknown {
            provider,
            detail: detail.into(),
        }
    }

    /// The transport got no answer to `what`.
    pub fn no_answer(provider: Provider, what: &str, error: &http::NoAnswer) -> Self {
        Self::unknown(provider, format!("{what}: {error}"))
    }

    /// A definite refusal; a wait is kept only where the provider throttled.
    pub fn rejected(
        provider: Provider,
        rejection: Rejection,
        failure: ProviderFailure,
        retry_after: Option<Duration>,
    ) -> Self {
        ProviderError::Rejected {
            provider,
            rejection,
            failure,
            retry_after: match rejection {
                Rejection::RateLimited => retry_after,
                Rejection::NotFound
                | Rejection::FailedPrecondition
                | Rejection::InvalidArgument
                | Rejection::Unauthorized => None,
            },
        }
    }
}

/// A provider connector. Each instance serves one configured provider account.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The provider this connector speaks to.
    fn provider(&self) -> Provider;

    /// Refuses, before anything is stored or sent, what this provider cannot express.
    fn check(&self, command: &CaptureCommand) -> Vec<FieldViolation>;

    /// Sends the capture and returns the provider's normalized answer.
    async fn capture(&self, call: CaptureCall<'_>) -> Result<ProviderOutcome, ProviderError>;

    /// Asks the provider what became of an earlier capture: to confirm one it accepted but has
    /// not confirmed (`PENDING`), or to resolve one whose call ended without an answer
    /// (`PROCESSING`). Looks the capture up where the provider offers a lookup; otherwise re-sends
    /// it with the same idempotency key (`capture.id`), which the provider answers with the
    /// original result.
    async fn fetch_outcome(
        &self,
        capture: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError>;
}
