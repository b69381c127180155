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

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Report {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
