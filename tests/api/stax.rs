//! Black-box tests of capturing at Stax: the real app on random ports, on SQLite and on
//! PostgreSQL, called through the generated gRPC client, capturing at the built-in Stax emulator
//! through the real Stax connector.

use crate::common::*;
use crate::on_both_databases;
use capture_service::proto::{self, CaptureStatus, ListCapturesRequest};
use tonic::Code;

on_both_databases!(
    a_full_capture_takes_the_whole_pre_authorization_and_reads_back,
    amounts_round_trip_exactly_in_usd_jpy_tnd_and_bhd,
    a_partial_capture_leaves_the_rest_capturable,
    partial_captures_up_to_the_pre_authorization_then_stax_refuses_more,
    a_final_capture_closes_the_authorization_for_later_captures,
    an_over_capture_is_refused_by_stax_with_its_code_kept,
    an_unknown_pre_authorization_is_not_found_with_staxs_code_kept,
    expired_and_voided_pre_authorizations_fail_precondition,
    a_declined_capture_is_stored_declined_with_staxs_message,
    a_capture_in_another_currency_than_earlier_ones_is_refused_before_stax,
    a_first_capture_in_another_currency_than_the_pre_authorization_is_refused_unsent,
    a_stax_5xx_leaves_the_capture_processing,
    a_stax_timeout_leaves_the_capture_processing_and_a_retry_gets_the_stored_answer,
    a_timed_out_attempt_is_retried_with_the_same_idempotency_id_and_captures_once,
    a_malformed_stax_answer_leaves_the_capture_processing,
    a_field_stax_cannot_carry_is_refused_before_anything_is_stored,
);

fn stax_capture(pre_auth: &str, amount: Option<proto::Money>) -> proto::CaptureRequest {
    capture_request(proto::Provider::Stax, pre_auth, amount)
}

async fn a_full_capture_takes_the_whole_pre_authorization_and_reads_back(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app.authorize_at("stax", "USD", "100.00", "APPROVE").await?;
    let mut request = stax_capture(&pre_auth, None);
    request.reference = "order-42".into();
    request.metadata.insert("order".into(), "42".into());
    let capture = app.captured(request).await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    assert_eq!(capture.provider_status, "success=true");
    assert_eq!(capture.provider_capture_id.len(), 36, "a UUID");
    assert_ne!(capture.provider_capture_id, pre_auth);
    assert_eq!(capture.captured_amount, usd("100.00"));
    assert!(
        capture.seller_receivable_breakdown.is_none(),
        "Stax reports no fees"
    );
    assert_eq!(capture.reference, "order-42");
    let read = app.get(TENANT_A_KEY, &capture.id).await?;
    assert_eq!(read, capture);
    app.stop().await
}

async fn amounts_round_trip_exactly_in_usd_jpy_tnd_and_bhd(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    for (currency, value) in [
        ("USD", "0.10"),
        ("USD", "99999999.99"),
        ("JPY", "1000"),
        ("TND", "1.500"),
        ("BHD", "0.005"),
    ] {
        let pre_auth = app.authorize_at("stax", currency, value, "APPROVE").await?;
        let capture = app
            .captured(stax_capture(&pre_auth, money(currency, value)))
            .await?;
        assert_eq!(
            capture.status(),
            CaptureStatus::Completed,
            "{currency} {value}"
        );
        let read = app.get(TENANT_A_KEY, &capture.id).await?;
        assert_eq!(read.amount, money(currency, value));
        assert_eq!(read.captured_amount, money(currency, value));
    }
    app.stop().await
}

async fn a_partial_capture_leaves_the_rest_capturable(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app.authorize_at("stax", "USD", "100.00", "APPROVE").await?;
    let first = app.captured(stax_capture(&pre_auth, usd("30.00"))).await?;
    assert_eq!(first.status(), CaptureStatus::Completed);
    assert_eq!(first.captured_amount, usd("30.00"));
    // No amount: Stax takes what remains.
    let rest = app.captured(stax_capture(&pre_auth, None)).await?;
    assert_eq!(rest.status(), CaptureStatus::Completed);
    assert_eq!(rest.captured_amount, usd("70.00"));
    assert_ne!(first.provider_capture_id, rest.provider_capture_id);
    app.stop().await
}

