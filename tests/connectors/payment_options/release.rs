//! The PaymentOptions connector's release: `POST {prefix}/server-to-server-interface/void` on the
//! wire, the documented answer (with the card number it carries), and refusals read as a
//! capture's, since PaymentOptions documents none of the void's own.

use axum::http::Method;
use serde_json::json;

use super::{
    connector, error_body, mock_payment_options, TestResult, API_KEY, BASIC_KEY, MASKED_PAN,
    MERCHANT_ID, PAN, TRANSACTION_ID,
};
use crate::common::connector_fixtures::{is_unknown, refusal, release, release_record};
use crate::common::mock_provider::Reply;
use capture_service::domain::{CaptureStatus, Provider, ReleaseMechanism};
use capture_service::providers::{Connector, Rejection};

const VOID_PATH: &str = "/api/v1/server-to-server-interface/void";
const RELEASE_ID: &str = "rel_01test";

/// The documented answer to a void (PaymentOptions' API reference, "Void authorization"),
/// with the full card number in it as PaymentOptions sends it.
fn voided() -> String {
    json!({
        "success": true, "status_code": 201, "is_live": false, "transaction_type": "VOID",
        "gateway_response": {"version": "1", "type": "INFO",
            "message": "Authorization Successfully Cancelled.", "code": "INFO0003"},
        "merchant_details": {"legal_name": "Tink15 Factory", "mid": MERCHANT_ID,
            "merchant_txn_ref": "qwe"},
        "payment_details": {"amount": 1000, "response_code": 0, "auth_code": "917290",
            "currency": "JPY", "payment_method": "ECMC-SSL", "scheme": "MASTERCARD",
            "card": {"name": "John Doe", "number": PAN, "exp_month": "12", "exp_year": "24"},
            "additional_data": {"payment_data_source": {"type": "card"}}},
        "transaction_details": {"id": "9e9255f5-d3dc-423e-9026-6e4da194bab5", "ref": 74813,
            "timestamp": "2024-11-25T08:33:48.000Z", "merchant_txn_ref": "qwe"}
    })
    .to_string()
}

#[tokio::test]
async fn a_void_sends_exactly_the_documented_request_and_its_201_is_the_release_done() -> TestResult
{
    let mock = mock_payment_options().await?;
    mock.reply(Method::POST, VOID_PATH, Reply::json(201, voided()));

    let outcome = release(&connector(&mock.url()), TRANSACTION_ID, RELEASE_ID, None).await?;

    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    let sent = &seen[0];
    assert_eq!(
        (&sent.method, sent.path.as_str()),
        (&Method::POST, VOID_PATH)
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Basic {BASIC_KEY}").as_str())
    );
    assert_eq!(sent.header("x-api-key"), Some(API_KEY));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.header_names(),
        [
            "accept",
            "authorization",
            "content-length",
            "content-type",
            "host",
            "x-api-key"
        ]
    );
    assert_eq!(
        sent.text(),
        format!(r#"{{"transactionId":"{TRANSACTION_ID}","merchant_id":"{MERCHANT_ID}"}}"#)
    );

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "INFO0003");
    assert_eq!(
        outcome.provider_capture_id.as_deref(),
        Some("9e9255f5-d3dc-423e-9026-6e4da194bab5")
    );
    assert_eq!(outcome.captured_amount, None, "a void captures nothing");
    let body = outcome.redacted_body.clone().ok_or("redacted body")?;
    assert_eq!(body["payment_details"]["card"]["number"], MASKED_PAN);
    assert!(!format!("{outcome:?}").contains(PAN));
    Ok(())
}

#[tokio::test]
async fn refusals_read_as_a_captures_keeping_the_gateway_code() -> TestResult {
    let mock = mock_payment_options().await?;
    let connector = connector(&mock.url());
    let cases = [
        (412, Rejection::FailedPrecondition),
        (400, Rejection::InvalidArgument),
        (404, Rejection::NotFound),
    ];
    for (status, expected) in cases {
        let body = error_body(status, "ERR1009", &format!("Refused for card {PAN}"));
        mock.reply(Method::POST, VOID_PATH, Reply::json(status, body));
        let (rejection, failure, _) =
            refusal(release(&connector, TRANSACTION_ID, RELEASE_ID, None).await)
                .ok_or("expected a refusal")?;
        assert_eq!(rejection, expected, "{status}");
        assert_eq!(failure.code, "ERR1009");
        assert_eq!(failure.http_status, status);
        assert!(!failure.message.contains(PAN), "{}", failure.message);
    }
    Ok(())
}

#[tokio::test]
async fn a_5xx_is_unknown_and_the_void_is_not_sent_twice_in_one_call() -> TestResult {
    let mock = mock_payment_options().await?;
    mock.reply(Method::POST, VOID_PATH, Reply::json(502, ""));
    let result = release(&connector(&mock.url()), TRANSACTION_ID, RELEASE_ID, None).await;
    assert!(is_unknown(&result), "{result:?}");
    assert_eq!(mock.seen(VOID_PATH).len(), 1);
    Ok(())
}

/// How PaymentOptions answers a second void is not documented: a refusal of the void sent again
/// after a lost answer may only mean the first went through, so it never fails the release.
#[tokio::test]
async fn a_lost_void_is_sent_again_and_a_refusal_of_the_repeat_stays_unknown() -> TestResult {
    let mock = mock_payment_options().await?;
    let connector = connector(&mock.url());
    let record = release_record(
        Provider::PaymentOptions,
        TRANSACTION_ID,
        RELEASE_ID,
        None,
        None,
    )?;

    let refused = error_body(412, "ERR1012", "Transaction cannot be cancelled");
    mock.reply(Method::POST, VOID_PATH, Reply::json(412, refused));
    let result = connector.fetch_release_outcome(&record).await;
    assert!(is_unknown(&result), "{result:?}");

    mock.reply(Method::POST, VOID_PATH, Reply::json(201, voided()));
    let done = connector.fetch_release_outcome(&record).await?;
    assert_eq!(done.status, CaptureStatus::Completed);

    // A refusal the first void cannot have caused stands.
    let unknown_transaction = error_body(404, "ERR1004", "Transaction not found");
    mock.reply(
        Method::POST,
        VOID_PATH,
        Reply::json(404, unknown_transaction),
    );
    let (rejection, _, _) =
        refusal(connector.fetch_release_outcome(&record).await).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::NotFound);

    let voids = mock.seen(VOID_PATH);
    assert_eq!(voids.len(), 3);
    assert!(voids.iter().all(|v| v.body == voids[0].body));
    Ok(())
}

#[test]
fn a_void_releases_before_any_capture_and_a_lesser_capture_releases_the_rest_by_itself() {
    let rules = connector("http://127.0.0.1:9").release_rules();
    assert_eq!(rules.before_capture, ReleaseMechanism::Call);
    assert_eq!(rules.after_partial_capture, ReleaseMechanism::Automatic);
    assert!(rules.final_capture_releases);
}
