//! Write transactions, with group commit on SQLite.
//!
//! SQLite has one writer at a time and each commit is an fsync (`synchronous=FULL`), so writes
//! that wait for one another are better made together: the writes queued while a commit is under
//! way share the next transaction. Each runs in a savepoint of its own, so a write that fails
//! or discards its work undoes only its own statements; each learns its result only after the
//! shared `COMMIT` returned, so nobody is answered before what they wrote is durable. A failed
//! commit fails every write it carried, and none of them is applied.
//!
//! PostgreSQL locks rows and flushes concurrent commits together itself: there each write is
//! its own transaction, run at once by its caller (within the store's write turns).

use futures_util::future::BoxFuture;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{Store, StoreError};

/// What a write did with its transaction.
pub(super) enum Written<T> {
    /// Keep what it wrote: the caller gets `T` once it is committed.
    Commit(T),
    /// Undo what it wrote (if anything): the caller gets `T` at once.
    Discard(T),
}

/// The statements of one write, run in a transaction (or savepoint) the store opens.
pub(super) type Work<T> = Box<
    dyn for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<Written<T>, StoreError>>
        + Send,
>;

/// A write queued for the next shared transaction, its caller's type erased.
type Job = Box<dyn Queued>;

/// Answers a write's caller once the shared commit has ended.
type Deliver = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// At most this many writes share one transaction, so that one commit's wait stays short.
const MAX_BATCH: usize = 64;

/// The queue of SQLite's writes.
#[derive(Clone)]
pub(super) struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    /// Starts the task that commits the queued writes, holding the store's write turn for each
    /// batch. It ends when the last handle to the store is dropped.
    pub fn start(db: DatabaseConnection, turns: Arc<Semaphore>) -> GroupCommit {
        let (jobs, queue) = mpsc::unbounded_channel();
        let writer = Writer { db, turns, queue };
        tokio::spawn(writer.run());
        GroupCommit { jobs }
    }
}

impl Store {
    /// Runs `work` in a write transaction and returns its result once that is committed (or
    /// at once, for work that discards what it wrote).
    pub(super) async fn write<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: Work<T>,
    ) -> Result<T, StoreError> {
        let written = self.bounded(operation, self.write_once(work)).await;
        if written.is_ok() {
            self.feed.committed();
        }
        written
    }

    async fn write_once<T: Send + 'static>(&self, work: Work<T>) -> Result<T, StoreError> {
        match &self.group_commit {
            Some(group) => {
                let (answer, answered) = oneshot::channel();
                group
                    .jobs
                    .send(Box::new(Pending { work, answer }))
                    .map_err(|_| writer_gone())?;
                answered.await.map_err(|_| writer_gone())?
            }
            None => {
                let _turn = self.write_turn().await?;
                let txn = self.db.begin().await?;
                match work(&txn).await {
                    Ok(Written::Commit(value)) => {
                        txn.commit().await?;
                        Ok(value)
                    }
                    Ok(Written::Discard(value)) => {
                        txn.rollback().await?;
                        Ok(value)
                    }
                    Err(err) => {
                        // A failed rollback is the connection going away: the failure is `err`.
                        let _ = txn.rollback().await;
                        Err(err)
                    }
                }
            }
        }
    }
}

/// `work` as a [`Work`] (the bound lets the compiler see the closure's lifetimes).
pub(super) fn work<T, F>(work: F) -> Work<T>
where
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<Written<T>, StoreError>>
        + Send
        + 'static,
{
    Box::new(work)
}

/// A queued write and where its caller waits.
struct Pending<T> {
    work: Work<T>,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

/// How a queued write ran.
enum Ran {
    /// Its work is in the transaction: answer its caller once the commit ended.
    Kept(Deliver),
    /// It failed or discarded its work, and its caller has been answered.
    Answered,
    /// The database became unavailable (its caller has been answered): the writes after it
    /// would fail the same way, slowly (each waits out the busy timeout).
    Unavailable,
}

trait Queued: Send {
    /// Runs the write in a savepoint of `txn`.
    fn run<'t>(self: Box<Self>, txn: &'t DatabaseTransaction) -> BoxFuture<'t, Ran>;

