//! Each scenario: what it starts, what its callers call, and what it reports.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use capture_service::proto::capture_service_client::CaptureServiceClient;
use capture_service::proto::{self, CaptureRequest, GetCaptureRequest, ListCapturesRequest};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::database::{self, seed, seeded_id, Ceiling};
use crate::fresh_database::Database;
use crate::load::{channels, closed_loop, Measured};
use crate::machine;
use crate::options::{Options, Scenario, DEFAULT_CONCURRENCY, SLOW_PROVIDER_CONCURRENCY};
use crate::processes::{
    self, start_echo, start_sandbox, start_service, PeakRss, Sandbox, Service, ServiceSetup,
    API_KEY,
};
use crate::report::{Report, ServerUse};

/// The slow-provider scenario's provider latency.
const SLOW_PROVIDER_LATENCY: Duration = Duration::from_millis(300);
/// Captures made before the replay and get scenarios, which then read them at random.
const STORED_CAPTURES: usize = 1000;
/// `capture_watched`: watchers that read every change, and watchers that never read.
const READING_WATCHERS: usize = 10;
const SILENT_WATCHERS: usize = 10;
/// Pages a list caller follows before it starts again from the newest capture.
const LIST_DEPTH: u64 = 50;
const LIST_PAGE_SIZE: i32 = 100;
/// List callers when `--concurrency` is not given: its goal is a latency (p99 of one page), so
/// it is measured below saturation, where a latency says something about the query.
const LIST_CONCURRENCY: usize = 4;

pub async fn run(scenario: Scenario, options: &Options) -> anyhow::Result<Report> {
    match scenario {
        Scenario::Echo => echo(options).await,
        Scenario::DbCeiling => db_ceiling(options).await,
        Scenario::DbReadCeiling => db_read_ceiling(options).await,
        Scenario::Capture | Scenario::CaptureWatched => {
            capture(scenario, options, Duration::ZERO, DEFAULT_CONCURRENCY).await
        }
        Scenario::CaptureSlowProvider => {
            capture(
                scenario,
                options,
                SLOW_PROVIDER_LATENCY,
                SLOW_PROVIDER_CONCURRENCY,
            )
            .await
        }
        Scenario::CaptureReplay | Scenario::Get => stored_reads(scenario, options).await,
        Scenario::List10k => list(scenario, options, 10_000).await,
        Scenario::List1m => list(scenario, options, 1_000_000).await,
        Scenario::Idle => idle(options).await,
    }
}

/// The warm-up before each measured run: connections, caches, the JIT of the database's plans.
fn warmup(options: &Options) -> Duration {
    (options.duration / 4).min(Duration::from_secs(1))
}

/// A cheap, well-spread pseudo-random index for caller `w`'s `n`th call.
fn spread(w: usize, n: u64, len: usize) -> usize {
    let mut x = (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n.wrapping_add(1);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    (x % len.max(1) as u64) as usize
}

/// The bearer metadata of the bench tenant.
fn bearer() -> anyhow::Result<MetadataValue<tonic::metadata::Ascii>> {
    Ok(MetadataValue::try_from(format!("Bearer {API_KEY}"))?)
}

fn authed<T>(message: T, bearer: &MetadataValue<tonic::metadata::Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer.clone());
    request
}

/// Runs the callers against a server process, charging its CPU and peak RSS to their calls.
async fn against<F, Fut>(
    server: &processes::Process,
    concurrency: usize,
    options: &Options,
    call: F,
) -> (Measured, ServerUse)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let _ = closed_loop(concurrency, warmup(options), call.clone()).await;
    measure(server, concurrency, options.duration, call).await
}

/// A closed loop of `call` for `duration`, with the server's CPU and peak memory and the other
/// roles' CPU (`machine`) over the same span.
async fn measure<F, Fut>(
    server: &processes::Process,
    concurrency: usize,
    duration: Duration,
    call: F,
) -> (Measured, ServerUse)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let cpu_before = server.cpu_time();
    let roles_before = machine::snapshot(Some(server.pid()));
    let peak = PeakRss::watch(server.pid());
    let measured = closed_loop(concurrency, duration, call).await;
    let cpu = server.cpu_time().saturating_sub(cpu_before);
    let roles = machine::per_call(
        &roles_before,
        &machine::snapshot(Some(server.pid())),
        cpu,
        measured.elapsed,
        measured.ops(),
    );
    let used = ServerUse {
        cpu,
        peak_rss_mb: peak.mb(),
        roles,
    };
    (measured, used)
}

