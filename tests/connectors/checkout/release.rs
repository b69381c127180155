//! The Checkout.com connector's release: `POST /payments/{id}/voids` on the wire, its 202, the
//! void's action read back from `GET /payments/{id}/actions`, and the documented refusals.

use axum::http::Method;
use serde_json::json;

use super::{
    connector, error_422, header_names, mock_checkout, reply, routes, TestResult, ACTIONS_PATH,
    PAYMENT, PAYMENT_PATH, SECRET,
};
use crate::common::connector_fixtures::{is_unknown, refusal, release, release_record};
use capture_service::domain::{
    CaptureRecord, CaptureStatus, Provider, ReleaseMechanism, StatusReason,
};
use capture_service::providers::{Connector, Rejection};

const VOID_PATH: &str = "/payments/pay_kladqdb6hm5ebggtq45rtzjati/voids";
const RELEASE_KEY: &str = "rel_01J0000000000000000000000";
const VOID_ACTION: &str = "act_y3oqhf46pyzuxjbcn2giaqnb44";

/// The documented 202 to a void.
fn void_accepted() -> String {
    json!({"action_id": VOID_ACTION, "reference": RELEASE_KEY,
        "_links": {"payment": {"href": format!("https://api.sandbox.checkout.com{PAYMENT_PATH}")}}})
    .to_string()
}

/// The payment's actions: its authorization, and a void whose `approved` is as given (left out
/// when `None`: not processed yet).
fn actions_with_void(approved: Option<bool>) -> String {
    let mut void = json!({"id": VOID_ACTION, "type": "Void", "amount": 10000,
        "processed_on": "2024-05-24T09:19:35Z", "reference": RELEASE_KEY});
    match approved {
        Some(true) => {
            void["approved"] = json!(true);
            void["response_code"] = json!("10000");
            void["response_summary"] = json!("Approved");
        }
        Some(false) => {
            void["approved"] = json!(false);
            void["response_code"] = json!("20006");
            void["response_summary"] = json!("Error / Invalid Request Parameters");
        }
        None => {}
    }
    json!([void, {"id": "act_authorization00000000000", "type": "Authorization",
        "processed_on": "2024-05-21T10:00:00Z", "amount": 10000, "approved": true,
        "response_code": "10000", "response_summary": "Approved", "reference": "ORD-1"}])
    .to_string()
}

/// A stored release as `fetch_release_outcome` gets it, with the void's action id when known.
fn stored(action_id: Option<&str>) -> Result<CaptureRecord, String> {
    release_record(Provider::Checkout, PAYMENT, RELEASE_KEY, action_id, None)
}

