//! Who may call the provider about an open capture: the holder of its lease
//! (`captures.lease_until`). A capture's own request takes it with the `PROCESSING` row and
//! keeps it until the provider's answer is recorded; a reconciler's or a hint's look takes it
//! before it calls. With several replicas, two never call about one capture at once, and none
//! calls about a capture whose request is still in flight elsewhere.
//!
//! A lease proves its holder is alive: it is short ([`ReconcileConfig::lease`], 10 s by
//! default), and the holding process renews the leases of all its calls in flight, in one
//! statement, every third of it ([`Store::renew_leases`]). A process that dies loses its
//! leases within one period; a lease that ran out (rather than was given back) marks a capture
//! whose holder died mid-call, due for a look at once. A live call, however slow, keeps its
//! lease.
//!
//! A lease names its holder's process (`lease_owner`) and keeps only *other* processes away:
//! within one, the in-flight table guards its calls, and a request whose answer could not be
//! recorded (the database was away) does not lock its own retry out. Renewing, releasing and
//! postponing are compare-and-set on the owner, so a holder whose lease ran out and was taken
//! by someone else changes nothing.
//!
//! [`ReconcileConfig::lease`]: crate::config::ReconcileConfig::lease

use std::sync::LazyLock;

use sea_orm::{ConnectionTrait, DbBackend};

use super::read;
use super::sql::Sql;
use super::{now_micros, Store, StoreError};
use crate::domain::{CaptureRecord, CaptureStatus};

/// An open capture claimed for a look: the record, and how many looks it has had.
#[derive(Debug)]
pub struct DueCapture {
    pub record: CaptureRecord,
    pub attempts: i32,
}

/// `status IN ('PROCESSING', 'PENDING')`.
fn open() -> String {
    format!(
        "status IN ('{}', '{}')",
        CaptureStatus::Processing.as_str(),
        CaptureStatus::Pending.as_str()
    )
}

/// Leased by no one, or by someone whose lease has run out (`now` is the placeholder of now).
fn free(now: &str) -> String {
    format!("(lease_until IS NULL OR lease_until <= {now})")
}

/// [`free`], or leased by this store (`me`): its own request ended without recording an answer.
fn free_for_me(now: &str, me: &str) -> String {
    format!("(lease_until IS NULL OR lease_until <= {now} OR lease_owner = {me})")
}

/// A name no other process has: the leases' owner.
pub(super) fn new_owner() -> String {
    let mut bytes = [0u8; 12];
    // Without randomness, the time still tells processes apart.
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&now_micros().to_le_bytes());
    }
    hex::encode(bytes)
}

impl Store {
    /// Claims the captures whose outcome is still open (`PROCESSING`, `PENDING`), due for another
    /// look, not given up on, and not leased, oldest first: each is leased for `lease_micros`.
    /// A capture left unleased waits `min_age_micros` after its last change; one whose lease ran
    /// out is due at once (its holder died mid-call). On PostgreSQL the candidates are locked
    /// with `SKIP LOCKED`: two replicas claiming at once take different captures.
    pub async fn claim_due_for_reconciliation(
        &self,
        min_age_micros: i64,
        max_attempts: i32,
        limit: u64,
        lease_micros: i64,
    ) -> Result<Vec<DueCapture>, StoreError> {
        fn claim(lock: &str) -> Sql {
            Sql::new(format!(
                "UPDATE captures SET lease_until = $1, lease_owner = $2 WHERE id IN (\
                 SELECT id FROM captures WHERE {} \
                 AND (update_time <= $3 OR lease_until <= $4) \
                 AND (reconcile_after IS NULL OR reconcile_after <= $5) \
                 AND reconcile_attempts < $6 AND {} \
                 ORDER BY update_time LIMIT $8{lock}) RETURNING id, reconcile_attempts",
                open(),
                free("$7"),
            ))
        }
        static CLAIM_POSTGRES: LazyLock<Sql> = LazyLock::new(|| claim(" FOR UPDATE SKIP LOCKED"));
        static CLAIM_SQLITE: LazyLock<Sql> = LazyLock::new(|| claim(""));
        let now = now_micros();
        let lease = now.saturating_add(lease_micros);
        let values = vec![
            lease.into(),
            self.lease_owner.as_str().into(),
            (now - min_age_micros).into(),
            now.into(),
            now.into(),
            max_attempts.into(),
            now.into(),
            (limit as i64).into(),
        ];
        let claimed = self.leasing(&CLAIM_POSTGRES, &CLAIM_SQLITE, values).await?;
        let claimed: Vec<(String, i32)> = claimed
            .iter()
            .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
            .collect::<Result<_, sea_orm::DbErr>>()?;
        let mut due = Vec::with_capacity(claimed.len());
        for record in self
            .records(claimed.iter().map(|(id, _)| id.as_str()))
            .await?
        {
            let attempts = claimed
                .iter()
                .find(|(id, _)| *id == record.id)
                .map(|(_, attempts)| *attempts)
                .unwrap_or(0);
            due.push(DueCapture { record, attempts });
        }
        due.sort_by_key(|d| d.record.update_time);
        Ok(due)
    }

