//! Reading an authorization as a whole: its ledger row and one tenant's records of it.

use std::sync::LazyLock;

use sea_orm::{ConnectionTrait, EntityTrait};

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
        static SQL: LazyLock<Sql> = LazyLock::new(|| {
            read::select_where(
                "c.tenant = $1 AND c.provider = $2 AND c.provider_account = $3 \
                 AND c.authorization_id = $4",
            )
        });
        let values = vec![
            tenant.into(),
            provider.as_str().into(),
            account.into(),
            authorization_id.into(),
        ];
        let rows = self
            .bounded("read authorization", read::joined(&self.db, &SQL, values))
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut records = rows
            .into_iter()
            .map(read::Joined::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by_key(|r| (r.create_time, r.id.clone()));
        let key = (
            provider.as_str().to_owned(),
            account.to_owned(),
            authorization_id.to_owned(),
        );
        let ledger = self
            .bounded("read authorization", async {
                Ok(authorizations::Entity::find_by_id(key)
                    .one(&self.db)
                    .await?)
            })
            .await?;
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
