//! The per-authorization ledger: locked for the length of a transaction so that captures of one
//! authorization are decided one at a time, on SQLite and PostgreSQL alike.

use std::sync::LazyLock;

use sea_orm::sea_query::Expr;
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter};

use super::entities::authorizations::{self, Column, Entity};
use super::sql::Sql;
use super::StoreError;
use crate::domain::{CaptureCommand, Money, ReleaseMechanism, ReleaseRules, ReleasedBy};

/// Why the ledger refuses a capture before the provider is called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerRefusal {
    /// A final or full-amount capture already closed the authorization.
    Closed { closed_by: String },
    /// Earlier captures of this authorization were in another currency.
    CurrencyMismatch { expected: String },
    /// The caller's `authorized_amount` differs from the one given before.
    AuthorizedAmountMismatch { known: Money },
    /// The capture would take the authorization's captures above the authorized amount.
    ExceedsAuthorization { remaining: Money },
    /// The ledger's running totals would leave the range they are kept in.
    LedgerFull,
    /// A release (`release_id`) released the authorization, or is releasing it.
    Released { release_id: String },
    /// The provider documents no release in this situation (`reason` says which).
    ReleaseUnsupported { reason: &'static str },
}

/// The largest total the ledger lets captures hold. Half of `i64`, so that what providers
/// report beyond what was held (adjustments are added by the database) cannot overflow.
const MAX_HELD_MINOR: i64 = i64::MAX / 2;

/// The authorization's ledger key.
pub struct LedgerKey<'a> {
    pub provider: &'a str,
    pub account: &'a str,
    pub authorization_id: &'a str,
}

/// Creates the ledger row if needed and locks it until the transaction ends. The upsert is a
/// write, so SQLite takes its write lock here (waiting its busy timeout, not failing) and
/// PostgreSQL locks the row.
pub async fn lock(
    txn: &DatabaseTransaction,
    key: &LedgerKey<'_>,
    now: i64,
) -> Result<authorizations::Model, StoreError> {
    // One statement makes or touches the row and returns it.
    static LOCK: LazyLock<Sql> = LazyLock::new(|| {
        Sql::new(
            "INSERT INTO authorizations (provider, provider_account, authorization_id, \
             currency_code, authorized_minor, held_minor, capture_count, closed_by, update_time) \
             VALUES ($1, $2, $3, NULL, NULL, 0, 0, NULL, $4) \
             ON CONFLICT (provider, provider_account, authorization_id) \
             DO UPDATE SET update_time = excluded.update_time \
             RETURNING provider, provider_account, authorization_id, currency_code, \
             authorized_minor, held_minor, capture_count, closed_by, update_time, \
             released_minor, released_by, release_id"
                .to_owned(),
        )
    });
    let statement = LOCK.statement(
        txn.get_database_backend(),
        vec![
            key.provider.into(),
            key.account.into(),
            key.authorization_id.into(),
            now.into(),
        ],
    );
    Entity::find()
        .from_raw_sql(statement)
        .one(txn)
        .await?
        .ok_or_else(|| StoreError::Missing(format!("ledger of {}", key.authorization_id)))
}

/// The ledger row [`lock`] creates for an authorization not seen before.
pub fn blank(key: &LedgerKey<'_>, now: i64) -> authorizations::Model {
    authorizations::Model {
        provider: key.provider.to_owned(),
        provider_account: key.account.to_owned(),
        authorization_id: key.authorization_id.to_owned(),
        currency_code: None,
        authorized_minor: None,
        held_minor: 0,
        capture_count: 0,
        closed_by: None,
        update_time: now,
        released_minor: None,
        released_by: None,
        release_id: None,
    }
}

async fn find(
    txn: &DatabaseTransaction,
    key: &LedgerKey<'_>,
) -> Result<authorizations::Model, StoreError> {
    Entity::find_by_id((
        key.provider.to_owned(),
        key.account.to_owned(),
        key.authorization_id.to_owned(),
    ))
    .one(txn)
    .await?
    .ok_or_else(|| StoreError::Missing(format!("ledger of {}", key.authorization_id)))
}

