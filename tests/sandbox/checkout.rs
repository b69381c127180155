//! The sandbox's Checkout.com, driven over real HTTP as Checkout.com is driven, and through the
//! real connector (`capture` then `fetch_outcome`).

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use capture_service::domain::capture::{
    AuthorizationId, CaptureParts, Metadata, Reference, RequestId,
};
use capture_service::domain::{
    CaptureCommand, CaptureRecord, CaptureStatus, Money, Provider, StatusReason,
};
use capture_service::providers::checkout::CheckoutConnector;
use capture_service::providers::checkout::CURRENCY_MISMATCH;
use capture_service::providers::http::ProviderHttp;
use capture_service::providers::{CaptureCall, Connector, ProviderError, Rejection};
use capture_service::sandbox::{MoneyJson, NewAuthorization, Sandbox, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::TestResult;

/// Its voids, and the rest released by a `Final` capture.
mod releases;
/// Its webhooks: what is sent after each change, signed as the provider signs.
mod webhooks;

/// A started sandbox and an HTTP client holding its Checkout.com secret key.
struct Checkout {
    sandbox: Sandbox,
    http: reqwest::Client,
    base: String,
    key: String,
}

/// One answer: status, raw body, the body as JSON (`Null` if not JSON) and the request id.
struct Answer {
    status: StatusCode,
    text: String,
    json: Value,
    request_id: Option<String>,
}

impl Checkout {
    async fn start() -> Result<Self, Box<dyn Error>> {
        let sandbox = Sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let account = crate::common::sandbox_account::<
            capture_service::providers::checkout::CheckoutAccount,
        >(&sandbox)?;
        Ok(Checkout {
            base: account.base_url.clone(),
            key: account.secret_key.expose().to_owned(),
            sandbox,
            http: reqwest::Client::new(),
        })
    }

    async fn authorize(
        &self,
        currency: &str,
        value: &str,
        scenario: Scenario,
    ) -> Result<String, Box<dyn Error>> {
        let amount = MoneyJson {
            currency_code: currency.to_owned(),
            value: value.to_owned(),
        };
        let request = NewAuthorization {
            amount,
            scenario,
            faults: None,
        };
        Ok(self
            .sandbox
            .create_authorization(Provider::Checkout, request)
            .await?
            .id)
    }

    async fn capture(&self, id: &str, body: Value) -> Result<Answer, Box<dyn Error>> {
        self.capture_with(id, body, &self.key, &format!("key-{}", suffix()))
            .await
    }

    async fn capture_with(
        &self,
        id: &str,
        body: Value,
        key: &str,
        idempotency_key: &str,
    ) -> Result<Answer, Box<dyn Error>> {
        self.post_action(id, "captures", body, key, idempotency_key)
            .await
    }

    /// `POST /payments/{id}/{action}` (`captures`, `voids`) with `key` as the bearer token.
    async fn post_action(
        &self,
        id: &str,
        action: &str,
        body: Value,
        key: &str,
        idempotency_key: &str,
    ) -> Result<Answer, Box<dyn Error>> {
        let response = self
            .http
            .post(format!("{}/payments/{id}/{action}", self.base))
            .bearer_auth(key)
            .header("cko-idempotency-key", idempotency_key)
            .json(&body)
            .send()
            .await?;
        read(response).await
    }

    async fn actions(&self, id: &str) -> Result<Answer, Box<dyn Error>> {
        let response = self
            .http
            .get(format!("{}/payments/{id}/actions", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        read(response).await
    }

    /// `GET /payments/{id}` ("Get payment details") with `key` as the bearer token.
    async fn payment(&self, id: &str, key: &str) -> Result<Answer, Box<dyn Error>> {
        let response = self
            .http
            .get(format!("{}/payments/{id}", self.base))
            .bearer_auth(key)
            .send()
            .await?;
        read(response).await
    }

    fn connector(&self) -> Result<CheckoutConnector, Box<dyn Error>> {
        let http = ProviderHttp::new(Duration::from_secs(2), 0)?;
        Ok(CheckoutConnector::new(
            &crate::common::sandbox_account::<capture_service::providers::checkout::CheckoutAccount>(
                &self.sandbox,
            )?,
            http,
        ))
    }
}

async fn read(response: reqwest::Response) -> Result<Answer, Box<dyn Error>> {
    let status = response.status();
    let request_id = response
        .headers()
        .get("cko-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        text,
        json,
        request_id,
    })
}

fn suffix() -> String {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    hex::encode(random)
}

/// The capture actions listed for a payment, newest first.
async fn captures(checkout: &Checkout, id: &str) -> Result<Vec<Value>, Box<dyn Error>> {
    let listed = checkout.actions(id).await?;
    assert_eq!(listed.status, StatusCode::OK);
    Ok(listed
        .json
        .as_array()
        .ok_or("not a list")?
        .iter()
        .filter(|a| a["type"] == "Capture")
        .cloned()
        .collect())
}

fn command(payment_id: &str, amount: Option<Money>) -> Result<CaptureCommand, Box<dyn Error>> {
    let parts = CaptureParts {
        operation: capture_service::domain::Operation::Capture,
        provider: Provider::Checkout,
        account: None,
        authorization_id: AuthorizationId::parse(payment_id)?,
        amount,
        authorized_amount: None,
        final_capture: false,
        invoice_id: None,
        note_to_payer: None,
        soft_descriptor: None,
        reference: Some(Reference::parse("ORD-1")?),
        metadata: Metadata::default(),
        platform_fees: vec![],
        disbursement_mode: None,
        request_id: RequestId::parse("req-1")?,
    };
    CaptureCommand::new(parts).map_err(|e| format!("{e:?}").into())
}

fn record(id: &str, command: CaptureCommand, action_id: Option<String>) -> CaptureRecord {
    CaptureRecord {
        status: CaptureStatus::Pending,
        provider_capture_id: action_id,
        ..CaptureRecord::processing(
            id.to_owned(),
            "tenant-a".to_owned(),
            "default".to_owned(),
            command,
            1,
            0,
        )
    }
}

#[tokio::test]
async fn payments_have_checkouts_id_shape_and_a_wrong_key_gets_a_bare_401() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::Approve)
        .await?;
    let tail = id.strip_prefix("pay_").ok_or("no pay_ prefix")?;
    assert_eq!(tail.len(), 26);
    assert!(tail
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    assert!(checkout.key.starts_with("sk_sbox_"));

    let refused = checkout
        .capture_with(&id, json!({}), "sk_sbox_wrong", "k1")
        .await?;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.text.is_empty());
    assert!(refused.request_id.is_some());
    Ok(())
}

