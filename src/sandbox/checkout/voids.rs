//! Checkout.com's "Void a payment": `POST /payments/{id}/voids`, as its reference and its
//! "Void a payment" page document it.
//!
//! - Body optional: `reference` (string) and `metadata` (object); anything else in them is a 422
//!   `request_invalid` naming `reference_invalid` / `metadata_invalid`, as for captures.
//! - Accepted: 202 `{action_id, reference, _links: {payment: {href}}}`. The void releases what
//!   the payment has left: a `Void` action of that amount is listed (approved, `10000`), the
//!   payment reads `Voided` (`Captured` after partial captures) with `total_voided` in its
//!   balances, and the book notes the release. Allowed before any capture and after `NonFinal`
//!   partial captures ("you can submit a void request on a partially captured payment to
//!   release the remaining funds", for Amex, Mastercard and Visa).
//! - "403 Void not allowed" (no body): a payment voided already (through the API or by the
//!   `Voided` scenario), expired, fully captured, or closed by a `Final` capture; captures after
//!   a void get the capture's 403. Unknown payment: 404; a wrong key: 401; both without a body.
//! - A `Cko-Idempotency-Key` seen before gets the stored answer (202 or 422) byte for byte;
//!   keys are kept apart from the captures' (*unconfirmed* whether Checkout.com shares them).
//! - *Unconfirmed*: the payment's status after a void of a partly captured payment, and the
//!   `payment_voided` webhook, which the emulator does not send.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::kit::{json_reply, rfc3339, Decision, Reply};
use super::{
    action_id, answer, error_422, idempotency_key, money_of, reference_of, Action,
    CheckoutEmulator, Ledger,
};
use crate::domain::Provider;
use crate::sandbox::Scenario;

/// The void request body; fields the emulator does not use are accepted and ignored.
#[derive(Deserialize, Default)]
struct VoidRequest {
    reference: Option<Value>,
    metadata: Option<Value>,
}

/// `POST /payments/{id}/voids`.
pub(super) async fn void(
    State(checkout): State<Arc<CheckoutEmulator>>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !checkout.authorized(&headers) {
        return answer(Reply::empty(StatusCode::UNAUTHORIZED));
    }
    let key = idempotency_key(&headers);
    // A void's key is its own: the same key on a capture is another request.
    let (reply, _) = checkout.ledger().replay_or(
        key.as_ref().map(|key| format!("void {key}")),
        |status| matches!(status.as_u16(), 202 | 422),
        |ledger| voided(&checkout, ledger, &payment_id, &body, key.as_deref()),
    );
    answer(reply)
}

/// Applies Checkout.com's void rules to one request, releasing the rest when allowed.
fn voided(
    checkout: &CheckoutEmulator,
    ledger: &mut Ledger,
    payment_id: &str,
    body: &[u8],
    key: Option<&str>,
) -> Decision {
    let Some(payment) = ledger.payments.get_mut(payment_id) else {
        return Err(Reply::empty(StatusCode::NOT_FOUND));
    };
    let request: VoidRequest = if body.iter().all(u8::is_ascii_whitespace) {
        VoidRequest::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|_| error_422("request_invalid", &["request_json_invalid"]))?
    };
    let mut invalid = Vec::new();
    let reference = reference_of(&request.reference, &request.metadata, &mut invalid);
    if !invalid.is_empty() {
        return Err(error_422("request_invalid", &invalid));
    }
    let refused = matches!(payment.scenario, Scenario::Expired | Scenario::Voided);
    let remaining = payment.authorized - payment.captured;
    if refused || payment.closed || remaining <= 0 {
        return Err(Reply::empty(StatusCode::FORBIDDEN));
    }
    payment.closed = true;
    payment.voided = true;
    let id = action_id();
    let mut action = json!({
        "id": id,
        "type": "Void",
        "processed_on": rfc3339(SystemTime::now()),
        "amount": remaining,
        "approved": true,
        "response_code": "10000",
        "response_summary": "Approved",
    });
    if let Some(reference) = &reference {
        action["reference"] = json!(reference);
    }
    if let Some(metadata) = &request.metadata {
        action["metadata"] = metadata.clone();
    }
    payment.actions.push(Action {
        json: action,
        processed: true,
    });
    let rest = money_of(payment.currency, remaining);
    checkout
        .charges
        .voided(Provider::Checkout, payment_id, &id, rest, key);
    let href = format!("{}/payments/{payment_id}", checkout.base_url);
    let mut accepted = json!({"action_id": id, "_links": {"payment": {"href": href}}});
    if let Some(reference) = reference {
        accepted["reference"] = json!(reference);
    }
    Ok((json_reply(StatusCode::ACCEPTED, &accepted), None))
}