/// [`against`] with no server: the database's ceilings, where this process is the client.
async fn measured_alone<F, Fut>(
    concurrency: usize,
    options: &Options,
    call: F,
) -> (Measured, serde_json::Map<String, serde_json::Value>)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    let _ = closed_loop(concurrency, warmup(options), call.clone()).await;
    let before = machine::snapshot(None);
    let measured = closed_loop(concurrency, options.duration, call).await;
    let roles = machine::per_call(
        &before,
        &machine::snapshot(None),
        Duration::ZERO,
        measured.elapsed,
        measured.ops(),
    );
    (measured, roles)
}

async fn echo(options: &Options) -> anyhow::Result<Report> {
    let concurrency = options.concurrency_or(DEFAULT_CONCURRENCY);
    let (server, addr) = start_echo().await?;
    let channels = channels(addr, concurrency).await?;
    let call = move |w: usize, _n: u64| {
        let mut client = HealthClient::new(channels[w % channels.len()].clone());
        async move {
            client
                .check(HealthCheckRequest::default())
                .await
                .map(|_| ())
                .map_err(|s| s.to_string())
        }
    };
    let (measured, used) = against(&server, concurrency, options, call).await;
    Ok(Report::new(
        Scenario::Echo,
        options,
        concurrency,
        measured,
        Some(used),
    ))
}

async fn db_ceiling(options: &Options) -> anyhow::Result<Report> {
    let concurrency = options.concurrency_or(DEFAULT_CONCURRENCY);
    let db = Database::fresh(
        options.db,
        Scenario::DbCeiling.name(),
        options.database_url.as_deref(),
    )
    .await?;
    let ceiling = Arc::new(Ceiling::connect(&db.url).await?);
    let nonce = nonce()?;
    // Warm-up and measured calls share the numbering, so no id is used twice.
    let made = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let call = move |_w: usize, _n: u64| {
        let ceiling = Arc::clone(&ceiling);
        let id = format!(
            "cap_ceiling_{nonce}_{}",
            made.fetch_add(1, Ordering::Relaxed)
        );
        async move {
            ceiling
                .insert_then_update(&id)
                .await
                .map_err(|e| format!("{e:#}"))
        }
    };
    let (measured, roles) = measured_alone(concurrency, options, call).await;
    Ok(Report::new(Scenario::DbCeiling, options, concurrency, measured, None).with_fields(roles))
}

async fn db_read_ceiling(options: &Options) -> anyhow::Result<Report> {
    let concurrency = options.concurrency_or(DEFAULT_CONCURRENCY);
    let rows = 10_000u64;
    let db = Database::fresh(
        options.db,
        Scenario::DbReadCeiling.name(),
        options.database_url.as_deref(),
    )
    .await?;
    let ceiling = Arc::new(Ceiling::connect(&db.url).await?);
    seed(&db.url, rows).await?;
    let call = move |w: usize, n: u64| {
        let ceiling = Arc::clone(&ceiling);
        let id = seeded_id(1 + spread(w, n, rows as usize) as u64);
        async move { ceiling.read(&id).await.map_err(|e| format!("{e:#}")) }
    };
    let (measured, roles) = measured_alone(concurrency, options, call).await;
    Ok(Report::new(
        Scenario::DbReadCeiling,
        options,
        concurrency,
        measured,
        None,
    )
    .with("rows", rows)
    .with_fields(roles))
}

/// The service with its sandbox, on a database of its own.
struct Stage {
    service: Service,
    sandbox: Sandbox,
    db: Database,
}

async fn stage(
    scenario: Scenario,
    options: &Options,
    latency: Duration,
    seed_rows: u64,
) -> anyhow::Result<Stage> {
    let binary: PathBuf = processes::service_binary()?;
    let db = Database::fresh(options.db, scenario.name(), options.database_url.as_deref()).await?;
    if seed_rows > 0 {
        processes::migrate(&binary, &db.url)?;
        seed(&db.url, seed_rows).await?;
    }
    let sandbox = start_sandbox(&binary, latency)?;
    let service = start_service(&ServiceSetup {
        binary: &binary,
        database_url: &db.url,
        sandbox_env: &sandbox.service_env,
        env: &[],
        keep_log: false,
    })
    .await?;
    Ok(Stage {
        service,
        sandbox,
        db,
    })
}