    /// Answers the caller with `err`, the write not run.
    fn fail(self: Box<Self>, err: &StoreError);
}

impl<T: Send + 'static> Queued for Pending<T> {
    fn run<'t>(self: Box<Self>, txn: &'t DatabaseTransaction) -> BoxFuture<'t, Ran> {
        let Pending { work, answer } = *self;
        Box::pin(async move {
            // Its caller stopped waiting (its store operation timed out) and was told the
            // database was unavailable: nothing of it may be written now, as on PostgreSQL,
            // where the transaction is rolled back when its caller gives up.
            if answer.is_closed() {
                return Ran::Answered;
            }
            let savepoint = match txn.begin().await {
                Ok(savepoint) => savepoint,
                Err(err) => return answered(answer, Err(err.into())),
            };
            match work(&savepoint).await {
                // Its caller gave up while it ran (waiting on the database's lock, say).
                Ok(Written::Commit(_)) if answer.is_closed() => {
                    let _ = savepoint.rollback().await;
                    Ran::Answered
                }
                Ok(Written::Commit(value)) => match savepoint.commit().await {
                    Ok(()) => Ran::Kept(Box::new(move |committed: Result<(), &StoreError>| {
                        let _ = answer.send(committed.map(|()| value).map_err(shared_failure));
                    })),
                    Err(err) => answered(answer, Err(err.into())),
                },
                Ok(Written::Discard(value)) => {
                    let undone = savepoint.rollback().await.map(|()| value);
                    answered(answer, undone.map_err(StoreError::from))
                }
                Err(err) => {
                    // A failed rollback leaves the savepoint to the transaction's end: `err` is
                    // what the caller needs to know.
                    let _ = savepoint.rollback().await;
                    answered(answer, Err(err))
                }
            }
        })
    }

    fn fail(self: Box<Self>, err: &StoreError) {
        let _ = self.answer.send(Err(shared_failure(err)));
    }
}

/// Answers a write's caller at once.
fn answered<T>(
    answer: oneshot::Sender<Result<T, StoreError>>,
    result: Result<T, StoreError>,
) -> Ran {
    let unavailable = result
        .as_ref()
        .err()
        .is_some_and(StoreError::is_unavailable);
    let _ = answer.send(result);
    if unavailable {
        Ran::Unavailable
    } else {
        Ran::Answered
    }
}

struct Writer {
    db: DatabaseConnection,
    turns: Arc<Semaphore>,
    queue: mpsc::UnboundedReceiver<Job>,
}

impl Writer {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while self.queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
            // Each batch in a task of its own: a write that panics ends only its batch (whose
            // callers see the writer stop), never the writer and every write after it.
            let (db, turns) = (self.db.clone(), Arc::clone(&self.turns));
            let jobs = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
            let result = tokio::spawn(async move { commit(&db, &turns, jobs).await }).await;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(error = %err, "a shared write transaction failed"),
                Err(err) => tracing::error!(error = %err, "a shared write transaction panicked"),
            }
        }
    }
}

