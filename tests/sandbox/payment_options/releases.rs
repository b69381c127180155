//! The sandbox's PaymentOptions releasing authorizations: the void of one never captured, the
//! rest released by a capture of less than was authorized, and the refusals around them, each
//! checked in the book's holds; voids are not captures to the fault injector.

use std::error::Error;

use capture_service::domain::Provider;
use capture_service::sandbox::{Attempt, Fault, ReleasedBy, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{gateway_code, PaymentOptions, PATH};
use crate::common::TestResult;
use crate::holds::{amounts, hold_of, new_authorization, ways};

const VOID_PATH: &str = "/api/v1/server-to-server-interface/void";

impl PaymentOptions {
    async fn void(&self, id: &str) -> Result<(StatusCode, Value), Box<dyn Error>> {
        let body = json!({"transactionId": id, "merchant_id": self.account.merchant_id});
        self.send(VOID_PATH, None, &body).await
    }
}

/// Status, gateway code and transaction type of an answer.
fn outcome(answer: &(StatusCode, Value)) -> (StatusCode, &str, &str) {
    let kind = answer.1["transaction_type"].as_str().unwrap_or_default();
    (answer.0, gateway_code(&answer.1), kind)
}

#[tokio::test]
async fn a_void_of_an_authorization_never_captured_answers_201_void_and_releases_it() -> TestResult
{
    let po = PaymentOptions::start().await?;
    let id = po.authorize("10.00", Scenario::Approve).await?;
    let voided = po.void(&id).await?;
    assert_eq!(outcome(&voided), (StatusCode::CREATED, "INFO0003", "VOID"));
    let answer = &voided.1;
    assert_eq!(answer["success"], true);
    assert_eq!(answer["status_code"], 201);
    assert_eq!(answer["payment_details"]["amount"], 1000);
    assert_eq!(answer["payment_details"]["response_code"], 0);
    assert_eq!(
        answer["merchant_details"]["mid"],
        po.account.merchant_id.as_str()
    );
    let hold = hold_of(&po.sandbox, &id).await?;
    assert_eq!(amounts(&hold), ("0.00", "10.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Void]);

    // The published example's path, `/api/v1` twice, is served too.
    let other = po.authorize("10.00", Scenario::Approve).await?;
    let body = json!({"transactionId": other, "merchant_id": po.account.merchant_id});
    let doubled = po
        .send(
            "/api/v1/api/v1/server-to-server-interface/void",
            None,
            &body,
        )
        .await?;
    assert_eq!(doubled.0, StatusCode::CREATED);
    Ok(())
}

#[tokio::test]
async fn a_capture_after_a_void_is_refused_as_voided() -> TestResult {
    let po = PaymentOptions::start().await?;
    let id = po.authorize("10.00", Scenario::Approve).await?;
    assert_eq!(po.void(&id).await?.0, StatusCode::CREATED);
    let refused = po.capture(&id, 1000).await?;
    assert_eq!(
        outcome(&refused),
        (StatusCode::PRECONDITION_FAILED, "ERR1007", "CAPTURE")
    );
    assert!(po.sandbox.charges().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_lesser_capture_releases_the_rest_and_no_void_follows_any_capture() -> TestResult {
    let po = PaymentOptions::start().await?;
    let lesser = po.authorize("10.00", Scenario::Approve).await?;
    assert_eq!(po.capture(&lesser, 400).await?.0, StatusCode::CREATED);
    let hold = hold_of(&po.sandbox, &lesser).await?;
    assert_eq!(amounts(&hold), ("4.00", "6.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Capture]);
    assert!(!hold.voided);

    let whole = po.authorize("10.00", Scenario::Approve).await?;
    assert_eq!(po.capture(&whole, 1000).await?.0, StatusCode::CREATED);
    let hold = hold_of(&po.sandbox, &whole).await?;
    assert_eq!(amounts(&hold), ("10.00", "0.00"));
    assert!(hold.releases.is_empty());

    for id in [&lesser, &whole] {
        let refused = po.void(id).await?;
        assert_eq!(
            outcome(&refused),
            (StatusCode::PRECONDITION_FAILED, "ERR1005", "VOID")
        );
        assert_eq!(refused.1["success"], false);
    }
    assert_eq!(
        amounts(&hold_of(&po.sandbox, &lesser).await?),
        ("4.00", "6.00")
    );
    Ok(())
}

#[tokio::test]
async fn voids_are_refused_for_voided_expired_unknown_and_foreign_authorizations() -> TestResult {
    let po = PaymentOptions::start().await?;
    let voided = po.authorize("10.00", Scenario::Approve).await?;
    assert_eq!(po.void(&voided).await?.0, StatusCode::CREATED);
    let failed = StatusCode::PRECONDITION_FAILED;
    assert_eq!(
        outcome(&po.void(&voided).await?),
        (failed, "ERR1007", "VOID")
    );
    let scenario_voided = po.authorize("10.00", Scenario::Voided).await?;
    assert_eq!(
        outcome(&po.void(&scenario_voided).await?),
        (failed, "ERR1007", "VOID")
    );
    let expired = po.authorize("10.00", Scenario::Expired).await?;
    assert_eq!(
        outcome(&po.void(&expired).await?),
        (failed, "ERR1006", "VOID")
    );
    let unknown = po.void("no-such").await?;
    assert_eq!(
        outcome(&unknown),
        (StatusCode::NOT_FOUND, "ERR1001", "VOID")
    );

    let id = po.authorize("10.00", Scenario::Approve).await?;
    let foreign = json!({"transactionId": id, "merchant_id": "OTHER"});
    let foreign = po.send(VOID_PATH, None, &foreign).await?;
    assert_eq!(foreign.0, StatusCode::NOT_ACCEPTABLE);
    let no_merchant = po
        .send(VOID_PATH, None, &json!({"transactionId": id}))
        .await?;
    assert_eq!(
        outcome(&no_merchant),
        (StatusCode::BAD_REQUEST, "ERR1003", "VOID")
    );
    let body = json!({"transactionId": id, "merchant_id": po.account.merchant_id});
    let wrong_keys = po.send(VOID_PATH, Some(("wrong", "wrong")), &body).await?;
    assert_eq!(wrong_keys.0, StatusCode::UNAUTHORIZED);
    assert!(hold_of(&po.sandbox, &id).await?.releases.is_empty());
    assert_eq!(hold_of(&po.sandbox, &voided).await?.releases.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_void_of_an_observed_authorization_meets_no_fault_and_is_no_attempt() -> TestResult {
    let po = PaymentOptions::start().await?;
    let mut request = new_authorization("USD", "10.00", Scenario::Approve);
    request.faults = Some(vec![Fault::Html502]);
    let id = po
        .sandbox
        .create_authorization(Provider::PaymentOptions, request)
        .await?
        .id;
    let attempts = || async {
        let url = format!("{}/sandbox/attempts", po.sandbox.origin());
        reqwest::get(url).await?.json::<Vec<Attempt>>().await
    };
    assert_eq!(po.void(&id).await?.0, StatusCode::CREATED);
    assert!(attempts().await?.is_empty(), "a void is not a capture");
    // The fault is still there for the first capture.
    let capture = po.capture(&id, 1000).await?;
    assert_eq!(capture.0, StatusCode::BAD_GATEWAY);
    let listed = attempts().await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].path.as_str(), listed[0].fault),
        (PATH, Some(Fault::Html502))
    );
    Ok(())
}
