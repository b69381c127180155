//! Black-box tests of capturing at Cybersource: the real app on SQLite and on PostgreSQL, called
//! through the generated gRPC client, capturing at the sandbox's Cybersource emulator (which
//! verifies every HTTP Signature the real connector sends).

mod common;

use capture_service::proto::{self, CaptureStatus, CaptureStatusReason, ListCapturesRequest};
use common::*;
use tonic::{Code, Status};

on_both_databases!(
    a_full_capture_completes_with_cybersources_status_kept,
    money_in_each_currency_round_trips_exactly,
    multiple_partial_captures_are_taken_until_the_authorization_is_used_up,
    a_final_capture_closes_the_authorization,
    an_over_capture_is_refused_by_cybersource_with_its_code_kept,
    an_unknown_authorization_is_not_found,
    a_capture_in_another_currency_fails_precondition,
    a_voided_authorization_fails_precondition,
    a_capture_without_any_amount_is_refused_before_anything_is_stored,
    without_an_amount_the_authorized_amount_is_captured_in_full,
    a_provider_5xx_leaves_the_capture_processing,
    a_provider_timeout_leaves_the_capture_processing_and_a_retry_does_not_capture_twice,
    a_malformed_provider_body_leaves_the_capture_processing,
);

fn cybersource_capture(
    authorization_id: &str,
    amount: Option<proto::Money>,
) -> proto::CaptureRequest {
    capture_request(proto::Provider::Cybersource, authorization_id, amount)
}

async fn captured(
    app: &TestApp,
    request: proto::CaptureRequest,
) -> Result<proto::Capture, Box<dyn std::error::Error>> {
    Ok(app.capture(request).await?.capture.ok_or("no capture")?)
}

async fn refused(
    app: &TestApp,
    request: proto::CaptureRequest,
) -> Result<Status, Box<dyn std::error::Error>> {
    Ok(app
        .capture(request)
        .await
        .err()
        .ok_or("expected an error")?)
}

/// The ErrorInfo reason, `provider_code` and the stored capture of a refused capture.
async fn refusal(
    app: &TestApp,
    status: &Status,
) -> Result<(String, String, proto::Capture), Box<dyn std::error::Error>> {
    let (reason, metadata) = error_info(status).ok_or("no ErrorInfo")?;
    let code = metadata.get("provider_code").cloned().unwrap_or_default();
    let id = metadata.get("capture_id").ok_or("no capture id")?;
    let stored = app.get(TENANT_A_KEY, id).await?;
    Ok((reason, code, stored))
}

async fn a_full_capture_completes_with_cybersources_status_kept(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "APPROVE")
        .await?;
    let mut request = cybersource_capture(&auth, usd("100.00"));
    request.reference = "order-42".into();
    request.metadata.insert("channel".into(), "web".into());
    let capture = captured(&app, request).await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    assert_eq!(capture.provider_status, "PENDING");
    assert_eq!(capture.provider_capture_id.len(), 22);
    assert_eq!(capture.captured_amount, usd("100.00"));
    assert!(capture.seller_receivable_breakdown.is_none());
    assert_eq!(capture.reference, "order-42");
    assert_eq!(app.get(TENANT_A_KEY, &capture.id).await?, capture);
    app.stop().await
}

async fn money_in_each_currency_round_trips_exactly(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    for (currency, value) in [
        ("USD", "0.01"),
        ("JPY", "1000"),
        ("TND", "123.456"),
        ("BHD", "1.234"),
    ] {
        let auth = app
            .authorize_at("cybersource", currency, value, "APPROVE")
            .await?;
        let capture = captured(&app, cybersource_capture(&auth, money(currency, value))).await?;
        assert_eq!(capture.status(), CaptureStatus::Completed, "{currency}");
        let read = app.get(TENANT_A_KEY, &capture.id).await?;
        assert_eq!(read.amount, money(currency, value));
        assert_eq!(read.captured_amount, money(currency, value));
    }
    app.stop().await
}

