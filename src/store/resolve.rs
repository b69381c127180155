//! Recording what a provider said about a capture, and the bookkeeping of captures still
//! waiting for a definite answer.

use sea_orm::ActiveValue::Set;
use std::sync::LazyLock;

use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter};

use super::captures::{insert_event, insert_fees, EventSource, Resolution};
use super::convert::{self, FEE_REPORTED};
use super::entities::{captures, platform_fees, seller_receivable_breakdowns};
use super::ledger::{self, LedgerKey};
use super::read;
use super::sql::Sql;
use super::writer::{self, Written};
use super::{now_micros, Store, StoreError};
use crate::domain::outcome::ProviderFailure;
use crate::domain::{pan, CaptureRecord, CaptureStatus, Operation, ProviderOutcome, StatusReason};

impl Store {
    /// Records what the provider said about a capture: status, provider fields, breakdown,
    /// fees, ledger and an audit event, in one transaction. An outcome applies to a `PROCESSING`
    /// or `PENDING` capture; a refusal or an unknown outcome only to a `PROCESSING` one. A
    /// capture in any other state is returned unchanged.
    ///
    /// `record` is the capture as the caller last saw it; the answer is the record as stored
    /// afterwards, made from `record` and `resolution` rather than read back.
    pub async fn resolve(
        &self,
        record: CaptureRecord,
        resolution: Resolution,
        source: EventSource,
    ) -> Result<CaptureRecord, StoreError> {
        let id = record.id.clone();
        let before = record.status;
        let written = self
            .write(
                "record outcome",
                writer::work(move |txn| Box::pin(resolve_in(txn, record, resolution, source))),
            )
            .await?;
        match written {
            Some(applied) => {
                count_change(before, &applied, source);
                Ok(applied)
            }
            // It was not this resolution's to change, or someone else changed it since the
            // caller read it: what is stored is the truth.
            None => self.get_any(&id).await,
        }
    }
}

/// `UPDATE captures SET update_time = $1 WHERE id = $2 AND status IN (…) RETURNING <every
/// column>`: the row, if its status is one of `from`.
fn claim_statement(from: impl Iterator<Item = CaptureStatus>) -> Sql {
    let from: Vec<String> = from.map(|s| format!("'{}'", s.as_str())).collect();
    Sql::new(format!(
        "UPDATE captures SET update_time = $1 WHERE id = $2 AND status IN ({}) RETURNING {}",
        from.join(", "),
        read::capture_columns()
    ))
}

/// Per status, the claim of a row that may take it: statuses only move forward
/// ([`CaptureStatus::may_become`]), whoever reports them.
static CLAIM_INTO: LazyLock<Vec<(CaptureStatus, Sql)>> = LazyLock::new(|| {
    CaptureStatus::ALL
        .into_iter()
        .map(|to| {
            let from = CaptureStatus::ALL
                .into_iter()
                .filter(move |s| s.may_become(to));
            (to, claim_statement(from))
        })
        .collect()
});
/// A refusal or an unknown outcome applies only to a `PROCESSING` capture.
static CLAIM_PROCESSING: LazyLock<Sql> =
    LazyLock::new(|| claim_statement([CaptureStatus::Processing].into_iter()));

/// The claim of the row `resolution` applies to.
fn claim_for(resolution: &Resolution) -> &'static Sql {
    match resolution {
        Resolution::Outcome(_) | Resolution::Refunded { .. } => {
            let to = resolution.status().unwrap_or(CaptureStatus::Processing);
            CLAIM_INTO
                .iter()
                .find(|(status, _)| *status == to)
                .map(|(_, sql)| sql)
                .unwrap_or(&CLAIM_PROCESSING)
        }
        Resolution::Rejected(_) | Resolution::Unknown { .. } => &CLAIM_PROCESSING,
    }
}

/// Records `resolution` of `record` in the write transaction `txn`: the record as stored
/// afterwards, or `None` when what is stored is not what `record` says (read it instead).
/// Counts a committed status change of a capture in the metrics (not a detail changed under one
/// status; releases are not captures and are not counted there).
pub(super) fn count_change(before: CaptureStatus, after: &CaptureRecord, source: EventSource) {
    if after.status != before && after.command.operation() == Operation::Capture {
        crate::telemetry::metrics::metrics().status_change(
            after.command.parts().provider.as_str(),
            after.status.as_str(),
            source.as_str(),
        );
    }
}

