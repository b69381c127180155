//! PaymentOptions server-to-server wire types, as documented (seed 001, providers.md).
//!
//! Answers are read from JSON whose card number has already been masked (see
//! `mapping::redact`), so no type here ever holds a full card number. Every answer field is
//! optional and typed loosely where the documentation is loose (`response_code` as a number or a
//! numeric string), because an extra or oddly typed field must never turn a capture whose money
//! moved into an unreadable answer.

use serde::{Deserialize, Serialize};

/// `POST {path_prefix}/server-to-server-interface/capture` body.
#[derive(Debug, Serialize)]
pub struct CaptureRequest<'a> {
    /// The authorization's id (at most 36 characters).
    #[serde(rename = "transactionId")]
    pub transaction_id: &'a str,
    /// In the currency's minor unit (yen for JPY, millimes for TND), at most 10 digits.
    pub amount: i64,
    /// The merchant's id, from the account (at most 10 characters).
    pub merchant_id: &'a str,
    /// Free text, at most 128 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<&'a str>,
}

/// `POST {path_prefix}/server-to-server-interface/void` body.
#[derive(Debug, Serialize)]
pub struct VoidRequest<'a> {
    /// The authorization's id.
    #[serde(rename = "transactionId")]
    pub transaction_id: &'a str,
    pub merchant_id: &'a str,
}

/// `transaction_type` of a void's answer.
pub const VOID: &str = "VOID";

/// Any answer of the capture and void endpoints: the documented success and failure envelope. Gateways in
/// front of PaymentOptions answer some errors with only `{"message": ...}`, hence `message`.
#[derive(Debug, Default, Deserialize)]
pub struct Answer {
    pub success: Option<bool>,
    pub transaction_type: Option<String>,
    pub gateway_response: Option<GatewayResponse>,
    pub payment_details: Option<PaymentDetails>,
    pub transaction_details: Option<TransactionDetails>,
    pub message: Option<String>,
}

/// `gateway_response`: the gateway's own code (`INFO0001`) and message.
#[derive(Debug, Default, Deserialize)]
pub struct GatewayResponse {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub message: Option<String>,
    pub code: Option<String>,
}

/// `payment_details`. `card` is left out on purpose: the mapping masks it in the JSON and
/// nothing needs it typed.
#[derive(Debug, Default, Deserialize)]
pub struct PaymentDetails {
    /// Minor units of `currency`.
    pub amount: Option<serde_json::Value>,
    /// 0 is success; see [`ResponseCode`].
    pub response_code: Option<serde_json::Value>,
    pub auth_code: Option<String>,
    pub currency: Option<String>,
}

/// `transaction_details`: `id` is the capture's id at PaymentOptions.
#[derive(Debug, Default, Deserialize)]
pub struct TransactionDetails {
    pub id: Option<String>,
    /// A number in the documented example; kept loose.
    #[serde(rename = "ref")]
    pub reference: Option<serde_json::Value>,
}

/// `payment_details.response_code` values PaymentOptions documents. Read by
/// [`ResponseCode::from_code`] so that the mapping is an exhaustive `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseCode {
    /// 0.
    Approved,
    /// 5.
    DoNotHonour,
    /// 51.
    InsufficientFunds,
    /// 54.
    ExpiredCard,
    /// 94: a duplicate transmission.
    Duplicate,
    /// -1.
    GatewayError,
}

impl ResponseCode {
    /// The documented code, or `None` for anything else.
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(ResponseCode::Approved),
            5 => Some(ResponseCode::DoNotHonour),
            51 => Some(ResponseCode::InsufficientFunds),
            54 => Some(ResponseCode::ExpiredCard),
            94 => Some(ResponseCode::Duplicate),
            -1 => Some(ResponseCode::GatewayError),
            _ => None,
        }
    }

    pub fn code(self) -> i64 {
        match self {
            ResponseCode::Approved => 0,
            ResponseCode::DoNotHonour => 5,
            ResponseCode::InsufficientFunds => 51,
            ResponseCode::ExpiredCard => 54,
            ResponseCode::Duplicate => 94,
            ResponseCode::GatewayError => -1,
        }
    }
}

/// An integer written as a JSON number or a numeric string (`0`, `"05"`).
pub fn integer(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Answer {
    /// `payment_details.response_code` as an integer, when present and readable.
    pub fn response_code(&self) -> Option<i64> {
        self.payment_details
            .as_ref()
            .and_then(|p| p.response_code.as_ref())
            .and_then(integer)
    }

    pub fn gateway_code(&self) -> Option<&str> {
        self.gateway_response
            .as_ref()
            .and_then(|g| g.code.as_deref())
    }

    pub fn gateway_message(&self) -> Option<&str> {
        self.gateway_response
            .as_ref()
            .and_then(|g| g.message.as_deref())
    }

    pub fn transaction_id(&self) -> Option<&str> {
        self.transaction_details
            .as_ref()
            .and_then(|t| t.id.as_deref())
    }
}
