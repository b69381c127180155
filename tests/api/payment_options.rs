//! Black-box tests of captures at PaymentOptions: the real app on random ports, on SQLite and on
//! PostgreSQL, called through the generated gRPC client, capturing at the built-in
//! PaymentOptions emulator. Each asserts what a caller sees: the gRPC code, the `ErrorInfo`
//! reason and `provider_code`, and the stored capture read back with GetCapture.

use std::net::SocketAddr;

use crate::common::*;
use crate::on_both_databases;
use capture_service::proto::{
    self, CaptureRequest, CaptureStatus, CaptureStatusReason, ListCapturesRequest,
};
use capture_service::sandbox::{MoneyJson, NewAuthorization, Sandbox, Scenario};
use sea_orm::{ConnectionTrait, Database, Statement};
use tonic::Code;

on_both_databases!(
    a_full_amount_capture_completes_and_stores_only_the_masked_card_number,
    amounts_round_trip_exactly_in_each_currencys_minor_unit,
    a_capture_without_an_amount_is_refused_before_anything_is_stored,
    a_partial_capture_completes_and_releases_the_rest,
    a_second_partial_capture_is_refused_by_payment_options_with_its_code_kept,
    a_final_capture_closes_the_authorization_in_the_service,
    an_over_capture_is_refused_by_payment_options_and_captures_nothing,
    an_unknown_transaction_is_not_found_with_the_provider_code_kept,
    a_currency_mismatch_with_the_authorized_amount_is_refused_before_the_call,
    a_capture_in_another_currency_is_reported_in_the_authorizations_currency,
    an_issuer_decline_is_a_declined_capture_with_the_response_code,
    an_expired_or_voided_authorization_fails_precondition,
    a_provider_5xx_leaves_the_capture_processing,
    a_provider_timeout_leaves_the_capture_processing_and_a_retry_is_not_a_second_capture,
    a_malformed_provider_answer_leaves_the_capture_processing,
    a_pending_scenario_completes_at_once_because_payment_options_has_no_pending_capture,
    wrong_credentials_are_an_internal_error_and_the_capture_fails,
);

/// A PaymentOptions capture request with a fresh request id.
fn po_capture(authorization_id: &str, amount: Option<proto::Money>) -> CaptureRequest {
    capture_request(proto::Provider::PaymentOptions, authorization_id, amount)
}

async fn completed(
    app: &TestApp,
    request: CaptureRequest,
) -> Result<proto::Capture, Box<dyn std::error::Error>> {
    let capture = app.captured(request).await?;
    assert_eq!(capture.status(), CaptureStatus::Completed, "{capture:?}");
    Ok(capture)
}

/// Every stored provider answer, straight from the database.
async fn stored_answers(app: &TestApp) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let db = Database::connect(&app.database_url).await?;
    let rows = db
        .query_all(Statement::from_string(
            db.get_database_backend(),
            "SELECT provider_response FROM captures WHERE provider_response IS NOT NULL",
        ))
        .await?;
    let answers = rows
        .iter()
        .map(|row| row.try_get::<String>("", "provider_response"))
        .collect::<Result<Vec<_>, _>>()?;
    db.close().await?;
    Ok(answers)
}

async fn a_full_amount_capture_completes_and_stores_only_the_masked_card_number(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "USD", "100.00", "APPROVE")
        .await?;
    let mut request = po_capture(&auth, usd("100.00"));
    request.note_to_payer = "Thanks for your order".into();
    let response = app.capture(request).await?;
    assert!(!response.replayed);
    let capture = response.capture.ok_or("no capture")?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    assert_eq!(capture.provider_status, "INFO0001");
    assert_eq!(capture.provider_capture_id.len(), 36);
    assert_eq!(capture.captured_amount, usd("100.00"));
    assert_eq!(
        capture.seller_receivable_breakdown, None,
        "no fees reported"
    );
    assert_eq!(
        capture
            .processor_response
            .as_ref()
            .map(|p| p.response_code.as_str()),
        Some("0")
    );
    assert_eq!(app.get(TENANT_A_KEY, &capture.id).await?, capture);

    let answers = stored_answers(&app).await?;
    assert_eq!(answers.len(), 1);
    assert!(answers[0].contains("411111******1111"), "{}", answers[0]);
    assert!(!answers[0].contains("4111111111111111"));
    app.stop().await
}

