//! The sandbox's PaymentOptions, driven over real HTTP as the connector drives PaymentOptions:
//! its keys, its request checks, its one-capture rule and its answers.

use std::error::Error;
use std::net::SocketAddr;

use capture_service::domain::Provider;
use capture_service::providers::payment_options::PaymentOptionsAccount;
use capture_service::sandbox::{Sandbox, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::TestResult;

/// Its void, and the rest released by a lesser capture.
mod releases;

const PATH: &str = "/api/v1/server-to-server-interface/capture";

/// A started sandbox and the account it accepts.
struct PaymentOptions {
    sandbox: Sandbox,
    account: PaymentOptionsAccount,
    http: reqwest::Client,
}

impl PaymentOptions {
    async fn start() -> Result<Self, Box<dyn Error>> {
        let sandbox = Sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let account = crate::common::sandbox_account::<
            capture_service::providers::payment_options::PaymentOptionsAccount,
        >(&sandbox)?;
        Ok(PaymentOptions {
            sandbox,
            account,
            http: reqwest::Client::new(),
        })
    }

    async fn authorize(&self, value: &str, scenario: Scenario) -> Result<String, Box<dyn Error>> {
        let request = crate::holds::new_authorization("USD", value, scenario);
        Ok(self
            .sandbox
            .create_authorization(Provider::PaymentOptions, request)
            .await?
            .id)
    }

    /// One capture with the given keys (`None`: the account's) to `path`.
    async fn send(
        &self,
        path: &str,
        keys: Option<(&str, &str)>,
        body: &Value,
    ) -> Result<(StatusCode, Value), Box<dyn Error>> {
        let (basic, api_key) = keys.unwrap_or((
            self.account.basic_key.expose(),
            self.account.api_key.expose(),
        ));
        let response = self
            .http
            .post(format!("{}{path}", self.account.base_url))
            .header("authorization", format!("Basic {basic}"))
            .header("x-api-key", api_key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn capture(&self, id: &str, amount: i64) -> Result<(StatusCode, Value), Box<dyn Error>> {
        let body = json!({"transactionId": id, "amount": amount,
            "merchant_id": self.account.merchant_id, "notes": "sandbox test"});
        self.send(PATH, None, &body).await
    }
}

fn gateway_code(answer: &Value) -> &str {
    answer["gateway_response"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_capture_answers_the_documented_shape_with_the_full_test_card_number() -> TestResult {
    let po = PaymentOptions::start().await?;
    let id = po.authorize("12.34", Scenario::Approve).await?;
    let (status, answer) = po.capture(&id, 1234).await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(answer["success"], true);
    assert_eq!(answer["transaction_type"], "CAPTURE");
    assert_eq!(gateway_code(&answer), "INFO0001");
    assert_eq!(answer["payment_details"]["response_code"], 0);
    assert_eq!(answer["payment_details"]["amount"], 1234);
    assert_eq!(answer["payment_details"]["currency"], "USD");
    assert_eq!(
        answer["payment_details"]["card"]["number"],
        "4111111111111111"
    );
    assert_eq!(
        answer["merchant_details"]["mid"],
        po.account.merchant_id.as_str()
    );
    assert_eq!(
        answer["transaction_details"]["id"].as_str().map(str::len),
        Some(36)
    );
    Ok(())
}

#[tokio::test]
async fn wrong_keys_are_refused_with_401() -> TestResult {
    let po = PaymentOptions::start().await?;
    let id = po.authorize("10.00", Scenario::Approve).await?;
    let body = json!({"transactionId": id, "amount": 1000, "merchant_id": po.account.merchant_id});
    let basic = po.account.basic_key.expose();
    for keys in [("wrong", po.account.api_key.expose()), (basic, "wrong")] {
        let (status, answer) = po.send(PATH, Some(keys), &body).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(gateway_code(&answer), "ERR1002");
    }
    // Nothing was captured by the refused calls.
    assert_eq!(po.capture(&id, 1000).await?.0, StatusCode::CREATED);
    Ok(())
}

#[tokio::test]
async fn the_published_doubled_path_is_served_too() -> TestResult {
    let po = PaymentOptions::start().await?;
    let id = po.authorize("10.00", Scenario::Approve).await?;
    let body = json!({"transactionId": id, "amount": 1000, "merchant_id": po.account.merchant_id});
    let (status, _) = po
        .send(
            "/api/v1/api/v1/server-to-server-interface/capture",
            None,
            &body,
        )
        .await?;
    assert_eq!(status, StatusCode::CREATED);
    Ok(())
}

#[tokio::test]
async fn bad_requests_are_refused_field_by_field() -> TestResult {
    let po = PaymentOptions::start().await?;
    let id = po.authorize("10.00", Scenario::Approve).await?;
    let mid = po.account.merchant_id.clone();
    let cases = [
        (
            json!({"transactionId": id, "amount": "10.00", "merchant_id": mid}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"transactionId": id, "amount": 10_000_000_000_i64, "merchant_id": mid}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"transactionId": id, "merchant_id": mid}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"transactionId": id, "amount": 1, "merchant_id": mid, "notes": "n".repeat(129)}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"transactionId": id, "amount": 1, "merchant_id": "OTHER"}),
            StatusCode::NOT_ACCEPTABLE,
        ),
        (
            json!({"transactionId": "no-such", "amount": 1, "merchant_id": mid}),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = po.send(PATH, None, &body).await?;
        assert_eq!(status, expected, "{body}");
        assert_eq!(answer["success"], false);
    }
    Ok(())
}

#[tokio::test]
async fn one_capture_per_authorization_and_a_resend_is_a_duplicate() -> TestResult {
    let po = PaymentOptions::start().await?;
    let id = po.authorize("10.00", Scenario::Approve).await?;
    let (status, answer) = po.capture(&id, 1001).await?;
    assert_eq!(
        (status, gateway_code(&answer)),
        (StatusCode::PRECONDITION_FAILED, "ERR1004")
    );
    assert_eq!(po.capture(&id, 400).await?.0, StatusCode::CREATED);
    let (status, answer) = po.capture(&id, 400).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["payment_details"]["response_code"], 94);
    let (status, answer) = po.capture(&id, 100).await?;
    assert_eq!(
        (status, gateway_code(&answer)),
        (StatusCode::PRECONDITION_FAILED, "ERR1005")
    );
    Ok(())
}

#[tokio::test]
async fn scenarios_answer_as_payment_options_would() -> TestResult {
    let po = PaymentOptions::start().await?;
    let declined = po.authorize("10.00", Scenario::Declined).await?;
    let (status, answer) = po.capture(&declined, 1000).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["success"], false);
    assert_eq!(answer["payment_details"]["response_code"], 5);

    let failing = po.authorize("10.00", Scenario::ServerError).await?;
    assert_eq!(
        po.capture(&failing, 1000).await?.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    let malformed = po.authorize("10.00", Scenario::MalformedBody).await?;
    let (status, answer) = po.capture(&malformed, 1000).await?;
    assert_eq!((status, answer), (StatusCode::CREATED, Value::Null));
    // It did capture: a resend is a duplicate.
    let (_, answer) = po.capture(&malformed, 1000).await?;
    assert_eq!(answer["payment_details"]["response_code"], 94);

    for (scenario, code) in [
        (Scenario::Expired, "ERR1006"),
        (Scenario::Voided, "ERR1007"),
    ] {
        let id = po.authorize("10.00", scenario).await?;
        let (status, answer) = po.capture(&id, 1000).await?;
        assert_eq!(
            (status, gateway_code(&answer)),
            (StatusCode::PRECONDITION_FAILED, code)
        );
    }
    Ok(())
}
