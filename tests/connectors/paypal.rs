//! The PayPal connector against a local mock of PayPal's HTTP API: the exact request on the
//! wire, the documented answers, the documented errors, and the OAuth token's life.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use serde_json::{json, Value};

use crate::common::connector_fixtures::{
    capture, capture_at_unreachable, command, domain_money, fast_http, is_unknown, refusal,
    start_mock,
};
use crate::common::mock_provider::{MockProvider, Reply};
use capture_service::config::Secret;
use capture_service::domain::capture::{
    AuthorizationId, CaptureParts, DisbursementMode, EmailAddress, FeePayee, InvoiceId, MerchantId,
    Metadata, NoteToPayer, PlatformFee, Reference, SoftDescriptor,
};
use capture_service::domain::{CaptureStatus, Money, Provider, StatusReason};
use capture_service::providers::paypal::PaypalAccount;
use capture_service::providers::paypal::PaypalConnector;
use capture_service::providers::{Connector, Rejection};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

const AUTHORIZATION_ID: &str = "0VF52814937998046";
const TOKEN_PATH: &str = "/v1/oauth2/token";
const CAPTURE_PATH: &str = "/v2/payments/authorizations/0VF52814937998046/capture";
const KEY: &str = "capture-key-1";

/// A local PayPal: records every request and answers from its script. The token endpoint
/// issues `token-1`, `token-2`, ... unless scripted otherwise; anything else unscripted gets an
/// empty 500.
async fn mock_paypal() -> Result<MockProvider, std::io::Error> {
    let mock = start_mock(Reply::json(500, "")).await?;
    mock.default_for(Method::POST, TOKEN_PATH, |n| {
        Reply::json(
            200,
            json!({"access_token": format!("token-{n}"), "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T", "expires_in": 32400}),
        )
    });
    Ok(mock)
}

/// Queues `reply` for the next capture request.
fn on_capture(mock: &MockProvider, reply: Reply) {
    mock.reply(Method::POST, CAPTURE_PATH, reply);
}

fn connector_with(base_url: &str, assertion: Option<&str>, timeout: Duration) -> PaypalConnector {
    let account = PaypalAccount {
        name: "default".to_owned(),
        base_url: base_url.to_owned(),
        client_id: "client-id".to_owned(),
        client_secret: Secret::new("client-secret"),
        auth_assertion: assertion.map(Secret::new),
        webhook_id: Some("WH-CONFIGURED".to_owned()),
    };
    PaypalConnector::new(&account, fast_http(timeout))
}

fn connector(base_url: &str) -> PaypalConnector {
    connector_with(base_url, None, Duration::from_secs(5))
}

/// A capture of the PayPal authorization with only the amount set (`None`: the full authorized
/// amount).
fn parts(amount: Option<Money>) -> Result<CaptureParts, String> {
    crate::common::connector_fixtures::parts(Provider::Paypal, AUTHORIZATION_ID, amount)
}

fn error_body(status_name: &str, issue: Option<&str>) -> String {
    let details: Vec<Value> = issue
        .map(|i| vec![json!({"issue": i, "description": "see docs", "location": "body"})])
        .unwrap_or_default();
    json!({"name": status_name, "message": "refused", "debug_id": "90957fca61718",
        "details": details})
    .to_string()
}

const COMPLETED: &str = r#"{"id":"2GG279541U471931P","status":"COMPLETED",
  "amount":{"currency_code":"USD","value":"100.00"},"final_capture":true,
  "seller_protection":{"status":"ELIGIBLE","dispute_categories":["ITEM_NOT_RECEIVED"]},
  "seller_receivable_breakdown":{
    "gross_amount":{"currency_code":"USD","value":"100.00"},
    "paypal_fee":{"currency_code":"USD","value":"3.98"},
    "paypal_fee_in_receivable_currency":{"currency_code":"EUR","value":"3.66"},
    "net_amount":{"currency_code":"USD","value":"91.02"},
    "receivable_amount":{"currency_code":"EUR","value":"83.74"},
    "exchange_rate":{"source_currency":"USD","target_currency":"EUR","value":"0.92"},
    "platform_fees":[{"amount":{"currency_code":"USD","value":"5.00"},
                      "payee":{"email_address":"fees@platform.example"}}]},
  "network_transaction_reference":{"id":"123456789012345","network":"VISA"},
  "processor_response":{"avs_code":"Y","cvv_code":"M","response_code":"0000"},
  "links":[{"href":"https://api-m.paypal.com/v2/payments/captures/2GG279541U471931P",
            "rel":"self","method":"GET"}]}"#;

