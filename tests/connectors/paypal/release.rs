//! The PayPal connector's release: `POST /v2/payments/authorizations/{id}/void` on the wire, and
//! each documented answer to it (PayPal's REST specification, `authorizations.void`).

use std::time::Duration;

use axum::http::Method;
use serde_json::json;

use super::{
    connector, connector_with, error_body, mock_paypal, TestResult, AUTHORIZATION_ID, TOKEN_PATH,
};
use crate::common::connector_fixtures::{is_unknown, refusal, release, release_record};
use crate::common::mock_provider::{MockProvider, Reply};
use capture_service::domain::{CaptureStatus, Provider, ReleaseMechanism};
use capture_service::providers::{Connector, Rejection};

const VOID_PATH: &str = "/v2/payments/authorizations/0VF52814937998046/void";
const RELEASE_KEY: &str = "rel_01J0000000000000000000000";

/// Queues `reply` for the next void request.
fn on_void(mock: &MockProvider, reply: Reply) {
    mock.reply(Method::POST, VOID_PATH, reply);
}

/// A void PayPal refuses with a 422 naming `issue`.
fn refused(issue: &str) -> Reply {
    Reply::json(422, error_body("UNPROCESSABLE_ENTITY", Some(issue)))
}

#[tokio::test]
async fn a_void_sends_the_exact_request_and_a_204_is_the_release_done() -> TestResult {
    let mock = mock_paypal().await?;
    on_void(&mock, Reply::empty(204));
    let connector = connector_with(&mock.url(), Some("jwt-assertion"), Duration::from_secs(5));

    let outcome = release(&connector, AUTHORIZATION_ID, RELEASE_KEY, None).await?;

    assert_eq!(mock.seen(TOKEN_PATH).len(), 1);
    let voids = mock.seen(VOID_PATH);
    assert_eq!(voids.len(), 1);
    let sent = &voids[0];
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.query, None);
    let mut names = sent.header_names();
    names.retain(|name| !matches!(name.as_str(), "host" | "content-length"));
    assert_eq!(
        names,
        [
            "accept",
            "authorization",
            "content-type",
            "paypal-auth-assertion",
            "paypal-request-id",
            "prefer"
        ]
    );
    assert_eq!(sent.header("authorization"), Some("Bearer token-1"));
    assert_eq!(sent.header("paypal-request-id"), Some(RELEASE_KEY));
    assert_eq!(sent.header("prefer"), Some("return=representation"));
    assert_eq!(sent.header("paypal-auth-assertion"), Some("jwt-assertion"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert!(
        sent.body.is_empty(),
        "a void has no body: {:?}",
        sent.text()
    );

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "VOIDED");
    assert_eq!(
        outcome.provider_capture_id.as_deref(),
        Some(AUTHORIZATION_ID)
    );
    assert_eq!(outcome.captured_amount, None);
    Ok(())
}

#[tokio::test]
async fn a_200_naming_the_voided_authorization_is_the_release_done_and_any_other_status_unknown(
) -> TestResult {
    let mock = mock_paypal().await?;
    let connector = connector(&mock.url());
    let authorization = |status: &str| {
        json!({"id": AUTHORIZATION_ID, "status": status,
            "amount": {"currency_code": "USD", "value": "100.00"},
            "expiration_time": "2024-11-08T09:06:03-08:00"})
    };
    on_void(&mock, Reply::json(200, authorization("VOIDED")));
    let outcome = release(&connector, AUTHORIZATION_ID, RELEASE_KEY, None).await?;
    assert_eq!(
        (outcome.status, outcome.provider_status.as_str()),
        (CaptureStatus::Completed, "VOIDED")
    );
    assert_eq!(
        outcome.redacted_body.as_deref(),
        Some(&authorization("VOIDED"))
    );

    // A 200 whose authorization is not voided contradicts the void: no outcome is guessed.
    on_void(&mock, Reply::json(200, authorization("CREATED")));
    let contradicted = release(&connector, AUTHORIZATION_ID, RELEASE_KEY, None).await;
    assert!(is_unknown(&contradicted), "{contradicted:?}");
    Ok(())
}

/// A void re-sent after its answer was lost finds the authorization voided: that settles the
/// release as done, never as failed.
#[tokio::test]
async fn previously_voided_is_the_release_done() -> TestResult {
    let mock = mock_paypal().await?;
    on_void(&mock, refused("PREVIOUSLY_VOIDED"));
    let outcome = release(&connector(&mock.url()), AUTHORIZATION_ID, RELEASE_KEY, None).await?;
    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "VOIDED");
    assert_eq!(
        outcome.provider_reason.as_deref(),
        Some("PREVIOUSLY_VOIDED")
    );
    assert_eq!(mock.seen(VOID_PATH).len(), 1);
    Ok(())
}