/// What a new capture would hold, or why the ledger refuses it.
pub fn admit(
    ledger: &authorizations::Model,
    command: &CaptureCommand,
) -> Result<i64, LedgerRefusal> {
    let p = command.parts();
    if let Some(closed_by) = &ledger.closed_by {
        return Err(LedgerRefusal::Closed {
            closed_by: closed_by.clone(),
        });
    }
    let Some(currency) = p.amount.or(p.authorized_amount).map(|m| m.currency()) else {
        // A full-amount capture with nothing known: the provider decides.
        return Ok(0);
    };
    if let Some(expected) = &ledger.currency_code {
        if expected != currency.code() {
            return Err(LedgerRefusal::CurrencyMismatch {
                expected: expected.clone(),
            });
        }
    }
    let authorized = match (ledger.authorized_minor, p.authorized_amount) {
        (Some(known), Some(given)) if known != given.minor_units() => {
            return Err(LedgerRefusal::AuthorizedAmountMismatch {
                known: Money::from_minor_units(currency, known),
            })
        }
        (Some(known), _) => Some(known),
        (None, given) => given.map(|m| m.minor_units()),
    };
    let remaining = authorized.map(|a| a.saturating_sub(ledger.held_minor));
    let reserved = match (p.amount, remaining) {
        (Some(amount), Some(remaining)) if amount.minor_units() > remaining => {
            return Err(LedgerRefusal::ExceedsAuthorization {
                remaining: Money::from_minor_units(currency, remaining.max(0)),
            })
        }
        (Some(amount), _) => amount.minor_units(),
        (None, Some(remaining)) => remaining.max(0),
        (None, None) => 0,
    };
    let fits = ledger
        .held_minor
        .checked_add(reserved)
        .is_some_and(|held| held <= MAX_HELD_MINOR)
        && ledger.capture_count.checked_add(1).is_some();
    if !fits {
        return Err(LedgerRefusal::LedgerFull);
    }
    Ok(reserved)
}

/// How an admitted release goes: by a provider call, or already done by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseBy {
    Call,
    Automatic,
}

/// Whether a release of what is left may be recorded, and how it will go. What is captured or
/// in flight is not released: captures recorded before it keep their hold.
pub fn admit_release(
    ledger: &authorizations::Model,
    command: &CaptureCommand,
    rules: &ReleaseRules,
) -> Result<ReleaseBy, LedgerRefusal> {
    if let Some(release_id) = &ledger.release_id {
        return Err(LedgerRefusal::Released {
            release_id: release_id.clone(),
        });
    }
    if let Some(closed_by) = &ledger.closed_by {
        // A final capture released the rest where the provider does so by itself; elsewhere
        // (Stax) the rest stays held at the provider until it is voided.
        if rules.final_capture_releases {
            return Err(LedgerRefusal::Closed {
                closed_by: closed_by.clone(),
            });
        }
    }
    if let Some(given) = command.parts().authorized_amount {
        if let Some(expected) = &ledger.currency_code {
            if expected != given.currency().code() {
                return Err(LedgerRefusal::CurrencyMismatch {
                    expected: expected.clone(),
                });
            }
        }
        if let Some(known) = ledger
            .authorized_minor
            .filter(|k| *k != given.minor_units())
        {
            return Err(LedgerRefusal::AuthorizedAmountMismatch {
                known: Money::from_minor_units(given.currency(), known),
            });
        }
    }
    let captures = u32::try_from(ledger.capture_count).unwrap_or(u32::MAX);
    let mechanism = if ledger.closed_by.is_some() {
        rules.after_partial_capture
    } else {
        rules.mechanism(captures)
    };
    match mechanism {
        ReleaseMechanism::Call => Ok(ReleaseBy::Call),
        ReleaseMechanism::Automatic => Ok(ReleaseBy::Automatic),
        ReleaseMechanism::Unsupported(reason) => Err(LedgerRefusal::ReleaseUnsupported { reason }),
    }
}

