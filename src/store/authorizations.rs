//! Reading an authorization as a whole: its ledger row and one tenant's records of it.

use std::sync::LazyLock;

use sea_orm::ConnectionTrait;

use super::entities::authorizations;
use super::read;
use super::sql::Sql;
use super::{Store, StoreError};
use crate::domain::authorization::LedgerFacts;
use crate::domain::{CaptureRecord, Currency, Provider, ReleasedBy};

impl Store {
    /// The ledger of `authorization_id` at `provider`'s `account` and `tenant`'s captures and
    /// releases of it (ids in creation order); `None` when the tenant made none.
    pub async fn authorization(
        &self,
        tenant: &str,
        provider: Provider,
        account: &str,
        authorization_id: &str,
    ) -> Result<Option<(LedgerFacts, Vec<CaptureRecord>)>, StoreError> {
        // One statement, so the ledger and the records are one moment's: read apart, a release
        // committed between the two reads showed the ledger released and no release among the
        // records (a flaky test caught it). The ledger's columns come first, on every row; the
        // outer joins from `one` give a row even when neither exists. No ORDER BY: the records
        // are sorted below, and each one's fees by `group_at`.
        static SQL: LazyLock<Sql> = LazyLock::new(|| {
            Sql::new(format!(
                "SELECT {}, {} FROM (SELECT 1) AS one \
                 LEFT JOIN authorizations a ON a.provider = $1 AND a.provider_account = $2 \
                 AND a.authorization_id = $3 \
                 LEFT JOIN captures c ON c.tenant = $4 AND c.provider = $5 \
                 AND c.provider_account = $6 AND c.authorization_id = $7 \
                 LEFT JOIN seller_receivable_breakdowns b ON b.capture_id = c.id \
                 LEFT JOIN platform_fees f ON f.capture_id = c.id",
                read::ledger_columns("a"),
                read::joined_columns()
            ))
        });
        let key = [provider.as_str(), account, authorization_id];
        let values = key
            .into_iter()
            .chain(std::iter::once(tenant))
            .chain(key)
            .map(sea_orm::Value::from)
            .collect();
        let db = self.hot();
        let statement = SQL.statement(db.get_database_backend(), values);
        let rows = self
            .bounded("read authorization", async {
                Ok(db.query_all(statement).await?)
            })
            .await?;
        let ledger = match rows.first() {
            Some(first) if first.try_get_by_index::<Option<String>>(0)?.is_some() => {
                Some(read::ledger_row(first, 0)?)
            }
            _ => None,
        };
        let rows = read::group_at(rows, read::LEDGER_WIDTH)?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut records = rows
            .into_iter()
            .map(read::Joined::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| (r.create_time, r.id.clone()));
        Ok(Some((ledger.map(facts).unwrap_or_default(), records)))
    }
}

impl Store {
    /// How many captures of `release`'s authorization are `PROCESSING`: recorded, and perhaps
    /// on their way to the provider. A release's call waits for them, so a void never overtakes
    /// a capture the ledger admitted before the release.
    pub async fn captures_in_flight(&self, release: &CaptureRecord) -> Result<i64, StoreError> {
        static SQL: LazyLock<Sql> = LazyLock::new(|| {
            Sql::new(
                "SELECT COUNT(*) FROM captures WHERE provider = $1 AND provider_account = $2 \
                 AND authorization_id = $3 AND operation = 'capture' AND status = 'PROCESSING'"
                    .to_owned(),
            )
        });
        let parts = release.command.parts();
        let statement = SQL.statement(
            self.db.get_database_backend(),
            vec![
                parts.provider.as_str().into(),
                release.account.as_str().into(),
                parts.authorization_id.as_str().into(),
            ],
        );
        self.bounded("captures in flight", async {
            let row = self.db.query_one(statement).await?;
            Ok(row
                .map(|r| r.try_get_by_index::<i64>(0))
                .transpose()?
                .unwrap_or(0))
        })
        .await
    }
}

impl Store {
    /// Completed final captures at `providers` whose authorization still holds a rest that no
    /// release has been made for (none was ever recorded): at most `limit`, oldest first.
    pub async fn final_captures_to_follow_up(
        &self,
        providers: &[Provider],
        limit: u64,
    ) -> Result<Vec<CaptureRecord>, StoreError> {
        if providers.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<String> = providers
            .iter()
            .map(|p| format!("'{}'", p.as_str()))
            .collect();
        let sql = read::select_where(&format!(
            "c.id IN (SELECT a.closed_by FROM authorizations a WHERE a.release_id IS NULL \
             AND a.provider IN ({}) \
             AND (a.authorized_minor IS NULL OR a.authorized_minor > a.held_minor) \
             AND NOT EXISTS (SELECT 1 FROM captures r WHERE r.operation = 'release' \
             AND r.provider = a.provider AND r.provider_account = a.provider_account \
             AND r.authorization_id = a.authorization_id)) \
             AND c.operation = 'capture' AND c.status = 'COMPLETED' \
             AND c.amount_minor IS NOT NULL",
            names.join(", ")
        ));
        let rows = self
            .bounded(
                "final captures to follow up",
                read::joined(&self.db, &sql, Vec::new()),
            )
            .await?;
        let mut records = rows
            .into_iter()
            .map(read::Joined::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| r.update_time);
        records.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(records)
    }
}

fn facts(row: authorizations::Model) -> LedgerFacts {
    LedgerFacts {
        currency: row.currency_code.as_deref().and_then(Currency::from_code),
        authorized_minor: row.authorized_minor,
        closed_by: row.closed_by,
        release_id: row.release_id,
        released_by: row.released_by.as_deref().and_then(ReleasedBy::parse),
        released_minor: row.released_minor,
    }
}
