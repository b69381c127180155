//! An authorization as a whole: what its captures and releases add up to.

use super::capture::Operation;
use super::money::{Currency, Money};
use super::release::{ReleaseMechanism, ReleaseRules, ReleasedBy};
use super::{CaptureRecord, CaptureStatus};

/// Where an authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationStatus {
    /// Captures may still be made.
    Open,
    /// A final (or full-amount) capture closed it.
    Closed,
    /// A release is recorded and its outcome is not known yet.
    Releasing,
    /// What was left was released.
    Released,
}

/// What the ledger keeps of an authorization (for every tenant that used it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFacts {
    pub currency: Option<Currency>,
    pub authorized_minor: Option<i64>,
    pub closed_by: Option<String>,
    pub release_id: Option<String>,
    pub released_by: Option<ReleasedBy>,
    pub released_minor: Option<i64>,
}

/// An authorization as one tenant sees it.
#[derive(Debug, Clone)]
pub struct AuthorizationState {
    pub status: AuthorizationStatus,
    pub currency: Option<Currency>,
    pub authorized: Option<Money>,
    /// Completed captures (refunds not deducted).
    pub captured: Option<Money>,
    /// Captures `PROCESSING` or `PENDING`.
    pub pending: Option<Money>,
    pub released: Option<Money>,
    pub remaining: Option<Money>,
    pub refunded: Option<Money>,
    pub released_by: Option<ReleasedBy>,
    pub closed_by: Option<String>,
    /// Oldest first.
    pub captures: Vec<CaptureRecord>,
    /// Oldest first.
    pub releases: Vec<CaptureRecord>,
}

