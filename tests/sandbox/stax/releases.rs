//! The sandbox's Stax releasing pre-authorizations: the void before and after partial captures,
//! and the refusals around it, each checked in the book's holds.

use std::error::Error;

use capture_service::sandbox::{ReleasedBy, Scenario};
use reqwest::StatusCode;

use super::{Answer, Stax, TRANSACTION_FIELDS};
use crate::common::TestResult;
use crate::holds::{amounts, hold_of, ways};

impl Stax {
    /// `POST /transaction/{id}/void` with `key`, no body.
    async fn void_with_key(&self, key: &str, id: &str) -> Result<Answer, Box<dyn Error>> {
        let url = format!("{}/transaction/{id}/void", self.base);
        self.send(self.http.post(url).bearer_auth(key)).await
    }

    async fn void(&self, id: &str) -> Result<Answer, Box<dyn Error>> {
        self.void_with_key(&self.key, id).await
    }
}

#[tokio::test]
async fn a_void_answers_the_pre_authorization_voided_and_releases_all_of_it() -> TestResult {
    let stax = Stax::start().await?;
    let id = stax.pre_authorize("50.00", Scenario::Approve).await?;
    let voided = stax.void(&id).await?;
    assert_eq!(voided.status, StatusCode::OK);
    let transaction = &voided.json;
    for field in TRANSACTION_FIELDS {
        assert!(transaction.get(field).is_some(), "{field}: {}", voided.text);
    }
    assert_eq!(transaction["id"], id.as_str());
    assert_eq!(transaction["type"], "pre_auth");
    assert_eq!(transaction["is_voided"], true);
    assert_eq!(transaction["is_voidable"], false);
    assert_eq!(stax.read(&id).await?.json["is_voided"], true);
    let hold = hold_of(&stax.sandbox, &id).await?;
    assert_eq!(amounts(&hold), ("0.00", "50.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Void]);
    Ok(())
}

#[tokio::test]
async fn a_void_after_a_partial_capture_releases_the_rest() -> TestResult {
    let stax = Stax::start().await?;
    let id = stax.pre_authorize("50.00", Scenario::Approve).await?;
    assert_eq!(
        stax.capture(&id, r#"{"total": 20}"#).await?.status,
        StatusCode::OK
    );
    // A partial capture releases nothing by itself: the rest stays capturable.
    assert_eq!(
        amounts(&hold_of(&stax.sandbox, &id).await?),
        ("20.00", "0.00")
    );
    assert_eq!(stax.void(&id).await?.status, StatusCode::OK);
    let hold = hold_of(&stax.sandbox, &id).await?;
    assert_eq!(amounts(&hold), ("20.00", "30.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Void]);
    Ok(())
}

#[tokio::test]
async fn a_capture_after_a_void_is_refused_with_a_400() -> TestResult {
    let stax = Stax::start().await?;
    let id = stax.pre_authorize("50.00", Scenario::Approve).await?;
    assert_eq!(stax.void(&id).await?.status, StatusCode::OK);
    let refused = stax.capture(&id, r#"{"total": 10}"#).await?;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json["message"],
        "This pre-authorization has been voided."
    );
    assert!(stax.sandbox.charges().is_empty());
    Ok(())
}

#[tokio::test]
async fn voids_of_captured_voided_and_expired_pre_authorizations_are_refused() -> TestResult {
    let stax = Stax::start().await?;
    let whole = stax.pre_authorize("50.00", Scenario::Approve).await?;
    assert_eq!(stax.capture(&whole, "").await?.status, StatusCode::OK);
    let voided = stax.pre_authorize("50.00", Scenario::Approve).await?;
    assert_eq!(stax.void(&voided).await?.status, StatusCode::OK);
    let scenario_voided = stax.pre_authorize("50.00", Scenario::Voided).await?;
    let expired = stax.pre_authorize("50.00", Scenario::Expired).await?;
    let cases = [
        (&whole, "This pre-authorization has already been captured."),
        (&voided, "This pre-authorization has been voided."),
        (&scenario_voided, "This pre-authorization has been voided."),
        (&expired, "This pre-authorization has expired."),
    ];
    for (id, message) in cases {
        let refused = stax.void(id).await?;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{id}");
        assert_eq!(refused.json["message"], message);
    }
    let hold = hold_of(&stax.sandbox, &whole).await?;
    assert_eq!(amounts(&hold), ("50.00", "0.00"));
    assert_eq!(hold_of(&stax.sandbox, &voided).await?.releases.len(), 1);
    let unknown = stax.void("00000000-0000-4000-a000-000000000000").await?;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let anonymous = stax.void_with_key("wrong", &whole).await?;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    Ok(())
}