#[tokio::test]
async fn a_capture_sends_every_documented_field_and_reads_the_full_breakdown() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    on_capture(&mock, Reply::json(201, COMPLETED));
    let connector = connector_with(&base, Some("jwt-assertion"), Duration::from_secs(5));
    let mut p = parts(Some(domain_money("USD", "100.00")?))?;
    p.final_capture = true;
    p.invoice_id = Some(InvoiceId::parse("INV-42")?);
    p.note_to_payer = Some(NoteToPayer::parse("Thanks for your order")?);
    p.soft_descriptor = Some(SoftDescriptor::parse("SHOP*ORDER42")?);
    p.reference = Some(Reference::parse("order-42")?);
    p.metadata = Metadata::parse([("k".to_owned(), "v".to_owned())]).map_err(|e| e[0].1.clone())?;
    p.platform_fees = vec![PlatformFee {
        amount: domain_money("USD", "5")?,
        payee: Some(FeePayee::Email(EmailAddress::parse(
            "fees@platform.example",
        )?)),
    }];
    p.disbursement_mode = Some(DisbursementMode::Delayed);

    let outcome = capture(&connector, &command(p)?, KEY).await?;

    let tokens = mock.seen(TOKEN_PATH);
    assert_eq!(tokens.len(), 1);
    let basic = base64::engine::general_purpose::STANDARD.encode("client-id:client-secret");
    assert_eq!(tokens[0].method, Method::POST);
    assert_eq!(
        tokens[0].header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        tokens[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(tokens[0].body, b"grant_type=client_credentials");

    let captures = mock.seen(CAPTURE_PATH);
    assert_eq!(captures.len(), 1);
    let sent = &captures[0];
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.header("authorization"), Some("Bearer token-1"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("paypal-request-id"), Some("capture-key-1"));
    assert_eq!(sent.header("prefer"), Some("return=representation"));
    assert_eq!(sent.header("paypal-auth-assertion"), Some("jwt-assertion"));
    // `reference` and `metadata` have no PayPal capture field and are not sent.
    let expected = json!({
        "amount": {"currency_code": "USD", "value": "100.00"},
        "invoice_id": "INV-42",
        "note_to_payer": "Thanks for your order",
        "final_capture": true,
        "soft_descriptor": "SHOP*ORDER42",
        "payment_instruction": {
            "platform_fees": [{"amount": {"currency_code": "USD", "value": "5.00"},
                               "payee": {"email_address": "fees@platform.example"}}],
            "disbursement_mode": "DELAYED"
        }
    });
    assert_eq!(sent.json()?, expected);

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "COMPLETED");
    assert_eq!(
        outcome.provider_capture_id.as_deref(),
        Some("2GG279541U471931P")
    );
    assert_eq!(outcome.captured_amount, Some(domain_money("USD", "100")?));
    let b = outcome.breakdown.ok_or("breakdown")?;
    assert_eq!(b.gross_amount, Some(domain_money("USD", "100.00")?));
    assert_eq!(b.provider_fee, Some(domain_money("USD", "3.98")?));
    assert_eq!(
        b.provider_fee_in_receivable_currency,
        Some(domain_money("EUR", "3.66")?)
    );
    assert_eq!(b.net_amount, Some(domain_money("USD", "91.02")?));
    assert_eq!(b.receivable_amount, Some(domain_money("EUR", "83.74")?));
    let rate = b.exchange_rate.ok_or("exchange rate")?;
    assert_eq!(
        (
            rate.source_currency.as_str(),
            rate.target_currency.as_str(),
            rate.value.as_str()
        ),
        ("USD", "EUR", "0.92")
    );
    assert_eq!(b.platform_fees.len(), 1);
    assert_eq!(b.platform_fees[0].amount, domain_money("USD", "5.00")?);
    assert_eq!(
        outcome.seller_protection.map(|s| s.status),
        Some("ELIGIBLE".to_owned())
    );
    assert_eq!(
        outcome.network_reference.map(|n| n.id),
        Some("123456789012345".to_owned())
    );
    assert_eq!(
        outcome.processor_response.and_then(|p| p.avs_code),
        Some("Y".to_owned())
    );
    assert_eq!(
        outcome.redacted_body.as_deref(),
        Some(&serde_json::from_str::<Value>(COMPLETED)?)
    );
    Ok(())
}

