//! The database a run uses: a fresh SQLite file or PostgreSQL database, removed afterwards,
//! or one the caller gives. Shared by `capture-bench` and `capture-faults`.

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database as Connect};

use crate::processes::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    pub fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }

    pub fn parse(name: &str) -> Option<Db> {
        match name {
            "sqlite" => Some(Db::Sqlite),
            "postgres" | "postgresql" => Some(Db::Postgres),
            _ => None,
        }
    }
}

/// A database for one scenario, removed afterwards when the bench made it.
pub struct Database {
    pub url: String,
    made: Made,
}

enum Made {
    /// A SQLite file in a directory of its own, removed with it.
    File(#[allow(dead_code)] TempDir),
    /// A database this bench created on a PostgreSQL server, dropped when done.
    Postgres { admin_url: String, name: String },
    /// The caller's `--database-url`: left as it is.
    Given,
}

const DEFAULT_POSTGRES_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The PostgreSQL server's admin URL: `CAPTURE_BENCH_POSTGRES_ADMIN_URL`, or the local one.
fn postgres_admin_url() -> String {
    std::env::var("CAPTURE_BENCH_POSTGRES_ADMIN_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_ADMIN_URL.to_owned())
}

/// Where that server listens (its address given as `host:port`, an IP address).
pub fn postgres_server() -> anyhow::Result<std::net::SocketAddr> {
    let url = postgres_admin_url();
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|authority| authority.rsplit('@').next().unwrap_or(authority))
        .with_context(|| format!("no server in {url}"))?;
    let with_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:5432")
    };
    with_port
        .parse()
        .with_context(|| format!("{with_port}: the server must be given by IP address"))
}

impl Database {
    /// A new database for `label` (a scenario's name), or `given` as it is.
    pub async fn fresh(db: Db, label: &str, given: Option<&str>) -> anyhow::Result<Database> {
        if let Some(url) = given {
            return Ok(Database {
                url: url.to_owned(),
                made: Made::Given,
            });
        }
        match db {
            Db::Sqlite => {
                let dir = TempDir::new(label)?;
                Ok(Database {
                    url: format!(
                        "sqlite://{}?mode=rwc",
                        dir.path().join("capture.db").display()
                    ),
                    made: Made::File(dir),
                })
            }
            Db::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("capture_harness_{}_{label}", std::process::id());
                let admin = Connect::connect(&admin_url)
                    .await
                    .with_context(|| format!("connecting to {admin_url}"))?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await?;
                admin.close().await?;
                let (base, _) = admin_url
                    .rsplit_once('/')
                    .context("the admin URL names no database")?;
                Ok(Database {
                    url: format!("{base}/{name}"),
                    made: Made::Postgres { admin_url, name },
                })
            }
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Made::Postgres { admin_url, name } = &self.made {
            let (admin_url, dropping) = (admin_url.clone(), name.clone());
            // Drop runs inside the runtime: drop the database from a thread of its own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let admin = Connect::connect(&admin_url).await?;
                    admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS {dropping} WITH (FORCE)"
                        ))
                        .await?;
                    admin.close().await?;
                    anyhow::Ok(())
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop the database {name} made for a run");
            }
        }
    }
}
