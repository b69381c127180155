//! The sandbox's book: every capture an emulated provider accepted (money taken from an
//! authorization), with the key the request came with, and every release of what an
//! authorization had left (a void, or the capture that closed it).
//!
//! Read-only at `GET /sandbox/book` (the charges, with where each capture stands now: the ground
//! truth the fault suite, `capture-faults`, compares the service's records with) and at
//! `GET /sandbox/book/holds` (each authorization with what was authorized, captured and
//! released, so a test can check at the provider that captured + released never exceeds
//! authorized).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::kit::Locked;
use super::MoneyJson;
use crate::domain::{Money, Provider};

/// The status of a capture that took nothing after all (a pending capture denied later).
const DECLINED: &str = "DECLINED";

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

/// How what remained of an authorization was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReleasedBy {
    /// A call to release it: a void (Cybersource: an authorization reversal).
    Void,
    /// The capture that closed the authorization released the rest by itself: a final capture,
    /// or PaymentOptions' capture of less than was authorized.
    Capture,
}

/// One release of what an authorization had left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub amount: MoneyJson,
    pub by: ReleasedBy,
    /// The provider's id of the void (reversal, action), or of the capture that released it.
    pub id: String,
    /// What the request was told apart by, as [`Charge::key`].
    pub key: Option<String>,
}

/// One authorization (the hold it put on the payer's funds) and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub provider: String,
    pub authorization_id: String,
    pub authorized: MoneyJson,
    /// What its captures took: the book's charges of it, less those `DECLINED` later.
    pub captured: MoneyJson,
    /// What was released: the sum of `releases`.
    pub released: MoneyJson,
    /// Whether a void (or reversal) call released it.
    pub voided: bool,
    /// Oldest first. A release by a capture that was `DECLINED` later is left out: that capture
    /// closed nothing after all.
    pub releases: Vec<Release>,
}

/// A charge as the book keeps it: with its amount in minor units, to add up.
struct Recorded {
    charge: Charge,
    amount: Money,
}

/// A release as the book keeps it.
struct Released {
    amount: Money,
    by: ReleasedBy,
    id: String,
    key: Option<String>,
}

/// An authorization as the book keeps it.
struct Held {
    provider: Provider,
    authorization_id: String,
    authorized: Money,
    releases: Vec<Released>,
}

#[derive(Default)]
struct Entries {
    charges: Vec<Recorded>,
    holds: Vec<Held>,
    /// Where each authorization is in `holds`, by provider and id.
    index: HashMap<(Provider, String), usize>,
}

impl Entries {
    fn release(&mut self, provider: Provider, authorization_id: &str, release: Released) {
        let at = self.index.get(&(provider, authorization_id.to_owned()));
        if let Some(held) = at.and_then(|&at| self.holds.get_mut(at)) {
            held.releases.push(release);
        }
    }
}

/// The book, shared by every emulator of one sandbox.
#[derive(Clone, Default)]
pub(super) struct Charges(Arc<Locked<Entries>>);

impl Charges {
    /// Opens the book of an authorization of `amount` (every authorization the sandbox makes).
    pub(super) fn authorized(&self, provider: Provider, authorization_id: &str, amount: Money) {
        let mut entries = self.0.lock();
        let at = entries.holds.len();
        entries.holds.push(Held {
            provider,
            authorization_id: authorization_id.to_owned(),
            authorized: amount,
            releases: Vec::new(),
        });
        entries
            .index
            .insert((provider, authorization_id.to_owned()), at);
    }

    /// Notes a capture `provider` accepted.
    pub(super) fn record(
        &self,
        provider: Provider,
        authorization_id: &str,
        capture_id: &str,
        amount: Money,
        key: Option<&str>,
    ) {
        self.0.lock().charges.push(Recorded {
            charge: Charge {
                provider: provider.as_str().to_owned(),
                authorization_id: authorization_id.to_owned(),
                capture_id: capture_id.to_owned(),
                amount: amount.into(),
                key: key.map(str::to_owned),
                status: String::new(),
            },
            amount,
        });
    }

    /// Notes that a void (or reversal) `void_id` released `amount` of an authorization.
    pub(super) fn voided(
        &self,
        provider: Provider,
        authorization_id: &str,
        void_id: &str,
        amount: Money,
        key: Option<&str>,
    ) {
        let release = Released {
            amount,
            by: ReleasedBy::Void,
            id: void_id.to_owned(),
            key: key.map(str::to_owned),
        };
        self.0.lock().release(provider, authorization_id, release);
    }

