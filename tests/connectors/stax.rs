//! The Stax connector against a local mock of Stax's HTTP API: the exact request on the wire
//! (method, path, every header, the body byte for byte with its exact JSON numbers), the
//! documented answers and the documented errors, and the pre-authorization lookup that guards a
//! capture of an amount against a currency Stax would not capture in.

use std::error::Error;
use std::time::Duration;

use axum::http::Method;

use crate::common::connector_fixtures::{
    capture, capture_at_unreachable, command, domain_money, fast_http, is_unknown,
    processing_record, refusal, start_mock,
};
use crate::common::mock_provider::{MockProvider, Reply};
use capture_service::config::Secret;
use capture_service::domain::capture::{
    AuthorizationId, CaptureParts, DisbursementMode, InvoiceId, Metadata, NoteToPayer, PlatformFee,
    Reference, SoftDescriptor,
};
use capture_service::domain::{CaptureStatus, Money, Provider};
use capture_service::providers::stax::StaxAccount;
use capture_service::providers::stax::StaxConnector;
use capture_service::providers::{Connector, ProviderError, Rejection};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

const PRE_AUTH: &str = "8e1d5b5c-1c1a-4c8e-9d7a-0f6c3b2a1e11";
const CAPTURE_PATH: &str = "/transaction/8e1d5b5c-1c1a-4c8e-9d7a-0f6c3b2a1e11/capture";
const LOOKUP_PATH: &str = "/transaction/8e1d5b5c-1c1a-4c8e-9d7a-0f6c3b2a1e11";
const API_KEY: &str = "stax-api-key-not-to-be-leaked";
const KEY: &str = "cap_01HZY3J6Q4W8E2R5T7Y9U1I3O5";

/// A local Stax: records every request and answers from its script (500 once it runs out).
async fn mock_stax() -> Result<MockProvider, std::io::Error> {
    start_mock(Reply::json(500, "")).await
}

fn connector_with(base_url: &str, timeout: Duration) -> StaxConnector {
    let account = StaxAccount {
        name: "default".to_owned(),
        base_url: format!("{base_url}/"),
        api_key: Secret::new(API_KEY),
    };
    StaxConnector::new(&account, fast_http(timeout))
}

fn connector(base_url: &str) -> StaxConnector {
    connector_with(base_url, Duration::from_secs(5))
}

/// A capture of the Stax pre-authorization with only the amount set (`None`: the full
/// pre-authorized amount).
fn parts(amount: Option<Money>) -> Result<CaptureParts, String> {
    crate::common::connector_fixtures::parts(Provider::Stax, PRE_AUTH, amount)
}

/// A transaction object as Stax documents it, with `total` written as given.
fn transaction(id: &str, success: bool, total: &str, currency: &str) -> String {
    let message = if success {
        "null".to_owned()
    } else {
        "\"Unable to process the purchase transaction\"".to_owned()
    };
    format!(
        r#"{{"id":"{id}","type":"charge","success":{success},"message":{message},
        "total":{total},"currency":"{currency}","method":"card","meta":{{}},"pre_auth":false,
        "is_refundable":true,"is_voidable":true,"is_voided":false,"total_refunded":0,
        "customer_id":"c1","payment_method_id":"pm1","reference_id":"{PRE_AUTH}",
        "last_four":"1111","created_at":"2024-05-01 12:00:00","updated_at":"2024-05-01 12:00:00"}}"#
    )
}

/// The pre-authorization as `GET /transaction/{id}` answers it, held in `currency`.
fn pre_auth(currency: &str) -> String {
    format!(
        r#"{{"id":"{PRE_AUTH}","type":"pre_auth","success":true,"message":null,"total":100.00,
        "currency":"{currency}","method":"card","meta":{{}},"pre_auth":true,"is_refundable":false,
        "is_voidable":true,"is_voided":false,"total_refunded":0,"customer_id":"c1",
        "payment_method_id":"pm1","reference_id":null,"last_four":"1111",
        "created_at":"2024-05-01 11:00:00","updated_at":"2024-05-01 11:00:00"}}"#
    )
}

