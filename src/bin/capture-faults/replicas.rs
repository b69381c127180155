//! `replicas`: two service processes on one PostgreSQL database and one sandbox.
//! 1. 100 concurrent identical Captures (one `request_id`) spread over both: one provider
//!    capture, and every caller (retrying an `UNAVAILABLE` as told) ends with the same answer.
//! 2. 200 concurrent different captures of 1.00 against one 100.00 authorization: the sum
//!    captured never exceeds it, at the sandbox or in the database.
//! 3. Each iteration, captures in flight on both, then one replica is killed with SIGKILL: the
//!    other settles its work once its leases lapse.
//!
//! Every authorization is observed by the sandbox, which lists each capture request it gets:
//! no capture may be at the provider twice at once (two requests of one capture less than the
//! sandbox's latency apart, so the first was still unanswered when the second came).

use std::collections::HashMap;
use std::time::Duration;

use capture_service::proto::{self, CaptureStatus};
use capture_service::sandbox::Attempt;
use rust_decimal::Decimal;

use crate::client::{capture_request, cut_by_kill, Answer, Client};
use crate::fresh_database::Db;
use crate::processes::PeakRss;
use crate::report::Report;
use crate::rng::Rng;
use crate::truth::{self, Asked};
use crate::world::World;

const LATENCY: Duration = Duration::from_millis(50);

pub async fn run(
    db: Db,
    iterations: u32,
    rng: &mut Rng,
    report: &mut Report,
) -> anyhow::Result<()> {
    if db != Db::Postgres {
        report.extra(
            "skipped",
            "replicas share one PostgreSQL database; a SQLite file belongs to one process",
        );
        return Ok(());
    }
    let world = World::new(db, "replicas", LATENCY).await?;
    let mut replicas = [world.start_service().await?, world.start_service().await?];
    let mut rss: Vec<PeakRss> = replicas
        .iter()
        .map(|r| PeakRss::watch(r.process.pid()))
        .collect();
    let mut asked = Vec::new();

    // 1. One request, 100 callers.
    let authorization = world
        .authorize_observed(proto::Provider::Paypal, "10.00", &[])
        .await?;
    let request = capture_request(
        proto::Provider::Paypal,
        &authorization,
        "10.00",
        "replicas-identical",
    );
    let clients = [Client::of(replicas[0].grpc)?, Client::of(replicas[1].grpc)?];
    let mut calls = Vec::new();
    for n in 0..100 {
        let client = clients[n % 2].clone();
        let request = request.clone();
        calls.push(tokio::spawn(async move {
            until_definite(&client, request).await
        }));
    }
    let mut finals = Vec::new();
    let mut unavailable_first = 0u64;
    for call in calls {
        let answers = call.await?;
        if matches!(
            answers.first(),
            Some(Answer::Refused {
                code: tonic::Code::Unavailable,
                ..
            })
        ) {
            unavailable_first += 1;
        }
        finals.push(answers.last().map(describe).unwrap_or_default());
        asked.push(Asked {
            provider: proto::Provider::Paypal,
            request_id: request.request_id.clone(),
            authorization_id: authorization.clone(),
            answers,
            retry: true,
        });
    }
    report.attempted += 1;
    let distinct: std::collections::BTreeSet<&String> = finals.iter().collect();
    if distinct.len() != 1 {
        report.wrong_answers += distinct.len() as u64 - 1;
        report.finding(format!(
            "100 identical requests ended with different answers: {distinct:?}"
        ));
    }
    report.extra("identical_first_answers_unavailable", unavailable_first);

    // 2. 200 different captures of 1.00 against 100.00.
    let authorization = world
        .authorize_observed(proto::Provider::Paypal, "100.00", &[])
        .await?;
    let mut calls = Vec::new();
    for n in 0..200 {
        let client = clients[n % 2].clone();
        let request = capture_request(
            proto::Provider::Paypal,
            &authorization,
            "1.00",
            &format!("replicas-share-{n}"),
        );
        calls.push(tokio::spawn(async move {
            let answers = until_definite(&client, request.clone()).await;
            (request.request_id, answers)
        }));
    }
    for call in calls {
        let (request_id, answers) = call.await?;
        asked.push(Asked {
            provider: proto::Provider::Paypal,
            request_id,
            authorization_id: authorization.clone(),
            answers,
            retry: true,
        });
    }
    report.attempted += 200;

    // 3. Kill one replica while both have captures in flight.
    for iteration in 0..iterations {
        let clients = [Client::of(replicas[0].grpc)?, Client::of(replicas[1].grpc)?];
        let mut calls = Vec::new();
        for n in 0..6usize {
            let provider = World::PROVIDERS[(iteration as usize + n) % World::PROVIDERS.len()];
            let authorization = world.authorize_observed(provider, "10.00", &[]).await?;
            let request_id = format!("replicas-{}-{iteration}-{n}", report.seed);
            let request = capture_request(provider, &authorization, "10.00", &request_id);
            let client = clients[n % 2].clone();
            calls.push((
                provider,
                authorization,
                request_id,
                tokio::spawn(async move { client.capture(request).await }),
            ));
        }
        report.attempted += 6;
        tokio::time::sleep(Duration::from_millis(
            rng.below(LATENCY.as_millis() as u64 * 2),
        ))
        .await;
        let victim = rng.below(2) as usize;
        let answered: Vec<bool> = calls.iter().map(|c| c.3.is_finished()).collect();
        world.kill(&mut replicas[victim], report);
        for ((provider, authorization_id, request_id, call), answered) in
            calls.into_iter().zip(answered)
        {
            let answer = cut_by_kill(call, answered).await;
            // Left to the replicas' reconcilers: no retry.
            asked.push(Asked {
                provider,
                request_id,
                authorization_id,
                answers: vec![answer],
                retry: false,
            });
        }
        replicas[victim] = world.start_service().await?;
        rss[victim] = PeakRss::watch(replicas[victim].process.pid());
        report.max_rss_mb = report
            .max_rss_mb
            .max(rss.iter().map(PeakRss::mb).fold(0.0, f64::max));
    }

    let settle = world.settle(&replicas[0]).await?;
    report.max_rss_mb = report
        .max_rss_mb
        .max(rss.iter().map(PeakRss::mb).fold(0.0, f64::max));
    let records = Client::of(replicas[0].grpc)?.list_all().await?;
    let book = truth::book(&world.sandbox.origin).await?;
    let attempts = truth::attempts(&world.sandbox.origin).await?;
    judge_overlaps(report, &attempts);
    for replica in &mut replicas {
        world.kill(replica, report);
    }
    // The shared authorization: never more captured than authorized, on either side.
    let charged: Decimal = book
        .iter()
        .filter(|c| c.authorization_id == authorization)
        .map(|c| c.amount.value.parse::<Decimal>().unwrap_or_default())
        .sum();
    let recorded: Decimal = records
        .iter()
        .filter(|r| r.authorization_id == authorization && r.status() == CaptureStatus::Completed)
        .map(|r| {
            r.amount
                .as_ref()
                .map(|m| m.value.parse::<Decimal>().unwrap_or_default())
                .unwrap_or_default()
        })
        .sum();
    let limit = Decimal::new(10_000, 2);
    if charged > limit || recorded > limit {
        report.wrong_answers += 1;
        report.finding(format!(
            "100.00 authorized, {charged} charged, {recorded} recorded"
        ));
    }
    report.extra("shared_authorization_charged", charged.to_string());
    report.extra("shared_authorization_recorded", recorded.to_string());
    report.extra("settle_seconds", settle.as_secs_f64());
    truth::judge(report, &book, &records, &asked);
    truth::judge_rows(report, truth::half_written(&world.db.url).await?);
    world.scan_database_and_traces(report).await?;
    Ok(())
}