async fn partial_captures_up_to_the_pre_authorization_then_stax_refuses_more(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app.authorize_at("stax", "USD", "100.00", "APPROVE").await?;
    for value in ["30.00", "30.00", "40.00"] {
        let capture = app.captured(stax_capture(&pre_auth, usd(value))).await?;
        assert_eq!(capture.status(), CaptureStatus::Completed, "{value}");
    }
    let metadata = refused(
        app.capture(stax_capture(&pre_auth, usd("0.01"))).await,
        Code::FailedPrecondition,
        "PROVIDER_PRECONDITION_FAILED",
    )?;
    assert_eq!(detail(&metadata, "provider_code"), Some("ALREADY_CAPTURED"));
    let failed = app.stored_capture(&metadata).await?;
    assert_eq!(failed.status(), CaptureStatus::Failed);
    let listed = app
        .list(
            TENANT_A_KEY,
            ListCapturesRequest {
                authorization_id: pre_auth.clone(),
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(listed.captures.len(), 4);
    app.stop().await
}

async fn a_final_capture_closes_the_authorization_for_later_captures(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app.authorize_at("stax", "USD", "100.00", "APPROVE").await?;
    let mut last = stax_capture(&pre_auth, usd("20.00"));
    last.final_capture = true;
    let closed = app.captured(last).await?;
    assert!(closed.final_capture);
    assert_eq!(closed.status(), CaptureStatus::Completed);
    let metadata = refused(
        app.capture(stax_capture(&pre_auth, usd("1.00"))).await,
        Code::FailedPrecondition,
        "AUTHORIZATION_CLOSED",
    )?;
    assert_eq!(metadata.get("closed_by"), Some(&closed.id));
    app.stop().await
}

async fn an_over_capture_is_refused_by_stax_with_its_code_kept(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app.authorize_at("stax", "USD", "50.00", "APPROVE").await?;
    let metadata = refused(
        app.capture(stax_capture(&pre_auth, usd("50.01"))).await,
        Code::FailedPrecondition,
        "PROVIDER_PRECONDITION_FAILED",
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("AMOUNT_EXCEEDS_PREAUTH")
    );
    assert_eq!(
        detail(&metadata, "provider_message"),
        Some("Cannot capture more than the pre-authorized amount.")
    );
    assert_eq!(detail(&metadata, "provider"), Some("stax"));
    let failed = app.stored_capture(&metadata).await?;
    assert_failed_with(&failed, "AMOUNT_EXCEEDS_PREAUTH", 400);
    // Nothing was taken: the whole pre-authorization still fits.
    let all = app.captured(stax_capture(&pre_auth, usd("50.00"))).await?;
    assert_eq!(all.status(), CaptureStatus::Completed);
    app.stop().await
}

async fn an_unknown_pre_authorization_is_not_found_with_staxs_code_kept(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let metadata = refused(
        app.capture(stax_capture(
            "00000000-0000-4000-a000-000000000000",
            usd("1.00"),
        ))
        .await,
        Code::NotFound,
        "PROVIDER_RESOURCE_NOT_FOUND",
    )?;
    assert_eq!(detail(&metadata, "provider_code"), Some("NOT_FOUND"));
    let failed = app.stored_capture(&metadata).await?;
    assert_failed_with(&failed, "NOT_FOUND", 404);
    app.stop().await
}

async fn expired_and_voided_pre_authorizations_fail_precondition(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    for (scenario, code) in [("EXPIRED", "EXPIRED"), ("VOIDED", "VOIDED")] {
        let pre_auth = app.authorize_at("stax", "USD", "10.00", scenario).await?;
        let status = error_of(app.capture(stax_capture(&pre_auth, usd("1.00"))).await)?;
        assert_eq!(status.code(), Code::FailedPrecondition, "{scenario}");
        let (_, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
        assert_eq!(detail(&metadata, "provider_code"), Some(code));
        assert_eq!(
            app.stored_capture(&metadata).await?.status(),
            CaptureStatus::Failed
        );
    }
    app.stop().await
}

async fn a_declined_capture_is_stored_declined_with_staxs_message(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app.authorize_at("stax", "USD", "10.00", "DECLINED").await?;
    let capture = app.captured(stax_capture(&pre_auth, usd("10.00"))).await?;
    assert_eq!(capture.status(), CaptureStatus::Declined);
    assert_eq!(capture.provider_status, "success=false");
    let details = capture.status_details.clone().ok_or("no status details")?;
    assert_eq!(
        details.provider_reason,
        "Unable to process the purchase transaction"
    );
    assert_eq!(capture.captured_amount, None);
    assert_eq!(
        app.get(TENANT_A_KEY, &capture.id).await?.status(),
        CaptureStatus::Declined
    );
    app.stop().await
}

async fn a_capture_in_another_currency_than_earlier_ones_is_refused_before_stax(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app.authorize_at("stax", "USD", "100.00", "APPROVE").await?;
    app.captured(stax_capture(&pre_auth, usd("10.00"))).await?;
    let metadata = refused(
        app.capture(stax_capture(&pre_auth, money("EUR", "5.00")))
            .await,
        Code::FailedPrecondition,
        "CURRENCY_MISMATCH",
    )?;
    assert_eq!(detail(&metadata, "expected_currency"), Some("USD"));
    app.stop().await
}

/// Stax's capture carries no currency, so it would capture EUR 30.00 on a USD pre-authorization
/// as USD 30.00: the connector reads the pre-authorization first and sends nothing.
async fn a_first_capture_in_another_currency_than_the_pre_authorization_is_refused_unsent(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app.authorize_at("stax", "USD", "100.00", "APPROVE").await?;
    let metadata = refused(
        app.capture(stax_capture(&pre_auth, money("EUR", "30.00")))
            .await,
        Code::FailedPrecondition,
        "PROVIDER_PRECONDITION_FAILED",
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("CURRENCY_MISMATCH")
    );
    assert_eq!(detail(&metadata, "provider"), Some("stax"));
    let message = metadata
        .get("provider_message")
        .ok_or("no provider_message")?;
    assert!(
        message.contains("USD") && message.contains("EUR"),
        "{message}"
    );
    let failed = app.stored_capture(&metadata).await?;
    assert_failed_with(&failed, "CURRENCY_MISMATCH", 0);
    assert_eq!(failed.captured_amount, None);
    // Nothing was taken, and the refused attempt binds nothing in the service's ledger: the
    // caller retrying in the right currency captures the whole USD 100.00.
    let all = app.captured(stax_capture(&pre_auth, usd("100.00"))).await?;
    assert_eq!(all.status(), CaptureStatus::Completed);
    assert_eq!(all.captured_amount, usd("100.00"));
    app.stop().await
}

async fn a_stax_5xx_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app
        .authorize_at("stax", "USD", "100.00", "SERVER_ERROR")
        .await?;
    app.left_processing(
        app.capture(stax_capture(&pre_auth, usd("5.00"))).await,
        "stax",
    )
    .await?;
    app.stop().await
}

async fn a_stax_timeout_leaves_the_capture_processing_and_a_retry_gets_the_stored_answer(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn_with(db, |config| config.providers.max_retries = 0).await?;
    let pre_auth = app.authorize_at("stax", "USD", "100.00", "TIMEOUT").await?;
    let request = stax_capture(&pre_auth, usd("5.00"));
    let id = app
        .left_processing(app.capture(request.clone()).await, "stax")
        .await?
        .id;
    // The caller retries with the same request_id: the service re-sends the same
    // idempotency_id, and Stax answers with the capture it made the first time.
    let capture = app.replayed(request).await?;
    assert_eq!(
        (capture.id.as_str(), capture.status()),
        (id.as_str(), CaptureStatus::Completed)
    );
    // One capture at Stax: 95.00 remain, so 95.01 is refused by Stax.
    let status = error_of(app.capture(stax_capture(&pre_auth, usd("95.01"))).await)?;
    let (_, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("AMOUNT_EXCEEDS_PREAUTH")
    );
    app.stop().await
}

async fn a_timed_out_attempt_is_retried_with_the_same_idempotency_id_and_captures_once(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn_with(db, |config| config.providers.max_retries = 1).await?;
    let pre_auth = app.authorize_at("stax", "USD", "100.00", "TIMEOUT").await?;
    let capture = app.captured(stax_capture(&pre_auth, usd("60.00"))).await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    assert_eq!(capture.captured_amount, usd("60.00"));
    // Had the retry captured again, nothing would remain; 40.00 does.
    let status = error_of(app.capture(stax_capture(&pre_auth, usd("40.01"))).await)?;
    let (_, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("AMOUNT_EXCEEDS_PREAUTH")
    );
    app.stop().await
}

async fn a_malformed_stax_answer_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app
        .authorize_at("stax", "USD", "100.00", "MALFORMED_BODY")
        .await?;
    let request = stax_capture(&pre_auth, usd("5.00"));
    app.left_processing(app.capture(request.clone()).await, "stax")
        .await?;
    // A retry gets the same unreadable answer: still unknown, still one capture record.
    assert_code(&app.capture(request).await, Code::Unavailable);
    let listed = app
        .list(TENANT_A_KEY, ListCapturesRequest::default())
        .await?;
    assert_eq!(listed.captures.len(), 1);
    app.stop().await
}

async fn a_field_stax_cannot_carry_is_refused_before_anything_is_stored(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let pre_auth = app.authorize_at("stax", "USD", "100.00", "APPROVE").await?;
    let mut request = stax_capture(&pre_auth, usd("10.00"));
    request.invoice_id = "INV-1".into();
    let status = error_of(app.capture(request).await)?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["invoice_id"]);
    let too_precise = stax_capture(&pre_auth, usd("10000000000000.00"));
    let status = error_of(app.capture(too_precise).await)?;
    assert_eq!(bad_fields(&status), ["amount.value"]);
    let listed = app
        .list(TENANT_A_KEY, ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());
    app.stop().await
}
