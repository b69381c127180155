//! Black-box tests of Checkout.com captures through `capture.v1.CaptureService`: the real app on
//! random ports, on SQLite and on PostgreSQL, capturing at the sandbox's Checkout.com.
//!
//! Checkout.com only accepts a capture (202): every capture it takes comes back `PENDING` with
//! reason `AWAITING_PROVIDER_CONFIRMATION` and the `act_...` action id.

use crate::common::*;
use crate::on_both_databases;
use capture_service::proto::{self, CaptureStatus, CaptureStatusReason, ListCapturesRequest};
use tonic::Code;

on_both_databases!(
    a_full_capture_is_accepted_and_awaits_checkouts_confirmation,
    amounts_reach_checkout_exactly_in_each_currency,
    an_amount_checkout_cannot_express_is_refused_before_anything_is_stored,
    multiple_partial_captures_are_accepted_until_the_authorization_is_used,
    a_final_partial_capture_closes_the_authorization,
    an_over_capture_is_refused_by_checkout_with_its_code_kept,
    an_unknown_payment_is_not_found_with_checkouts_request_id,
    expired_and_voided_payments_fail_precondition,
    a_capture_in_another_currency_than_the_first_is_refused,
    a_first_capture_in_another_currency_than_the_payment_is_refused_before_checkout_captures,
    a_checkout_5xx_leaves_the_capture_processing,
    a_checkout_timeout_leaves_the_capture_processing_and_a_retry_resumes_it,
    a_timed_out_attempt_is_retried_with_the_same_key_and_accepted_once,
    a_malformed_checkout_answer_leaves_the_capture_processing,
);

fn checkout_capture(payment_id: &str, amount: Option<proto::Money>) -> proto::CaptureRequest {
    capture_request(proto::Provider::Checkout, payment_id, amount)
}

/// Asserts the capture is Checkout.com's accepted-not-confirmed state.
fn assert_awaiting_confirmation(capture: &proto::Capture) {
    assert_eq!(capture.status(), CaptureStatus::Pending);
    assert_eq!(
        capture.status_details.as_ref().map(|d| d.reason()),
        Some(CaptureStatusReason::AwaitingProviderConfirmation)
    );
    assert!(
        capture.provider_capture_id.starts_with("act_"),
        "{}",
        capture.provider_capture_id
    );
    assert_eq!(capture.provider_status, "Accepted");
    assert!(capture.seller_receivable_breakdown.is_none());
}

async fn a_full_capture_is_accepted_and_awaits_checkouts_confirmation(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let payment = app
        .authorize_at("checkout", "USD", "100.00", "APPROVE")
        .await?;
    let mut request = checkout_capture(&payment, None);
    request.reference = "ORD-5023-4E89".into();
    request
        .metadata
        .insert("coupon_code".into(), "NY2018".into());
    let response = app.capture(request).await?;
    assert!(!response.replayed);
    let capture = response.capture.ok_or("no capture")?;
    assert!(capture.id.starts_with("cap_"));
    assert_eq!(capture.provider(), proto::Provider::Checkout);
    assert_awaiting_confirmation(&capture);
    assert_eq!(capture.reference, "ORD-5023-4E89");

    let read = app.get(TENANT_A_KEY, &capture.id).await?;
    assert_eq!(read, capture);
    // The full amount closes the authorization in the service's ledger.
    refused(
        app.capture(checkout_capture(&payment, usd("1.00"))).await,
        Code::FailedPrecondition,
        "AUTHORIZATION_CLOSED",
    )?;
    app.stop().await
}

async fn amounts_reach_checkout_exactly_in_each_currency(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    for (currency, value, over) in [
        ("USD", "0.01", "0.02"),
        ("JPY", "1000", "1001"),
        ("TND", "123.450", "123.460"),
        ("BHD", "0.010", "0.020"),
    ] {
        let payment = app
            .authorize_at("checkout", currency, value, "APPROVE")
            .await?;
        // One minor step more than authorized: Checkout.com refuses it, so the amount it saw
        // is exactly the one asked for.
        let status = error_of(
            app.capture(checkout_capture(&payment, money(currency, over)))
                .await,
        )?;
        let (_, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
        assert_eq!(
            detail(&metadata, "provider_code"),
            Some("capture_value_greater_than_authorized"),
            "{currency} {over}"
        );
        let capture = app
            .captured(checkout_capture(&payment, money(currency, value)))
            .await?;
        assert_awaiting_confirmation(&capture);
        let read = app.get(TENANT_A_KEY, &capture.id).await?;
        assert_eq!(read.amount, money(currency, value));
    }
    app.stop().await
}

async fn an_amount_checkout_cannot_express_is_refused_before_anything_is_stored(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let payment = app
        .authorize_at("checkout", "TND", "10.000", "APPROVE")
        .await?;
    let status = error_of(
        app.capture(checkout_capture(&payment, money("TND", "1.235")))
            .await,
    )?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["amount.value"]);
    let mut long_reference = checkout_capture(&payment, money("TND", "1.230"));
    long_reference.reference = "r".repeat(81);
    let status = error_of(app.capture(long_reference).await)?;
    assert_eq!(bad_fields(&status), ["reference"]);
    let listed = app
        .list(TENANT_A_KEY, ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());
    app.stop().await
}