pub(super) async fn resolve_in(
    txn: &DatabaseTransaction,
    record: CaptureRecord,
    resolution: Resolution,
    source: EventSource,
) -> Result<Written<Option<CaptureRecord>>, StoreError> {
    let now = now_micros();
    // One statement claims the row and reads it: on PostgreSQL it locks the row. (The pool
    // opens after migrations, so no connection returns rows of a schema gone stale.)
    let claim = claim_for(&resolution);
    let row = txn
        .query_one(claim.statement(
            txn.get_database_backend(),
            vec![now.into(), record.id.as_str().into()],
        ))
        .await?
        .map(|row| read::capture_row(&row))
        .transpose()?;
    let Some(row) = row else {
        return Ok(Written::Discard(None));
    };
    let stale = row.status != record.status.as_str();
    let operation = Operation::parse(&row.operation).ok_or_else(|| StoreError::Corrupt {
        id: row.id.clone(),
        problem: "operation".into(),
    })?;
    let key = LedgerKey {
        provider: &row.provider,
        account: &row.provider_account,
        authorization_id: &row.authorization_id,
    };
    let mut update = captures::ActiveModel {
        id: Set(row.id.clone()),
        update_time: Set(now),
        reconcile_after: Set(None),
        reconcile_attempts: Set(0),
        ..Default::default()
    };
    // The request or the look that holds the lease has its answer; a provider's notice may
    // come while either is still calling, and leaves their lease alone.
    if source != EventSource::Webhook {
        update.lease_until = Set(None);
        update.lease_owner = Set(None);
    }
    match &resolution {
        Resolution::Outcome(outcome) => {
            apply_outcome(&mut update, outcome);
            match operation {
                Operation::Capture if !outcome.status.holds_funds() => {
                    ledger::give_back(txn, &key, &row.id, row.reserved_minor, now).await?;
                    update.reserved_minor = Set(0);
                }
                Operation::Capture => {
                    if let Some(captured) = outcome.captured_amount {
                        let delta = captured.minor_units() - row.reserved_minor;
                        if delta != 0 {
                            ledger::adjust(txn, &key, delta, now).await?;
                            update.reserved_minor = Set(captured.minor_units());
                        }
                    }
                }
                Operation::Release => match outcome.status {
                    CaptureStatus::Completed => ledger::released(txn, &key, &row.id, now).await?,
                    CaptureStatus::Processing | CaptureStatus::Pending => {}
                    _ => ledger::release_refused(txn, &key, &row.id, now).await?,
                },
            }
            if let Some(breakdown) = &outcome.breakdown {
                // A later answer replaces what an earlier one reported. Only an outcome
                // writes a breakdown, and it moves the capture out of PROCESSING: a
                // PROCESSING row has none to replace.
                if row.status != CaptureStatus::Processing.as_str() {
                    seller_receivable_breakdowns::Entity::delete_by_id(row.id.clone())
                        .exec(txn)
                        .await?;
                    platform_fees::Entity::delete_many()
                        .filter(platform_fees::Column::CaptureId.eq(row.id.as_str()))
                        .filter(platform_fees::Column::Source.eq(FEE_REPORTED))
                        .exec(txn)
                        .await?;
                }
                seller_receivable_breakdowns::Entity::insert(convert::breakdown_row(
                    &row.id, breakdown,
                ))
                .exec_without_returning(txn)
                .await?;
                insert_fees(txn, &row.id, FEE_REPORTED, &breakdown.platform_fees).await?;
            }
            let detail = serde_json::json!({
                "provider_status": outcome.provider_status,
                "provider_capture_id": outcome.provider_capture_id,
                "captured_amount": outcome.captured_amount.map(|m| m.to_string()),
            });
            insert_event(
                txn,
                source,
                &row.id,
                "PROVIDER_OUTCOME",
                outcome.status,
                detail,
                now,
            )
            .await?;
        }
        Resolution::Rejected(failure) => {
            update.status = Set(CaptureStatus::Failed.as_str().to_owned());
            update.status_reason = Set(Some(StatusReason::ProviderRejected.as_str().to_owned()));
            update.error_code = Set(Some(failure.code.clone()));
            update.error_message = Set(Some(masked(&failure.message)));
            update.error_debug_id = Set(failure.debug_id.clone());
            update.error_http_status = Set(Some(i32::from(failure.http_status)));
            update.reserved_minor = Set(0);
            match operation {
                Operation::Capture => {
                    ledger::give_back(txn, &key, &row.id, row.reserved_minor, now).await?
                }
                Operation::Release => ledger::release_refused(txn, &key, &row.id, now).await?,
            }
            let detail = serde_json::json!({
                "code": failure.code,
                "message": masked(&failure.message),
                "debug_id": failure.debug_id,
                "http_status": failure.http_status,
            });
            insert_event(
                txn,
                source,
                &row.id,
                "PROVIDER_REJECTED",
                CaptureStatus::Failed,
                detail,
                now,
            )
            .await?;
        }
        Resolution::Refunded { status, total } => {
            update.status = Set(status.as_str().to_owned());
            update.status_reason = Set(Some(StatusReason::Refunded.as_str().to_owned()));
            update.refunded_minor = Set(Some(total.minor_units()));
            let detail = serde_json::json!({ "refunded_total": total.to_string() });
            insert_event(txn, source, &row.id, "REFUNDED", *status, detail, now).await?;
        }
        Resolution::Unknown { detail, not_before } => {
            if let Some(wait) = not_before {
                let wait = i64::try_from(wait.as_micros()).unwrap_or(i64::MAX / 2);
                update.reconcile_after = Set(Some(now.saturating_add(wait)));
            }
            update.status_reason = Set(Some(
                StatusReason::ProviderOutcomeUnknown.as_str().to_owned(),
            ));
            let detail = serde_json::json!({ "detail": masked(detail) });
            insert_event(
                txn,
                source,
                &row.id,
                "OUTCOME_UNKNOWN",
                CaptureStatus::Processing,
                detail,
                now,
            )
            .await?;
        }
    }
    captures::Entity::update_many()
        .set(update)
        .filter(captures::Column::Id.eq(row.id.as_str()))
        .exec(txn)
        .await?;
    if stale {
        return Ok(Written::Commit(None));
    }
    Ok(Written::Commit(Some(applied(record, &resolution, now))))
}