/// Answers the next pre-authorization lookup with a pre-authorization held in `currency`.
fn held_in(mock: &MockProvider, currency: &str) {
    mock.reply(
        Method::GET,
        LOOKUP_PATH,
        Reply::json(200, pre_auth(currency)),
    );
}

#[tokio::test]
async fn a_capture_sends_the_exact_request_and_reads_the_transaction() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    held_in(&mock, "USD");
    mock.reply_any(Reply::json(200, transaction("tx-1", true, "12.34", "USD")));
    let mut p = parts(Some(domain_money("USD", "12.34")?))?;
    p.reference = Some(Reference::parse("order-42")?);
    p.metadata =
        Metadata::parse([("order.id".to_owned(), "42".to_owned())]).map_err(|e| e[0].1.clone())?;
    p.final_capture = true;

    let outcome = capture(&connector(&base), &command(p)?, KEY).await?;

    assert_eq!(
        mock.seen(LOOKUP_PATH).len(),
        1,
        "the pre-authorization read once"
    );
    let seen = mock.seen(CAPTURE_PATH);
    assert_eq!(seen.len(), 1, "exactly one capture request");
    assert_eq!(mock.requests().len(), 2);
    let sent = &seen[0];
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.path, CAPTURE_PATH);
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("accept"), Some("application/json"));
    // Stax documents no idempotency header: the key travels in the body only.
    assert_eq!(sent.header("idempotency-key"), None);
    assert_eq!(
        sent.header_names(),
        [
            "accept",
            "authorization",
            "content-length",
            "content-type",
            "host"
        ]
    );
    assert_eq!(
        sent.text(),
        format!(
            r#"{{"total":12.34,"meta":{{"order.id":"42","reference":"order-42"}},"idempotency_id":"{KEY}"}}"#
        )
    );

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "success=true");
    assert_eq!(outcome.provider_capture_id.as_deref(), Some("tx-1"));
    assert_eq!(outcome.captured_amount, Some(domain_money("USD", "12.34")?));
    assert_eq!(outcome.breakdown, None, "Stax returns no fees");
    let stored = outcome.redacted_body.ok_or("no stored body")?;
    assert_eq!(stored["last_four"], "1111");
    assert!(!stored.to_string().contains(API_KEY));
    Ok(())
}

#[tokio::test]
async fn a_capture_of_an_amount_first_reads_the_pre_authorization_with_a_bare_get() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    // Stax's currency code compared whatever its case.
    held_in(&mock, "usd");
    mock.reply_any(Reply::json(200, transaction("tx-1", true, "12.34", "USD")));
    let outcome = capture(
        &connector(&base),
        &command(parts(Some(domain_money("USD", "12.34")?))?)?,
        KEY,
    )
    .await?;
    assert_eq!(outcome.status, CaptureStatus::Completed);
    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    let lookup = &seen[0];
    assert_eq!(
        (
            &lookup.method,
            lookup.path.as_str(),
            lookup.query.as_deref()
        ),
        (&Method::GET, LOOKUP_PATH, None)
    );
    assert_eq!(
        lookup.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(lookup.header("accept"), Some("application/json"));
    assert_eq!(lookup.header_names(), ["accept", "authorization", "host"]);
    assert!(lookup.body.is_empty());
    assert_eq!(
        (&seen[1].method, seen[1].path.as_str()),
        (&Method::POST, CAPTURE_PATH),
        "the capture goes out after the lookup"
    );
    Ok(())
}