#[tokio::test]
async fn documented_refusals_are_failed_preconditions_keeping_paypals_issue() -> TestResult {
    let mock = mock_paypal().await?;
    let connector = connector(&mock.url());
    for issue in [
        "PREVIOUSLY_CAPTURED",
        "CANNOT_BE_VOIDED",
        "AUTHORIZATION_EXPIRED",
    ] {
        on_void(&mock, refused(issue));
        let (rejection, failure, _) =
            refusal(release(&connector, AUTHORIZATION_ID, RELEASE_KEY, None).await)
                .ok_or("expected a refusal")?;
        assert_eq!(rejection, Rejection::FailedPrecondition, "{issue}");
        assert_eq!(failure.code, issue);
        assert_eq!(failure.http_status, 422);
        assert_eq!(failure.debug_id.as_deref(), Some("90957fca61718"));
    }
    on_void(
        &mock,
        Reply::json(
            404,
            error_body("RESOURCE_NOT_FOUND", Some("INVALID_RESOURCE_ID")),
        ),
    );
    let (rejection, failure, _) =
        refusal(release(&connector, AUTHORIZATION_ID, RELEASE_KEY, None).await)
            .ok_or("expected a refusal")?;
    assert_eq!(
        (rejection, failure.code.as_str()),
        (Rejection::NotFound, "INVALID_RESOURCE_ID")
    );
    Ok(())
}

#[tokio::test]
async fn a_5xx_is_retried_with_the_same_key_then_unknown_and_so_is_a_void_in_progress() -> TestResult
{
    let mock = mock_paypal().await?;
    let connector = connector(&mock.url());
    for _ in 0..3 {
        on_void(&mock, Reply::json(500, ""));
    }
    let result = release(&connector, AUTHORIZATION_ID, RELEASE_KEY, None).await;
    assert!(is_unknown(&result), "{result:?}");
    let voids = mock.seen(VOID_PATH);
    assert_eq!(voids.len(), 3, "one attempt and two retries");
    assert!(voids
        .iter()
        .all(|v| v.header("paypal-request-id") == Some(RELEASE_KEY)));

    // 409 PREVIOUS_REQUEST_IN_PROGRESS: an earlier void may still go through.
    on_void(
        &mock,
        Reply::json(
            409,
            error_body("RESOURCE_CONFLICT", Some("PREVIOUS_REQUEST_IN_PROGRESS")),
        ),
    );
    let result = release(&connector, AUTHORIZATION_ID, RELEASE_KEY, None).await;
    assert!(is_unknown(&result), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn a_401_fetches_a_new_token_once_and_voids_again() -> TestResult {
    let mock = mock_paypal().await?;
    on_void(
        &mock,
        Reply::json(401, error_body("AUTHENTICATION_FAILURE", None)),
    );
    on_void(&mock, Reply::empty(204));
    let outcome = release(&connector(&mock.url()), AUTHORIZATION_ID, RELEASE_KEY, None).await?;
    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(mock.seen(TOKEN_PATH).len(), 2);
    let voids = mock.seen(VOID_PATH);
    let tokens: Vec<_> = voids.iter().map(|v| v.header("authorization")).collect();
    assert_eq!(tokens, [Some("Bearer token-1"), Some("Bearer token-2")]);
    Ok(())
}

/// A release whose answer was lost is settled by sending the void again under its own key.
#[tokio::test]
async fn a_lost_answer_is_settled_by_the_same_void_under_the_same_key() -> TestResult {
    let mock = mock_paypal().await?;
    on_void(&mock, refused("PREVIOUSLY_VOIDED"));
    let record = release_record(Provider::Paypal, AUTHORIZATION_ID, RELEASE_KEY, None, None)?;
    let outcome = connector(&mock.url())
        .fetch_release_outcome(&record)
        .await?;
    assert_eq!(outcome.status, CaptureStatus::Completed);
    let voids = mock.seen(VOID_PATH);
    assert_eq!(voids.len(), 1);
    assert_eq!(voids[0].header("paypal-request-id"), Some(RELEASE_KEY));
    Ok(())
}

#[test]
fn a_void_releases_before_and_after_partial_captures_and_a_final_capture_by_itself() {
    let rules = connector("http://127.0.0.1:9").release_rules();
    assert_eq!(rules.before_capture, ReleaseMechanism::Call);
    assert_eq!(rules.after_partial_capture, ReleaseMechanism::Call);
    assert!(rules.final_capture_releases);
}
