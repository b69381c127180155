//! One scenario's result: the counts the issue of record asks for, as one JSON line.

use serde::Serialize;
use serde_json::{Map, Value};

/// A capture still open after the settle phase, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Stuck {
    pub capture_id: String,
    pub provider: String,
    pub status: String,
    pub why: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub db: &'static str,
    pub seed: u64,
    pub iterations: u32,
    /// Capture requests made (retries of one request count once).
    pub attempted: u64,
    /// Captures the sandbox's book says it accepted.
    pub charged_at_provider: u64,
    /// Captures the service recorded `COMPLETED`.
    pub recorded_completed: u64,
    /// Charges beyond the first for one capture (one idempotency key, or one PaymentOptions
    /// authorization).
    pub doubled: u64,
    /// Charges whose capture is not `COMPLETED` in the database, nor still open.
    pub lost: u64,
    pub stuck: u64,
    /// Answers that break README's contract: `COMPLETED` for nothing charged, a record
    /// `COMPLETED` that the provider never charged, `INTERNAL`/`UNKNOWN`, or another code than
    /// `UNAVAILABLE` for an unknown outcome.
    pub wrong_answers: u64,
    /// Captures written by halves: without events or ledger row, or a ledger row holding
    /// other than its captures reserve.
    pub half_written: u64,
    /// Secrets (provider credentials, webhook secrets, the API key) and full card numbers
    /// found in the service's logs or database.
    pub secrets_found: u64,
    /// What the secret scan read: the service's output, and the database's rows.
    pub log_bytes_scanned: u64,
    pub database_bytes_scanned: u64,
    /// What the spans the services exported held (searched as they came).
    pub trace_bytes_scanned: u64,
    /// Provider attempts that break the retry rules (`provider_faults`): another idempotency
    /// key for one capture, a keyless provider sent a capture again after an attempt that
    /// reached it, `Retry-After` not waited out, more attempts than the calls allow.
    pub retry_violations: u64,
    /// Panics the service's processes wrote.
    pub panics: u64,
    pub max_rss_mb: f64,
    pub seconds: f64,
    /// The stuck captures, each with its reason.
    pub stuck_captures: Vec<Stuck>,
    /// What each wrong answer, double or loss was, to start the hunt from.
    pub findings: Vec<String>,
    /// Figures of this scenario's own.
    #[serde(flatten)]
    pub extras: Map<String, Value>,
}

impl Report {
    /// Whether the run found a bug: a double, a loss, a wrong answer, a half-written capture, a
    /// secret written down or a panic.
    pub fn failed(&self) -> bool {
        self.doubled
            + self.lost
            + self.wrong_answers
            + self.half_written
            + self.secrets_found
            + self.retry_violations
            + self.panics
            > 0
    }

    pub fn extra(&mut self, name: &str, value: impl Into<Value>) {
        self.extras.insert(name.to_owned(), value.into());
    }

    pub fn finding(&mut self, finding: String) {
        // Enough to start from; the counts say how many there were.
        if self.findings.len() < 20 {
            self.findings.push(finding);
        }
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}
