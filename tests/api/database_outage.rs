//! A database that blinks is `UNAVAILABLE` with `STORE_UNAVAILABLE` and `RetryInfo`, never
//! `INTERNAL`; a capture the provider took while the database was away names its capture id,
//! and a retry with the same `request_id` returns it, captured once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::Code;

use crate::common::counting_paypal::{self, Behaviour, Counter};
use crate::common::db_outage::{outage_of, Outage};
use crate::common::{
    detail, error_of, paypal_capture, refused, usd, use_paypal_at, Db, TestApp, TestResult,
    TENANT_A_KEY,
};
use crate::on_both_databases;
use capture_service::proto;
use tonic_types::StatusExt;

/// The app on `db` reached through `outage`, with PayPal at `paypal_url`.
async fn app_through(
    db: Db,
    outage: &Outage,
    paypal_url: &str,
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let paypal_url = paypal_url.to_owned();
    TestApp::spawn_with(db, |config| {
        config.database_url = outage.route(&config.database_url).into();
        config.limits.database_acquire_timeout_ms = 500;
        use_paypal_at(config, paypal_url);
    })
    .await
}

/// Asserts a `STORE_UNAVAILABLE` answer with `RetryInfo`; returns its `ErrorInfo` metadata.
fn store_unavailable<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
) -> Result<std::collections::HashMap<String, String>, Box<dyn std::error::Error>> {
    let status = error_of(result)?;
    assert!(
        status.get_details_retry_info().is_some(),
        "no RetryInfo: {status:?}"
    );
    refused(Err::<(), _>(status), Code::Unavailable, "STORE_UNAVAILABLE")
}

async fn a_capture_while_the_database_is_away_is_unavailable_and_a_retry_captures_once(
    db: Db,
) -> TestResult {
    let (paypal, counter) = counting_paypal::start().await?;
    let outage = outage_of(db).await?;
    let app = app_through(db, &outage, &paypal).await?;
    let request = paypal_capture("0VF52814937998046", usd("10.00"));

    outage.begin().await?;
    let metadata = store_unavailable(app.capture(request.clone()).await)?;
    // Nothing was recorded, so there is no capture to name, and PayPal was not called.
    assert_eq!(detail(&metadata, "capture_id"), None);
    assert_eq!(counter.captures(), 0);
    outage.end().await?;

    let capture = app.captured(request.clone()).await?;
    assert_eq!(capture.status(), proto::CaptureStatus::Completed);
    assert_eq!(counter.captures(), 1);
    assert_eq!(app.replayed(request).await?.id, capture.id);
    Ok(())
}

/// A PayPal whose first call takes the database away before it answers: a reset outage, or a
/// blackhole (`blackhole`) that swallows the statement recording its answer.
async fn paypal_that_breaks_the_database(
    outage: Arc<Outage>,
    blackhole: bool,
) -> Result<(String, Counter), std::io::Error> {
    let once = Arc::new(AtomicBool::new(false));
    counting_paypal::start_with(Behaviour {
        before_answer: Some(Arc::new(move || {
            let outage = Arc::clone(&outage);
            let first = !once.swap(true, Ordering::SeqCst);
            Box::pin(async move {
                if first && blackhole {
                    // The statement that records the answer is held: the claim of the
                    // capture's row in a transaction, or the single statement
                    // (`UPDATE captures AS c SET …`) that records it whole on PostgreSQL.
                    let _ = outage.blackhole_at(b"UPDATE captures").await;
                } else if first {
                    let _ = outage.begin().await;
                }
            })
        })),
        ..Behaviour::default()
    })
    .await
}

/// A retry of `request` settles `capture_id` as COMPLETED, and every PayPal call carried that
/// capture's own key.
async fn settles_on_retry_captured_once(
    app: &TestApp,
    request: proto::CaptureRequest,
    capture_id: &str,
    counter: &Counter,
) -> TestResult {
    let settled = app.replayed(request).await?;
    assert_eq!(settled.id, capture_id);
    assert_eq!(settled.status(), proto::CaptureStatus::Completed);
    let mut ids = counter.request_ids();
    ids.dedup();
    assert_eq!(
        ids,
        [capture_id],
        "every PayPal call carried the capture's own key"
    );
    Ok(())
}

