//! Black-box tests of capturing at Cybersource: the real app on SQLite and on PostgreSQL, called
//! through the generated gRPC client, capturing at the sandbox's Cybersource emulator (which
//! verifies every HTTP Signature the real connector sends).

use crate::common::*;
use crate::on_both_databases;
use capture_service::proto::{self, CaptureStatus, ListCapturesRequest};
use tonic::Code;

on_both_databases!(
    a_full_capture_completes_with_cybersources_status_kept,
    money_in_each_currency_round_trips_exactly,
    multiple_partial_captures_are_taken_until_the_authorization_is_used_up,
    captures_are_numbered_and_a_refused_one_gives_its_number_back,
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

async fn a_full_capture_completes_with_cybersources_status_kept(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "APPROVE")
        .await?;
    let mut request = cybersource_capture(&auth, usd("100.00"));
    request.reference = "order-42".into();
    request.metadata.insert("channel".into(), "web".into());
    let capture = app.captured(request).await?;
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
        let capture = app
            .captured(cybersource_capture(&auth, money(currency, value)))
            .await?;
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
        let capture = app
            .captured(cybersource_capture(&auth, money("EUR", value)))
            .await?;
        assert_eq!(capture.status(), CaptureStatus::Completed);
    }
    let (_, metadata) = refusal(
        app.capture(cybersource_capture(&auth, money("EUR", "0.01")))
            .await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("EXCEEDS_AUTH_AMOUNT")
    );
    let stored = app.stored_capture(&metadata).await?;
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

/// The emulator takes a second capture only with `captureSequenceNumber` and
/// `totalCaptureCount`, numbered from 1 without gaps (as processors do): each capture below
/// completes only if the service numbered it right.
async fn captures_are_numbered_and_a_refused_one_gives_its_number_back(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "60.00", "APPROVE")
        .await?;
    // 1 of 2.
    app.captured(cybersource_capture(&auth, usd("30.00")))
        .await?;
    // Would be 2 of 3; Cybersource refuses it (over the authorization): nothing was taken.
    let (_, metadata) = refusal(
        app.capture(cybersource_capture(&auth, usd("30.01"))).await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("EXCEEDS_AUTH_AMOUNT")
    );
    // 2 of 3 again, then 3 of 3 (final).
    let second = app
        .captured(cybersource_capture(&auth, usd("20.00")))
        .await?;
    assert_eq!(second.status(), CaptureStatus::Completed);
    let mut last = cybersource_capture(&auth, usd("10.00"));
    last.final_capture = true;
    let closed = app.captured(last).await?;
    assert_eq!(closed.status(), CaptureStatus::Completed);
    app.stop().await
}

async fn a_final_capture_closes_the_authorization(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "APPROVE")
        .await?;
    app.captured(cybersource_capture(&auth, usd("30.00")))
        .await?;
    let mut last = cybersource_capture(&auth, usd("20.00"));
    last.final_capture = true;
    let closed = app.captured(last).await?;
    assert!(closed.final_capture);
    assert_eq!(closed.status(), CaptureStatus::Completed);
    let metadata = refused(
        app.capture(cybersource_capture(&auth, usd("1.00"))).await,
        Code::FailedPrecondition,
        "AUTHORIZATION_CLOSED",
    )?;
    assert_eq!(metadata.get("closed_by"), Some(&closed.id));
    app.stop().await
}

async fn an_over_capture_is_refused_by_cybersource_with_its_code_kept(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "10.00", "APPROVE")
        .await?;
    let metadata = refused(
        app.capture(cybersource_capture(&auth, usd("10.01"))).await,
        Code::FailedPrecondition,
        "PROVIDER_PRECONDITION_FAILED",
    )?;
    assert!(metadata.get("debug_id").is_some_and(|d| !d.is_empty()));
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("EXCEEDS_AUTH_AMOUNT")
    );
    let stored = app.stored_capture(&metadata).await?;
    assert_failed_with(&stored, "EXCEEDS_AUTH_AMOUNT", 400);
    // Nothing was taken: the whole amount can still be captured.
    let capture = app
        .captured(cybersource_capture(&auth, usd("10.00")))
        .await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    app.stop().await
}

async fn an_unknown_authorization_is_not_found(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let metadata = refused(
        app.capture(cybersource_capture("0000000000000000000000", usd("1.00")))
            .await,
        Code::NotFound,
        "PROVIDER_RESOURCE_NOT_FOUND",
    )?;
    assert_eq!(detail(&metadata, "provider_code"), Some("MISSING_AUTH"));
    let stored = app.stored_capture(&metadata).await?;
    assert_eq!(stored.status(), CaptureStatus::Failed);
    app.stop().await
}

async fn a_capture_in_another_currency_fails_precondition(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "APPROVE")
        .await?;
    let (_, metadata) = refusal(
        app.capture(cybersource_capture(&auth, money("EUR", "10.00")))
            .await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(detail(&metadata, "provider_code"), Some("INVALID_DATA"));
    let stored = app.stored_capture(&metadata).await?;
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
    let (_, metadata) = refusal(
        app.capture(cybersource_capture(&auth, usd("1.00"))).await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("AUTH_ALREADY_REVERSED")
    );
    // The refusal names the capture it stored.
    app.stored_capture(&metadata).await?;
    app.stop().await
}

async fn a_capture_without_any_amount_is_refused_before_anything_is_stored(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "APPROVE")
        .await?;
    let status = error_of(app.capture(cybersource_capture(&auth, None)).await)?;
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
    let capture = app.captured(request).await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    assert_eq!(capture.captured_amount, money("JPY", "1500"));
    assert_code(
        &app.capture(cybersource_capture(&auth, money("JPY", "1")))
            .await,
        Code::FailedPrecondition,
    );
    app.stop().await
}

async fn a_provider_5xx_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "SERVER_ERROR")
        .await?;
    app.left_processing(
        app.capture(cybersource_capture(&auth, usd("5.00"))).await,
        "cybersource",
    )
    .await?;
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
    let stored = app
        .left_processing(app.capture(request.clone()).await, "cybersource")
        .await?;
    // The retry re-sends the same capture (same clientReferenceInformation.code): Cybersource
    // calls it a duplicate, which confirms nothing new; the capture stays PROCESSING.
    let (_, again) = refusal(app.capture(request).await, Code::Unavailable)?;
    let same = app.stored_capture(&again).await?;
    assert_eq!(
        (same.id.as_str(), same.status()),
        (stored.id.as_str(), CaptureStatus::Processing)
    );
    // One capture at Cybersource: 4.00 remain, 4.01 is refused there.
    let (_, over) = refusal(
        app.capture(cybersource_capture(&auth, usd("4.01"))).await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(detail(&over, "provider_code"), Some("EXCEEDS_AUTH_AMOUNT"));
    app.stored_capture(&over).await?;
    app.stop().await
}

async fn a_malformed_provider_body_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("cybersource", "USD", "100.00", "MALFORMED_BODY")
        .await?;
    app.left_processing(
        app.capture(cybersource_capture(&auth, usd("5.00"))).await,
        "cybersource",
    )
    .await?;
    app.stop().await
}
