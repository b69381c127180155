//! `kill9_release`: the service is killed with SIGKILL while it releases authorizations, and
//! started again on the same database. Each iteration releases a few authorizations at once,
//! providers in turn, some after a partial capture (PaymentOptions' is then released by the
//! provider itself, with no call), and kills the service 0 to 40 ms after the releases left:
//! before the release is recorded, between its record and the provider's void, while the void is
//! answered, or after. Half the iterations retry each release with its `request_id` after the
//! restart; the others leave them to the reconciler.
//!
//! The verdict, per authorization, from the sandbox's holds (`GET /sandbox/book/holds`):
//! - released twice: more than one release at the provider;
//! - over: captured plus released above what was authorized;
//! - lost: the provider released it, and the service does not say it is released (`RELEASED`,
//!   or `CLOSED` by a capture that released the rest) with that amount;
//! - wrong: the service says released (or a caller was told `COMPLETED`) and the provider did
//!   not release it;
//! - stuck: still `RELEASING` after the settle phase.

use std::time::{Duration, Instant};

use capture_service::proto::{self, AuthorizationStatus, CaptureStatus};
use serde::Deserialize;
use tonic::Code;

use crate::client::{capture_request, cut_by_kill, Answer, Client};
use crate::report::{Report, Stuck};
use crate::rng::Rng;
use crate::truth::{self, provider_name};
use crate::world::World;

/// Releases started together in each iteration.
const TOGETHER: usize = 3;

/// The kill lands this many milliseconds after the releases left, at most: about as long as a
/// release takes here (an unoptimized build, CI's short pass, is slower).
const KILL_WINDOW_MS: u64 = if cfg!(debug_assertions) { 40 } else { 12 };

/// What the authorizations are made of, and the partial capture some take first.
const AUTHORIZED: &str = "10.00";
const PARTIAL: &str = "4.00";