fn apply_outcome(update: &mut captures::ActiveModel, outcome: &ProviderOutcome) {
    update.status = Set(outcome.status.as_str().to_owned());
    update.status_reason = Set(outcome.reason.map(|r| r.as_str().to_owned()));
    update.provider_reason = Set(outcome.provider_reason.as_deref().map(masked));
    update.provider_capture_id = Set(outcome.provider_capture_id.clone());
    update.provider_status = Set(Some(outcome.provider_status.clone()));
    update.captured_currency_code = Set(outcome
        .captured_amount
        .map(|m| m.currency().code().to_owned()));
    update.captured_amount_minor = Set(outcome.captured_amount.map(|m| m.minor_units()));
    update.network_reference = Set(convert::to_json_columns(&outcome.network_reference));
    update.seller_protection = Set(convert::to_json_columns(&outcome.seller_protection));
    update.processor_response = Set(convert::to_json_columns(&outcome.processor_response));
    update.provider_response = Set(outcome.redacted_body.as_ref().map(|body| {
        let mut body = body.clone();
        pan::mask_card_numbers_in_json(&mut body);
        body.to_string()
    }));
}

/// `record` after `resolution`, exactly as [`Store::resolve`] stores it and reading it back
/// would give.
fn applied(mut record: CaptureRecord, resolution: &Resolution, now: i64) -> CaptureRecord {
    record.update_time = now;
    match resolution {
        Resolution::Outcome(outcome) => {
            record.status = outcome.status;
            record.reason = outcome.reason;
            record.provider_reason = outcome.provider_reason.as_deref().map(masked);
            record.provider_capture_id = outcome.provider_capture_id.clone();
            record.provider_status = Some(outcome.provider_status.clone());
            record.captured_amount = outcome.captured_amount;
            if let Some(breakdown) = &outcome.breakdown {
                record.breakdown = Some(breakdown.clone());
            }
            record.network_reference = outcome.network_reference.clone();
            record.seller_protection = outcome.seller_protection.clone();
            record.processor_response = outcome.processor_response.clone();
        }
        Resolution::Rejected(failure) => {
            record.status = CaptureStatus::Failed;
            record.reason = Some(StatusReason::ProviderRejected);
            record.failure = Some(ProviderFailure {
                message: masked(&failure.message),
                ..failure.clone()
            });
        }
        Resolution::Refunded { status, total } => {
            record.status = *status;
            record.reason = Some(StatusReason::Refunded);
            record.refunded_amount = Some(*total);
        }
        Resolution::Unknown { .. } => {
            record.reason = Some(StatusReason::ProviderOutcomeUnknown);
        }
    }
    record
}

/// Provider text as stored: any card number in it masked to first six / last four, whatever
/// the connector already removed (PCI DSS 3.4).
fn masked(text: &str) -> String {
    pan::mask_card_numbers(text).into_owned()
}
