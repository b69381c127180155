//! The Stax connector's release: `POST /transaction/{id}/void` on the wire, the transaction it
//! answers with, a 400 saying the pre-authorization is voided already, and the other refusals
//! read as a capture's.

use axum::http::Method;

use super::{connector, mock_stax, TestResult, API_KEY, PRE_AUTH};
use crate::common::connector_fixtures::{is_unknown, refusal, release};
use crate::common::mock_provider::Reply;
use capture_service::domain::{CaptureStatus, ReleaseMechanism};
use capture_service::providers::{Connector, Rejection};

const VOID_PATH: &str = "/transaction/8e1d5b5c-1c1a-4c8e-9d7a-0f6c3b2a1e11/void";
const RELEASE_ID: &str = "rel_01HZY3J6Q4W8E2R5T7Y9U1I3O5";

/// The pre-authorization as Stax answers a void with it: voided.
fn voided_pre_auth() -> String {
    format!(
        r#"{{"id":"{PRE_AUTH}","type":"pre_auth","success":true,"message":null,"total":100.00,
        "currency":"USD","method":"card","meta":{{}},"pre_auth":true,"is_refundable":false,
        "is_voidable":false,"is_voided":true,"total_refunded":0,"customer_id":"c1",
        "payment_method_id":"pm1","reference_id":null,"last_four":"1111",
        "customer":{{"email":"someone@example.com"}},
        "created_at":"2024-05-01 11:00:00","updated_at":"2024-05-01 12:00:00"}}"#
    )
}

fn message(text: &str) -> String {
    serde_json::json!({ "message": text }).to_string()
}

#[tokio::test]
async fn a_void_sends_the_exact_request_and_a_voided_pre_authorization_is_the_release_done(
) -> TestResult {
    let mock = mock_stax().await?;
    mock.reply(Method::POST, VOID_PATH, Reply::json(200, voided_pre_auth()));

    let outcome = release(&connector(&mock.url()), PRE_AUTH, RELEASE_ID, None).await?;

    let seen = mock.requests();
    assert_eq!(seen.len(), 1, "no pre-authorization lookup before a void");
    let sent = &seen[0];
    assert_eq!(
        (&sent.method, sent.path.as_str()),
        (&Method::POST, VOID_PATH)
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(sent.header("accept"), Some("application/json"));
    let mut names = sent.header_names();
    names.retain(|name| name != "content-length");
    assert_eq!(names, ["accept", "authorization", "host"]);
    assert!(
        sent.body.is_empty(),
        "a void has no body: {:?}",
        sent.text()
    );

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "is_voided=true");
    assert_eq!(outcome.provider_capture_id.as_deref(), Some(PRE_AUTH));
    assert_eq!(outcome.captured_amount, None);
    let stored = outcome.redacted_body.ok_or("no stored body")?;
    assert!(
        stored.get("customer").is_none(),
        "undocumented fields dropped"
    );
    Ok(())
}

/// A void sent again after its answer was lost finds the pre-authorization voided: that settles
/// the release as done, never as failed. Any other 400 is refused with Stax's words.
#[tokio::test]
async fn voided_already_is_the_release_done_and_other_400s_fail_precondition() -> TestResult {
    let mock = mock_stax().await?;
    let connector = connector(&mock.url());
    let already = "This transaction has already been voided.";
    mock.reply(Method::POST, VOID_PATH, Reply::json(400, message(already)));
    let done = release(&connector, PRE_AUTH, RELEASE_ID, None).await?;
    assert_eq!(done.status, CaptureStatus::Completed);
    assert_eq!(done.provider_status, "ALREADY_VOIDED");
    assert_eq!(done.provider_reason.as_deref(), Some(already));

    let settled = "This transaction cannot be voided because it has already been settled.";
    mock.reply(Method::POST, VOID_PATH, Reply::json(400, message(settled)));
    let (rejection, failure, _) = refusal(release(&connector, PRE_AUTH, RELEASE_ID, None).await)
        .ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::FailedPrecondition);
    assert_eq!(failure.code, "SETTLED");
    assert_eq!(failure.message, settled);
    assert_eq!(failure.http_status, 400);
    Ok(())
}

#[tokio::test]
async fn a_declined_void_released_nothing() -> TestResult {
    let mock = mock_stax().await?;
    let body = r#"{"id":"void-9","type":"void","success":false,"message":"Void failed at the processor","total":100}"#;
    mock.reply(Method::POST, VOID_PATH, Reply::json(200, body));
    let outcome = release(&connector(&mock.url()), PRE_AUTH, RELEASE_ID, None).await?;
    assert_eq!(outcome.status, CaptureStatus::Declined);
    assert_eq!(
        outcome.provider_reason.as_deref(),
        Some("Void failed at the processor")
    );
    Ok(())
}

#[tokio::test]
async fn other_refusals_read_as_a_captures_and_a_5xx_is_unknown() -> TestResult {
    let mock = mock_stax().await?;
    let connector = connector(&mock.url());
    mock.reply(
        Method::POST,
        VOID_PATH,
        Reply::json(404, message("Not found")),
    );
    let (rejection, failure, _) = refusal(release(&connector, PRE_AUTH, RELEASE_ID, None).await)
        .ok_or("expected a refusal")?;
    assert_eq!(
        (rejection, failure.code.as_str()),
        (Rejection::NotFound, "NOT_FOUND")
    );

    mock.reply(
        Method::POST,
        VOID_PATH,
        Reply::json(429, message("Too Many Attempts.")).header("retry-after", "30"),
    );
    let (rejection, _, retry_after) =
        refusal(release(&connector, PRE_AUTH, RELEASE_ID, None).await)
            .ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::RateLimited);
    assert_eq!(retry_after, Some(std::time::Duration::from_secs(30)));

    let before = mock.seen(VOID_PATH).len();
    for _ in 0..3 {
        mock.reply(Method::POST, VOID_PATH, Reply::json(500, ""));
    }
    let result = release(&connector, PRE_AUTH, RELEASE_ID, None).await;
    assert!(is_unknown(&result), "{result:?}");
    assert_eq!(
        mock.seen(VOID_PATH).len() - before,
        3,
        "one attempt, two retries"
    );
    Ok(())
}

#[test]
fn a_void_releases_before_and_after_partial_captures_and_no_capture_releases_by_itself() {
    let rules = connector("http://127.0.0.1:9").release_rules();
    assert_eq!(rules.before_capture, ReleaseMechanism::Call);
    assert_eq!(rules.after_partial_capture, ReleaseMechanism::Call);
    assert!(!rules.final_capture_releases);
}
