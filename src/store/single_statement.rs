//! PostgreSQL: the two writes every capture makes, each as one statement.
//!
//! A write transaction costs a round trip for `BEGIN`, one per statement and one for `COMMIT`,
//! each paid again in TLS, kernel and driver work on both ends. Here starting a capture and
//! recording its outcome are each one data-modifying statement (`WITH … INSERT / UPDATE …`),
//! which PostgreSQL runs as a transaction of its own: all of it is committed, or none of it.
//!
//! Each statement checks itself what it relies on, and writes nothing when that no longer holds:
//! - starting a capture relies on the ledger row as read just before (its row version, `xmin`,
//!   unchanged: every write of the row makes a new version), or on there being none yet;
//! - recording an outcome relies on the capture still being `PROCESSING`, which the statement
//!   locks (`FOR UPDATE`) before it changes anything.
//!
//! When the check fails (another write came in between), the caller takes the general path: the
//! write transaction that locks the ledger row and decides every case ([`super::captures`],
//! [`super::resolve`]). Both paths write the same rows from the same models; only the guard
//! differs.
//!
//! The change feed's rule holds ([`super::feed`]): the audit event is inserted from the rows the
//! statement has already written, so the transaction has its id before it takes an event id.

use std::fmt::Write;
use std::sync::LazyLock;

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityName, EntityTrait, IdenStatic, Iterable, SqlErr,
    Statement, Value,
};

use super::entities::seller_receivable_breakdowns;
use super::entities::{authorizations, capture_events, captures, platform_fees};
use super::ledger::LedgerKey;
use super::read;
use super::StoreError;

/// The ledger row of an authorization as read outside any transaction, with its version.
// One lives on the stack for the length of a begin: boxing the row would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum SeenLedger {
    /// No capture of it was recorded yet.
    Absent,
    Row {
        row: authorizations::Model,
        /// PostgreSQL's `xmin`: a new value with every write of the row.
        version: String,
    },
}

/// The record a tenant's request made, if any, and the ledger row of the authorization the
/// request names, in one read.
pub(super) async fn find_request_and_ledger(
    db: &(impl ConnectionTrait + ?Sized),
    tenant: &str,
    request_id: &str,
    key: &LedgerKey<'_>,
) -> Result<(Option<read::Joined>, SeenLedger), StoreError> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {}, a.xmin::text, {} FROM (SELECT 1) AS one \
             LEFT JOIN authorizations a ON a.provider = $1 AND a.provider_account = $2 \
             AND a.authorization_id = $3 \
             LEFT JOIN captures c ON c.tenant = $4 AND c.request_id = $5 \
             LEFT JOIN seller_receivable_breakdowns b ON b.capture_id = c.id \
             LEFT JOIN platform_fees f ON f.capture_id = c.id",
            read::ledger_columns("a"),
            read::joined_columns()
        )
    });
    let values = [
        key.provider,
        key.account,
        key.authorization_id,
        tenant,
        request_id,
    ]
    .map(Value::from);
    let statement = Statement::from_sql_and_values(db.get_database_backend(), SQL.as_str(), values);
    let rows = db.query_all(statement).await?;
    let version_at = read::LEDGER_WIDTH;
    let seen = match rows.first() {
        Some(first) => match first.try_get_by_index::<Option<String>>(version_at)? {
            Some(version) => SeenLedger::Row {
                row: read::ledger_row(first, 0)?,
                version,
            },
            None => SeenLedger::Absent,
        },
        None => SeenLedger::Absent,
    };
    let found = read::group_at(rows, version_at + 1)?.into_iter().next();
    Ok((found, seen))
}

/// What starting an admitted capture writes.
pub(super) struct NewCaptureRows {
    /// The ledger's changed columns (key columns included).
    pub ledger: authorizations::ActiveModel,
    pub capture: captures::ActiveModel,
    pub fees: Vec<platform_fees::ActiveModel>,
    pub event: capture_events::ActiveModel,
}

/// How starting a capture as one statement went.
pub(super) enum Started {
    Written,
    /// Another request with the same key inserted its capture first: nothing was written.
    KeyTaken,
    /// The ledger row is no longer as it was read: nothing was written.
    LedgerChanged,
}

