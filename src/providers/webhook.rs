//! Provider notifications (webhooks): what a connector makes of one, in one shape for every
//! provider. Each provider's own reading lives in its folder's `webhook.rs`.
//!
//! A connector first decides how far a delivery can be trusted ([`Trust`]): a **signed** one
//! (Checkout.com's HMAC, PayPal's verification API) is believed; a **hint** (providers whose
//! signature scheme our material does not confirm) only names captures to look up through the
//! connector. Then it reads the event: which capture it is about ([`CaptureKeys`]) and what it
//! says happened ([`WebhookChange`]).

pub use crate::domain::notice::{CaptureKeys, Trust, WebhookChange, WebhookEvent};

/// A delivery as received: its headers and the exact bytes of its body (signatures cover those).
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

impl Delivery<'_> {
    /// A header as text, if present and printable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the local checks of a delivery found ([`Connector::screen_webhook`]).
///
/// [`Connector::screen_webhook`]: crate::providers::Connector::screen_webhook
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screened {
    /// Decided here: signed (the local signature checks out) or a hint.
    Trusted(Trust),
    /// Well-formed, but only the provider's verification call can say it is genuine.
    AskProvider,
}

/// Why a delivery is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// The provider documents no webhook we take (PaymentOptions).
    #[error("{0}")]
    NotSupported(&'static str),
    /// The signature is missing or wrong, or we have nothing to check it with: 401, nothing
    /// changes.
    #[error("not authenticated: {0}")]
    Unauthenticated(String),
    /// The provider's verification could not be asked: the provider should deliver again.
    #[error("the signature could not be verified now: {0}")]
    VerifierUnavailable(String),
    /// Authenticated, but not an event we can read.
    #[error("unreadable event: {0}")]
    Malformed(String),
}

impl WebhookError {
    /// The metrics' word for a failed verification: `refused` (not genuine), `unknown` (the
    /// provider could not say), `error` (anything else).
    pub fn outcome_label(&self) -> &'static str {
        match self {
            WebhookError::Unauthenticated(_) => "refused",
            WebhookError::VerifierUnavailable(_) => "unknown",
            WebhookError::NotSupported(_) | WebhookError::Malformed(_) => "error",
        }
    }
}

/// The most ids a hint is taken to name: a hint names a capture or two, not hundreds.
pub const MAX_HINT_IDS: usize = 16;

/// The first [`MAX_HINT_IDS`] distinct strings under an `"id"` key, at any depth: a hint's
/// candidate capture ids. Nothing else of a hint's body is read, and the walk stops there.
pub fn ids_in(json: &serde_json::Value) -> Vec<String> {
    fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
        if found.len() >= MAX_HINT_IDS {
            return;
        }
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        serde_json::Value::String(id) if key == "id" => {
                            if id.len() <= 128 && !found.contains(id) {
                                found.push(id.clone());
                            }
                        }
                        _ => walk(value, found),
                    }
                    if found.len() >= MAX_HINT_IDS {
                        return;
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    walk(item, found);
                    if found.len() >= MAX_HINT_IDS {
                        return;
                    }
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(json, &mut found);
    found
}

/// A hint read from its body: only the ids it names. Its own id is the digest of its bytes:
/// an id field in an unauthenticated body could be anyone's.
pub fn hint(body: &[u8], event_type_key: &str) -> WebhookEvent {
    use sha2::Digest;
    let json = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
    let event_type = json
        .get(event_type_key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    WebhookEvent {
        event_id: format!("sha256:{}", hex::encode(sha2::Sha256::digest(body))),
        event_type,
        keys: CaptureKeys {
            candidates: ids_in(&json),
            ..CaptureKeys::default()
        },
        change: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_names_only_the_ids_in_its_body() {
        let body = br#"{"eventType":"x","payload":[{"data":{"id":"7000","nested":{"id":"7001"}}}],"id":"7000"}"#;
        let event = hint(body, "eventType");
        assert_eq!(
            event.keys.candidates,
            vec!["7000".to_owned(), "7001".to_owned()]
        );
        assert_eq!(event.event_type, "x");
        assert!(event.change.is_none());
        assert!(event.event_id.starts_with("sha256:"));
        assert!(hint(b"not json", "eventType").keys.candidates.is_empty());
        // A body naming thousands of ids yields the first few, without walking the rest.
        let many: Vec<String> = (0..20_000).map(|i| format!(r#"{{"id":"{i}"}}"#)).collect();
        let body = format!("[{}]", many.join(","));
        let event = hint(body.as_bytes(), "eventType");
        assert_eq!(event.keys.candidates.len(), MAX_HINT_IDS);
        assert_eq!(event.keys.candidates[0], "0");
    }
}
