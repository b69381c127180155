//! The PaymentOptions connector against a local mock of PaymentOptions' HTTP API: the exact
//! request on the wire, the documented answer, every documented refusal and response code, and
//! the full card number the answer carries never getting past the connector.

use std::error::Error;
use std::time::Duration;

use axum::http::Method;
use serde_json::{json, Value};

use crate::common::connector_fixtures::{
    capture, command, domain_money, fast_http, is_unknown, processing_record, refusal, start_mock,
};
use crate::common::mock_provider::{MockProvider, Reply};
use capture_service::config::Secret;
use capture_service::domain::capture::{
    AuthorizationId, CaptureParts, DisbursementMode, InvoiceId, Metadata, NoteToPayer, PlatformFee,
    Reference, SoftDescriptor,
};
use capture_service::domain::{CaptureStatus, Money, Provider, StatusReason};
use capture_service::providers::payment_options::PaymentOptionsAccount;
use capture_service::providers::payment_options::PaymentOptionsConnector;
use capture_service::providers::{Connector, ProviderError, Rejection};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

const CAPTURE_PATH: &str = "/api/v1/server-to-server-interface/capture";
const TRANSACTION_ID: &str = "e0b0731e-7170-4b64-8a21-7d835eebd641";
const KEY: &str = "cap_01test";
const BASIC_KEY: &str = "bWVyY2hhbnQ6c2VjcmV0LWJhc2ljLWtleQ==";
const API_KEY: &str = "x-api-key-0123456789";
const MERCHANT_ID: &str = "M123456789";
const PAN: &str = "5200000000001005";
const MASKED_PAN: &str = "520000******1005";

/// A local PaymentOptions: records every request and answers from its script (500 when the
/// script is empty).
async fn mock_payment_options() -> Result<MockProvider, std::io::Error> {
    start_mock(Reply::json(500, "")).await
}

fn account(base_url: &str, path_prefix: &str) -> PaymentOptionsAccount {
    PaymentOptionsAccount {
        name: "default".to_owned(),
        base_url: base_url.to_owned(),
        path_prefix: path_prefix.to_owned(),
        basic_key: Secret::new(BASIC_KEY),
        api_key: Secret::new(API_KEY),
        merchant_id: MERCHANT_ID.to_owned(),
    }
}

fn connector_with(base_url: &str, path_prefix: &str, timeout: Duration) -> PaymentOptionsConnector {
    PaymentOptionsConnector::new(&account(base_url, path_prefix), fast_http(timeout))
}

fn connector(base_url: &str) -> PaymentOptionsConnector {
    connector_with(base_url, "/api/v1", Duration::from_secs(5))
}

/// A capture of the PaymentOptions transaction with only the amount set.
fn parts(amount: Option<Money>) -> Result<CaptureParts, String> {
    crate::common::connector_fixtures::parts(Provider::PaymentOptions, TRANSACTION_ID, amount)
}

/// PaymentOptions' answer envelope (the documented success shape, seed 001), with the full card
/// number in it as PaymentOptions sends it.
fn answer_body(
    status_code: u16,
    response_code: Value,
    gateway: (&str, &str),
    amount: i64,
    currency: &str,
) -> String {
    json!({
        "success": response_code == json!(0),
        "status_code": status_code,
        "is_live": false,
        "transaction_type": "CAPTURE",
        "gateway_response": {"version": "1", "type": if response_code == json!(0) { "INFO" } else { "ERROR" },
            "message": gateway.1, "code": gateway.0},
        "merchant_details": {"legal_name": "Tink15 Factory", "mid": MERCHANT_ID,
            "merchant_txn_ref": "qwe"},
        "payment_details": {"amount": amount, "response_code": response_code,
            "auth_code": "264302", "currency": currency, "payment_method": "ECMC-SSL",
            "scheme": "MASTERCARD",
            "card": {"name": "John Doe", "number": PAN, "exp_month": "12", "exp_year": "24"},
            "additional_data": {"payment_data_source": {"type": "card"}}},
        "transaction_details": {"id": "9dfd39ec-eb4a-4f8b-a526-17abf140a717", "ref": 74819,
            "timestamp": "2024-11-25T08:41:15.000Z", "merchant_txn_ref": "qwe"}
    })
    .to_string()
}

fn captured(amount: i64, currency: &str) -> String {
    answer_body(
        201,
        json!(0),
        ("INFO0001", "Amount successfully captured."),
        amount,
        currency,
    )
}

fn error_body(status_code: u16, code: &str, message: &str) -> String {
    json!({"success": false, "status_code": status_code, "is_live": false,
        "transaction_type": "CAPTURE",
        "gateway_response": {"version": "1", "type": "ERROR", "message": message, "code": code}})
    .to_string()
}