/// Counts the captures that were at the provider twice at once: two requests of one capture
/// (one authorization, one key) arriving less than the sandbox's latency apart.
fn judge_overlaps(report: &mut Report, attempts: &[Attempt]) {
    let mut of: HashMap<(&str, Option<&str>), Vec<u64>> = HashMap::new();
    for attempt in attempts {
        let capture = (attempt.authorization_id.as_str(), attempt.key.as_deref());
        of.entry(capture).or_default().push(attempt.at_ms);
    }
    let held = LATENCY.as_millis() as u64;
    let mut twice = 0u64;
    for ((authorization, _), mut arrivals) in of {
        arrivals.sort_unstable();
        if arrivals.windows(2).any(|pair| pair[1] - pair[0] < held) {
            twice += 1;
            report.finding(format!(
                "a capture of {authorization} was at the provider twice at once: {arrivals:?}"
            ));
        }
    }
    report.retry_violations += twice;
    report.extra("provider_requests_observed", attempts.len() as u64);
    report.extra("at_the_provider_twice_at_once", twice);
}

/// The request until a definite answer, as a caller told `UNAVAILABLE` retries (at most 20
/// times); every answer it got.
async fn until_definite(client: &Client, request: proto::CaptureRequest) -> Vec<Answer> {
    let mut answers = Vec::new();
    for _ in 0..20 {
        let answer = client.capture(request.clone()).await;
        let definite = answer.is_definite();
        answers.push(answer);
        if definite {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    answers
}

/// An answer as compared between callers: the capture and its status, or the error's code.
fn describe(answer: &Answer) -> String {
    match answer {
        Answer::Recorded(capture) => format!("{} {:?}", capture.id, capture.status()),
        Answer::Refused { code, .. } => format!("{code:?}"),
        Answer::Silence(why) => format!("no answer ({why})"),
    }
}
