//! Persistence with sea-orm, identical on SQLite and PostgreSQL.

mod authorizations;
pub mod captures;
mod changes;
mod convert;
pub mod entities;
mod feed;
mod lanes;
mod lease;
mod ledger;
mod pool;
mod read;
mod resolve;
mod single_statement;
mod sql;
mod sqlite;
mod unavailable;
mod webhooks;
mod writer;

use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use std::sync::Arc;

use sea_orm::{ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

pub use captures::{
    Begin, EventSource, LedgerRefusal, ListPage, ListQuery, NewCapture, Resolution,
};
pub use changes::{Change, ChangeFilter};
pub use lease::DueCapture;
pub use sql::statement as sql_statement;
pub use webhooks::{NewWebhook, StoredWebhook};

/// A store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, the connection was lost mid-transaction, or no
    /// connection came free in time: nothing is wrong with the request, a retry may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] DbErr),
    /// Anything else the database refused: a bug of ours (the caller sees an opaque message).
    #[error("database error: {0}")]
    Database(#[source] DbErr),
    #[error("stored capture {id} cannot be read back: {problem}")]
    Corrupt { id: String, problem: String },
    #[error("capture {0} does not exist")]
    Missing(String),
    /// The operation did not finish within its bound ([`PoolSettings::statement_timeout`]): the
    /// database stopped answering, or answers too slowly. Whether a write took effect is not
    /// known; a retry finds out.
    #[error("database unavailable: no answer within {0:?}")]
    TimedOut(Duration),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if unavailable::is_unavailable(&err) {
            crate::telemetry::metrics::metrics().store_unavailable.inc();
            StoreError::Unavailable(err)
        } else {
            StoreError::Database(err)
        }
    }
}

impl StoreError {
    /// Whether a retry of the same request may succeed once the database is back.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::TimedOut(_))
    }
}

/// How the store uses its connection pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// Connections writes may not take (PostgreSQL), so reads still answer while captures
    /// storm: half among the lanes, half in the pool. SQLite has a single writer anyway.
    pub reserved_for_reads: u32,
    /// How long a statement waits for a connection (or a write for its turn) before the store
    /// reports the database unavailable.
    pub acquire_timeout: Duration,
    /// How often the change feed reads the trail for other processes' writes, besides their
    /// notices (PostgreSQL `NOTIFY`).
    pub change_poll: Duration,
    /// The longest one operation (a transaction, a read) may take, here and, on PostgreSQL, as
    /// the sessions' `statement_timeout` and `idle_in_transaction_session_timeout`; `None` for
    /// migrations, which may take long.
    pub statement_timeout: Option<Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 16,
            reserved_for_reads: 4,
            acquire_timeout: Duration::from_secs(2),
            change_poll: feed::POLL,
            statement_timeout: Some(Duration::from_secs(5)),
        }
    }
}

/// The database, migrated and ready.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// On PostgreSQL, the connections of the statements every call makes (`lanes`); `None`,
    /// those go to the pool like the rest.
    lanes: Option<Arc<lanes::Lanes>>,
    /// Turns to write. SQLite has one writer at a time: writers of this process queue here, in
    /// order, instead of contending in SQLite's busy handler, whose sleeps make long tail
    /// latencies. PostgreSQL locks rows; its writers may hold half of what the read reserve
    /// leaves, since each holds a lane or a pooled connection (`connect_with`).
    writers: Arc<Semaphore>,
    /// SQLite's writes, committed in groups (`writer`); `None` on PostgreSQL.
    group_commit: Option<writer::GroupCommit>,
    acquire_timeout: Duration,
    /// The bound of one operation ([`PoolSettings::statement_timeout`]).
    operation_timeout: Option<Duration>,
    /// How far watchers may read the audit trail.
    feed: feed::Feed,
    /// This store's name on the leases it takes: another process's lease keeps it away, its
    /// own does not (its in-flight table guards its own calls).
    lease_owner: String,
    /// Whether a capture's two writes are single statements ([`single_statement`]): on
    /// PostgreSQL.
    single_statement_writes: bool,
    /// How many writes this store made as single statements (the rest took the general path).
    single_statements_made: Arc<std::sync::atomic::AtomicU64>,
}

/// Held for the length of a write transaction.
pub type WriteGuard = OwnedSemaphorePermit;