/// One transaction for `jobs`; every caller is answered before it returns.
async fn commit(
    db: &DatabaseConnection,
    turns: &Arc<Semaphore>,
    jobs: Vec<Job>,
) -> Result<(), StoreError> {
    let turn = match Arc::clone(turns).acquire_owned().await {
        Ok(turn) => turn,
        Err(_) => return Err(writer_gone()),
    };
    let txn = match db.begin().await {
        Ok(txn) => txn,
        Err(err) => {
            let err = StoreError::from(err);
            for job in jobs {
                job.fail(&err);
            }
            return Err(err);
        }
    };
    let mut delivers = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter();
    let mut unavailable = false;
    for job in jobs.by_ref() {
        match job.run(&txn).await {
            Ran::Kept(deliver) => delivers.push(deliver),
            Ran::Answered => {}
            Ran::Unavailable => {
                unavailable = true;
                break;
            }
        }
    }
    let committed = if unavailable {
        let _ = txn.rollback().await;
        let err = StoreError::Unavailable(DbErr::Custom(
            "the database became unavailable during the transaction".into(),
        ));
        for job in jobs {
            job.fail(&err);
        }
        Err(err)
    } else {
        txn.commit().await.map_err(StoreError::from)
    };
    drop(turn);
    for deliver in delivers {
        deliver(committed.as_ref().map(|_| ()));
    }
    committed
}

/// The error each caller of a failed shared transaction gets (the error itself has one owner).
fn shared_failure(err: &StoreError) -> StoreError {
    let detail = DbErr::Custom(format!("the shared write transaction failed: {err}"));
    if err.is_unavailable() {
        StoreError::Unavailable(detail)
    } else {
        StoreError::Database(detail)
    }
}