/// PayPal authorizations made at the sandbox, each captured once.
struct Authorizations {
    ids: Vec<String>,
    next: AtomicUsize,
}

impl Authorizations {
    async fn make(origin: &str, count: usize) -> anyhow::Result<Authorizations> {
        let web = reqwest::Client::new();
        let url = format!("{origin}/sandbox/paypal/authorizations");
        let makers = 16;
        let tasks: Vec<_> = (0..makers)
            .map(|m| {
                let (web, url) = (web.clone(), url.clone());
                let share = count / makers + usize::from(m < count % makers);
                tokio::spawn(async move {
                    let mut ids = Vec::with_capacity(share);
                    for _ in 0..share {
                        let answer: serde_json::Value = web
                            .post(&url)
                            .json(&serde_json::json!({
                                "amount": {"currency_code": "USD", "value": "100.00"}
                            }))
                            .send()
                            .await?
                            .error_for_status()?
                            .json()
                            .await?;
                        let id = answer["id"].as_str().context("no authorization id")?;
                        ids.push(id.to_owned());
                    }
                    anyhow::Ok(ids)
                })
            })
            .collect();
        let mut ids = Vec::with_capacity(count);
        for task in tasks {
            ids.extend(task.await??);
        }
        Ok(Authorizations {
            ids,
            next: AtomicUsize::new(0),
        })
    }

    fn take(&self) -> Option<&str> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.ids.get(i).map(String::as_str)
    }

    fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.ids.len())
    }
}

fn capture_request(authorization_id: &str, request_id: String) -> CaptureRequest {
    CaptureRequest {
        provider: proto::Provider::Paypal as i32,
        authorization_id: authorization_id.to_owned(),
        amount: Some(proto::Money {
            currency_code: "USD".into(),
            value: "10.00".into(),
        }),
        request_id,
        ..Default::default()
    }
}

fn nonce() -> anyhow::Result<String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(hex::encode(bytes))
}

/// Callers that each capture a fresh authorization per call.
fn capturing(
    channels: Vec<Channel>,
    authorizations: Arc<Authorizations>,
    nonce: String,
) -> anyhow::Result<impl Fn(usize, u64) -> CaptureFuture + Send + Sync + Clone + 'static> {
    let bearer = bearer()?;
    let channels = Arc::new(channels);
    Ok(move |w: usize, n: u64| -> CaptureFuture {
        let mut client = CaptureServiceClient::new(channels[w % channels.len()].clone());
        let request = authorizations.take().map(|auth| {
            authed(
                capture_request(auth, format!("bench-{nonce}-{w}-{n}")),
                &bearer,
            )
        });
        Box::pin(async move {
            let request = request.ok_or("the bench made too few authorizations")?;
            let answer = client
                .capture(request)
                .await
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
                .into_inner();
            match answer.capture.map(|c| c.status) {
                Some(s) if s == proto::CaptureStatus::Completed as i32 => Ok(()),
                other => Err(format!("capture status {other:?}")),
            }
        })
    })
}

type CaptureFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'static>>;

async fn capture(
    scenario: Scenario,
    options: &Options,
    latency: Duration,
    default_concurrency: usize,
) -> anyhow::Result<Report> {
    let concurrency = options.concurrency_or(default_concurrency);
    let stage = stage(scenario, options, latency, 0).await?;
    let channels = channels(stage.service.grpc, concurrency).await?;
    let origin = stage.sandbox.origin.clone();

    // Warm up on a first batch, then make enough authorizations for the measured run at 1.5×
    // the rate the warm-up reached.
    let first = Arc::new(Authorizations::make(&origin, (concurrency * 20).max(2_000)).await?);
    let warm = closed_loop(
        concurrency,
        warmup(options),
        capturing(channels.clone(), Arc::clone(&first), nonce()?)?,
    )
    .await;
    database::analyze(&stage.db.url).await?;
    let rate = warm.rps().max(500.0);
    let needed = (rate * options.duration.as_secs_f64() * 1.5) as usize + concurrency * 4;
    let authorizations = Arc::new(Authorizations::make(&origin, needed).await?);
    let call = capturing(channels, Arc::clone(&authorizations), nonce()?)?;

    let watchers = match scenario {
        Scenario::CaptureWatched => Some(Watchers::open(stage.service.grpc).await?),
        _ => None,
    };
    let (measured, used) =
        measure(&stage.service.process, concurrency, options.duration, call).await;
    let mut report = Report::new(scenario, options, concurrency, measured, Some(used))
        .with("provider_latency_ms", latency.as_millis() as u64)
        .with("authorizations_used", authorizations.used() as u64);
    if let Some(watchers) = watchers {
        let (delivered, ended) = watchers.close().await;
        report = report
            .with("reading_watchers", READING_WATCHERS as u64)
            .with("silent_watchers", SILENT_WATCHERS as u64)
            .with("changes_delivered", delivered)
            .with("watches_ended_early", ended);
    }
    Ok(report)
}

