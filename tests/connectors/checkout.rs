//! The Checkout.com connector against a local mock of Checkout.com's HTTP API: the exact request
//! on the wire, the payment lookup that guards a capture's currency, the documented 202 answer,
//! the actions lookup behind `fetch_outcome`, and every documented error.

use std::error::Error;
use std::time::Duration;

use axum::http::Method;
use serde_json::{json, Value};

use crate::common::connector_fixtures::{
    capture, capture_at_unreachable, command, domain_money, fast_http, is_unknown,
    processing_record, refusal, start_mock,
};
use crate::common::mock_provider::{MockProvider, Reply, SeenRequest};
use capture_service::config::Secret;
use capture_service::domain::capture::{AuthorizationId, CaptureParts, Metadata, Reference};
use capture_service::domain::{
    CaptureCommand, CaptureRecord, CaptureStatus, Money, Provider, StatusReason,
};
use capture_service::providers::checkout::CheckoutAccount;
use capture_service::providers::checkout::{CheckoutConnector, CURRENCY_MISMATCH};
use capture_service::providers::{Connector, Rejection};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

const PAYMENT: &str = "pay_kladqdb6hm5ebggtq45rtzjati";
const PAYMENT_PATH: &str = "/payments/pay_kladqdb6hm5ebggtq45rtzjati";
const CAPTURE_PATH: &str = "/payments/pay_kladqdb6hm5ebggtq45rtzjati/captures";
const ACTIONS_PATH: &str = "/payments/pay_kladqdb6hm5ebggtq45rtzjati/actions";
const SECRET: &str = "sk_sbox_m73dzbpy7cf3gfd46xr4yj5xo4e";
const KEY: &str = "cap_01J0000000000000000000000";

/// Header names, except those the HTTP client adds on its own.
fn header_names(sent: &SeenRequest) -> Vec<String> {
    sent.header_names()
        .into_iter()
        .filter(|k| !matches!(k.as_str(), "host" | "content-length" | "accept"))
        .collect()
}

/// A scripted answer as Checkout.com sends it: with its request id, JSON when there is a body.
fn reply(status: u16, body: impl Into<String>) -> Reply {
    let body = body.into();
    let reply = if body.is_empty() {
        Reply::empty(status)
    } else {
        Reply::json(status, body)
    };
    reply.header("cko-request-id", "0HL80RJLS76I7-hdr")
}

/// A local Checkout.com: records every request and answers from its script (then 500).
async fn mock_checkout() -> Result<MockProvider, std::io::Error> {
    start_mock(reply(500, "")).await
}

fn connector_with(base_url: &str, timeout: Duration) -> CheckoutConnector {
    let account = CheckoutAccount {
        name: "default".to_owned(),
        base_url: format!("{base_url}/"),
        secret_key: Secret::new(SECRET),
        webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
    };
    CheckoutConnector::new(&account, fast_http(timeout))
}

fn connector(base_url: &str) -> CheckoutConnector {
    connector_with(base_url, Duration::from_secs(5))
}

/// A capture of the Checkout.com payment with only the amount set (`None`: the full authorized
/// amount).
fn parts(amount: Option<Money>) -> Result<CaptureParts, String> {
    crate::common::connector_fixtures::parts(Provider::Checkout, PAYMENT, amount)
}

/// A stored capture as the service would hand it to `fetch_outcome`: accepted by Checkout.com,
/// awaiting its confirmation.
fn record(command: CaptureCommand, action_id: Option<&str>) -> CaptureRecord {
    CaptureRecord {
        status: CaptureStatus::Pending,
        reason: Some(StatusReason::AwaitingProviderConfirmation),
        provider_status: Some("Accepted".to_owned()),
        ..processing_record(command, KEY, action_id)
    }
}

const ACCEPTED: &str = r#"{"action_id":"act_3kfr4betasbelhjdk346yutxvu","reference":"ORD-5023-4E89",
  "_links":{"payment":{"href":"https://api.sandbox.checkout.com/payments/pay_kladqdb6hm5ebggtq45rtzjati"}}}"#;