/// Writes the ledger's hold, the `PROCESSING` capture, its requested fees and its event, if
/// the ledger row is still `seen`.
pub(super) async fn start_capture(
    db: &(impl ConnectionTrait + ?Sized),
    seen: &SeenLedger,
    rows: NewCaptureRows,
) -> Result<Started, StoreError> {
    let mut binds = Binds::default();
    let ledger = match seen {
        SeenLedger::Absent => format!(
            "{} ON CONFLICT (provider, provider_account, authorization_id) DO NOTHING RETURNING 1",
            insert_values(rows.ledger, &mut binds)
        ),
        SeenLedger::Row { row, version } => format!(
            "UPDATE authorizations SET {} WHERE provider = {} AND provider_account = {} \
             AND authorization_id = {} AND xmin::text = {} RETURNING 1",
            set_clause(rows.ledger, &mut binds, KEY_COLUMNS),
            binds.bind(row.provider.as_str()),
            binds.bind(row.provider_account.as_str()),
            binds.bind(row.authorization_id.as_str()),
            binds.bind(version.as_str()),
        ),
    };
    let mut sql = format!(
        "WITH ledger AS ({ledger}), capture AS ({} RETURNING 1), event AS ({})",
        insert_from(rows.capture, "ledger", &mut binds),
        insert_from(rows.event, "capture", &mut binds),
    );
    if let Some(fees) = insert_many_from(rows.fees, "capture", &mut binds) {
        sql.push_str(&format!(", fees AS ({fees})"));
    }
    sql.push_str(" SELECT count(*) FROM capture");
    match written(db, sql, binds).await {
        Ok(true) => Ok(Started::Written),
        Ok(false) => Ok(Started::LedgerChanged),
        Err(StoreError::Database(err))
            if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
        {
            Ok(Started::KeyTaken)
        }
        Err(err) => Err(err),
    }
}

/// What a capture's hold becomes with its outcome.
pub(super) enum Hold {
    /// It keeps what it holds.
    Kept,
    /// It holds what the provider captured (minor units), however much it held before.
    Captured(i64),
    /// The provider refused or declined it: what it held goes back to the authorization, which
    /// it reopens if it had closed it (and forgets what it claimed if it was the only capture).
    GivenBack,
}

/// What recording a `PROCESSING` capture's outcome writes.
pub(super) struct OutcomeRows<'a> {
    pub capture_id: &'a str,
    /// The capture's changed columns (what it holds aside: `hold` says).
    pub capture: captures::ActiveModel,
    pub hold: Hold,
    pub breakdown: Option<seller_receivable_breakdowns::ActiveModel>,
    pub fees: Vec<platform_fees::ActiveModel>,
    pub event: capture_events::ActiveModel,
    pub now: i64,
}

/// Records an outcome of a capture that is still `PROCESSING`; `false`, with nothing written,
/// when it no longer is.
pub(super) async fn record_outcome(
    db: &(impl ConnectionTrait + ?Sized),
    rows: OutcomeRows<'_>,
) -> Result<bool, StoreError> {
    let mut binds = Binds::default();
    // `was`: what the capture held, read under its lock in this statement.
    let old = format!(
        "SELECT id, reserved_minor AS was, provider, provider_account, authorization_id \
         FROM captures WHERE id = {} AND status = {} AND operation = {} FOR UPDATE",
        binds.bind(rows.capture_id),
        binds.bind(crate::domain::CaptureStatus::Processing.as_str()),
        binds.bind(crate::domain::Operation::Capture.as_str()),
    );
    let mut sets = set_clause(rows.capture, &mut binds, &[]);
    let ledger = match rows.hold {
        Hold::Kept => None,
        Hold::Captured(captured) => {
            let captured = binds.bind(captured);
            sets.push_str(&format!(", reserved_minor = {captured}"));
            Some(format!(
                "held_minor = a.held_minor + {captured} - capture.was, update_time = {} \
                 FROM capture WHERE {LEDGER_OF_CAPTURE} AND capture.was <> {captured}",
                binds.bind(rows.now),
            ))
        }
        Hold::GivenBack => {
            sets.push_str(", reserved_minor = 0");
            Some(format!(
                "held_minor = a.held_minor - capture.was, capture_count = a.capture_count - 1, \
                 closed_by = CASE WHEN a.closed_by = capture.id THEN NULL ELSE a.closed_by END, \
                 currency_code = CASE WHEN a.capture_count <= 1 THEN NULL \
                   ELSE a.currency_code END, \
                 authorized_minor = CASE WHEN a.capture_count <= 1 THEN NULL \
                   ELSE a.authorized_minor END, \
                 update_time = {} FROM capture WHERE {LEDGER_OF_CAPTURE}",
                binds.bind(rows.now),
            ))
        }
    };
    let mut sql = format!(
        "WITH old AS MATERIALIZED ({old}), capture AS (UPDATE captures AS c SET {sets} FROM old \
         WHERE c.id = old.id RETURNING old.id, old.was, old.provider, old.provider_account, \
         old.authorization_id)"
    );
    if let Some(ledger) = ledger {
        sql.push_str(&format!(
            ", ledger AS (UPDATE authorizations AS a SET {ledger})"
        ));
    }
    sql.push_str(&format!(
        ", event AS ({})",
        insert_from(rows.event, "capture", &mut binds)
    ));
    if let Some(breakdown) = rows.breakdown {
        sql.push_str(&format!(
            ", breakdown AS ({})",
            insert_from(breakdown, "capture", &mut binds)
        ));
    }
    if let Some(fees) = insert_many_from(rows.fees, "capture", &mut binds) {
        sql.push_str(&format!(", fees AS ({fees})"));
    }
    sql.push_str(" SELECT count(*) FROM capture");
    written(db, sql, binds).await
}

/// The ledger row of the capture the statement changed (`a`: authorizations, `capture`: the
/// changed capture).
const LEDGER_OF_CAPTURE: &str = "a.provider = capture.provider \
     AND a.provider_account = capture.provider_account \
     AND a.authorization_id = capture.authorization_id";

