//! A capture as the service keeps it: the command, its status and the provider's answer.

use std::time::{SystemTime, UNIX_EPOCH};

use super::capture::CaptureCommand;
use super::money::Money;
use super::outcome::{
    NetworkTransactionReference, ProcessorResponse, ProviderFailure, SellerProtection,
    SellerReceivableBreakdown,
};
use super::status::{CaptureStatus, StatusReason};

/// Microseconds since the Unix epoch, UTC: exact, portable and orderable on both databases.
pub type TimestampMicros = i64;

/// Now, as a [`TimestampMicros`].
pub fn now_micros() -> TimestampMicros {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A stored capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRecord {
    /// `cap_` + 26 base32 characters; also the provider idempotency key.
    pub id: String,
    pub tenant: String,
    /// The account name actually used (the default account's name when none was asked for).
    pub account: String,
    pub command: CaptureCommand,
    pub status: CaptureStatus,
    pub reason: Option<StatusReason>,
    pub provider_reason: Option<String>,
    pub provider_capture_id: Option<String>,
    pub provider_status: Option<String>,
    pub captured_amount: Option<Money>,
    /// The refunded total a provider's notice reported (`PARTIALLY_REFUNDED`, `REFUNDED`).
    pub refunded_amount: Option<Money>,
    pub breakdown: Option<SellerReceivableBreakdown>,
    pub network_reference: Option<NetworkTransactionReference>,
    pub seller_protection: Option<SellerProtection>,
    pub processor_response: Option<ProcessorResponse>,
    pub failure: Option<ProviderFailure>,
    /// This capture's place among the captures of its authorization, 1 for the first, as the
    /// ledger counted them when it was recorded (a refused capture gives its place back).
    pub capture_sequence: u32,
    pub create_time: TimestampMicros,
    pub update_time: TimestampMicros,
}

impl CaptureRecord {
    /// The record of `command` just recorded `PROCESSING`, nothing heard from the provider yet.
    pub fn processing(
        id: String,
        tenant: String,
        account: String,
        command: CaptureCommand,
        capture_sequence: u32,
        now: TimestampMicros,
    ) -> CaptureRecord {
        CaptureRecord {
            id,
            tenant,
            account,
            command,
            status: CaptureStatus::Processing,
            reason: None,
            provider_reason: None,
            provider_capture_id: None,
            provider_status: None,
            captured_amount: None,
            refunded_amount: None,
            breakdown: None,
            network_reference: None,
            seller_protection: None,
            processor_response: None,
            failure: None,
            capture_sequence,
            create_time: now,
            update_time: now,
        }
    }
}
