//! `captures`: one row per capture, with the request, the status and the provider's answer.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "captures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant: String,
    pub request_id: String,
    /// Digest of the whole request: tells a retry from a reuse of the key.
    pub request_fingerprint: String,
    pub provider: String,
    pub provider_account: String,
    pub authorization_id: String,
    /// Currency of `amount_minor` and `authorized_amount_minor`.
    pub currency_code: Option<String>,
    pub amount_minor: Option<i64>,
    pub authorized_amount_minor: Option<i64>,
    /// What this capture holds in the authorization's ledger, released if it fails.
    pub reserved_minor: i64,
    pub final_capture: bool,
    pub invoice_id: Option<String>,
    pub note_to_payer: Option<String>,
    pub soft_descriptor: Option<String>,
    pub reference: Option<String>,
    /// JSON object of the caller's metadata.
    pub metadata: String,
    pub disbursement_mode: Option<String>,
    pub status: String,
    pub status_reason: Option<String>,
    pub provider_reason: Option<String>,
    pub provider_capture_id: Option<String>,
    pub provider_status: Option<String>,
    pub captured_currency_code: Option<String>,
    pub captured_amount_minor: Option<i64>,
    /// JSON of `NetworkTransactionReference`.
    pub network_reference: Option<String>,
    /// JSON of `SellerProtection`.
    pub seller_protection: Option<String>,
    /// JSON of `ProcessorResponse`.
    pub processor_response: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_debug_id: Option<String>,
    pub error_http_status: Option<i32>,
    /// The provider's last answer, already redacted by the connector.
    pub provider_response: Option<String>,
    pub create_time: i64,
    pub update_time: i64,
    /// When the reconciler may look at this open capture again (`None`: whenever it is due).
    pub reconcile_after: Option<i64>,
    /// How often the reconciler has looked without a definite answer.
    pub reconcile_attempts: i32,
    /// This capture's place among its authorization's captures, 1 for the first (from the
    /// ledger when it was recorded).
    pub capture_sequence: i32,
    /// Until when (µs since the epoch) a request or a reconciler is calling the provider about
    /// it; no one else looks at it before.
    pub lease_until: Option<i64>,
    /// The process that holds the lease ([`Store`](crate::store::Store)'s owner token).
    pub lease_owner: Option<String>,
    /// [`Operation`](crate::domain::Operation): `capture` or `release`.
    pub operation: String,
    /// The refunded total a provider's notice reported, in the captured currency.
    pub refunded_minor: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