/// Checkout.com's "Get payment details" answer: the payment, authorized in `currency`.
fn payment_details(currency: &str) -> Reply {
    let href = format!("https://api.sandbox.checkout.com{PAYMENT_PATH}");
    let body = json!({"id": PAYMENT, "amount": 10000, "currency": currency,
        "status": "Authorized", "approved": true, "reference": "ORD-5023-4E89",
        "_links": {"self": {"href": href}, "actions": {"href": format!("{href}/actions")}}});
    reply(200, body.to_string())
}

/// Queues the payment lookup's answer: the payment is in `currency`.
fn payment_in(mock: &MockProvider, currency: &str) {
    mock.reply(Method::GET, PAYMENT_PATH, payment_details(currency));
}

/// `(method, path)` of every request the mock received, in order.
fn routes(mock: &MockProvider) -> Vec<(Method, String)> {
    mock.requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

fn error_422(error_type: &str, codes: &[&str]) -> String {
    json!({"request_id": "0HL80RJLS76I7", "error_type": error_type, "error_codes": codes})
        .to_string()
}

/// The actions list with the authorization and two captures: one approved, one declined.
fn actions_list() -> String {
    json!([
        {"id": "act_declined0000000000000000", "type": "Capture", "processed_on": "2024-05-21T10:02:00Z",
         "amount": 1500, "approved": false, "response_code": "20051",
         "response_summary": "Insufficient Funds", "reference": "ORD-2"},
        {"id": "act_3kfr4betasbelhjdk346yutxvu", "type": "Capture", "processed_on": "2024-05-21T10:01:00Z",
         "amount": 3500, "approved": true, "response_code": "10000",
         "response_summary": "Approved", "reference": "ORD-5023-4E89",
         "processing": {"acquirer_transaction_id": "440337581757"}},
        {"id": "act_authorization00000000000", "type": "Authorization",
         "processed_on": "2024-05-21T10:00:00Z", "amount": 10000, "approved": true,
         "response_code": "10000", "response_summary": "Approved", "reference": "ORD-5023-4E89"}
    ])
    .to_string()
}

#[tokio::test]
async fn a_partial_capture_sends_the_documented_request_and_is_pending_until_confirmed(
) -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    payment_in(&mock, "USD");
    mock.reply_any(reply(202, ACCEPTED));
    let mut p = parts(Some(domain_money("USD", "35.00")?))?;
    p.reference = Some(Reference::parse("ORD-5023-4E89")?);
    p.metadata = Metadata::parse([
        ("coupon_code".to_owned(), "NY2018".to_owned()),
        ("partner_id".to_owned(), "123989".to_owned()),
    ])
    .map_err(|e| e[0].1.clone())?;

    let outcome = capture(&connector(&base), &command(p)?, KEY).await?;

    assert_eq!(mock.seen(PAYMENT_PATH).len(), 1, "one payment lookup");
    let sent = mock.seen(CAPTURE_PATH);
    assert_eq!(sent.len(), 1, "one capture request");
    let sent = &sent[0];
    assert_eq!(sent.method, Method::POST);
    assert_eq!(
        header_names(sent),
        ["authorization", "cko-idempotency-key", "content-type"]
    );
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert_eq!(sent.header("cko-idempotency-key"), Some(KEY));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.json()?,
        json!({
            "amount": 3500,
            "capture_type": "NonFinal",
            "reference": "ORD-5023-4E89",
            "metadata": {"coupon_code": "NY2018", "partner_id": "123989"}
        })
    );

    assert_eq!(outcome.status, CaptureStatus::Pending);
    assert_eq!(
        outcome.reason,
        Some(StatusReason::AwaitingProviderConfirmation)
    );
    assert_eq!(outcome.provider_status, "Accepted");
    assert_eq!(
        outcome.provider_capture_id.as_deref(),
        Some("act_3kfr4betasbelhjdk346yutxvu")
    );
    assert_eq!(outcome.captured_amount, None);
    assert_eq!(outcome.breakdown, None);
    assert_eq!(
        outcome.redacted_body.as_deref(),
        Some(&serde_json::from_str::<Value>(ACCEPTED)?)
    );
    Ok(())
}

