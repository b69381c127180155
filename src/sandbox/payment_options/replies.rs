//! The emulated PaymentOptions' answers: the documented envelope of a processed transaction
//! (success or not, with the full test card number) and the failure envelope of a refusal.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use axum::http::StatusCode;
use serde_json::json;

use super::super::kit::{json_reply, random_digits, random_uuid, rfc3339, Reply};
use super::{PaymentOptionsEmulator, CAPTURE, TEST_PAN};
use crate::domain::Money;

/// What an answer says of a processed transaction.
pub(super) struct Outcome<'a> {
    pub(super) transaction_type: &'a str,
    pub(super) status: StatusCode,
    /// `payment_details.response_code`: 0 for success.
    pub(super) response_code: i64,
    /// `gateway_response`'s `type`, `message` and `code`.
    pub(super) gateway: (&'a str, &'a str, &'a str),
}

/// The documented answer envelope for a processed transaction, success or not, with the full
/// test card number as PaymentOptions sends it.
pub(super) fn answer_body(
    emulator: &PaymentOptionsEmulator,
    transaction_id: &str,
    amount: Money,
    outcome: Outcome<'_>,
) -> Reply {
    let Outcome {
        transaction_type,
        status,
        response_code,
        gateway: (kind, message, code),
    } = outcome;
    let reference = emulator.next_ref.fetch_add(1, Ordering::Relaxed);
    let merchant_txn_ref = format!("sbx-{}", &transaction_id[..transaction_id.len().min(8)]);
    json_reply(
        status,
        &json!({
            "success": response_code == 0,
            "status_code": status.as_u16(),
            "is_live": false,
            "transaction_type": transaction_type,
            "gateway_response": {"version": "1", "type": kind, "message": message, "code": code},
            "merchant_details": {
                "legal_name": "Sandbox Merchant",
                "mid": emulator.merchant_id,
                "merchant_txn_ref": merchant_txn_ref,
            },
            "payment_details": {
                "amount": amount.minor_units(),
                "response_code": response_code,
                "auth_code": random_digits(6),
                "currency": amount.currency().code(),
                "payment_method": "VISA-SSL",
                "scheme": "VISA",
                "card": {
                    "name": "Sandbox Cardholder",
                    "number": TEST_PAN,
                    "exp_month": "12",
                    "exp_year": "30",
                },
                "additional_data": {"payment_data_source": {"type": "card"}},
            },
            "transaction_details": {
                "id": random_uuid(),
                "ref": reference,
                "timestamp": timestamp(),
                "merchant_txn_ref": merchant_txn_ref,
            },
        }),
    )
}

/// `2024-11-25T08:41:15.000Z`, as the documented answer writes it.
fn timestamp() -> String {
    let seconds = rfc3339(SystemTime::now());
    match seconds.strip_suffix('Z') {
        Some(stem) => format!("{stem}.000Z"),
        None => seconds,
    }
}

/// PaymentOptions' failure envelope for a refused capture.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    failure(CAPTURE, status, code, message)
}

/// PaymentOptions' failure envelope for a refused request of `transaction_type`.
pub(super) fn failure(
    transaction_type: &str,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Reply {
    json_reply(
        status,
        &json!({
            "success": false,
            "status_code": status.as_u16(),
            "is_live": false,
            "transaction_type": transaction_type,
            "gateway_response": {"version": "1", "type": "ERROR", "message": message, "code": code},
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_milliseconds() {
        let t = timestamp();
        assert!(t.ends_with(".000Z"), "{t}");
        assert_eq!(t.len(), "2024-11-25T08:41:15.000Z".len());
    }
}
