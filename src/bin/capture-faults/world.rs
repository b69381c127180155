//! What a scenario runs against: the service binary, a fresh database, and the standalone
//! sandbox as every provider (its book is the ground truth).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use capture_service::proto::{self, CaptureStatus};
use capture_service::sandbox::Fault;

use crate::client::Client;
use crate::fresh_database::{Database, Db};
use crate::processes::{self, start_sandbox, start_service, Sandbox, Service, ServiceSetup};
use crate::report::Report;
use crate::trace_sink::TraceSink;
use crate::truth;

pub struct World {
    pub binary: PathBuf,
    pub db: Database,
    pub sandbox: Sandbox,
    /// Where every service's spans go, searched for secrets as they come.
    traces: TraceSink,
    /// Settings of every service started, besides the sandbox's.
    env: Vec<(&'static str, String)>,
}

impl World {
    pub const PROVIDERS: [proto::Provider; 5] = [
        proto::Provider::Paypal,
        proto::Provider::Checkout,
        proto::Provider::Cybersource,
        proto::Provider::PaymentOptions,
        proto::Provider::Stax,
    ];

    /// A fresh database for `scenario`, and a sandbox answering after `latency`. The services
    /// reconcile every second, look at an unheld capture after a second, and hold leases for
    /// two: a scenario settles in seconds, not minutes. They export their spans to a stand-in
    /// collector every 200 ms.
    pub async fn new(db: Db, scenario: &str, latency: Duration) -> anyhow::Result<World> {
        let binary = processes::service_binary()?;
        let db = Database::fresh(db, scenario, None).await?;
        let sandbox = start_sandbox(&binary, latency)?;
        let collector = processes::free_addr()?;
        let traces = TraceSink::serve(collector, secrets_of(&sandbox));
        Ok(World {
            binary,
            db,
            sandbox,
            traces,
            env: vec![
                ("CAPTURE_OTLP_ENDPOINT", format!("http://{collector}")),
                ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
                ("CAPTURE_RECONCILE_INTERVAL_SECONDS", "1".to_owned()),
                ("CAPTURE_RECONCILE_MIN_AGE_SECONDS", "1".to_owned()),
                ("CAPTURE_LEASE_SECONDS", "2".to_owned()),
                ("CAPTURE_PROVIDER_TIMEOUT_SECONDS", "5".to_owned()),
                ("CAPTURE_LOG", "info".to_owned()),
                // The sandbox's Transaction Search has no lag: "not found" is final at once.
                ("CAPTURE_CYBERSOURCE_SEARCH_GRACE_SECONDS", "3".to_owned()),
            ],
        })
    }

    /// A service on the world's database and sandbox, ready to serve.
    pub async fn start_service(&self) -> anyhow::Result<Service> {
        self.start_service_with(&self.db.url, &[]).await
    }