async fn amounts_round_trip_exactly_in_each_currencys_minor_unit(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    for (currency, value) in [
        ("USD", "0.01"),
        ("USD", "99999999.99"),
        ("JPY", "1000"),
        ("TND", "123.456"),
        ("BHD", "0.005"),
    ] {
        let auth = app
            .authorize_at("payment_options", currency, value, "APPROVE")
            .await?;
        let capture = completed(&app, po_capture(&auth, money(currency, value))).await?;
        let read = app.get(TENANT_A_KEY, &capture.id).await?;
        assert_eq!(read.amount, money(currency, value));
        assert_eq!(read.captured_amount, money(currency, value), "{currency}");
    }
    // Eleven digits of minor units: PaymentOptions cannot take it.
    let status = error_of(app.capture(po_capture("any", usd("100000000.00"))).await)?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["amount.value"]);
    app.stop().await
}

async fn a_capture_without_an_amount_is_refused_before_anything_is_stored(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "USD", "100.00", "APPROVE")
        .await?;
    let mut request = po_capture(&auth, None);
    request.soft_descriptor = "SHOP".into();
    let status = error_of(app.capture(request).await)?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["amount", "soft_descriptor"]);
    let listed = app
        .list(TENANT_A_KEY, ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());
    // The authorization was left alone.
    completed(&app, po_capture(&auth, usd("100.00"))).await?;
    app.stop().await
}

async fn a_partial_capture_completes_and_releases_the_rest(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "EUR", "80.00", "APPROVE")
        .await?;
    let capture = completed(&app, po_capture(&auth, money("EUR", "25.50"))).await?;
    assert_eq!(capture.captured_amount, money("EUR", "25.50"));
    app.stop().await
}

async fn a_second_partial_capture_is_refused_by_payment_options_with_its_code_kept(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "USD", "100.00", "APPROVE")
        .await?;
    completed(&app, po_capture(&auth, usd("30.00"))).await?;
    let metadata = refused(
        app.capture(po_capture(&auth, usd("20.00"))).await,
        Code::FailedPrecondition,
        "PROVIDER_PRECONDITION_FAILED",
    )?;
    assert_eq!(detail(&metadata, "provider_code"), Some("ERR1005"));
    let stored = app.stored_capture(&metadata).await?;
    assert_failed_with(&stored, "ERR1005", 412);
    app.stop().await
}

async fn a_final_capture_closes_the_authorization_in_the_service(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "USD", "100.00", "APPROVE")
        .await?;
    let mut last = po_capture(&auth, usd("30.00"));
    last.final_capture = true;
    let closed = completed(&app, last).await?;
    let metadata = refused(
        app.capture(po_capture(&auth, usd("1.00"))).await,
        Code::FailedPrecondition,
        "AUTHORIZATION_CLOSED",
    )?;
    assert_eq!(metadata.get("closed_by"), Some(&closed.id));
    app.stop().await
}

async fn an_over_capture_is_refused_by_payment_options_and_captures_nothing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "USD", "100.00", "APPROVE")
        .await?;
    let (_, metadata) = refusal(
        app.capture(po_capture(&auth, usd("100.01"))).await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(detail(&metadata, "provider_code"), Some("ERR1004"));
    let stored = app.stored_capture(&metadata).await?;
    assert_eq!(stored.status(), CaptureStatus::Failed);
    assert_eq!(
        stored.status_details.map(|d| d.reason()),
        Some(CaptureStatusReason::ProviderRejected)
    );
    // Nothing was taken: the full amount can still be captured.
    completed(&app, po_capture(&auth, usd("100.00"))).await?;
    app.stop().await
}

