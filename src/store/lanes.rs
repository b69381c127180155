//! PostgreSQL connections for the statements every call makes (a Get, a replay, a capture's
//! three single statements), kept out of sqlx's pool.
//!
//! sqlx tests a connection with a round trip (a `Sync`) every time one goes back to its pool:
//! always, and sqlx 0.8 cannot be told not to. That was a round trip for every statement, so a
//! Get made two and a capture six. A lane goes back without it, since it only goes back after
//! its statement ended with the server's whole answer, so it is in step with the server. One
//! whose statement ended any other way (an error, a broken connection, a caller whose bound ran
//! out and dropped the statement halfway) is closed instead: the case sqlx's test exists for.
//! As in the pool (`pool.rs`, [`needs_test`]), a lane that sat idle long is tested before
//! use, and one that fails the test is replaced.
//!
//! The lanes are part of the store's connections (`CAPTURE_DATABASE_MAX_CONNECTIONS`), not more:
//! [`Lanes::share`] says how many of them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::sea_query::Values;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, Connection, Executor};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement,
};
use sea_query_binder::SqlxValues;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::pool::needs_test;

/// A lane is closed when it goes back after this long, as the pool closes its connections: the
/// server's per-connection state (plans, caches) does not grow for good.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The store's lanes: at most `turns` connections, opened as they are first needed.
pub(super) struct Lanes {
    options: PgConnectOptions,
    idle: Mutex<Vec<Idle>>,
    turns: Semaphore,
    max: usize,
    acquire_timeout: Duration,
    /// [`MAX_LIFETIME`].
    max_lifetime: Duration,
}

struct Idle {
    connection: PgConnection,
    opened: Instant,
    since: Instant,
}

impl Lanes {
    /// How many of `max_connections` are lanes: half, so the pool keeps the other half for the
    /// rest (transactions, lists, leases, the reconciler, readiness). None below 4.
    pub fn share(max_connections: u32) -> u32 {
        if max_connections < 4 {
            0
        } else {
            max_connections / 2
        }
    }

    pub fn new(options: PgConnectOptions, count: u32, acquire_timeout: Duration) -> Lanes {
        Lanes {
            options,
            idle: Mutex::default(),
            turns: Semaphore::new(count as usize),
            max: count as usize,
            acquire_timeout,
            max_lifetime: MAX_LIFETIME,
        }
    }

    /// Lanes in use, idle, and at most.
    pub fn connections(&self) -> (u64, u64, u64) {
        let max = self.max as u64;
        let idle = self.idle.lock().map_or(0, |idle| idle.len()) as u64;
        (max - self.turns.available_permits() as u64, idle, max)
    }

    /// A lane: an idle one (tested first if it has been idle long), or a new connection.
    async fn take(&self) -> Result<Lane<'_>, DbErr> {
        let turn = tokio::time::timeout(self.acquire_timeout, self.turns.acquire())
            .await
            .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))?
            .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))?;
        let idle = self.idle.lock().map_or(None, |mut idle| idle.pop());
        let (connection, opened) = match idle {
            Some(idle) if !needs_test(idle.since.elapsed()) => (idle.connection, idle.opened),
            Some(mut idle) => match idle.connection.ping().await {
                Ok(()) => (idle.connection, idle.opened),
                // Broken while idle (the server restarted, a cut): replaced.
                Err(_) => (self.open().await?, Instant::now()),
            },
            None => (self.open().await?, Instant::now()),
        };
        Ok(Lane {
            lanes: self,
            connection: Some(connection),
            opened,
            _turn: turn,
        })
    }

    async fn open(&self) -> Result<PgConnection, DbErr> {
        tokio::time::timeout(
            self.acquire_timeout,
            PgConnection::connect_with(&self.options),
        )
        .await
        .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))?
        .map_err(|err| DbErr::Conn(RuntimeErr::SqlxError(err)))
    }
}

/// A lane in use. Dropped without [`Lane::finish`] seeing its statement end well, its
/// connection is closed, not kept.
struct Lane<'a> {
    lanes: &'a Lanes,
    connection: Option<PgConnection>,
    opened: Instant,
    _turn: SemaphorePermit<'a>,
}

