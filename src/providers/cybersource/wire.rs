//! Cybersource REST payments wire types for captures and authorization reversals, as documented
//! (providers.md, seed 000, Cybersource's REST client and authorization reversal pages).
//! Requests omit absent optionals rather than send `null`; answers tolerate fields we do not
//! use, because an extra field must never turn a capture into an unknown outcome.

use serde::{Deserialize, Serialize};

/// `POST /pts/v2/payments/{id}/captures` body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureRequest<'a> {
    pub client_reference_information: ClientReferenceInformation<'a>,
    pub processing_information: ProcessingInformation,
    pub order_information: OrderInformation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_information: Option<MerchantInformation<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merchant_defined_information: Vec<MerchantDefinedField<'a>>,
}

/// `clientReferenceInformation`.
#[derive(Debug, Serialize)]
pub struct ClientReferenceInformation<'a> {
    /// At most 50 characters.
    pub code: &'a str,
}

/// `processingInformation`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessingInformation {
    pub capture_options: CaptureOptions,
}

/// `processingInformation.captureOptions`: this capture's number among the authorization's
/// captures and how many there will be, each 1..=99; `isFinal` only when it is the last.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptureOptions {
    pub capture_sequence_number: u32,
    pub total_capture_count: u32,
    /// `"true"` on the capture that closes the authorization: "Indicates whether to release
    /// the authorization hold on the remaining funds". Cybersource's REST reference types it
    /// as a string, so it goes as one, not as a JSON boolean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_final: Option<&'static str>,
}

/// `orderInformation`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderInformation {
    pub amount_details: AmountDetails,
}

/// `orderInformation.amountDetails`: a major-unit decimal string and a currency code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmountDetails {
    pub total_amount: String,
    pub currency: String,
}

/// `merchantInformation`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantInformation<'a> {
    pub merchant_descriptor: MerchantDescriptor<'a>,
}

/// `merchantInformation.merchantDescriptor`.
#[derive(Debug, Serialize)]
pub struct MerchantDescriptor<'a> {
    pub name: &'a str,
}

/// One `merchantDefinedInformation[]` entry: key ≤ 50, value ≤ 255 characters.
#[derive(Debug, Serialize)]
pub struct MerchantDefinedField<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

/// A capture as Cybersource answers it (201 to the capture, 200 to `GET /pts/v2/captures/{id}`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capture {
    pub id: Option<String>,
    /// Kept as text so an undocumented status is reported verbatim, not a parse failure.
    pub status: String,
    pub submit_time_utc: Option<String>,
    pub reconciliation_id: Option<String>,
    pub order_information: Option<AnsweredOrderInformation>,
}

/// `orderInformation` of an answer; `amountDetails` may be left out.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnsweredOrderInformation {
    pub amount_details: Option<AmountDetails>,
}

/// `POST /pts/v2/payments/{id}/reversals` body (an authorization reversal): our reference and the
/// amount, which must be the whole authorized amount. `reversalInformation.reason` is left out:
/// its one documented value, `34`, means suspected fraud.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReversalRequest<'a> {
    pub client_reference_information: ClientReferenceInformation<'a>,
    pub reversal_information: ReversalInformation,
}

/// `reversalInformation`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReversalInformation {
    pub amount_details: AmountDetails,
}

/// A reversal as Cybersource answers it (201).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reversal {
    pub id: Option<String>,
    /// Kept as text so an undocumented status is reported verbatim, not a parse failure.
    pub status: String,
}

/// Reversal statuses Cybersource documents (201). Parsed from [`Reversal::status`] so that the
/// mapping is an exhaustive `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReversalStatus {
    Reversed,
}

/// Cybersource's error body: `{submitTimeUtc, status, reason, message, details[]}` for 400 and
/// 502, `{response: {rmsg}}` for 401. Every field optional, because gateways in front of
/// Cybersource answer some errors with other shapes.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub id: Option<String>,
    pub submit_time_utc: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub message: Option<String>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
    /// The 401 shape.
    pub response: Option<AuthenticationResponse>,
}

/// One entry of `details[]`: the offending field and why.
#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    pub field: Option<String>,
    pub reason: Option<String>,
}

/// `response` of a 401.
#[derive(Debug, Deserialize)]
pub struct AuthenticationResponse {
    pub rmsg: Option<String>,
}

/// Capture statuses Cybersource documents for a capture. Parsed from [`Capture::status`] so that
/// the mapping to our status is an exhaustive `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Accepted; goes to the processor in the next settlement batch.
    Pending,
    /// Sent to the processor in a settlement batch.
    Transmitted,
}

/// `reason` values of a 400 (`status: INVALID_REQUEST`) to a capture or a reversal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvalidRequestReason {
    MissingField,
    InvalidData,
    DuplicateRequest,
    InvalidMerchantConfiguration,
    /// Documented for captures.
    ExceedsAuthAmount,
    AuthAlreadyReversed,
    TransactionAlreadySettled,
    InvalidAmount,
    MissingAuth,
    TransactionAlreadyReversedOrSettled,
    NotSupported,
    /// Documented for reversals.
    ProcessorUnavailable,
}

/// `reason` values of a 502 (`status: SERVER_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerErrorReason {
    SystemError,
    ServerTimeout,
    ServiceTimeout,
    InvalidOrMissingConfig,
}

/// Reads one of the documented names; `None` for anything else.
pub fn parse_name<T: for<'de> Deserialize<'de>>(name: &str) -> Option<T> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name)).ok()
}

/// `POST /tss/v2/searches` body (Transaction Search). *Unconfirmed* beyond the fields named in
/// Cybersource's samples: `save`, `name`, `timezone`, `query`, `offset`, `limit`, `sort`.
#[derive(Debug, Serialize)]
pub struct SearchRequest<'a> {
    pub save: bool,
    pub name: &'a str,
    pub timezone: &'a str,
    /// `clientReferenceInformation.code:<capture id>`.
    pub query: String,
    pub offset: u32,
    pub limit: u32,
    pub sort: &'a str,
}

/// A search's answer (201): what matters is `_embedded.transactionSummaries[]`.
#[derive(Debug, Deserialize)]
pub struct SearchAnswer {
    #[serde(rename = "_embedded", default)]
    pub embedded: Option<SearchEmbedded>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchEmbedded {
    #[serde(default)]
    pub transaction_summaries: Vec<TransactionSummary>,
}

/// One transaction found: its id and which services ran (`ics_bill` is a capture).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionSummary {
    pub id: Option<String>,
    pub client_reference_information: Option<SummaryReference>,
    pub application_information: Option<ApplicationInformation>,
}

#[derive(Debug, Deserialize)]
pub struct SummaryReference {
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ApplicationInformation {
    #[serde(default)]
    pub applications: Vec<Application>,
}

/// A service that ran: `rFlag` `SOK` (or `rCode` `1`) when it succeeded.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub name: Option<String>,
    pub r_code: Option<String>,
    pub r_flag: Option<String>,
}