async fn an_unknown_transaction_is_not_found_with_the_provider_code_kept(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let request = po_capture("00000000-0000-4000-a000-000000000000", usd("1.00"));
    let metadata = refused(
        app.capture(request).await,
        Code::NotFound,
        "PROVIDER_RESOURCE_NOT_FOUND",
    )?;
    assert_eq!(detail(&metadata, "provider_code"), Some("ERR1001"));
    let stored = app.stored_capture(&metadata).await?;
    assert_failed_with(&stored, "ERR1001", 404);
    app.stop().await
}

async fn a_currency_mismatch_with_the_authorized_amount_is_refused_before_the_call(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "USD", "100.00", "APPROVE")
        .await?;
    let mut request = po_capture(&auth, money("EUR", "10.00"));
    request.authorized_amount = usd("100.00");
    let status = error_of(app.capture(request).await)?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["authorized_amount"]);
    // Nothing reached PaymentOptions: the authorization is still whole.
    completed(&app, po_capture(&auth, usd("100.00"))).await?;
    app.stop().await
}

async fn a_capture_in_another_currency_is_reported_in_the_authorizations_currency(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    // PaymentOptions' request names no currency: the integer amount is taken in the
    // authorization's currency, and the capture says what was really captured.
    let auth = app
        .authorize_at("payment_options", "USD", "100.00", "APPROVE")
        .await?;
    let capture = completed(&app, po_capture(&auth, money("EUR", "10.00"))).await?;
    assert_eq!(capture.amount, money("EUR", "10.00"));
    assert_eq!(capture.captured_amount, usd("10.00"));
    app.stop().await
}

async fn an_issuer_decline_is_a_declined_capture_with_the_response_code(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "GBP", "40.00", "DECLINED")
        .await?;
    let capture = app
        .captured(po_capture(&auth, money("GBP", "40.00")))
        .await?;
    assert_eq!(capture.status(), CaptureStatus::Declined);
    assert_eq!(capture.provider_status, "ERR0005");
    let details = capture.status_details.clone().ok_or("no status details")?;
    assert_eq!(details.reason(), CaptureStatusReason::Other);
    assert_eq!(details.provider_reason, "5");
    assert_eq!(
        capture
            .processor_response
            .as_ref()
            .map(|p| p.response_code.as_str()),
        Some("5")
    );
    assert_eq!(capture.captured_amount, None);
    assert_eq!(app.get(TENANT_A_KEY, &capture.id).await?, capture);
    let answers = stored_answers(&app).await?;
    assert!(answers.iter().all(|a| !a.contains("4111111111111111")));
    app.stop().await
}

async fn an_expired_or_voided_authorization_fails_precondition(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    for (scenario, expected) in [("EXPIRED", "ERR1006"), ("VOIDED", "ERR1007")] {
        let auth = app
            .authorize_at("payment_options", "USD", "100.00", scenario)
            .await?;
        let status = error_of(app.capture(po_capture(&auth, usd("1.00"))).await)?;
        assert_eq!(status.code(), Code::FailedPrecondition, "{scenario}");
        let (_, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
        assert_eq!(detail(&metadata, "provider_code"), Some(expected));
        let stored = app.stored_capture(&metadata).await?;
        assert_eq!(stored.status(), CaptureStatus::Failed);
    }
    app.stop().await
}

async fn a_provider_5xx_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "USD", "100.00", "SERVER_ERROR")
        .await?;
    let result = app.capture(po_capture(&auth, usd("5.00"))).await;
    app.left_processing(result, "payment_options").await?;
    app.stop().await
}

