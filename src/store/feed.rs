//! The change feed: how far watchers may read the audit trail (`capture_events`, whose ids are
//! the cursors of `WatchCaptures`).
//!
//! The trail is the only source of truth; the feed only says up to which id it is safe to
//! read, the **horizon**, and wakes watchers when it moves. On PostgreSQL, transactions take
//! ids when they insert and may commit in another order: an id below one already committed can
//! still appear. So the horizon stops before the first missing id. When it first sees the gap,
//! it takes a fresh transaction id (`pg_current_xact_id()`), higher than that of every
//! transaction begun before; it passes the gap once the oldest running transaction
//! (`pg_snapshot_xmin`) is past that id. The transaction that took the missing id was one of
//! those (every write that inserts into `capture_events` writes another row first, so it
//! holds a transaction id before it takes an event id), so the id is then visible, or it was
//! rolled back and never comes. The first horizon is settled the same way. One bound: a
//! transaction anyone keeps open for more than [`GAP_LIMIT`] (on the whole server) would hold
//! the horizon up for that long, so after it the gap is passed with a warning; a change whose
//! own transaction commits later is still in the trail, for a replay, but reaches no live
//! watcher. On SQLite one writer commits at a time, in id order: a missing id never comes.
//!
//! The horizon moves when this process commits a write. On PostgreSQL every process also tells
//! the others (`NOTIFY capture_events`, sent after its commits by a task of its own, at most
//! every [`NOTIFY_SPACING`], so no data transaction notifies) and listens for theirs
//! (`LISTEN`); and it reads the trail at least every poll interval ([`POLL`] by default)
//! whatever it hears, so a notice lost to a dropped connection delays a change, never loses it.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::StoreError;

/// How often the trail is read for other processes' writes.
pub const POLL: Duration = Duration::from_millis(200);
/// The longest the horizon waits at a missing id (see the module's notes).
pub const GAP_LIMIT: Duration = Duration::from_secs(30);

/// The channel of PostgreSQL's notices that a write committed.
const CHANNEL: &str = "capture_events";
/// The shortest time between two notices this process sends: a busy process sends at most ~50
/// a second, however many writes it commits.
pub const NOTIFY_SPACING: Duration = Duration::from_millis(20);

/// The feed of one store; its horizon starts with its first watcher.
#[derive(Clone)]
pub(super) struct Feed {
    inner: Arc<FeedInner>,
}

struct FeedInner {
    db: DatabaseConnection,
    url: String,
    poll: Duration,
    horizon: OnceLock<watch::Receiver<i64>>,
    /// Wakes the horizon's task.
    wake: Arc<Notify>,
    /// Wakes the task that tells other processes (PostgreSQL), started by the first commit.
    tell: OnceLock<Arc<Notify>>,
    /// Cancelled when the store is dropped: its tasks end.
    dropped: CancellationToken,
}

impl Drop for FeedInner {
    fn drop(&mut self) {
        self.dropped.cancel();
    }
}

impl Feed {
    pub fn new(db: DatabaseConnection, url: &str, poll: Duration) -> Feed {
        Feed {
            inner: Arc::new(FeedInner {
                db,
                url: url.to_owned(),
                poll,
                horizon: OnceLock::new(),
                wake: Arc::new(Notify::new()),
                tell: OnceLock::new(),
                dropped: CancellationToken::new(),
            }),
        }
    }

    /// A write of this process committed.
    pub fn committed(&self) {
        let inner = &self.inner;
        if inner.horizon.get().is_some() {
            inner.wake.notify_one();
        }
        if inner.db.get_database_backend() != DbBackend::Postgres {
            return;
        }
        let mut started = false;
        let tell = inner.tell.get_or_init(|| {
            started = true;
            Arc::new(Notify::new())
        });
        if started {
            tokio::spawn(tell_others(
                inner.db.clone(),
                Arc::clone(tell),
                inner.dropped.clone(),
            ));
        }
        tell.notify_one();
    }

    /// The horizon, starting the task that moves it.
    pub async fn subscribe(&self) -> Result<watch::Receiver<i64>, StoreError> {
        let db = &self.inner.db;
        if let Some(horizon) = self.inner.horizon.get() {
            return Ok(horizon.clone());
        }
        let start = settled_start(db).await?;
        let (tx, rx) = watch::channel(start);
        if self.inner.horizon.set(rx.clone()).is_ok() {
            let inner = &self.inner;
            let woken = Woken {
                wake: Arc::clone(&inner.wake),
                poll: inner.poll,
                dropped: inner.dropped.clone(),
            };
            tokio::spawn(advance(db.clone(), woken, tx, start));
            if db.get_database_backend() == DbBackend::Postgres {
                // Listening before the first watcher is answered: no notice after it is missed.
                let listener = match listener(&inner.url).await {
                    Ok(listener) => Some(listener),
                    Err(err) => {
                        tracing::warn!(error = %err, "the change feed is not listening yet; retrying");
                        None
                    }
                };
                tokio::spawn(listen(
                    inner.url.clone(),
                    listener,
                    Arc::clone(&inner.wake),
                    inner.dropped.clone(),
                ));
            }
        }
        Ok(self.inner.horizon.get().cloned().unwrap_or(rx))
    }
}

