//! The database outages of the black-box tests (the module `capture-faults` uses too), aimed at
//! the tests' own PostgreSQL.

use std::net::SocketAddr;

#[path = "../../src/bin/shared/db_outage.rs"]
mod shared;

pub use shared::{Outage, Target};
// Only the api tests count round trips at the proxy.
#[allow(unused_imports)]
pub use shared::TcpProxy;

use super::Db;

/// An outage of `db`: the tests' PostgreSQL server (from `CAPTURE_TEST_POSTGRES_URL`), or the
/// app's SQLite file.
pub async fn outage_of(db: Db) -> std::io::Result<Outage> {
    Outage::prepare(match db {
        Db::Postgres => Target::Postgres(postgres_addr()),
        Db::Sqlite => Target::Sqlite,
    })
    .await
}

/// Where the tests' PostgreSQL listens.
fn postgres_addr() -> SocketAddr {
    let base = super::postgres_base();
    let host_port = base
        .rsplit('@')
        .next()
        .unwrap_or("127.0.0.1:5432")
        .trim_end_matches('/');
    host_port
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5432)))
}