    /// The reconciler's backlog: how many captures are open and not given up on, and the
    /// last change of the oldest of them (microseconds), for the metrics.
    pub async fn open_backlog(&self, max_attempts: i32) -> Result<(i64, Option<i64>), StoreError> {
        static BACKLOG: LazyLock<Sql> = LazyLock::new(|| {
            Sql::new(format!(
                "SELECT COUNT(*), MIN(update_time) FROM captures WHERE {} \
                 AND reconcile_attempts < $1",
                open()
            ))
        });
        let statement =
            BACKLOG.statement(self.db.get_database_backend(), vec![max_attempts.into()]);
        let row = self
            .bounded("reconcile backlog", async {
                Ok(self.db.query_one(statement).await?)
            })
            .await?;
        Ok(match row {
            Some(row) => (row.try_get_by_index(0)?, row.try_get_by_index(1)?),
            None => (0, None),
        })
    }

    /// Claims one capture for a look outside the passes (a provider's hint): only while its
    /// outcome is open, its lease is free, and the reconciler would look at it now (its back-off
    /// holds hints to the same pace).
    pub async fn claim_for_look(
        &self,
        capture_id: &str,
        lease_micros: i64,
    ) -> Result<Option<DueCapture>, StoreError> {
        static CLAIM: LazyLock<Sql> = LazyLock::new(|| {
            Sql::new(format!(
                "UPDATE captures SET lease_until = $1, lease_owner = $2 WHERE id = $3 AND {} \
                 AND {} AND (reconcile_after IS NULL OR reconcile_after <= $5) \
                 RETURNING reconcile_attempts",
                open(),
                free("$4"),
            ))
        });
        let now = now_micros();
        let lease = now.saturating_add(lease_micros);
        let me = self.lease_owner.as_str();
        let values = vec![
            lease.into(),
            me.into(),
            capture_id.into(),
            now.into(),
            now.into(),
        ];
        let rows = self.leasing(&CLAIM, &CLAIM, values).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let attempts: i32 = row.try_get_by_index(0)?;
        let record = self.get_any(capture_id).await?;
        Ok(Some(DueCapture { record, attempts }))
    }

