//! `db_outage`: the database goes away under load and comes back, again and again, with no
//! restart of the service.
//! - PostgreSQL, through a TCP proxy: a reset (every connection cut with RST, new ones
//!   refused) and a blackhole (no byte either way, nothing closed), in turn, for 3 s each,
//!   then one of each lasting longer (60 s at 100 iterations).
//! - SQLite: another process holds the write lock for as long (reads go on, so the service
//!   stays ready and only writes fail; a read-only file or a full disk cannot be arranged
//!   here: the suite runs as root, whom file modes do not stop, and mounting a small file
//!   system needs privileges CI does not have).
//!
//! During an outage every call is answered `OK` or `UNAVAILABLE`, and on PostgreSQL both the
//! gRPC health service and `/readyz` say not ready from 2 s in. After it, the time until the
//! service is ready again and until a new capture completes is measured. At the end no
//! capture may be half-written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capture_service::proto::CaptureStatus;

use crate::client::{capture_request, Answer, Client};
use crate::fresh_database::Db;
use crate::outage::{Outage, Target};
use crate::processes::{PeakRss, Service};
use crate::report::Report;
use crate::rng::Rng;
use crate::truth::{self, Asked};
use crate::world::World;

const SHORT: Duration = Duration::from_secs(3);
/// Callers capturing all along.
const CALLERS: usize = 6;

/// A health observation: when it was asked, when both answers had come, and whether gRPC
/// health and `/readyz` said ready.
type Seen = (Instant, Instant, bool, bool);

/// A request, with when it was sent and when its answer came.
type Timed = (Instant, Instant, Asked);

