//! The sandbox's Checkout.com releasing payments: "Void a payment" before and after `NonFinal`
//! partial captures, the rest released by a `Final` capture, and the refusals around them, each
//! checked in the book's holds and the payment's details.

use std::error::Error;

use capture_service::sandbox::{ReleasedBy, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{suffix, Answer, Checkout};
use crate::common::TestResult;
use crate::holds::{amounts, hold_of, ways};

impl Checkout {
    /// `POST /payments/{id}/voids` with a fresh idempotency key.
    async fn void(&self, id: &str, body: Value) -> Result<Answer, Box<dyn Error>> {
        let idempotency_key = format!("void-{}", suffix());
        self.post_action(id, "voids", body, &self.key, &idempotency_key)
            .await
    }

    /// The payment's details: status and balances.
    async fn details(&self, id: &str) -> Result<Value, Box<dyn Error>> {
        Ok(self.payment(id, &self.key).await?.json)
    }
}

#[tokio::test]
async fn a_void_before_any_capture_is_accepted_and_releases_the_whole_payment() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("EUR", "100.00", Scenario::Approve)
        .await?;
    let voided = checkout
        .void(&id, json!({"reference": "ORD-5023-4E89"}))
        .await?;
    assert_eq!(voided.status, StatusCode::ACCEPTED);
    let action_id = voided.json["action_id"].as_str().ok_or("no action_id")?;
    assert!(action_id.starts_with("act_"));
    assert_eq!(voided.json["reference"], "ORD-5023-4E89");
    let href = format!("{}/payments/{id}", checkout.base);
    assert_eq!(voided.json["_links"]["payment"]["href"], href);

    let details = checkout.details(&id).await?;
    assert_eq!(details["status"], "Voided");
    assert_eq!(details["balances"]["total_voided"], 10000);
    assert_eq!(details["balances"]["available_to_capture"], 0);
    let listed = checkout.actions(&id).await?.json;
    assert_eq!(listed[0]["type"], "Void");
    assert_eq!(listed[0]["id"], action_id);
    assert_eq!(listed[0]["amount"], 10000);

    let hold = hold_of(&checkout.sandbox, &id).await?;
    assert_eq!(amounts(&hold), ("0.00", "100.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Void]);
    assert_eq!(hold.releases[0].id, action_id);
    Ok(())
}

#[tokio::test]
async fn a_void_after_non_final_partial_captures_releases_only_the_rest() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("EUR", "100.00", Scenario::Approve)
        .await?;
    let partial = json!({"amount": 3000, "capture_type": "NonFinal"});
    assert_eq!(
        checkout.capture(&id, partial).await?.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        checkout.void(&id, json!({})).await?.status,
        StatusCode::ACCEPTED
    );
    let details = checkout.details(&id).await?;
    assert_eq!(details["balances"]["total_voided"], 7000);
    assert_eq!(details["balances"]["total_captured"], 3000);
    let hold = hold_of(&checkout.sandbox, &id).await?;
    assert_eq!(amounts(&hold), ("30.00", "70.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Void]);
    Ok(())
}

#[tokio::test]
async fn a_capture_after_a_void_is_refused_as_not_allowed() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("EUR", "100.00", Scenario::Approve)
        .await?;
    assert_eq!(
        checkout.void(&id, json!({})).await?.status,
        StatusCode::ACCEPTED
    );
    let refused = checkout.capture(&id, json!({"amount": 1000})).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.is_empty());
    assert!(checkout.sandbox.charges().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_final_partial_capture_releases_the_rest_and_a_void_after_it_is_not_allowed() -> TestResult
{
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("EUR", "100.00", Scenario::Approve)
        .await?;
    // `Final` is the default capture type.
    let captured = checkout.capture(&id, json!({"amount": 4000})).await?;
    assert_eq!(captured.status, StatusCode::ACCEPTED);
    let hold = hold_of(&checkout.sandbox, &id).await?;
    assert_eq!(amounts(&hold), ("40.00", "60.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Capture]);
    assert_eq!(
        hold.releases[0].id,
        captured.json["action_id"].as_str().unwrap_or_default()
    );

    let refused = checkout.void(&id, json!({})).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.is_empty());
    assert_eq!(
        amounts(&hold_of(&checkout.sandbox, &id).await?),
        ("40.00", "60.00")
    );
    Ok(())
}

#[tokio::test]
async fn voids_of_captured_voided_and_expired_payments_are_not_allowed() -> TestResult {
    let checkout = Checkout::start().await?;
    let captured = checkout
        .authorize("EUR", "50.00", Scenario::Approve)
        .await?;
    assert_eq!(
        checkout.capture(&captured, json!({})).await?.status,
        StatusCode::ACCEPTED
    );
    let voided = checkout
        .authorize("EUR", "50.00", Scenario::Approve)
        .await?;
    assert_eq!(
        checkout.void(&voided, json!({})).await?.status,
        StatusCode::ACCEPTED
    );
    let scenario_voided = checkout.authorize("EUR", "50.00", Scenario::Voided).await?;
    let expired = checkout
        .authorize("EUR", "50.00", Scenario::Expired)
        .await?;
    for id in [&captured, &voided, &scenario_voided, &expired] {
        let refused = checkout.void(id, json!({})).await?;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{id}");
        assert!(refused.text.is_empty());
    }
    let hold = hold_of(&checkout.sandbox, &captured).await?;
    assert_eq!(amounts(&hold), ("50.00", "0.00"));
    assert_eq!(hold_of(&checkout.sandbox, &voided).await?.releases.len(), 1);
    let unknown = checkout
        .void("pay_nosuchpaymentnosuchpayment", json!({}))
        .await?;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn a_replayed_void_key_gets_the_same_answer_and_releases_once() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("EUR", "100.00", Scenario::Approve)
        .await?;
    let key = checkout.key.clone();
    let body = json!({"reference": "ORD-1"});
    let first = checkout
        .post_action(&id, "voids", body.clone(), &key, "void-key-1")
        .await?;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let replay = checkout
        .post_action(&id, "voids", body.clone(), &key, "void-key-1")
        .await?;
    assert_eq!((replay.status, &replay.text), (first.status, &first.text));
    // A new key is a new void, refused: the replay was the stored answer.
    let other = checkout
        .post_action(&id, "voids", body, &key, "void-key-2")
        .await?;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let voids = checkout.actions(&id).await?.json;
    let voids = voids.as_array().ok_or("not a list")?;
    assert_eq!(voids.iter().filter(|a| a["type"] == "Void").count(), 1);
    let hold = hold_of(&checkout.sandbox, &id).await?;
    assert_eq!(ways(&hold), [ReleasedBy::Void]);
    assert_eq!(hold.releases[0].key.as_deref(), Some("void-key-1"));
    Ok(())
}

#[tokio::test]
async fn a_void_needs_the_key_and_a_well_formed_body() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("EUR", "100.00", Scenario::Approve)
        .await?;
    let anonymous = checkout
        .post_action(&id, "voids", json!({}), "sk_sbox_wrong", "void-key-1")
        .await?;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let invalid = checkout
        .void(&id, json!({"reference": 7, "metadata": "none"}))
        .await?;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.json["error_type"], "request_invalid");
    let codes = &invalid.json["error_codes"];
    assert_eq!(codes, &json!(["reference_invalid", "metadata_invalid"]));
    assert!(hold_of(&checkout.sandbox, &id).await?.releases.is_empty());
    Ok(())
}
