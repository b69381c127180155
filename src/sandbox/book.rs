//! The sandbox's book of charges: every capture an emulated provider accepted (money taken
//! from an authorization), with the key the request came with. Read-only at
//! `GET /sandbox/book`, with where each capture stands now: the ground truth the fault suite
//! (`capture-faults`) compares the service's records with.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::kit::Locked;
use super::MoneyJson;
use crate::domain::{Money, Provider};

/// One capture a provider accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub provider: String,
    pub authorization_id: String,
    /// The provider's id of the capture.
    pub capture_id: String,
    pub amount: MoneyJson,
    /// What the request was told apart by: its idempotency key (`PayPal-Request-Id`,
    /// `Cko-Idempotency-Key`, Stax's `idempotency_id`), or Cybersource's
    /// `clientReferenceInformation.code`; none where the provider takes none.
    pub key: Option<String>,
    /// Where the capture stands now at the provider, in the service's words: `COMPLETED`,
    /// `PENDING`, `DECLINED` (a pending capture denied later: nothing taken),
    /// `PARTIALLY_REFUNDED` or `REFUNDED`.
    pub status: String,
}

/// The book, shared by every emulator of one sandbox.
#[derive(Clone, Default)]
pub(super) struct Charges(Arc<Locked<Vec<Charge>>>);

impl Charges {
    /// Notes a capture `provider` accepted.
    pub(super) fn record(
        &self,
        provider: Provider,
        authorization_id: &str,
        capture_id: &str,
        amount: Money,
        key: Option<&str>,
    ) {
        self.0.lock().push(Charge {
            provider: provider.as_str().to_owned(),
            authorization_id: authorization_id.to_owned(),
            capture_id: capture_id.to_owned(),
            amount: amount.into(),
            key: key.map(str::to_owned),
            status: String::new(),
        });
    }

    pub(super) fn all(&self) -> Vec<Charge> {
        self.0.lock().clone()
    }
}

/// Where one capture request notes what it charged, and the key it came with.
#[derive(Clone, Copy)]
pub(super) struct Charged<'a> {
    pub charges: &'a Charges,
    pub key: Option<&'a str>,
}

impl Charged<'_> {
    pub(super) fn record(
        self,
        provider: Provider,
        authorization_id: &str,
        capture_id: &str,
        amount: Money,
    ) {
        self.charges
            .record(provider, authorization_id, capture_id, amount, self.key);
    }
}