#[tokio::test]
async fn a_capture_sends_exactly_the_documented_request_and_reads_the_documented_answer(
) -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    mock.reply_any(Reply::json(201, captured(1099, "USD")));
    let mut p = parts(Some(domain_money("USD", "10.99")?))?;
    p.note_to_payer = Some(NoteToPayer::parse("Capturing authorised amount")?);
    p.reference = Some(Reference::parse("order-42")?);
    p.metadata = Metadata::parse([("k".to_owned(), "v".to_owned())]).map_err(|e| e[0].1.clone())?;

    let outcome = capture(&connector(&base), &command(p)?, KEY).await?;

    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    let sent = &seen[0];
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.path, CAPTURE_PATH);
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Basic {BASIC_KEY}").as_str()),
        "the issued key, verbatim"
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
    assert_eq!(sent.header("accept"), Some("*/*"));
    // `notes` is the note to the payer; `reference` and `metadata` stay ours.
    assert_eq!(
        sent.json()?,
        json!({"transactionId": TRANSACTION_ID, "amount": 1099, "merchant_id": MERCHANT_ID,
               "notes": "Capturing authorised amount"})
    );

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.reason, None);
    assert_eq!(outcome.provider_status, "INFO0001");
    assert_eq!(
        outcome.provider_capture_id.as_deref(),
        Some("9dfd39ec-eb4a-4f8b-a526-17abf140a717")
    );
    assert_eq!(outcome.captured_amount, Some(domain_money("USD", "10.99")?));
    assert_eq!(outcome.breakdown, None, "PaymentOptions reports no fees");
    let processor = outcome
        .processor_response
        .clone()
        .ok_or("processor response")?;
    assert_eq!(processor.response_code.as_deref(), Some("0"));
    let body = outcome.redacted_body.clone().ok_or("redacted body")?;
    assert_eq!(body["payment_details"]["card"]["number"], MASKED_PAN);
    assert_eq!(body["gateway_response"]["code"], "INFO0001");
    assert!(!format!("{outcome:?}").contains(PAN));
    Ok(())
}

#[tokio::test]
async fn amounts_are_sent_as_integers_in_each_currencys_minor_unit() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cases = [
        ("USD", "10.99", 1099),
        ("JPY", "1000", 1000),
        ("TND", "1.234", 1234),
        ("BHD", "12.345", 12345),
        ("USD", "99999999.99", 9_999_999_999),
    ];
    for (currency, value, minor) in cases {
        mock.reply_any(Reply::json(201, captured(minor, currency)));
        let outcome = capture(
            &connector,
            &command(parts(Some(domain_money(currency, value)?))?)?,
            KEY,
        )
        .await?;
        assert_eq!(
            outcome.captured_amount,
            Some(domain_money(currency, value)?),
            "{currency}"
        );
    }
    let sent: Vec<Value> = mock
        .requests()
        .iter()
        .map(|s| s.json().map(|b| b["amount"].clone()))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        sent,
        [
            json!(1099),
            json!(1000),
            json!(1234),
            json!(12345),
            json!(9_999_999_999_i64)
        ]
    );
    // No notes when there is nothing to say.
    assert!(mock.requests()[0].json()?.get("notes").is_none());
    Ok(())
}