#[tokio::test]
async fn a_capture_in_another_currency_than_the_pre_authorization_is_refused_unsent() -> TestResult
{
    let mock = mock_stax().await?;
    let base = mock.url();
    held_in(&mock, "USD");
    mock.reply_any(Reply::json(200, transaction("tx-1", true, "30.00", "USD")));
    let result = capture(
        &connector(&base),
        &command(parts(Some(domain_money("EUR", "30.00")?))?)?,
        KEY,
    )
    .await;
    let (rejection, failure, retry_after) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::FailedPrecondition);
    assert_eq!(failure.code, "CURRENCY_MISMATCH");
    assert!(
        failure.message.contains("USD") && failure.message.contains("EUR"),
        "{}",
        failure.message
    );
    assert_eq!((failure.http_status, retry_after), (0, None), "not sent");
    assert_eq!(mock.seen(LOOKUP_PATH).len(), 1);
    assert!(
        mock.seen(CAPTURE_PATH).is_empty(),
        "no capture reached Stax"
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_pre_authorization_on_lookup_is_not_found_and_nothing_is_sent() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    let missing = Reply::json(404, r#"{"error":"Transaction not found"}"#);
    mock.reply(
        Method::GET,
        LOOKUP_PATH,
        missing.header("x-request-id", "req-404"),
    );
    let result = capture(
        &connector(&base),
        &command(parts(Some(domain_money("USD", "1")?))?)?,
        KEY,
    )
    .await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::NotFound);
    assert_eq!(
        (failure.code.as_str(), failure.message.as_str()),
        ("NOT_FOUND", "Transaction not found")
    );
    assert_eq!(failure.http_status, 404);
    assert_eq!(failure.debug_id.as_deref(), Some("req-404"));
    assert_eq!(mock.requests().len(), 1, "a 404 is final: not retried");
    assert!(mock.seen(CAPTURE_PATH).is_empty());
    Ok(())
}

