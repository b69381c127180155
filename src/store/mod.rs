//! Persistence with sea-orm, identical on SQLite and PostgreSQL.

pub mod captures;
mod convert;
pub mod entities;
mod ledger;
mod resolve;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use migrations::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::SqliteJournalMode;
use std::sync::Arc;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};

pub use captures::{Begin, LedgerRefusal, ListPage, ListQuery, NewCapture, Resolution};
pub use resolve::DueCapture;

/// A store failure. Internal: the caller sees an opaque message, the logs the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("stored capture {id} cannot be read back: {problem}")]
    Corrupt { id: String, problem: String },
    #[error("capture {0} does not exist")]
    Missing(String),
}

/// The database, migrated and ready.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    /// SQLite has one writer at a time: writers of this process queue here, in order, instead
    /// of contending in SQLite's busy handler, whose sleeps make long tail latencies.
    /// PostgreSQL locks rows and needs none.
    sqlite_writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

/// Held for the length of a write transaction (SQLite only).
pub(crate) type WriteGuard = Option<tokio::sync::OwnedMutexGuard<()>>;

impl Store {
    /// Connects to `sqlite:…` or `postgres://…`. SQLite runs in WAL mode with a busy timeout,
    /// so readers never block the single writer and writers queue instead of failing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .sqlx_logging(false)
            .max_connections(16)
            .connect_timeout(Duration::from_secs(10))
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
            });
        let db = Database::connect(options).await?;
        let sqlite_writer = (db.get_database_backend() == DbBackend::Sqlite)
            .then(|| Arc::new(tokio::sync::Mutex::new(())));
        Ok(Store { db, sqlite_writer })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.execute_unprepared("SELECT 1").await?;
        Ok(())
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Waits for this process's turn to write (SQLite); a no-op on PostgreSQL.
    pub(crate) async fn write_turn(&self) -> WriteGuard {
        match &self.sqlite_writer {
            Some(lock) => Some(Arc::clone(lock).lock_owned().await),
            None => None,
        }
    }
}

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
