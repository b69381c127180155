//! `GET /metrics`, scraped from the real binary and read with a real Prometheus parser (PyPI
//! `prometheus-client`'s OpenMetrics parser): one capture, one refused capture, one applied
//! webhook and one with a bad signature move their counters by exactly what happened, on
//! SQLite and on PostgreSQL.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{call, capture_body, PostgresDatabase, Res, Server, TestResult, CAPTURE};

/// Every sample of a scrape, by name and labels (`name{"label":"value",…}`, labels sorted).
type Samples = BTreeMap<String, f64>;

const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = json.dumps(dict(sorted(s.labels.items())), separators=(",", ":"))
        samples[s.name + labels] = s.value
print(json.dumps(samples))
"#;

/// Scrapes `/metrics` and parses it with the Python Prometheus client (strict OpenMetrics).
async fn scrape(server: &Server) -> Res<Samples> {
    let answer = reqwest::get(format!("http://127.0.0.1:{}/metrics", server.http_port)).await?;
    assert!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/openmetrics-text")),
        "{:?}",
        answer.headers()
    );
    let text = answer.text().await?;
    let mut python = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    python
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())?;
    let parsed = python.wait_with_output()?;
    if !parsed.status.success() {
        return Err(format!(
            "the Prometheus parser refused the scrape: {}\n{text}",
            String::from_utf8_lossy(&parsed.stderr)
        )
        .into());
    }
    Ok(serde_json::from_slice(&parsed.stdout)?)
}

/// A sample's name, labels, and how much it must have moved.
type Expected<'a> = (&'a str, Vec<(&'a str, &'a str)>, f64);

/// `name{labels}` as [`scrape`] keys it.
fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let labels: serde_json::Map<String, Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    format!("{name}{}", Value::Object(labels))
}

/// How much a sample moved between two scrapes (absent counts as 0).
fn moved(before: &Samples, after: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let key = key(name, labels);
    after.get(&key).copied().unwrap_or(0.0) - before.get(&key).copied().unwrap_or(0.0)
}

/// A PayPal sandbox authorization of USD 100.00.
async fn authorize(server: &Server) -> Res<String> {
    server.authorize().await
}

async fn counters_move_by_exactly_what_happened(envs: &[(&str, &str)]) -> TestResult {
    super::grpcurl_path()?;
    let key_text = "metrics-test-key-0123456789abcdef";
    let keys = super::api_keys(key_text);
    let mut all = vec![
        ("CAPTURE_API_KEYS", keys.as_str()),
        ("CAPTURE_SANDBOX", "on"),
    ];
    all.extend_from_slice(envs);
    let server = Server::start(&all).await?;
    let target = server.grpc_target();
    let auth = authorize(&server).await?;
    let before = scrape(&server).await?;

    // One capture, and one the provider refuses (more than was authorized).
    let done = call(
        key_text,
        &capture_body(&auth, "10.00", "m-ok"),
        &target,
        CAPTURE,
    )?
    .json()?;
    assert_eq!(
        done["capture"]["status"], "CAPTURE_STATUS_COMPLETED",
        "{done}"
    );
    let refused = call(
        key_text,
        &capture_body(&auth, "500.00", "m-no"),
        &target,
        CAPTURE,
    )?;
    refused.failed_with(&["FailedPrecondition"]);

    // One webhook applied: the sandbox's PayPal refunds the capture and delivers the event.
    let paypal_id = done["capture"]["providerCaptureId"]
        .as_str()
        .ok_or("no PayPal id")?;
    reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/sandbox/paypal/captures/{paypal_id}/refund",
            server.http_port
        ))
        .json(&serde_json::json!({}))
        .send()
        .await?
        .error_for_status()?;
    // One with a bad signature.
    let forged = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/webhooks/checkout",
            server.http_port
        ))
        .header("Cko-Signature", "00ff")
        .body(r#"{"id":"evt_forged","type":"payment_captured","data":{}}"#)
        .send()
        .await?;
    assert_eq!(forged.status(), reqwest::StatusCode::UNAUTHORIZED);

    let applied = [("provider", "paypal"), ("result", "applied")];
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let after = scrape(&server).await?;
        if moved(&before, &after, "capture_webhooks_total", &applied) >= 1.0
            || Instant::now() > deadline
        {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let capture = |code: &'static str| {
        [
            ("grpc_type", "unary"),
            ("grpc_service", "capture.v1.CaptureService"),
            ("grpc_method", "Capture"),
            ("grpc_code", code),
        ]
    };
    let expected: Vec<Expected> = vec![
        ("grpc_server_started_total", capture("")[..3].to_vec(), 2.0),
        ("grpc_server_handled_total", capture("OK").to_vec(), 1.0),
        (
            "grpc_server_handled_total",
            capture("FailedPrecondition").to_vec(),
            1.0,
        ),
        (
            "grpc_server_handling_seconds_count",
            capture("")[..3].to_vec(),
            2.0,
        ),
        (
            "capture_provider_calls_total",
            vec![
                ("provider", "paypal"),
                ("operation", "capture"),
                ("outcome", "ok"),
            ],
            1.0,
        ),
        (
            "capture_provider_calls_total",
            vec![
                ("provider", "paypal"),
                ("operation", "capture"),
                ("outcome", "refused"),
            ],
            1.0,
        ),
        (
            "capture_provider_calls_total",
            vec![
                ("provider", "paypal"),
                ("operation", "verify_webhook"),
                ("outcome", "ok"),
            ],
            1.0,
        ),
        (
            "capture_status_changes_total",
            vec![
                ("provider", "paypal"),
                ("status", "PROCESSING"),
                ("source", "api"),
            ],
            2.0,
        ),
        (
            "capture_status_changes_total",
            vec![
                ("provider", "paypal"),
                ("status", "COMPLETED"),
                ("source", "api"),
            ],
            1.0,
        ),
        (
            "capture_status_changes_total",
            vec![
                ("provider", "paypal"),
                ("status", "FAILED"),
                ("source", "api"),
            ],
            1.0,
        ),
        (
            "capture_status_changes_total",
            vec![
                ("provider", "paypal"),
                ("status", "REFUNDED"),
                ("source", "webhook"),
            ],
            1.0,
        ),
        ("capture_webhooks_total", applied.to_vec(), 1.0),
        (
            "capture_webhooks_total",
            vec![("provider", "checkout"), ("result", "bad_signature")],
            1.0,
        ),
        ("capture_store_unavailable_total", vec![], 0.0),
    ];
    for (name, labels, delta) in &expected {
        assert_eq!(
            moved(&before, &after, name, labels),
            *delta,
            "{name} {labels:?}\n{after:#?}"
        );
    }
    assert_eq!(
        after.get(&key("capture_db_pool_connections", &[("state", "max")])),
        Some(&16.0)
    );
    let version = key(
        "capture_build_info",
        &[
            ("version", env!("CARGO_PKG_VERSION")),
            ("revision", env!("CAPTURE_GIT_REVISION")),
        ],
    );
    assert_eq!(after.get(&version), Some(&1.0), "{after:#?}");
    names_in_the_chart_are_scraped(&server).await?;
    // No label holds an id, an amount or a caller's string.
    for sample in after.keys() {
        for forbidden in ["cap_", &auth, "m-ok", "10.00", "evt_forged"] {
            assert!(!sample.contains(forbidden), "{sample}");
        }
    }
    Ok(())
}