async fn a_provider_timeout_leaves_the_capture_processing_and_a_retry_is_not_a_second_capture(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn_with(db, |config| config.providers.max_retries = 0).await?;
    // Observed by the sandbox, which lists every capture request that names it.
    let sandbox = format!("http://{}/sandbox", app.http_addr);
    let http = reqwest::Client::new();
    let observed: serde_json::Value = http
        .post(format!("{sandbox}/payment_options/authorizations"))
        .json(&serde_json::json!({
            "amount": {"currency_code": "USD", "value": "100.00"},
            "scenario": "TIMEOUT",
            "faults": [],
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let auth = observed["id"].as_str().ok_or("no id")?.to_owned();
    let request = po_capture(&auth, usd("5.00"));
    let first = app
        .left_processing(app.capture(request.clone()).await, "payment_options")
        .await?;
    // The retry is not sent to PaymentOptions: it has no idempotency key, and what a repeat
    // answers (a duplicate, or a lost connection) cannot tell what the first attempt did. The
    // capture stays unresolved rather than being taken twice or marked failed.
    let again = app
        .left_processing(app.capture(request).await, "payment_options")
        .await?;
    assert_eq!(again.id, first.id);
    let attempts: Vec<serde_json::Value> = http
        .get(format!("{sandbox}/attempts"))
        .send()
        .await?
        .json()
        .await?;
    let sent = attempts
        .iter()
        .filter(|a| a["authorization_id"] == auth.as_str())
        .count();
    assert_eq!(sent, 1, "the capture was sent once: {attempts:?}");
    // The first attempt did capture: a new capture is refused as already captured.
    let status = error_of(app.capture(po_capture(&auth, usd("1.00"))).await)?;
    let (_, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
    assert_eq!(detail(&metadata, "provider_code"), Some("ERR1005"));
    app.stop().await
}

async fn a_malformed_provider_answer_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "USD", "100.00", "MALFORMED_BODY")
        .await?;
    let result = app.capture(po_capture(&auth, usd("5.00"))).await;
    app.left_processing(result, "payment_options").await?;
    app.stop().await
}

async fn a_pending_scenario_completes_at_once_because_payment_options_has_no_pending_capture(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "USD", "10.00", "PENDING")
        .await?;
    completed(&app, po_capture(&auth, usd("10.00"))).await?;
    app.stop().await
}

async fn wrong_credentials_are_an_internal_error_and_the_capture_fails(db: Db) -> TestResult {
    // A sandbox of our own, so the app can be given a PaymentOptions account with a wrong key.
    let sandbox = Sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let sandbox_vars: Vec<(String, String)> = sandbox
        .service_env()
        .into_iter()
        .filter(|(name, _)| name.starts_with("CAPTURE_PAYMENT_OPTIONS_"))
        .collect();
    let auth = sandbox
        .create_authorization(
            capture_service::domain::Provider::PaymentOptions,
            NewAuthorization {
                amount: MoneyJson {
                    currency_code: "USD".into(),
                    value: "10.00".into(),
                },
                scenario: Scenario::Approve,
                faults: None,
            },
        )
        .await?;
    let app = TestApp::spawn_with(db, move |config| {
        let vars = &mut config.providers.sources;
        for (name, value) in sandbox_vars {
            vars.set_var(name, value);
        }
        vars.set_var("CAPTURE_PAYMENT_OPTIONS_API_KEY", "not-the-issued-key");
    })
    .await?;
    let status = error_of(app.capture(po_capture(&auth.id, usd("10.00"))).await)?;
    assert_eq!(status.code(), Code::Internal);
    let (reason, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
    assert_eq!(
        (reason.as_str(), detail(&metadata, "provider_code")),
        ("PROVIDER_AUTHENTICATION_FAILED", Some("ERR1002"))
    );
    assert!(!status.message().contains("not-the-issued-key"));
    assert_eq!(
        app.stored_capture(&metadata).await?.status(),
        CaptureStatus::Failed
    );
    app.stop().await?;
    sandbox.shutdown().await;
    Ok(())
}
