//! Which database errors mean "the database is not there right now" rather than "this
//! statement is wrong": the first become `UNAVAILABLE` (retry with the same `request_id`), the
//! second stay internal errors.

use sea_orm::sqlx;
use sea_orm::{DbErr, RuntimeErr};

/// PostgreSQL SQLSTATE classes and codes that say the server or the connection failed, or the
/// transaction lost a race it may win when retried.
/// <https://www.postgresql.org/docs/current/errcodes-appendix.html>
const POSTGRES_TRANSIENT_CLASSES: &[&str] = &[
    "08", // connection exception
    "53", // insufficient resources (too many connections, out of memory, disk full)
    "57", // operator intervention (admin shutdown, crash shutdown, cannot connect now)
];
const POSTGRES_TRANSIENT_CODES: &[&str] = &[
    "40001", // serialization failure
    "40P01", // deadlock detected
    "55P03", // lock not available
    // The server ended a transaction left idle past `idle_in_transaction_session_timeout` and
    // closed the connection (class 25, "invalid transaction state", holds statement errors too):
    // nothing of it was committed, and a new connection may go on.
    "25P03", // idle in transaction session timeout
];

/// SQLite primary result codes of a database that is busy or whose file cannot be used now.
/// <https://www.sqlite.org/rescode.html>
const SQLITE_TRANSIENT_CODES: &[i64] = &[
    5,  // SQLITE_BUSY
    6,  // SQLITE_LOCKED
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
];

pub(super) fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unavailable(e)
        }
        _ => false,
    }
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                code.parse::<i64>()
                    .is_ok_and(|c| SQLITE_TRANSIENT_CODES.contains(&(c & 0xff)))
            } else {
                POSTGRES_TRANSIENT_CODES.contains(&code.as_ref())
                    || POSTGRES_TRANSIENT_CLASSES
                        .iter()
                        .any(|class| code.starts_with(class))
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_and_pool_timeouts_are_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_unavailable(&DbErr::Query(RuntimeErr::SqlxError(
            sqlx::Error::Io(io)
        ))));
        assert!(is_unavailable(&DbErr::Exec(RuntimeErr::SqlxError(
            sqlx::Error::PoolTimedOut
        ))));
        assert!(is_unavailable(&DbErr::ConnectionAcquire(
            sea_orm::ConnAcquireErr::Timeout
        )));
    }

    #[test]
    fn a_connection_the_server_ended_is_unavailable() {
        for code in ["25P03", "57P01", "08006"] {
            assert!(sqlx_unavailable(&postgres_error(code)), "{code}");
        }
        // The rest of class 25 is the statement's own fault.
        assert!(!sqlx_unavailable(&postgres_error("25P02")));
    }

    /// A server error with SQLSTATE `code`, as the driver reports one.
    fn postgres_error(code: &str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(ServerError(code.to_owned())))
    }

    #[derive(Debug)]
    struct ServerError(String);

    impl std::fmt::Display for ServerError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "server error {}", self.0)
        }
    }

    impl std::error::Error for ServerError {}

    impl sqlx::error::DatabaseError for ServerError {
        fn message(&self) -> &str {
            "ended"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.as_str().into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn statement_errors_are_not() {
        assert!(!is_unavailable(&DbErr::Query(RuntimeErr::SqlxError(
            sqlx::Error::RowNotFound
        ))));
        assert!(!is_unavailable(&DbErr::Custom("bug".into())));
        assert!(!is_unavailable(&DbErr::RecordNotFound("x".into())));
    }
}