#[tokio::test]
async fn what_payment_options_cannot_express_is_refused_by_check_naming_the_field() -> TestResult {
    let connector = connector("http://127.0.0.1:9");
    let fields = |p: CaptureParts| -> Result<Vec<String>, String> {
        Ok(connector
            .check(&command(p)?)
            .into_iter()
            .map(|v| v.field)
            .collect())
    };
    assert!(fields(parts(Some(domain_money("USD", "99999999.99")?))?)?.is_empty());
    assert_eq!(fields(parts(None)?)?, ["amount"]);
    assert_eq!(
        fields(parts(Some(domain_money("USD", "100000000.00")?))?)?,
        ["amount.value"]
    );
    assert_eq!(
        fields(parts(Some(domain_money("BHD", "10000000.000")?))?)?,
        ["amount.value"]
    );
    assert!(fields(parts(Some(domain_money("JPY", "9999999999")?))?)?.is_empty());

    let mut long_id = parts(Some(domain_money("USD", "1")?))?;
    long_id.authorization_id = AuthorizationId::parse(&"a".repeat(37))?;
    assert_eq!(fields(long_id)?, ["authorization_id"]);

    let mut long_note = parts(Some(domain_money("USD", "1")?))?;
    long_note.note_to_payer = Some(NoteToPayer::parse(&"n".repeat(129))?);
    assert_eq!(fields(long_note)?, ["note_to_payer"]);
    let mut note_128 = parts(Some(domain_money("USD", "1")?))?;
    note_128.note_to_payer = Some(NoteToPayer::parse(&"n".repeat(128))?);
    assert!(fields(note_128)?.is_empty());

    let mut unexpressible = parts(Some(domain_money("USD", "10")?))?;
    unexpressible.invoice_id = Some(InvoiceId::parse("INV-1")?);
    unexpressible.soft_descriptor = Some(SoftDescriptor::parse("SHOP")?);
    unexpressible.platform_fees = vec![PlatformFee {
        amount: domain_money("USD", "1")?,
        payee: None,
    }];
    unexpressible.disbursement_mode = Some(DisbursementMode::Instant);
    assert_eq!(
        fields(unexpressible)?,
        [
            "invoice_id",
            "soft_descriptor",
            "platform_fees",
            "disbursement_mode"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_capture_without_an_amount_is_never_sent() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    let result = capture(&connector(&base), &command(parts(None)?)?, KEY).await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::InvalidArgument);
    assert_eq!(
        (failure.code.as_str(), failure.http_status),
        ("AMOUNT_REQUIRED", 0)
    );
    assert!(mock.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn the_path_prefix_is_configurable_for_the_doubled_published_path() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    let cmd = command(parts(Some(domain_money("JPY", "1000")?))?)?;
    for prefix in ["/api/v1/api/v1", ""] {
        mock.reply_any(Reply::json(201, captured(1000, "JPY")));
        let connector = connector_with(&format!("{base}/"), prefix, Duration::from_secs(5));
        capture(&connector, &cmd, KEY).await?;
    }
    let paths: Vec<String> = mock.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/api/v1/api/v1/server-to-server-interface/capture",
            "/server-to-server-interface/capture"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn issuer_declines_are_declined_captures_that_keep_the_response_code() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10.00")?))?)?;
    for (status, code, gateway) in [
        (400, json!(5), "ERR0005"),
        (201, json!(51), "ERR0051"),
        (412, json!("54"), "ERR0054"),
    ] {
        mock.reply_any(Reply::json(
            status,
            answer_body(status, code.clone(), (gateway, "Declined."), 1000, "USD"),
        ));
        let outcome = capture(&connector, &cmd, KEY).await?;
        let code = code
            .as_i64()
            .map_or_else(|| "54".to_owned(), |c| c.to_string());
        assert_eq!(outcome.status, CaptureStatus::Declined, "{code}");
        assert_eq!(outcome.reason, Some(StatusReason::Other));
        assert_eq!(outcome.provider_status, gateway);
        assert_eq!(outcome.provider_reason.as_deref(), Some(code.as_str()));
        assert_eq!(
            outcome
                .processor_response
                .as_ref()
                .and_then(|p| p.response_code.as_deref()),
            Some(code.as_str())
        );
        assert_eq!(outcome.captured_amount, None, "nothing was captured");
        assert!(!format!("{outcome:?}").contains(PAN));
    }
    Ok(())
}

#[tokio::test]
async fn a_duplicate_or_a_gateway_error_leaves_the_outcome_unknown() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10.00")?))?)?;
    for (status, code) in [(400, 94), (201, 94), (400, -1), (201, -1)] {
        mock.reply_any(Reply::json(
            status,
            answer_body(status, json!(code), ("ERR", "Not processed."), 1000, "USD"),
        ));
        let result = capture(&connector, &cmd, KEY).await;
        match result {
            Err(ProviderError::OutcomeUnknown { detail, .. }) => {
                assert!(
                    detail.contains(&format!("response_code {code}")),
                    "{detail}"
                );
            }
            other => return Err(format!("{status}/{code}: expected unknown, got {other:?}").into()),
        }
    }
    Ok(())
}

#[tokio::test]
async fn refusals_map_by_status_and_keep_the_gateway_code() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10.00")?))?)?;
    let cases = [
        (
            400,
            error_body(400, "ERR1003", "amount is required."),
            Rejection::InvalidArgument,
            "ERR1003",
        ),
        (
            406,
            error_body(406, "ERR1008", "Merchant not acceptable."),
            Rejection::InvalidArgument,
            "ERR1008",
        ),
        (
            412,
            error_body(412, "ERR1004", "Exceeds the authorised amount."),
            Rejection::FailedPrecondition,
            "ERR1004",
        ),
        (
            401,
            error_body(401, "ERR1002", "Unauthorized."),
            Rejection::Unauthorized,
            "ERR1002",
        ),
        (
            403,
            json!({"message": "Forbidden"}).to_string(),
            Rejection::Unauthorized,
            "HTTP_403",
        ),
        (
            404,
            error_body(404, "ERR1001", "Transaction not found."),
            Rejection::NotFound,
            "ERR1001",
        ),
        // A refusal with the default response code 0 is decided by its status.
        (
            412,
            answer_body(412, json!(0), ("ERR1005", "Already captured."), 1000, "USD"),
            Rejection::FailedPrecondition,
            "ERR1005",
        ),
    ];
    for (status, body, expected, code) in cases {
        mock.reply_any(Reply::json(status, body));
        let (rejection, failure, _) =
            refusal(capture(&connector, &cmd, KEY).await).ok_or(format!("{status}: no refusal"))?;
        assert_eq!(rejection, expected, "{status}");
        assert_eq!((failure.code.as_str(), failure.http_status), (code, status));
        assert!(!failure.message.is_empty());
    }
    assert_eq!(mock.requests().len(), 7, "no refusal is sent twice");
    Ok(())
}