#[tokio::test]
async fn a_jpy_capture_sends_whole_yen_and_reads_a_pending_answer_without_breakdown() -> TestResult
{
    let mock = mock_paypal().await?;
    let base = mock.url();
    on_capture(
        &mock,
        Reply::json(
            201,
            r#"{"id":"7TK53561YB803214S","status":"PENDING",
            "status_details":{"reason":"PENDING_REVIEW"},
            "amount":{"currency_code":"JPY","value":"1000"}}"#,
        ),
    );
    let outcome = capture(
        &connector(&base),
        &command(parts(Some(domain_money("JPY", "1000")?))?)?,
        KEY,
    )
    .await?;

    let sent = mock.seen(CAPTURE_PATH);
    assert_eq!(
        sent[0].json()?,
        json!({"amount": {"currency_code": "JPY", "value": "1000"}, "final_capture": false})
    );
    assert_eq!(sent[0].header("paypal-auth-assertion"), None);
    assert_eq!(outcome.status, CaptureStatus::Pending);
    assert_eq!(outcome.reason, Some(StatusReason::PendingReview));
    assert_eq!(outcome.provider_reason.as_deref(), Some("PENDING_REVIEW"));
    assert_eq!(outcome.captured_amount, Some(domain_money("JPY", "1000")?));
    assert_eq!(outcome.breakdown, None);
    Ok(())
}

#[tokio::test]
async fn a_tnd_capture_sends_three_decimals_and_reads_a_declined_answer() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    on_capture(
        &mock,
        Reply::json(
            200,
            r#"{"id":"5DW13418AB405474A","status":"DECLINED",
            "status_details":{"reason":"DECLINED_BY_RISK_FRAUD_FILTERS"},
            "amount":{"currency_code":"TND","value":"1.234"}}"#,
        ),
    );
    let mut p = parts(Some(domain_money("TND", "1.234")?))?;
    p.platform_fees = vec![PlatformFee {
        amount: domain_money("TND", "0.1")?,
        payee: Some(FeePayee::MerchantId(MerchantId::parse("2ABCDEFGHJKLM")?)),
    }];
    let outcome = capture(&connector(&base), &command(p)?, KEY).await?;

    let sent = mock.seen(CAPTURE_PATH);
    assert_eq!(
        sent[0].json()?,
        json!({
            "amount": {"currency_code": "TND", "value": "1.234"},
            "final_capture": false,
            "payment_instruction": {"platform_fees": [{
                "amount": {"currency_code": "TND", "value": "0.100"},
                "payee": {"merchant_id": "2ABCDEFGHJKLM"}}]}
        })
    );
    assert_eq!(outcome.status, CaptureStatus::Declined);
    assert_eq!(
        outcome.reason,
        Some(StatusReason::DeclinedByRiskFraudFilters)
    );
    assert_eq!(outcome.captured_amount, Some(domain_money("TND", "1.234")?));
    Ok(())
}

#[tokio::test]
async fn the_token_is_fetched_once_and_reused_even_by_concurrent_captures() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    let slow_token = Reply::json(
        200,
        r#"{"access_token":"token-slow","token_type":"Bearer","expires_in":32400}"#,
    )
    .after(Duration::from_millis(200));
    mock.reply(Method::POST, TOKEN_PATH, slow_token);
    for _ in 0..6 {
        on_capture(&mock, Reply::json(201, COMPLETED));
    }
    let connector = Arc::new(connector(&base));
    let full_amount = Arc::new(command(parts(None)?)?);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (connector, cmd) = (Arc::clone(&connector), Arc::clone(&full_amount));
        tasks.spawn(async move { capture(&*connector, &cmd, KEY).await.map(|o| o.status) });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done??, CaptureStatus::Completed);
    }
    for _ in 0..2 {
        capture(&*connector, &full_amount, KEY).await?;
    }

    assert_eq!(mock.seen(TOKEN_PATH).len(), 1);
    let captures = mock.seen(CAPTURE_PATH);
    assert_eq!(captures.len(), 6);
    for sent in &captures {
        assert_eq!(sent.header("authorization"), Some("Bearer token-slow"));
        // No amount: PayPal captures the full authorized amount.
        assert_eq!(sent.json()?, json!({"final_capture": false}));
    }
    Ok(())
}