/// What releasing now would release: the authorized amount less what captures hold, when the
/// authorized amount is known.
fn releasable(ledger: &authorizations::Model) -> Option<i64> {
    ledger
        .authorized_minor
        .map(|authorized| authorized.saturating_sub(ledger.held_minor).max(0))
}

/// Records an admitted release: it closes the authorization to captures at once (a capture
/// recorded after it is refused), and, when the provider already released the rest
/// (`Automatic`), what was released.
pub async fn hold_release(
    txn: &DatabaseTransaction,
    ledger: &authorizations::Model,
    command: &CaptureCommand,
    release_id: &str,
    by: ReleaseBy,
    now: i64,
) -> Result<(), StoreError> {
    let given = command.parts().authorized_amount;
    let mut ledger = ledger.clone();
    if ledger.authorized_minor.is_none() {
        ledger.authorized_minor = given.map(|m| m.minor_units());
    }
    let currency = ledger
        .currency_code
        .clone()
        .or(given.map(|m| m.currency().code().to_owned()));
    let mut update = Entity::update_many()
        .col_expr(Column::CurrencyCode, Expr::value(currency))
        .col_expr(
            Column::AuthorizedMinor,
            Expr::value(ledger.authorized_minor),
        )
        .col_expr(
            Column::ClosedBy,
            Expr::value(ledger.closed_by.clone().unwrap_or(release_id.to_owned())),
        )
        .col_expr(Column::ReleaseId, Expr::value(release_id))
        .col_expr(Column::UpdateTime, Expr::value(now));
    if by == ReleaseBy::Automatic {
        update = update
            .col_expr(Column::ReleasedMinor, Expr::value(releasable(&ledger)))
            .col_expr(
                Column::ReleasedBy,
                Expr::value(ReleasedBy::ProviderAutomatic.as_str()),
            );
    }
    update.filter(key_filter(&ledger)).exec(txn).await?;
    Ok(())
}

/// The ledger row, while `release_id` is the release it records (a release answered after
/// another outcome already changed the row leaves it alone).
async fn of_release(
    txn: &DatabaseTransaction,
    key: &LedgerKey<'_>,
    release_id: &str,
) -> Result<Option<authorizations::Model>, StoreError> {
    let ledger = find(txn, key).await?;
    Ok((ledger.release_id.as_deref() == Some(release_id)).then_some(ledger))
}

/// The provider released the rest for `release_id`: records what was released.
pub async fn released(
    txn: &DatabaseTransaction,
    key: &LedgerKey<'_>,
    release_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let Some(ledger) = of_release(txn, key, release_id).await? else {
        return Ok(());
    };
    if ledger.released_by.is_some() {
        return Ok(());
    }
    Entity::update_many()
        .col_expr(Column::ReleasedMinor, Expr::value(releasable(&ledger)))
        .col_expr(
            Column::ReleasedBy,
            Expr::value(ReleasedBy::VoidCall.as_str()),
        )
        .col_expr(Column::UpdateTime, Expr::value(now))
        .filter(key_filter(&ledger))
        .exec(txn)
        .await?;
    Ok(())
}

/// The provider refused `release_id`: the authorization is open again, unless a capture
/// closed it.
pub async fn release_refused(
    txn: &DatabaseTransaction,
    key: &LedgerKey<'_>,
    release_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let Some(ledger) = of_release(txn, key, release_id).await? else {
        return Ok(());
    };
    let closed_by = ledger.closed_by.clone().filter(|by| by != release_id);
    Entity::update_many()
        .col_expr(Column::ClosedBy, Expr::value(closed_by))
        .col_expr(Column::ReleaseId, Expr::value(Option::<String>::None))
        .col_expr(Column::UpdateTime, Expr::value(now))
        .filter(key_filter(&ledger))
        .exec(txn)
        .await?;
    Ok(())
}

