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

/// Every string under an `"id"` key, at any depth: a hint's candidate capture ids. Nothing else
/// of a hint's body is read.
pub fn ids_in(body: &[u8]) -> Vec<String> {
    fn walk(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match value {
                        serde_json::Value::String(id) if key == "id" => {
                            if !found.contains(id) && id.len() <= 128 {
                                found.push(id.clone());
                            }
                        }
                        _ => walk(value, found),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        walk(&json, &mut found);
    }
    // A hint names a few captures; a body naming hundreds is not one.
    found.truncate(16);
    found
}

/// A hint read from its body: only the ids it names.
pub fn hint(body: &[u8], event_type_key: &str, event_id_key: &str) -> WebhookEvent {
    let json = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
    let text = |key: &str| {
        json.get(key)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(128)
            .collect::<String>()
    };
    // Without an id of its own, a delivery is known again by its bytes.
    let event_id = Some(text(event_id_key))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| {
            use sha2::Digest;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)))
        });
    WebhookEvent {
        event_id,
        event_type: text(event_type_key),
        keys: CaptureKeys {
            candidates: ids_in(body),
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
        assert_eq!(ids_in(body), vec!["7000".to_owned(), "7001".to_owned()]);
        assert!(ids_in(b"not json").is_empty());
        let event = hint(body, "eventType", "notificationId");
        assert_eq!(event.event_type, "x");
        assert!(event.change.is_none());
    }
}