async fn multiple_partial_captures_are_accepted_until_the_authorization_is_used(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let payment = app
        .authorize_at("checkout", "EUR", "100.00", "APPROVE")
        .await?;
    let mut action_ids = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let capture = app
            .captured(checkout_capture(&payment, money("EUR", "25.00")))
            .await?;
        assert_awaiting_confirmation(&capture);
        assert!(!capture.final_capture);
        action_ids.insert(capture.provider_capture_id);
    }
    assert_eq!(action_ids.len(), 4, "one Checkout.com action per capture");
    let (_, metadata) = refusal(
        app.capture(checkout_capture(&payment, money("EUR", "0.01")))
            .await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("HTTP_403"),
        "nothing left to capture: Checkout.com does not allow it"
    );
    app.stop().await
}

async fn a_final_partial_capture_closes_the_authorization(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let payment = app
        .authorize_at("checkout", "USD", "100.00", "APPROVE")
        .await?;
    app.capture(checkout_capture(&payment, usd("30.00")))
        .await?;
    let mut last = checkout_capture(&payment, usd("20.00"));
    last.final_capture = true;
    let closed = app.captured(last).await?;
    assert!(closed.final_capture);
    assert_awaiting_confirmation(&closed);
    let metadata = refused(
        app.capture(checkout_capture(&payment, usd("1.00"))).await,
        Code::FailedPrecondition,
        "AUTHORIZATION_CLOSED",
    )?;
    assert_eq!(metadata.get("closed_by"), Some(&closed.id));
    app.stop().await
}

async fn an_over_capture_is_refused_by_checkout_with_its_code_kept(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let payment = app
        .authorize_at("checkout", "USD", "100.00", "APPROVE")
        .await?;
    app.capture(checkout_capture(&payment, usd("60.00")))
        .await?;
    let metadata = refused(
        app.capture(checkout_capture(&payment, usd("50.00"))).await,
        Code::FailedPrecondition,
        "PROVIDER_PRECONDITION_FAILED",
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("capture_value_greater_than_remaining_authorized")
    );
    assert_eq!(
        detail(&metadata, "provider_message"),
        Some("processing_error: capture_value_greater_than_remaining_authorized")
    );
    assert!(metadata.get("debug_id").is_some_and(|d| !d.is_empty()));
    let stored = app.stored_capture(&metadata).await?;
    assert_failed_with(
        &stored,
        "capture_value_greater_than_remaining_authorized",
        422,
    );
    // The refusal released its reservation: the 40.00 left still fits.
    let rest = app
        .captured(checkout_capture(&payment, usd("40.00")))
        .await?;
    assert_awaiting_confirmation(&rest);
    app.stop().await
}

async fn an_unknown_payment_is_not_found_with_checkouts_request_id(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let metadata = refused(
        app.capture(checkout_capture(
            "pay_aaaaaaaaaaaaaaaaaaaaaaaaaa",
            usd("1.00"),
        ))
        .await,
        Code::NotFound,
        "PROVIDER_RESOURCE_NOT_FOUND",
    )?;
    assert_eq!(detail(&metadata, "provider_code"), Some("HTTP_404"));
    assert!(metadata.get("debug_id").is_some_and(|d| !d.is_empty()));
    let stored = app.stored_capture(&metadata).await?;
    assert_eq!(stored.status(), CaptureStatus::Failed);
    assert_eq!(
        stored.error.map(|e| (e.code, e.message, e.http_status)),
        Some(("HTTP_404".into(), "Payment not found".into(), 404))
    );
    app.stop().await
}

