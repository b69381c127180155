//! Whole records in one statement: capture rows joined with their breakdown and fees, so a read
//! is one round trip to the database however many tables the record spans.
//!
//! The SQL is written here once ([`Sql`]), not built per call by sea-orm's query builder, and
//! rows are decoded by column position, not by name: a record is one prepared statement the
//! driver caches and 60 positional reads (a named read costs a hash lookup, and a prefixed one
//! a `format!`, per column).

use std::collections::HashMap;
use std::sync::LazyLock;

use sea_orm::sqlx::{self, Row};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, RuntimeErr, Statement};

use super::convert;
use super::entities::{authorizations, captures, platform_fees, seller_receivable_breakdowns};
use super::sql::Sql;
use super::StoreError;
use crate::domain::CaptureRecord;

/// A capture row with what the other tables hold for it. Its `provider_response` is `None`:
/// the joined reads leave that column out ([`NOT_READ`]).
pub(super) struct Joined {
    pub row: captures::Model,
    breakdown: Option<seller_receivable_breakdowns::Model>,
    fees: Vec<platform_fees::Model>,
}

impl Joined {
    pub fn into_record(self) -> Result<CaptureRecord, StoreError> {
        convert::record_from_rows(self.row, self.breakdown.as_ref(), &self.fees)
    }
}

/// The value at `at` of a row, decoded by sqlx itself. sea-orm's `try_get_by_index` reads a
/// NULL as an error it then turns into `None`, and each such error formats its column's name:
/// a `format!` and a free for every NULL, and a PayPal record has 30 NULLs in its 63 columns.
fn column<T>(row: &QueryResult, at: usize) -> Result<T, DbErr>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    let decoded = if let Some(row) = row.try_as_pg_row() {
        row.try_get(at)
    } else if let Some(row) = row.try_as_sqlite_row() {
        row.try_get(at)
    } else {
        return Err(DbErr::Type("a row of neither PostgreSQL nor SQLite".into()));
    };
    decoded.map_err(|err| DbErr::Query(RuntimeErr::SqlxError(err)))
}

/// Decodes a model from consecutive columns of a row, and names those columns in that order.
/// The struct literal lists every field, so a column added to the entity fails to compile here
/// until it is read too; names and positions come from the same list.
macro_rules! positional {
    ($columns:ident, $decode:ident, $entity:ident { $($field:ident),+ $(,)? }) => {
        const $columns: &[&str] = &[$(stringify!($field)),+];

        #[allow(unused_assignments)]
        fn $decode(row: &QueryResult, mut at: usize) -> Result<$entity::Model, DbErr> {
            Ok($entity::Model {
                $($field: {
                    let value = column(row, at)?;
                    at += 1;
                    value
                }),+
            })
        }
    };
}

positional!(
    CAPTURE,
    capture,
    captures {
        id,
        tenant,
        request_id,
        request_fingerprint,
        provider,
        provider_account,
        authorization_id,
        currency_code,
        amount_minor,
        authorized_amount_minor,
        reserved_minor,
        final_capture,
        invoice_id,
        note_to_payer,
        soft_descriptor,
        reference,
        metadata,
        disbursement_mode,
        status,
        status_reason,
        provider_reason,
        provider_capture_id,
        provider_status,
        captured_currency_code,
        captured_amount_minor,
        network_reference,
        seller_protection,
        processor_response,
        error_code,
        error_message,
        error_debug_id,
        error_http_status,
        provider_response,
        create_time,
        update_time,
        reconcile_after,
        reconcile_attempts,
        capture_sequence,
        lease_until,
        lease_owner,
        operation,
        refunded_minor,
    }
);
positional!(
    BREAKDOWN,
    breakdown,
    seller_receivable_breakdowns {
        capture_id,
        gross_currency,
        gross_minor,
        provider_fee_currency,
        provider_fee_minor,
        provider_fee_receivable_currency,
        provider_fee_receivable_minor,
        net_currency,
        net_minor,
        receivable_currency,
        receivable_minor,
        exchange_source_currency,
        exchange_target_currency,
        exchange_rate,
    }
);
positional!(
    FEE,
    fee,
    platform_fees {
        id,
        capture_id,
        source,
        currency_code,
        amount_minor,
        payee_email,
        payee_merchant_id,
    }
);