#[tokio::test]
async fn a_void_sends_the_exact_request_and_its_202_is_pending_under_the_action_id() -> TestResult {
    let mock = mock_checkout().await?;
    mock.reply(Method::POST, VOID_PATH, reply(202, void_accepted()));

    let outcome = release(&connector(&mock.url()), PAYMENT, RELEASE_KEY, None).await?;

    // The void alone: no payment lookup before it, as a void names no amount.
    assert_eq!(routes(&mock), [(Method::POST, VOID_PATH.to_owned())]);
    let sent = &mock.seen(VOID_PATH)[0];
    assert_eq!(
        header_names(sent),
        ["authorization", "cko-idempotency-key", "content-type"]
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(sent.header("cko-idempotency-key"), Some(RELEASE_KEY));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.text(), format!(r#"{{"reference":"{RELEASE_KEY}"}}"#));

    assert_eq!(outcome.status, CaptureStatus::Pending);
    assert_eq!(
        outcome.reason,
        Some(StatusReason::AwaitingProviderConfirmation)
    );
    assert_eq!(outcome.provider_capture_id.as_deref(), Some(VOID_ACTION));
    assert_eq!(outcome.provider_status, "Accepted");
    Ok(())
}

#[tokio::test]
async fn the_lookup_reads_the_void_action_approved_declined_or_not_listed() -> TestResult {
    let mock = mock_checkout().await?;
    let connector = connector(&mock.url());
    let record = stored(Some(VOID_ACTION))?;

    mock.reply(
        Method::GET,
        ACTIONS_PATH,
        reply(200, actions_with_void(Some(true))),
    );
    let approved = connector.fetch_release_outcome(&record).await?;
    assert_eq!(approved.status, CaptureStatus::Completed);
    assert_eq!(approved.provider_capture_id.as_deref(), Some(VOID_ACTION));
    assert_eq!(approved.captured_amount, None, "a void captures nothing");

    // The card scheme refused the void (`payment_void_declined`): nothing was released.
    mock.reply(
        Method::GET,
        ACTIONS_PATH,
        reply(200, actions_with_void(Some(false))),
    );
    let declined = connector.fetch_release_outcome(&record).await?;
    assert_eq!(declined.status, CaptureStatus::Declined);
    assert_eq!(declined.provider_reason.as_deref(), Some("20006"));

    mock.reply(
        Method::GET,
        ACTIONS_PATH,
        reply(200, actions_with_void(None)),
    );
    let unprocessed = connector.fetch_release_outcome(&record).await?;
    assert_eq!(unprocessed.status, CaptureStatus::Pending);

    mock.reply(Method::GET, ACTIONS_PATH, reply(200, super::actions_list()));
    let not_listed = connector.fetch_release_outcome(&record).await?;
    assert_eq!(
        (not_listed.status, not_listed.provider_capture_id.as_deref()),
        (CaptureStatus::Pending, Some(VOID_ACTION))
    );
    assert!(
        mock.seen(VOID_PATH).is_empty(),
        "a known void is never sent again"
    );
    Ok(())
}

#[tokio::test]
async fn a_lost_void_is_found_by_its_reference_else_sent_again_under_its_key() -> TestResult {
    let mock = mock_checkout().await?;
    let connector = connector(&mock.url());
    let record = stored(None)?;

    mock.reply(
        Method::GET,
        ACTIONS_PATH,
        reply(200, actions_with_void(Some(true))),
    );
    let found = connector.fetch_release_outcome(&record).await?;
    assert_eq!(
        (found.status, found.provider_capture_id.as_deref()),
        (CaptureStatus::Completed, Some(VOID_ACTION))
    );
    assert!(mock.seen(VOID_PATH).is_empty());

    mock.reply(Method::GET, ACTIONS_PATH, reply(200, super::actions_list()));
    mock.reply(Method::POST, VOID_PATH, reply(202, void_accepted()));
    let resent = connector.fetch_release_outcome(&record).await?;
    assert_eq!(resent.status, CaptureStatus::Pending);
    let voids = mock.seen(VOID_PATH);
    assert_eq!(voids.len(), 1);
    assert_eq!(voids[0].header("cko-idempotency-key"), Some(RELEASE_KEY));
    Ok(())
}

/// A 403 ("Void not allowed") has no body. On a payment Checkout.com reports `Voided` (our own
/// earlier void, or its expiry) the release is done; on any other it is refused.
#[tokio::test]
async fn void_not_allowed_fails_precondition_unless_the_payment_is_voided_already() -> TestResult {
    let mock = mock_checkout().await?;
    let connector = connector(&mock.url());
    let payment = |status: &str| {
        json!({"id": PAYMENT, "amount": 10000, "currency": "EUR", "status": status,
            "approved": true})
        .to_string()
    };

    mock.reply(Method::POST, VOID_PATH, reply(403, ""));
    mock.reply(Method::GET, PAYMENT_PATH, reply(200, payment("Voided")));
    let done = release(&connector, PAYMENT, RELEASE_KEY, None).await?;
    assert_eq!(
        (done.status, done.provider_status.as_str()),
        (CaptureStatus::Completed, "Voided")
    );

    mock.reply(Method::POST, VOID_PATH, reply(403, ""));
    mock.reply(Method::GET, PAYMENT_PATH, reply(200, payment("Captured")));
    let (rejection, failure, _) = refusal(release(&connector, PAYMENT, RELEASE_KEY, None).await)
        .ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::FailedPrecondition);
    assert_eq!(
        (failure.code.as_str(), failure.message.as_str()),
        ("HTTP_403", "Void not allowed")
    );
    assert_eq!(failure.debug_id.as_deref(), Some("0HL80RJLS76I7-hdr"));
    Ok(())
}

#[tokio::test]
async fn documented_errors_keep_checkouts_codes_and_a_5xx_is_unknown() -> TestResult {
    let mock = mock_checkout().await?;
    let connector = connector(&mock.url());

    mock.reply(Method::POST, VOID_PATH, reply(404, ""));
    let (rejection, failure, _) = refusal(release(&connector, PAYMENT, RELEASE_KEY, None).await)
        .ok_or("expected a refusal")?;
    assert_eq!(
        (rejection, failure.message.as_str()),
        (Rejection::NotFound, "Payment not found")
    );

    mock.reply(
        Method::POST,
        VOID_PATH,
        reply(422, error_422("request_invalid", &["payment_expired"])),
    );
    let (rejection, failure, _) = refusal(release(&connector, PAYMENT, RELEASE_KEY, None).await)
        .ok_or("expected a refusal")?;
    assert_eq!(
        (rejection, failure.code.as_str()),
        (Rejection::FailedPrecondition, "payment_expired")
    );

    mock.reply(
        Method::POST,
        VOID_PATH,
        reply(422, error_422("request_invalid", &["reference_invalid"])),
    );
    let (rejection, failure, _) = refusal(release(&connector, PAYMENT, RELEASE_KEY, None).await)
        .ok_or("expected a refusal")?;
    assert_eq!(
        (rejection, failure.code.as_str()),
        (Rejection::InvalidArgument, "reference_invalid")
    );

    for _ in 0..3 {
        mock.reply(Method::POST, VOID_PATH, reply(502, ""));
    }
    let before = mock.seen(VOID_PATH).len();
    let result = release(&connector, PAYMENT, RELEASE_KEY, None).await;
    assert!(is_unknown(&result), "{result:?}");
    let voids = mock.seen(VOID_PATH);
    assert_eq!(voids.len() - before, 3, "retried under its key");
    assert!(voids[before..]
        .iter()
        .all(|v| v.header("cko-idempotency-key") == Some(RELEASE_KEY)));
    Ok(())
}

#[test]
fn a_void_releases_before_and_after_partial_captures_and_a_final_capture_by_itself() {
    let rules = connector("http://127.0.0.1:9").release_rules();
    assert_eq!(rules.before_capture, ReleaseMechanism::Call);
    assert_eq!(rules.after_partial_capture, ReleaseMechanism::Call);
    assert!(rules.final_capture_releases);
}
