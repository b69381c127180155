//! Checkout.com webhooks (providers.md): `Cko-Signature` is the hex HMAC-SHA256 of the raw body
//! with the webhook's secret key; the capture events are `payment_captured`,
//! `payment_capture_declined` and, where Checkout.com sends it, `payment_capture_pending`, with
//! `data {id (payment), action_id, reference, amount, currency, response_code,
//! response_summary, processed_on, ...}`.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::mapping;
use super::wire::Action;
use crate::config::Secret;
use crate::domain::Currency;
use crate::providers::webhook::{CaptureKeys, Delivery, WebhookChange, WebhookError, WebhookEvent};

pub const SIGNATURE_HEADER: &str = "cko-signature";

/// Checks `Cko-Signature` against the body, in constant time.
pub fn verify(delivery: Delivery<'_>, secret: Option<&Secret>) -> Result<(), WebhookError> {
    let Some(secret) = secret else {
        return Err(WebhookError::Unauthenticated(
            "no webhook secret is configured for this Checkout.com account (webhook_secret)".into(),
        ));
    };
    let signature = delivery
        .header(SIGNATURE_HEADER)
        .ok_or_else(|| WebhookError::Unauthenticated("no Cko-Signature header".into()))?;
    let signature = hex::decode(signature.trim())
        .map_err(|_| WebhookError::Unauthenticated("Cko-Signature is not hex".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| WebhookError::Unauthenticated("unusable webhook secret".into()))?;
    mac.update(delivery.body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| WebhookError::Unauthenticated("Cko-Signature does not match the body".into()))
}

#[derive(Debug, Deserialize)]
struct Envelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Value,
}

#[derive(Debug, Deserialize)]
struct CaptureData {
    /// The payment's id.
    id: Option<String>,
    action_id: Option<String>,
    reference: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    response_code: Option<String>,
    response_summary: Option<String>,
    processed_on: Option<String>,
}

/// Reads a verified event. Events other than the capture ones are about no capture's status.
pub fn read(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not a Checkout.com event: {e}")))?;
    let approved = match envelope.kind.as_str() {
        "payment_captured" => Some(true),
        "payment_capture_declined" => Some(false),
        "payment_capture_pending" => None,
        _ => {
            return Ok(WebhookEvent {
                event_id: envelope.id,
                event_type: envelope.kind,
                keys: CaptureKeys::default(),
                change: None,
            })
        }
    };
    let data: CaptureData = serde_json::from_value(envelope.data.clone())
        .map_err(|e| WebhookError::Malformed(format!("data: {e}")))?;
    let action_id = data
        .action_id
        .clone()
        .ok_or_else(|| WebhookError::Malformed("data.action_id is missing".into()))?;
    let currency = data
        .currency
        .as_deref()
        .map(|code| {
            Currency::from_code(code)
                .ok_or_else(|| WebhookError::Malformed(format!("data.currency {code:?}")))
        })
        .transpose()?;
    // The event states what the actions list would: one capture action.
    let action = Action {
        id: action_id.clone(),
        kind: Action::CAPTURE.to_owned(),
        approved,
        amount: data.amount,
        response_code: data.response_code,
        response_summary: data.response_summary,
        processed_on: data.processed_on,
        reference: data.reference.clone(),
    };
    let outcome = mapping::action_outcome(action, envelope.data, currency)
        .map_err(WebhookError::Malformed)?;
    Ok(WebhookEvent {
        event_id: envelope.id,
        event_type: envelope.kind,
        keys: CaptureKeys {
            provider_capture_id: Some(action_id),
            authorization_id: data.id,
            reference: data.reference,
            candidates: Vec::new(),
        },
        change: Some(WebhookChange::Outcome(Box::new(outcome))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CaptureStatus;

    fn signed(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    fn delivery<'a>(headers: &'a http::HeaderMap, body: &'a [u8]) -> Delivery<'a> {
        Delivery { headers, body }
    }

    #[test]
    fn only_the_hmac_of_the_exact_body_is_accepted() {
        let secret = Secret::new("whsec");
        let body = br#"{"id":"evt_1","type":"payment_captured","data":{}}"#;
        let mut headers = http::HeaderMap::new();
        assert!(verify(delivery(&headers, body), Some(&secret)).is_err());
        let good = signed("whsec", body);
        headers.insert(
            SIGNATURE_HEADER,
            good.parse().unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(verify(delivery(&headers, body), Some(&secret)), Ok(()));
        assert!(verify(delivery(&headers, b"{}"), Some(&secret)).is_err());
        assert!(verify(delivery(&headers, body), Some(&Secret::new("other"))).is_err());
        assert!(verify(delivery(&headers, body), None).is_err());
    }

    #[test]
    fn capture_events_become_outcomes() {
        let body = br#"{"id":"evt_1","type":"payment_captured","created_on":"2026-12-04T10:00:00Z",
            "data":{"id":"pay_1","action_id":"act_1","reference":"cap_1","amount":1050,
            "currency":"USD","response_code":"10000","response_summary":"Approved"}}"#;
        let event = read(body).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(event.keys.provider_capture_id.as_deref(), Some("act_1"));
        assert_eq!(event.keys.authorization_id.as_deref(), Some("pay_1"));
        assert_eq!(event.keys.reference.as_deref(), Some("cap_1"));
        let Some(WebhookChange::Outcome(outcome)) = event.change else {
            unreachable!("a capture event changes the capture")
        };
        assert_eq!(outcome.status, CaptureStatus::Completed);
        assert_eq!(
            outcome.captured_amount.map(|m| m.to_string()).as_deref(),
            Some("10.50 USD")
        );
        let declined = br#"{"id":"evt_2","type":"payment_capture_declined",
            "data":{"id":"pay_1","action_id":"act_1","response_code":"20051"}}"#;
        let Some(WebhookChange::Outcome(outcome)) = read(declined).ok().and_then(|e| e.change)
        else {
            unreachable!()
        };
        assert_eq!(outcome.status, CaptureStatus::Declined);
        let other = read(br#"{"id":"evt_3","type":"payment_approved","data":{}}"#);
        assert!(other.is_ok_and(|e| e.change.is_none()));
    }
}
