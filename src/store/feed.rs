//! The change feed: how far watchers may read the audit trail (`capture_events`, whose ids are
//! the cursors of `WatchCaptures`).
//!
//! The trail is the only source of truth; the feed only says up to which id it is safe to
//! read, the **horizon**, and wakes watchers when it moves. On PostgreSQL, transactions take
//! ids when they insert and may commit in another order: an id below one already committed can
//! still appear. So the horizon stops before the first missing id, and passes it only once
//! every transaction that was running when the gap was first seen has ended (the snapshot's
//! `xmin` has reached that snapshot's `xmax`): a transaction that took the missing id was one
//! of them, so the id is then visible, or it was rolled back and never comes. (Every write
//! that inserts into `capture_events` writes another row first, so it holds a transaction id
//! before it takes an event id.) On SQLite one writer commits at a time, in id order: a
//! missing id never comes.
//!
//! The horizon moves when this process commits a write, and at least every [`POLL`] for writes
//! of other processes (other replicas on one PostgreSQL): a change committed anywhere reaches
//! every replica's watchers within that.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::sync::{watch, Notify};

use super::StoreError;

/// How often the trail is read for other processes' writes.
pub const POLL: Duration = Duration::from_millis(200);

/// The feed of one store; started by its first watcher.
#[derive(Clone, Default)]
pub(super) struct Feed {
    inner: Arc<FeedInner>,
}

#[derive(Default)]
struct FeedInner {
    horizon: OnceLock<watch::Receiver<i64>>,
    wake: Notify,
}

impl Feed {
    /// A write of this process committed.
    pub fn committed(&self) {
        if self.inner.horizon.get().is_some() {
            self.inner.wake.notify_one();
        }
    }

    /// The horizon, starting the task that moves it.
    pub async fn subscribe(
        &self,
        db: &DatabaseConnection,
    ) -> Result<watch::Receiver<i64>, StoreError> {
        if let Some(horizon) = self.inner.horizon.get() {
            return Ok(horizon.clone());
        }
        let start = max_id(db).await?;
        let (tx, rx) = watch::channel(start);
        if self.inner.horizon.set(rx.clone()).is_ok() {
            tokio::spawn(advance(db.clone(), Arc::downgrade(&self.inner), tx, start));
        }
        Ok(self.inner.horizon.get().cloned().unwrap_or(rx))
    }
}

/// Moves the horizon until the store is dropped.
async fn advance(
    db: DatabaseConnection,
    feed: Weak<FeedInner>,
    horizon: watch::Sender<i64>,
    mut at: i64,
) {
    let mut gaps = Gaps::default();
    loop {
        let Some(inner) = feed.upgrade() else { return };
        // Woken by a commit of ours, or by the poll for everyone else's.
        let _ = tokio::time::timeout(POLL, inner.wake.notified()).await;
        drop(inner);
        match read_after(&db, at).await {
            Ok((ids, snapshot)) => {
                let moved = gaps.advance(at, &ids, snapshot);
                if moved != at {
                    at = moved;
                    horizon.send_replace(at);
                }
            }
            Err(err) => tracing::debug!(error = %err, "the change feed could not read the trail"),
        }
    }
}

/// What PostgreSQL's snapshot of a read says about transactions: all below `xmin` had ended;
/// all that were running are below `xmax`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    xmin: i64,
    xmax: i64,
}

/// Missing ids, each with the `xmax` of the snapshot that first saw it missing.
#[derive(Debug, Default)]
struct Gaps(HashMap<i64, i64>);

impl Gaps {
    /// How far the horizon moves from `at`, given the ids committed after it (ascending) and
    /// the snapshot they were read in (`None` on SQLite).
    fn advance(&mut self, mut at: i64, ids: &[i64], snapshot: Option<Snapshot>) -> i64 {
        let Some(snapshot) = snapshot else {
            return ids.last().copied().unwrap_or(at).max(at);
        };
        // Every gap's clock starts when it is first seen, not when it comes first.
        let mut previous = at;
        for &id in ids {
            if id > previous + 1 {
                self.0.entry(previous + 1).or_insert(snapshot.xmax);
            }
            previous = id;
        }
        for &id in ids {
            if id != at + 1 {
                let seen_running_below = self.0.get(&(at + 1)).copied().unwrap_or(i64::MAX);
                if snapshot.xmin < seen_running_below {
                    // A transaction that was running when it went missing may still commit it.
                    break;
                }
            }
            at = id;
        }
        self.0.retain(|&missing, _| missing > at);
        at
    }
}