#[tokio::test]
async fn a_full_capture_is_final_without_amount_and_references_the_capture_id() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply_any(reply(202, ACCEPTED));
    capture(&connector(&base), &command(parts(None)?)?, KEY).await?;
    let sent = mock.seen(CAPTURE_PATH);
    assert_eq!(
        sent[0].json()?,
        json!({"capture_type": "Final", "reference": KEY})
    );
    // No amount, so nothing to take in a wrong currency: no payment lookup.
    assert_eq!(routes(&mock), [(Method::POST, CAPTURE_PATH.to_owned())]);
    Ok(())
}

#[tokio::test]
async fn amounts_are_sent_in_checkouts_unit_for_each_currency() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    let connector = connector(&base);
    for (currency, value, units, final_capture) in [
        ("USD", "10.99", 1099, false),
        ("JPY", "1000", 1000, true),
        ("TND", "1.23", 1230, false),
        ("BHD", "100", 100_000, true),
        ("CLP", "1000", 100_000, false),
    ] {
        payment_in(&mock, currency);
        mock.reply_any(reply(202, ACCEPTED));
        let mut p = parts(Some(domain_money(currency, value)?))?;
        p.final_capture = final_capture;
        capture(&connector, &command(p)?, KEY).await?;
        let sent = mock.seen(CAPTURE_PATH);
        let body = sent.last().ok_or("no request")?.json()?;
        assert_eq!(body["amount"], json!(units), "{currency} {value}");
        let capture_type = if final_capture { "Final" } else { "NonFinal" };
        assert_eq!(body["capture_type"], json!(capture_type));
        assert_eq!(
            mock.seen(PAYMENT_PATH).len(),
            sent.len(),
            "one lookup per capture"
        );
    }
    Ok(())
}

#[test]
fn check_refuses_what_checkout_cannot_express_naming_the_field() -> Result<(), String> {
    let connector = connector("http://127.0.0.1:9");
    for (currency, value) in [
        ("USD", "0.01"),
        ("JPY", "1"),
        ("TND", "0.01"),
        ("BHD", "9.99"),
    ] {
        let cmd = command(parts(Some(domain_money(currency, value)?))?)?;
        assert!(connector.check(&cmd).is_empty(), "{currency} {value}");
    }
    for (currency, value) in [
        ("TND", "1.235"),
        ("BHD", "0.001"),
        ("USD", "10000000.00"),
        ("JPY", "1000000000"),
    ] {
        let violations = connector.check(&command(parts(Some(domain_money(currency, value)?))?)?);
        assert_eq!(violations.len(), 1, "{currency} {value}");
        assert_eq!(violations[0].field, "amount.value");
    }
    let mut p = parts(None)?;
    p.reference = Some(Reference::parse(&"r".repeat(81))?);
    let fields: Vec<String> = connector
        .check(&command(p)?)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(fields, ["reference"]);
    // A payment id of dots alone never reaches a connector: the edge refuses it.
    assert!(AuthorizationId::parse("..").is_err());
    assert_eq!(connector.provider(), Provider::Checkout);
    Ok(())
}

#[tokio::test]
async fn fetch_outcome_reads_the_action_by_its_id() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "35.00")?))?)?;

    mock.reply_any(reply(200, actions_list()));
    let approved = connector
        .fetch_outcome(&record(cmd.clone(), Some("act_3kfr4betasbelhjdk346yutxvu")))
        .await?;
    let sent = mock.seen(ACTIONS_PATH);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, Method::GET);
    assert_eq!(header_names(&sent[0]), ["authorization"]);
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert!(sent[0].body.is_empty());
    assert_eq!(approved.status, CaptureStatus::Completed);
    assert_eq!(approved.provider_status, "Approved");
    assert_eq!(
        approved.captured_amount,
        Some(domain_money("USD", "35.00")?)
    );
    assert_eq!(
        approved.processor_response.and_then(|p| p.response_code),
        Some("10000".to_owned())
    );
    assert!(approved
        .redacted_body
        .is_some_and(|b| b["processing"]["acquirer_transaction_id"] == "440337581757"));

    mock.reply_any(reply(200, actions_list()));
    let declined = connector
        .fetch_outcome(&record(cmd.clone(), Some("act_declined0000000000000000")))
        .await?;
    assert_eq!(declined.status, CaptureStatus::Declined);
    assert_eq!(declined.provider_reason.as_deref(), Some("20051"));
    assert_eq!(declined.captured_amount, None);

    mock.reply_any(reply(200, actions_list()));
    let waiting = connector
        .fetch_outcome(&record(cmd, Some("act_notlistedyet000000000000")))
        .await?;
    assert_eq!(waiting.status, CaptureStatus::Pending);
    assert_eq!(
        waiting.reason,
        Some(StatusReason::AwaitingProviderConfirmation)
    );
    assert_eq!(
        waiting.provider_capture_id.as_deref(),
        Some("act_notlistedyet000000000000")
    );
    Ok(())
}