/// `WatchCaptures` streams open on the bench tenant: some read every change, some never read.
struct Watchers {
    delivered: Arc<std::sync::atomic::AtomicU64>,
    ended: Arc<std::sync::atomic::AtomicU64>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    _silent: Vec<tonic::Streaming<proto::WatchCapturesResponse>>,
}

impl Watchers {
    async fn open(grpc: std::net::SocketAddr) -> anyhow::Result<Watchers> {
        let bearer = bearer()?;
        // Each on its own connection: HTTP/2's connection window is shared by a connection's
        // streams, so a client's silent stream would stall its other streams (a client's
        // matter, not the service's).
        let mut channels = Vec::new();
        for _ in 0..READING_WATCHERS + SILENT_WATCHERS {
            channels.extend(crate::load::channels(grpc, 1).await?);
        }
        let delivered = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let ended = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut readers = Vec::new();
        let mut silent = Vec::new();
        for i in 0..READING_WATCHERS + SILENT_WATCHERS {
            let mut client = CaptureServiceClient::new(channels[i % channels.len()].clone());
            let stream = client
                .watch_captures(authed(proto::WatchCapturesRequest::default(), &bearer))
                .await
                .context("opening a watch")?
                .into_inner();
            if i >= READING_WATCHERS {
                silent.push(stream);
                continue;
            }
            let (delivered, ended) = (Arc::clone(&delivered), Arc::clone(&ended));
            readers.push(tokio::spawn(async move {
                let mut stream = stream;
                loop {
                    match stream.message().await {
                        Ok(Some(_)) => {
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(None) | Err(_) => {
                            ended.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }));
        }
        Ok(Watchers {
            delivered,
            ended,
            readers,
            _silent: silent,
        })
    }

    /// Changes the reading watchers received, and how many of their streams ended early.
    async fn close(self) -> (u64, u64) {
        // What is in flight still arrives.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for reader in &self.readers {
            reader.abort();
        }
        (
            self.delivered.load(Ordering::Relaxed),
            self.ended.load(Ordering::Relaxed),
        )
    }
}

/// `capture_replay` and `get`: reads of captures made before the run.
async fn stored_reads(scenario: Scenario, options: &Options) -> anyhow::Result<Report> {
    let concurrency = options.concurrency_or(DEFAULT_CONCURRENCY);
    let stage = stage(scenario, options, Duration::ZERO, 0).await?;
    let channels = Arc::new(channels(stage.service.grpc, concurrency).await?);
    let bearer = bearer()?;
    let authorizations = Authorizations::make(&stage.sandbox.origin, STORED_CAPTURES).await?;
    let nonce = nonce()?;
    let mut stored = Vec::with_capacity(STORED_CAPTURES);
    let mut client = CaptureServiceClient::new(channels[0].clone());
    for (i, auth) in authorizations.ids.iter().enumerate() {
        let request = capture_request(auth, format!("stored-{nonce}-{i}"));
        let answer = client
            .capture(authed(request.clone(), &bearer))
            .await
            .context("making the captures to read")?
            .into_inner();
        let id = answer.capture.map(|c| c.id).context("no capture")?;
        stored.push((request, id));
    }
    let stored = Arc::new(stored);
    let call = move |w: usize, n: u64| -> CaptureFuture {
        let mut client = CaptureServiceClient::new(channels[w % channels.len()].clone());
        let (request, id) = &stored[spread(w, n, stored.len())];
        let (request, id) = (request.clone(), id.clone());
        let bearer = bearer.clone();
        Box::pin(async move {
            let found = if scenario == Scenario::Get {
                client
                    .get_capture(authed(GetCaptureRequest { id: id.clone() }, &bearer))
                    .await
                    .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
                    .into_inner()
                    .capture
            } else {
                let answer = client
                    .capture(authed(request, &bearer))
                    .await
                    .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
                    .into_inner();
                if !answer.replayed {
                    return Err("a repeated request was not replayed".into());
                }
                answer.capture
            };
            match found {
                Some(capture) if capture.id == id => Ok(()),
                _ => Err("the answer is not the stored capture".into()),
            }
        })
    };
    let (measured, used) = against(&stage.service.process, concurrency, options, call).await;
    Ok(
        Report::new(scenario, options, concurrency, measured, Some(used))
            .with("stored_captures", STORED_CAPTURES as u64),
    )
}

/// Pages of 100 over `rows` stored captures, each caller following next-page tokens.
async fn list(scenario: Scenario, options: &Options, rows: u64) -> anyhow::Result<Report> {
    let concurrency = options.concurrency_or(LIST_CONCURRENCY);
    let stage = stage(scenario, options, Duration::ZERO, rows).await?;
    let channels = Arc::new(channels(stage.service.grpc, concurrency).await?);
    let bearer = bearer()?;
    // Each caller's next page token and how deep it is.
    let positions: Arc<Vec<Mutex<(String, u64)>>> = Arc::new(
        (0..concurrency)
            .map(|_| Mutex::new((String::new(), 0)))
            .collect(),
    );
    let call = move |w: usize, _n: u64| -> CaptureFuture {
        let mut client = CaptureServiceClient::new(channels[w % channels.len()].clone());
        let positions = Arc::clone(&positions);
        let bearer = bearer.clone();
        Box::pin(async move {
            let token = positions[w]
                .lock()
                .map(|p| p.0.clone())
                .map_err(|_| "poisoned")?;
            let page = client
                .list_captures(authed(
                    ListCapturesRequest {
                        page_size: LIST_PAGE_SIZE,
                        page_token: token,
                        ..Default::default()
                    },
                    &bearer,
                ))
                .await
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
                .into_inner();
            if page.captures.len() != LIST_PAGE_SIZE as usize {
                return Err(format!("a page of {} captures", page.captures.len()));
            }
            let mut position = positions[w].lock().map_err(|_| "poisoned")?;
            position.1 += 1;
            if position.1 >= LIST_DEPTH || page.next_page_token.is_empty() {
                *position = (String::new(), 0);
            } else {
                position.0 = page.next_page_token;
            }
            Ok(())
        })
    };
    let (measured, used) = against(&stage.service.process, concurrency, options, call).await;
    Ok(
        Report::new(scenario, options, concurrency, measured, Some(used))
            .with("rows", rows)
            .with("page_size", LIST_PAGE_SIZE)
            .with("pages_deep", LIST_DEPTH),
    )
}

/// Start-up to the first SERVING answer (three starts: the first on a new database, which it
/// migrates), then the resident memory of the idle service.
async fn idle(options: &Options) -> anyhow::Result<Report> {
    const STARTS: usize = 3;
    const SETTLE: Duration = Duration::from_secs(2);
    let binary = processes::service_binary()?;
    let db = Database::fresh(
        options.db,
        Scenario::Idle.name(),
        options.database_url.as_deref(),
    )
    .await?;
    let sandbox = start_sandbox(&binary, Duration::ZERO)?;
    let setup = ServiceSetup {
        binary: &binary,
        database_url: &db.url,
        sandbox_env: &sandbox.service_env,
        env: &[],
        keep_log: false,
    };
    let mut ready_ms = Vec::with_capacity(STARTS);
    let mut last = None;
    for _ in 0..STARTS {
        drop(last.take());
        let service = start_service(&setup).await?;
        ready_ms.push(service.ready_after.as_secs_f64() * 1000.0);
        last = Some(service);
    }
    let service = last.context("no start")?;
    tokio::time::sleep(SETTLE).await;
    let rss = service.process.rss_mb();
    let mut sorted = ready_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let measured = Measured {
        elapsed: SETTLE,
        ..Measured::default()
    };
    Ok(Report::new(
        Scenario::Idle,
        options,
        0,
        measured,
        Some(ServerUse {
            cpu: Duration::ZERO,
            peak_rss_mb: rss,
            roles: serde_json::Map::new(),
        }),
    )
    .with("ready_ms", sorted[STARTS / 2])
    .with("ready_ms_new_database", ready_ms[0])
    .with("starts", STARTS as u64))
}