#[tokio::test]
async fn a_refused_or_doubtful_lookup_sends_no_capture() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "1")?))?)?;
    let expect = |result, rejection: Rejection, code: &str| -> Result<(), String> {
        let (got, failure, _) = refusal(result).ok_or(format!("expected {code}"))?;
        assert_eq!((got, failure.code.as_str()), (rejection, code));
        Ok(())
    };
    mock.reply(
        Method::GET,
        LOOKUP_PATH,
        Reply::json(401, r#"{"message":"Unauthenticated."}"#),
    );
    expect(
        capture(&connector, &cmd, KEY).await,
        Rejection::Unauthorized,
        "UNAUTHORIZED",
    )?;
    mock.reply(Method::GET, LOOKUP_PATH, Reply::json(403, ""));
    expect(
        capture(&connector, &cmd, KEY).await,
        Rejection::Unauthorized,
        "FORBIDDEN",
    )?;
    let throttled = Reply::json(429, r#"{"message":"Too Many Attempts."}"#);
    mock.reply(
        Method::GET,
        LOOKUP_PATH,
        throttled.header("retry-after", "42"),
    );
    let (_, _, retry_after) = refusal(capture(&connector, &cmd, KEY).await).ok_or("no 429")?;
    assert_eq!(retry_after, Some(Duration::from_secs(42)));
    assert_eq!(mock.seen(LOOKUP_PATH).len(), 3, "refusals are not retried");

    // 5xx (retried, then unknown), an unreadable 200, an undocumented status: unknown.
    for _ in 0..3 {
        mock.reply(Method::GET, LOOKUP_PATH, Reply::json(503, ""));
    }
    let result = capture(&connector, &cmd, KEY).await;
    assert!(is_unknown(&result), "{result:?}");
    assert_eq!(mock.seen(LOOKUP_PATH).len(), 6, "a 5xx lookup is retried");
    for doubtful in [
        Reply::json(200, "<html>Bad Gateway</html>"),
        Reply::json(200, r#"{"currency":840}"#),
        Reply::json(400, r#"{"message":"?"}"#),
    ] {
        mock.reply(Method::GET, LOOKUP_PATH, doubtful.clone());
        let result = capture(&connector, &cmd, KEY).await;
        assert!(is_unknown(&result), "{doubtful:?}: {result:?}");
    }
    assert!(
        mock.seen(CAPTURE_PATH).is_empty(),
        "no capture reached Stax"
    );
    Ok(())
}

/// Without a currency on the pre-authorization there is nothing to compare: the capture goes
/// out, and the capture answer's currency is still checked.
#[tokio::test]
async fn a_pre_authorization_without_currency_is_captured_unchecked() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    let no_currency = pre_auth("USD").replace(r#""currency":"USD","#, "");
    mock.reply(Method::GET, LOOKUP_PATH, Reply::json(200, no_currency));
    mock.reply_any(Reply::json(200, transaction("tx-1", true, "7.00", "USD")));
    let outcome = capture(
        &connector(&base),
        &command(parts(Some(domain_money("USD", "7")?))?)?,
        KEY,
    )
    .await?;
    assert_eq!(outcome.captured_amount, Some(domain_money("USD", "7")?));
    assert_eq!(mock.seen(CAPTURE_PATH).len(), 1);
    Ok(())
}

#[tokio::test]
async fn amounts_travel_as_exact_major_unit_numbers_in_every_currency() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    let connector = connector(&base);
    for (currency, value, written) in [
        ("USD", "0.1", "0.10"),
        ("USD", "99999999.99", "99999999.99"),
        ("JPY", "1000", "1000"),
        ("TND", "1.5", "1.500"),
        ("BHD", "12.345", "12.345"),
    ] {
        held_in(&mock, currency);
        mock.reply_any(Reply::json(200, transaction("tx", true, written, currency)));
        let outcome = capture(
            &connector,
            &command(parts(Some(domain_money(currency, value)?))?)?,
            KEY,
        )
        .await?;
        let sent = mock.seen(CAPTURE_PATH).pop().ok_or("no request")?;
        assert_eq!(
            sent.text(),
            format!(r#"{{"total":{written},"idempotency_id":"{KEY}"}}"#),
            "{currency} {value}"
        );
        assert_eq!(
            outcome.captured_amount,
            Some(domain_money(currency, value)?)
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_full_capture_omits_total_skips_the_lookup_and_reads_the_amount_stax_took() -> TestResult
{
    let mock = mock_stax().await?;
    let base = mock.url();
    mock.reply_any(Reply::json(200, transaction("tx-2", true, "250.5", "USD")));
    let outcome = capture(&connector(&base), &command(parts(None)?)?, KEY).await?;
    let seen = mock.requests();
    assert_eq!(seen.len(), 1, "no amount, no currency to check: no lookup");
    assert_eq!(
        (&seen[0].method, seen[0].path.as_str()),
        (&Method::POST, CAPTURE_PATH)
    );
    assert_eq!(seen[0].text(), format!(r#"{{"idempotency_id":"{KEY}"}}"#));
    assert_eq!(
        outcome.captured_amount,
        Some(domain_money("USD", "250.50")?)
    );
    Ok(())
}

#[tokio::test]
async fn a_declined_transaction_keeps_staxs_message_and_captures_nothing() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    held_in(&mock, "USD");
    mock.reply_any(Reply::json(200, transaction("tx-3", false, "5", "USD")));
    let outcome = capture(
        &connector(&base),
        &command(parts(Some(domain_money("USD", "5")?))?)?,
        KEY,
    )
    .await?;
    assert_eq!(outcome.status, CaptureStatus::Declined);
    assert_eq!(outcome.provider_status, "success=false");
    assert_eq!(
        outcome.provider_reason.as_deref(),
        Some("Unable to process the purchase transaction")
    );
    assert_eq!(outcome.captured_amount, None);
    Ok(())
}

#[tokio::test]
async fn refusals_of_the_pre_authorization_are_failed_preconditions_with_staxs_words() -> TestResult
{
    let mock = mock_stax().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10.99")?))?)?;
    for (message, code) in [
        (
            "Cannot capture more than the pre-authorized amount.",
            "AMOUNT_EXCEEDS_PREAUTH",
        ),
        ("This pre-authorization has expired.", "EXPIRED"),
        (
            "This pre-authorization has already been captured.",
            "ALREADY_CAPTURED",
        ),
        ("This pre-authorization has been voided.", "VOIDED"),
        ("Something Stax did not document.", "BAD_REQUEST"),
    ] {
        let refused = Reply::json(400, serde_json::json!({ "message": message }).to_string());
        held_in(&mock, "USD");
        mock.reply_any(refused.header("x-request-id", "req-abc"));
        let (rejection, failure, retry_after) =
            refusal(capture(&connector, &cmd, KEY).await).ok_or("expected a refusal")?;
        assert_eq!(rejection, Rejection::FailedPrecondition, "{message}");
        assert_eq!(failure.code, code);
        assert_eq!(failure.message, message);
        assert_eq!(failure.http_status, 400);
        assert_eq!(failure.debug_id.as_deref(), Some("req-abc"));
        assert_eq!(retry_after, None);
    }
    assert_eq!(mock.seen(LOOKUP_PATH).len(), 5, "one lookup per capture");
    assert_eq!(
        mock.seen(CAPTURE_PATH).len(),
        5,
        "a 400 is final: never retried"
    );
    Ok(())
}

#[tokio::test]
async fn an_unknown_pre_authorization_is_not_found() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    mock.reply_any(Reply::json(404, r#"{"error":"Transaction not found"}"#));
    let (rejection, failure, _) =
        refusal(capture(&connector(&base), &command(parts(None)?)?, KEY).await)
            .ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::NotFound);
    assert_eq!(failure.code, "NOT_FOUND");
    assert_eq!(failure.message, "Transaction not found");
    assert_eq!(failure.http_status, 404);
    Ok(())
}

#[tokio::test]
async fn validation_errors_are_invalid_arguments_naming_the_field() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    held_in(&mock, "USD");
    mock.reply_any(Reply::json(
        422,
        r#"{"total":["The total must be a number."]}"#,
    ));
    let (rejection, failure, _) = refusal(
        capture(
            &connector(&base),
            &command(parts(Some(domain_money("USD", "1")?))?)?,
            KEY,
        )
        .await,
    )
    .ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::InvalidArgument);
    assert_eq!(failure.code, "INVALID_TOTAL");
    assert_eq!(failure.message, "total: The total must be a number.");
    assert_eq!(failure.http_status, 422);
    Ok(())
}

#[tokio::test]
async fn refused_credentials_are_unauthorized_and_never_echoed() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(None)?)?;
    mock.reply_any(Reply::json(401, r#"{"message":"Unauthenticated."}"#));
    mock.reply_any(Reply::json(403, ""));
    let unauthorized = capture(&connector, &cmd, KEY).await;
    assert!(!format!("{unauthorized:?}").contains(API_KEY));
    let (rejection, failure, _) = refusal(unauthorized).ok_or("expected a refusal")?;
    assert_eq!(
        (rejection, failure.code.as_str(), failure.message.as_str()),
        (Rejection::Unauthorized, "UNAUTHORIZED", "Unauthenticated.")
    );
    let (rejection, failure, _) =
        refusal(capture(&connector, &cmd, KEY).await).ok_or("expected a refusal")?;
    assert_eq!(
        (rejection, failure.code.as_str(), failure.message.as_str()),
        (Rejection::Unauthorized, "FORBIDDEN", "Forbidden")
    );
    Ok(())
}

#[tokio::test]
async fn a_429_is_rate_limited_with_its_retry_after() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    let throttled = Reply::json(429, r#"{"message":"Too Many Attempts."}"#);
    mock.reply_any(throttled.header("retry-after", "42"));
    let (rejection, failure, retry_after) =
        refusal(capture(&connector(&base), &command(parts(None)?)?, KEY).await)
            .ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::RateLimited);
    assert_eq!(failure.code, "RATE_LIMITED");
    assert_eq!(failure.message, "Too Many Attempts.");
    assert_eq!(retry_after, Some(Duration::from_secs(42)));
    // Longer than the transport waits: handed back at once rather than retried.
    assert_eq!(mock.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_5xx_is_retried_with_the_same_idempotency_id_then_unknown() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    held_in(&mock, "USD");
    for _ in 0..3 {
        mock.reply_any(Reply::json(500, r#"{"message":"Server Error"}"#));
    }
    let result = capture(
        &connector(&base),
        &command(parts(Some(domain_money("USD", "1")?))?)?,
        KEY,
    )
    .await;
    assert!(is_unknown(&result), "{result:?}");
    assert_eq!(
        mock.seen(LOOKUP_PATH).len(),
        1,
        "the lookup is not repeated"
    );
    let seen = mock.seen(CAPTURE_PATH);
    assert_eq!(seen.len(), 3, "one attempt and two retries");
    for sent in &seen {
        assert_eq!(sent.body, seen[0].body);
        assert!(sent.text().contains(KEY));
    }
    Ok(())
}

#[tokio::test]
async fn a_5xx_then_a_200_is_the_capture() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    held_in(&mock, "USD");
    mock.reply_any(Reply::json(502, "<html>Bad Gateway</html>"));
    mock.reply_any(Reply::json(200, transaction("tx-5", true, "1.00", "USD")));
    let outcome = capture(
        &connector(&base),
        &command(parts(Some(domain_money("USD", "1")?))?)?,
        KEY,
    )
    .await?;
    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(mock.seen(CAPTURE_PATH).len(), 2);
    assert_eq!(mock.seen(LOOKUP_PATH).len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_timeout_is_an_unknown_outcome() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    for _ in 0..3 {
        mock.reply_any(
            Reply::json(200, transaction("tx-6", true, "1", "USD")).after(Duration::from_secs(2)),
        );
    }
    let connector = connector_with(&base, Duration::from_millis(300));
    let result = capture(&connector, &command(parts(None)?)?, KEY).await;
    assert!(is_unknown(&result), "{result:?}");
    assert_eq!(mock.requests().len(), 3);
    Ok(())
}

#[tokio::test]
async fn a_malformed_or_doubtful_200_is_an_unknown_outcome() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10")?))?)?;
    for body in [
        "<html><body>Bad Gateway</body></html>".to_owned(),
        r#"{"id":"tx-7","total":10}"#.to_owned(),
        transaction("tx-8", true, "10", "EUR"),
        transaction("tx-9", true, "10.001", "USD"),
    ] {
        held_in(&mock, "USD");
        mock.reply_any(Reply::json(200, body.clone()));
        let result = capture(&connector, &cmd, KEY).await;
        assert!(is_unknown(&result), "{body}: {result:?}");
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_stax_is_an_unknown_outcome() -> TestResult {
    let result = capture_at_unreachable(connector, &command(parts(None)?)?, KEY).await?;
    assert!(is_unknown(&result), "{result:?}");
    // With an amount, the lookup gets no answer either.
    let cmd = command(parts(Some(domain_money("USD", "1")?))?)?;
    let result = capture_at_unreachable(connector, &cmd, KEY).await?;
    assert!(is_unknown(&result), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn fetch_outcome_reads_the_transaction_once_its_id_is_known() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    let refunded = transaction("tx-10", true, "20.00", "USD")
        .replace(r#""total_refunded":0"#, r#""total_refunded":5.5"#);
    mock.reply_any(Reply::json(200, refunded));
    let cmd = command(parts(Some(domain_money("USD", "20")?))?)?;
    let outcome = connector(&base)
        .fetch_outcome(&processing_record(cmd, KEY, Some("tx-10")))
        .await?;
    let seen = mock.requests();
    assert_eq!(seen[0].method, Method::GET);
    assert_eq!(seen[0].path, "/transaction/tx-10");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert!(seen[0].body.is_empty());
    assert_eq!(outcome.status, CaptureStatus::PartiallyRefunded);
    assert_eq!(outcome.captured_amount, Some(domain_money("USD", "20")?));
    Ok(())
}

#[tokio::test]
async fn fetch_outcome_resends_the_capture_with_its_idempotency_id_otherwise() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    held_in(&mock, "USD");
    mock.reply_any(Reply::json(200, transaction("tx-11", true, "3", "USD")));
    let cmd = command(parts(Some(domain_money("USD", "3")?))?)?;
    let outcome = connector(&base)
        .fetch_outcome(&processing_record(cmd, KEY, None))
        .await?;
    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[0].method.clone(), seen[0].path.as_str()),
        (Method::GET, LOOKUP_PATH)
    );
    assert_eq!(
        (seen[1].method.clone(), seen[1].path.as_str()),
        (Method::POST, CAPTURE_PATH)
    );
    assert_eq!(
        seen[1].text(),
        format!(r#"{{"total":3.00,"idempotency_id":"{KEY}"}}"#)
    );
    assert_eq!(outcome.provider_capture_id.as_deref(), Some("tx-11"));
    Ok(())
}

/// A PROCESSING capture may come from before the currency check, when a capture in another
/// currency did go out: a mismatch found while resolving it is not re-sent, nor settled as failed.
#[tokio::test]
async fn fetch_outcome_leaves_a_currency_mismatch_unknown_and_sends_nothing() -> TestResult {
    let mock = mock_stax().await?;
    let base = mock.url();
    held_in(&mock, "USD");
    mock.reply_any(Reply::json(200, transaction("tx-12", true, "3", "USD")));
    let cmd = command(parts(Some(domain_money("EUR", "3")?))?)?;
    let result = connector(&base)
        .fetch_outcome(&processing_record(cmd, KEY, None))
        .await;
    match &result {
        Err(ProviderError::OutcomeUnknown { detail, .. }) => {
            assert!(detail.contains("USD") && detail.contains("EUR"), "{detail}")
        }
        other => return Err(format!("expected an unknown outcome, got {other:?}").into()),
    }
    assert_eq!(mock.seen(LOOKUP_PATH).len(), 1);
    assert!(mock.seen(CAPTURE_PATH).is_empty());
    Ok(())
}

#[test]
fn check_refuses_what_a_stax_capture_cannot_carry() -> Result<(), String> {
    let connector = connector("http://127.0.0.1:9");
    assert_eq!(connector.provider(), Provider::Stax);
    let fine = parts(Some(domain_money("USD", "9999999999999.99")?))?;
    assert!(connector.check(&command(fine)?).is_empty());

    // Beyond what the edge accepts (15 digits), so built from minor units: the connector still
    // guards Stax's own limit.
    let usd = capture_service::domain::Currency::from_code("USD").ok_or("USD")?;
    let huge = capture_service::domain::Money::from_minor_units(usd, 1_000_000_000_000_000);
    let mut p = parts(Some(huge))?;
    // An id of dots alone never reaches a connector: the edge refuses it.
    assert!(AuthorizationId::parse("..").is_err());
    p.invoice_id = Some(InvoiceId::parse("INV-1")?);
    p.note_to_payer = Some(NoteToPayer::parse("thanks")?);
    p.soft_descriptor = Some(SoftDescriptor::parse("SHOP")?);
    p.platform_fees = vec![PlatformFee {
        amount: domain_money("USD", "1")?,
        payee: None,
    }];
    p.disbursement_mode = Some(DisbursementMode::Instant);
    p.reference = Some(Reference::parse("order-1")?);
    p.metadata =
        Metadata::parse([("reference".to_owned(), "x".to_owned())]).map_err(|e| e[0].1.clone())?;
    let fields: Vec<String> = connector
        .check(&command(p)?)
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "amount.value",
            "invoice_id",
            "note_to_payer",
            "soft_descriptor",
            "platform_fees",
            "disbursement_mode",
            "metadata"
        ]
    );
    Ok(())
}

mod release;
