//! Reading the audit trail as a stream of changes: `WatchCaptures` replays and follows it.

use tokio::sync::watch;

use super::sql::Sql;
use super::{Store, StoreError};
use crate::domain::{CaptureStatus, Provider};
use sea_orm::ConnectionTrait;

/// One change of one capture, as its `capture_events` row records it, with what watchers
/// filter on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The row's id: the change's cursor.
    pub cursor: i64,
    pub capture_id: String,
    pub tenant: String,
    pub provider: String,
    pub authorization_id: String,
    pub kind: String,
    /// The capture's status after the change.
    pub status: CaptureStatus,
    pub source: String,
    pub time: i64,
}

/// Which changes of a tenant's captures a watcher wants; each filter set must match.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub capture_ids: Vec<String>,
    pub authorization_id: Option<String>,
    pub provider: Option<Provider>,
    pub status: Option<CaptureStatus>,
}

impl ChangeFilter {
    /// Whether `change`, of the filter's tenant, matches.
    pub fn matches(&self, change: &Change) -> bool {
        self.provider.is_none_or(|p| p.as_str() == change.provider)
            && self
                .authorization_id
                .as_ref()
                .is_none_or(|a| *a == change.authorization_id)
            && self.status.is_none_or(|s| s == change.status)
            && (self.capture_ids.is_empty() || self.capture_ids.contains(&change.capture_id))
    }
}

/// The columns [`Store::read_changes`] decodes, in order.
const SELECT_CHANGES: &str = "SELECT e.id, e.capture_id, e.kind, e.status, e.source, \
     e.create_time, c.tenant, c.provider, c.authorization_id \
     FROM capture_events e JOIN captures c ON c.id = e.capture_id";

impl Store {
    /// The horizon of the change feed: changes up to it may be read ([`Store::changes`]).
    pub async fn change_horizon(&self) -> Result<watch::Receiver<i64>, StoreError> {
        self.feed.subscribe().await
    }

    /// The newest change's cursor in the trail (0 when it is empty): no cursor the service sent
    /// can be beyond it.
    pub async fn last_change(&self) -> Result<i64, StoreError> {
        let statement = Sql::new("SELECT COALESCE(MAX(id), 0) FROM capture_events".to_owned())
            .statement(self.db.get_database_backend(), Vec::new());
        let row = self
            .bounded("last change", async {
                Ok(self.db.query_one(statement).await?)
            })
            .await?;
        Ok(match row {
            Some(row) => row.try_get_by_index::<i64>(0)?,
            None => 0,
        })
    }

    /// Every tenant's changes with a cursor in `(after, up_to]`, oldest first, at most `limit`.
    pub async fn all_changes(
        &self,
        after: i64,
        up_to: i64,
        limit: u64,
    ) -> Result<Vec<Change>, StoreError> {
        let sql = format!("{SELECT_CHANGES} WHERE e.id > $1 AND e.id <= $2 ORDER BY e.id LIMIT $3");
        let values = vec![after.into(), up_to.into(), (limit as i64).into()];
        self.read_changes(sql, values).await
    }

    /// A tenant's changes with a cursor in `(after, up_to]` that match `filter`, oldest first, at
    /// most `limit`.
    pub async fn changes(
        &self,
        tenant: &str,
        filter: &ChangeFilter,
        after: i64,
        up_to: i64,
        limit: u64,
    ) -> Result<Vec<Change>, StoreError> {
        let mut sql = format!("{SELECT_CHANGES} WHERE e.id > $1 AND e.id <= $2 AND c.tenant = $3");
        let mut values: Vec<sea_orm::Value> = vec![after.into(), up_to.into(), tenant.into()];
        let placeholder = |values: &mut Vec<sea_orm::Value>, value: sea_orm::Value| {
            values.push(value);
            format!("${}", values.len())
        };
        if let Some(provider) = filter.provider {
            let p = placeholder(&mut values, provider.as_str().into());
            sql.push_str(&format!(" AND c.provider = {p}"));
        }
        if let Some(authorization_id) = &filter.authorization_id {
            let p = placeholder(&mut values, authorization_id.as_str().into());
            sql.push_str(&format!(" AND c.authorization_id = {p}"));
        }
        if let Some(status) = filter.status {
            let p = placeholder(&mut values, status.as_str().into());
            sql.push_str(&format!(" AND e.status = {p}"));
        }
        if !filter.capture_ids.is_empty() {
            let ids: Vec<String> = filter
                .capture_ids
                .iter()
                .map(|id| placeholder(&mut values, id.as_str().into()))
                .collect();
            sql.push_str(&format!(" AND e.capture_id IN ({})", ids.join(", ")));
        }
        let p = placeholder(&mut values, (limit as i64).into());
        sql.push_str(&format!(" ORDER BY e.id LIMIT {p}"));
        self.read_changes(sql, values).await
    }

    async fn read_changes(
        &self,
        sql: String,
        values: Vec<sea_orm::Value>,
    ) -> Result<Vec<Change>, StoreError> {
        let statement = Sql::new(sql).statement(self.db.get_database_backend(), values);
        self.bounded("read changes", async {
            Ok(self.db.query_all(statement).await?)
        })
        .await?
        .iter()
        .map(|row| {
            let status: String = row.try_get_by_index(3)?;
            Ok(Change {
                cursor: row.try_get_by_index(0)?,
                capture_id: row.try_get_by_index(1)?,
                tenant: row.try_get_by_index(6)?,
                provider: row.try_get_by_index(7)?,
                authorization_id: row.try_get_by_index(8)?,
                kind: row.try_get_by_index(2)?,
                status: CaptureStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
                    id: "capture_events".into(),
                    problem: format!("status {status:?}"),
                })?,
                source: row.try_get_by_index(4)?,
                time: row.try_get_by_index(5)?,
            })
        })
        .collect()
    }
}
