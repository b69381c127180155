//! PayPal Payments v2 wire types, exactly as documented (seed 004). Requests omit absent
//! optionals rather than send `null`; answers tolerate fields we do not use, because PayPal adds
//! fields without notice and an extra field must never turn a capture into an unknown outcome.

use serde::{Deserialize, Serialize};

/// `POST /v2/payments/authorizations/{id}/capture` body.
#[derive(Debug, Serialize)]
pub struct CaptureRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note_to_payer: Option<&'a str>,
    /// Always sent: PayPal's default (`false`) should not silently decide for us.
    pub final_capture: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soft_descriptor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_instruction: Option<PaymentInstruction<'a>>,
}

/// PayPal money: a currency code and a decimal string in major units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub currency_code: String,
    pub value: String,
}

/// `payment_instruction` of a capture request.
#[derive(Debug, Serialize)]
pub struct PaymentInstruction<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platform_fees: Vec<PlatformFee<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disbursement_mode: Option<&'static str>,
}

/// One platform fee in a capture request.
#[derive(Debug, Serialize)]
pub struct PlatformFee<'a> {
    pub amount: Money,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee: Option<Payee<'a>>,
}

/// Who receives a fee: exactly one of the two is set.
#[derive(Debug, Serialize)]
pub struct Payee<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<&'a str>,
}

/// A capture as PayPal returns it (`Prefer: return=representation`).
#[derive(Debug, Deserialize)]
pub struct Capture {
    pub id: Option<String>,
    /// Kept as text so an undocumented status is reported verbatim, not a parse failure.
    pub status: String,
    pub status_details: Option<StatusDetails>,
    pub amount: Option<Money>,
    pub seller_receivable_breakdown: Option<SellerReceivableBreakdown>,
    pub network_transaction_reference: Option<NetworkTransactionReference>,
    pub seller_protection: Option<SellerProtection>,
    pub processor_response: Option<ProcessorResponse>,
}

/// `status_details`.
#[derive(Debug, Deserialize)]
pub struct StatusDetails {
    pub reason: Option<String>,
}

/// `seller_receivable_breakdown`; PayPal leaves it out while a capture is pending.
#[derive(Debug, Deserialize)]
pub struct SellerReceivableBreakdown {
    pub gross_amount: Option<Money>,
    pub paypal_fee: Option<Money>,
    pub paypal_fee_in_receivable_currency: Option<Money>,
    pub net_amount: Option<Money>,
    pub receivable_amount: Option<Money>,
    pub exchange_rate: Option<ExchangeRate>,
    #[serde(default)]
    pub platform_fees: Vec<AnsweredPlatformFee>,
}

/// `exchange_rate`: every field is optional in PayPal's schema.
#[derive(Debug, Deserialize)]
pub struct ExchangeRate {
    pub value: Option<String>,
    pub source_currency: Option<String>,
    pub target_currency: Option<String>,
}

/// A platform fee as PayPal reports it.
#[derive(Debug, Deserialize)]
pub struct AnsweredPlatformFee {
    pub amount: Money,
    pub payee: Option<AnsweredPayee>,
}

/// A fee payee as PayPal reports it.
#[derive(Debug, Deserialize)]
pub struct AnsweredPayee {
    pub email_address: Option<String>,
    pub merchant_id: Option<String>,
}

/// `network_transaction_reference`.
#[derive(Debug, Deserialize)]
pub struct NetworkTransactionReference {
    pub id: String,
    pub date: Option<String>,
    pub network: Option<String>,
    pub acquirer_reference_number: Option<String>,
}

/// `seller_protection`.
#[derive(Debug, Deserialize)]
pub struct SellerProtection {
    pub status: Option<String>,
    #[serde(default)]
    pub dispute_categories: Vec<String>,
}

/// `processor_response`.
#[derive(Debug, Deserialize)]
pub struct ProcessorResponse {
    pub avs_code: Option<String>,
    pub cvv_code: Option<String>,
    pub response_code: Option<String>,
    pub payment_advice_code: Option<String>,
}

/// An authorization as PayPal answers a void with `Prefer: return=representation` (200); only
/// what tells the void happened is read.
#[derive(Debug, Deserialize)]
pub struct Authorization {
    pub id: Option<String>,
    /// Kept as text so an undocumented status is reported verbatim, not a parse failure.
    pub status: String,
}

/// Authorization statuses PayPal documents (`authorization_status.status`), parsed from
/// [`Authorization::status`] so that what a void's answer means is an exhaustive `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthorizationStatus {
    Created,
    Captured,
    Denied,
    PartiallyCaptured,
    Voided,
    Pending,
}

/// The 422 `issue`s PayPal documents for a void (`authorizations.void-422`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VoidIssue {
    /// "Authorization has been previously captured and hence cannot be voided."
    PreviouslyCaptured,
    /// "Authorization has been previously voided and hence cannot be voided again."
    PreviouslyVoided,
    /// "A reauthorization cannot be voided. Please void the original parent authorization."
    CannotBeVoided,
}

/// PayPal's error body: `{name, message, debug_id, details[]}`. Every field optional, because
/// gateways in front of PayPal answer some errors with other shapes.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    pub name: Option<String>,
    pub message: Option<String>,
    pub debug_id: Option<String>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
    /// OAuth errors use `error` / `error_description` instead.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// One entry of `details[]`.
#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    pub field: Option<String>,
    pub value: Option<String>,
    pub location: Option<String>,
    pub issue: Option<String>,
    pub description: Option<String>,
}

/// `POST /v1/oauth2/token` answer.
#[derive(Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub token_type: Option<String>,
    /// Seconds the token stays valid.
    pub expires_in: u64,
}

/// Capture statuses PayPal documents. Parsed from [`Capture::status`] so that the mapping to
/// our status is an exhaustive `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Completed,
    Declined,
    PartiallyRefunded,
    Pending,
    Refunded,
    Failed,
}

/// `status_details.reason` values PayPal documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    BuyerComplaint,
    Chargeback,
    Echeck,
    InternationalWithdrawal,
    Other,
    PendingReview,
    ReceivingPreferenceMandatesManualAction,
    Refunded,
    TransactionApprovedAwaitingFunding,
    Unilateral,
    VerificationRequired,
    DeclinedByRiskFraudFilters,
}

/// Reads one of the documented names; `None` for anything else.
pub fn parse_name<T: for<'de> Deserialize<'de>>(name: &str) -> Option<T> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name)).ok()
}
