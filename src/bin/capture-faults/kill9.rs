//! `kill9`: the service is killed with SIGKILL at a random point of a capture, and started
//! again on the same database. Each kill lands among a few concurrent captures (so SQLite's
//! group commit has batches to be cut in) at one of four points:
//! - before the provider call (a few milliseconds after the request left);
//! - while the sandbox holds its answer back (it has charged; its latency is running);
//! - after the sandbox answered, before the outcome can be committed;
//! - after the caller got its answer.
//!
//! Half the iterations retry every request with its `request_id` after the restart; the
//! others leave them to the reconciler. Then the settle phase waits for the open captures.

use std::time::{Duration, Instant};

use capture_service::sandbox::Charge;

use crate::client::{capture_request, cut_by_kill, Answer, Client};
use crate::processes::PeakRss;
use crate::report::Report;
use crate::rng::Rng;
use crate::truth::{self, Asked};
use crate::world::World;

/// How long the sandbox holds every answer back: the window of the second kill point.
pub const LATENCY: Duration = Duration::from_millis(150);

/// Captures started together in each iteration: the one the kill aims at, and others.
const TOGETHER: usize = 4;

const POINTS: [&str; 4] = [
    "before_provider_call",
    "while_provider_holds_answer",
    "after_provider_answered",
    "after_caller_answered",
];

pub async fn run(
    world: &World,
    iterations: u32,
    rng: &mut Rng,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut service = world.start_service().await?;
    let mut rss = PeakRss::watch(service.process.pid());
    let mut max_rss_mb: f64 = 0.0;
    let mut asked: Vec<Asked> = Vec::new();
    let mut kills = [0u64; POINTS.len()];
    let mut restart_ms: Vec<u128> = Vec::new();
    for iteration in 0..iterations {
        let client = Client::of(service.grpc)?;
        let point = rng.below(POINTS.len() as u64) as usize;
        let retry = rng.coin();
        // The aimed-at capture and the others, each on an authorization of its own, providers
        // in turn.
        let mut calls = Vec::with_capacity(TOGETHER);
        let mut started = Vec::with_capacity(TOGETHER);
        for n in 0..TOGETHER {
            let provider =
                World::PROVIDERS[(iteration as usize * TOGETHER + n) % World::PROVIDERS.len()];
            let authorization = world.authorize(provider, "10.00").await?;
            let request_id = format!("kill9-{}-{iteration}-{n}", report.seed);
            let request = capture_request(provider, &authorization, "10.00", &request_id);
            let client = client.clone();
            calls.push(tokio::spawn(async move { client.capture(request).await }));
            started.push((provider, authorization, request_id));
        }
        report.attempted += TOGETHER as u64;
        let (_, aimed_at, _) = &started[0];
        match point {
            0 => tokio::time::sleep(Duration::from_millis(rng.below(3))).await,
            1 => {
                world.wait_for_charge(aimed_at, &calls[0]).await?;
                let held = rng.below(LATENCY.as_millis() as u64 / 2);
                tokio::time::sleep(Duration::from_millis(held)).await;
            }
            2 => {
                world.wait_for_charge(aimed_at, &calls[0]).await?;
                let after = LATENCY + Duration::from_millis(rng.below(4));
                tokio::time::sleep(after).await;
            }
            _ => {
                // The aimed-at call's answer, then the kill.
                let first = calls.remove(0);
                let answer = first
                    .await
                    .unwrap_or_else(|e| Answer::Silence(e.to_string()));
                calls.insert(0, tokio::spawn(async move { answer }));
            }
        }
        kills[point] += 1;
        max_rss_mb = max_rss_mb.max(rss.mb());
        let answered_before_kill: Vec<bool> = calls.iter().map(|c| c.is_finished()).collect();
        world.kill(&mut service, report);
        let calls = started.into_iter().zip(calls).zip(answered_before_kill);
        for ((provider_call, call), answered) in calls {
            let (provider, authorization, request_id) = provider_call;
            let first = cut_by_kill(call, answered).await;
            asked.push(Asked {
                request_id,
                authorization_id: authorization,
                answers: vec![first],
                provider,
                retry,
            });
        }
        let restarted = Instant::now();
        service = world.start_service().await?;
        restart_ms.push(restarted.elapsed().as_millis());
        rss = PeakRss::watch(service.process.pid());
        if retry {
            let client = Client::of(service.grpc)?;
            let from = asked.len() - TOGETHER;
            for request in &mut asked[from..] {
                retry_until_definite(&client, request).await;
            }
        }
    }
    let settle = world.settle(&service).await?;
    max_rss_mb = max_rss_mb.max(rss.mb());
    let records = Client::of(service.grpc)?.list_all().await?;
    let book: Vec<Charge> = truth::book(&world.sandbox.origin).await?;
    world.kill(&mut service, report);
    truth::judge(report, &book, &records, &asked);
    truth::judge_rows(report, truth::half_written(&world.db.url).await?);
    world.scan_database_and_traces(report).await?;
    report.max_rss_mb = max_rss_mb;
    for (name, count) in POINTS.iter().zip(kills) {
        report.extra(&format!("kills_{name}"), count);
    }
    report.extra("settle_seconds", settle.as_secs_f64());
    restart_ms.sort_unstable();
    report.extra(
        "restart_ms_median",
        restart_ms.get(restart_ms.len() / 2).copied().unwrap_or(0) as u64,
    );
    report.extra(
        "retried_iterations",
        asked.iter().filter(|a| a.retry).count() as u64 / TOGETHER as u64,
    );
    Ok(())
}

/// The same request again, as a caller that got no definite answer does, a few times.
async fn retry_until_definite(client: &Client, request: &mut Asked) {
    if request.answers.last().is_some_and(Answer::is_definite) {
        return;
    }
    for _ in 0..10 {
        let answer = client
            .capture(capture_request(
                request.provider,
                &request.authorization_id,
                "10.00",
                &request.request_id,
            ))
            .await;
        let definite = answer.is_definite();
        request.answers.push(answer);
        if definite {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