impl Store {
    /// Connects to `sqlite:…` or `postgres://…` with the default pool.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, PoolSettings::default()).await
    }

    /// Connects to `sqlite:…` or `postgres://…`. SQLite runs in WAL mode with a busy timeout,
    /// so readers never block the single writer and writers queue instead of failing.
    pub async fn connect_with(url: &str, pool: PoolSettings) -> Result<Self, StoreError> {
        sqlite::configure();
        let (db, lanes) = pool::open(url, pool).await?;
        let unreserved = pool.max_connections.saturating_sub(pool.reserved_for_reads);
        let writers = match (db.get_database_backend(), &lanes) {
            (DbBackend::Sqlite, _) => 1,
            // A write holds a lane or a pooled connection: each half keeps half the reserve
            // for reads, whichever the writes crowd.
            (_, Some(_)) => (unreserved / 2).max(1),
            (_, None) => unreserved.max(1),
        };
        let writers = Arc::new(Semaphore::new(writers as usize));
        let feed = feed::Feed::new(db.clone(), url, pool.change_poll);
        let group_commit = (db.get_database_backend() == DbBackend::Sqlite)
            .then(|| writer::GroupCommit::start(db.clone(), Arc::clone(&writers)));
        let single_statement_writes = db.get_database_backend() == DbBackend::Postgres;
        Ok(Store {
            db,
            lanes: lanes.map(Arc::new),
            writers,
            group_commit,
            acquire_timeout: pool.acquire_timeout,
            operation_timeout: pool.statement_timeout,
            feed,
            lease_owner: lease::new_owner(),
            single_statement_writes,
            single_statements_made: Arc::default(),
        })
    }

    /// Applies every pending migration on a connection of its own, then opens the pool. No
    /// pooled connection has seen the schema as it was before: the drivers keep what a
    /// statement returns from when they first prepared it, and a migration that adds columns
    /// would make those go stale (seen with SQLite: rows with a column missing).
    pub async fn connect_migrated(url: &str, pool: PoolSettings) -> Result<Self, StoreError> {
        let single = PoolSettings {
            max_connections: 1,
            statement_timeout: None,
            ..pool
        };
        let migrator = Self::connect_with(url, single).await?;
        migrator.migrate().await?;
        migrator.db.close().await?;
        Self::connect_with(url, pool).await
    }

    /// Applies every pending migration. Connections of this store opened before keep their
    /// prepared statements: start serving through [`Store::connect_migrated`] instead.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// This store with a capture's writes made as single statements or not. Off, every write
    /// takes the general path (a transaction that locks the ledger row), as on SQLite: for the
    /// tests that hold the two paths to the same result, and to measure what the single
    /// statements save. They are made on PostgreSQL only.
    #[doc(hidden)]
    pub fn with_single_statement_writes(mut self, on: bool) -> Self {
        self.single_statement_writes = on && self.db.get_database_backend() == DbBackend::Postgres;
        self
    }

    /// How many writes this store (and its clones) made as single statements: tests tell by it
    /// that the single statements were taken, not the general path they fall back to.
    #[doc(hidden)]
    pub fn single_statements_made(&self) -> u64 {
        self.single_statements_made
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Counts a write made as a single statement, and wakes the change feed for it.
    fn single_statement_committed(&self) {
        self.single_statements_made
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.feed.committed();
    }

    /// Where the statements every call makes go: the lanes, or else the pool.
    fn hot(&self) -> &dyn ConnectionTrait {
        match &self.lanes {
            Some(lanes) => lanes.as_ref(),
            None => &self.db,
        }
    }

    /// Whether the database answers (readiness), within the operation bound.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.bounded("ping", async {
            self.db.execute_unprepared("SELECT 1").await?;
            Ok(())
        })
        .await
    }

    /// The store's connections (the pool's and the lanes'): in use, idle, and at most.
    pub fn pool_connections(&self) -> (u64, u64, u64) {
        fn of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> (u64, u64, u64) {
            let idle = pool.num_idle() as u64;
            let open = u64::from(pool.size());
            (
                open.saturating_sub(idle),
                idle,
                u64::from(pool.options().get_max_connections()),
            )
        }
        let (in_use, idle, max) = match self.db.get_database_backend() {
            DbBackend::Postgres => of(self.db.get_postgres_connection_pool()),
            _ => of(self.db.get_sqlite_connection_pool()),
        };
        let (lanes_in_use, lanes_idle, lanes) = self
            .lanes
            .as_ref()
            .map_or((0, 0, 0), |lanes| lanes.connections());
        (in_use + lanes_in_use, idle + lanes_idle, max + lanes)
    }

    /// Runs one operation within the bound of [`PoolSettings::statement_timeout`]. A database
    /// behind a network that drops packets answers nothing and closes nothing: only this bound
    /// ends the wait. The operation is dropped there (a transaction is rolled back, or its
    /// connection closed when the ping sqlx makes on its return fails).
    async fn bounded<T>(
        &self,
        operation: &'static str,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        // A DEBUG span: free unless traces are exported (or CAPTURE_LOG asks for it).
        let span = tracing::debug_span!(
            "store",
            operation,
            db.system = self.system_name(),
            outcome = tracing::field::Empty,
        );
        let result = match self.operation_timeout {
            None => work.instrument(span.clone()).await,
            Some(bound) => match tokio::time::timeout(bound, work.instrument(span.clone())).await {
                Ok(result) => result,
                Err(_) => {
                    crate::telemetry::metrics::metrics().store_unavailable.inc();
                    Err(StoreError::TimedOut(bound))
                }
            },
        };
        if !span.is_disabled() {
            span.record(
                "outcome",
                match &result {
                    Ok(_) => "ok",
                    Err(StoreError::TimedOut(_)) => "timeout",
                    Err(_) => "error",
                },
            );
        }
        result
    }

    /// The database's name in OpenTelemetry's `db.system` terms.
    fn system_name(&self) -> &'static str {
        match self.db.get_database_backend() {
            DbBackend::Postgres => "postgresql",
            _ => "sqlite",
        }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Waits for a turn to write, as long as a connection may be waited for. Public so that
    /// the benchmark's database ceiling writes exactly as the store does.
    pub async fn write_turn(&self) -> Result<WriteGuard, StoreError> {
        match tokio::time::timeout(
            self.acquire_timeout,
            Arc::clone(&self.writers).acquire_owned(),
        )
        .await
        {
            Ok(Ok(turn)) => Ok(turn),
            Ok(Err(_)) | Err(_) => Err(StoreError::Unavailable(DbErr::ConnectionAcquire(
                ConnAcquireErr::Timeout,
            ))),
        }
    }
}

pub use crate::domain::record::now_micros;