async fn max_id(db: &DatabaseConnection) -> Result<i64, StoreError> {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT COALESCE(MAX(id), 0) FROM capture_events",
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

/// The ids committed after `at`, ascending, and (PostgreSQL) the snapshot they were read in.
async fn read_after(
    db: &DatabaseConnection,
    at: i64,
) -> Result<(Vec<i64>, Option<Snapshot>), StoreError> {
    const IDS: &str = "SELECT id FROM capture_events WHERE id > $1 ORDER BY id LIMIT 10000";
    let backend = db.get_database_backend();
    if backend != sea_orm::DbBackend::Postgres {
        let rows = db
            .query_all(super::sql::statement(backend, IDS, vec![at.into()]))
            .await?;
        let ids = rows
            .iter()
            .map(|r| r.try_get_by_index::<i64>(0))
            .collect::<Result<_, _>>()?;
        return Ok((ids, None));
    }
    // One statement, so the ids and the snapshot are the same moment's.
    let sql = format!(
        "WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS lo, \
         pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS hi) \
         SELECT s.lo, s.hi, e.id FROM s LEFT JOIN ({IDS}) e ON true ORDER BY e.id"
    );
    let rows = db
        .query_all(super::sql::statement(backend, &sql, vec![at.into()]))
        .await?;
    let mut snapshot = None;
    let mut ids = Vec::with_capacity(rows.len());
    for row in &rows {
        snapshot = Some(Snapshot {
            xmin: row.try_get_by_index(0)?,
            xmax: row.try_get_by_index(1)?,
        });
        if let Some(id) = row.try_get_by_index::<Option<i64>>(2)? {
            ids.push(id);
        }
    }
    Ok((ids, snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_id_holds_the_horizon_until_every_transaction_running_then_has_ended() {
        let mut gaps = Gaps::default();
        // 13 is missing while transactions 100..200 run.
        let running = Snapshot {
            xmin: 100,
            xmax: 200,
        };
        assert_eq!(gaps.advance(10, &[11, 12, 14, 15], Some(running)), 12);
        // Later, some of those still run: the horizon holds, however long it takes.
        let later = Snapshot {
            xmin: 150,
            xmax: 400,
        };
        assert_eq!(gaps.advance(12, &[14, 15], Some(later)), 12);
        // 13 commits: the horizon moves over it.
        assert_eq!(gaps.advance(12, &[13, 14, 15], Some(later)), 15);
        assert!(gaps.0.is_empty());
        // 16 never comes: once every transaction running when it went missing has ended, it was
        // rolled back.
        assert_eq!(
            gaps.advance(
                15,
                &[17],
                Some(Snapshot {
                    xmin: 300,
                    xmax: 500
                })
            ),
            15
        );
        assert_eq!(
            gaps.advance(
                15,
                &[17],
                Some(Snapshot {
                    xmin: 499,
                    xmax: 600
                })
            ),
            15
        );
        assert_eq!(
            gaps.advance(
                15,
                &[17],
                Some(Snapshot {
                    xmin: 500,
                    xmax: 600
                })
            ),
            17
        );
        // A second gap's clock starts when it is first seen, behind the first.
        let mut gaps = Gaps::default();
        assert_eq!(
            gaps.advance(0, &[2, 4], Some(Snapshot { xmin: 10, xmax: 20 })),
            0
        );
        assert_eq!(
            gaps.advance(0, &[2, 4], Some(Snapshot { xmin: 20, xmax: 30 })),
            4
        );
    }

    #[test]
    fn on_sqlite_the_horizon_is_the_last_id() {
        assert_eq!(Gaps::default().advance(3, &[4, 6, 9], None), 9);
        assert_eq!(Gaps::default().advance(3, &[], None), 3);
    }
}
