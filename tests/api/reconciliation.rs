//! The reconciler settles captures whose outcome was left open: Checkout.com's accepted-but-
//! unconfirmed captures, captures whose provider call timed out, and captures a crash cut off
//! between their commit and their provider call. On SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use crate::common::mock_provider::{MockProvider, Reply};
use crate::common::*;
use crate::on_both_databases;
use capture_service::domain::{CaptureCommand, CaptureStatus as DomainStatus, ReleaseRules};
use capture_service::proto::{self, CaptureStatus, CaptureStatusReason};
use capture_service::store::{Begin, NewCapture, Store};
use tonic::Code;

on_both_databases!(
    a_checkout_capture_awaiting_confirmation_is_completed_by_the_reconciler,
    a_declined_checkout_capture_is_declined_and_frees_the_authorization,
    a_capture_left_processing_by_a_timeout_is_resolved_without_a_retry,
    a_capture_cut_off_by_a_crash_is_captured_once_by_the_reconciler,
    a_cybersource_capture_whose_answer_was_lost_is_settled_by_transaction_search,
);

/// The app with a reconciler that looks every 100 ms at captures of any age.
async fn spawn_reconciling(db: Db) -> Result<TestApp, Box<dyn std::error::Error>> {
    TestApp::spawn_with(db, |config| {
        config.reconcile.interval = Duration::from_millis(100);
        config.reconcile.min_age = Duration::ZERO;
        config.providers.max_retries = 0;
    })
    .await
}

/// Records `command` of tenant A as `PROCESSING`, the way a process that committed it and died
/// before calling the provider leaves it once its request's lease has run out; its id.
async fn recorded_as_a_crash_leaves_it(
    store: &Store,
    command: &CaptureCommand,
) -> Result<String, Box<dyn std::error::Error>> {
    let id = capture_service::capture::new_capture_id().map_err(|e| e.to_string())?;
    let begun = store
        .begin_capture(&NewCapture {
            id: &id,
            tenant: "tenant-a",
            account: "default",
            command,
            lease_micros: 0,
            release_rules: ReleaseRules::NONE,
        })
        .await?;
    assert!(matches!(begun, Begin::Created(_)), "{begun:?}");
    Ok(id)
}

