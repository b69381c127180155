//! The sandbox's PayPal releasing authorizations: "Void authorized payment" before and after
//! partial captures, the rest released by a `final_capture`, and the refusals around them, each
//! checked in the book's holds.

use std::error::Error;

use capture_service::sandbox::{ReleasedBy, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{rand_suffix, usd, Answer, PayPal};
use crate::common::TestResult;
use crate::holds::{amounts, hold_of, ways};

impl PayPal {
    /// `POST /v2/payments/authorizations/{id}/void` with a fresh request id and no `Prefer`.
    async fn void(&self, id: &str) -> Result<Answer, Box<dyn Error>> {
        self.void_with(id, &format!("void-{}", rand_suffix()), None)
            .await
    }

    async fn void_with(
        &self,
        id: &str,
        request_id: &str,
        prefer: Option<&str>,
    ) -> Result<Answer, Box<dyn Error>> {
        self.post_action(id, "void", None, request_id, prefer).await
    }

    /// `GET /v2/payments/authorizations/{id}`: its status.
    async fn authorization_status(&self, id: &str) -> Result<Value, Box<dyn Error>> {
        let url = format!("{}/v2/payments/authorizations/{id}", self.base);
        let shown: Value = self
            .http
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(shown["status"].clone())
    }
}

fn final_capture(value: &str) -> Value {
    let mut body = usd(value);
    body["final_capture"] = json!(true);
    body
}

#[tokio::test]
async fn a_void_before_any_capture_answers_204_and_releases_the_whole_authorization() -> TestResult
{
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "100.00", Scenario::Approve).await?;
    let voided = paypal.void(&id).await?;
    assert_eq!(
        (voided.status, voided.text.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    assert_eq!(paypal.authorization_status(&id).await?, "VOIDED");
    let hold = hold_of(&paypal.sandbox, &id).await?;
    assert_eq!(amounts(&hold), ("0.00", "100.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Void]);
    assert!(hold.voided);
    Ok(())
}

#[tokio::test]
async fn a_void_with_return_representation_answers_200_with_the_voided_authorization() -> TestResult
{
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "25.00", Scenario::Approve).await?;
    let voided = paypal
        .void_with(&id, "void-1", Some("return=representation"))
        .await?;
    assert_eq!(voided.status, StatusCode::OK);
    assert_eq!(voided.json["id"], id.as_str());
    assert_eq!(voided.json["status"], "VOIDED");
    assert_eq!(voided.money("/amount"), Some(("USD", "25.00")));
    Ok(())
}

#[tokio::test]
async fn a_void_after_non_final_partial_captures_releases_only_the_rest() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "100.00", Scenario::Approve).await?;
    assert_eq!(
        paypal.capture(&id, usd("30.00")).await?.status,
        StatusCode::CREATED
    );
    assert_eq!(
        paypal.authorization_status(&id).await?,
        "PARTIALLY_CAPTURED"
    );
    assert_eq!(paypal.void(&id).await?.status, StatusCode::NO_CONTENT);
    let hold = hold_of(&paypal.sandbox, &id).await?;
    assert_eq!(amounts(&hold), ("30.00", "70.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Void]);
    Ok(())
}

#[tokio::test]
async fn a_capture_after_a_void_is_refused_as_authorization_voided() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "100.00", Scenario::Approve).await?;
    assert_eq!(paypal.void(&id).await?.status, StatusCode::NO_CONTENT);
    let refused = paypal.capture(&id, usd("10.00")).await?;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.issue(), "AUTHORIZATION_VOIDED");
    assert!(paypal.sandbox.charges().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_final_capture_releases_the_rest_and_a_void_after_it_is_previously_captured() -> TestResult
{
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "100.00", Scenario::Approve).await?;
    let captured = paypal.capture(&id, final_capture("40.00")).await?;
    assert_eq!(captured.status, StatusCode::CREATED);
    let hold = hold_of(&paypal.sandbox, &id).await?;
    assert_eq!(amounts(&hold), ("40.00", "60.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Capture]);
    assert_eq!(
        hold.releases[0].id,
        captured.json["id"].as_str().unwrap_or_default()
    );
    assert!(!hold.voided);

    let refused = paypal.void(&id).await?;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.issue(), "PREVIOUSLY_CAPTURED");
    assert_eq!(
        amounts(&hold_of(&paypal.sandbox, &id).await?),
        ("40.00", "60.00")
    );
    Ok(())
}

#[tokio::test]
async fn a_void_of_a_fully_captured_authorization_is_previously_captured() -> TestResult {
    let paypal = PayPal::start().await?;
    let whole = paypal.authorize("USD", "50.00", Scenario::Approve).await?;
    assert_eq!(
        paypal.capture(&whole, json!({})).await?.status,
        StatusCode::CREATED
    );
    // Taken in full by non-final captures: nothing is left either.
    let summed = paypal.authorize("USD", "50.00", Scenario::Approve).await?;
    for _ in 0..2 {
        let answer = paypal.capture(&summed, usd("25.00")).await?;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    for id in [&whole, &summed] {
        assert_eq!(paypal.authorization_status(id).await?, "CAPTURED");
        let refused = paypal.void(id).await?;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.issue(), "PREVIOUSLY_CAPTURED");
        let hold = hold_of(&paypal.sandbox, id).await?;
        assert_eq!(amounts(&hold), ("50.00", "0.00"));
        assert!(hold.releases.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn a_second_void_and_a_void_of_a_voided_authorization_are_previously_voided() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    assert_eq!(paypal.void(&id).await?.status, StatusCode::NO_CONTENT);
    let voided = paypal.authorize("USD", "10.00", Scenario::Voided).await?;
    for id in [&id, &voided] {
        let refused = paypal.void(id).await?;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(refused.issue(), "PREVIOUSLY_VOIDED");
    }
    assert_eq!(hold_of(&paypal.sandbox, &id).await?.releases.len(), 1);
    assert!(hold_of(&paypal.sandbox, &voided).await?.releases.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_replayed_void_request_id_gets_the_identical_answer_and_releases_once() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "100.00", Scenario::Approve).await?;
    let prefer = Some("return=representation");
    let first = paypal.void_with(&id, "void-key-1", prefer).await?;
    assert_eq!(first.status, StatusCode::OK);
    let replay = paypal.void_with(&id, "void-key-1", prefer).await?;
    assert_eq!((replay.status, &replay.text), (first.status, &first.text));
    // A new key is a new void, refused: the replay was the stored answer.
    let other = paypal.void_with(&id, "void-key-2", prefer).await?;
    assert_eq!(other.issue(), "PREVIOUSLY_VOIDED");
    let hold = hold_of(&paypal.sandbox, &id).await?;
    assert_eq!(ways(&hold), [ReleasedBy::Void]);
    assert_eq!(hold.releases[0].key.as_deref(), Some("void-key-1"));
    Ok(())
}

#[tokio::test]
async fn a_void_needs_the_bearer_token_and_a_known_authorization() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    let url = format!("{}/v2/payments/authorizations/{id}/void", paypal.base);
    let anonymous = paypal.http.post(url).bearer_auth("made-up").send().await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(hold_of(&paypal.sandbox, &id).await?.releases.is_empty());
    let unknown = paypal.void("NOSUCHAUTH0000000").await?;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.issue(), "INVALID_RESOURCE_ID");
    Ok(())
}

#[tokio::test]
async fn a_denied_final_capture_no_longer_releases_the_rest() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "100.00", Scenario::Pending).await?;
    let pending = paypal.capture(&id, final_capture("40.00")).await?;
    assert_eq!(pending.json["status"], "PENDING");
    assert_eq!(
        amounts(&hold_of(&paypal.sandbox, &id).await?),
        ("40.00", "60.00")
    );
    let capture_id = pending.json["id"].as_str().ok_or("no id")?;
    let url = format!(
        "{}/sandbox/paypal/captures/{capture_id}/deny",
        paypal.sandbox.origin()
    );
    assert_eq!(paypal.http.post(url).send().await?.status(), StatusCode::OK);
    // The authorization is open again, whole: a void releases all of it.
    assert_eq!(
        amounts(&hold_of(&paypal.sandbox, &id).await?),
        ("0.00", "0.00")
    );
    assert_eq!(paypal.void(&id).await?.status, StatusCode::NO_CONTENT);
    assert_eq!(
        amounts(&hold_of(&paypal.sandbox, &id).await?),
        ("0.00", "100.00")
    );
    Ok(())
}