/// Adds up `records` (the tenant's captures and releases of one authorization, oldest first)
/// beside what the ledger keeps, under the provider's release `rules`: a provider that releases
/// the rest when a final capture completes (`final_capture_releases`), or after any capture
/// (`after_partial_capture: Automatic`, PaymentOptions), has released it once such a capture
/// completed, whether or not anyone asked for a release.
pub fn summarize(
    ledger: LedgerFacts,
    records: Vec<CaptureRecord>,
    rules: &ReleaseRules,
) -> AuthorizationState {
    let (releases, captures): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|r| r.command.operation() == Operation::Release);
    let currency = ledger.currency.or_else(|| {
        captures
            .iter()
            .find_map(|c| c.command.parts().amount.or(c.captured_amount))
            .map(|m| m.currency())
    });
    let sum = |pick: &dyn Fn(&CaptureRecord) -> Option<i64>| -> i64 {
        captures.iter().filter_map(pick).sum()
    };
    let captured = sum(&|c| {
        matches!(
            c.status,
            CaptureStatus::Completed | CaptureStatus::PartiallyRefunded | CaptureStatus::Refunded
        )
        .then(|| c.captured_amount.or(c.command.parts().amount))
        .flatten()
        .map(|m| m.minor_units())
    });
    let pending = sum(&|c| {
        matches!(c.status, CaptureStatus::Processing | CaptureStatus::Pending)
            .then_some(c.command.parts().amount)
            .flatten()
            .map(|m| m.minor_units())
    });
    let refunded = sum(&|c| c.refunded_amount.map(|m| m.minor_units()));
    let completed = |c: &&CaptureRecord| c.status == CaptureStatus::Completed;
    let closing_capture = ledger
        .closed_by
        .as_deref()
        .and_then(|id| captures.iter().find(|c| c.id == id));
    // Where any capture releases the rest at the provider, the first completed one closed it.
    let released_by_a_capture = (rules.after_partial_capture == ReleaseMechanism::Automatic)
        .then(|| captures.iter().find(completed))
        .flatten();
    let closed_by = ledger
        .closed_by
        .clone()
        .or_else(|| released_by_a_capture.map(|c| c.id.clone()));
    let status = match (&ledger.release_id, ledger.released_by, &closed_by) {
        (Some(_), Some(_), _) => AuthorizationStatus::Released,
        (Some(_), None, _) => AuthorizationStatus::Releasing,
        (None, _, Some(_)) => AuthorizationStatus::Closed,
        (None, _, None) => AuthorizationStatus::Open,
    };
    let rest = || {
        ledger
            .authorized_minor
            .map(|a| a.saturating_sub(captured).saturating_sub(pending).max(0))
    };
    let (released_by, released_minor) = match ledger.released_by {
        Some(by) => (Some(by), ledger.released_minor),
        None if status != AuthorizationStatus::Closed => (None, None),
        None if released_by_a_capture.is_some() => (Some(ReleasedBy::ProviderAutomatic), rest()),
        None if rules.final_capture_releases && closing_capture.is_some_and(|c| completed(&c)) => {
            (Some(ReleasedBy::FinalCapture), rest())
        }
        None => (None, None),
    };
    let remaining = match status {
        AuthorizationStatus::Open => ledger
            .authorized_minor
            .map(|a| a.saturating_sub(captured).saturating_sub(pending).max(0)),
        _ => Some(0),
    };
    let money = |minor: Option<i64>| {
        currency
            .zip(minor)
            .map(|(c, m)| Money::from_minor_units(c, m))
    };
    AuthorizationState {
        status,
        currency,
        authorized: money(ledger.authorized_minor),
        captured: money(Some(captured)),
        pending: money(Some(pending)),
        released: money(released_minor),
        remaining: money(remaining),
        refunded: money((refunded > 0).then_some(refunded)),
        released_by,
        closed_by,
        captures,
        releases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::capture::sample_parts;
    use crate::domain::CaptureCommand;

    fn usd(minor: i64) -> Option<Money> {
        Currency::from_code("USD").map(|c| Money::from_minor_units(c, minor))
    }

    fn capture(id: &str, minor: i64, status: CaptureStatus) -> Option<CaptureRecord> {
        let mut parts = sample_parts()?;
        parts.amount = usd(minor);
        parts.authorized_amount = None;
        let command = CaptureCommand::new(parts).ok()?;
        let mut record =
            CaptureRecord::processing(id.into(), "t".into(), "default".into(), command, 1, 0);
        record.status = status;
        if status == CaptureStatus::Completed {
            record.captured_amount = usd(minor);
        }
        Some(record)
    }

    const PAYPAL_LIKE: ReleaseRules = ReleaseRules {
        before_capture: ReleaseMechanism::Call,
        after_partial_capture: ReleaseMechanism::Call,
        final_capture_releases: true,
    };
    const STAX_LIKE: ReleaseRules = ReleaseRules {
        final_capture_releases: false,
        ..PAYPAL_LIKE
    };

    #[test]
    fn where_any_capture_releases_the_rest_a_completed_one_closed_it() -> Result<(), &'static str> {
        let automatic = ReleaseRules {
            after_partial_capture: ReleaseMechanism::Automatic,
            ..PAYPAL_LIKE
        };
        let records = vec![capture("cap_1", 3_000, CaptureStatus::Completed).ok_or("fixture")?];
        let state = summarize(ledger(None), records, &automatic);
        assert_eq!(state.status, AuthorizationStatus::Closed);
        assert_eq!(state.closed_by.as_deref(), Some("cap_1"));
        assert_eq!(state.released_by, Some(ReleasedBy::ProviderAutomatic));
        assert_eq!(state.released, usd(7_000));
        assert_eq!(state.remaining, usd(0));
        // Not before a capture completed.
        let records = vec![capture("cap_1", 3_000, CaptureStatus::Processing).ok_or("fixture")?];
        let state = summarize(ledger(None), records, &automatic);
        assert_eq!(state.status, AuthorizationStatus::Open);
        assert_eq!(state.released_by, None);
        Ok(())
    }

    fn ledger(closed_by: Option<&str>) -> LedgerFacts {
        LedgerFacts {
            currency: Currency::from_code("USD"),
            authorized_minor: Some(10_000),
            closed_by: closed_by.map(str::to_owned),
            ..LedgerFacts::default()
        }
    }

    #[test]
    fn amounts_add_up_from_the_captures() -> Result<(), &'static str> {
        let records = vec![
            capture("cap_1", 3_000, CaptureStatus::Completed).ok_or("fixture")?,
            capture("cap_2", 1_000, CaptureStatus::Processing).ok_or("fixture")?,
            capture("cap_3", 500, CaptureStatus::Declined).ok_or("fixture")?,
        ];
        let state = summarize(ledger(None), records, &PAYPAL_LIKE);
        assert_eq!(state.status, AuthorizationStatus::Open);
        assert_eq!(state.captured, usd(3_000));
        assert_eq!(state.pending, usd(1_000));
        assert_eq!(state.remaining, usd(6_000));
        assert_eq!(state.released, None);
        assert_eq!(state.captures.len(), 3);
        Ok(())
    }

    #[test]
    fn a_completed_final_capture_released_the_rest_only_where_the_provider_does() {
        let records = || {
            capture("cap_1", 4_000, CaptureStatus::Completed)
                .into_iter()
                .collect()
        };
        let state = summarize(ledger(Some("cap_1")), records(), &PAYPAL_LIKE);
        assert_eq!(state.status, AuthorizationStatus::Closed);
        assert_eq!(state.released_by, Some(ReleasedBy::FinalCapture));
        assert_eq!(state.released, usd(6_000));
        assert_eq!(state.remaining, usd(0));
        let stax_like = summarize(ledger(Some("cap_1")), records(), &STAX_LIKE);
        assert_eq!(stax_like.released_by, None);
        assert_eq!(stax_like.released, None);
    }

    #[test]
    fn a_release_in_flight_is_releasing_and_a_made_one_released() {
        let releasing = LedgerFacts {
            release_id: Some("rel_1".into()),
            ..ledger(Some("rel_1"))
        };
        let state = summarize(releasing.clone(), Vec::new(), &PAYPAL_LIKE);
        assert_eq!(state.status, AuthorizationStatus::Releasing);
        assert_eq!(state.remaining, usd(0));
        let released = LedgerFacts {
            released_by: Some(ReleasedBy::VoidCall),
            released_minor: Some(10_000),
            ..releasing
        };
        let state = summarize(released, Vec::new(), &PAYPAL_LIKE);
        assert_eq!(state.status, AuthorizationStatus::Released);
        assert_eq!(state.released, usd(10_000));
    }
}