#[tokio::test]
async fn fetch_outcome_without_an_action_id_finds_the_capture_by_its_reference() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    let mut p = parts(None)?;
    p.reference = Some(Reference::parse("ORD-5023-4E89")?);
    mock.reply_any(reply(200, actions_list()));
    let outcome = connector(&base)
        .fetch_outcome(&record(command(p)?, None))
        .await?;
    // The authorization carries the same reference but is not a capture.
    assert_eq!(
        outcome.provider_capture_id.as_deref(),
        Some("act_3kfr4betasbelhjdk346yutxvu")
    );
    assert_eq!(outcome.status, CaptureStatus::Completed);
    // No amount and no authorized amount: the currency, hence the amount, is unknown.
    assert_eq!(outcome.captured_amount, None);
    assert!(mock.seen(CAPTURE_PATH).is_empty());
    Ok(())
}

#[tokio::test]
async fn fetch_outcome_resends_the_capture_with_its_key_when_no_action_matches() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply_any(reply(200, actions_list()));
    payment_in(&mock, "USD");
    mock.reply_any(reply(202, ACCEPTED));
    let outcome = connector(&base)
        .fetch_outcome(&record(
            command(parts(Some(domain_money("USD", "1")?))?)?,
            None,
        ))
        .await?;
    assert_eq!(outcome.status, CaptureStatus::Pending);
    // The re-send checks the payment's currency first, as the first attempt does.
    assert_eq!(
        routes(&mock),
        [
            (Method::GET, ACTIONS_PATH.to_owned()),
            (Method::GET, PAYMENT_PATH.to_owned()),
            (Method::POST, CAPTURE_PATH.to_owned()),
        ]
    );
    let resent = mock.seen(CAPTURE_PATH);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].header("cko-idempotency-key"), Some(KEY));
    assert_eq!(resent[0].json()?["reference"], json!(KEY));
    Ok(())
}

#[tokio::test]
async fn an_unknown_payment_is_not_found_with_checkouts_request_id() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply_any(reply(404, ""));
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::NotFound);
    assert_eq!(failure.code, "HTTP_404");
    assert_eq!(failure.message, "Payment not found");
    assert_eq!(failure.debug_id.as_deref(), Some("0HL80RJLS76I7-hdr"));
    assert_eq!(failure.http_status, 404);
    Ok(())
}

#[tokio::test]
async fn a_capture_that_is_not_allowed_fails_precondition() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply_any(reply(403, ""));
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::FailedPrecondition);
    assert_eq!(
        (failure.code.as_str(), failure.message.as_str()),
        ("HTTP_403", "Capture not allowed")
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_secret_key_is_unauthorized() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply_any(reply(401, ""));
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::Unauthorized);
    assert_eq!(failure.http_status, 401);
    assert!(!failure.message.contains(SECRET));
    assert_eq!(mock.seen(CAPTURE_PATH).len(), 1, "a 401 is not retried");
    Ok(())
}