async fn a_capture_the_provider_took_while_the_database_went_away_names_its_id_and_settles_on_retry(
    db: Db,
) -> TestResult {
    let outage = Arc::new(outage_of(db).await?);
    let (paypal, counter) = paypal_that_breaks_the_database(Arc::clone(&outage), false).await?;
    let app = app_through(db, &outage, &paypal).await?;
    let request = paypal_capture("0VF52814937998046", usd("25.00"));

    let result = app.capture(request.clone()).await;
    let metadata = store_unavailable(result)?;
    let capture_id = detail(&metadata, "capture_id")
        .ok_or("no capture id")?
        .to_owned();
    assert_eq!(counter.captures(), 1, "PayPal was called once");
    // PayPal's answer is known only in memory; nobody asks again while the database is away.
    tokio::time::sleep(Duration::from_secs(2)).await;
    outage.end().await?;

    // Once the database is back the service stores that answer by itself: no retry, no look,
    // no second PayPal call (at PaymentOptions, which has no lookup, nothing else could).
    let started = Instant::now();
    let stored = loop {
        let stored = app.get(TENANT_A_KEY, &capture_id).await?;
        if stored.status() != proto::CaptureStatus::Processing
            || started.elapsed() > Duration::from_secs(15)
        {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stored.status(), proto::CaptureStatus::Completed);
    assert_eq!(counter.captures(), 1, "stored from memory, not asked again");
    settles_on_retry_captured_once(&app, request, &capture_id, &counter).await
}

async fn reads_while_the_database_is_away_are_unavailable(db: Db) -> TestResult {
    let (paypal, _) = counting_paypal::start_with(Behaviour {
        delay: Duration::ZERO,
        ..Behaviour::default()
    })
    .await?;
    let outage = outage_of(db).await?;
    let app = app_through(db, &outage, &paypal).await?;
    let capture = app
        .captured(paypal_capture("0VF52814937998046", usd("1.00")))
        .await?;
    outage.begin().await?;
    // SQLite readers are not blocked by a writer (WAL); PostgreSQL's are cut off.
    let read = app.get(TENANT_A_KEY, &capture.id).await;
    let ready = reqwest::get(format!("http://{}/readyz", app.http_addr))
        .await?
        .status();
    match db {
        Db::Postgres => {
            store_unavailable(read)?;
            assert_eq!(ready, reqwest::StatusCode::SERVICE_UNAVAILABLE);
        }
        Db::Sqlite => {
            assert!(read.is_ok(), "{read:?}");
            assert_eq!(ready, reqwest::StatusCode::OK);
        }
    }
    let write = app
        .capture(paypal_capture("0VF52814937998046", usd("1.00")))
        .await;
    store_unavailable(write)?;
    outage.end().await?;
    assert_eq!(app.get(TENANT_A_KEY, &capture.id).await?.id, capture.id);
    let ready = reqwest::get(format!("http://{}/readyz", app.http_addr))
        .await?
        .status();
    assert_eq!(ready, reqwest::StatusCode::OK);
    Ok(())
}

/// The database stops answering (PostgreSQL: every packet dropped, nothing closed) while the
/// provider takes the capture: the caller hears `UNAVAILABLE` with the capture id within the
/// statement bound, not at the end of the outage; readiness says not ready just as fast; once
/// the database is back a retry settles the capture, taken once.
async fn a_blackholed_database_answers_unavailable_with_the_capture_id_within_the_bound(
    db: Db,
) -> TestResult {
    let outage = Arc::new(outage_of(db).await?);
    let (paypal, counter) = paypal_that_breaks_the_database(Arc::clone(&outage), true).await?;
    let paypal_url = paypal.clone();
    let app = TestApp::spawn_with(db, |config| {
        config.database_url = outage.route(&config.database_url).into();
        config.limits.database_acquire_timeout_ms = 500;
        config.limits.database_statement_timeout_ms = 1000;
        use_paypal_at(config, paypal_url);
    })
    .await?;
    let request = paypal_capture("0VF52814937998046", usd("25.00"));

    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(15), app.capture(request.clone()))
        .await
        .map_err(|_| "no answer within 15 s of a blackholed database")?;
    let took = started.elapsed();
    let metadata = store_unavailable(result)?;
    let capture_id = detail(&metadata, "capture_id")
        .ok_or("no capture id")?
        .to_owned();
    println!("blackholed database ({db:?}): UNAVAILABLE with the capture id after {took:?}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    assert_eq!(counter.captures(), 1, "PayPal was called once");
    if db == Db::Postgres {
        let started = Instant::now();
        let ready = tokio::time::timeout(
            Duration::from_secs(10),
            reqwest::get(format!("http://{}/readyz", app.http_addr)),
        )
        .await
        .map_err(|_| "/readyz did not answer within 10 s")??
        .status();
        assert_eq!(ready, reqwest::StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "/readyz answered after {:?}",
            started.elapsed()
        );
    }
    outage.end().await?;

    settles_on_retry_captured_once(&app, request, &capture_id, &counter).await
}

on_both_databases!(
    a_blackholed_database_answers_unavailable_with_the_capture_id_within_the_bound,
    a_capture_while_the_database_is_away_is_unavailable_and_a_retry_captures_once,
    a_capture_the_provider_took_while_the_database_went_away_names_its_id_and_settles_on_retry,
    reads_while_the_database_is_away_are_unavailable,
);

type Health = tonic_health::pb::health_client::HealthClient<tonic::transport::Channel>;
type HealthStatus = tonic_health::pb::health_check_response::ServingStatus;

/// What `grpc.health.v1.Health/Check` answers for `name`.
async fn health_of(health: &Health, name: &str) -> Result<HealthStatus, tonic::Status> {
    let answer = health
        .clone()
        .check(tonic_health::pb::HealthCheckRequest {
            service: name.to_owned(),
        })
        .await?
        .into_inner();
    Ok(answer.status())
}

/// Waits (at most 5 s) until `""` and the API both report `want`.
async fn until_health(health: &Health, want: HealthStatus) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = (
            health_of(health, "").await?,
            health_of(health, "capture.v1.CaptureService").await?,
        );
        if now == (want, want) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("still {now:?}, not {want:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next status a health `Watch` sends (at most 5 s).
async fn next_health(
    watch: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>,
) -> Result<HealthStatus, Box<dyn std::error::Error>> {
    let next = tokio::time::timeout(Duration::from_secs(5), watch.message())
        .await
        .map_err(|_| "no health change within 5 s")??;
    Ok(next.ok_or("the watch ended")?.status())
}

/// `grpc.health.v1` tells the truth: `NOT_SERVING` for `""` and the API while PostgreSQL
/// cannot be reached, `SERVING` again once it is back (no restart), a `Watch` sees each
/// change, and the `liveness` name stays `SERVING` throughout (a database outage must not
/// restart every pod).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_follows_the_database_through_an_outage() -> TestResult {
    let (paypal, _) = counting_paypal::start().await?;
    let outage = outage_of(Db::Postgres).await?;
    let app = TestApp::spawn_with(Db::Postgres, |config| {
        config.database_url = outage.route(&config.database_url).into();
        config.limits.database_acquire_timeout_ms = 500;
        config.limits.readiness_check_interval_ms = 100;
        use_paypal_at(config, paypal);
    })
    .await?;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))?
        .connect()
        .await?;
    let health = Health::new(channel);
    until_health(&health, HealthStatus::Serving).await?;
    let mut watch = health
        .clone()
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "capture.v1.CaptureService".into(),
        })
        .await?
        .into_inner();
    assert_eq!(next_health(&mut watch).await?, HealthStatus::Serving);

    outage.begin().await?;
    until_health(&health, HealthStatus::NotServing).await?;
    assert_eq!(next_health(&mut watch).await?, HealthStatus::NotServing);
    assert_eq!(health_of(&health, "liveness").await?, HealthStatus::Serving);
    let ready = reqwest::get(format!("http://{}/readyz", app.http_addr)).await?;
    assert_eq!(ready.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);

    outage.end().await?;
    until_health(&health, HealthStatus::Serving).await?;
    assert_eq!(next_health(&mut watch).await?, HealthStatus::Serving);
    app.stop().await
}
