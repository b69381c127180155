//! Stax's transaction object, as the API answers captures, pre-authorizations and voids: the
//! fields Stax documents, in its order, with amounts written exactly.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::super::kit::{rfc3339, Reply};
use super::{message, PreAuth};
use crate::domain::Money;
use crate::sandbox::Scenario;

/// Stax's generic decline message (what its sandbox answers for every failing card).
const DECLINE_MESSAGE: &str = "Unable to process the purchase transaction";

/// A Stax transaction object as the API answers it, fields in Stax's order.
#[derive(Serialize)]
struct Transaction<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    success: bool,
    message: Option<&'a str>,
    /// A JSON number written exactly (`12.30`), as Stax writes amounts.
    total: Box<RawValue>,
    currency: &'a str,
    method: &'a str,
    meta: &'a Value,
    pre_auth: bool,
    is_refundable: bool,
    is_voidable: bool,
    is_voided: bool,
    total_refunded: Box<RawValue>,
    customer_id: &'a str,
    payment_method_id: &'a str,
    reference_id: Option<&'a str>,
    last_four: &'a str,
    created_at: &'a str,
    updated_at: &'a str,
}

/// What a transaction object describes.
#[derive(Clone, Copy)]
pub(super) enum Tx<'a> {
    /// A capture of `.1` (`.2`: whether it succeeded) from the pre-authorization `.0`.
    Capture(&'a str, Money, bool),
    /// The pre-authorization itself.
    PreAuth,
}

/// Transaction `id` (`tx`, on `pre_auth`'s card) as Stax answers it, `total` written exactly.
pub(super) fn transaction(
    id: &str,
    pre_auth: &PreAuth,
    tx: Tx<'_>,
    meta: &Value,
) -> Result<Bytes, Reply> {
    let (kind, success, amount, of) = match tx {
        Tx::Capture(of, amount, success) => ("charge", success, amount, Some(of)),
        Tx::PreAuth => ("pre_auth", true, pre_auth.amount, None),
    };
    let is_pre_auth = matches!(tx, Tx::PreAuth);
    let voided = is_pre_auth && (pre_auth.scenario == Scenario::Voided || pre_auth.voided);
    let created_at = match tx {
        Tx::Capture(..) => now(),
        Tx::PreAuth => pre_auth.created_at.clone(),
    };
    let number = |text: String| {
        RawValue::from_string(text)
            .map_err(|_| message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"))
    };
    let updated_at = now();
    let body = serde_json::to_vec(&Transaction {
        id,
        kind,
        success,
        message: (!success).then_some(DECLINE_MESSAGE),
        total: number(amount.to_major_string())?,
        currency: amount.currency().code(),
        method: "card",
        meta,
        pre_auth: is_pre_auth,
        is_refundable: success && !is_pre_auth,
        is_voidable: success && !voided && !(is_pre_auth && pre_auth.closed),
        is_voided: voided,
        total_refunded: number("0".to_owned())?,
        customer_id: &pre_auth.customer_id,
        payment_method_id: &pre_auth.payment_method_id,
        reference_id: of,
        last_four: "1111",
        created_at: &created_at,
        updated_at: &updated_at,
    })
    .map_err(|_| message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"))?;
    Ok(Bytes::from(body))
}

/// The time as Stax writes it: `2024-05-01 12:00:00`.
pub(super) fn now() -> String {
    rfc3339(SystemTime::now())
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_owned()
}