positional!(
    LEDGER,
    ledger,
    authorizations {
        provider,
        provider_account,
        authorization_id,
        currency_code,
        authorized_minor,
        held_minor,
        capture_count,
        closed_by,
        update_time,
        released_minor,
        released_by,
        release_id,
    }
);

/// Every column of `authorizations` (as `alias.column`), in the order [`ledger_row`] reads
/// them.
pub(super) fn ledger_columns(alias: &str) -> String {
    LEDGER
        .iter()
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many columns [`ledger_columns`] names.
pub(super) const LEDGER_WIDTH: usize = LEDGER.len();

/// An `authorizations` row from the columns of `row` starting at `at`.
pub(super) fn ledger_row(row: &QueryResult, at: usize) -> Result<authorizations::Model, DbErr> {
    ledger(row, at)
}

/// The statement of the records `condition` (on `c.`, with `$n` placeholders) selects, one
/// capture's rows together, for [`joined`] and [`joined_one`].
pub(super) fn select_where(condition: &str) -> Sql {
    Sql::new(format!(
        "{} WHERE {condition} ORDER BY c.id, f.id",
        select_joined("captures c")
    ))
}

/// A `captures` row as a statement selecting or returning [`capture_columns`] gives it.
pub(super) fn capture_row(row: &QueryResult) -> Result<captures::Model, DbErr> {
    capture(row, 0)
}

/// Every column of `captures`, in the order [`capture_row`] reads them.
pub(super) fn capture_columns() -> String {
    CAPTURE.join(", ")
}

/// `SELECT <capture, breakdown and fee columns> FROM <from> LEFT JOIN …`, columns in the
/// order [`group`] decodes them.
fn select_joined(from: &str) -> String {
    format!(
        "SELECT {} FROM {from} \
         LEFT JOIN seller_receivable_breakdowns b ON b.capture_id = c.id \
         LEFT JOIN platform_fees f ON f.capture_id = c.id",
        joined_columns()
    )
}

/// The `captures` columns a record is not made from and no caller of a joined read looks at:
/// `provider_response` is the provider's redacted answer, kept for audit and often a kilobyte or
/// more, which every Get, replay and list row sent, decoded and dropped. A joined read selects
/// `NULL` in its place.
const NOT_READ: &[&str] = &["provider_response"];

/// The capture (`c.`), breakdown (`b.`) and fee (`f.`) columns of a record, in the order
/// [`group_at`] decodes them; `NULL` for those [`NOT_READ`].
pub(super) fn joined_columns() -> String {
    let capture = CAPTURE.iter().map(|c| {
        if NOT_READ.contains(c) {
            "NULL".to_owned()
        } else {
            format!("c.{c}")
        }
    });
    let columns: Vec<String> = capture
        .chain(BREAKDOWN.iter().map(|c| format!("b.{c}")))
        .chain(FEE.iter().map(|c| format!("f.{c}")))
        .collect();
    columns.join(", ")
}

/// The records `sql` (a [`select_where`]) selects.
pub(super) async fn joined<C: ConnectionTrait + ?Sized>(
    db: &C,
    sql: &Sql,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<Joined>, StoreError> {
    let rows = db
        .query_all(sql.statement(db.get_database_backend(), values))
        .await?;
    group(rows)
}

/// The one record `sql` (a [`select_where`]) names, if any.
pub(super) async fn joined_one<C: ConnectionTrait + ?Sized>(
    db: &C,
    sql: &Sql,
    values: Vec<sea_orm::Value>,
) -> Result<Option<Joined>, StoreError> {
    Ok(joined(db, sql, values).await?.into_iter().next())
}

/// The records of a page whose rows `page` (a full `SELECT <captures columns> … ORDER BY
/// create_time DESC, id DESC LIMIT …` statement) gives, in that order: the page is one range of
/// the keyset index, and only its rows are joined. (Joining the page's ids back to `captures`
/// let PostgreSQL's planner pick a scan of the whole table for a small one: 4 ms of a 6 ms page
/// at 10,000 rows.) The joined rows are put in order here, not by the database: SQLite sorted
/// them in a temporary b-tree, each a record of some 60 columns.
pub(super) async fn joined_page<C: ConnectionTrait>(
    db: &C,
    page: Statement,
) -> Result<Vec<Joined>, StoreError> {
    static JOINED: LazyLock<String> = LazyLock::new(|| select_joined("page c"));
    static JOINED_BY_INDEX: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {} FROM page c \
             LEFT JOIN LATERAL (SELECT * FROM seller_receivable_breakdowns \
             WHERE capture_id = c.id OFFSET 0) b ON true \
             LEFT JOIN LATERAL (SELECT * FROM platform_fees \
             WHERE capture_id = c.id OFFSET 0) f ON true",
            joined_columns()
        )
    });
    // On PostgreSQL each row's breakdown and fees are looked up by index: `OFFSET 0` keeps the
    // planner from flattening the subqueries into joins, for which, on tables of thousands of
    // rows, it hashed the whole breakdowns table for every page (0.8 of a 2.0 ms page at
    // 10,000). SQLite has no LATERAL, and joins by nested loops anyway.
    let joined = match page.db_backend {
        sea_orm::DbBackend::Postgres => &*JOINED_BY_INDEX,
        _ => &*JOINED,
    };
    let statement = Statement {
        sql: format!("WITH page AS ({}) {joined}", page.sql),
        values: page.values,
        db_backend: page.db_backend,
    };
    let mut records = group(db.query_all(statement).await?)?;
    records.sort_unstable_by(|a, b| {
        (b.row.create_time, &b.row.id).cmp(&(a.row.create_time, &a.row.id))
    });
    Ok(records)
}

