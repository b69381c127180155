//! Capture queries: start a capture (idempotency + ledger), record the provider's answer, read,
//! list. Each write is one transaction; nothing is ever half-written.

use std::fmt::Write;
use std::sync::LazyLock;

use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, SqlErr, Statement, Value,
};

use super::convert::{self, FEE_REQUESTED};
use super::entities::{authorizations, capture_events, captures, platform_fees};
use super::ledger::{self, LedgerKey, ReleaseBy};
use super::read;
use super::single_statement::{self, NewCaptureRows, SeenLedger, Started};
use super::sql::Sql;
use super::writer::{self, Written};
use super::{now_micros, Store, StoreError};
use crate::domain::outcome::ProviderFailure;
use crate::domain::{
    CaptureCommand, CaptureRecord, CaptureStatus, Money, Operation, Provider, ProviderOutcome,
    ReleaseRules,
};

pub use super::ledger::LedgerRefusal;

/// A capture about to be recorded.
pub struct NewCapture<'a> {
    pub id: &'a str,
    pub tenant: &'a str,
    /// The resolved provider account name.
    pub account: &'a str,
    pub command: &'a CaptureCommand,
    /// How long its request may take, all attempts and back-off included: the reconciler
    /// leaves it alone until then.
    pub lease_micros: i64,
    /// How the provider releases a remainder (used by a release).
    pub release_rules: ReleaseRules,
}

/// How starting a capture went.
#[derive(Debug)]
pub enum Begin {
    /// Recorded as `PROCESSING` and committed: the provider may now be called.
    Created(CaptureRecord),
    /// The tenant already sent this request (same key, same request).
    Existing(CaptureRecord),
    /// The tenant used this key for a different request.
    KeyReused { capture_id: String },
    /// The ledger refuses the capture; nothing was written.
    Refused(LedgerRefusal),
}

/// What the provider call came to.
#[derive(Debug, Clone)]
pub enum Resolution {
    Outcome(Box<ProviderOutcome>),
    /// The provider refused: nothing was captured.
    Rejected(ProviderFailure),
    /// No definite answer: the capture stays `PROCESSING`.
    Unknown {
        detail: String,
        /// Not looked at again sooner: the provider throttled (its `Retry-After`).
        not_before: Option<std::time::Duration>,
    },
    /// Money went back to the payer: `total` refunded so far, making the capture `status`
    /// (`PARTIALLY_REFUNDED` or `REFUNDED`).
    Refunded {
        status: CaptureStatus,
        total: crate::domain::Money,
    },
}

impl Resolution {
    /// The status it gives a capture, if it decides one.
    pub fn status(&self) -> Option<CaptureStatus> {
        match self {
            Resolution::Outcome(outcome) => Some(outcome.status),
            Resolution::Rejected(_) => Some(CaptureStatus::Failed),
            Resolution::Refunded { status, .. } => Some(*status),
            Resolution::Unknown { .. } => None,
        }
    }
}

/// Filters and position of a list page.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub page_size: u64,
    /// The last (create_time, id) of the previous page.
    pub after: Option<(i64, String)>,
    pub provider: Option<Provider>,
    pub status: Option<CaptureStatus>,
    pub authorization_id: Option<String>,
    pub invoice_id: Option<String>,
    pub create_time_start: Option<i64>,
    pub create_time_end: Option<i64>,
}