    /// Takes the lease of a `PROCESSING` capture whose request is about to call the provider
    /// again (a retry resuming it): whether it was taken; not while someone else holds it (or
    /// once it is no longer `PROCESSING`).
    pub async fn take_lease(
        &self,
        capture_id: &str,
        lease_micros: i64,
    ) -> Result<bool, StoreError> {
        static TAKE: LazyLock<Sql> = LazyLock::new(|| {
            Sql::new(format!(
                "UPDATE captures SET lease_until = $1, lease_owner = $2 WHERE id = $3 \
                 AND status = '{}' AND {} RETURNING id",
                CaptureStatus::Processing.as_str(),
                free_for_me("$4", "$5")
            ))
        });
        let now = now_micros();
        let lease = now.saturating_add(lease_micros);
        let rows = self
            .leasing(
                &TAKE,
                &TAKE,
                vec![
                    lease.into(),
                    self.lease_owner.as_str().into(),
                    capture_id.into(),
                    now.into(),
                    self.lease_owner.as_str().into(),
                ],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Extends the lease of one capture while this process still holds it: whether it does.
    pub async fn renew_lease(
        &self,
        capture_id: &str,
        lease_micros: i64,
    ) -> Result<bool, StoreError> {
        static RENEW: LazyLock<Sql> = LazyLock::new(|| {
            Sql::new(
                "UPDATE captures SET lease_until = $1 WHERE id = $2 AND lease_owner = $3 \
                 RETURNING id"
                    .to_owned(),
            )
        });
        let lease = now_micros().saturating_add(lease_micros);
        let rows = self
            .leasing(
                &RENEW,
                &RENEW,
                vec![
                    lease.into(),
                    capture_id.into(),
                    self.lease_owner.as_str().into(),
                ],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Extends, in one statement, every lease this process holds on `capture_ids` (its calls
    /// in flight): the heartbeat that keeps a live holder's leases from running out. How many
    /// were renewed.
    pub async fn renew_leases(
        &self,
        capture_ids: &[String],
        lease_micros: i64,
    ) -> Result<usize, StoreError> {
        let mut renewed = 0;
        // Well under every backend's limit of bound values.
        for chunk in capture_ids.chunks(500) {
            let placeholders: Vec<String> = (3..chunk.len() + 3).map(|i| format!("${i}")).collect();
            let sql = Sql::new(format!(
                "UPDATE captures SET lease_until = $1 WHERE lease_owner = $2 AND id IN ({}) \
                 RETURNING id",
                placeholders.join(", ")
            ));
            let mut values = vec![
                now_micros().saturating_add(lease_micros).into(),
                self.lease_owner.as_str().into(),
            ];
            values.extend(chunk.iter().map(|id| id.as_str().into()));
            renewed += self.leasing(&sql, &sql, values).await?.len();
        }
        Ok(renewed)
    }

    /// Gives back a lease this process still holds.
    pub async fn release_lease(&self, capture_id: &str) -> Result<(), StoreError> {
        static RELEASE: LazyLock<Sql> = LazyLock::new(|| {
            Sql::new(
                "UPDATE captures SET lease_until = NULL, lease_owner = NULL \
                 WHERE id = $1 AND lease_owner = $2 RETURNING id"
                    .to_owned(),
            )
        });
        self.leasing(
            &RELEASE,
            &RELEASE,
            vec![capture_id.into(), self.lease_owner.as_str().into()],
        )
        .await?;
        Ok(())
    }

    /// Counts one more look at a capture that is still open, says when to look again, and
    /// releases the lease — all only while this process still holds it.
    pub async fn postpone_reconciliation(
        &self,
        capture_id: &str,
        after_micros: i64,
    ) -> Result<(), StoreError> {
        static POSTPONE: LazyLock<Sql> = LazyLock::new(|| {
            Sql::new(
                "UPDATE captures SET reconcile_after = $1, lease_until = NULL, \
                 lease_owner = NULL, reconcile_attempts = reconcile_attempts + 1 \
                 WHERE id = $2 AND lease_owner = $3 RETURNING id"
                    .to_owned(),
            )
        });
        self.leasing(
            &POSTPONE,
            &POSTPONE,
            vec![
                after_micros.into(),
                capture_id.into(),
                self.lease_owner.as_str().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Runs a lease statement in a write turn (SQLite has one writer).
    async fn leasing(
        &self,
        postgres: &Sql,
        sqlite: &Sql,
        values: Vec<sea_orm::Value>,
    ) -> Result<Vec<sea_orm::QueryResult>, StoreError> {
        let backend = self.db.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => postgres,
            _ => sqlite,
        };
        self.bounded("lease", async {
            let _turn = self.write_turn().await?;
            Ok(self.db.query_all(sql.statement(backend, values)).await?)
        })
        .await
    }

    /// Whole records of `ids` (any tenant's), in one statement.
    pub async fn records<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<Vec<CaptureRecord>, StoreError> {
        let ids: Vec<sea_orm::Value> = ids.map(Into::into).collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let select = read::select_where(&format!("c.id IN ({})", placeholders.join(", ")));
        self.bounded("read records", read::joined(&self.db, &select, ids))
            .await?
            .into_iter()
            .map(read::Joined::into_record)
            .collect()
    }
}
