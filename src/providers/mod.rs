//! Provider connectors: one trait, one folder per provider, one registry table
//! ([`PROVIDERS`]).
//!
//! Everything about one provider lives in its folder: `account.rs` (its account as
//! configuration describes it, and the connector it builds), the transport (URL, headers, auth,
//! error body) in `mod.rs`, serde wire types in `wire.rs`, and the mapping between wire types
//! and the domain in `mapping.rs`, where status mapping is an exhaustive `match`.

pub mod account;
pub mod checkout;
pub mod connectors;
pub mod cybersource;
#[cfg(test)]
pub mod fuzzing;
pub mod http;
pub mod kit;
pub mod payment_options;
pub mod paypal;
pub mod stax;
pub mod webhook;

use std::time::Duration;

use async_trait::async_trait;

use crate::config::{ConfigError, ProviderSources};
use crate::domain::capture::AuthorizationId;
use crate::domain::outcome::ProviderFailure;
use crate::domain::pan;
use crate::domain::{
    CaptureCommand, CaptureRecord, FieldViolation, Money, Operation, Provider, ProviderOutcome,
    ReleaseRules,
};

pub use account::{Account, Accounts};
pub use connectors::Connectors;

/// One provider: its domain value (whose `as_str` names its `[[providers.<name>]]` table and,
/// upper-cased, its `CAPTURE_<NAME>_*` variables) and how its accounts are read. Each
/// account type builds its own connector.
pub struct Registration {
    pub provider: Provider,
    pub load_accounts: fn(&ProviderSources) -> Result<Accounts, ConfigError>,
}

/// Every provider the service captures at.
#[rustfmt::skip]
pub const PROVIDERS: [Registration; 5] = [
    Registration { provider: Provider::Paypal, load_accounts: account::load::<paypal::PaypalAccount> },
    Registration { provider: Provider::Checkout, load_accounts: account::load::<checkout::CheckoutAccount> },
    Registration { provider: Provider::Cybersource, load_accounts: account::load::<cybersource::CybersourceAccount> },
    Registration { provider: Provider::PaymentOptions, load_accounts: account::load::<payment_options::PaymentOptionsAccount> },
    Registration { provider: Provider::Stax, load_accounts: account::load::<stax::StaxAccount> },
];

/// Every configured account, each provider's default first. A table for a provider that does
/// not exist is an error naming it.
pub fn load_accounts(sources: &ProviderSources) -> Result<Accounts, ConfigError> {
    if let Some(unknown) = sources
        .table_names()
        .find(|name| !PROVIDERS.iter().any(|r| r.provider.as_str() == *name))
    {
        return Err(ConfigError::new(
            &format!("providers.{unknown}"),
            "no such provider (or setting)",
        ));
    }
    let mut accounts = Vec::new();
    for registration in &PROVIDERS {
        accounts.extend((registration.load_accounts)(sources)?);
    }
    Ok(accounts)
}

/// One capture call to a provider.
#[derive(Debug, Clone, Copy)]
pub struct CaptureCall<'a> {
    pub command: &'a CaptureCommand,
    /// Stable per capture: the first attempt, every retry and every later reconciliation send the
    /// same key, so the provider can never capture twice.
    pub idempotency_key: &'a str,
    /// The capture's place among its authorization's captures (1 for the first), the same on
    /// every retry: [`CaptureRecord::capture_sequence`](crate::domain::CaptureRecord).
    pub capture_sequence: u32,
}

impl<'a> CaptureCall<'a> {
    /// The call that makes (or re-sends) `capture`.
    pub fn of(capture: &'a CaptureRecord) -> Self {
        CaptureCall {
            command: &capture.command,
            idempotency_key: &capture.id,
            capture_sequence: capture.capture_sequence,
        }
    }
}

/// One release call: the void (or authorization reversal) of what is left of an authorization.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseCall<'a> {
    pub authorization_id: &'a AuthorizationId,
    /// Stable per release (its record's id): every retry and every later look sends the same.
    pub idempotency_key: &'a str,
    /// The authorized amount, when the caller or an earlier capture told the service; a
    /// provider whose release states an amount (Cybersource's reversal) needs it.
    pub authorized_amount: Option<Money>,
}

impl<'a> ReleaseCall<'a> {
    /// The call that makes (or re-sends) `release`.
    pub fn of(release: &'a CaptureRecord) -> Self {
        ReleaseCall {
            authorization_id: &release.command.parts().authorization_id,
            idempotency_key: &release.id,
            authorized_amount: release.command.parts().authorized_amount,
        }
    }
}

/// Sends `record`'s operation to the provider (the first time, or again with the same key).
/// The one place an operation picks its provider call: a new operation is a new arm here.
pub async fn send(
    connector: &dyn Connector,
    record: &CaptureRecord,
) -> Result<ProviderOutcome, ProviderError> {
    match record.command.operation() {
        Operation::Capture => connector.capture(CaptureCall::of(record)).await,
        Operation::Release => connector.release(ReleaseCall::of(record)).await,
    }
}

