//! `provider_faults`: the providers misbehave on purpose. Each iteration captures once at every
//! provider, on an authorization the sandbox observes with a random list of one to three faults
//! (its next POSTs meet them in turn): latency fixed or random (some past the service's
//! timeout), a cut mid-body, an HTML 502, a truncated JSON body, a body trickling past the
//! timeout, 429 with and without `Retry-After`, a 200 whose body says declined. One iteration
//! in eight also refuses every connection to the providers for a while (a TCP proxy closes its
//! listening socket: a refusal is a moment, not a property of one authorization).
//!
//! Callers retry `UNAVAILABLE` with the same `request_id`, as README says. Besides the book's
//! verdict, the attempts the sandbox saw are counted: every attempt of one capture carries one
//! idempotency key, PaymentOptions (no key, no lookup) is never sent a capture again after one
//! that reached it, `Retry-After` is waited out, and no capture draws more attempts than its
//! calls and the reconciler's looks allow.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use capture_service::proto;
use capture_service::sandbox::{Attempt, Fault};
use futures_util::StreamExt;

use crate::client::{capture_request, Answer, Client};
use crate::fresh_database::Db;
use crate::outage::TcpProxy;
use crate::processes::PeakRss;
use crate::report::Report;
use crate::rng::Rng;
use crate::truth::{self, Asked};
use crate::world::World;

/// The service's bound on one provider attempt, shorter than a trickle and some latencies.
const PROVIDER_TIMEOUT_SECONDS: u64 = 2;
/// The service's further attempts after a retryable failure (its default).
const MAX_RETRIES: usize = 2;
/// Capture calls a caller makes at most (the first and its retries).
const CALLS: usize = 4;
/// Iterations running at once.
const AT_ONCE: usize = 8;
/// Looks the reconciler may take at one capture in the settle phase, each one send at most.
const LOOKS: usize = 6;

