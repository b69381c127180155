//! What a provider said about a capture, normalized. Connectors produce these; the store keeps
//! them; the API returns them. Only what the provider returned is filled in.

use std::sync::Arc;

use super::capture::PlatformFee;
use super::money::Money;
use super::status::{CaptureStatus, StatusReason};

/// An exchange rate the provider applied, kept as the provider's decimal string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeRate {
    pub source_currency: String,
    pub target_currency: String,
    pub value: String,
}

/// What the seller receives, as reported by the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SellerReceivableBreakdown {
    pub gross_amount: Option<Money>,
    pub provider_fee: Option<Money>,
    pub provider_fee_in_receivable_currency: Option<Money>,
    pub net_amount: Option<Money>,
    pub receivable_amount: Option<Money>,
    pub exchange_rate: Option<ExchangeRate>,
    pub platform_fees: Vec<PlatformFee>,
}

/// The card network's reference for the transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkTransactionReference {
    pub id: String,
    pub date: Option<String>,
    pub network: Option<String>,
    pub acquirer_reference_number: Option<String>,
}

/// The provider's seller protection.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SellerProtection {
    pub status: String,
    pub dispute_categories: Vec<String>,
}

/// The processor's answer codes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessorResponse {
    pub avs_code: Option<String>,
    pub cvv_code: Option<String>,
    pub response_code: Option<String>,
    pub payment_advice_code: Option<String>,
}

/// A provider's definite answer to a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOutcome {
    pub status: CaptureStatus,
    pub reason: Option<StatusReason>,
    /// The provider's capture id (PayPal capture id, Checkout action id, ...).
    pub provider_capture_id: Option<String>,
    /// The provider's status string, verbatim.
    pub provider_status: String,
    /// The provider's reason string, verbatim.
    pub provider_reason: Option<String>,
    /// The amount the provider reports captured.
    pub captured_amount: Option<Money>,
    pub breakdown: Option<SellerReceivableBreakdown>,
    pub network_reference: Option<NetworkTransactionReference>,
    pub seller_protection: Option<SellerProtection>,
    pub processor_response: Option<ProcessorResponse>,
    /// The provider's answer with secrets and card numbers already removed, for support. Shared,
    /// not copied, as the outcome goes to the store and to the caller: a tree of some 40 nodes.
    pub redacted_body: Option<Arc<serde_json::Value>>,
}

/// A provider's refusal, as kept on a failed capture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderFailure {
    /// The provider's own code (PayPal `issue`, Cybersource `reason`, ...).
    pub code: String,
    pub message: String,
    /// The provider's correlation id for its support.
    pub debug_id: Option<String>,
    pub http_status: u16,
}