#[tokio::test]
async fn state_error_codes_fail_precondition_and_keep_every_code() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10")?))?)?;
    for code in [
        "capture_value_greater_than_authorized",
        "capture_value_greater_than_remaining_authorized",
        "payment_expired",
        "action_failure_limit_exceeded",
    ] {
        payment_in(&mock, "USD");
        mock.reply_any(reply(422, error_422("processing_error", &[code])));
        let (rejection, failure, _) =
            refusal(capture(&connector, &cmd, KEY).await).ok_or("expected a refusal")?;
        assert_eq!(rejection, Rejection::FailedPrecondition, "{code}");
        assert_eq!(failure.code, code);
        assert_eq!(failure.message, format!("processing_error: {code}"));
        assert_eq!(failure.debug_id.as_deref(), Some("0HL80RJLS76I7"));
        assert_eq!(failure.http_status, 422);
    }
    assert_eq!(mock.seen(CAPTURE_PATH).len(), 4, "every capture was sent");
    Ok(())
}

#[tokio::test]
async fn request_error_codes_are_invalid_arguments() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply_any(reply(
        422,
        error_422("request_invalid", &["amount_invalid", "reference_invalid"]),
    ));
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::InvalidArgument);
    assert_eq!(failure.code, "amount_invalid");
    assert_eq!(
        failure.message,
        "request_invalid: amount_invalid, reference_invalid"
    );
    Ok(())
}

#[tokio::test]
async fn a_429_is_rate_limited_with_its_retry_after() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply_any(reply(429, "").header("retry-after", "30"));
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;
    let (rejection, failure, retry_after) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::RateLimited);
    assert_eq!(failure.code, "HTTP_429");
    assert_eq!(retry_after, Some(Duration::from_secs(30)));
    assert_eq!(mock.seen(CAPTURE_PATH).len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_key_and_body_then_unknown() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    payment_in(&mock, "USD");
    for _ in 0..3 {
        mock.reply_any(reply(500, ""));
    }
    let result = capture(
        &connector(&base),
        &command(parts(Some(domain_money("USD", "1")?))?)?,
        KEY,
    )
    .await;
    assert!(is_unknown(&result), "{result:?}");
    let sent = mock.seen(CAPTURE_PATH);
    assert_eq!(sent.len(), 3, "one attempt and two retries");
    assert_eq!(
        mock.seen(PAYMENT_PATH).len(),
        1,
        "the lookup is not repeated"
    );
    for attempt in &sent {
        assert_eq!(attempt.header("cko-idempotency-key"), Some(KEY));
        assert_eq!(attempt.body, sent[0].body);
    }
    Ok(())
}

#[tokio::test]
async fn a_500_then_a_202_is_the_capture() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply_any(reply(500, ""));
    mock.reply_any(reply(202, ACCEPTED));
    let outcome = capture(&connector(&base), &command(parts(None)?)?, KEY).await?;
    assert_eq!(outcome.status, CaptureStatus::Pending);
    Ok(())
}