pub async fn run(
    db: Db,
    iterations: u32,
    rng: &mut Rng,
    report: &mut Report,
) -> anyhow::Result<()> {
    let world = World::new(db, "provider_faults", Duration::ZERO).await?;
    let sandbox_addr = world.sandbox.origin.trim_start_matches("http://").parse()?;
    let proxy = Arc::new(TcpProxy::start(sandbox_addr).await?);
    let service = world
        .start_service_via(
            &format!("http://{}", proxy.addr()),
            &[(
                "CAPTURE_PROVIDER_TIMEOUT_SECONDS",
                PROVIDER_TIMEOUT_SECONDS.to_string(),
            )],
        )
        .await?;
    let rss = PeakRss::watch(service.process.pid());
    let client = Client::of(service.grpc)?;

    // Everything random is drawn here, from the seed, before anything runs.
    let mut plans = Vec::new();
    for iteration in 0..iterations {
        let faults: Vec<Vec<Fault>> = World::PROVIDERS
            .iter()
            .map(|_| (0..=rng.below(3)).map(|_| random_fault(rng)).collect())
            .collect();
        let refusal = (rng.below(8) == 0).then(|| Duration::from_millis(200 + rng.below(1300)));
        plans.push((iteration, faults, refusal));
    }
    let refusal_windows = plans.iter().filter(|(_, _, r)| r.is_some()).count();
    // When each refusal window began, in ms since the Unix epoch (as the sandbox's attempts).
    let refusals = Arc::new(tokio::sync::Mutex::new(Vec::<u64>::new()));
    let (world, seed) = (&world, report.seed);
    let results: Vec<anyhow::Result<Vec<Asked>>> = futures_util::stream::iter(plans)
        .map(|(iteration, faults, refusal)| {
            let (client, proxy) = (client.clone(), Arc::clone(&proxy));
            let refusals = Arc::clone(&refusals);
            async move {
                if let Some(window) = refusal {
                    tokio::spawn(async move {
                        let mut began = refusals.lock().await;
                        began.push(unix_ms());
                        proxy.refuse();
                        tokio::time::sleep(window).await;
                        proxy.accept_again();
                    });
                }
                let captures = World::PROVIDERS
                    .iter()
                    .zip(faults)
                    .map(|(&provider, faults)| {
                        let client = client.clone();
                        async move {
                            let authorization =
                                world.authorize_observed(provider, "10.00", &faults).await?;
                            let name = truth::provider_name(provider);
                            let request_id = format!("faults-{seed}-{iteration}-{name}");
                            Ok::<_, anyhow::Error>(
                                call(&client, provider, authorization, request_id).await,
                            )
                        }
                    });
                futures_util::future::try_join_all(captures).await
            }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let mut asked = Vec::new();
    for result in results {
        asked.extend(result?);
    }
    report.attempted = asked.len() as u64;
    report.extra("refusal_windows", refusal_windows as u64);

    let settle = world.settle(&service).await?;
    report.max_rss_mb = rss.mb();
    let records = client.list_all().await?;
    let book = truth::book(&world.sandbox.origin).await?;
    let attempts = truth::attempts(&world.sandbox.origin).await?;
    let mut service = service;
    world.kill(&mut service, report);
    truth::judge(report, &book, &records, &asked);
    truth::judge_rows(report, truth::half_written(&world.db.url).await?);
    world.scan_database_and_traces(report).await?;
    let refusals = refusals.lock().await.clone();
    judge_attempts(report, &attempts, &asked, &refusals);
    report.extra("settle_seconds", settle.as_secs_f64());
    Ok(())
}

fn random_fault(rng: &mut Rng) -> Fault {
    match rng.below(9) {
        0 => Fault::Latency { millis: 300 },
        1 => Fault::Latency {
            millis: rng.below(3 * 1000),
        },
        2 => Fault::ResetMidBody,
        3 => Fault::Html502,
        4 => Fault::TruncatedJson,
        5 => Fault::Trickle { millis: 100 },
        6 => Fault::RateLimited {
            retry_after: Some(1),
        },
        7 => Fault::RateLimited { retry_after: None },
        _ => Fault::Contradicting200,
    }
}

/// One caller's capture of 10.00 USD, asked again as README tells callers to.
async fn call(
    client: &Client,
    provider: proto::Provider,
    authorization_id: String,
    request_id: String,
) -> Asked {
    let request = capture_request(provider, &authorization_id, "10.00", &request_id);
    Asked {
        provider,
        request_id,
        authorization_id,
        answers: client.capture_as_told(request, CALLS).await,
        retry: true,
    }
}

/// Counts the sandbox's attempts against the retry rules; each breach is a finding.
fn judge_attempts(report: &mut Report, attempts: &[Attempt], asked: &[Asked], refusals: &[u64]) {
    let asked_of: HashMap<&str, &Asked> = asked
        .iter()
        .map(|a| (a.authorization_id.as_str(), a))
        .collect();
    let mut of_authorization: HashMap<&str, Vec<&Attempt>> = HashMap::new();
    for attempt in attempts {
        of_authorization
            .entry(attempt.authorization_id.as_str())
            .or_default()
            .push(attempt);
    }
    let mut breaches: Vec<String> = Vec::new();
    let mut most = 0;
    for (authorization, tries) in &of_authorization {
        most = most.max(tries.len());
        let provider = tries[0].provider.as_str();
        let asked = asked_of.get(authorization).copied();
        let history = history(tries, asked);
        if tries.iter().any(|t| t.key != tries[0].key) {
            breaches.push(format!(
                "{provider} {authorization}: attempts under different keys; {history}"
            ));
        }
        // PaymentOptions has neither key nor duplicate window to lean on: a capture it may
        // have taken is never sent again (Cybersource refuses a re-sent code as a duplicate).
        let keyless = provider == "payment_options";
        let reached = tries
            .iter()
            .position(|t| t.fault.is_none_or(Fault::reaches_provider));
        if keyless && reached.is_some_and(|at| at + 1 < tries.len()) {
            breaches.push(format!(
                "{provider} {authorization}: sent again after an attempt that reached it; \
                 {history}"
            ));
        }
        for pair in tries.windows(2) {
            if let Some(Fault::RateLimited {
                retry_after: Some(seconds),
            }) = pair[0].fault
            {
                // A refusal cuts every connection: the 429 may never have reached the service.
                let cut = refusals
                    .iter()
                    .any(|at| (pair[0].at_ms..=pair[1].at_ms).contains(at));
                if !cut && pair[1].at_ms + 50 < pair[0].at_ms + seconds * 1000 {
                    breaches.push(format!(
                        "{provider} {authorization}: Retry-After {seconds} s, sent again after \
                         {} ms; {history}",
                        pair[1].at_ms - pair[0].at_ms
                    ));
                }
            }
        }
        let calls = asked.map_or(1, |a| a.answers.len());
        let bound = (calls + LOOKS) * (1 + MAX_RETRIES);
        if tries.len() > bound {
            breaches.push(format!(
                "{provider} {authorization}: {} attempts, more than {bound}; {history}",
                tries.len()
            ));
        }
    }
    let count = |fault: fn(&Fault) -> bool| {
        attempts
            .iter()
            .filter(|a| a.fault.as_ref().is_some_and(fault))
            .count() as u64
    };
    report.extra("provider_attempts", attempts.len() as u64);
    report.extra("provider_attempts_max_per_capture", most as u64);
    report.extra(
        "attempts_faulted_latency",
        count(|f| matches!(f, Fault::Latency { .. })),
    );
    report.extra(
        "attempts_faulted_reset_mid_body",
        count(|f| *f == Fault::ResetMidBody),
    );
    report.extra("attempts_faulted_html_502", count(|f| *f == Fault::Html502));
    report.extra(
        "attempts_faulted_truncated_json",
        count(|f| *f == Fault::TruncatedJson),
    );
    report.extra(
        "attempts_faulted_trickle",
        count(|f| matches!(f, Fault::Trickle { .. })),
    );
    report.extra(
        "attempts_faulted_429",
        count(|f| matches!(f, Fault::RateLimited { .. })),
    );
    report.extra(
        "attempts_faulted_contradicting_200",
        count(|f| *f == Fault::Contradicting200),
    );
    report.retry_violations = breaches.len() as u64;
    for breach in breaches {
        report.finding(breach);
    }
}

/// What happened to one capture, to start a hunt from: the attempts the sandbox saw (ms since
/// it started, and the fault each met) and the answers its caller got.
fn history(tries: &[&Attempt], asked: Option<&Asked>) -> String {
    let tries: Vec<String> = tries
        .iter()
        .map(|t| format!("{} ms {:?}", t.at_ms, t.fault))
        .collect();
    let answers: Vec<String> = asked
        .map(|a| a.answers.iter().map(Answer::summary).collect())
        .unwrap_or_default();
    format!(
        "attempts [{}], answers [{}]",
        tries.join(", "),
        answers.join(", ")
    )
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