/// What wakes the horizon's task, and when it ends.
struct Woken {
    wake: Arc<Notify>,
    poll: Duration,
    dropped: CancellationToken,
}

/// Moves the horizon until the store is dropped.
async fn advance(db: DatabaseConnection, woken: Woken, horizon: watch::Sender<i64>, mut at: i64) {
    let mut gaps = Gaps::default();
    loop {
        // Woken by a commit of ours or another process's notice, or by the poll.
        tokio::select! {
            _ = tokio::time::timeout(woken.poll, woken.wake.notified()) => {}
            () = woken.dropped.cancelled() => return,
        }
        match read_after(&db, at).await {
            Ok((ids, oldest_running)) => {
                if let Some(oldest_running) = oldest_running {
                    if gaps.unseen(at, &ids) {
                        match fresh_xid(&db).await {
                            Ok(fresh) => gaps.note(at, &ids, fresh, Instant::now()),
                            Err(err) => {
                                tracing::debug!(error = %err, "the change feed could not take a transaction id");
                                continue;
                            }
                        }
                    }
                    at = gaps.advance(at, &ids, oldest_running, Instant::now());
                } else if let Some(&last) = ids.last() {
                    at = at.max(last);
                }
                if *horizon.borrow() != at {
                    horizon.send_replace(at);
                }
            }
            Err(err) => tracing::debug!(error = %err, "the change feed could not read the trail"),
        }
    }
}

/// Tells other processes that this one committed writes: one `NOTIFY` for all the commits
/// since the last, at most every [`NOTIFY_SPACING`], on a statement of its own.
async fn tell_others(db: DatabaseConnection, tell: Arc<Notify>, dropped: CancellationToken) {
    let notify = format!("SELECT pg_notify('{CHANNEL}', '')");
    loop {
        tokio::select! {
            () = tell.notified() => {}
            () = dropped.cancelled() => return,
        }
        if let Err(err) = db.execute_unprepared(&notify).await {
            tracing::debug!(error = %err, "could not tell other processes of a commit");
        }
        tokio::time::sleep(NOTIFY_SPACING).await;
    }
}

/// A connection listening for other processes' notices.
async fn listener(url: &str) -> Result<sea_orm::sqlx::postgres::PgListener, sea_orm::sqlx::Error> {
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Hears other processes' notices and wakes the horizon's task. A connection lost is made
/// again; what was said meanwhile is caught up by the poll.
async fn listen(
    url: String,
    mut ready: Option<sea_orm::sqlx::postgres::PgListener>,
    wake: Arc<Notify>,
    dropped: CancellationToken,
) {
    loop {
        let listening = async {
            let mut listener = match ready.take() {
                Some(listener) => listener,
                None => listener(&url).await?,
            };
            loop {
                // `None`: the connection was lost (and is made again); the poll catches up.
                let _ = listener.try_recv().await?;
                wake.notify_one();
            }
            #[allow(unreachable_code)]
            Ok::<(), sea_orm::sqlx::Error>(())
        };
        tokio::select! {
            ended = listening => if let Err(err) = ended {
                tracing::debug!(error = %err, "the change feed is not listening; retrying");
            },
            () = dropped.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = dropped.cancelled() => return,
        }
    }
}

/// A missing id: the fresh transaction id taken when it was first seen, and when that was.
#[derive(Debug, Clone, Copy)]
struct Gap {
    fresh: i64,
    seen: Instant,
}

/// The missing ids after the horizon, by the first id of each run of them.
#[derive(Debug, Default)]
struct Gaps(HashMap<i64, Gap>);

impl Gaps {
    /// The first ids of the gaps in `ids` after `at`.
    fn starts(at: i64, ids: &[i64]) -> impl Iterator<Item = i64> + '_ {
        let mut previous = at;
        ids.iter().filter_map(move |&id| {
            let start = (id > previous + 1).then_some(previous + 1);
            previous = id;
            start
        })
    }

    /// Whether `ids` show a gap not seen before.
    fn unseen(&self, at: i64, ids: &[i64]) -> bool {
        Self::starts(at, ids).any(|start| !self.0.contains_key(&start))
    }

    /// Notes the gaps not seen before, with the transaction id taken after they were seen.
    fn note(&mut self, at: i64, ids: &[i64], fresh: i64, now: Instant) {
        for start in Self::starts(at, ids) {
            self.0.entry(start).or_insert(Gap { fresh, seen: now });
        }
    }

    /// How far the horizon moves from `at` over `ids` (ascending), given the oldest running
    /// transaction id now: along consecutive ids, and over a gap once every transaction begun
    /// before it was seen has ended (or it has waited [`GAP_LIMIT`]).
    fn advance(&mut self, mut at: i64, ids: &[i64], oldest_running: i64, now: Instant) -> i64 {
        for &id in ids {
            if id != at + 1 {
                let Some(gap) = self.0.get(&(at + 1)) else {
                    break;
                };
                if oldest_running <= gap.fresh {
                    if now.duration_since(gap.seen) < GAP_LIMIT {
                        break;
                    }
                    tracing::warn!(
                        missing_from = at + 1,
                        missing_to = id - 1,
                        "a transaction has been open for over {GAP_LIMIT:?}: passing event ids \
                         still missing; if one commits later, live watchers will not see it \
                         (a replay from an earlier cursor will)"
                    );
                }
            }
            at = id;
        }
        self.0.retain(|&start, _| start > at);
        at
    }
}