/// The statement of one page of `tenant`'s captures matching `query`: newest first along the
/// (tenant, create_time, id) index, one row more than the page, to tell whether another follows.
/// Written here rather than by sea-orm's query builder, which quoted and formatted each of the
/// 42 columns anew for every page.
fn page_statement(backend: sea_orm::DbBackend, tenant: &str, query: &ListQuery) -> Statement {
    static SELECT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM captures WHERE tenant = $1 AND operation = $2",
            read::capture_columns()
        )
    });
    let mut sql = String::with_capacity(SELECT.len() + 200);
    sql.push_str(&SELECT);
    let mut values: Vec<Value> = vec![tenant.into(), Operation::Capture.as_str().into()];
    let mut and = |condition: &str, value: Value| {
        values.push(value);
        let _ = write!(sql, " AND {condition} ${}", values.len());
    };
    if let Some(provider) = query.provider {
        and("provider =", provider.as_str().into());
    }
    if let Some(status) = query.status {
        and("status =", status.as_str().into());
    }
    if let Some(authorization_id) = &query.authorization_id {
        and("authorization_id =", authorization_id.as_str().into());
    }
    if let Some(invoice_id) = &query.invoice_id {
        and("invoice_id =", invoice_id.as_str().into());
    }
    if let Some(start) = query.create_time_start {
        and("create_time >=", start.into());
    }
    if let Some(end) = query.create_time_end {
        and("create_time <", end.into());
    }
    if let Some((time, id)) = &query.after {
        // One row-value comparison: the keyset is a single range of the index.
        values.extend([Value::from(*time), id.as_str().into()]);
        let n = values.len();
        let _ = write!(sql, " AND (create_time, id) < (${}, ${n})", n - 1);
    }
    values.push(
        i64::try_from(query.page_size + 1)
            .unwrap_or(i64::MAX)
            .into(),
    );
    let _ = write!(
        sql,
        " ORDER BY create_time DESC, id DESC LIMIT ${}",
        values.len()
    );
    super::sql::statement(backend, &sql, values)
}

/// One page, and where the next starts.
#[derive(Debug)]
pub struct ListPage {
    pub records: Vec<CaptureRecord>,
    pub next: Option<(i64, String)>,
}

impl Attempt {
    fn done(begin: Begin) -> Self {
        Attempt::Done(Box::new(begin))
    }
}

enum Attempt {
    Done(Box<Begin>),
    /// Another request inserted the same key between our check and our insert.
    Raced,
}

impl Store {
    /// Starts a capture: idempotency check, ledger check, and the `PROCESSING` row, in one
    /// transaction committed before the provider is called.
    pub async fn begin_capture(&self, new: &NewCapture<'_>) -> Result<Begin, StoreError> {
        for _ in 0..3 {
            if let Attempt::Done(begin) = self.try_begin(new).await? {
                return Ok(*begin);
            }
        }
        // Three races on one key in a row cannot happen: the loser's retry finds the winner.
        Err(StoreError::Missing(format!(
            "request {}",
            new.command.parts().request_id
        )))
    }

    async fn try_begin(&self, new: &NewCapture<'_>) -> Result<Attempt, StoreError> {
        let p = new.command.parts();
        let single_statement =
            self.single_statement_writes && new.command.operation() == Operation::Capture;
        // A repeated request is answered from one read, without waiting for a write turn. Two
        // first requests with one key that race past this meet at the unique index below. For
        // a single statement, the same read gives the ledger row it decides on.
        let (found, seen) = if single_statement {
            let key = LedgerKey {
                provider: p.provider.as_str(),
                account: new.account,
                authorization_id: p.authorization_id.as_str(),
            };
            let read = single_statement::find_request_and_ledger(
                self.hot(),
                new.tenant,
                p.request_id.as_str(),
                &key,
            );
            let (found, seen) = self.bounded("find request", read).await?;
            (found, Some(seen))
        } else {
            (
                self.find_request(new.tenant, p.request_id.as_str()).await?,
                None,
            )
        };
        if let Some(found) = found {
            return Ok(Attempt::done(existing(found, new.command)?));
        }
        let new = OwnedCapture {
            id: new.id.to_owned(),
            tenant: new.tenant.to_owned(),
            account: new.account.to_owned(),
            command: new.command.clone(),
            lease_micros: new.lease_micros,
            lease_owner: self.lease_owner.clone(),
            release_rules: new.release_rules,
        };
        let begun = match seen {
            Some(seen) => self.begin_in_one_statement(new, seen).await?,
            None => Err(new),
        };
        let attempt = match begun {
            Ok(attempt) => attempt,
            Err(new) => {
                self.write(
                    "begin capture",
                    writer::work(move |txn| Box::pin(begin_in(txn, new))),
                )
                .await?
            }
        };
        if let Attempt::Done(begun) = &attempt {
            if let Begin::Created(record) = begun.as_ref() {
                // Releases are counted by their provider calls, not as captures' statuses.
                if record.command.operation() == Operation::Capture {
                    crate::telemetry::metrics::metrics().status_change(
                        record.command.parts().provider.as_str(),
                        record.status.as_str(),
                        EventSource::Api.as_str(),
                    );
                }
            }
        }
        Ok(attempt)
    }