#[tokio::test]
async fn a_capture_is_accepted_then_listed_as_an_approved_action() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("USD", "100.00", Scenario::Approve)
        .await?;
    let answer = checkout
        .capture(
            &id,
            json!({"amount": 3500, "capture_type": "NonFinal", "reference": "ORD-1",
                   "metadata": {"coupon_code": "NY2018"}}),
        )
        .await?;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let action_id = answer.json["action_id"].as_str().ok_or("no action id")?;
    assert!(action_id.starts_with("act_"));
    assert_eq!(answer.json["reference"], "ORD-1");
    assert!(answer.json["_links"]["payment"]["href"]
        .as_str()
        .is_some_and(|h| h.ends_with(&format!("/payments/{id}"))));

    let listed = checkout.actions(&id).await?;
    let all = listed.json.as_array().ok_or("not a list")?;
    assert_eq!(all.len(), 2, "the capture, then the authorization");
    assert_eq!(all[1]["type"], "Authorization");
    let capture = &all[0];
    assert_eq!(capture["id"], action_id);
    assert_eq!(capture["type"], "Capture");
    assert_eq!(capture["approved"], true);
    assert_eq!(capture["amount"], 3500);
    assert_eq!(capture["response_code"], "10000");
    assert_eq!(capture["reference"], "ORD-1");
    assert!(capture["processed_on"].is_string());
    Ok(())
}