fn writer_gone() -> StoreError {
    StoreError::Unavailable(DbErr::Custom(
        "the store's writer stopped before answering (the runtime is shutting down, or a \
         write of the same transaction panicked)"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, Statement};

    type Answer = oneshot::Receiver<Result<&'static str, StoreError>>;

    async fn scratch() -> Result<(tempfile::TempDir, DatabaseConnection), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let store = Store::connect(&url).await?;
        store
            .db
            .execute_unprepared(
                "CREATE TABLE parent (id TEXT PRIMARY KEY); \
                 CREATE TABLE child (id TEXT PRIMARY KEY, parent TEXT \
                   REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
            )
            .await?;
        Ok((dir, store.db.clone()))
    }

    /// A queued write that runs `sql` (`;`-separated statements) and ends as `end` says.
    fn queued(sql: &'static str, end: fn(&'static str) -> Written<&'static str>) -> (Job, Answer) {
        let (answer, answered) = oneshot::channel();
        let work = work(move |txn| {
            Box::pin(async move {
                for statement in sql.split(';') {
                    txn.execute(Statement::from_string(
                        txn.get_database_backend(),
                        statement,
                    ))
                    .await?;
                }
                Ok(end(sql))
            })
        });
        (Box::new(Pending { work, answer }) as Job, answered)
    }

    async fn ids(db: &DatabaseConnection, table: &str) -> Result<Vec<String>, DbErr> {
        let rows = db
            .query_all(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT id FROM {table} ORDER BY id"),
            ))
            .await?;
        rows.iter().map(|r| r.try_get_by_index(0)).collect()
    }

    #[tokio::test]
    async fn each_write_of_a_shared_transaction_keeps_or_undoes_only_its_own_statements(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, db) = scratch().await?;
        let turns = Arc::new(Semaphore::new(1));
        let (kept, kept_answer) = queued("INSERT INTO parent VALUES ('a')", Written::Commit);
        // Its second statement fails (the key is taken): its first must be undone too.
        let (failed, failed_answer) = queued(
            "INSERT INTO parent VALUES ('b'); INSERT INTO parent VALUES ('a')",
            Written::Commit,
        );
        let (discarded, discarded_answer) =
            queued("INSERT INTO parent VALUES ('c')", Written::Discard);
        let (also_kept, also_kept_answer) =
            queued("INSERT INTO parent VALUES ('d')", Written::Commit);
        let result = commit(&db, &turns, vec![kept, failed, discarded, also_kept]).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(kept_answer.await?.is_ok());
        assert!(failed_answer.await?.is_err());
        assert!(discarded_answer.await?.is_ok());
        assert!(also_kept_answer.await?.is_ok());
        assert_eq!(ids(&db, "parent").await?, ["a", "d"]);
        Ok(())
    }

    #[tokio::test]
    async fn a_write_whose_caller_gave_up_is_not_applied() -> Result<(), Box<dyn std::error::Error>>
    {
        let (_dir, db) = scratch().await?;
        let turns = Arc::new(Semaphore::new(1));
        let (kept, kept_answer) = queued("INSERT INTO parent VALUES ('a')", Written::Commit);
        let (abandoned, abandoned_answer) =
            queued("INSERT INTO parent VALUES ('b')", Written::Commit);
        // Its caller's bound ran out while it waited in the queue: it was told UNAVAILABLE.
        drop(abandoned_answer);
        let result = commit(&db, &turns, vec![kept, abandoned]).await;
        assert!(result.is_ok(), "{result:?}");
        assert!(kept_answer.await?.is_ok());
        assert_eq!(ids(&db, "parent").await?, ["a"]);
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_it_carried_and_keeps_none(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (_dir, db) = scratch().await?;
        let turns = Arc::new(Semaphore::new(1));
        let (innocent, innocent_answer) =
            queued("INSERT INTO parent VALUES ('a')", Written::Commit);
        // A deferred foreign key: the statement passes, the COMMIT refuses.
        let (orphan, orphan_answer) =
            queued("INSERT INTO child VALUES ('x', 'nobody')", Written::Commit);
        let result = commit(&db, &turns, vec![innocent, orphan]).await;
        assert!(result.is_err());
        assert!(innocent_answer.await?.is_err());
        assert!(orphan_answer.await?.is_err());
        assert!(ids(&db, "parent").await?.is_empty());
        assert!(ids(&db, "child").await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn queued_writes_are_answered_once_committed() -> Result<(), Box<dyn std::error::Error>> {
        let (dir, _) = scratch().await?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let store = Store::connect(&url).await?;
        // Another store's connections see only what is committed.
        let other = Store::connect(&url).await?;
        let writes = (0..50).map(|i| {
            let (store, other) = (store.clone(), other.clone());
            tokio::spawn(async move {
                let key = format!("{i:02}");
                let answered = store
                    .write(
                        "test",
                        work({
                            let key = key.clone();
                            move |txn| {
                                Box::pin(async move {
                                    txn.execute(Statement::from_sql_and_values(
                                        txn.get_database_backend(),
                                        "INSERT INTO parent VALUES (?)",
                                        [key.into()],
                                    ))
                                    .await?;
                                    Ok(Written::Commit(i))
                                })
                            }
                        }),
                    )
                    .await?;
                // The moment its caller is answered, the write is there for everyone.
                let seen = other
                    .db
                    .query_one(Statement::from_sql_and_values(
                        other.db.get_database_backend(),
                        "SELECT id FROM parent WHERE id = ?",
                        [key.into()],
                    ))
                    .await?
                    .is_some();
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((answered, seen))
            })
        });
        for (i, write) in writes.collect::<Vec<_>>().into_iter().enumerate() {
            let (answered, seen) = write.await?.map_err(|e| e.to_string())?;
            assert_eq!(answered, i);
            assert!(seen, "write {i} was answered before it was committed");
        }
        Ok(())
    }

    /// A write with a bug in it.
    fn panics() -> Result<Written<()>, StoreError> {
        panic!("a bug in one write")
    }

    #[tokio::test]
    async fn a_write_that_panics_fails_its_caller_and_later_writes_still_commit(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (dir, db) = scratch().await?;
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("w.db").display());
        let store = Store::connect(&url).await?;
        let panicked = store
            .write("test", work(|_txn| Box::pin(async { panics() })))
            .await;
        assert!(panicked.is_err());
        let after = store
            .write(
                "test",
                work(|txn| {
                    Box::pin(async move {
                        txn.execute_unprepared("INSERT INTO parent VALUES ('after')")
                            .await?;
                        Ok(Written::Commit(()))
                    })
                }),
            )
            .await;
        assert!(after.is_ok(), "{after:?}");
        assert_eq!(ids(&db, "parent").await?, ["after"]);
        Ok(())
    }
}