    /// The capture a tenant's request id made, read whole in one statement.
    async fn find_request(
        &self,
        tenant: &str,
        request_id: &str,
    ) -> Result<Option<read::Joined>, StoreError> {
        static SQL: LazyLock<Sql> =
            LazyLock::new(|| read::select_where("c.tenant = $1 AND c.request_id = $2"));
        self.bounded(
            "find request",
            read::joined_one(self.hot(), &SQL, vec![tenant.into(), request_id.into()]),
        )
        .await
    }

    /// One capture of a tenant; another tenant's capture is `None`.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<CaptureRecord>, StoreError> {
        static SQL: LazyLock<Sql> =
            LazyLock::new(|| read::select_where("c.id = $1 AND c.tenant = $2"));
        self.bounded(
            "get capture",
            read::joined_one(self.hot(), &SQL, vec![id.into(), tenant.into()]),
        )
        .await?
        .map(read::Joined::into_record)
        .transpose()
    }

    /// One capture, whatever its tenant (for the service's own bookkeeping).
    pub async fn get_any(&self, id: &str) -> Result<CaptureRecord, StoreError> {
        static SQL: LazyLock<Sql> = LazyLock::new(|| read::select_where("c.id = $1"));
        self.bounded(
            "get capture",
            read::joined_one(self.hot(), &SQL, vec![id.into()]),
        )
        .await?
        .ok_or_else(|| StoreError::Missing(id.to_owned()))?
        .into_record()
    }

    /// A tenant's captures, newest first, by keyset on (create_time, id).
    pub async fn list(&self, tenant: &str, query: &ListQuery) -> Result<ListPage, StoreError> {
        let page = page_statement(self.db.get_database_backend(), tenant, query);
        let mut rows = self
            .bounded("list captures", read::joined_page(&self.db, page))
            .await?;
        let next = if rows.len() as u64 > query.page_size {
            rows.truncate(query.page_size as usize);
            rows.last().map(|r| (r.row.create_time, r.row.id.clone()))
        } else {
            None
        };
        Ok(ListPage {
            records: rows
                .into_iter()
                .map(read::Joined::into_record)
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    /// The audit trail of a capture, oldest first, as (kind, status, source).
    pub async fn events(
        &self,
        capture_id: &str,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        Ok(capture_events::Entity::find()
            .filter(capture_events::Column::CaptureId.eq(capture_id))
            .order_by_asc(capture_events::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|e| (e.kind, e.status, e.source))
            .collect())
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// A capture about to be recorded, owned by the write that records it.
struct OwnedCapture {
    id: String,
    tenant: String,
    account: String,
    command: CaptureCommand,
    lease_micros: i64,
    lease_owner: String,
    release_rules: ReleaseRules,
}

/// What an admitted capture writes.
struct Admitted {
    /// The ledger row's key and changed columns.
    ledger: authorizations::ActiveModel,
    row: captures::ActiveModel,
    fees: Vec<platform_fees::ActiveModel>,
    event: capture_events::ActiveModel,
    /// Its place among the authorization's live captures.
    sequence: u32,
}

/// What `new` writes if `ledger_row` admits it, or why not.
fn admit_capture(
    new: &OwnedCapture,
    ledger_row: &authorizations::Model,
    now: i64,
) -> Result<Admitted, LedgerRefusal> {
    let p = new.command.parts();
    let reserved = ledger::admit(ledger_row, &new.command)?;
    // admit checked the count can grow.
    let sequence = u32::try_from(ledger_row.capture_count).unwrap_or(0) + 1;
    let mut row = convert::new_capture_row(
        &new.id,
        &new.tenant,
        &new.account,
        &new.command,
        reserved,
        sequence,
        now,
    );
    // The request about to call the provider holds it.
    row.lease_until = Set(Some(now.saturating_add(new.lease_micros)));
    row.lease_owner = Set(Some(new.lease_owner.clone()));
    let detail = serde_json::json!({
        "authorization_id": p.authorization_id.as_str(),
        "amount": p.amount.map(|m| m.to_string()),
        "final_capture": p.final_capture,
        "reserved_minor": reserved,
    });
    Ok(Admitted {
        ledger: ledger::held(ledger_row, &new.command, &new.id, reserved, now),
        row,
        fees: convert::fee_rows(&new.id, FEE_REQUESTED, &p.platform_fees),
        event: event_row(
            EventSource::Api,
            &new.id,
            "CREATED",
            CaptureStatus::Processing,
            detail,
            now,
        ),
        sequence,
    })
}

/// Idempotency, ledger and the `PROCESSING` row, in the write transaction `txn`.
async fn begin_in(
    txn: &DatabaseTransaction,
    new: OwnedCapture,
) -> Result<Written<Attempt>, StoreError> {
    let p = new.command.parts();
    let now = now_micros();
    let key = LedgerKey {
        provider: p.provider.as_str(),
        account: &new.account,
        authorization_id: p.authorization_id.as_str(),
    };
    let ledger_row = ledger::lock(txn, &key, now).await?;
    if new.command.operation() == Operation::Release {
        return begin_release_in(txn, new, &ledger_row, now).await;
    }
    let admitted = match admit_capture(&new, &ledger_row, now) {
        Ok(admitted) => admitted,
        Err(refusal) => return Ok(Written::Discard(Attempt::done(Begin::Refused(refusal)))),
    };
    if !insert_row(txn, admitted.row).await? {
        return Ok(Written::Discard(Attempt::Raced));
    }
    insert_fee_rows(txn, admitted.fees).await?;
    ledger::hold(txn, &ledger_row, admitted.ledger).await?;
    insert_event(txn, admitted.event).await?;
    Ok(Written::Commit(created(new, admitted.sequence, now)))
}

/// The answer to a capture just recorded: what is being committed, without reading it back.
fn created(new: OwnedCapture, sequence: u32, now: i64) -> Attempt {
    let record = convert::new_record(new.id, new.tenant, new.account, new.command, sequence, now);
    Attempt::done(Begin::Created(record))
}

impl Store {
    /// Starts a capture as one statement on PostgreSQL ([`single_statement`]), deciding on
    /// `seen`, the ledger row as read just before. `Err(new)` when the general path must
    /// decide: a refusal (which the locked row confirms or not), or a ledger row changed since
    /// it was read.
    async fn begin_in_one_statement(
        &self,
        new: OwnedCapture,
        seen: SeenLedger,
    ) -> Result<Result<Attempt, OwnedCapture>, StoreError> {
        let p = new.command.parts();
        let key = LedgerKey {
            provider: p.provider.as_str(),
            account: &new.account,
            authorization_id: p.authorization_id.as_str(),
        };
        let now = now_micros();
        let blank;
        let ledger_row = match &seen {
            SeenLedger::Row { row, .. } => row,
            SeenLedger::Absent => {
                blank = ledger::blank(&key, now);
                &blank
            }
        };
        let Ok(admitted) = admit_capture(&new, ledger_row, now) else {
            return Ok(Err(new));
        };
        let sequence = admitted.sequence;
        let rows = NewCaptureRows {
            ledger: admitted.ledger,
            capture: admitted.row,
            fees: admitted.fees,
            event: admitted.event,
        };
        let started = self
            .bounded("begin capture", async {
                let _turn = self.write_turn().await?;
                single_statement::start_capture(self.hot(), &seen, rows).await
            })
            .await?;
        match started {
            Started::Written => {
                self.single_statement_committed();
                Ok(Ok(created(new, sequence, now)))
            }
            Started::KeyTaken => Ok(Ok(Attempt::Raced)),
            Started::LedgerChanged => Ok(Err(new)),
        }
    }
}

/// A release's ledger decision and its row, in the write transaction `txn` that locked
/// `ledger_row`. A release the provider already made (`Automatic`) is recorded `COMPLETED` at
/// once: there is nothing to call.
async fn begin_release_in(
    txn: &DatabaseTransaction,
    new: OwnedCapture,
    ledger_row: &authorizations::Model,
    now: i64,
) -> Result<Written<Attempt>, StoreError> {
    let by = match ledger::admit_release(ledger_row, &new.command, &new.release_rules) {
        Ok(by) => by,
        Err(refusal) => return Ok(Written::Discard(Attempt::done(Begin::Refused(refusal)))),
    };
    // What the provider's call needs (Cybersource's reversal states it) and the caller may
    // have left to the ledger: the authorized amount a capture gave before.
    let command = match (
        new.command.parts().authorized_amount,
        ledger_row.authorized_minor,
    ) {
        (None, Some(known)) => {
            let currency = ledger_row
                .currency_code
                .as_deref()
                .and_then(crate::domain::Currency::from_code);
            match currency {
                Some(currency) => new
                    .command
                    .clone()
                    .with_authorized_amount(Money::from_minor_units(currency, known)),
                None => new.command.clone(),
            }
        }
        _ => new.command.clone(),
    };
    let mut row = convert::new_capture_row(&new.id, &new.tenant, &new.account, &command, 0, 0, now);
    // The caller's request, not the ledger's completion of it, is what a retry must match.
    row.request_fingerprint = Set(new.command.fingerprint());
    let status = match by {
        ReleaseBy::Call => {
            row.lease_until = Set(Some(now.saturating_add(new.lease_micros)));
            row.lease_owner = Set(Some(new.lease_owner));
            CaptureStatus::Processing
        }
        ReleaseBy::Automatic => {
            row.status = Set(CaptureStatus::Completed.as_str().to_owned());
            CaptureStatus::Completed
        }
    };
    if !insert_row(txn, row).await? {
        return Ok(Written::Discard(Attempt::Raced));
    }
    ledger::hold_release(txn, ledger_row, &command, &new.id, by, now).await?;
    let detail = serde_json::json!({
        "authorization_id": command.parts().authorization_id.as_str(),
        "operation": Operation::Release.as_str(),
        "released_by": match by {
            ReleaseBy::Call => None,
            ReleaseBy::Automatic => Some(crate::domain::ReleasedBy::ProviderAutomatic.as_str()),
        },
    });
    let event = event_row(EventSource::Api, &new.id, "CREATED", status, detail, now);
    insert_event(txn, event).await?;
    let mut record = convert::new_record(new.id, new.tenant, new.account, command, 0, now);
    record.status = status;
    Ok(Written::Commit(Attempt::done(Begin::Created(record))))
}

/// Inserts a new record's row: `false` when another request with its key got there first (the
/// unique index on the tenant's `request_id`).
async fn insert_row(
    txn: &DatabaseTransaction,
    row: captures::ActiveModel,
) -> Result<bool, StoreError> {
    match captures::Entity::insert(row)
        .exec_without_returning(txn)
        .await
    {
        Ok(_) => Ok(true),
        Err(err) => match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Ok(false),
            _ => Err(err.into()),
        },
    }
}

/// A request seen before: its capture, or the other request that holds its key.
fn existing(found: read::Joined, command: &CaptureCommand) -> Result<Begin, StoreError> {
    if found.row.request_fingerprint != command.fingerprint() {
        return Ok(Begin::KeyReused {
            capture_id: found.row.id,
        });
    }
    Ok(Begin::Existing(found.into_record()?))
}

pub(super) async fn insert_fee_rows(
    txn: &DatabaseTransaction,
    rows: Vec<platform_fees::ActiveModel>,
) -> Result<(), StoreError> {
    if !rows.is_empty() {
        platform_fees::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Who made a change of a capture, as its `capture_events` row names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// A caller's request (a capture, or its retry resuming it).
    Api,
    /// The service's own look at the provider.
    Reconciler,
    /// A provider's notification (or the look at the provider it prompted).
    Webhook,
}

impl std::fmt::Display for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EventSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EventSource::Api => "api",
            EventSource::Reconciler => "reconciler",
            EventSource::Webhook => "webhook",
        }
    }
}

pub(super) async fn insert_event(
    txn: &DatabaseTransaction,
    event: capture_events::ActiveModel,
) -> Result<(), StoreError> {
    capture_events::Entity::insert(event)
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// A row of a capture's audit trail.
pub(super) fn event_row(
    source: EventSource,
    capture_id: &str,
    kind: &str,
    status: CaptureStatus,
    detail: serde_json::Value,
    now: i64,
) -> capture_events::ActiveModel {
    capture_events::ActiveModel {
        id: NotSet,
        capture_id: Set(capture_id.to_owned()),
        kind: Set(kind.to_owned()),
        status: Set(status.as_str().to_owned()),
        detail: Set(detail.to_string()),
        create_time: Set(now),
        source: Set(source.as_str().to_owned()),
    }
}