/// The ledger row once an admitted capture holds `reserved_minor` of it: its key and the
/// columns that change.
pub fn held(
    ledger: &authorizations::Model,
    command: &CaptureCommand,
    capture_id: &str,
    reserved_minor: i64,
    now: i64,
) -> authorizations::ActiveModel {
    let p = command.parts();
    let currency = p
        .amount
        .or(p.authorized_amount)
        .map(|m| m.currency().code().to_owned())
        .or_else(|| ledger.currency_code.clone());
    let authorized = ledger
        .authorized_minor
        .or(p.authorized_amount.map(|m| m.minor_units()));
    let closed_by = command
        .closes_authorization()
        .then(|| capture_id.to_owned());
    authorizations::ActiveModel {
        provider: Set(ledger.provider.clone()),
        provider_account: Set(ledger.provider_account.clone()),
        authorization_id: Set(ledger.authorization_id.clone()),
        currency_code: Set(currency),
        authorized_minor: Set(authorized),
        // `admit` checked that both fit.
        held_minor: Set(ledger.held_minor + reserved_minor),
        capture_count: Set(ledger.capture_count + 1),
        closed_by: Set(closed_by),
        update_time: Set(now),
        ..Default::default()
    }
}

/// Records an admitted capture in the ledger row `txn` has locked: the row as [`held`] makes
/// it.
pub async fn hold(
    txn: &DatabaseTransaction,
    ledger: &authorizations::Model,
    held: authorizations::ActiveModel,
) -> Result<(), StoreError> {
    Entity::update_many()
        .set(held)
        .filter(key_filter(ledger))
        .exec(txn)
        .await?;
    Ok(())
}

/// Gives back what a capture held, after the provider refused or declined it; reopens the
/// authorization if that capture had closed it.
pub async fn give_back(
    txn: &DatabaseTransaction,
    key: &LedgerKey<'_>,
    capture_id: &str,
    reserved_minor: i64,
    now: i64,
) -> Result<(), StoreError> {
    let ledger = find(txn, key).await?;
    let closed_by = ledger.closed_by.clone().filter(|by| by != capture_id);
    let mut update = Entity::update_many()
        .col_expr(
            Column::HeldMinor,
            Expr::col(Column::HeldMinor).sub(reserved_minor),
        )
        .col_expr(Column::CaptureCount, Expr::col(Column::CaptureCount).sub(1))
        .col_expr(Column::ClosedBy, Expr::value(closed_by))
        .col_expr(Column::UpdateTime, Expr::value(now));
    if ledger.capture_count <= 1 {
        // No capture holds anything any more: what the refused one claimed (its currency, the
        // authorized amount it asserted) was never confirmed, so it binds no later capture.
        update = update
            .col_expr(Column::CurrencyCode, Expr::value(Option::<String>::None))
            .col_expr(Column::AuthorizedMinor, Expr::value(Option::<i64>::None));
    }
    update.filter(key_filter(&ledger)).exec(txn).await?;
    Ok(())
}

/// Replaces what a capture held with what the provider says it captured.
pub async fn adjust(
    txn: &DatabaseTransaction,
    key: &LedgerKey<'_>,
    delta_minor: i64,
    now: i64,
) -> Result<(), StoreError> {
    let ledger = find(txn, key).await?;
    Entity::update_many()
        .col_expr(
            Column::HeldMinor,
            Expr::col(Column::HeldMinor).add(delta_minor),
        )
        .col_expr(Column::UpdateTime, Expr::value(now))
        .filter(key_filter(&ledger))
        .exec(txn)
        .await?;
    Ok(())
}

