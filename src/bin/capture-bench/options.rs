//! The command line.

use std::time::Duration;

pub const USAGE: &str = "usage: capture-bench --scenario all|NAME --db sqlite|postgres \
[--database-url URL] [--concurrency N] [--seconds S]
scenarios: echo db_ceiling db_read_ceiling capture capture_replay get list_10k list_1m \
capture_slow_provider capture_watched idle
--db postgres without --database-url makes a fresh database per scenario on the local server \
(CAPTURE_BENCH_POSTGRES_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres) and \
drops it afterwards";

/// Every scenario, in the order `all` runs them: each ceiling before what it bounds.
pub const ALL: [Scenario; 11] = [
    Scenario::Echo,
    Scenario::DbCeiling,
    Scenario::DbReadCeiling,
    Scenario::Capture,
    Scenario::CaptureReplay,
    Scenario::Get,
    Scenario::List10k,
    Scenario::List1m,
    Scenario::CaptureSlowProvider,
    Scenario::CaptureWatched,
    Scenario::Idle,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Echo,
    DbCeiling,
    DbReadCeiling,
    Capture,
    CaptureReplay,
    Get,
    List10k,
    List1m,
    CaptureSlowProvider,
    /// `capture` while watchers follow every change (and some never read).
    CaptureWatched,
    Idle,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Echo => "echo",
            Scenario::DbCeiling => "db_ceiling",
            Scenario::DbReadCeiling => "db_read_ceiling",
            Scenario::Capture => "capture",
            Scenario::CaptureReplay => "capture_replay",
            Scenario::Get => "get",
            Scenario::List10k => "list_10k",
            Scenario::List1m => "list_1m",
            Scenario::CaptureSlowProvider => "capture_slow_provider",
            Scenario::CaptureWatched => "capture_watched",
            Scenario::Idle => "idle",
        }
    }
}

pub use crate::fresh_database::Db;

#[derive(Debug, Clone)]
pub struct Options {
    pub scenarios: Vec<Scenario>,
    pub db: Db,
    pub database_url: Option<String>,
    /// Concurrent callers; `None` is each scenario's own default.
    pub concurrency: Option<usize>,
    pub duration: Duration,
}

/// Callers when `--concurrency` is not given.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// The slow-provider scenario's callers, from its definition (issue 8).
pub const SLOW_PROVIDER_CONCURRENCY: usize = 1000;

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut scenario = None;
        let mut db = None;
        let mut database_url = None;
        let mut concurrency = None;
        let mut seconds = 10.0f64;
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let mut value = || {
                rest.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--scenario" => scenario = Some(value()?),
                "--db" => db = Some(value()?),
                "--database-url" => database_url = Some(value()?),
                "--concurrency" => {
                    let v = value()?;
                    concurrency = Some(
                        v.parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("--concurrency {v:?}: a positive number"))?,
                    );
                }
                "--seconds" => {
                    let v = value()?;
                    seconds = v
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                        .ok_or_else(|| format!("--seconds {v:?}: a number of seconds"))?;
                }
                "-h" | "--help" => return Err("capture-bench".into()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let scenario = scenario.ok_or("--scenario is required")?;
        let scenarios = if scenario == "all" {
            ALL.to_vec()
        } else {
            vec![ALL
                .into_iter()
                .find(|s| s.name() == scenario)
                .ok_or_else(|| format!("unknown scenario {scenario:?}"))?]
        };
        let db = match db.as_deref() {
            Some(name) => {
                Db::parse(name).ok_or_else(|| format!("--db {name:?}: sqlite or postgres"))?
            }
            None => return Err("--db is required".into()),
        };
        if let Some(url) = &database_url {
            let matches = match db {
                Db::Sqlite => url.starts_with("sqlite:"),
                Db::Postgres => url.starts_with("postgres://") || url.starts_with("postgresql://"),
            };
            if !matches {
                return Err(format!("--database-url is not a {} URL", db.name()));
            }
        }
        Ok(Options {
            scenarios,
            db,
            database_url,
            concurrency,
            duration: Duration::from_secs_f64(seconds),
        })
    }

    pub fn concurrency_or(&self, default: usize) -> usize {
        self.concurrency.unwrap_or(default)
    }
}
