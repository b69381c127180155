//! PayPal webhooks (providers.md): the envelope `{id, create_time, resource_type, event_type,
//! summary, resource, ...}`, authenticated by PayPal's own verification API,
//! `POST /v1/notifications/verify-webhook-signature`, with the `PAYPAL-*` transmission headers,
//! the configured webhook id and the event. Only `verification_status: SUCCESS` counts.
//!
//! Capture events (`PAYMENT.CAPTURE.COMPLETED`, `.PENDING`, `.DECLINED`, `.DENIED`) carry the
//! capture as resource; `.REFUNDED` and `.REVERSED` carry a refund, whose `up` link names the
//! capture and whose `seller_payable_breakdown.total_refunded_amount` says how much of it has
//! been returned in all (*unconfirmed* for `.REVERSED`: our material does not show its
//! resource; it is read as a refund).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use super::mapping;
use super::wire;
use crate::domain::Money;
use crate::providers::webhook::{CaptureKeys, Delivery, WebhookChange, WebhookError, WebhookEvent};

/// The transmission headers, as PayPal names them (HTTP header names are case-insensitive).
const AUTH_ALGO: &str = "paypal-auth-algo";
const CERT_URL: &str = "paypal-cert-url";
const TRANSMISSION_ID: &str = "paypal-transmission-id";
const TRANSMISSION_SIG: &str = "paypal-transmission-sig";
const TRANSMISSION_TIME: &str = "paypal-transmission-time";

/// The body of `POST /v1/notifications/verify-webhook-signature`.
#[derive(Debug, Serialize)]
pub struct VerifyRequest<'a> {
    pub auth_algo: &'a str,
    pub cert_url: &'a str,
    pub transmission_id: &'a str,
    pub transmission_sig: &'a str,
    pub transmission_time: &'a str,
    pub webhook_id: &'a str,
    /// The event exactly as delivered: PayPal checks the signature over its bytes.
    pub webhook_event: &'a RawValue,
}

/// Its answer.
#[derive(Debug, Deserialize)]
pub struct VerifyAnswer {
    pub verification_status: String,
}

/// The verification request for a delivery, or why there can be none (no headers, no webhook
/// id configured, a body that is not JSON).
pub fn verify_request(
    delivery: Delivery<'_>,
    webhook_id: Option<&str>,
) -> Result<Vec<u8>, WebhookError> {
    let webhook_id = webhook_id.ok_or_else(|| {
        WebhookError::Unauthenticated(
            "no webhook id is configured for this PayPal account (webhook_id)".into(),
        )
    })?;
    let header = |name: &str| {
        delivery
            .header(name)
            .ok_or_else(|| WebhookError::Unauthenticated(format!("no {name} header")))
    };
    let event: &RawValue = serde_json::from_slice(delivery.body)
        .map_err(|e| WebhookError::Unauthenticated(format!("the body is not JSON: {e}")))?;
    let request = VerifyRequest {
        auth_algo: header(AUTH_ALGO)?,
        cert_url: header(CERT_URL)?,
        transmission_id: header(TRANSMISSION_ID)?,
        transmission_sig: header(TRANSMISSION_SIG)?,
        transmission_time: header(TRANSMISSION_TIME)?,
        webhook_id,
        webhook_event: event,
    };
    serde_json::to_vec(&request).map_err(|e| WebhookError::Malformed(e.to_string()))
}

/// Whether PayPal's answer says the delivery is genuine.
pub fn verified(body: &[u8]) -> Result<bool, String> {
    let answer: VerifyAnswer =
        serde_json::from_slice(body).map_err(|e| format!("unreadable verification answer: {e}"))?;
    Ok(answer.verification_status == "SUCCESS")
}

#[derive(Debug, Deserialize)]
struct Envelope {
    id: String,
    event_type: String,
    #[serde(default)]
    resource: Value,
}

