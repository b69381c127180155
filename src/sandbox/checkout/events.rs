//! Checkout.com's webhooks for capture actions (providers.md): `payment_captured`,
//! `payment_capture_declined`, and `payment_capture_pending` for an action not processed yet,
//! each `{id: "evt_...", type, created_on, data: {...}}` with `Cko-Signature`: the lower-case hex
//! HMAC-SHA256 of the exact body bytes with the webhook's secret key.
//!
//! `data` repeats the action as `GET /payments/{id}/actions` lists it (same id, amount,
//! response code, reference, metadata, processing) plus the payment's balances after it.
//! *Unconfirmed* (providers.md lists the fields, not their values): the pending event's name and
//! that it carries no response code, and the balances of a payment with a pending capture
//! (counted as captured here, since the amount is no longer available).

use std::time::SystemTime;

use axum::body::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::super::kit::{random_from, rfc3339};
use super::super::webhooks::Outgoing;
use super::{Payment, LOWER_ALNUM};
use crate::domain::Provider;

/// The event of `payment`'s latest action, if it is a capture.
pub(super) fn latest_capture_event(payment_id: &str, payment: &Payment) -> Option<Value> {
    let action = &payment.actions.last()?.json;
    if action["type"] != "Capture" {
        return None;
    }
    let event_type = match action["approved"].as_bool() {
        Some(true) => "payment_captured",
        Some(false) => "payment_capture_declined",
        None => "payment_capture_pending",
    };
    let mut data = json!({
        "id": payment_id,
        "action_id": action["id"],
        "amount": action["amount"],
        "currency": payment.currency.code(),
        "balances": balances(payment),
    });
    // The processing outcome exists only once the action is processed.
    let copied = [
        "reference",
        "metadata",
        "response_code",
        "response_summary",
        "processed_on",
        "processing",
    ];
    for key in copied {
        let processed_only = !matches!(key, "reference" | "metadata");
        if processed_only && action.get("approved").is_none() {
            continue;
        }
        if let Some(value) = action.get(key) {
            data[key] = value.clone();
        }
    }
    Some(json!({
        "id": format!("evt_{}", random_from(LOWER_ALNUM, 26)),
        "type": event_type,
        "created_on": rfc3339(SystemTime::now()),
        "data": data,
    }))
}

/// Checkout.com's balances object; a `Final` capture voids what it left.
pub(super) fn balances(payment: &Payment) -> Value {
    let captured: i64 = payment
        .actions
        .iter()
        .map(|a| &a.json)
        .filter(|a| a["type"] == "Capture" && a["approved"] == true)
        .filter_map(|a| a["amount"].as_i64())
        .sum();
    let open = if payment.closed {
        0
    } else {
        payment.authorized - payment.captured
    };
    let voided = if payment.closed {
        payment.authorized - payment.captured
    } else {
        0
    };
    json!({
        "total_authorized": payment.authorized,
        "total_voided": voided,
        "available_to_void": open,
        "total_captured": captured,
        "available_to_capture": open,
        "total_refunded": 0,
        "available_to_refund": captured,
    })
}

/// The event as it goes out: its exact body and the `Cko-Signature` over those bytes.
pub(super) fn signed(event: &Value, secret: &str) -> Outgoing {
    let body = event.to_string();
    Outgoing {
        provider: Provider::Checkout,
        event_type: event["type"].as_str().unwrap_or_default().to_owned(),
        headers: vec![("cko-signature", signature(secret, body.as_bytes()))],
        body: Bytes::from(body),
    }
}

/// Lower-case hex HMAC-SHA256 of `body` with `secret`.
fn signature(secret: &str, body: &[u8]) -> String {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map(|mut mac| {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        })
        .unwrap_or_default()
}