impl Lane<'_> {
    fn connection(&mut self) -> Result<&mut PgConnection, DbErr> {
        self.connection
            .as_mut()
            .ok_or(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))
    }

    /// Keeps the connection for the next statement if `done` is the server's whole answer.
    fn finish<T>(mut self, done: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if done.is_ok() && self.opened.elapsed() < self.lanes.max_lifetime {
            if let (Some(connection), Ok(mut idle)) =
                (self.connection.take(), self.lanes.idle.lock())
            {
                idle.push(Idle {
                    connection,
                    opened: self.opened,
                    since: Instant::now(),
                });
            }
        }
        done
    }
}

/// `sql` with its values, which are moved to the driver (not copied).
fn query(sql: &str, values: Option<Values>) -> sqlx::query::Query<'_, sqlx::Postgres, SqlxValues> {
    sqlx::query_with(sql, SqlxValues(values.unwrap_or(Values(Vec::new()))))
}

#[async_trait::async_trait]
impl ConnectionTrait for Lanes {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn execute(&self, statement: Statement) -> Result<ExecResult, DbErr> {
        let mut lane = self.take().await?;
        let Statement { sql, values, .. } = statement;
        let done = query(&sql, values).execute(lane.connection()?).await;
        lane.finish(done)
            .map(ExecResult::from)
            .map_err(|err| DbErr::Exec(RuntimeErr::SqlxError(err)))
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut lane = self.take().await?;
        let done = lane.connection()?.execute(sql).await;
        lane.finish(done)
            .map(ExecResult::from)
            .map_err(|err| DbErr::Exec(RuntimeErr::SqlxError(err)))
    }

    async fn query_one(&self, statement: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut lane = self.take().await?;
        let Statement { sql, values, .. } = statement;
        let done = query(&sql, values).fetch_optional(lane.connection()?).await;
        lane.finish(done)
            .map(|row| row.map(QueryResult::from))
            .map_err(|err| DbErr::Query(RuntimeErr::SqlxError(err)))
    }

    async fn query_all(&self, statement: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut lane = self.take().await?;
        let Statement { sql, values, .. } = statement;
        let done = query(&sql, values).fetch_all(lane.connection()?).await;
        lane.finish(done)
            .map(|rows| rows.into_iter().map(QueryResult::from).collect())
            .map_err(|err| DbErr::Query(RuntimeErr::SqlxError(err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The local server's `postgres` database, as the black-box tests reach it.
    fn options() -> Result<PgConnectOptions, sqlx::Error> {
        let base = std::env::var("CAPTURE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
        format!("{base}/postgres").parse()
    }

    /// The server process behind the lane a statement ran on.
    async fn backend(lanes: &Lanes) -> Result<i32, DbErr> {
        let statement = Statement::from_string(DbBackend::Postgres, "SELECT pg_backend_pid()");
        let row = lanes.query_one(statement).await?;
        row.ok_or(DbErr::RecordNotFound("no row".into()))?
            .try_get_by_index(0)
    }

    #[tokio::test]
    async fn a_lane_is_used_again_until_its_lifetime_ends_then_closed() -> Result<(), DbErr> {
        let lasting = Lanes::new(options().map_err(sqlx_err)?, 1, Duration::from_secs(5));
        let first = backend(&lasting).await?;
        assert_eq!(lasting.connections(), (0, 1, 1), "kept when it went back");
        assert_eq!(backend(&lasting).await?, first, "the same connection");

        let spent = Lanes {
            max_lifetime: Duration::ZERO,
            ..Lanes::new(options().map_err(sqlx_err)?, 1, Duration::from_secs(5))
        };
        let first = backend(&spent).await?;
        assert_eq!(spent.connections(), (0, 0, 1), "closed when it went back");
        assert_ne!(backend(&spent).await?, first, "a new connection");
        Ok(())
    }

    fn sqlx_err(err: sqlx::Error) -> DbErr {
        DbErr::Conn(RuntimeErr::SqlxError(err))
    }
}