/// A refund, as `.REFUNDED` carries it.
#[derive(Debug, Deserialize)]
struct Refund {
    amount: Option<wire::Money>,
    seller_payable_breakdown: Option<RefundBreakdown>,
    #[serde(default)]
    links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
struct RefundBreakdown {
    total_refunded_amount: Option<wire::Money>,
}

#[derive(Debug, Deserialize)]
struct Link {
    href: String,
    rel: String,
}

/// Reads a verified event.
pub fn read(body: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|e| WebhookError::Malformed(format!("not a PayPal event: {e}")))?;
    let (keys, change) = match envelope.event_type.as_str() {
        "PAYMENT.CAPTURE.COMPLETED"
        | "PAYMENT.CAPTURE.PENDING"
        | "PAYMENT.CAPTURE.DECLINED"
        | "PAYMENT.CAPTURE.DENIED" => {
            let resource = serde_json::to_vec(&envelope.resource)
                .map_err(|e| WebhookError::Malformed(e.to_string()))?;
            let outcome = mapping::outcome(&resource).map_err(WebhookError::Malformed)?;
            let keys = CaptureKeys {
                provider_capture_id: outcome.provider_capture_id.clone(),
                authorization_id: authorization_of(&envelope.resource),
                ..CaptureKeys::default()
            };
            (keys, Some(WebhookChange::Outcome(Box::new(outcome))))
        }
        "PAYMENT.CAPTURE.REFUNDED" | "PAYMENT.CAPTURE.REVERSED" => {
            let refund: Refund = serde_json::from_value(envelope.resource)
                .map_err(|e| WebhookError::Malformed(format!("resource: {e}")))?;
            let capture_id = refund
                .links
                .iter()
                .find(|l| l.rel == "up")
                .and_then(|l| l.href.rsplit('/').next())
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    WebhookError::Malformed("the refund has no `up` link to its capture".into())
                })?;
            let total = refund
                .seller_payable_breakdown
                .and_then(|b| b.total_refunded_amount)
                .or(refund.amount)
                .ok_or_else(|| WebhookError::Malformed("the refund has no amount".into()))?;
            let total = Money::parse(&total.currency_code, &total.value)
                .map_err(|e| WebhookError::Malformed(format!("refunded amount: {e}")))?;
            let keys = CaptureKeys {
                provider_capture_id: Some(capture_id),
                ..CaptureKeys::default()
            };
            (keys, Some(WebhookChange::Refunded { total }))
        }
        _ => (CaptureKeys::default(), None),
    };
    Ok(WebhookEvent {
        event_id: envelope.id,
        event_type: envelope.event_type,
        keys,
        change,
    })
}

/// `supplementary_data.related_ids.authorization_id`, where PayPal includes it.
fn authorization_of(capture: &Value) -> Option<String> {
    capture
        .pointer("/supplementary_data/related_ids/authorization_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CaptureStatus;

    #[test]
    fn the_verification_request_carries_the_headers_the_id_and_the_exact_event() {
        let body = br#"{"id":"WH-1", "event_type":"PAYMENT.CAPTURE.COMPLETED"}"#;
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("PAYPAL-AUTH-ALGO", "SHA256withRSA"),
            (
                "PAYPAL-CERT-URL",
                "https://api.paypal.com/v1/notifications/certs/CERT-1",
            ),
            ("PAYPAL-TRANSMISSION-ID", "t-1"),
            ("PAYPAL-TRANSMISSION-SIG", "c2ln"),
            ("PAYPAL-TRANSMISSION-TIME", "2026-12-04T10:00:00Z"),
        ] {
            headers.insert(name, value.parse().unwrap_or_else(|_| unreachable!()));
        }
        let delivery = Delivery {
            headers: &headers,
            body,
        };
        let request = verify_request(delivery, Some("WH-ID"))
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        assert_eq!(
            request,
            r#"{"auth_algo":"SHA256withRSA","cert_url":"https://api.paypal.com/v1/notifications/certs/CERT-1","transmission_id":"t-1","transmission_sig":"c2ln","transmission_time":"2026-12-04T10:00:00Z","webhook_id":"WH-ID","webhook_event":{"id":"WH-1", "event_type":"PAYMENT.CAPTURE.COMPLETED"}}"#
        );
        assert!(verify_request(delivery, None).is_err());
        headers.remove("PAYPAL-TRANSMISSION-SIG");
        let unsigned = Delivery {
            headers: &headers,
            body,
        };
        assert!(verify_request(unsigned, Some("WH-ID")).is_err());
        assert_eq!(verified(br#"{"verification_status":"SUCCESS"}"#), Ok(true));
        assert_eq!(verified(br#"{"verification_status":"FAILURE"}"#), Ok(false));
    }

    #[test]
    fn capture_and_refund_events_are_read() {
        let completed = br#"{"id":"WH-1","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":
            {"id":"2GG2","status":"COMPLETED","amount":{"currency_code":"USD","value":"10.00"},
             "supplementary_data":{"related_ids":{"authorization_id":"0VF5"}}}}"#;
        let event = read(completed).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(event.keys.provider_capture_id.as_deref(), Some("2GG2"));
        assert_eq!(event.keys.authorization_id.as_deref(), Some("0VF5"));
        assert!(
            matches!(event.change, Some(WebhookChange::Outcome(ref o)) if o.status == CaptureStatus::Completed)
        );
        let refunded = br#"{"id":"WH-2","event_type":"PAYMENT.CAPTURE.REFUNDED","resource":
            {"id":"1JU0","amount":{"currency_code":"USD","value":"4.00"},"status":"COMPLETED",
             "seller_payable_breakdown":{"total_refunded_amount":{"currency_code":"USD","value":"6.00"}},
             "links":[{"href":"https://api.paypal.com/v2/payments/refunds/1JU0","rel":"self"},
                      {"href":"https://api.paypal.com/v2/payments/captures/2GG2","rel":"up"}]}}"#;
        let event = read(refunded).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(event.keys.provider_capture_id.as_deref(), Some("2GG2"));
        let Some(WebhookChange::Refunded { total }) = event.change else {
            unreachable!("a refund event")
        };
        assert_eq!(total.to_string(), "6.00 USD");
        assert!(
            read(br#"{"id":"WH-3","event_type":"CHECKOUT.ORDER.APPROVED","resource":{}}"#)
                .is_ok_and(|e| e.change.is_none())
        );
    }
}