/// The first horizon: the last id, once everything below it is settled. On PostgreSQL, ids
/// below it may belong to transactions still open: wait (at most [`GAP_LIMIT`]) until every
/// transaction begun before it was read has ended.
async fn settled_start(db: &DatabaseConnection) -> Result<i64, StoreError> {
    let backend = db.get_database_backend();
    if backend != sea_orm::DbBackend::Postgres {
        let row = db
            .query_one(Statement::from_string(
                backend,
                "SELECT COALESCE(MAX(id), 0) FROM capture_events",
            ))
            .await?;
        return Ok(row
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0));
    }
    let row = db
        .query_one(Statement::from_string(
            backend,
            "SELECT COALESCE(MAX(id), 0), pg_current_xact_id()::text::bigint FROM capture_events",
        ))
        .await?;
    let (start, fresh): (i64, i64) = match row {
        Some(row) => (row.try_get_by_index(0)?, row.try_get_by_index(1)?),
        None => (0, 0),
    };
    let since = Instant::now();
    while oldest_running(db).await? <= fresh && since.elapsed() < GAP_LIMIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(start)
}

/// `pg_snapshot_xmin` now: every transaction with a lower id has ended.
async fn oldest_running(db: &DatabaseConnection) -> Result<i64, StoreError> {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

/// A transaction id higher than that of every transaction begun so far.
async fn fresh_xid(db: &DatabaseConnection) -> Result<i64, StoreError> {
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT pg_current_xact_id()::text::bigint",
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get_by_index::<i64>(0))
        .transpose()?
        .unwrap_or(0))
}

/// The ids committed after `at`, ascending, and (PostgreSQL) the oldest transaction id still
/// running when they were read.
async fn read_after(
    db: &DatabaseConnection,
    at: i64,
) -> Result<(Vec<i64>, Option<i64>), StoreError> {
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
        "WITH s AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS lo) \
         SELECT s.lo, e.id FROM s LEFT JOIN ({IDS}) e ON true ORDER BY e.id"
    );
    let rows = db
        .query_all(super::sql::statement(backend, &sql, vec![at.into()]))
        .await?;
    let mut oldest = None;
    let mut ids = Vec::with_capacity(rows.len());
    for row in &rows {
        oldest = Some(row.try_get_by_index(0)?);
        if let Some(id) = row.try_get_by_index::<Option<i64>>(1)? {
            ids.push(id);
        }
    }
    Ok((ids, oldest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Notes what `ids` show after `at`, as the feed does, and advances.
    fn step(gaps: &mut Gaps, at: i64, ids: &[i64], fresh: i64, oldest: i64, now: Instant) -> i64 {
        if gaps.unseen(at, ids) {
            gaps.note(at, ids, fresh, now);
        }
        gaps.advance(at, ids, oldest, now)
    }

    #[test]
    fn a_missing_id_holds_the_horizon_until_every_transaction_begun_before_has_ended() {
        let t0 = Instant::now();
        let mut gaps = Gaps::default();
        // 13 is missing; the fresh id then is 200.
        assert_eq!(step(&mut gaps, 10, &[11, 12, 14, 15], 200, 150, t0), 12);
        // Later, a transaction begun before is still running: the horizon holds.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(step(&mut gaps, 12, &[14, 15], 999, 200, later), 12);
        // 13 commits: the horizon moves over it.
        assert_eq!(step(&mut gaps, 12, &[13, 14, 15], 999, 200, later), 15);
        assert!(gaps.0.is_empty());
        // 16 never comes: once every transaction begun before it was seen has ended, it was
        // rolled back.
        assert_eq!(step(&mut gaps, 15, &[17], 300, 250, t0), 15);
        assert_eq!(step(&mut gaps, 15, &[17], 999, 300, t0), 15);
        assert_eq!(step(&mut gaps, 15, &[17], 999, 301, t0), 17);
        // A second gap's clock starts when it is first seen, behind the first.
        let mut gaps = Gaps::default();
        assert_eq!(step(&mut gaps, 0, &[2, 4], 20, 10, t0), 0);
        assert_eq!(step(&mut gaps, 0, &[2, 4], 99, 21, t0), 4);
        // A transaction open past the limit no longer holds the horizon.
        let mut gaps = Gaps::default();
        assert_eq!(step(&mut gaps, 0, &[2], 20, 10, t0), 0);
        assert_eq!(step(&mut gaps, 0, &[2], 99, 10, t0 + GAP_LIMIT), 2);
    }
}
