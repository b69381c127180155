//! The sandbox's Checkout.com webhooks: the outcome of each accepted capture, signed with
//! `Cko-Signature`, delivered to the receiver set by `send_webhooks_to` and retried.

use std::time::Duration;

use capture_service::domain::Provider;
use capture_service::sandbox::Scenario;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{captures, Checkout};
use crate::common::TestResult;
use crate::receiver::{env_var, Received, Receiver};

/// A sandbox whose webhooks go to a receiver answering `status`.
async fn with_receiver(
    status: StatusCode,
) -> Result<(Checkout, Receiver), Box<dyn std::error::Error>> {
    let checkout = Checkout::start().await?;
    let receiver = Receiver::start(status).await?;
    checkout.sandbox.send_webhooks_to(&receiver.origin);
    Ok((checkout, receiver))
}

/// The `Cko-Signature` a service computes: hex HMAC-SHA256 of the raw body with the secret.
fn expected_signature(secret: &str, body: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(body);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

fn signature_checks(checkout: &Checkout, delivery: &Received) -> TestResult {
    let secret = env_var(&checkout.sandbox, "CAPTURE_CHECKOUT_WEBHOOK_SECRET")?;
    assert_eq!(
        delivery.header("cko-signature"),
        Some(expected_signature(&secret, &delivery.body)?.as_str())
    );
    Ok(())
}

#[tokio::test]
async fn an_approved_capture_is_followed_by_one_signed_payment_captured_webhook() -> TestResult {
    let (checkout, receiver) = with_receiver(StatusCode::OK).await?;
    let id = checkout
        .authorize("USD", "100.00", Scenario::Approve)
        .await?;
    let metadata = json!({"coupon_code": "NY2018"});
    let answer = checkout
        .capture(
            &id,
            json!({"amount": 3500, "capture_type": "NonFinal", "reference": "ORD-7",
                   "metadata": metadata}),
        )
        .await?;
    assert_eq!(answer.status, StatusCode::ACCEPTED);

    let delivered = receiver.wait_for(1).await?;
    assert_eq!(delivered.len(), 1, "one event, one attempt");
    let delivery = &delivered[0];
    assert_eq!(delivery.provider, "checkout");
    assert_eq!(delivery.header("content-type"), Some("application/json"));
    signature_checks(&checkout, delivery)?;

    let event = delivery.json()?;
    assert_eq!(event["type"], "payment_captured");
    let event_id = event["id"].as_str().ok_or("no event id")?;
    let tail = event_id.strip_prefix("evt_").ok_or("no evt_ prefix")?;
    assert_eq!(tail.len(), 26);
    assert!(tail
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    assert!(event["created_on"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let data = &event["data"];
    assert_eq!(data["id"], id.as_str());
    assert_eq!(data["action_id"], answer.json["action_id"]);
    assert_eq!(data["reference"], "ORD-7");
    assert_eq!(data["amount"], 3500);
    assert_eq!(data["currency"], "USD");
    assert_eq!(data["response_code"], "10000");
    assert_eq!(data["response_summary"], "Approved");
    assert_eq!(data["metadata"], metadata);
    assert_eq!(data["balances"]["total_authorized"], 10000);
    assert_eq!(data["balances"]["total_captured"], 3500);
    assert_eq!(data["balances"]["available_to_capture"], 6500);

    // The webhook tells what the actions list shows.
    let listed = captures(&checkout, &id).await?;
    let action = listed.first().ok_or("no capture action")?;
    for key in [
        "id",
        "amount",
        "response_code",
        "processed_on",
        "processing",
    ] {
        let in_event = if key == "id" {
            &data["action_id"]
        } else {
            &data[key]
        };
        assert_eq!(in_event, &action[key], "{key}");
    }
    assert!(data["processing"]["acquirer_transaction_id"].is_string());

    let attempts = checkout.sandbox.webhook_deliveries();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].provider, Provider::Checkout);
    assert_eq!(attempts[0].event_type, "payment_captured");
    assert_eq!(attempts[0].status, Some(200));
    assert_eq!(
        attempts[0].url,
        format!("{}/webhooks/checkout", receiver.origin)
    );
    Ok(())
}

#[tokio::test]
async fn a_signature_over_other_bytes_or_with_another_secret_does_not_match() -> TestResult {
    let (checkout, receiver) = with_receiver(StatusCode::OK).await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::Approve)
        .await?;
    checkout.capture(&id, json!({})).await?;
    let delivered = receiver.wait_for(1).await?;
    let delivery = &delivered[0];
    let sent = delivery.header("cko-signature").ok_or("no signature")?;
    let secret = env_var(&checkout.sandbox, "CAPTURE_CHECKOUT_WEBHOOK_SECRET")?;
    let mut altered = delivery.body.to_vec();
    altered[0] ^= 1;
    assert_ne!(sent, expected_signature(&secret, &altered)?);
    assert_ne!(sent, expected_signature("another secret", &delivery.body)?);
    let key = env_var(&checkout.sandbox, "CAPTURE_CHECKOUT_SECRET_KEY")?;
    assert_ne!(secret, key, "the webhook secret is not the API key");
    Ok(())
}

#[tokio::test]
async fn a_declined_capture_sends_payment_capture_declined_with_the_decline_code() -> TestResult {
    let (checkout, receiver) = with_receiver(StatusCode::OK).await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::Declined)
        .await?;
    let answer = checkout.capture(&id, json!({"amount": 400})).await?;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let delivered = receiver.wait_for(1).await?;
    assert_eq!(delivered.len(), 1);
    signature_checks(&checkout, &delivered[0])?;
    let event = delivered[0].json()?;
    assert_eq!(event["type"], "payment_capture_declined");
    assert_eq!(event["data"]["action_id"], answer.json["action_id"]);
    assert_eq!(event["data"]["response_code"], "20051");
    assert_eq!(event["data"]["amount"], 400);
    assert_eq!(event["data"]["balances"]["total_captured"], 0);
    assert_eq!(event["data"]["balances"]["available_to_capture"], 1000);
    assert!(event["data"].get("reference").is_none(), "none was sent");
    Ok(())
}

