//! Provider notifications (webhooks) as the service understands them, whichever provider sent
//! them: how far one is believed, which capture it names, and what it says happened.

use crate::domain::{Money, ProviderOutcome};

/// How far a delivery can be believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Its signature checks out: its body says what happened.
    Signed,
    /// Unverifiable: its body only names captures to look up at the provider.
    Hint,
}

impl Trust {
    pub fn as_str(self) -> &'static str {
        match self {
            Trust::Signed => "signed",
            Trust::Hint => "hint",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Trust::Signed, Trust::Hint]
            .into_iter()
            .find(|t| t.as_str() == name)
    }
}

/// Which capture an event is about, as the provider names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureKeys {
    /// The provider's id of the capture (Checkout.com's action id, PayPal's capture id).
    pub provider_capture_id: Option<String>,
    /// The provider's id of the authorization (payment) captured.
    pub authorization_id: Option<String>,
    /// A reference we sent with the capture: our capture id, or the caller's reference.
    pub reference: Option<String>,
    /// A hint's ids, any of which may be a capture's provider id (their meaning is not trusted).
    pub candidates: Vec<String>,
}

/// What an event says happened to the capture.
#[derive(Debug, Clone)]
pub enum WebhookChange {
    /// The provider's answer about the capture: completed, pending or declined.
    Outcome(Box<ProviderOutcome>),
    /// Money was returned to the payer; `total` is everything refunded from the capture so far.
    Refunded { total: Money },
}

/// One event read from a delivery.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// The provider's id of the event: a repeated delivery carries the same.
    pub event_id: String,
    pub event_type: String,
    pub keys: CaptureKeys,
    /// `None` for an event that is about no capture's status (acknowledged, then ignored), and
    /// for every hint.
    pub change: Option<WebhookChange>,
}
