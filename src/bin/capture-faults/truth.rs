//! The verdict: the sandbox's book (what the providers charged, and under which key) against
//! the service's records and what its callers were told.

use std::collections::HashMap;

use capture_service::proto::{self, CaptureStatus};
use capture_service::sandbox::{Attempt, Charge};
use tonic::Code;

use crate::client::Answer;
use crate::report::{Report, Stuck};

/// `GET /sandbox/book` of the standalone sandbox at `origin`.
pub async fn book(origin: &str) -> anyhow::Result<Vec<Charge>> {
    Ok(reqwest::get(format!("{origin}/sandbox/book"))
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// `GET /sandbox/attempts`: every provider API POST naming an observed authorization.
pub async fn attempts(origin: &str) -> anyhow::Result<Vec<Attempt>> {
    Ok(reqwest::get(format!("{origin}/sandbox/attempts"))
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Captures written by halves, read from the database itself: a capture without its events, a
/// capture without its authorization's ledger row, or a ledger row whose held amount is not
/// what its captures reserve. Each is one line.
pub async fn half_written(database_url: &str) -> anyhow::Result<Vec<String>> {
    use sea_orm::{ConnectionTrait, Database, Statement};
    const CHECKS: [(&str, &str); 3] = [
        (
            "a capture without events",
            "SELECT c.id FROM captures c WHERE NOT EXISTS \
             (SELECT 1 FROM capture_events e WHERE e.capture_id = c.id)",
        ),
        (
            "a capture without its ledger row",
            "SELECT c.id FROM captures c WHERE NOT EXISTS (SELECT 1 FROM authorizations a \
             WHERE a.provider = c.provider AND a.provider_account = c.provider_account \
             AND a.authorization_id = c.authorization_id)",
        ),
        (
            "a ledger row holding other than its captures reserve",
            "SELECT a.authorization_id FROM authorizations a LEFT JOIN captures c \
             ON c.provider = a.provider AND c.provider_account = a.provider_account \
             AND c.authorization_id = a.authorization_id \
             GROUP BY a.provider, a.provider_account, a.authorization_id, a.held_minor \
             HAVING a.held_minor <> COALESCE(SUM(c.reserved_minor), 0)",
        ),
    ];
    let db = Database::connect(database_url).await?;
    let backend = db.get_database_backend();
    let mut found = Vec::new();
    for (what, sql) in CHECKS {
        for row in db.query_all(Statement::from_string(backend, sql)).await? {
            let id: String = row.try_get_by_index(0)?;
            found.push(format!("{what}: {id}"));
        }
    }
    db.close().await?;
    Ok(found)
}

/// One caller's request and every answer it got (the first, then its retries).
pub struct Asked {
    pub provider: proto::Provider,
    pub request_id: String,
    pub authorization_id: String,
    pub answers: Vec<Answer>,
    /// Whether the caller asked again after a restart (else the reconciler settles it).
    pub retry: bool,
}

/// The database's every row as text, for the secret scan: PostgreSQL renders each row of each
/// table; a SQLite database is its file and write-ahead log, read as bytes.
pub async fn database_text(database_url: &str) -> anyhow::Result<String> {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    if let Some(rest) = database_url.strip_prefix("sqlite://") {
        let path = rest.split('?').next().unwrap_or(rest);
        let mut text = String::new();
        for file in [path.to_owned(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        return Ok(text);
    }
    let db = Database::connect(database_url).await?;
    let tables = db
        .query_all(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        ))
        .await?;
    let mut text = String::new();
    for table in tables {
        let table: String = table.try_get_by_index(0)?;
        let rows = db
            .query_all(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT t::text FROM \"{table}\" t"),
            ))
            .await?;
        for row in rows {
            let row: String = row.try_get_by_index(0)?;
            text.push_str(&row);
            text.push('\n');
        }
    }
    db.close().await?;
    Ok(text)
}

/// Counts what [`half_written`] found.
pub fn judge_rows(report: &mut Report, half_written: Vec<String>) {
    report.half_written = half_written.len() as u64;
    for row in half_written {
        report.finding(row);
    }
}

/// Fills the report's counts from the book, the records and the answers.
pub fn judge(report: &mut Report, book: &[Charge], records: &[proto::Capture], asked: &[Asked]) {
    // A held capture the provider denied later took nothing.
    let book: Vec<&Charge> = book.iter().filter(|c| c.status != "DECLINED").collect();
    // Every charge is told apart by the capture id the service sent as its key; PaymentOptions
    // takes no key, and captures an authorization at most once.
    let mut charges_of: HashMap<&str, Vec<&Charge>> = HashMap::new();
    let record_of_authorization: HashMap<&str, &proto::Capture> = records
        .iter()
        .map(|r| (r.authorization_id.as_str(), r))
        .collect();
    for &charge in &book {
        let capture_id = match &charge.key {
            Some(key) => Some(key.as_str()),
            None => record_of_authorization
                .get(charge.authorization_id.as_str())
                .map(|r| r.id.as_str()),
        };
        match capture_id {
            Some(id) => charges_of.entry(id).or_default().push(charge),
            None => {
                report.lost += 1;
                report.finding(format!(
                    "{} charged {} on {} and the service has no record of it",
                    charge.provider, charge.amount.value, charge.authorization_id
                ));
            }
        }
    }
    report.charged_at_provider = book.len() as u64;
    let records_by_id: HashMap<&str, &proto::Capture> =
        records.iter().map(|r| (r.id.as_str(), r)).collect();
    for (id, charges) in &charges_of {
        if charges.len() > 1 {
            report.doubled += charges.len() as u64 - 1;
            report.finding(format!("capture {id} charged {} times", charges.len()));
        }
        let Some(record) = records_by_id.get(id) else {
            report.lost += 1;
            report.finding(format!("capture {id} charged but not recorded"));
            continue;
        };
        match record.status() {
            CaptureStatus::Completed
            | CaptureStatus::PartiallyRefunded
            | CaptureStatus::Refunded => {}
            // Open: counted with the stuck below.
            CaptureStatus::Processing | CaptureStatus::Pending => {}
            other => {
                report.lost += 1;
                let error = record.error.as_ref();
                report.finding(format!(
                    "capture {id} at {} charged but recorded {other:?} ({} {}: {})",
                    provider_name(record.provider()),
                    error.map_or(0, |e| e.http_status),
                    error.map_or("", |e| e.code.as_str()),
                    error.map_or("", |e| e.message.as_str()),
                ));
            }
        }
    }
    for record in records {
        let status = record.status();
        if status == CaptureStatus::Completed {
            report.recorded_completed += 1;
            if !charges_of.contains_key(record.id.as_str()) {
                report.wrong_answers += 1;
                report.finding(format!("capture {} COMPLETED but never charged", record.id));
            }
        }
        if matches!(status, CaptureStatus::Processing | CaptureStatus::Pending) {
            report.stuck += 1;
            report.stuck_captures.push(Stuck {
                capture_id: record.id.clone(),
                provider: provider_name(record.provider()),
                status: format!("{status:?}"),
                why: why_open(record, charges_of.contains_key(record.id.as_str())),
            });
        }
    }
    let record_of_request: HashMap<&str, &proto::Capture> =
        records.iter().map(|r| (r.request_id.as_str(), r)).collect();
    for request in asked {
        let record = record_of_request.get(request.request_id.as_str());
        let charged = record.is_some_and(|r| charges_of.contains_key(r.id.as_str()));
        for answer in &request.answers {
            if let Some(wrong) = contract_breach(answer, charged) {
                report.wrong_answers += 1;
                report.finding(format!(
                    "request {} ({}): {wrong}",
                    request.request_id, request.authorization_id
                ));
            }
        }
    }
}

/// What is wrong with one answer, given whether its capture was charged.
fn contract_breach(answer: &Answer, charged: bool) -> Option<String> {
    match answer {
        Answer::Recorded(capture) if capture.status() == CaptureStatus::Completed && !charged => {
            Some("told COMPLETED, never charged".to_owned())
        }
        Answer::Recorded(capture)
            if charged
                && matches!(
                    capture.status(),
                    CaptureStatus::Failed | CaptureStatus::Declined
                ) =>
        {
            Some(format!("told {:?}, but charged", capture.status()))
        }
        Answer::Refused { code, message, .. }
            if matches!(code, Code::Internal | Code::Unknown | Code::DataLoss) =>
        {
            Some(format!("{code:?}: {message}"))
        }
        // A refusal that is not UNAVAILABLE says nothing was charged.
        Answer::Refused { code, message, .. } if charged && *code != Code::Unavailable => Some(
            format!("{code:?} for a capture that was charged: {message}"),
        ),
        _ => None,
    }
}

fn why_open(record: &proto::Capture, charged: bool) -> String {
    let charged = if charged { "charged" } else { "not charged" };
    match record.provider() {
        // README "Providers": no lookup, no idempotency key.
        proto::Provider::PaymentOptions => format!(
            "{charged} at PaymentOptions, which documents no capture lookup and takes no \
             idempotency key: once an answer is lost (or was never PaymentOptions' own), \
             neither the reconciler nor a retry can learn the outcome, and a capture that may \
             have arrived is never sent again, so it stays PROCESSING \
             (PROVIDER_OUTCOME_UNKNOWN) for a person to settle in the PaymentOptions portal"
        ),
        _ => format!("{charged}, and not settled within the settle phase"),
    }
}

pub fn provider_name(provider: proto::Provider) -> String {
    provider
        .as_str_name()
        .trim_start_matches("PROVIDER_")
        .to_lowercase()
}
