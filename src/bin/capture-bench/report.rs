//! One scenario's JSON line.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::load::Measured;
use crate::options::{Options, Scenario};

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub db: &'static str,
    pub concurrency: usize,
    pub ops: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub errors: u64,
    /// The measured server's CPU time (user + system) per call; `None` with no server.
    pub service_cpu_ms_per_op: Option<f64>,
    /// The measured server's peak resident memory during the run.
    pub service_rss_mb: Option<f64>,
    /// What else a scenario tells: its first error, rows stored, readiness time.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The server whose CPU and memory a run is charged to.
pub struct ServerUse {
    pub cpu: Duration,
    pub peak_rss_mb: f64,
    /// The other roles' CPU per call over the same span (`machine::per_call`).
    pub roles: Map<String, Value>,
}

fn rounded(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

impl Report {
    pub fn new(
        scenario: Scenario,
        options: &Options,
        concurrency: usize,
        mut measured: Measured,
        server: Option<ServerUse>,
    ) -> Report {
        let ops = measured.ops();
        let mut extra = Map::new();
        if let Some(server) = &server {
            extra.extend(server.roles.clone());
        }
        if let Some(error) = measured.first_error.take() {
            extra.insert("first_error".into(), Value::String(error));
        }
        Report {
            scenario: scenario.name(),
            db: options.db.name(),
            concurrency,
            ops,
            seconds: rounded(measured.elapsed.as_secs_f64()),
            rps: rounded(measured.rps()),
            p50_ms: measured.percentile_ms(0.50).map(rounded),
            p90_ms: measured.percentile_ms(0.90).map(rounded),
            p99_ms: measured.percentile_ms(0.99).map(rounded),
            errors: measured.errors,
            service_cpu_ms_per_op: server.as_ref().and_then(|s| {
                (ops > 0).then(|| rounded(s.cpu.as_secs_f64() * 1000.0 / ops as f64))
            }),
            service_rss_mb: server.map(|s| rounded(s.peak_rss_mb)),
            extra,
        }
    }

    pub fn with_fields(mut self, fields: Map<String, Value>) -> Report {
        self.extra.extend(fields);
        self
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Report {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The ceilings measured earlier in the same run, and each figure as a share of the one that
/// bounds it: figures on a shared machine drift between runs, ratios within one run less so.
#[derive(Debug, Default)]
pub struct Ceilings {
    echo_rps: Option<f64>,
    db_rps: Option<f64>,
    db_read_rps: Option<f64>,
}

impl Ceilings {
    /// Notes a ceiling `report` measured, or adds to it the ceilings it is bounded by:
    /// - a capture (two commits) by `db_ceiling`: `of_db_ceiling`;
    /// - a Get or a replay (one gRPC call and one read, on the same cores) by the composed
    ///   read ceiling `1 / (1/echo + 1/db_read_ceiling)`: `composed_read_ceiling_rps` and
    ///   `of_composed_read_ceiling`.
    ///
    /// Absent when the ceiling was not run before it (`--scenario all` runs each first).
    pub fn beside(&mut self, scenario: Scenario, report: Report) -> Report {
        let rps = report.rps;
        match scenario {
            Scenario::Echo => self.echo_rps = Some(rps),
            Scenario::DbCeiling => self.db_rps = Some(rps),
            Scenario::DbReadCeiling => self.db_read_rps = Some(rps),
            _ => {}
        }
        match scenario {
            Scenario::Capture | Scenario::CaptureWatched => match self.db_rps {
                Some(db) if db > 0.0 => report.with("of_db_ceiling", rounded(rps / db)),
                _ => report,
            },
            Scenario::Get | Scenario::CaptureReplay => match (self.echo_rps, self.db_read_rps) {
                (Some(echo), Some(read)) if echo > 0.0 && read > 0.0 => {
                    let composed = 1.0 / (1.0 / echo + 1.0 / read);
                    report
                        .with("composed_read_ceiling_rps", rounded(composed))
                        .with("of_composed_read_ceiling", rounded(rps / composed))
                }
                _ => report,
            },
            _ => report,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scenario: Scenario, rps: f64) -> Report {
        Report {
            scenario: scenario.name(),
            db: "sqlite",
            concurrency: 1,
            ops: 1,
            seconds: 1.0,
            rps,
            p50_ms: None,
            p90_ms: None,
            p99_ms: None,
            errors: 0,
            service_cpu_ms_per_op: None,
            service_rss_mb: None,
            extra: Map::new(),
        }
    }

    #[test]
    fn a_get_is_set_beside_the_composed_read_ceiling_of_the_same_run() {
        let mut ceilings = Ceilings::default();
        let alone = ceilings.beside(Scenario::Get, report(Scenario::Get, 100.0));
        assert!(alone.extra.is_empty(), "no ceiling measured yet");
        ceilings.beside(Scenario::Echo, report(Scenario::Echo, 40_000.0));
        ceilings.beside(
            Scenario::DbReadCeiling,
            report(Scenario::DbReadCeiling, 10_000.0),
        );
        let get = ceilings.beside(Scenario::Get, report(Scenario::Get, 4_000.0));
        // 1 / (1/40000 + 1/10000) = 8000 calls a second; 4000 is half of it.
        assert_eq!(get.extra["composed_read_ceiling_rps"], 8000.0);
        assert_eq!(get.extra["of_composed_read_ceiling"], 0.5);
        ceilings.beside(Scenario::DbCeiling, report(Scenario::DbCeiling, 1_600.0));
        let capture = ceilings.beside(Scenario::Capture, report(Scenario::Capture, 400.0));
        assert_eq!(capture.extra["of_db_ceiling"], 0.25);
    }
}