/// One authorization at the sandbox and what became of it (`GET /sandbox/book/holds`).
#[derive(Debug, Deserialize)]
struct Hold {
    provider: String,
    authorization_id: String,
    authorized: Money,
    captured: Money,
    released: Money,
    releases: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Money {
    value: String,
}

impl Money {
    fn cents(&self) -> i64 {
        cents(&self.value)
    }
}

fn cents(value: &str) -> i64 {
    value
        .parse::<rust_decimal::Decimal>()
        .ok()
        .and_then(|v| i64::try_from(v * rust_decimal::Decimal::from(100)).ok())
        .unwrap_or(i64::MIN)
}

/// One release a caller asked for, and every answer it got.
struct Asked {
    provider: proto::Provider,
    authorization_id: String,
    request_id: String,
    answers: Vec<Result<proto::Release, Answer>>,
}

impl Asked {
    fn request(&self) -> proto::ReleaseAuthorizationRequest {
        proto::ReleaseAuthorizationRequest {
            provider: self.provider as i32,
            authorization_id: self.authorization_id.clone(),
            authorized_amount: Some(usd(AUTHORIZED)),
            request_id: self.request_id.clone(),
            ..Default::default()
        }
    }
}

fn usd(value: &str) -> proto::Money {
    proto::Money {
        currency_code: "USD".to_owned(),
        value: value.to_owned(),
    }
}

/// A definite answer: the release settled, or was refused for good.
fn is_definite(answer: &Result<proto::Release, Answer>) -> bool {
    match answer {
        Ok(release) => !matches!(
            release.status(),
            CaptureStatus::Processing | CaptureStatus::Pending | CaptureStatus::Unspecified
        ),
        Err(answer) => answer.is_definite(),
    }
}

/// Whether the provider documents a release after a partial capture (Cybersource releases
/// the rest only through a final capture).
fn releases_after_a_capture(provider: proto::Provider) -> bool {
    provider != proto::Provider::Cybersource
}

pub async fn run(
    world: &World,
    iterations: u32,
    rng: &mut Rng,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut service = world.start_service().await?;
    let mut asked: Vec<Asked> = Vec::new();
    let mut after_capture = 0u64;
    for iteration in 0..iterations {
        let client = Client::of(service.grpc)?;
        let retry = rng.coin();
        let mut calls = Vec::with_capacity(TOGETHER);
        for n in 0..TOGETHER {
            let provider =
                World::PROVIDERS[(iteration as usize * TOGETHER + n) % World::PROVIDERS.len()];
            let authorization_id = world.authorize(provider, AUTHORIZED).await?;
            if releases_after_a_capture(provider) && rng.coin() {
                let request_id = format!("kill9r-cap-{}-{iteration}-{n}", report.seed);
                let mut capture =
                    capture_request(provider, &authorization_id, PARTIAL, &request_id);
                // As a careful caller does: the service then knows what the release leaves.
                capture.authorized_amount = Some(usd(AUTHORIZED));
                client.capture_as_told(capture, 10).await;
                after_capture += 1;
            }
            let one = Asked {
                provider,
                authorization_id,
                request_id: format!("kill9r-{}-{iteration}-{n}", report.seed),
                answers: Vec::new(),
            };
            let request = one.request();
            let client = client.clone();
            calls.push(tokio::spawn(async move { client.release(request).await }));
            asked.push(one);
        }
        report.attempted += TOGETHER as u64;
        tokio::time::sleep(Duration::from_millis(rng.below(KILL_WINDOW_MS))).await;
        let answered_before_kill: Vec<bool> = calls.iter().map(|c| c.is_finished()).collect();
        world.kill(&mut service, report);
        let from = asked.len() - TOGETHER;
        for ((one, call), answered) in asked[from..]
            .iter_mut()
            .zip(calls)
            .zip(answered_before_kill)
        {
            let answer = match call.await {
                Ok(Ok(release)) => Ok(release),
                Ok(Err(answer)) => {
                    let finished = tokio::spawn(async move { answer });
                    Err(cut_by_kill(finished, answered).await)
                }
                Err(e) => Err(Answer::Silence(e.to_string())),
            };
            one.answers.push(answer);
        }
        service = world.start_service().await?;
        if retry {
            let client = Client::of(service.grpc)?;
            for one in &mut asked[from..] {
                for _ in 0..10 {
                    if one.answers.last().is_some_and(is_definite) {
                        break;
                    }
                    let answer = client.release(one.request()).await;
                    one.answers.push(answer);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }
    let client = Client::of(service.grpc)?;
    let settle = settle(&client, &asked).await;
    let holds: Vec<Hold> = reqwest::get(format!("{}/sandbox/book/holds", world.sandbox.origin))
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut states = Vec::with_capacity(asked.len());
    for one in &asked {
        states.push(
            client
                .authorization(one.provider, &one.authorization_id)
                .await
                .ok(),
        );
    }
    world.kill(&mut service, report);
    for (one, state) in asked.iter().zip(&states) {
        judge(report, one, state.as_ref(), &holds);
    }
    truth::judge_rows(report, truth::half_written(&world.db.url).await?);
    world.scan_database_and_traces(report).await?;
    report.extra("releases_after_a_capture", after_capture);
    report.extra(
        "cut_by_kill",
        asked
            .iter()
            .filter(|one| matches!(one.answers.first(), Some(Err(Answer::Silence(_)))))
            .count() as u64,
    );
    report.extra("settle_seconds", settle.as_secs_f64());
    report.extra(
        "released_at_provider",
        holds.iter().filter(|h| !h.releases.is_empty()).count() as u64,
    );
    Ok(())
}

/// Waits (at most 60 s) until no release the callers asked for is still `RELEASING`. Not for
/// PaymentOptions': with no lookup, a void whose answer was lost stays open for a person (as
/// its captures do; README "Providers").
async fn settle(client: &Client, asked: &[Asked]) -> Duration {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let mut open = false;
        for one in asked
            .iter()
            .filter(|one| one.provider != proto::Provider::PaymentOptions)
        {
            let state = client
                .authorization(one.provider, &one.authorization_id)
                .await;
            open |= state.is_ok_and(|a| a.status() == AuthorizationStatus::Releasing);
        }
        if !open {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    started.elapsed()
}

/// One authorization: the sandbox's hold against the service's word and the callers' answers.
fn judge(report: &mut Report, one: &Asked, state: Option<&proto::Authorization>, holds: &[Hold]) {
    let name = provider_name(one.provider);
    let Some(hold) = holds
        .iter()
        .find(|h| h.authorization_id == one.authorization_id && h.provider == name)
    else {
        report.lost += 1;
        report.finding(format!(
            "{name} {}: not in the sandbox's holds",
            one.authorization_id
        ));
        return;
    };
    let released_at_provider = !hold.releases.is_empty();
    if released_at_provider {
        report.charged_at_provider += 1;
    }
    if hold.releases.len() > 1 {
        report.doubled += 1;
        report.finding(format!(
            "{name} {}: released {} times at the provider",
            one.authorization_id,
            hold.releases.len()
        ));
    }
    if hold.captured.cents() + hold.released.cents() > hold.authorized.cents() {
        report.doubled += 1;
        report.finding(format!(
            "{name} {}: captured {} + released {} > authorized {}",
            one.authorization_id, hold.captured.value, hold.released.value, hold.authorized.value
        ));
    }
    let status = state.map(|s| s.status());
    let released_here = state.is_some_and(|s| s.released_by() != proto::ReleasedBy::Unspecified);
    if released_here {
        report.recorded_completed += 1;
    }
    match (released_at_provider, status) {
        // Closed: a capture released the rest at the provider (PaymentOptions), which the
        // service shows whether or not the release's own request was recorded.
        (true, Some(AuthorizationStatus::Released | AuthorizationStatus::Closed)) => {
            let recorded = state
                .and_then(|s| s.released_amount.as_ref())
                .map(|m| cents(&m.value));
            if recorded != Some(hold.released.cents()) {
                report.wrong_answers += 1;
                report.finding(format!(
                    "{name} {}: released {} at the provider, recorded {recorded:?} cents",
                    one.authorization_id, hold.released.value
                ));
            }
        }
        (true, Some(AuthorizationStatus::Releasing))
        | (false, Some(AuthorizationStatus::Releasing)) => {
            report.stuck += 1;
            report.stuck_captures.push(Stuck {
                capture_id: one.request_id.clone(),
                provider: name.clone(),
                status: "RELEASING".to_owned(),
                why: why_open(one.provider, released_at_provider),
            });
        }
        (true, _) => {
            report.lost += 1;
            report.finding(format!(
                "{name} {}: released at the provider, recorded {status:?}",
                one.authorization_id
            ));
        }
        (false, _) if released_here => {
            report.wrong_answers += 1;
            report.finding(format!(
                "{name} {}: recorded released, never released at the provider",
                one.authorization_id
            ));
        }
        (false, _) => {}
    }
    for answer in &one.answers {
        let breach = match answer {
            Ok(release)
                if release.status() == CaptureStatus::Completed && !released_at_provider =>
            {
                Some("told COMPLETED, never released".to_owned())
            }
            Err(Answer::Refused { code, message, .. })
                if !matches!(code, Code::Unavailable | Code::ResourceExhausted) =>
            {
                Some(format!("{code:?}: {message}"))
            }
            _ => None,
        };
        if let Some(breach) = breach {
            report.wrong_answers += 1;
            report.finding(format!("{name} {}: {breach}", one.authorization_id));
        }
    }
}

fn why_open(provider: proto::Provider, released_at_provider: bool) -> String {
    let released = if released_at_provider {
        "released"
    } else {
        "not released"
    };
    match provider {
        proto::Provider::PaymentOptions => format!(
            "{released} at PaymentOptions, which documents no lookup and no answer to a second \
             void: once a void's answer is lost, neither the reconciler nor a retry can learn \
             the outcome, so it stays RELEASING for a person to settle in the PaymentOptions portal"
        ),
        _ => format!("{released} at the provider, not settled within the settle phase"),
    }
}
