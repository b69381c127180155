//! Whole records in one statement: capture rows joined with their breakdown and fees, so a read
//! is one round trip to the database however many tables the record spans.
//!
//! The SQL is written here, not built per call by sea-orm's query builder: the column list is
//! made once, and each read is one prepared statement the driver caches.

use std::sync::OnceLock;

use sea_orm::{
    ConnectionTrait, DbBackend, FromQueryResult, IdenStatic, Iterable, QueryResult, Statement,
};

use super::convert;
use super::entities::{captures, platform_fees, seller_receivable_breakdowns};
use super::StoreError;
use crate::domain::CaptureRecord;

/// A capture row with what the other tables hold for it.
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

/// `SELECT <every column, breakdown and fee columns prefixed> FROM captures c LEFT JOIN …`.
fn select_joined() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let mut columns: Vec<String> = captures::Column::iter()
            .map(|c| format!("c.{0} AS {0}", c.as_str()))
            .collect();
        columns.extend(
            seller_receivable_breakdowns::Column::iter()
                .map(|c| format!("b.{0} AS b_{0}", c.as_str())),
        );
        columns
            .extend(platform_fees::Column::iter().map(|c| format!("f.{0} AS f_{0}", c.as_str())));
        format!(
            "SELECT {} FROM captures c \
             LEFT JOIN seller_receivable_breakdowns b ON b.capture_id = c.id \
             LEFT JOIN platform_fees f ON f.capture_id = c.id",
            columns.join(", ")
        )
    })
}

/// `sql` with `$1`, `$2`… as the backend writes placeholders. Each is used once, in order, so
/// SQLite's positional `?` binds the same values.
pub fn statement(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => sql.to_owned(),
        _ => {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                    while chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                    out.push('?');
                } else {
                    out.push(c);
                }
            }
            out
        }
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// The records `condition` (on `c.`, with `$n` placeholders) selects, in `order` (which must
/// keep one capture's rows together; fees follow their capture in id order).
pub(super) async fn joined<C: ConnectionTrait>(
    db: &C,
    condition: &str,
    order: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Vec<Joined>, StoreError> {
    let sql = format!(
        "{} WHERE {condition} ORDER BY {order}, f.id",
        select_joined()
    );
    let rows = db
        .query_all(statement(db.get_database_backend(), &sql, values))
        .await?;
    group(rows)
}

/// The records of a page whose ids and order `page` (a full `SELECT c.id, c.create_time …
/// ORDER BY … LIMIT …` statement) gives: the page is found on the index alone, then joined.
pub(super) async fn joined_page<C: ConnectionTrait>(
    db: &C,
    page: Statement,
) -> Result<Vec<Joined>, StoreError> {
    let joined = select_joined().replacen(
        "FROM captures c",
        "FROM page JOIN captures c ON c.id = page.id",
        1,
    );
    let sql = format!(
        "WITH page AS ({}) {joined} ORDER BY c.create_time DESC, c.id DESC, f.id",
        page.sql
    );
    let statement = Statement {
        sql,
        values: page.values,
        db_backend: page.db_backend,
    };
    group(db.query_all(statement).await?)
}

/// Rows of one capture are adjacent: fold them into one record each.
fn group(rows: Vec<QueryResult>) -> Result<Vec<Joined>, StoreError> {
    let mut out: Vec<Joined> = Vec::new();
    for result in rows {
        let id: String = result.try_get("", "id").map_err(StoreError::from)?;
        let fee = match result.try_get::<Option<i64>>("", "f_id")? {
            Some(_) => Some(platform_fees::Model::from_query_result(&result, "f_")?),
            None => None,
        };
        match out.last_mut() {
            Some(last) if last.row.id == id => last.fees.extend(fee),
            _ => {
                let breakdown = match result.try_get::<Option<String>>("", "b_capture_id")? {
                    Some(_) => Some(seller_receivable_breakdowns::Model::from_query_result(
                        &result, "b_",
                    )?),
                    None => None,
                };
                out.push(Joined {
                    row: captures::Model::from_query_result(&result, "")?,
                    breakdown,
                    fees: fee.into_iter().collect(),
                });
            }
        }
    }
    Ok(out)
}

/// The one record `condition` names, if any.
pub(super) async fn joined_one<C: ConnectionTrait>(
    db: &C,
    condition: &str,
    values: Vec<sea_orm::Value>,
) -> Result<Option<Joined>, StoreError> {
    Ok(joined(db, condition, "c.id", values)
        .await?
        .into_iter()
        .next())
}