#[tokio::test]
async fn server_errors_and_unreadable_answers_are_unknown_and_never_resent() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10.00")?))?)?;
    let mut undocumented = serde_json::from_str::<Value>(&captured(1000, "USD"))?;
    undocumented["payment_details"]["response_code"] = json!(12);
    let mut no_code = serde_json::from_str::<Value>(&captured(1000, "USD"))?;
    no_code["payment_details"]
        .as_object_mut()
        .map(|p| p.remove("response_code"));
    let mut not_success = serde_json::from_str::<Value>(&captured(1000, "USD"))?;
    not_success["success"] = json!(false);
    let cases = [
        Reply::json(500, error_body(500, "ERR1500", "Internal server error.")),
        Reply::json(502, "<html>Bad Gateway</html>"),
        Reply::json(504, ""),
        Reply::json(201, "{\"success\": true, \"status_code\": 201, \"transac"),
        Reply::json(201, undocumented.to_string()),
        Reply::json(201, no_code.to_string()),
        Reply::json(201, not_success.to_string()),
        Reply::json(200, captured(1000, "USD")),
        Reply::json(302, ""),
    ];
    let count = cases.len();
    for (i, case) in cases.into_iter().enumerate() {
        mock.reply_any(case);
        let result = capture(&connector, &cmd, KEY).await;
        assert!(is_unknown(&result), "case {i}: {result:?}");
    }
    assert_eq!(mock.requests().len(), count, "each was sent exactly once");
    Ok(())
}

#[tokio::test]
async fn a_timeout_is_an_unknown_outcome_and_the_capture_is_not_resent() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    mock.reply_any(Reply::json(201, captured(1000, "USD")).after(Duration::from_secs(2)));
    let connector = connector_with(&base, "/api/v1", Duration::from_millis(300));
    let result = capture(
        &connector,
        &command(parts(Some(domain_money("USD", "10.00")?))?)?,
        KEY,
    )
    .await;
    assert!(is_unknown(&result), "{result:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        mock.requests().len(),
        1,
        "no idempotency key: a timeout is never retried"
    );
    Ok(())
}

#[tokio::test]
async fn no_outcome_error_or_failure_carries_the_full_card_number() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cmd = command(parts(Some(domain_money("USD", "10.00")?))?)?;
    let mut seen_text = Vec::new();
    for body in [
        answer_body(
            400,
            json!(5),
            ("ERR0005", &format!("Card {PAN} declined")),
            1000,
            "USD",
        ),
        answer_body(
            400,
            json!(94),
            ("ERR0094", &format!("Duplicate for {PAN}")),
            1000,
            "USD",
        ),
        error_body(412, "ERR1004", &format!("Card {PAN} cannot take more")),
    ] {
        let status = serde_json::from_str::<Value>(&body)?["status_code"]
            .as_u64()
            .unwrap_or(400) as u16;
        mock.reply_any(Reply::json(status, body));
        let result = capture(&connector, &cmd, KEY).await;
        seen_text.push(format!("{result:?}"));
        if let Err(e) = &result {
            seen_text.push(e.to_string());
        }
    }
    for text in &seen_text {
        assert!(!text.contains(PAN), "{text}");
    }
    assert!(seen_text.iter().any(|t| t.contains("520000******1005")));
    assert!(seen_text
        .iter()
        .all(|t| !t.contains(API_KEY) && !t.contains(BASIC_KEY)));
    Ok(())
}

#[tokio::test]
async fn fetch_outcome_says_payment_options_has_no_lookup() -> TestResult {
    let mock = mock_payment_options().await?;
    let base = mock.url();
    let record = processing_record(
        command(parts(Some(domain_money("USD", "10.00")?))?)?,
        KEY,
        None,
    );
    match connector(&base).fetch_outcome(&record).await {
        Err(ProviderError::OutcomeUnknown {
            provider, detail, ..
        }) => {
            assert_eq!(provider, Provider::PaymentOptions);
            assert!(detail.contains("no capture lookup"), "{detail}");
            assert!(detail.contains("cap_01test"), "{detail}");
        }
        other => return Err(format!("expected unknown, got {other:?}").into()),
    }
    assert!(mock.requests().is_empty(), "nothing is re-sent");
    Ok(())
}

mod release;