/// The ledger's key columns: what a statement finds the row by, never what it changes.
const KEY_COLUMNS: &[&str] = &["provider", "provider_account", "authorization_id"];

/// Runs `sql` (ending in `SELECT count(*) FROM capture`): whether it wrote the capture.
async fn written(
    db: &(impl ConnectionTrait + ?Sized),
    sql: String,
    binds: Binds,
) -> Result<bool, StoreError> {
    let statement = Statement::from_sql_and_values(db.get_database_backend(), sql, binds.0);
    let count: i64 = match db.query_one(statement).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(count > 0)
}

/// The values bound to one statement, each named by its placeholder.
#[derive(Default)]
struct Binds(Vec<Value>);

impl Binds {
    fn bind(&mut self, value: impl Into<Value>) -> String {
        let mut placeholder = String::with_capacity(4);
        self.bind_into(value, &mut placeholder);
        placeholder
    }

    /// Binds `value` and writes its placeholder at the end of `sql`.
    fn bind_into(&mut self, value: impl Into<Value>, sql: &mut String) {
        self.0.push(value.into());
        let _ = write!(sql, "${}", self.0.len());
    }
}

/// Calls `each` with the name and value of every column `model` sets, in the entity's order.
fn for_each_set<A>(mut model: A, mut each: impl FnMut(&str, Value))
where
    A: ActiveModelTrait,
    <A::Entity as EntityTrait>::Column: Iterable,
{
    for column in <A::Entity as EntityTrait>::Column::iter() {
        if let Some(value) = model.take(column).into_value() {
            each(IdenStatic::as_str(&column), value);
        }
    }
}

/// `(<columns>)` and `<values>` of what `model` sets, the values bound.
fn columns_and_values<A>(model: A, binds: &mut Binds) -> (String, String)
where
    A: ActiveModelTrait,
    <A::Entity as EntityTrait>::Column: Iterable,
{
    let (mut columns, mut values) = (String::new(), String::new());
    for_each_set(model, |column, value| {
        if !columns.is_empty() {
            columns.push_str(", ");
            values.push_str(", ");
        }
        let _ = write!(columns, "\"{column}\"");
        binds.bind_into(value, &mut values);
    });
    (columns, values)
}

fn table_of<A: ActiveModelTrait>() -> String {
    A::Entity::default().table_name().to_owned()
}

/// `INSERT INTO <table> (<columns>) VALUES (<values>)`.
fn insert_values<A>(model: A, binds: &mut Binds) -> String
where
    A: ActiveModelTrait,
    <A::Entity as EntityTrait>::Column: Iterable,
{
    let (columns, values) = columns_and_values(model, binds);
    format!(
        "INSERT INTO {} ({columns}) VALUES ({values})",
        table_of::<A>()
    )
}

/// `INSERT INTO <table> (<columns>) SELECT <values> FROM <source>`: a row for each row of
/// `source`, so none when the statement's check let nothing through.
fn insert_from<A>(model: A, source: &str, binds: &mut Binds) -> String
where
    A: ActiveModelTrait,
    <A::Entity as EntityTrait>::Column: Iterable,
{
    let (columns, values) = columns_and_values(model, binds);
    format!(
        "INSERT INTO {} ({columns}) SELECT {values} FROM {source}",
        table_of::<A>()
    )
}

/// `INSERT INTO <table> (<columns>) SELECT <columns> FROM <source>, (VALUES …)`: the rows of
/// `models` (which set the same columns) for each row of `source`, inserted in their order (their
/// ids, which order them when read, follow it); `None` for no rows.
fn insert_many_from<A>(models: Vec<A>, source: &str, binds: &mut Binds) -> Option<String>
where
    A: ActiveModelTrait,
    <A::Entity as EntityTrait>::Column: Iterable,
{
    let mut columns = String::new();
    for_each_set(models.first()?.clone(), |column, _| {
        if !columns.is_empty() {
            columns.push_str(", ");
        }
        let _ = write!(columns, "\"{column}\"");
    });
    let rows: Vec<String> = models
        .into_iter()
        .enumerate()
        .map(|(n, model)| {
            let (_, values) = columns_and_values(model, binds);
            format!("({values}, {n})")
        })
        .collect();
    Some(format!(
        "INSERT INTO {table} ({columns}) SELECT {columns} FROM {source}, (VALUES {}) \
         AS v({columns}, ordinal) ORDER BY v.ordinal",
        rows.join(", "),
        table = table_of::<A>(),
    ))
}

/// `<column> = <value>, …` for the columns `model` sets, but those in `except`.
fn set_clause<A>(model: A, binds: &mut Binds, except: &[&str]) -> String
where
    A: ActiveModelTrait,
    <A::Entity as EntityTrait>::Column: Iterable,
{
    let mut sets = String::new();
    for_each_set(model, |column, value| {
        if except.contains(&column) {
            return;
        }
        if !sets.is_empty() {
            sets.push_str(", ");
        }
        let _ = write!(sets, "\"{column}\" = ");
        binds.bind_into(value, &mut sets);
    });
    sets
}