/// Asks the provider what became of `record`'s operation, sent before.
pub async fn look(
    connector: &dyn Connector,
    record: &CaptureRecord,
) -> Result<ProviderOutcome, ProviderError> {
    match record.command.operation() {
        Operation::Capture => connector.fetch_outcome(record).await,
        Operation::Release => connector.fetch_release_outcome(record).await,
    }
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

impl Rejection {
    /// Whether the refusal is the provider's word on the capture itself, so that it settles a
    /// capture sent before whose answer was lost as well as a new one. A throttle or a refused
    /// credential says only that nothing was done this time: an earlier attempt may have
    /// captured.
    pub fn settles_earlier_attempts(self) -> bool {
        match self {
            Rejection::NotFound | Rejection::FailedPrecondition | Rejection::InvalidArgument => {
                true
            }
            Rejection::RateLimited | Rejection::Unauthorized => false,
        }
    }
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
    OutcomeUnknown {
        provider: Provider,
        detail: String,
        /// How long the provider asked us to wait (a 429 after an attempt went unanswered).
        retry_after: Option<Duration>,
    },
}

impl ProviderError {
    /// The metrics' word for how a call ended: `refused` (a definite no), `error` (our
    /// credentials refused: a configuration problem), `unknown` (no definite answer).
    pub fn outcome_label(&self) -> &'static str {
        match self {
            ProviderError::Rejected {
                rejection: Rejection::Unauthorized,
                ..
            } => "error",
            ProviderError::Rejected { .. } => "refused",
            ProviderError::OutcomeUnknown { .. } => "unknown",
        }
    }

    /// The call ended without a definite answer.
    pub fn unknown(provider: Provider, detail: impl Into<String>) -> Self {
        Self::unknown_after(provider, detail.into(), None)
    }

    /// The transport got no answer to `what` (a 429 after an unanswered attempt keeps its wait).
    pub fn no_answer(provider: Provider, what: &str, error: &http::NoAnswer) -> Self {
        Self::unknown_after(provider, format!("{what}: {error}"), error.retry_after)
    }

    fn unknown_after(provider: Provider, detail: String, retry_after: Option<Duration>) -> Self {
        ProviderError::OutcomeUnknown {
            provider,
            // Made from provider answers: logs and callers see it, so no card number may stay.
            detail: pan::mask_card_numbers(&detail).into_owned(),
            retry_after,
        }
    }

    /// A definite refusal; a wait is kept only where the provider throttled.
    pub fn rejected(
        provider: Provider,
        rejection: Rejection,
        failure: ProviderFailure,
        retry_after: Option<Duration>,
    ) -> Self {
        let failure = ProviderFailure {
            message: pan::mask_card_numbers(&failure.message).into_owned(),
            ..failure
        };
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

    /// How this provider releases an authorization's remainder, as its documentation says.
    fn release_rules(&self) -> ReleaseRules;

    /// Releases what is left of the authorization (a void or an authorization reversal). A
    /// release the provider reports as done, also by an earlier request (already voided), is a
    /// `COMPLETED` outcome; a definite refusal is a [`ProviderError::Rejected`].
    async fn release(&self, call: ReleaseCall<'_>) -> Result<ProviderOutcome, ProviderError>;

    /// What became of a release sent before whose answer was lost. By default it is sent
    /// again with the same key: a second void releases nothing more.
    async fn fetch_release_outcome(
        &self,
        release: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        self.release(ReleaseCall::of(release)).await
    }

    /// Whether an operation whose earlier attempt went unanswered may be sent again as it is:
    /// the provider answers a repeat with the original result (an idempotency key) or refuses
    /// it as a duplicate. Where it may not, a caller's retry asks the provider as the reconciler
    /// does ([`look`]: [`Connector::fetch_outcome`], [`Connector::fetch_release_outcome`]).
    fn resends_safely(&self) -> bool {
        true
    }

    /// The checks a delivery's own headers and bytes allow, made here and at once: a local
    /// signature (an HMAC) decides; a delivery that only the provider can vouch for
    /// ([`webhook::Screened::AskProvider`]) must at least carry what that question needs. What
    /// fails here is refused before it holds a slot or is kept. A provider without webhooks
    /// refuses every delivery.
    fn screen_webhook(
        &self,
        _delivery: webhook::Delivery<'_>,
    ) -> Result<webhook::Screened, webhook::WebhookError> {
        Err(webhook::WebhookError::NotSupported(
            "this provider documents no capture webhook",
        ))
    }

    /// Decides how far a webhook delivery can be trusted: a signed one whose signature checks
    /// out, or a mere hint. Asks the provider where [`Connector::screen_webhook`] says so
    /// (providers that do override this).
    async fn verify_webhook(
        &self,
        delivery: webhook::Delivery<'_>,
    ) -> Result<webhook::Trust, webhook::WebhookError> {
        match self.screen_webhook(delivery)? {
            webhook::Screened::Trusted(trust) => Ok(trust),
            webhook::Screened::AskProvider => Err(webhook::WebhookError::VerifierUnavailable(
                "this connector has no verification call".into(),
            )),
        }
    }

    /// Reads the event of a delivery [`Connector::verify_webhook`] took (again, from the stored
    /// body, when an event waited for its capture). Never calls the provider.
    fn read_webhook(
        &self,
        _body: &[u8],
        _trust: webhook::Trust,
    ) -> Result<webhook::WebhookEvent, webhook::WebhookError> {
        Err(webhook::WebhookError::NotSupported(
            "this provider documents no capture webhook",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_errors_never_carry_a_card_number() {
        let unknown = ProviderError::unknown(Provider::Stax, "body: card 4111111111111111");
        assert!(
            !unknown.to_string().contains("4111111111111111"),
            "{unknown}"
        );
        let failure = ProviderFailure {
            code: "X".into(),
            message: "declined 4111 1111 1111 1111".into(),
            debug_id: None,
            http_status: 422,
        };
        let rejected =
            ProviderError::rejected(Provider::Stax, Rejection::InvalidArgument, failure, None);
        assert!(
            !rejected.to_string().contains("1111 1111 1111"),
            "{rejected}"
        );
    }
}