#[tokio::test]
async fn a_timeout_is_an_unknown_outcome() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    for _ in 0..3 {
        mock.reply_any(reply(202, ACCEPTED).after(Duration::from_secs(2)));
    }
    let connector = connector_with(&base, Duration::from_millis(300));
    let result = capture(&connector, &command(parts(None)?)?, KEY).await;
    assert!(is_unknown(&result), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn an_unreadable_or_unexpected_success_is_an_unknown_outcome() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(None)?)?;
    for (status, body) in [
        (202, "<html>Accepted</html>"),
        (202, r#"{"reference":"ORD"}"#),
        (200, ACCEPTED),
        (302, ""),
    ] {
        mock.reply_any(reply(status, body));
        let result = capture(&connector, &cmd, KEY).await;
        assert!(is_unknown(&result), "{status} {body}: {result:?}");
    }
    mock.reply_any(reply(200, "[{\"id\":"));
    let lookup = connector
        .fetch_outcome(&record(cmd, Some("act_3kfr4betasbelhjdk346yutxvu")))
        .await;
    assert!(is_unknown(&lookup), "{lookup:?}");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_checkout_is_an_unknown_outcome() -> TestResult {
    let result = capture_at_unreachable(connector, &command(parts(None)?)?, KEY).await?;
    assert!(is_unknown(&result), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn a_capture_with_an_amount_first_reads_the_payment_with_the_same_key() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    payment_in(&mock, "EUR");
    mock.reply(Method::POST, CAPTURE_PATH, reply(202, ACCEPTED));
    let cmd = command(parts(Some(domain_money("EUR", "30.00")?))?)?;
    let outcome = capture(&connector(&base), &cmd, KEY).await?;
    assert_eq!(outcome.status, CaptureStatus::Pending);

    let requests = mock.requests();
    assert_eq!(requests.len(), 2);
    let (lookup, sent) = (&requests[0], &requests[1]);
    assert_eq!(
        (
            &lookup.method,
            lookup.path.as_str(),
            lookup.query.as_deref()
        ),
        (&Method::GET, PAYMENT_PATH, None)
    );
    assert_eq!(header_names(lookup), ["authorization"]);
    assert_eq!(
        lookup.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert!(lookup.body.is_empty());
    assert_eq!(
        (&sent.method, sent.path.as_str()),
        (&Method::POST, CAPTURE_PATH)
    );
    assert_eq!(sent.json()?["amount"], json!(3000));
    Ok(())
}

#[tokio::test]
async fn a_capture_in_another_currency_than_the_payment_is_refused_before_it_is_sent() -> TestResult
{
    let mock = mock_checkout().await?;
    let base = mock.url();
    payment_in(&mock, "USD");
    mock.reply(Method::POST, CAPTURE_PATH, reply(202, ACCEPTED));
    let cmd = command(parts(Some(domain_money("EUR", "30.00")?))?)?;
    let result = capture(&connector(&base), &cmd, KEY).await;
    let (rejection, failure, retry_after) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::FailedPrecondition);
    assert_eq!(failure.code, CURRENCY_MISMATCH);
    assert_eq!(failure.code, "currency_mismatch");
    assert!(
        failure.message.contains("USD") && failure.message.contains("EUR"),
        "{}",
        failure.message
    );
    assert_eq!(failure.http_status, 0, "Checkout.com never saw the capture");
    assert_eq!(failure.debug_id.as_deref(), Some("0HL80RJLS76I7-hdr"));
    assert_eq!(retry_after, None);
    assert!(mock.seen(CAPTURE_PATH).is_empty(), "no capture was sent");
    assert_eq!(mock.seen(PAYMENT_PATH).len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_unknown_payment_on_the_lookup_is_not_found_and_nothing_is_captured() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply(Method::GET, PAYMENT_PATH, reply(404, ""));
    mock.reply(Method::POST, CAPTURE_PATH, reply(202, ACCEPTED));
    let cmd = command(parts(Some(domain_money("USD", "30.00")?))?)?;
    let result = capture(&connector(&base), &cmd, KEY).await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::NotFound);
    assert_eq!(
        (failure.code.as_str(), failure.message.as_str()),
        ("HTTP_404", "Payment not found")
    );
    assert_eq!(failure.debug_id.as_deref(), Some("0HL80RJLS76I7-hdr"));
    assert_eq!(failure.http_status, 404);
    assert_eq!(routes(&mock), [(Method::GET, PAYMENT_PATH.to_owned())]);
    Ok(())
}

#[tokio::test]
async fn a_refused_payment_lookup_keeps_its_refusal_and_nothing_is_captured() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "30.00")?))?)?;
    for (status, rejection, message) in [
        (401, Rejection::Unauthorized, "Unauthorized"),
        (
            403,
            Rejection::Unauthorized,
            "Not allowed to read the payment",
        ),
        (429, Rejection::RateLimited, "Too many requests"),
    ] {
        let answer = reply(status, "").header("retry-after", "30");
        mock.reply(Method::GET, PAYMENT_PATH, answer);
        let result = capture(&connector, &cmd, KEY).await;
        let (got, failure, retry_after) = refusal(result).ok_or("expected a refusal")?;
        assert_eq!(got, rejection, "{status}");
        assert_eq!(failure.code, format!("HTTP_{status}"));
        assert_eq!(failure.message, message);
        assert!(!failure.message.contains(SECRET));
        let throttled = rejection == Rejection::RateLimited;
        assert_eq!(retry_after, throttled.then_some(Duration::from_secs(30)));
    }
    assert_eq!(mock.seen(PAYMENT_PATH).len(), 3, "none is retried");
    assert!(mock.seen(CAPTURE_PATH).is_empty());
    Ok(())
}