#[tokio::test]
async fn a_pending_capture_sends_payment_capture_pending_and_nothing_else() -> TestResult {
    let (checkout, receiver) = with_receiver(StatusCode::OK).await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::Pending)
        .await?;
    let answer = checkout.capture(&id, json!({"reference": "ORD-P"})).await?;
    let delivered = receiver.wait_for(1).await?;
    assert_eq!(delivered.len(), 1);
    let event = delivered[0].json()?;
    assert_eq!(event["type"], "payment_capture_pending");
    assert_eq!(event["data"]["action_id"], answer.json["action_id"]);
    assert_eq!(event["data"]["reference"], "ORD-P");
    assert!(
        event["data"].get("response_code").is_none(),
        "not processed yet"
    );
    Ok(())
}

#[tokio::test]
async fn a_timed_out_capture_sends_its_webhook_before_its_answer() -> TestResult {
    let (checkout, receiver) = with_receiver(StatusCode::OK).await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::Timeout)
        .await?;
    let held = tokio::time::timeout(
        Duration::from_millis(1500),
        checkout.capture(&id, json!({"amount": 100})),
    )
    .await;
    assert!(held.is_err(), "the answer is held back");
    let delivered = receiver.received();
    assert_eq!(delivered.len(), 1, "yet the webhook came");
    let event = delivered[0].json()?;
    assert_eq!(event["type"], "payment_captured");
    let listed = captures(&checkout, &id).await?;
    assert_eq!(event["data"]["action_id"], listed[0]["id"]);
    Ok(())
}