    /// A service reaching the world's database at `database_url` (through a proxy, say), with
    /// `settings` besides the world's.
    pub async fn start_service_with(
        &self,
        database_url: &str,
        settings: &[(&'static str, String)],
    ) -> anyhow::Result<Service> {
        let mut env = self.env.clone();
        env.extend_from_slice(settings);
        start_service(&ServiceSetup {
            binary: &self.binary,
            database_url,
            sandbox_env: &self.sandbox.service_env,
            env: &env,
            keep_log: true,
        })
        .await
    }

    /// A new authorization of `value` USD at `provider`; its id.
    pub async fn authorize(
        &self,
        provider: proto::Provider,
        value: &str,
    ) -> anyhow::Result<String> {
        authorize_at(&self.sandbox.origin, provider, value).await
    }

    /// As [`World::authorize`], observed by the sandbox: the provider API POSTs that name it
    /// meet `faults` in turn, and are listed at `GET /sandbox/attempts`.
    pub async fn authorize_observed(
        &self,
        provider: proto::Provider,
        value: &str,
        faults: &[Fault],
    ) -> anyhow::Result<String> {
        let body = serde_json::json!({
            "amount": {"currency_code": "USD", "value": value},
            "faults": faults,
        });
        new_authorization(&self.sandbox.origin, provider, &body).await
    }

    /// As [`World::authorize`], with its captures going as `scenario` says (`APPROVE`,
    /// `PENDING`, `DECLINED`, ...).
    pub async fn authorize_as(
        &self,
        provider: proto::Provider,
        value: &str,
        scenario: &str,
    ) -> anyhow::Result<String> {
        let body = serde_json::json!({
            "amount": {"currency_code": "USD", "value": value},
            "scenario": scenario,
        });
        new_authorization(&self.sandbox.origin, provider, &body).await
    }

    /// A service whose provider calls go to `providers_origin` (a proxy in front of the
    /// sandbox) instead of the sandbox itself, with `settings` besides the world's.
    pub async fn start_service_via(
        &self,
        providers_origin: &str,
        settings: &[(&'static str, String)],
    ) -> anyhow::Result<Service> {
        let sandbox_env: Vec<(String, String)> = self
            .sandbox
            .service_env
            .iter()
            .map(|(name, value)| {
                let routed = value.replace(&self.sandbox.origin, providers_origin);
                (name.clone(), routed)
            })
            .collect();
        let mut env = self.env.clone();
        env.extend_from_slice(settings);
        start_service(&ServiceSetup {
            binary: &self.binary,
            database_url: &self.db.url,
            sandbox_env: &sandbox_env,
            env: &env,
            keep_log: true,
        })
        .await
    }

    /// Waits until the book shows a charge of `authorization`, or `call` has ended without
    /// one (the provider refused or throttled it), at most 5 s; whether it was charged.
    pub async fn wait_for_charge<T>(
        &self,
        authorization: &str,
        call: &tokio::task::JoinHandle<T>,
    ) -> anyhow::Result<bool> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let book = truth::book(&self.sandbox.origin).await?;
            if book.iter().any(|c| c.authorization_id == authorization) {
                return Ok(true);
            }
            if call.is_finished() {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(false)
    }

    /// SIGKILL (`kill -9`); then what the service wrote is searched for panics and secrets.
    pub fn kill(&self, service: &mut Service, report: &mut Report) {
        service.process.kill();
        let output = service.output();
        // Kept for a hunt when asked: CAPTURE_FAULTS_LOGS=<dir>.
        if let Some(dir) = std::env::var_os("CAPTURE_FAULTS_LOGS") {
            let file = std::path::Path::new(&dir).join(format!("{}.log", service.process.pid()));
            let _ = std::fs::write(file, &output);
        }
        report.panics += output.matches("panicked at").count() as u64;
        report.log_bytes_scanned += output.len() as u64;
        self.search_secrets(&output, "the service's log", report);
    }

    /// Counts the run's secrets that `text` (read from `place`) holds.
    fn search_secrets(&self, text: &str, place: &str, report: &mut Report) {
        for secret in secrets_of(&self.sandbox) {
            if text.contains(&secret) {
                report.secrets_found += 1;
                report.finding(format!(
                    "{place} holds a secret ({} characters)",
                    secret.len()
                ));
            }
        }
    }

    /// Searches the database's every row for the run's secrets (after the run), and counts
    /// what the spans exported held.
    pub async fn scan_database_and_traces(&self, report: &mut Report) -> anyhow::Result<()> {
        let text = truth::database_text(&self.db.url).await?;
        report.database_bytes_scanned = text.len() as u64;
        self.search_secrets(&text, "the database", report);
        let scanned = &self.traces.scanned;
        report.trace_bytes_scanned = scanned.bytes.load(Ordering::Relaxed);
        let in_traces = scanned.secrets_found.load(Ordering::Relaxed);
        if in_traces > 0 {
            report.secrets_found += in_traces;
            report.finding(format!(
                "the exported spans held a secret {in_traces} times"
            ));
        }
        Ok(())
    }

    /// Waits until no capture is open but those only a person can settle (PaymentOptions has
    /// no lookup), at most 60 s; how long it took.
    pub async fn settle(&self, service: &Service) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let client = Client::of(service.grpc)?;
        while started.elapsed() < Duration::from_secs(60) {
            let records = client.list_all().await?;
            let open = records.iter().any(|r| {
                matches!(
                    r.status(),
                    CaptureStatus::Processing | CaptureStatus::Pending
                ) && r.provider() != proto::Provider::PaymentOptions
            });
            if !open {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(started.elapsed())
    }
}

/// Every secret a run hands the service, and the full card number the sandbox answers with:
/// none may be written to its log, its database or its spans.
fn secrets_of(sandbox: &Sandbox) -> Vec<String> {
    let mut secrets: Vec<String> = sandbox
        .service_env
        .iter()
        .filter(|(name, _)| {
            name.contains("SECRET") || name.ends_with("_KEY") || name.contains("ASSERTION")
        })
        .map(|(_, value)| value.clone())
        .collect();
    secrets.push(processes::API_KEY.to_owned());
    secrets.push(capture_service::sandbox::payment_options::TEST_PAN.to_owned());
    secrets
}

/// A new authorization of `value` USD at `provider` of the sandbox at `origin`; its id.
pub async fn authorize_at(
    origin: &str,
    provider: proto::Provider,
    value: &str,
) -> anyhow::Result<String> {
    let body = serde_json::json!({"amount": {"currency_code": "USD", "value": value}});
    new_authorization(origin, provider, &body).await
}

/// `POST /sandbox/{provider}/authorizations` with `body`; the new authorization's id.
async fn new_authorization(
    origin: &str,
    provider: proto::Provider,
    body: &serde_json::Value,
) -> anyhow::Result<String> {
    let name = truth::provider_name(provider);
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{origin}/sandbox/{name}/authorizations"))
        .json(body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer["id"]
        .as_str()
        .with_context(|| format!("no id in the sandbox's answer {answer}"))?
        .to_owned())
}

/// One look at a service's health: gRPC health for `service`, then `GET path` on its HTTP port
/// (each given `client`'s timeout); whether each said it serves.
pub async fn health(
    client: &reqwest::Client,
    grpc: std::net::SocketAddr,
    http: std::net::SocketAddr,
    service: &str,
    path: &str,
) -> (bool, bool) {
    let limit = client_timeout();
    let grpc_ok = tokio::time::timeout(limit, processes::serving(grpc, service))
        .await
        .unwrap_or(false);
    let http_ok = client
        .get(format!("http://{http}{path}"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    (grpc_ok, http_ok)
}

/// How long a health answer may take before it counts as none.
pub fn client_timeout() -> Duration {
    // An unoptimized build (CI's short pass) is several times slower: there the bound is the
    // chart's probe timeout, 2 s; the release runs README quotes keep 0.9 s.
    if cfg!(debug_assertions) {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(900)
    }
}