#[tokio::test]
async fn non_final_captures_continue_until_the_rest_is_refused_with_an_amount_code() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("USD", "100.00", Scenario::Approve)
        .await?;
    for _ in 0..2 {
        let answer = checkout
            .capture(&id, json!({"amount": 4000, "capture_type": "NonFinal"}))
            .await?;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    let over = checkout
        .capture(&id, json!({"amount": 2001, "capture_type": "NonFinal"}))
        .await?;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(over.json["error_type"], "processing_error");
    assert_eq!(
        over.json["error_codes"],
        json!(["capture_value_greater_than_remaining_authorized"])
    );
    assert!(over.json["request_id"].is_string());
    let above_all = checkout.capture(&id, json!({"amount": 10001})).await?;
    assert_eq!(
        above_all.json["error_codes"],
        json!(["capture_value_greater_than_authorized"])
    );
    // No amount: the 20.00 that remains.
    let rest = checkout.capture(&id, json!({})).await?;
    assert_eq!(rest.status, StatusCode::ACCEPTED);
    assert_eq!(captures(&checkout, &id).await?[0]["amount"], 2000);
    Ok(())
}

#[tokio::test]
async fn a_final_partial_capture_voids_the_rest() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("EUR", "100.00", Scenario::Approve)
        .await?;
    let first = checkout
        .capture(&id, json!({"amount": 1000, "capture_type": "Final"}))
        .await?;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let refused = checkout.capture(&id, json!({"amount": 1000})).await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text.is_empty());
    Ok(())
}

#[tokio::test]
async fn malformed_amounts_and_types_are_refused_as_invalid_requests() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("TND", "100.000", Scenario::Approve)
        .await?;
    let bad = checkout
        .capture(
            &id,
            json!({"amount": 1235, "capture_type": "Sometimes", "reference": "r".repeat(81)}),
        )
        .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad.json["error_type"], "request_invalid");
    assert_eq!(
        bad.json["error_codes"],
        json!([
            "amount_invalid",
            "capture_type_invalid",
            "reference_invalid"
        ])
    );
    for amount in [json!(0), json!(12.5), json!("1230"), json!(1_000_000_000)] {
        let answer = checkout.capture(&id, json!({ "amount": amount })).await?;
        assert_eq!(
            answer.json["error_codes"],
            json!(["amount_invalid"]),
            "{amount}"
        );
    }
    // Thousandths, ending in 0: 1.230 TND.
    let ok = checkout.capture(&id, json!({"amount": 1230})).await?;
    assert_eq!(ok.status, StatusCode::ACCEPTED);
    Ok(())
}