async fn expired_and_voided_payments_fail_precondition(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    for scenario in ["EXPIRED", "VOIDED"] {
        let payment = app
            .authorize_at("checkout", "USD", "100.00", scenario)
            .await?;
        let status = error_of(app.capture(checkout_capture(&payment, usd("1.00"))).await)?;
        assert_eq!(status.code(), Code::FailedPrecondition, "{scenario}");
        let (_, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
        assert_eq!(detail(&metadata, "provider_code"), Some("HTTP_403"));
        assert_eq!(
            detail(&metadata, "provider_message"),
            Some("Capture not allowed")
        );
    }
    app.stop().await
}

async fn a_capture_in_another_currency_than_the_first_is_refused(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let payment = app
        .authorize_at("checkout", "USD", "100.00", "APPROVE")
        .await?;
    app.capture(checkout_capture(&payment, usd("10.00")))
        .await?;
    // Checkout.com's amount carries no currency: the service's ledger is what refuses it.
    let metadata = refused(
        app.capture(checkout_capture(&payment, money("EUR", "5.00")))
            .await,
        Code::FailedPrecondition,
        "CURRENCY_MISMATCH",
    )?;
    assert_eq!(detail(&metadata, "expected_currency"), Some("USD"));
    let mut mismatched = checkout_capture(&payment, usd("5.00"));
    mismatched.authorized_amount = money("EUR", "100.00");
    let status = error_of(app.capture(mismatched).await)?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["authorized_amount"]);
    app.stop().await
}

async fn a_first_capture_in_another_currency_than_the_payment_is_refused_before_checkout_captures(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let payment = app
        .authorize_at("checkout", "USD", "100.00", "APPROVE")
        .await?;
    // No earlier capture and no authorized_amount: only the payment's own currency, read from
    // Checkout.com, tells that EUR 30.00 would be captured as USD 30.00.
    let request = checkout_capture(&payment, money("EUR", "30.00"));
    assert!(request.authorized_amount.is_none());
    let metadata = refused(
        app.capture(request).await,
        Code::FailedPrecondition,
        "PROVIDER_PRECONDITION_FAILED",
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("currency_mismatch")
    );
    let message = metadata
        .get("provider_message")
        .ok_or("no provider message")?;
    assert!(
        message.contains("USD") && message.contains("EUR"),
        "{message}"
    );
    let stored = app.stored_capture(&metadata).await?;
    assert_failed_with(&stored, "currency_mismatch", 0);
    // Checkout.com was sent no capture, and the refused attempt binds nothing in the
    // service's ledger: the whole USD 100.00 can still be captured.
    let full = app
        .captured(checkout_capture(&payment, usd("100.00")))
        .await?;
    assert_awaiting_confirmation(&full);
    app.stop().await
}

async fn a_checkout_5xx_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let payment = app
        .authorize_at("checkout", "USD", "100.00", "SERVER_ERROR")
        .await?;
    app.left_processing(
        app.capture(checkout_capture(&payment, usd("5.00"))).await,
        "checkout",
    )
    .await?;
    app.stop().await
}

async fn a_checkout_timeout_leaves_the_capture_processing_and_a_retry_resumes_it(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn_with(db, |config| config.providers.max_retries = 0).await?;
    let payment = app
        .authorize_at("checkout", "USD", "100.00", "TIMEOUT")
        .await?;
    let request = checkout_capture(&payment, usd("5.00"));
    let left = app
        .left_processing(app.capture(request.clone()).await, "checkout")
        .await?;
    // The same request_id: the service re-sends with the same Cko-Idempotency-Key and
    // Checkout.com answers with the action it accepted the first time.
    let capture = app.replayed(request).await?;
    assert_eq!(capture.id, left.id);
    assert_awaiting_confirmation(&capture);
    // One capture at Checkout.com: 95.00 still fits, more would not.
    let over = error_of(app.capture(checkout_capture(&payment, usd("95.01"))).await)?;
    assert_eq!(
        error_info(&over).and_then(|(_, m)| m.get("provider_code").cloned()),
        Some("capture_value_greater_than_remaining_authorized".to_owned())
    );
    app.stop().await
}

async fn a_timed_out_attempt_is_retried_with_the_same_key_and_accepted_once(db: Db) -> TestResult {
    let app = TestApp::spawn_with(db, |config| config.providers.max_retries = 1).await?;
    let payment = app
        .authorize_at("checkout", "USD", "100.00", "TIMEOUT")
        .await?;
    let capture = app
        .captured(checkout_capture(&payment, usd("100.00")))
        .await?;
    assert_awaiting_confirmation(&capture);
    app.stop().await
}

async fn a_malformed_checkout_answer_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let payment = app
        .authorize_at("checkout", "USD", "100.00", "MALFORMED_BODY")
        .await?;
    let request = checkout_capture(&payment, usd("5.00"));
    let left = app
        .left_processing(app.capture(request.clone()).await, "checkout")
        .await?;
    // A retry gets Checkout.com's stored (still unreadable) answer: still no guess.
    assert_eq!(
        unknown_outcome(app.capture(request).await, "checkout")?,
        left.id
    );
    app.stop().await
}