    /// The charges, oldest first, with no status yet.
    pub(super) fn all(&self) -> Vec<Charge> {
        let entries = self.0.lock();
        entries.charges.iter().map(|r| r.charge.clone()).collect()
    }

    /// Every authorization, oldest first, with what it gave; `charges` are [`Charges::all`]
    /// with their statuses now, in the same order.
    pub(super) fn holds(&self, charges: &[Charge]) -> Vec<Hold> {
        let entries = self.0.lock();
        let declined = |charge: &Charge| charge.status == DECLINED;
        let mut captured: HashMap<(&str, &str), i64> = HashMap::new();
        for (recorded, now) in entries.charges.iter().zip(charges) {
            if !declined(now) {
                let of = (now.provider.as_str(), now.authorization_id.as_str());
                *captured.entry(of).or_default() += recorded.amount.minor_units();
            }
        }
        let undone = |held: &Held, release: &Released| {
            release.by == ReleasedBy::Capture
                && charges.iter().any(|c| {
                    c.capture_id == release.id
                        && c.authorization_id == held.authorization_id
                        && declined(c)
                })
        };
        entries
            .holds
            .iter()
            .map(|held| {
                let currency = held.authorized.currency();
                let money = |minor| MoneyJson::from(Money::from_minor_units(currency, minor));
                let releases: Vec<&Released> = held
                    .releases
                    .iter()
                    .filter(|release| !undone(held, release))
                    .collect();
                let of = (held.provider.as_str(), held.authorization_id.as_str());
                Hold {
                    provider: held.provider.as_str().to_owned(),
                    authorization_id: held.authorization_id.clone(),
                    authorized: held.authorized.into(),
                    captured: money(captured.get(&of).copied().unwrap_or_default()),
                    released: money(releases.iter().map(|r| r.amount.minor_units()).sum()),
                    voided: releases.iter().any(|r| r.by == ReleasedBy::Void),
                    releases: releases
                        .iter()
                        .map(|r| Release {
                            amount: r.amount.into(),
                            by: r.by,
                            id: r.id.clone(),
                            key: r.key.clone(),
                        })
                        .collect(),
                }
            })
            .collect()
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

    /// Notes that capture `capture_id` closed its authorization, releasing `rest`; nothing is
    /// noted when nothing was left.
    pub(super) fn closed(
        self,
        provider: Provider,
        authorization_id: &str,
        capture_id: &str,
        rest: Money,
    ) {
        if rest.minor_units() <= 0 {
            return;
        }
        let release = Released {
            amount: rest,
            by: ReleasedBy::Capture,
            id: capture_id.to_owned(),
            key: self.key.map(str::to_owned),
        };
        self.charges
            .0
            .lock()
            .release(provider, authorization_id, release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_by_a_capture_declined_later_is_undone() -> Result<(), crate::domain::MoneyError> {
        let charges = Charges::default();
        let authorized = Money::parse_positive("USD", "100.00")?;
        let currency = authorized.currency();
        charges.authorized(Provider::Paypal, "AUTH1", authorized);
        let charged = Charged {
            charges: &charges,
            key: Some("key-1"),
        };
        let taken = Money::from_minor_units(currency, 3_000);
        charged.record(Provider::Paypal, "AUTH1", "CAP1", taken);
        charged.closed(
            Provider::Paypal,
            "AUTH1",
            "CAP1",
            Money::from_minor_units(currency, 7_000),
        );
        let mut now = charges.all();
        let hold = &charges.holds(&now)[0];
        assert_eq!(hold.captured.value, "30.00");
        assert_eq!(hold.released.value, "70.00");
        assert_eq!(hold.releases[0].by, ReleasedBy::Capture);
        assert!(!hold.voided);

        now[0].status = DECLINED.to_owned();
        let hold = &charges.holds(&now)[0];
        assert_eq!(
            (hold.captured.value.as_str(), hold.released.value.as_str()),
            ("0.00", "0.00")
        );
        assert!(hold.releases.is_empty());

        charges.voided(Provider::Paypal, "AUTH1", "AUTH1", authorized, None);
        let hold = &charges.holds(&now)[0];
        assert!(hold.voided);
        assert_eq!(hold.released.value, "100.00");
        Ok(())
    }
}