#[tokio::test]
async fn unknown_expired_and_voided_payments_are_refused_without_a_body() -> TestResult {
    let checkout = Checkout::start().await?;
    let unknown = checkout
        .capture("pay_aaaaaaaaaaaaaaaaaaaaaaaaaa", json!({}))
        .await?;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.text.is_empty());
    let listed = checkout.actions("pay_aaaaaaaaaaaaaaaaaaaaaaaaaa").await?;
    assert_eq!(listed.status, StatusCode::NOT_FOUND);
    for scenario in [Scenario::Expired, Scenario::Voided] {
        let id = checkout.authorize("USD", "10.00", scenario).await?;
        let answer = checkout.capture(&id, json!({"amount": 100})).await?;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{scenario:?}");
        assert!(answer.text.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn a_replayed_idempotency_key_gets_the_same_answer_and_no_new_action() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("USD", "100.00", Scenario::Approve)
        .await?;
    let key = checkout.key.clone();
    let body = json!({"amount": 1000, "capture_type": "NonFinal"});
    let first = checkout.capture_with(&id, body, &key, "same-key").await?;
    let again = checkout
        .capture_with(&id, json!({"amount": 9999}), &key, "same-key")
        .await?;
    assert_eq!((first.status, &first.text), (again.status, &again.text));
    assert_eq!(captures(&checkout, &id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn declined_captures_take_nothing_and_pending_ones_are_not_listed_yet() -> TestResult {
    let checkout = Checkout::start().await?;
    let declined = checkout
        .authorize("USD", "10.00", Scenario::Declined)
        .await?;
    assert_eq!(
        checkout.capture(&declined, json!({})).await?.status,
        StatusCode::ACCEPTED
    );
    let listed = captures(&checkout, &declined).await?;
    assert_eq!(listed[0]["approved"], false);
    assert_eq!(listed[0]["response_code"], "20051");
    // Nothing was taken: the full amount can still be captured.
    let retry = checkout.capture(&declined, json!({"amount": 1000})).await?;
    assert_eq!(retry.status, StatusCode::ACCEPTED);

    let pending = checkout
        .authorize("USD", "10.00", Scenario::Pending)
        .await?;
    let answer = checkout
        .capture(&pending, json!({"amount": 600, "capture_type": "NonFinal"}))
        .await?;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert!(captures(&checkout, &pending).await?.is_empty());
    // Pending money is held: only 4.00 remains.
    let over = checkout.capture(&pending, json!({"amount": 500})).await?;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    Ok(())
}

#[tokio::test]
async fn a_server_error_answers_500_and_captures_nothing() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::ServerError)
        .await?;
    let answer = checkout.capture(&id, json!({"amount": 100})).await?;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(captures(&checkout, &id).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_malformed_answer_still_records_the_capture() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::MalformedBody)
        .await?;
    let answer = checkout.capture(&id, json!({"amount": 100})).await?;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.json, Value::Null);
    assert_eq!(captures(&checkout, &id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_timed_out_capture_was_recorded_and_its_replay_answers_at_once() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::Timeout)
        .await?;
    let key = checkout.key.clone();
    let first = tokio::time::timeout(
        Duration::from_millis(500),
        checkout.capture_with(&id, json!({"amount": 100}), &key, "slow-key"),
    )
    .await;
    assert!(first.is_err(), "the first answer is held back");
    assert_eq!(captures(&checkout, &id).await?.len(), 1);
    let replay = tokio::time::timeout(
        Duration::from_secs(2),
        checkout.capture_with(&id, json!({"amount": 100}), &key, "slow-key"),
    )
    .await??;
    assert_eq!(replay.status, StatusCode::ACCEPTED);
    assert_eq!(captures(&checkout, &id).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn the_connector_confirms_its_captures_through_the_actions_list() -> TestResult {
    let checkout = Checkout::start().await?;
    let connector = checkout.connector()?;
    for (scenario, status) in [
        (Scenario::Approve, CaptureStatus::Completed),
        (Scenario::Declined, CaptureStatus::Declined),
        (Scenario::Pending, CaptureStatus::Pending),
    ] {
        let id = checkout.authorize("JPY", "5000", scenario).await?;
        let cmd = command(&id, Money::parse_positive("JPY", "1200").ok())?;
        let key = format!("cap_{}", suffix());
        let accepted = connector
            .capture(CaptureCall {
                command: &cmd,
                idempotency_key: &key,
                capture_sequence: 1,
            })
            .await?;
        assert_eq!(accepted.status, CaptureStatus::Pending);
        let confirmed = connector
            .fetch_outcome(&record(&key, cmd.clone(), accepted.provider_capture_id))
            .await?;
        assert_eq!(confirmed.status, status, "{scenario:?}");
        match status {
            CaptureStatus::Completed => assert_eq!(
                confirmed.captured_amount,
                Money::parse_positive("JPY", "1200").ok()
            ),
            CaptureStatus::Declined => {
                assert_eq!(confirmed.provider_reason.as_deref(), Some("20051"))
            }
            _ => assert_eq!(
                confirmed.reason,
                Some(StatusReason::AwaitingProviderConfirmation)
            ),
        }
        // Without the action id, the capture is found by the reference it was sent with.
        let by_reference = connector.fetch_outcome(&record(&key, cmd, None)).await?;
        assert_eq!(by_reference.status, status, "{scenario:?} by reference");
    }
    Ok(())
}

#[tokio::test]
async fn a_payment_takes_at_most_150_capture_actions() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout.authorize("JPY", "1000", Scenario::Approve).await?;
    for _ in 0..150 {
        let answer = checkout
            .capture(&id, json!({"amount": 1, "capture_type": "NonFinal"}))
            .await?;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
    }
    let refused = checkout
        .capture(&id, json!({"amount": 1, "capture_type": "NonFinal"}))
        .await?;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(captures(&checkout, &id).await?.len(), 150);
    Ok(())
}

#[tokio::test]
async fn the_payment_details_give_its_authorized_amount_currency_and_status() -> TestResult {
    let checkout = Checkout::start().await?;
    let key = checkout.key.clone();
    let id = checkout
        .authorize("USD", "100.00", Scenario::Approve)
        .await?;
    let details = checkout.payment(&id, &key).await?;
    assert_eq!(details.status, StatusCode::OK);
    assert!(details.request_id.is_some());
    let json = &details.json;
    assert_eq!(json["id"], id);
    assert_eq!(json["amount"], 10000);
    assert_eq!(json["currency"], "USD");
    assert_eq!(json["status"], "Authorized");
    assert_eq!(json["approved"], true);
    assert!(json["reference"].is_string());
    let href = format!("{}/payments/{id}", checkout.base);
    assert_eq!(json["_links"]["self"]["href"], href);
    assert_eq!(json["_links"]["actions"]["href"], format!("{href}/actions"));

    let partial = json!({"amount": 4000, "capture_type": "NonFinal"});
    assert_eq!(
        checkout.capture(&id, partial).await?.status,
        StatusCode::ACCEPTED
    );
    let after = checkout.payment(&id, &key).await?.json;
    assert_eq!(after["status"], "Partially Captured");
    assert_eq!(
        after["amount"], 10000,
        "the authorized amount, not what is left"
    );
    assert_eq!(
        checkout.capture(&id, json!({})).await?.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        checkout.payment(&id, &key).await?.json["status"],
        "Captured"
    );

    // Amounts in Checkout.com's unit for the currency; the scenario's state shows.
    let tnd = checkout
        .authorize("TND", "1.230", Scenario::Expired)
        .await?;
    let tnd = checkout.payment(&tnd, &key).await?.json;
    assert_eq!(
        (&tnd["amount"], &tnd["currency"]),
        (&json!(1230), &json!("TND"))
    );
    assert_eq!(tnd["status"], "Expired");
    let voided = checkout.authorize("JPY", "500", Scenario::Voided).await?;
    assert_eq!(
        checkout.payment(&voided, &key).await?.json["status"],
        "Voided"
    );
    Ok(())
}

#[tokio::test]
async fn payment_details_check_the_key_and_refuse_unknown_payments_without_a_body() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::Approve)
        .await?;
    let refused = checkout.payment(&id, "sk_sbox_wrong").await?;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.text.is_empty());
    assert!(refused.request_id.is_some());
    let bare = checkout
        .http
        .get(format!("{}/payments/{id}", checkout.base))
        .send()
        .await?;
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let unknown = checkout
        .payment("pay_aaaaaaaaaaaaaaaaaaaaaaaaaa", &checkout.key)
        .await?;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.text.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_connector_sends_no_capture_in_another_currency_than_the_payment() -> TestResult {
    let checkout = Checkout::start().await?;
    let connector = checkout.connector()?;
    let id = checkout
        .authorize("USD", "100.00", Scenario::Approve)
        .await?;
    let capture = |cmd: CaptureCommand| {
        let connector = &connector;
        async move {
            let key = format!("cap_{}", suffix());
            connector
                .capture(CaptureCall {
                    command: &cmd,
                    idempotency_key: &key,
                    capture_sequence: 1,
                })
                .await
        }
    };
    let refused = capture(command(&id, Money::parse_positive("EUR", "30.00").ok())?).await;
    match refused {
        Err(ProviderError::Rejected {
            rejection, failure, ..
        }) => {
            assert_eq!(rejection, Rejection::FailedPrecondition);
            assert_eq!(failure.code, CURRENCY_MISMATCH);
        }
        other => panic!("expected a currency mismatch, got {other:?}"),
    }
    assert!(captures(&checkout, &id).await?.is_empty());
    let accepted = capture(command(&id, Money::parse_positive("USD", "100.00").ok())?).await?;
    assert_eq!(accepted.status, CaptureStatus::Pending);
    assert_eq!(captures(&checkout, &id).await?[0]["amount"], 10000);
    Ok(())
}
