//! The connection pool: sqlx's, opened here rather than by sea-orm's `Database::connect` for
//! the one setting sea-orm does not expose: which connections are tested before use.
//!
//! sqlx tests every connection it hands out by default (`test_before_acquire`): on PostgreSQL
//! a `Sync` round trip to the server, on SQLite a hop to the connection's thread and back.
//! - A SQLite connection is a file this process holds open: the test (a tenth of a Get's CPU)
//!   learns nothing, and is never made.
//! - On PostgreSQL the test was a round trip more for every statement (a capture's three
//!   statements made nine with the test sqlx always makes as a connection goes back). Here, as
//!   HikariCP does (`aliveBypassWindowMs`), only a connection idle for [`TEST_AFTER_IDLE`] or
//!   more is tested: one that answered a moment ago is as alive as a test would show, and after
//!   an outage the idle ones are replaced before a statement is sent on them. A connection that
//!   dies in between fails its statement, as one that dies just after a test always could: the
//!   callers report that as the database being unavailable (`unavailable.rs`, which counts the
//!   server ending an idle transaction among those), and sqlx does not return a broken
//!   connection to the pool. `capture-faults --scenario db_outage` is the guard.

use std::time::Duration;

use sea_orm::sqlx::pool::PoolOptions;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sea_orm::sqlx::{ConnectOptions, Connection, Database};
use sea_orm::{DatabaseConnection, DbErr, RuntimeErr, SqlxPostgresConnector, SqlxSqliteConnector};

use super::lanes::Lanes;
use super::PoolSettings;

/// How long a connection may sit idle before it is tested on its way out of the pool.
const TEST_AFTER_IDLE: Duration = Duration::from_millis(500);

/// Whether a connection idle for `idle_for` is tested before use (the pool's and the lanes'
/// rule).
pub(super) fn needs_test(idle_for: Duration) -> bool {
    idle_for >= TEST_AFTER_IDLE
}

/// Opens the pool of `url` (`sqlite:…` or `postgres://…`), and on PostgreSQL the lanes of the
/// statements every call makes (`lanes.rs`), a share of the connections the pool does not get.
pub async fn open(
    url: &str,
    settings: PoolSettings,
) -> Result<(DatabaseConnection, Option<Lanes>), DbErr> {
    if url.starts_with("sqlite:") {
        let options = url
            .parse::<SqliteConnectOptions>()
            .map_err(connection_error)?
            .disable_statement_logging()
            .journal_mode(SqliteJournalMode::Wal)
            // Writers of this process take turns (`Store::writers`), so only another process
            // holds the lock: wait for it as long as for a connection, then report it.
            .busy_timeout(settings.acquire_timeout)
            .foreign_keys(true);
        let pool = pool_options(settings.max_connections, &settings)
            .connect_with(options)
            .await
            .map_err(connection_error)?;
        Ok((SqlxSqliteConnector::from_sqlx_sqlite_pool(pool), None))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut options = url
            .parse::<PgConnectOptions>()
            .map_err(connection_error)?
            .disable_statement_logging();
        if let Some(timeout) = settings.statement_timeout {
            // The server ends a statement, and a transaction left idle by a client that went
            // away, at the bound (so it releases the rows it locked); its keepalives notice a
            // client that vanished. The client side bounds each operation itself
            // (`Store::bounded`): a network that drops packets never lets the server's answer
            // reach it.
            let millis = timeout.as_millis().to_string();
            options = options.options([
                ("statement_timeout", millis.as_str()),
                ("idle_in_transaction_session_timeout", millis.as_str()),
                ("tcp_keepalives_idle", "30"),
                ("tcp_keepalives_interval", "10"),
                ("tcp_keepalives_count", "3"),
            ]);
        }
        let lanes = Lanes::share(settings.max_connections);
        let pool = pool_options(settings.max_connections - lanes, &settings)
            .before_acquire(|connection: &mut PgConnection, meta| {
                Box::pin(async move {
                    if needs_test(meta.idle_for) {
                        // An error closes this connection, and the pool hands out another.
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(connection_error)?;
        let lanes = (lanes > 0).then(|| Lanes::new(options, lanes, settings.acquire_timeout));
        Ok((SqlxPostgresConnector::from_sqlx_postgres_pool(pool), lanes))
    } else {
        // The URL is not repeated: it may hold a password.
        Err(DbErr::Conn(RuntimeErr::Internal(
            "the database URL must start with sqlite: or postgres://".to_owned(),
        )))
    }
}

/// A pool of `size` connections that tests none as it hands them out (the module's comment says
/// which are tested, and how).
fn pool_options<DB: Database>(size: u32, settings: &PoolSettings) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(size)
        .acquire_timeout(settings.acquire_timeout)
        .test_before_acquire(false)
}

/// sea-orm's error for a pool that could not open, as its own `Database::connect` gives it.
fn connection_error(error: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(error))
}
