//! PayPal's webhooks (Webhooks API v1, providers.md): the event envelope, the transmission
//! headers sent with it, and `POST /v1/notifications/verify-webhook-signature`, which a service
//! calls to learn whether a delivery came from PayPal.
//!
//! Real PayPal signs `transmission_id|transmission_time|webhook_id|crc32(body)` with the private
//! key of the certificate at `PAYPAL-CERT-URL` (`SHA256withRSA`). The sandbox has no certificate:
//! its signature is the base64 HMAC-SHA256 of that same string with a key of its own, and the
//! certificate URL is not served. The verify endpoint, like PayPal's, takes the event as JSON
//! rather than as bytes, so it compares what it is given with what was sent (every header
//! value, the webhook id, and the event as a JSON value): SUCCESS only for an exact match.
//! *Unconfirmed*: the signature algorithm's details (CRC-32 written in decimal) and PayPal's
//! exact wording of the event summaries.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::super::kit::{json_reply, random_alnum, random_uuid, rfc3339};
use super::super::webhooks::Outgoing;
use super::errors::{authentication_failure, validation_error};
use super::PaypalEmulator;
use crate::domain::Provider;

/// The headers every delivery carries, in PayPal's spelling.
pub(super) const TRANSMISSION_ID: &str = "PAYPAL-TRANSMISSION-ID";
pub(super) const TRANSMISSION_TIME: &str = "PAYPAL-TRANSMISSION-TIME";
pub(super) const TRANSMISSION_SIG: &str = "PAYPAL-TRANSMISSION-SIG";
pub(super) const CERT_URL: &str = "PAYPAL-CERT-URL";
pub(super) const AUTH_ALGO: &str = "PAYPAL-AUTH-ALGO";
const ALGORITHM: &str = "SHA256withRSA";
/// Transmissions remembered for verification (oldest forgotten first).
const KEPT_TRANSMISSIONS: usize = 10_000;

/// What was sent with one transmission.
struct Transmission {
    time: String,
    sig: String,
    cert_url: String,
    event: Value,
}

/// Every transmission the sandbox sent, by transmission id.
#[derive(Default)]
pub(super) struct Transmissions {
    by_id: HashMap<String, Transmission>,
    order: VecDeque<String>,
}

impl Transmissions {
    fn remember(&mut self, id: String, transmission: Transmission) {
        if self.order.len() == KEPT_TRANSMISSIONS {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
        self.order.push_back(id.clone());
        self.by_id.insert(id, transmission);
    }
}

/// PayPal's envelope around `resource`.
pub(super) fn event(
    event_type: &str,
    resource_type: &str,
    summary: String,
    resource: Value,
) -> Value {
    json!({
        "id": format!("WH-{}-{}", random_alnum(17), random_alnum(17)),
        "create_time": rfc3339(SystemTime::now()),
        "resource_type": resource_type,
        "event_type": event_type,
        "summary": summary,
        "resource": resource,
        "event_version": "1.0",
        "resource_version": "2.0",
    })
}

impl PaypalEmulator {
    /// Signs `event`, remembers the transmission for verification and sends it (if a receiver
    /// is set); returns the `PAYPAL-*` headers sent with it, by name.
    pub(super) fn transmit(&self, event: &Value) -> Map<String, Value> {
        let body = event.to_string();
        let id = random_uuid();
        let time = rfc3339(SystemTime::now());
        let sig = self.signature(&id, &time, body.as_bytes());
        let cert_url = format!("{}/v1/notifications/certs/CERT-sandbox", self.base_url);
        let headers = [
            (TRANSMISSION_ID, id.clone()),
            (TRANSMISSION_TIME, time.clone()),
            (TRANSMISSION_SIG, sig.clone()),
            (CERT_URL, cert_url.clone()),
            (AUTH_ALGO, ALGORITHM.to_owned()),
        ];
        let transmission = Transmission {
            time,
            sig,
            cert_url,
            event: event.clone(),
        };
        self.transmissions.lock().remember(id, transmission);
        self.webhooks.send(Outgoing {
            provider: Provider::Paypal,
            event_type: event["event_type"].as_str().unwrap_or_default().to_owned(),
            body: Bytes::from(body),
            headers: headers.to_vec(),
        });
        headers
            .into_iter()
            .map(|(name, value)| (name.to_owned(), Value::String(value)))
            .collect()
    }

    /// base64 HMAC-SHA256 of `transmission_id|transmission_time|webhook_id|crc32(body)`.
    fn signature(&self, id: &str, time: &str, body: &[u8]) -> String {
        let signed = format!("{id}|{time}|{}|{}", self.webhook_id, crc32(body));
        Hmac::<Sha256>::new_from_slice(self.signing_key.as_bytes())
            .map(|mut mac| {
                mac.update(signed.as_bytes());
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            })
            .unwrap_or_default()
    }
}

/// The string fields verify-webhook-signature requires, besides the `webhook_event` object.
const REQUIRED: [&str; 6] = [
    "auth_algo",
    "cert_url",
    "transmission_id",
    "transmission_sig",
    "transmission_time",
    "webhook_id",
];

/// `POST /v1/notifications/verify-webhook-signature`: 200 `{verification_status: SUCCESS}` for
/// exactly what the sandbox sent, `FAILURE` for anything else; 400 `VALIDATION_ERROR` naming
/// each missing (or mistyped) field; 401 without a valid token.
pub(super) async fn verify(
    State(paypal): State<Arc<PaypalEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !paypal.bearer_ok(&headers) {
        return authentication_failure().into_response();
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return validation_error(&[("/", "MALFORMED_REQUEST_JSON")]).into_response();
    };
    let text = |name: &str| request.get(name).and_then(Value::as_str);
    let mut missing: Vec<(&str, &str)> = REQUIRED
        .iter()
        .filter(|name| text(name).is_none_or(str::is_empty))
        .map(|name| (*name, "Required field cannot be blank"))
        .collect();
    let event = request.get("webhook_event").filter(|e| e.is_object());
    if event.is_none() {
        missing.push(("webhook_event", "Required field cannot be blank"));
    }
    let (Some(event), true) = (event, missing.is_empty()) else {
        return validation_error(&missing).into_response();
    };
    let verified = paypal
        .transmissions
        .lock()
        .by_id
        .get(text("transmission_id").unwrap_or_default())
        .is_some_and(|sent| {
            text("transmission_sig") == Some(sent.sig.as_str())
                && text("transmission_time") == Some(sent.time.as_str())
                && text("cert_url") == Some(sent.cert_url.as_str())
                && text("auth_algo") == Some(ALGORITHM)
                && text("webhook_id") == Some(paypal.webhook_id.as_str())
                && *event == sent.event
        });
    let status = if verified { "SUCCESS" } else { "FAILURE" };
    json_reply(StatusCode::OK, &json!({"verification_status": status})).into_response()
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`) of `bytes`.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0_u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