/// Reads the capture until its status is no longer `from` (at most 10 s).
async fn settled(
    app: &TestApp,
    id: &str,
    from: CaptureStatus,
) -> Result<proto::Capture, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let capture = app.get(TENANT_A_KEY, id).await?;
        if capture.status() != from || Instant::now() > deadline {
            return Ok(capture);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_checkout_capture_awaiting_confirmation_is_completed_by_the_reconciler(
    db: Db,
) -> TestResult {
    let app = spawn_reconciling(db).await?;
    let payment = app
        .authorize_at("checkout", "EUR", "80.00", "APPROVE")
        .await?;
    let accepted = app
        .captured(capture_request(
            proto::Provider::Checkout,
            &payment,
            money("EUR", "30.00"),
        ))
        .await?;
    assert_eq!(accepted.status(), CaptureStatus::Pending);
    let confirmed = settled(&app, &accepted.id, CaptureStatus::Pending).await?;
    assert_eq!(confirmed.status(), CaptureStatus::Completed);
    assert_eq!(confirmed.provider_capture_id, accepted.provider_capture_id);
    assert_eq!(confirmed.captured_amount, money("EUR", "30.00"));
    app.stop().await
}

async fn a_declined_checkout_capture_is_declined_and_frees_the_authorization(db: Db) -> TestResult {
    let app = spawn_reconciling(db).await?;
    let payment = app
        .authorize_at("checkout", "USD", "50.00", "DECLINED")
        .await?;
    let mut request = capture_request(proto::Provider::Checkout, &payment, usd("50.00"));
    request.authorized_amount = usd("50.00");
    let accepted = app.captured(request).await?;
    assert_eq!(accepted.status(), CaptureStatus::Pending);
    let declined = settled(&app, &accepted.id, CaptureStatus::Pending).await?;
    assert_eq!(declined.status(), CaptureStatus::Declined);
    // The declined capture no longer holds the authorized 50.00 in the ledger: the service
    // lets a new capture of the full amount through to Checkout.com.
    let mut again = capture_request(proto::Provider::Checkout, &payment, usd("50.00"));
    again.authorized_amount = usd("50.00");
    let retried = app.captured(again).await?;
    assert_eq!(retried.status(), CaptureStatus::Pending);
    app.stop().await
}

async fn a_capture_left_processing_by_a_timeout_is_resolved_without_a_retry(db: Db) -> TestResult {
    let app = spawn_reconciling(db).await?;
    let auth = app.authorize("USD", "100.00", "TIMEOUT").await?;
    let id = unknown_outcome(
        app.capture(paypal_capture(&auth, usd("25.00"))).await,
        "paypal",
    )?;
    let resolved = settled(&app, &id, CaptureStatus::Processing).await?;
    assert_eq!(resolved.status(), CaptureStatus::Completed);
    assert_eq!(resolved.captured_amount, usd("25.00"));
    // PayPal answered the re-sent request with the first capture: 75.00 is all that is left.
    let over = app.capture(paypal_capture(&auth, usd("75.01"))).await;
    assert_code(&over, Code::FailedPrecondition);
    app.stop().await
}

/// Cybersource has no idempotency key and the answer is lost (the emulator holds it past the
/// connector's timeout): the reconciler finds the capture by Transaction Search under our
/// capture id and reads it, instead of leaving it to a person.
async fn a_cybersource_capture_whose_answer_was_lost_is_settled_by_transaction_search(
    db: Db,
) -> TestResult {
    let app = spawn_reconciling(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "TIMEOUT")
        .await?;
    let id = unknown_outcome(
        app.capture(capture_request(
            proto::Provider::Cybersource,
            &auth,
            usd("25.00"),
        ))
        .await,
        "cybersource",
    )?;
    let resolved = settled(&app, &id, CaptureStatus::Processing).await?;
    assert_eq!(resolved.status(), CaptureStatus::Completed);
    assert_eq!(resolved.captured_amount, usd("25.00"));
    assert_eq!(resolved.provider_status, "TRANSMITTED");
    assert!(!resolved.provider_capture_id.is_empty());
    // The audit trail names who made each change.
    let store = Store::connect(&app.database_url).await?;
    let event = |kind: &str, status: &str, source: &str| {
        (kind.to_owned(), status.to_owned(), source.to_owned())
    };
    assert_eq!(
        store.events(&id).await?,
        [
            event("CREATED", "PROCESSING", "api"),
            event("OUTCOME_UNKNOWN", "PROCESSING", "api"),
            event("PROVIDER_OUTCOME", "COMPLETED", "reconciler"),
        ]
    );
    app.stop().await
}

async fn a_capture_cut_off_by_a_crash_is_captured_once_by_the_reconciler(db: Db) -> TestResult {
    let app = spawn_reconciling(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    // A process committed the capture as PROCESSING and died before calling PayPal.
    let command = CaptureCommand::try_from(paypal_capture(&auth, usd("60.00")))
        .map_err(|v| format!("{v:?}"))?;
    let store = Store::connect(&app.database_url).await?;
    let id = recorded_as_a_crash_leaves_it(&store, &command).await?;

    let resolved = settled(&app, &id, CaptureStatus::Processing).await?;
    assert_eq!(resolved.status(), CaptureStatus::Completed);
    assert_eq!(
        resolved.status_details.map(|d| d.reason()),
        Some(CaptureStatusReason::Unspecified)
    );
    let stored = store.get_any(&id).await?;
    assert_eq!(stored.status, DomainStatus::Completed);
    // Captured once: 40.00 remains at PayPal.
    let rest = app.capture(paypal_capture(&auth, usd("40.00"))).await?;
    assert_eq!(
        rest.capture.map(|c| c.status()),
        Some(CaptureStatus::Completed)
    );
    assert_code(
        &app.capture(paypal_capture(&auth, usd("0.01"))).await,
        Code::FailedPrecondition,
    );
    app.stop().await
}

/// A pass looks at up to 64 captures at once (README, "The reconciler"): behind a PayPal that
/// holds each answer half a second, 100 due captures are looked at 64 at a time. Looked at one
/// by one, the most held at once would be 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciler_pass_looks_at_64_captures_at_once() -> TestResult {
    let paypal = MockProvider::paypal_granting_tokens().await?;
    // Recorded PROCESSING, as a crashed process leaves them, while no reconciler runs.
    let base = paypal.url();
    let maker = TestApp::spawn_with(Db::Postgres, move |config| {
        use_paypal_at(config, base);
        config.reconcile.interval = Duration::ZERO;
    })
    .await?;
    let store = Store::connect(&maker.database_url).await?;
    let mut ids = Vec::new();
    for n in 0..100 {
        let authorization = format!("AUTH-WAVE-{n}");
        paypal.default_for(
            http::Method::POST,
            &format!("/v2/payments/authorizations/{authorization}/capture"),
            move |_| {
                Reply::json(
                    201,
                    format!(
                        r#"{{"id":"CAP-WAVE-{n}","status":"COMPLETED","amount":{{"currency_code":"USD","value":"1.00"}}}}"#
                    ),
                )
                .after(Duration::from_millis(500))
            },
        );
        let command = CaptureCommand::try_from(paypal_capture(&authorization, usd("1.00")))
            .map_err(|v| format!("{v:?}"))?;
        ids.push(recorded_as_a_crash_leaves_it(&store, &command).await?);
    }

    let base = paypal.url();
    let url = maker.database_url.clone();
    let reconciling = TestApp::spawn_with(Db::Postgres, move |config| {
        use_paypal_at(config, base);
        config.database_url = url.into();
        config.reconcile.interval = Duration::from_millis(50);
        config.reconcile.min_age = Duration::ZERO;
        config.providers.max_retries = 0;
    })
    .await?;
    for id in &ids {
        let capture = settled(&reconciling, id, CaptureStatus::Processing).await?;
        assert_eq!(capture.status(), CaptureStatus::Completed, "{id}");
    }
    assert_eq!(paypal.most_held_at_once(), 64);
    reconciling.stop().await?;
    maker.stop().await
}