/// Folds the rows of each capture into one record, its fees in the order they were written.
fn group(rows: Vec<QueryResult>) -> Result<Vec<Joined>, StoreError> {
    group_at(rows, 0)
}

/// [`group`] of records whose columns ([`joined_columns`]) start at `at`; a row without a
/// capture (an outer join's) is skipped. Records keep the order of their first rows.
pub(super) fn group_at(rows: Vec<QueryResult>, at: usize) -> Result<Vec<Joined>, StoreError> {
    let breakdown_at = at + CAPTURE.len();
    let fee_at = breakdown_at + BREAKDOWN.len();
    let mut out: Vec<Joined> = Vec::new();
    // Where each capture's record is in `out`: a plan may interleave the rows of captures.
    let mut position: HashMap<String, usize> = HashMap::new();
    for result in rows {
        let Some(id) = column::<Option<String>>(&result, at)? else {
            continue;
        };
        let fee = match column::<Option<i64>>(&result, fee_at)? {
            Some(_) => Some(fee(&result, fee_at)?),
            None => None,
        };
        match position.get(&id) {
            Some(&found) => out[found].fees.extend(fee),
            None => {
                position.insert(id, out.len());
                let breakdown = match column::<Option<String>>(&result, breakdown_at)? {
                    Some(_) => Some(breakdown(&result, breakdown_at)?),
                    None => None,
                };
                out.push(Joined {
                    row: capture(&result, at)?,
                    breakdown,
                    fees: fee.into_iter().collect(),
                });
            }
        }
    }
    for joined in &mut out {
        joined.fees.sort_unstable_by_key(|fee| fee.id);
    }
    Ok(out)
}
