//! Checkout.com wire types, as documented (seed 003, providers.md). Requests omit absent
//! optionals rather than send `null`; answers tolerate fields we do not use, because Checkout.com
//! adds fields without notice and an extra field must never turn a capture into an unknown
//! outcome.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `POST /payments/{id}/captures` body.
#[derive(Debug, Serialize)]
pub struct CaptureRequest<'a> {
    /// In Checkout.com's unit for the payment's currency (see `mapping::CurrencyUnit`); absent:
    /// the full amount. Checkout.com takes no currency here: it is the payment's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<i64>,
    /// Always sent: Checkout.com's default (`Final`) should not silently decide for us.
    pub capture_type: CaptureType,
    pub reference: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: &'a BTreeMap<String, String>,
}

/// `capture_type`: a `Final` partial capture voids the rest of the authorization; `NonFinal`
/// leaves it open for further captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaptureType {
    Final,
    NonFinal,
}

/// `POST /payments/{id}/voids` body: only our reference, by which the void is found among the
/// payment's actions when its answer was lost.
#[derive(Debug, Serialize)]
pub struct VoidRequest<'a> {
    pub reference: &'a str,
}

/// The 202 answer to a capture or a void: accepted for processing, not yet done.
#[derive(Debug, Deserialize)]
pub struct Accepted {
    pub action_id: String,
    pub reference: Option<String>,
}

/// `GET /payments/{id}` ("Get payment details"), reduced to what a capture needs: the currency
/// fixed at authorization, which a capture's `amount` silently takes.
#[derive(Debug, Deserialize)]
pub struct Payment {
    pub id: String,
    /// The authorized amount, in Checkout.com's unit for `currency`.
    pub amount: Option<i64>,
    /// ISO 4217 code.
    pub currency: String,
    /// `Authorized`, `Captured`, `Partially Captured`, `Voided`, ... kept as text.
    pub status: Option<String>,
}

impl Payment {
    /// The status of a payment whose authorization is voided (by a void, or by Checkout.com
    /// when it expired).
    pub const VOIDED: &'static str = "Voided";
}

/// One entry of `GET /payments/{id}/actions`.
#[derive(Debug, Clone, Deserialize)]
pub struct Action {
    pub id: String,
    /// `Authorization`, `Capture`, `Void`, `Refund`, ... kept as text: only `Capture` and `Void`
    /// matter.
    #[serde(rename = "type")]
    pub kind: String,
    /// Absent while the action has not been processed.
    pub approved: Option<bool>,
    /// In Checkout.com's unit for the payment's currency.
    pub amount: Option<i64>,
    pub response_code: Option<String>,
    pub response_summary: Option<String>,
    pub processed_on: Option<String>,
    pub reference: Option<String>,
}

impl Action {
    pub const CAPTURE: &'static str = "Capture";
    pub const VOID: &'static str = "Void";
}

/// Checkout.com's error body: `{request_id, error_type, error_codes[]}` (422, sometimes 429).
/// Every field optional: 401, 403 and 404 come without a body.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    pub request_id: Option<String>,
    pub error_type: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<String>,
}