#[tokio::test]
async fn a_401_fetches_a_new_token_once_and_resends_the_same_capture() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    on_capture(
        &mock,
        Reply::json(401, error_body("AUTHENTICATION_FAILURE", None)),
    );
    on_capture(&mock, Reply::json(201, COMPLETED));
    let outcome = capture(
        &connector(&base),
        &command(parts(Some(domain_money("USD", "1")?))?)?,
        KEY,
    )
    .await?;

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(mock.seen(TOKEN_PATH).len(), 2);
    let captures = mock.seen(CAPTURE_PATH);
    assert_eq!(captures.len(), 2);
    assert_eq!(captures[0].header("authorization"), Some("Bearer token-1"));
    assert_eq!(captures[1].header("authorization"), Some("Bearer token-2"));
    assert_eq!(
        captures[1].header("paypal-request-id"),
        Some("capture-key-1")
    );
    assert_eq!(captures[0].body, captures[1].body);
    Ok(())
}

#[tokio::test]
async fn a_second_401_is_unauthorized() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    on_capture(
        &mock,
        Reply::json(401, error_body("AUTHENTICATION_FAILURE", None)),
    );
    on_capture(
        &mock,
        Reply::json(401, error_body("AUTHENTICATION_FAILURE", None)),
    );
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;

    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::Unauthorized);
    assert_eq!(failure.code, "AUTHENTICATION_FAILURE");
    assert_eq!(failure.http_status, 401);
    assert_eq!(mock.seen(TOKEN_PATH).len(), 2);
    assert_eq!(mock.seen(CAPTURE_PATH).len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_403_is_unauthorized_without_a_new_token() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    on_capture(
        &mock,
        Reply::json(403, error_body("NOT_AUTHORIZED", Some("PERMISSION_DENIED"))),
    );
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;

    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::Unauthorized);
    assert_eq!(failure.code, "PERMISSION_DENIED");
    assert_eq!(mock.seen(TOKEN_PATH).len(), 1);
    Ok(())
}

#[tokio::test]
async fn an_unknown_authorization_is_not_found_with_paypals_debug_id() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    on_capture(
        &mock,
        Reply::json(
            404,
            error_body("RESOURCE_NOT_FOUND", Some("INVALID_RESOURCE_ID")),
        ),
    );
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;

    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::NotFound);
    assert_eq!(failure.code, "INVALID_RESOURCE_ID");
    assert_eq!(failure.message, "refused");
    assert_eq!(failure.debug_id.as_deref(), Some("90957fca61718"));
    assert_eq!(failure.http_status, 404);
    Ok(())
}

#[tokio::test]
async fn authorization_state_issues_are_failed_preconditions() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10.99")?))?)?;
    for issue in [
        "AUTHORIZATION_EXPIRED",
        "AUTHORIZATION_VOIDED",
        "AUTHORIZATION_ALREADY_CAPTURED",
        "MAX_CAPTURE_AMOUNT_EXCEEDED",
        "AUTH_CAPTURE_CURRENCY_MISMATCH",
    ] {
        on_capture(
            &mock,
            Reply::json(422, error_body("UNPROCESSABLE_ENTITY", Some(issue))),
        );
        let (rejection, failure, _) =
            refusal(capture(&connector, &cmd, KEY).await).ok_or("expected a refusal")?;
        assert_eq!(rejection, Rejection::FailedPrecondition, "{issue}");
        assert_eq!(failure.code, issue);
        assert_eq!(failure.http_status, 422);
    }
    Ok(())
}

#[tokio::test]
async fn invalid_requests_are_invalid_arguments() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10.99")?))?)?;
    on_capture(
        &mock,
        Reply::json(
            422,
            error_body("UNPROCESSABLE_ENTITY", Some("DECIMAL_PRECISION")),
        ),
    );
    on_capture(&mock, Reply::json(400, error_body("INVALID_REQUEST", None)));
    let first = refusal(capture(&connector, &cmd, KEY).await).ok_or("expected a refusal")?;
    assert_eq!(
        (first.0, first.1.code.as_str()),
        (Rejection::InvalidArgument, "DECIMAL_PRECISION")
    );
    let second = refusal(capture(&connector, &cmd, KEY).await).ok_or("expected a refusal")?;
    assert_eq!(
        (second.0, second.1.code.as_str()),
        (Rejection::InvalidArgument, "INVALID_REQUEST")
    );
    assert_eq!(second.1.http_status, 400);
    Ok(())
}