#[tokio::test]
async fn refusals_server_errors_and_replays_send_no_webhook() -> TestResult {
    let (checkout, receiver) = with_receiver(StatusCode::OK).await?;
    let failing = checkout
        .authorize("USD", "10.00", Scenario::ServerError)
        .await?;
    let expired = checkout
        .authorize("USD", "10.00", Scenario::Expired)
        .await?;
    let fine = checkout
        .authorize("USD", "10.00", Scenario::Approve)
        .await?;
    let refused = [
        (checkout.capture(&failing, json!({})).await?.status, 500),
        (checkout.capture(&expired, json!({})).await?.status, 403),
        (
            checkout.capture("pay_unknown", json!({})).await?.status,
            404,
        ),
        (
            checkout
                .capture(&fine, json!({"amount": "ten"}))
                .await?
                .status,
            422,
        ),
        (
            checkout
                .capture_with(&fine, json!({}), "sk_sbox_wrong", "k-401")
                .await?
                .status,
            401,
        ),
    ];
    for (status, expected) in refused {
        assert_eq!(status.as_u16(), expected);
    }
    let key = checkout.key.clone();
    let first = checkout
        .capture_with(
            &fine,
            json!({"amount": 100, "capture_type": "NonFinal"}),
            &key,
            "k-once",
        )
        .await?;
    let replay = checkout
        .capture_with(
            &fine,
            json!({"amount": 100, "capture_type": "NonFinal"}),
            &key,
            "k-once",
        )
        .await?;
    assert_eq!((first.status, &first.text), (replay.status, &replay.text));
    let delivered = receiver.wait_for(1).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "only the first accepted capture"
    );
    assert_eq!(
        delivered[0].json()?["data"]["action_id"],
        first.json["action_id"]
    );
    Ok(())
}

#[tokio::test]
async fn a_receiver_answering_500_gets_three_attempts_of_the_same_delivery() -> TestResult {
    let (checkout, receiver) = with_receiver(StatusCode::INTERNAL_SERVER_ERROR).await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::Approve)
        .await?;
    checkout.capture(&id, json!({})).await?;
    let delivered = receiver.wait_for(3).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let delivered_later = receiver.received();
    assert_eq!(delivered_later.len(), 3, "then it gives up");
    for again in &delivered[1..] {
        assert_eq!(again.body, delivered[0].body);
        assert_eq!(
            again.header("cko-signature"),
            delivered[0].header("cko-signature")
        );
    }
    let attempts = checkout.sandbox.webhook_deliveries();
    let seen: Vec<_> = attempts.iter().map(|a| (a.attempt, a.status)).collect();
    assert_eq!(seen, [(1, Some(500)), (2, Some(500)), (3, Some(500))]);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_receiver_is_tried_three_times_and_the_capture_answers_at_once() -> TestResult
{
    let checkout = Checkout::start().await?;
    // A port nobody listens on any more.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let origin = format!("http://{}", closed.local_addr()?);
    drop(closed);
    checkout.sandbox.send_webhooks_to(&origin);
    let id = checkout
        .authorize("USD", "10.00", Scenario::Approve)
        .await?;
    let answer = tokio::time::timeout(Duration::from_millis(500), checkout.capture(&id, json!({})))
        .await??;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let attempts = checkout.sandbox.webhook_deliveries();
    assert_eq!(attempts.len(), 3);
    assert!(attempts
        .iter()
        .all(|a| a.status.is_none() && a.error.is_some()));
    Ok(())
}

#[tokio::test]
async fn no_webhook_is_sent_until_a_receiver_is_set_and_the_last_one_set_wins() -> TestResult {
    let checkout = Checkout::start().await?;
    let id = checkout
        .authorize("USD", "10.00", Scenario::Approve)
        .await?;
    let nonfinal = json!({"amount": 100, "capture_type": "NonFinal"});
    checkout.capture(&id, nonfinal.clone()).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(checkout.sandbox.webhook_deliveries().is_empty());

    let first = Receiver::start(StatusCode::OK).await?;
    let second = Receiver::start(StatusCode::OK).await?;
    checkout.sandbox.send_webhooks_to(&first.origin);
    checkout
        .sandbox
        .send_webhooks_to(&format!("{}/", second.origin));
    checkout.capture(&id, nonfinal).await?;
    let delivered = second.wait_for(1).await?;
    assert_eq!(delivered.len(), 1);
    assert!(first.received().is_empty());
    let event: Value = delivered[0].json()?;
    assert_eq!(event["data"]["balances"]["total_captured"], 200);
    Ok(())
}