#[tokio::test]
async fn a_payment_lookup_without_a_usable_answer_is_unknown_and_sends_no_capture() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "30.00")?))?)?;
    for _ in 0..3 {
        mock.reply(Method::GET, PAYMENT_PATH, reply(500, ""));
    }
    let result = capture(&connector, &cmd, KEY).await;
    assert!(is_unknown(&result), "{result:?}");
    assert_eq!(mock.seen(PAYMENT_PATH).len(), 3, "a read is retried");
    for (status, body) in [
        (200, "<html>Payment</html>"),
        (
            200,
            r#"{"id":"pay_kladqdb6hm5ebggtq45rtzjati","amount":10000}"#,
        ),
        (302, ""),
        (400, ""),
    ] {
        mock.reply(Method::GET, PAYMENT_PATH, reply(status, body));
        let result = capture(&connector, &cmd, KEY).await;
        assert!(is_unknown(&result), "{status} {body}: {result:?}");
    }
    assert!(mock.seen(CAPTURE_PATH).is_empty());
    let result = capture_at_unreachable(
        |b: &str| connector_with(b, Duration::from_secs(5)),
        &cmd,
        KEY,
    )
    .await?;
    assert!(is_unknown(&result), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn fetch_outcome_resends_no_capture_in_another_currency_than_the_payment() -> TestResult {
    let mock = mock_checkout().await?;
    let base = mock.url();
    mock.reply(Method::GET, ACTIONS_PATH, reply(200, actions_list()));
    payment_in(&mock, "USD");
    let cmd = command(parts(Some(domain_money("EUR", "1")?))?)?;
    let result = connector(&base).fetch_outcome(&record(cmd, None)).await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::FailedPrecondition);
    assert_eq!(failure.code, CURRENCY_MISMATCH);
    assert!(mock.seen(CAPTURE_PATH).is_empty());
    Ok(())
}

const WEBHOOK_SECRET: &str = "whsec_test_2f9c1b";

#[tokio::test]
async fn a_webhook_is_taken_only_with_the_hmac_of_its_exact_body() -> Result<(), Box<dyn Error>> {
    use capture_service::providers::webhook::{Delivery, Trust, WebhookError};
    use hmac::{Hmac, Mac};
    let connector = connector_with("http://127.0.0.1:9", Duration::from_secs(1));
    let body = br#"{"id":"evt_az5sblvku4ge3dwpztvyizgcau","type":"payment_captured","data":{"id":"pay_mbabizu24mvu3mela5njyhpit4","action_id":"act_y3oqhf46pyzuxjbcn2giaqnb44","amount":6540,"currency":"GBP","response_code":"10000"}}"#;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes())?;
    mac.update(body);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "Cko-Signature",
        hex::encode(mac.finalize().into_bytes()).parse()?,
    );
    let trust = connector
        .verify_webhook(Delivery {
            headers: &headers,
            body,
        })
        .await;
    assert_eq!(trust, Ok(Trust::Signed));
    let event = connector.read_webhook(body, Trust::Signed)?;
    assert_eq!(
        event.keys.provider_capture_id.as_deref(),
        Some("act_y3oqhf46pyzuxjbcn2giaqnb44")
    );
    let tampered = br#"{"id":"evt_az5sblvku4ge3dwpztvyizgcau","type":"payment_captured","data":{"id":"pay_mbabizu24mvu3mela5njyhpit4","action_id":"act_y3oqhf46pyzuxjbcn2giaqnb44","amount":9999,"currency":"GBP","response_code":"10000"}}"#;
    let refused = connector
        .verify_webhook(Delivery {
            headers: &headers,
            body: tampered,
        })
        .await;
    assert!(
        matches!(refused, Err(WebhookError::Unauthenticated(_))),
        "{refused:?}"
    );
    let unsigned = connector
        .verify_webhook(Delivery {
            headers: &http::HeaderMap::new(),
            body,
        })
        .await;
    assert!(
        matches!(unsigned, Err(WebhookError::Unauthenticated(_))),
        "{unsigned:?}"
    );
    Ok(())
}

mod release;