#[tokio::test]
async fn a_500_without_body_is_retried_with_the_same_request_then_unknown() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    for _ in 0..3 {
        on_capture(&mock, Reply::json(500, ""));
    }
    let result = capture(
        &connector(&base),
        &command(parts(Some(domain_money("USD", "1")?))?)?,
        KEY,
    )
    .await;

    assert!(is_unknown(&result), "{result:?}");
    let captures = mock.seen(CAPTURE_PATH);
    assert_eq!(captures.len(), 3, "one attempt and two retries");
    for sent in &captures {
        assert_eq!(sent.header("paypal-request-id"), Some("capture-key-1"));
        assert_eq!(sent.body, captures[0].body);
    }
    Ok(())
}

#[tokio::test]
async fn a_500_then_a_201_is_the_capture() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    on_capture(&mock, Reply::json(500, ""));
    on_capture(&mock, Reply::json(201, COMPLETED));
    let outcome = capture(&connector(&base), &command(parts(None)?)?, KEY).await?;
    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(mock.seen(CAPTURE_PATH).len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_timeout_is_an_unknown_outcome() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    for _ in 0..3 {
        let slow = Reply::json(201, COMPLETED).after(Duration::from_secs(2));
        on_capture(&mock, slow);
    }
    let connector = connector_with(&base, None, Duration::from_millis(300));
    let result = capture(&connector, &command(parts(None)?)?, KEY).await;
    assert!(is_unknown(&result), "{result:?}");
    assert_eq!(mock.seen(CAPTURE_PATH).len(), 3);
    Ok(())
}

#[tokio::test]
async fn a_malformed_201_is_an_unknown_outcome() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(None)?)?;
    on_capture(
        &mock,
        Reply::json(201, r#"{"id":"2GG279541U471931P","status":"COMPL"#),
    );
    assert!(is_unknown(&capture(&connector, &cmd, KEY).await));
    on_capture(
        &mock,
        Reply::json(201, r#"{"id":"2GG279541U471931P","status":"DENIED"}"#),
    );
    assert!(is_unknown(&capture(&connector, &cmd, KEY).await));
    on_capture(
        &mock,
        Reply::json(
            201,
            r#"{"status":"COMPLETED","amount":{"currency_code":"USD","value":"1.234"}}"#,
        ),
    );
    assert!(is_unknown(&capture(&connector, &cmd, KEY).await));
    Ok(())
}

#[tokio::test]
async fn a_429_is_rate_limited_with_its_retry_after() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    let throttled =
        Reply::json(429, error_body("RATE_LIMIT_REACHED", None)).header("retry-after", "30");
    on_capture(&mock, throttled);
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;

    let (rejection, failure, retry_after) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::RateLimited);
    assert_eq!(failure.code, "RATE_LIMIT_REACHED");
    assert_eq!(retry_after, Some(Duration::from_secs(30)));
    // Longer than the transport waits: handed back at once rather than retried.
    assert_eq!(mock.seen(CAPTURE_PATH).len(), 1);
    Ok(())
}

#[tokio::test]
async fn refused_credentials_are_unauthorized_before_any_capture() -> TestResult {
    let mock = mock_paypal().await?;
    let base = mock.url();
    mock.reply(
        Method::POST,
        TOKEN_PATH,
        Reply::json(
            401,
            r#"{"error":"invalid_client","error_description":"Client Authentication failed"}"#,
        ),
    );
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::Unauthorized);
    assert_eq!(failure.code, "invalid_client");
    assert!(mock.seen(CAPTURE_PATH).is_empty());
    Ok(())
}

#[tokio::test]
async fn an_unreachable_paypal_is_an_unknown_outcome() -> TestResult {
    let result = capture_at_unreachable(connector, &command(parts(None)?)?, KEY).await?;
    assert!(is_unknown(&result), "{result:?}");
    Ok(())
}