/// The sample names a scrape can hold, by the `# TYPE` lines of its families (a family with no
/// samples yet still declares itself): a counter's `_total`, a histogram's `_bucket`, `_sum`
/// and `_count`, a gauge's own name.
fn sample_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .flat_map(|declared| {
            let mut words = declared.split_whitespace();
            let family = words.next().unwrap_or_default().to_owned();
            match words.next() {
                Some("counter") => vec![format!("{family}_total")],
                Some("histogram") => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|suffix| format!("{family}{suffix}"))
                    .collect(),
                _ => vec![family],
            }
        })
        .collect()
}

/// Every metric name the chart's alerts and dashboard use is one the service exports, so
/// neither can drift from the code.
async fn names_in_the_chart_are_scraped(server: &Server) -> TestResult {
    let text = reqwest::get(format!("http://127.0.0.1:{}/metrics", server.http_port))
        .await?
        .text()
        .await?;
    let exported = sample_names(&text);
    // The gRPC ecosystem's label names share the metrics' prefix.
    const LABELS: &[&str] = &["grpc_type", "grpc_service", "grpc_method", "grpc_code"];
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/capture-service");
    let mut checked = 0;
    for file in [
        "templates/prometheusrule.yaml",
        "dashboards/capture-service.json",
    ] {
        let source = std::fs::read_to_string(chart.join(file))?;
        let mut used: Vec<&str> = source
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("capture_") || word.starts_with("grpc_"))
            .filter(|word| !LABELS.contains(word))
            .collect();
        used.sort_unstable();
        used.dedup();
        assert!(!used.is_empty(), "{file} names no metric");
        for name in used {
            assert!(
                exported.iter().any(|e| e == name),
                "{file} uses {name}, which /metrics does not export:\n{exported:#?}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} names checked");
    Ok(())
}

#[tokio::test]
async fn metrics_count_what_happened_on_sqlite() -> TestResult {
    counters_move_by_exactly_what_happened(&[]).await
}

#[tokio::test]
async fn metrics_count_what_happened_on_postgres() -> TestResult {
    let database = PostgresDatabase::create().await?;
    counters_move_by_exactly_what_happened(&[("CAPTURE_DATABASE_URL", database.url.as_str())]).await
}
