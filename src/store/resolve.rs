//! Recording what a provider said about a capture, and the bookkeeping of captures still
//! waiting for a definite answer.

use sea_orm::ActiveValue::Set;
use std::sync::LazyLock;

use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter};

use super::captures::{event_row, insert_event, insert_fee_rows, EventSource, Resolution};
use super::convert::{self, FEE_REPORTED};
use super::entities::{capture_events, captures, platform_fees, seller_receivable_breakdowns};
use super::ledger::{self, LedgerKey};
use super::read;
use super::single_statement::{self, Hold, OutcomeRows};
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
        if let Some(applied) = self
            .resolve_in_one_statement(&record, &resolution, source)
            .await?
        {
            count_change(before, &applied, source);
            return Ok(applied);
        }
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

impl Store {
    /// Records the outcome or refusal of a capture the caller saw `PROCESSING` as one
    /// statement on PostgreSQL ([`single_statement`]): the record as stored, or `None` when
    /// the general path must decide (another database, another case, or the capture no longer
    /// `PROCESSING`).
    async fn resolve_in_one_statement(
        &self,
        record: &CaptureRecord,
        resolution: &Resolution,
        source: EventSource,
    ) -> Result<Option<CaptureRecord>, StoreError> {
        let eligible = self.single_statement_writes
            && record.status == CaptureStatus::Processing
            && record.command.operation() == Operation::Capture
            && matches!(resolution, Resolution::Outcome(_) | Resolution::Rejected(_));
        if !eligible {
            return Ok(None);
        }
        let now = now_micros();
        let (capture, event) = changes(&record.id, resolution, source, now);
        let breakdown = match resolution {
            Resolution::Outcome(outcome) => outcome.breakdown.as_ref(),
            _ => None,
        };
        let breakdown_row = breakdown.map(|b| convert::breakdown_row(&record.id, b));
        let fees = breakdown
            .map(|b| convert::fee_rows(&record.id, FEE_REPORTED, &b.platform_fees))
            .unwrap_or_default();
        let rows = OutcomeRows {
            capture_id: &record.id,
            capture,
            hold: hold_after(resolution),
            breakdown: breakdown_row,
            fees,
            event,
            now,
        };
        let recorded = self
            .bounded("record outcome", async {
                let _turn = self.write_turn().await?;
                single_statement::record_outcome(self.hot(), rows).await
            })
            .await?;
        if !recorded {
            return Ok(None);
        }
        self.single_statement_committed();
        Ok(Some(applied(record.clone(), resolution, now)))
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
    let (mut update, event) = changes(&row.id, &resolution, source, now);
    match &resolution {
        Resolution::Outcome(outcome) => {
            match operation {
                Operation::Capture => match hold_after(&resolution) {
                    Hold::Kept => {}
                    Hold::GivenBack => {
                        ledger::give_back(txn, &key, &row.id, row.reserved_minor, now).await?;
                        update.reserved_minor = Set(0);
                    }
                    Hold::Captured(captured) => {
                        let delta = captured - row.reserved_minor;
                        if delta != 0 {
                            ledger::adjust(txn, &key, delta, now).await?;
                            update.reserved_minor = Set(captured);
                        }
                    }
                },
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
                insert_fee_rows(
                    txn,
                    convert::fee_rows(&row.id, FEE_REPORTED, &breakdown.platform_fees),
                )
                .await?;
            }
        }
        Resolution::Rejected(_) => {
            update.reserved_minor = Set(0);
            match operation {
                Operation::Capture => {
                    ledger::give_back(txn, &key, &row.id, row.reserved_minor, now).await?
                }
                Operation::Release => ledger::release_refused(txn, &key, &row.id, now).await?,
            }
        }
        Resolution::Refunded { .. } | Resolution::Unknown { .. } => {}
    }
    insert_event(txn, event).await?;
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

/// What a capture's outcome does to what it holds.
fn hold_after(resolution: &Resolution) -> Hold {
    match resolution {
        Resolution::Outcome(outcome) if !outcome.status.holds_funds() => Hold::GivenBack,
        Resolution::Outcome(outcome) => match outcome.captured_amount {
            Some(captured) => Hold::Captured(captured.minor_units()),
            None => Hold::Kept,
        },
        Resolution::Rejected(_) => Hold::GivenBack,
        Resolution::Refunded { .. } | Resolution::Unknown { .. } => Hold::Kept,
    }
}

/// How `resolution` changes the row of capture `id` (what it holds aside, which depends on
/// the row: [`hold_after`]), and the audit event that records it.
fn changes(
    id: &str,
    resolution: &Resolution,
    source: EventSource,
    now: i64,
) -> (captures::ActiveModel, capture_events::ActiveModel) {
    let mut update = captures::ActiveModel {
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
    let (kind, status, detail) = match resolution {
        Resolution::Outcome(outcome) => {
            apply_outcome(&mut update, outcome);
            let detail = serde_json::json!({
                "provider_status": outcome.provider_status,
                "provider_capture_id": outcome.provider_capture_id,
                "captured_amount": outcome.captured_amount.map(|m| m.to_string()),
            });
            ("PROVIDER_OUTCOME", outcome.status, detail)
        }
        Resolution::Rejected(failure) => {
            update.status = Set(CaptureStatus::Failed.as_str().to_owned());
            update.status_reason = Set(Some(StatusReason::ProviderRejected.as_str().to_owned()));
            update.error_code = Set(Some(failure.code.clone()));
            update.error_message = Set(Some(masked(&failure.message)));
            update.error_debug_id = Set(failure.debug_id.clone());
            update.error_http_status = Set(Some(i32::from(failure.http_status)));
            let detail = serde_json::json!({
                "code": failure.code,
                "message": masked(&failure.message),
                "debug_id": failure.debug_id,
                "http_status": failure.http_status,
            });
            ("PROVIDER_REJECTED", CaptureStatus::Failed, detail)
        }
        Resolution::Refunded { status, total } => {
            update.status = Set(status.as_str().to_owned());
            update.status_reason = Set(Some(StatusReason::Refunded.as_str().to_owned()));
            update.refunded_minor = Set(Some(total.minor_units()));
            let detail = serde_json::json!({ "refunded_total": total.to_string() });
            ("REFUNDED", *status, detail)
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
            ("OUTCOME_UNKNOWN", CaptureStatus::Processing, detail)
        }
    };
    (update, event_row(source, id, kind, status, detail, now))
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
    update.provider_response = Set(outcome.redacted_body.as_deref().map(|body| {
        // Masked again here, where nothing may pass unmasked; copied only to mask.
        if pan::json_has_card_number(body) {
            let mut body = body.clone();
            pan::mask_card_numbers_in_json(&mut body);
            body.to_string()
        } else {
            body.to_string()
        }
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