#[test]
fn an_authorization_id_of_dots_alone_never_reaches_the_connector() -> Result<(), String> {
    let connector = connector("http://127.0.0.1:9");
    assert!(connector
        .check(&command(parts(Some(domain_money("JPY", "1000")?))?)?)
        .is_empty());
    // The edge refuses it, so no connector repeats the rule.
    for dots in [".", "..", "..."] {
        assert!(AuthorizationId::parse(dots).is_err(), "{dots}");
    }
    assert_eq!(connector.provider(), Provider::Paypal);
    Ok(())
}

fn webhook_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("PAYPAL-AUTH-ALGO", "SHA256withRSA"),
        ("PAYPAL-CERT-URL", "https://api.paypal.com/v1/notifications/certs/CERT-360caa42"),
        ("PAYPAL-TRANSMISSION-ID", "dfb3be50-fd74-11e4-8bf3-77339302725b"),
        ("PAYPAL-TRANSMISSION-SIG", "thy4/U002quzxFavHPwbfJGcc46E8rc5jzgyeafWm5mICTBdY/8rl7WJpn8JA0GKA+oDTPsSruqusw+XXg5RLAP7ip53Euh9Xu3UbUhQFX7UgwzE2FeYoY6lyRMiiiQLzy9BvHfIzNIVhPad5KnC339dr6y2l8mOFcT7U0wW5jYXb+CiSE3TiHBa8ptqW6S8JM+prm1kEU1KKW6vAL2ckcMzIVGzv6Jh4wBEg2B8WZdH0wnt+5zPRq2DbNqUZpNL8FUKeBcxCzLBR2C+XO/pZYbcvnyNiJGKfXDj+thLFlKSrK4cuBEX1lELQJdlMlc6Mr1mTdTDuUdyQNUuyXfeg=="),
        ("PAYPAL-TRANSMISSION-TIME", "2015-05-18T15:45:13Z"),
    ] {
        if let Ok(value) = value.parse() {
            headers.insert(name, value);
        }
    }
    headers
}

#[tokio::test]
async fn a_webhook_is_verified_by_asking_paypal_with_the_headers_the_webhook_id_and_the_exact_event(
) -> TestResult {
    use capture_service::providers::webhook::{Delivery, Trust, WebhookError};
    let mock = mock_paypal().await?;
    mock.reply(
        Method::POST,
        "/v1/notifications/verify-webhook-signature",
        Reply::json(200, r#"{"verification_status":"SUCCESS"}"#),
    );
    let connector = connector(&mock.url());
    // Spacing kept: PayPal checks the signature over the event's bytes.
    let body = br#"{"id": "WH-2WR32451HC0233532-67976317FL4543714", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {"id": "2GG279541U471931P", "status": "COMPLETED"}}"#;
    let headers = webhook_headers();
    let trust = connector
        .verify_webhook(Delivery {
            headers: &headers,
            body,
        })
        .await?;
    assert_eq!(trust, Trust::Signed);
    let sent = mock
        .seen("/v1/notifications/verify-webhook-signature")
        .pop()
        .ok_or("no verification request")?;
    assert!(
        sent.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer token-")),
        "under the OAuth token"
    );
    let expected = format!(
        r#"{{"auth_algo":"SHA256withRSA","cert_url":"https://api.paypal.com/v1/notifications/certs/CERT-360caa42","transmission_id":"dfb3be50-fd74-11e4-8bf3-77339302725b","transmission_sig":"{}","transmission_time":"2015-05-18T15:45:13Z","webhook_id":"WH-CONFIGURED","webhook_event":{}}}"#,
        headers["PAYPAL-TRANSMISSION-SIG"].to_str()?,
        std::str::from_utf8(body)?
    );
    assert_eq!(sent.text(), expected);

    mock.reply(
        Method::POST,
        "/v1/notifications/verify-webhook-signature",
        Reply::json(200, r#"{"verification_status":"FAILURE"}"#),
    );
    let refused = connector
        .verify_webhook(Delivery {
            headers: &headers,
            body,
        })
        .await;
    assert!(
        matches!(refused, Err(WebhookError::Unauthenticated(_))),
        "{refused:?}"
    );
    mock.reply(
        Method::POST,
        "/v1/notifications/verify-webhook-signature",
        Reply::empty(503),
    );
    let unavailable = connector
        .verify_webhook(Delivery {
            headers: &headers,
            body,
        })
        .await;
    assert!(
        matches!(unavailable, Err(WebhookError::VerifierUnavailable(_))),
        "{unavailable:?}"
    );
    Ok(())
}

mod release;