fn key_filter(ledger: &authorizations::Model) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(Column::Provider.eq(ledger.provider.clone()))
        .add(Column::ProviderAccount.eq(ledger.provider_account.clone()))
        .add(Column::AuthorizationId.eq(ledger.authorization_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::capture::sample_parts;
    use crate::domain::Money;

    fn ledger(held_minor: i64, capture_count: i32) -> authorizations::Model {
        authorizations::Model {
            provider: "provider".into(),
            provider_account: "default".into(),
            authorization_id: "AUTH".into(),
            currency_code: Some("USD".into()),
            authorized_minor: None,
            held_minor,
            capture_count,
            closed_by: None,
            update_time: 0,
            released_minor: None,
            released_by: None,
            release_id: None,
        }
    }

    fn release(authorized: Option<&str>) -> Result<CaptureCommand, String> {
        let parts = sample_parts().ok_or("fixture")?;
        let authorized = authorized
            .map(|v| Money::parse_positive("USD", v).map_err(|e| e.to_string()))
            .transpose()?;
        Ok(CaptureCommand::release(
            parts.provider,
            None,
            parts.authorization_id,
            authorized,
            parts.request_id,
        ))
    }

    const RULES: ReleaseRules = ReleaseRules {
        before_capture: ReleaseMechanism::Call,
        after_partial_capture: ReleaseMechanism::Unsupported("not after a capture"),
        final_capture_releases: true,
    };

    #[test]
    fn a_release_is_decided_by_the_ledger_and_the_providers_rules() -> Result<(), String> {
        let open = ledger(0, 0);
        assert_eq!(
            admit_release(&open, &release(None)?, &RULES),
            Ok(ReleaseBy::Call)
        );
        // After a capture this provider cannot release; another does it by itself.
        let captured = ledger(1000, 1);
        assert_eq!(
            admit_release(&captured, &release(None)?, &RULES),
            Err(LedgerRefusal::ReleaseUnsupported {
                reason: "not after a capture"
            })
        );
        let automatic = ReleaseRules {
            after_partial_capture: ReleaseMechanism::Automatic,
            ..RULES
        };
        assert_eq!(
            admit_release(&captured, &release(None)?, &automatic),
            Ok(ReleaseBy::Automatic)
        );
        // Released (or releasing) once: never again.
        let released = authorizations::Model {
            release_id: Some("rel_1".into()),
            closed_by: Some("rel_1".into()),
            ..ledger(0, 0)
        };
        assert_eq!(
            admit_release(&released, &release(None)?, &RULES),
            Err(LedgerRefusal::Released {
                release_id: "rel_1".into()
            })
        );
        // A final capture released the rest where the provider does so; elsewhere it is voided.
        let closed = authorizations::Model {
            closed_by: Some("cap_1".into()),
            ..ledger(1000, 1)
        };
        assert_eq!(
            admit_release(&closed, &release(None)?, &RULES),
            Err(LedgerRefusal::Closed {
                closed_by: "cap_1".into()
            })
        );
        let voided_after = ReleaseRules {
            after_partial_capture: ReleaseMechanism::Call,
            final_capture_releases: false,
            ..RULES
        };
        assert_eq!(
            admit_release(&closed, &release(None)?, &voided_after),
            Ok(ReleaseBy::Call)
        );
        // The authorized amount binds a release as it binds a capture.
        let known = authorizations::Model {
            authorized_minor: Some(10_000),
            ..ledger(0, 0)
        };
        assert!(matches!(
            admit_release(&known, &release(Some("99.00"))?, &RULES),
            Err(LedgerRefusal::AuthorizedAmountMismatch { .. })
        ));
        assert_eq!(
            admit_release(&known, &release(Some("100.00"))?, &RULES),
            Ok(ReleaseBy::Call)
        );
        Ok(())
    }

    /// A capture of `value` USD with no authorized amount known.
    fn capture_of(value: &str) -> Result<CaptureCommand, String> {
        let mut parts = sample_parts().ok_or("fixture")?;
        parts.amount = Some(Money::parse_positive("USD", value).map_err(|e| e.to_string())?);
        parts.authorized_amount = None;
        CaptureCommand::new(parts).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn a_capture_that_would_overflow_the_ledger_is_refused() -> Result<(), String> {
        let largest = capture_of("9999999999999.99")?;
        assert_eq!(admit(&ledger(0, 0), &largest), Ok(999_999_999_999_999));
        assert_eq!(
            admit(&ledger(MAX_HELD_MINOR - 1, 1), &largest),
            Err(LedgerRefusal::LedgerFull)
        );
        assert_eq!(
            admit(&ledger(i64::MAX, 1), &capture_of("0.01")?),
            Err(LedgerRefusal::LedgerFull)
        );
        assert_eq!(
            admit(&ledger(0, i32::MAX), &capture_of("0.01")?),
            Err(LedgerRefusal::LedgerFull)
        );
        Ok(())
    }
}