pub async fn run(
    db: Db,
    iterations: u32,
    rng: &mut Rng,
    report: &mut Report,
) -> anyhow::Result<()> {
    let world = World::new(db, "db_outage", Duration::from_millis(20)).await?;
    let outage = Outage::prepare(match db {
        Db::Postgres => Target::Postgres(crate::fresh_database::postgres_server()?),
        Db::Sqlite => Target::Sqlite,
    })
    .await?;
    let routed = outage.route(&world.db.url);
    let mut service = world
        .start_service_with(
            &routed,
            &[
                ("CAPTURE_DATABASE_STATEMENT_TIMEOUT_MS", "1000".to_owned()),
                ("CAPTURE_DATABASE_ACQUIRE_TIMEOUT_MS", "1000".to_owned()),
                ("CAPTURE_READINESS_CHECK_INTERVAL_MS", "250".to_owned()),
            ],
        )
        .await?;
    let rss = PeakRss::watch(service.process.pid());
    let stop = Arc::new(AtomicBool::new(false));
    let asked: Arc<Mutex<Vec<Timed>>> = Arc::default();
    let health: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        tasks.push(tokio::spawn(capture_loop(
            caller,
            report.seed,
            world.sandbox.origin.clone(),
            Client::of(service.grpc)?,
            Arc::clone(&stop),
            Arc::clone(&asked),
        )));
    }
    tasks.push(tokio::spawn(watch_health(
        &service,
        Arc::clone(&stop),
        Arc::clone(&health),
    )));

    let long = Duration::from_secs(u64::from(iterations.min(10)) * 6);
    let mut outages: Vec<(&'static str, Instant, Instant)> = Vec::new();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for n in 0..iterations + 2 {
        let blackhole = if n < iterations {
            rng.coin()
        } else {
            n == iterations + 1
        };
        let lasts = if n < iterations { SHORT } else { long };
        let began = Instant::now();
        if blackhole {
            outage.blackhole().await?;
        } else {
            outage.begin().await?;
        }
        tokio::time::sleep(lasts).await;
        outage.end().await?;
        let ended = Instant::now();
        outages.push((if blackhole { "blackhole" } else { "reset" }, began, ended));
        // Back to normal for a while: recovery is measured in it.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        let _ = task.await;
    }

    let asked = std::mem::take(&mut *asked.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let health = std::mem::take(&mut *health.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    check_answers(report, &asked);
    if db == Db::Postgres {
        check_health(report, &outages, &health);
    }
    recovery(report, &outages, &health, &asked);

    let settle = world.settle(&service).await?;
    report.max_rss_mb = rss.mb();
    let records = Client::of(service.grpc)?.list_all().await?;
    let book = truth::book(&world.sandbox.origin).await?;
    world.kill(&mut service, report);
    let asked: Vec<Asked> = asked.into_iter().map(|(_, _, a)| a).collect();
    report.attempted = asked.len() as u64;
    truth::judge(report, &book, &records, &asked);
    truth::judge_rows(report, truth::half_written(&world.db.url).await?);
    world.scan_database_and_traces(report).await?;
    report.extra("outages", outages.len() as u64);
    report.extra("long_outage_seconds", long.as_secs());
    report.extra("settle_seconds", settle.as_secs_f64());
    Ok(())
}

/// Captures one after another (a new authorization each time) until stopped.
async fn capture_loop(
    caller: usize,
    seed: u64,
    sandbox: String,
    client: Client,
    stop: Arc<AtomicBool>,
    asked: Arc<Mutex<Vec<Timed>>>,
) {
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let provider = World::PROVIDERS[(caller + n) % World::PROVIDERS.len()];
        let Ok(authorization) = crate::world::authorize_at(&sandbox, provider, "10.00").await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let request_id = format!("outage-{seed}-{caller}-{n}");
        let started = Instant::now();
        let answer = client
            .capture(capture_request(
                provider,
                &authorization,
                "10.00",
                &request_id,
            ))
            .await;
        let answered = Instant::now();
        if let Ok(mut asked) = asked.lock() {
            asked.push((
                started,
                answered,
                Asked {
                    provider,
                    request_id,
                    authorization_id: authorization,
                    answers: vec![answer],
                    retry: false,
                },
            ));
        }
        n += 1;
        // Refused at once during an outage: a caller backs off a little.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// gRPC health and `/readyz`, every 100 ms, until stopped.
fn watch_health(
    service: &Service,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (grpc, http) = (service.grpc, service.http);
    async move {
        let client = reqwest::Client::builder()
            .timeout(crate::world::client_timeout())
            .build()
            .unwrap_or_default();
        while !stop.load(Ordering::SeqCst) {
            let at = Instant::now();
            let (grpc_ready, readyz) =
                crate::world::health(&client, grpc, http, "capture.v1.CaptureService", "/readyz")
                    .await;
            if let Ok(mut seen) = seen.lock() {
                seen.push((at, Instant::now(), grpc_ready, readyz));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// README: during an outage a capture is answered `UNAVAILABLE` (or as the provider decided);
/// never `INTERNAL` or `UNKNOWN`, never left without an answer.
fn check_answers(report: &mut Report, asked: &[Timed]) {
    use tonic::Code;
    let mut unavailable = 0u64;
    for (_, _, request) in asked {
        for answer in &request.answers {
            match answer {
                Answer::Refused {
                    code: Code::Unavailable,
                    ..
                } => unavailable += 1,
                Answer::Refused { code, message, .. }
                    if matches!(
                        code,
                        Code::Internal
                            | Code::Unknown
                            | Code::DataLoss
                            | Code::DeadlineExceeded
                            | Code::Cancelled
                            | Code::Aborted
                    ) =>
                {
                    report.wrong_answers += 1;
                    report.finding(format!(
                        "request {} answered {code:?} in an outage: {message}",
                        request.request_id
                    ));
                }
                Answer::Silence(why) => {
                    report.wrong_answers += 1;
                    report.finding(format!(
                        "request {} got no answer: {why}",
                        request.request_id
                    ));
                }
                // A provider's verdict, or a capture made.
                Answer::Refused { .. } | Answer::Recorded(_) => {}
            }
        }
    }
    report.extra("answered_unavailable", unavailable);
}

/// From 2 s into each outage to its end, both health checks must say not ready.
fn check_health(report: &mut Report, outages: &[(&str, Instant, Instant)], seen: &[Seen]) {
    let mut served = 0u64;
    for (mode, began, ended) in outages {
        let from = *began + Duration::from_secs(2);
        // Only what was asked and answered wholly within the outage.
        let within = seen
            .iter()
            .filter(|(asked, answered, ..)| *asked >= from && *answered < *ended);
        for (at, _, grpc, readyz) in within {
            if *grpc || *readyz {
                served += 1;
                report.finding(format!(
                    "{mode} outage: {} s in, gRPC health {grpc}, /readyz {readyz}",
                    at.duration_since(*began).as_secs_f32()
                ));
            }
        }
    }
    report.wrong_answers += served;
    report.extra("ready_during_outage", served);
}

/// After each outage: how long until both health checks say ready, and until the first
/// capture sent after it completes.
fn recovery(
    report: &mut Report,
    outages: &[(&str, Instant, Instant)],
    seen: &[Seen],
    asked: &[Timed],
) {
    let mut ready_ms = Vec::new();
    let mut completed_ms = Vec::new();
    for (_, _, ended) in outages {
        let ready = seen
            .iter()
            .find(|(asked, _, grpc, readyz)| asked >= ended && *grpc && *readyz);
        if let Some((_, answered, ..)) = ready {
            ready_ms.push(answered.duration_since(*ended).as_millis() as u64);
        }
        let completed = asked
            .iter()
            .filter(|(sent, _, request)| sent >= ended && completed(request))
            .map(|(_, answered, _)| answered.duration_since(*ended).as_millis() as u64)
            .min();
        completed_ms.extend(completed);
    }
    for (name, mut figures) in [
        ("recovery_ready_ms", ready_ms),
        ("recovery_capture_ms", completed_ms),
    ] {
        figures.sort_unstable();
        let median = figures.get(figures.len() / 2).copied().unwrap_or(0);
        report.extra(&format!("{name}_median"), median);
        report.extra(&format!("{name}_max"), figures.last().copied().unwrap_or(0));
        report.extra(&format!("{name}_measured"), figures.len() as u64);
    }
}

fn completed(request: &Asked) -> bool {
    matches!(
        request.answers.first(),
        Some(Answer::Recorded(capture)) if capture.status() == CaptureStatus::Completed
    )
}
