//! The change feed: how far watchers may read the audit trail (`capture_events`, whose ids are
//! the cursors of `WatchCaptures`).
//!
//! The trail is the only source of truth; the feed only says up to which id it is safe to
//! read, the **horizon**, and wakes watchers when it moves. On PostgreSQL, transactions take
//! ids when they insert and may commit in another order: an id below one already committed can
//! still appear. So the horizon stops before the first missing id, and passes it only once it
//! has been missing for [`GAP_WAIT`] (its transaction rolled back). A watcher reading up to the
//! horizon therefore never skips a change that is merely late.
//!
//! The horizon moves when this process commits a write, and at least every [`POLL`] for writes
//! of other processes (other replicas on one PostgreSQL): a change committed anywhere reaches
//! every replica's watchers within that.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::sync::{watch, Notify};

use super::StoreError;

/// How long a missing id holds the horizon back before it is taken as rolled back.
pub const GAP_WAIT: Duration = Duration::from_secs(2);
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
    let mut gaps: HashMap<i64, Instant> = HashMap::new();
    loop {
        let Some(inner) = feed.upgrade() else { return };
        // Woken by a commit of ours, or by the poll for everyone else's.
        let _ = tokio::time::timeout(POLL, inner.wake.notified()).await;
        drop(inner);
        match ids_after(&db, at).await {
            Ok(ids) => {
                let moved = contiguous(at, &ids, &mut gaps, Instant::now());
                if moved != at {
                    at = moved;
                    horizon.send_replace(at);
                }
            }
            Err(err) => tracing::debug!(error = %err, "the change feed could not read the trail"),
        }
    }
}

/// How far the horizon may move from `at`, given the ids committed after it (ascending):
/// along consecutive ids, and over a missing one only once it has been missing for
/// [`GAP_WAIT`].
fn contiguous(mut at: i64, ids: &[i64], gaps: &mut HashMap<i64, Instant>, now: Instant) -> i64 {
    for &id in ids {
        if id != at + 1 {
            let first_missing = at + 1;
            let since = *gaps.entry(first_missing).or_insert(now);
            if now.duration_since(since) < GAP_WAIT {
                break;
            }
            gaps.remove(&first_missing);
        }
        at = id;
    }
    gaps.retain(|&missing, _| missing > at);
    at
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

async fn ids_after(db: &DatabaseConnection, at: i64) -> Result<Vec<i64>, StoreError> {
    let sql = super::sql::statement(
        db.get_database_backend(),
        "SELECT id FROM capture_events WHERE id > $1 ORDER BY id LIMIT 10000",
        vec![at.into()],
    );
    db.query_all(sql)
        .await?
        .iter()
        .map(|r| r.try_get_by_index::<i64>(0).map_err(StoreError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_horizon_waits_at_a_missing_id_then_passes_it() {
        let mut gaps = HashMap::new();
        let t0 = Instant::now();
        assert_eq!(contiguous(10, &[11, 12, 14, 15], &mut gaps, t0), 12);
        // 13 is still missing a moment later: the horizon holds.
        assert_eq!(
            contiguous(12, &[14, 15], &mut gaps, t0 + Duration::from_millis(500)),
            12
        );
        // It appears: the horizon moves over it.
        assert_eq!(
            contiguous(12, &[13, 14, 15], &mut gaps, t0 + Duration::from_secs(1)),
            15
        );
        assert!(gaps.is_empty());
        // 16 never comes: after GAP_WAIT it is taken as rolled back.
        assert_eq!(contiguous(15, &[17], &mut gaps, t0), 15);
        assert_eq!(contiguous(15, &[17], &mut gaps, t0 + GAP_WAIT), 17);
    }
}