async fn multiple_partial_captures_are_taken_until_the_authorization_is_used_up(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "EUR", "100.00", "APPROVE")
        .await?;
    for value in ["30.00", "30.00", "40.00"] {
        let capture = captured(&app, cybersource_capture(&auth, money("EUR", value))).await?;
        assert_eq!(capture.status(), CaptureStatus::Completed);
    }
    let status = refused(&app, cybersource_capture(&auth, money("EUR", "0.01"))).await?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    let (_, code, stored) = refusal(&app, &status).await?;
    assert_eq!(code, "EXCEEDS_AUTH_AMOUNT");
    assert_eq!(stored.status(), CaptureStatus::Failed);
    let listed = app
        .list(
            TENANT_A_KEY,
            ListCapturesRequest {
                authorization_id: auth,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(listed.captures.len(), 4);
    app.stop().await
}

async fn a_final_capture_closes_the_authorization(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "APPROVE")
        .await?;
    captured(&app, cybersource_capture(&auth, usd("30.00"))).await?;
    let mut last = cybersource_capture(&auth, usd("20.00"));
    last.final_capture = true;
    let closed = captured(&app, last).await?;
    assert!(closed.final_capture);
    assert_eq!(closed.status(), CaptureStatus::Completed);
    let status = refused(&app, cybersource_capture(&auth, usd("1.00"))).await?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    let (reason, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
    assert_eq!(reason, "AUTHORIZATION_CLOSED");
    assert_eq!(metadata.get("closed_by"), Some(&closed.id));
    app.stop().await
}

async fn an_over_capture_is_refused_by_cybersource_with_its_code_kept(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "10.00", "APPROVE")
        .await?;
    let status = refused(&app, cybersource_capture(&auth, usd("10.01"))).await?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    let (reason, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
    assert_eq!(reason, "PROVIDER_PRECONDITION_FAILED");
    assert!(metadata.get("debug_id").is_some_and(|d| !d.is_empty()));
    let (_, code, stored) = refusal(&app, &status).await?;
    assert_eq!(code, "EXCEEDS_AUTH_AMOUNT");
    assert_eq!(stored.status(), CaptureStatus::Failed);
    assert_eq!(
        stored.error.map(|e| (e.code, e.http_status)),
        Some(("EXCEEDS_AUTH_AMOUNT".into(), 400))
    );
    // Nothing was taken: the whole amount can still be captured.
    let capture = captured(&app, cybersource_capture(&auth, usd("10.00"))).await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    app.stop().await
}

async fn an_unknown_authorization_is_not_found(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let status = refused(
        &app,
        cybersource_capture("0000000000000000000000", usd("1.00")),
    )
    .await?;
    assert_eq!(status.code(), Code::NotFound);
    let (reason, code, stored) = refusal(&app, &status).await?;
    assert_eq!(reason, "PROVIDER_RESOURCE_NOT_FOUND");
    assert_eq!(code, "MISSING_AUTH");
    assert_eq!(stored.status(), CaptureStatus::Failed);
    app.stop().await
}

async fn a_capture_in_another_currency_fails_precondition(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "APPROVE")
        .await?;
    let status = refused(&app, cybersource_capture(&auth, money("EUR", "10.00"))).await?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    let (_, code, stored) = refusal(&app, &status).await?;
    assert_eq!(code, "INVALID_DATA");
    let error = stored.error.ok_or("no error stored")?;
    assert!(
        error
            .message
            .contains("orderInformation.amountDetails.currency"),
        "{}",
        error.message
    );
    app.stop().await
}

async fn a_voided_authorization_fails_precondition(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "VOIDED")
        .await?;
    let status = refused(&app, cybersource_capture(&auth, usd("1.00"))).await?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    let (_, code, _) = refusal(&app, &status).await?;
    assert_eq!(code, "AUTH_ALREADY_REVERSED");
    app.stop().await
}

async fn a_capture_without_any_amount_is_refused_before_anything_is_stored(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "APPROVE")
        .await?;
    let status = refused(&app, cybersource_capture(&auth, None)).await?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["amount"]);
    let listed = app
        .list(TENANT_A_KEY, ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());
    app.stop().await
}

async fn without_an_amount_the_authorized_amount_is_captured_in_full(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "JPY", "1500", "APPROVE")
        .await?;
    let mut request = cybersource_capture(&auth, None);
    request.authorized_amount = money("JPY", "1500");
    let capture = captured(&app, request).await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    assert_eq!(capture.captured_amount, money("JPY", "1500"));
    let status = refused(&app, cybersource_capture(&auth, money("JPY", "1"))).await?;
    assert_eq!(status.code(), Code::FailedPrecondition);
    app.stop().await
}

async fn a_provider_5xx_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "SERVER_ERROR")
        .await?;
    let status = refused(&app, cybersource_capture(&auth, usd("5.00"))).await?;
    assert_eq!(status.code(), Code::Unavailable);
    let (reason, _, stored) = refusal(&app, &status).await?;
    assert_eq!(reason, "PROVIDER_OUTCOME_UNKNOWN");
    assert_eq!(stored.status(), CaptureStatus::Processing);
    assert_eq!(
        stored.status_details.map(|d| d.reason()),
        Some(CaptureStatusReason::ProviderOutcomeUnknown)
    );
    app.stop().await
}

async fn a_provider_timeout_leaves_the_capture_processing_and_a_retry_does_not_capture_twice(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "10.00", "TIMEOUT")
        .await?;
    let request = cybersource_capture(&auth, usd("6.00"));
    let status = refused(&app, request.clone()).await?;
    assert_eq!(status.code(), Code::Unavailable);
    let (reason, _, stored) = refusal(&app, &status).await?;
    assert_eq!(reason, "PROVIDER_OUTCOME_UNKNOWN");
    assert_eq!(stored.status(), CaptureStatus::Processing);
    // The retry re-sends the same capture (same clientReferenceInformation.code): Cybersource
    // calls it a duplicate, which confirms nothing new; the capture stays PROCESSING.
    let again = refused(&app, request).await?;
    assert_eq!(again.code(), Code::Unavailable);
    let (_, _, same) = refusal(&app, &again).await?;
    assert_eq!(
        (same.id.as_str(), same.status()),
        (stored.id.as_str(), CaptureStatus::Processing)
    );
    // One capture at Cybersource: 4.00 remain, 4.01 is refused there.
    let over = refused(&app, cybersource_capture(&auth, usd("4.01"))).await?;
    assert_eq!(over.code(), Code::FailedPrecondition);
    let (_, code, _) = refusal(&app, &over).await?;
    assert_eq!(code, "EXCEEDS_AUTH_AMOUNT");
    app.stop().await
}

async fn a_malformed_provider_body_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "MALFORMED_BODY")
        .await?;
    let status = refused(&app, cybersource_capture(&auth, usd("5.00"))).await?;
    assert_eq!(status.code(), Code::Unavailable);
    let (reason, _, stored) = refusal(&app, &status).await?;
    assert_eq!(reason, "PROVIDER_OUTCOME_UNKNOWN");
    assert_eq!(stored.status(), CaptureStatus::Processing);
    app.stop().await
}
