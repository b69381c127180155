//! The Cybersource connector against a local mock of Cybersource's REST API: the exact signed
//! request on the wire (the HTTP Signature recomputed from what the mock recorded), the
//! documented answers and the documented errors.

use std::error::Error;
use std::time::{Duration, SystemTime};

use axum::http::Method;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::connector_fixtures::{
    capture, capture_numbered, command, domain_money, fast_http, is_unknown, processing_record,
    refusal, start_mock, unreachable_base_url,
};
use crate::common::mock_provider::{MockProvider, Reply, SeenRequest};
use capture_service::config::Secret;
use capture_service::domain::capture::{
    AuthorizationId, CaptureParts, DisbursementMode, Metadata, PlatformFee, Reference,
    SoftDescriptor,
};
use capture_service::domain::record::now_micros;
use capture_service::domain::{CaptureCommand, CaptureStatus, Money, Provider};
use capture_service::providers::cybersource::CybersourceAccount;
use capture_service::providers::cybersource::CybersourceConnector;
use capture_service::providers::http::ProviderHttp;
use capture_service::providers::{Connector, Rejection};

type TestResult = Result<(), Box<dyn Error + Send + Sync>>;

const AUTH_ID: &str = "6481692924466004003001";
const CAPTURE_PATH: &str = "/pts/v2/payments/6481692924466004003001/captures";
const CAPTURE_ID: &str = "cap_01J0000000000000000000000A";
const MERCHANT: &str = "testrest";
const KEY_ID: &str = "08c94330-f618-42a3-b09d-e1e43be5efda";
const SECRET: &str = "yBJxy6LjM2TmcPGu+GaJrHtkke25fPpUX+UY6/L/1tE=";
const CORRELATION: &str = "3a1b2c3d-0000-4000-8000-1234567890ab";

/// Checks the HTTP Signature as Cybersource would, written from providers.md alone.
fn assert_signed(request: &SeenRequest, host: &str) -> Result<(), Box<dyn Error + Send + Sync>> {
    let post = request.method == Method::POST;
    let date = request.header("date").ok_or("no Date")?;
    let sent = httpdate::parse_http_date(date)?;
    let age = SystemTime::now().duration_since(sent).unwrap_or_default();
    assert!(age < Duration::from_secs(60), "Date is now: {date}");
    assert_eq!(request.header("host"), Some(host));
    assert_eq!(request.headers.get_all("host").iter().count(), 1);
    assert_eq!(request.header("v-c-merchant-id"), Some(MERCHANT));
    let mut lines = vec![
        format!("host: {host}"),
        format!("date: {date}"),
        format!(
            "request-target: {} {}",
            if post { "post" } else { "get" },
            request.path
        ),
    ];
    let signed = if post {
        let digest = format!("SHA-256={}", BASE64.encode(Sha256::digest(&request.body)));
        assert_eq!(request.header("digest"), Some(digest.as_str()));
        lines.push(format!("digest: {digest}"));
        "host date request-target digest v-c-merchant-id"
    } else {
        assert_eq!(request.header("digest"), None);
        "host date request-target v-c-merchant-id"
    };
    lines.push(format!("v-c-merchant-id: {MERCHANT}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(&BASE64.decode(SECRET)?)?;
    mac.update(lines.join("\n").as_bytes());
    let signature = BASE64.encode(mac.finalize().into_bytes());
    assert_eq!(
        request.header("signature"),
        Some(
            format!(
                r#"keyid="{KEY_ID}", algorithm="HmacSHA256", headers="{signed}", signature="{signature}""#
            )
            .as_str()
        )
    );
    Ok(())
}

/// A scripted answer as Cybersource sends it: HAL JSON with a correlation id.
fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply::text(status, body)
        .header("content-type", "application/hal+json")
        .header("v-c-correlation-id", CORRELATION)
}

/// A local Cybersource: records every request and answers from its script (502 when empty).
async fn mock_cybersource() -> Result<MockProvider, std::io::Error> {
    start_mock(reply(502, "")).await
}

fn account(base_url: &str, secret: &str) -> CybersourceAccount {
    CybersourceAccount {
        name: "default".to_owned(),
        base_url: base_url.to_owned(),
        merchant_id: MERCHANT.to_owned(),
        key_id: KEY_ID.to_owned(),
        shared_secret: Secret::new(secret),
        search_grace_seconds: CybersourceAccount::DEFAULT_SEARCH_GRACE_SECONDS,
    }
}

fn connector_with(base_url: &str, timeout: Duration) -> CybersourceConnector {
    CybersourceConnector::new(&account(base_url, SECRET), fast_http(timeout))
}

fn connector(base_url: &str) -> CybersourceConnector {
    connector_with(base_url, Duration::from_secs(5))
}

/// A capture of the Cybersource authorization with only the amount set.
fn parts(amount: Option<Money>) -> Result<CaptureParts, String> {
    crate::common::connector_fixtures::parts(Provider::Cybersource, AUTH_ID, amount)
}

/// A 201 as Cybersource documents it.
fn created(status: &str, value: &str, currency: &str) -> String {
    json!({
        "_links": {
            "void": {"method": "POST", "href": "/pts/v2/captures/6482345928116004003002/voids"},
            "self": {"method": "GET", "href": "/pts/v2/captures/6482345928116004003002"}
        },
        "clientReferenceInformation": {"code": CAPTURE_ID},
        "id": "6482345928116004003002",
        "orderInformation": {"amountDetails": {"totalAmount": value, "currency": currency}},
        "processorInformation": {"transactionId": "016153570198200"},
        "reconciliationId": "67332361D2UTBJLP",
        "status": status,
        "submitTimeUtc": "2024-05-21T10:00:00Z"
    })
    .to_string()
}

/// A 400 `INVALID_REQUEST` body, with one `details[]` entry when `field` is given.
fn invalid_request(reason: &str, field: Option<&str>) -> String {
    let mut body = json!({"submitTimeUtc": "2024-05-21T10:00:00Z", "status": "INVALID_REQUEST",
        "reason": reason, "message": format!("Declined - {reason}")});
    if let Some(field) = field {
        body["details"] = json!([{"field": field, "reason": "INVALID_DATA"}]);
    }
    body.to_string()
}

fn server_error(reason: &str) -> String {
    json!({"submitTimeUtc": "2024-05-21T10:00:00Z", "status": "SERVER_ERROR",
        "reason": reason, "message": "Error - General system failure."})
    .to_string()
}

#[tokio::test]
async fn a_capture_is_signed_and_sends_every_documented_field() -> TestResult {
    let mock = mock_cybersource().await?;
    let (base, host) = (mock.url(), mock.host());
    mock.reply_any(reply(201, created("PENDING", "100.00", "USD")));
    let mut p = parts(Some(domain_money("USD", "100.00")?))?;
    p.final_capture = true;
    p.reference = Some(Reference::parse("order-42")?);
    p.soft_descriptor = Some(SoftDescriptor::parse("SHOP*ORDER42")?);
    p.metadata = Metadata::parse([("channel".to_owned(), "web".to_owned())])
        .map_err(|e| format!("{e:?}"))?;
    let outcome = capture(&connector(&base), &command(p)?, CAPTURE_ID).await?;

    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, CAPTURE_PATH);
    assert_signed(request, &host)?;
    assert_eq!(
        request.header("content-type"),
        Some("application/json;charset=utf-8")
    );
    assert_eq!(
        request.header("accept"),
        Some("application/hal+json;charset=utf-8")
    );
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.header_names(),
        [
            "accept",
            "content-length",
            "content-type",
            "date",
            "digest",
            "host",
            "signature",
            "v-c-merchant-id"
        ]
    );
    assert_eq!(
        request.json()?,
        json!({
            "clientReferenceInformation": {"code": CAPTURE_ID},
            "processingInformation": {"captureOptions": {
                "captureSequenceNumber": 1, "totalCaptureCount": 1, "isFinal": "true"}},
            "orderInformation": {"amountDetails": {"totalAmount": "100.00", "currency": "USD"}},
            "merchantInformation": {"merchantDescriptor": {"name": "SHOP*ORDER42"}},
            "merchantDefinedInformation": [
                {"key": "reference", "value": "order-42"},
                {"key": "channel", "value": "web"}
            ]
        })
    );

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "PENDING");
    assert_eq!(outcome.reason, None);
    assert_eq!(
        outcome.provider_capture_id.as_deref(),
        Some("6482345928116004003002")
    );
    assert_eq!(
        outcome.captured_amount,
        Some(domain_money("USD", "100.00")?)
    );
    assert_eq!(outcome.breakdown, None);
    let body = outcome.redacted_body.ok_or("no body")?;
    assert_eq!(body["reconciliationId"], "67332361D2UTBJLP");
    assert!(!body.to_string().contains(SECRET));
    Ok(())
}

#[tokio::test]
async fn amounts_are_major_unit_strings_with_the_currencys_decimals() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    let connector = connector(&base);
    let cases = [
        ("USD", "0.01"),
        ("USD", "99999999999.99"),
        ("JPY", "1000"),
        ("TND", "123.456"),
        ("BHD", "1.230"),
    ];
    for (currency, value) in cases {
        mock.reply_any(reply(201, created("PENDING", value, currency)));
        let outcome = capture(
            &connector,
            &command(parts(Some(domain_money(currency, value)?))?)?,
            CAPTURE_ID,
        )
        .await?;
        assert_eq!(
            outcome.captured_amount,
            Some(domain_money(currency, value)?)
        );
    }
    let sent: Vec<(String, String)> = mock
        .requests()
        .iter()
        .map(|s| -> Result<(String, String), serde_json::Error> {
            let body = s.json()?;
            let details = &body["orderInformation"]["amountDetails"];
            Ok((
                details["totalAmount"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                details["currency"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect::<Result<_, _>>()?;
    let expected: Vec<(String, String)> = cases
        .iter()
        .map(|(c, v)| (v.to_string(), c.to_string()))
        .collect();
    assert_eq!(sent, expected);
    Ok(())
}

#[tokio::test]
async fn a_partial_capture_says_it_is_one_of_at_least_two_and_sends_nothing_unset() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    mock.reply_any(reply(201, created("PENDING", "10.00", "EUR")));
    capture(
        &connector(&base),
        &command(parts(Some(domain_money("EUR", "10.00")?))?)?,
        CAPTURE_ID,
    )
    .await?;
    assert_eq!(
        mock.requests().first().ok_or("no request")?.json()?,
        json!({
            "clientReferenceInformation": {"code": CAPTURE_ID},
            "processingInformation": {"captureOptions": {
                "captureSequenceNumber": 1, "totalCaptureCount": 2}},
            "orderInformation": {"amountDetails": {"totalAmount": "10.00", "currency": "EUR"}}
        })
    );
    Ok(())
}

#[tokio::test]
async fn captures_are_numbered_in_sequence_and_the_final_one_closes_the_count() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    mock.default_reply(reply(201, created("PENDING", "10.00", "EUR")));
    let partial = command(parts(Some(domain_money("EUR", "10.00")?))?)?;
    let mut last = parts(Some(domain_money("EUR", "10.00")?))?;
    last.final_capture = true;
    let last = command(last)?;
    // (command, sequence) → (captureSequenceNumber, totalCaptureCount, isFinal)
    let cases = [
        (
            &partial,
            3,
            json!({"captureSequenceNumber": 3, "totalCaptureCount": 4}),
        ),
        (
            &last,
            3,
            json!({"captureSequenceNumber": 3, "totalCaptureCount": 3, "isFinal": "true"}),
        ),
        (
            &partial,
            98,
            json!({"captureSequenceNumber": 98, "totalCaptureCount": 99}),
        ),
        (
            &last,
            99,
            json!({"captureSequenceNumber": 99, "totalCaptureCount": 99, "isFinal": "true"}),
        ),
    ];
    for (command, sequence, _) in &cases {
        capture_numbered(&connector(&base), command, CAPTURE_ID, *sequence).await?;
    }
    let sent: Vec<serde_json::Value> = mock
        .requests()
        .iter()
        .map(|r| {
            r.json()
                .map(|body| body["processingInformation"]["captureOptions"].clone())
        })
        .collect::<Result<_, _>>()?;
    let expected: Vec<serde_json::Value> = cases.into_iter().map(|(_, _, o)| o).collect();
    assert_eq!(sent, expected);
    Ok(())
}

#[tokio::test]
async fn a_capture_past_the_ninety_ninth_is_refused_unsent() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    mock.reply_any(reply(201, created("PENDING", "10.00", "EUR")));
    let partial = command(parts(Some(domain_money("EUR", "10.00")?))?)?;
    // A 99th that leaves the authorization open would announce a 100th.
    for sequence in [99, 100] {
        let result = capture_numbered(&connector(&base), &partial, CAPTURE_ID, sequence).await;
        let (rejection, failure, _) = refusal(result).ok_or("not refused")?;
        assert_eq!(rejection, Rejection::FailedPrecondition);
        assert_eq!(failure.code, "TOO_MANY_CAPTURES");
    }
    assert!(mock.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn without_an_amount_the_authorized_amount_is_captured_as_final() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    mock.reply_any(reply(201, created("PENDING", "1500", "JPY")));
    let mut p = parts(None)?;
    p.authorized_amount = Some(domain_money("JPY", "1500")?);
    capture(&connector(&base), &command(p)?, CAPTURE_ID).await?;
    let body = mock.requests().first().ok_or("no request")?.json()?;
    assert_eq!(
        body["orderInformation"]["amountDetails"],
        json!({"totalAmount": "1500", "currency": "JPY"})
    );
    assert_eq!(
        body["processingInformation"],
        json!({"captureOptions": {
            "captureSequenceNumber": 1, "totalCaptureCount": 1, "isFinal": "true"}})
    );
    Ok(())
}

#[tokio::test]
async fn check_refuses_what_cybersource_cannot_express() -> TestResult {
    let connector = connector("http://127.0.0.1:9");
    let fields = |command: &CaptureCommand| -> Vec<String> {
        connector
            .check(command)
            .into_iter()
            .map(|v| v.field)
            .collect()
    };
    assert_eq!(fields(&command(parts(None)?)?), ["amount"]);
    assert!(fields(&command(parts(Some(domain_money("USD", "1.00")?))?)?).is_empty());

    // Beyond what the edge accepts (15 digits), so built from minor units: the connector still
    // guards Cybersource's own 19-character limit.
    let usd = capture_service::domain::Currency::from_code("USD").ok_or("USD")?;
    let huge = capture_service::domain::Money::from_minor_units(usd, 1_000_000_000_000_000_000);
    let mut p = parts(Some(huge))?;
    p.platform_fees = vec![PlatformFee {
        amount: domain_money("USD", "1.00")?,
        payee: None,
    }];
    p.disbursement_mode = Some(DisbursementMode::Instant);
    p.reference = Some(Reference::parse("order-1")?);
    p.metadata = Metadata::parse([
        ("long".to_owned(), "x".repeat(256)),
        ("reference".to_owned(), "clash".to_owned()),
    ])
    .map_err(|e| format!("{e:?}"))?;
    assert_eq!(
        fields(&command(p)?),
        [
            "amount.value",
            "platform_fees",
            "disbursement_mode",
            "metadata[long]",
            "metadata[reference]"
        ]
    );

    // An id of dots alone never reaches a connector: the edge refuses it.
    assert!(AuthorizationId::parse("..").is_err());
    Ok(())
}

#[tokio::test]
async fn a_lookup_is_a_signed_get_without_digest_and_reads_the_capture() -> TestResult {
    let mock = mock_cybersource().await?;
    let (base, host) = (mock.url(), mock.host());
    mock.reply_any(reply(200, created("TRANSMITTED", "5.00", "USD")));
    let connector = connector(&base);
    let record = processing_record(
        command(parts(Some(domain_money("USD", "5.00")?))?)?,
        CAPTURE_ID,
        Some("6482345928116004003002"),
    );
    let outcome = connector.fetch_outcome(&record).await?;
    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "TRANSMITTED");

    let seen = mock.requests();
    let request = seen.first().ok_or("no request")?;
    assert_eq!(request.method, Method::GET);
    assert_eq!(request.path, "/pts/v2/captures/6482345928116004003002");
    assert_signed(request, &host)?;
    assert!(request.body.is_empty());
    assert_eq!(request.header("content-type"), None);
    Ok(())
}

const SEARCH_PATH: &str = "/tss/v2/searches";

/// A Transaction Search answer with one summary per `(code, Cybersource id, rFlag)`.
fn search_answer(found: &[(&str, &str, &str)]) -> String {
    let summaries: Vec<serde_json::Value> = found
        .iter()
        .map(|(code, id, flag)| {
            json!({
                "id": id,
                "clientReferenceInformation": {"code": code},
                "applicationInformation": {"applications": [
                    {"name": "ics_bill", "rCode": if *flag == "SOK" { "1" } else { "0" }, "rFlag": flag}
                ]},
            })
        })
        .collect();
    json!({"searchId": "s1", "count": found.len(), "totalCount": found.len(),
           "_embedded": {"transactionSummaries": summaries}})
    .to_string()
}

#[tokio::test]
async fn without_cybersources_id_the_capture_is_found_by_transaction_search_and_read() -> TestResult
{
    let mock = mock_cybersource().await?;
    let (base, host) = (mock.url(), mock.host());
    mock.reply(
        Method::POST,
        SEARCH_PATH,
        reply(
            201,
            search_answer(&[
                ("cap_someone_else", "1111111111111111111111", "SOK"),
                (CAPTURE_ID, "6482345928116004003002", "SOK"),
            ]),
        ),
    );
    mock.reply(
        Method::GET,
        "/pts/v2/captures/6482345928116004003002",
        reply(200, created("TRANSMITTED", "5.00", "USD")),
    );
    let record = processing_record(
        command(parts(Some(domain_money("USD", "5.00")?))?)?,
        CAPTURE_ID,
        None,
    );
    let outcome = connector(&base).fetch_outcome(&record).await?;
    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "TRANSMITTED");

    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    let search = &seen[0];
    assert_eq!(
        (&search.method, search.path.as_str()),
        (&Method::POST, SEARCH_PATH)
    );
    assert_signed(search, &host)?;
    assert_eq!(
        search.json()?,
        json!({
            "save": false,
            "name": "capture-service reconciliation",
            "timezone": "UTC",
            "query": format!("clientReferenceInformation.code:{CAPTURE_ID}"),
            "offset": 0,
            "limit": 10,
            "sort": "id:asc,submitTimeUtc:asc",
        })
    );
    assert_eq!(seen[1].path, "/pts/v2/captures/6482345928116004003002");
    Ok(())
}

#[tokio::test]
async fn not_found_within_the_grace_period_the_outcome_stays_unknown_and_nothing_is_sent_again(
) -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    // A refused capture under our code is not a capture taken.
    mock.default_reply(reply(
        201,
        search_answer(&[(CAPTURE_ID, "6482345928116004003002", "DREJECT")]),
    ));
    let mut record = processing_record(
        command(parts(Some(domain_money("USD", "5.00")?))?)?,
        CAPTURE_ID,
        None,
    );
    record.create_time = now_micros();
    let result = connector(&base).fetch_outcome(&record).await;
    assert!(is_unknown(&result), "{result:?}");
    let paths: Vec<String> = mock.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, [SEARCH_PATH]);
    Ok(())
}

#[tokio::test]
async fn not_found_past_the_grace_period_the_capture_is_sent_again_with_its_code_and_number(
) -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    mock.reply(Method::POST, SEARCH_PATH, reply(201, search_answer(&[])));
    mock.reply(
        Method::POST,
        CAPTURE_PATH,
        reply(201, created("PENDING", "5.00", "USD")),
    );
    let mut record = processing_record(
        command(parts(Some(domain_money("USD", "5.00")?))?)?,
        CAPTURE_ID,
        None,
    );
    record.capture_sequence = 2;
    // First recorded longer ago than the grace period (the default, ten minutes).
    record.create_time = now_micros() - 601_000_000;
    let outcome = connector(&base).fetch_outcome(&record).await?;
    assert_eq!(outcome.status, CaptureStatus::Completed);
    let seen = mock.requests();
    let paths: Vec<&str> = seen.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, [SEARCH_PATH, CAPTURE_PATH]);
    let resent = seen[1].json()?;
    assert_eq!(resent["clientReferenceInformation"]["code"], CAPTURE_ID);
    assert_eq!(
        resent["processingInformation"]["captureOptions"],
        json!({"captureSequenceNumber": 2, "totalCaptureCount": 3})
    );
    Ok(())
}

#[tokio::test]
async fn authorization_state_refusals_are_failed_preconditions_with_the_reason_kept() -> TestResult
{
    let mock = mock_cybersource().await?;
    let base = mock.url();
    let connector = connector(&base);
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    let cases = [
        ("EXCEEDS_AUTH_AMOUNT", None),
        ("AUTH_ALREADY_REVERSED", None),
        ("TRANSACTION_ALREADY_SETTLED", None),
        ("TRANSACTION_ALREADY_REVERSED_OR_SETTLED", None),
        (
            "INVALID_DATA",
            Some("orderInformation.amountDetails.currency"),
        ),
    ];
    for (reason, field) in cases {
        mock.reply_any(reply(400, invalid_request(reason, field)));
        let (rejection, failure, _) =
            refusal(capture(&connector, &command, CAPTURE_ID).await).ok_or("expected a refusal")?;
        assert_eq!(rejection, Rejection::FailedPrecondition, "{reason}");
        assert_eq!(failure.code, reason);
        assert_eq!(failure.http_status, 400);
        assert_eq!(failure.debug_id.as_deref(), Some(CORRELATION));
        assert!(failure.message.starts_with(&format!("Declined - {reason}")));
    }
    Ok(())
}

#[tokio::test]
async fn invalid_requests_are_invalid_arguments_naming_the_field() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    let connector = connector(&base);
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    for reason in [
        "MISSING_FIELD",
        "INVALID_DATA",
        "INVALID_AMOUNT",
        "NOT_SUPPORTED",
        "A_REASON_NOT_DOCUMENTED",
    ] {
        let field = "orderInformation.amountDetails.totalAmount";
        mock.reply_any(reply(400, invalid_request(reason, Some(field))));
        let (rejection, failure, _) =
            refusal(capture(&connector, &command, CAPTURE_ID).await).ok_or("expected a refusal")?;
        assert_eq!(rejection, Rejection::InvalidArgument, "{reason}");
        assert_eq!(failure.code, reason);
        assert!(failure
            .message
            .ends_with("[orderInformation.amountDetails.totalAmount: INVALID_DATA]"));
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_authorization_is_not_found() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    mock.reply_any(reply(400, invalid_request("MISSING_AUTH", None)));
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    let (rejection, failure, _) = refusal(capture(&connector(&base), &command, CAPTURE_ID).await)
        .ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::NotFound);
    assert_eq!(failure.code, "MISSING_AUTH");
    Ok(())
}

#[tokio::test]
async fn a_duplicate_request_is_an_unknown_outcome_not_a_failure() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    mock.reply_any(reply(400, invalid_request("DUPLICATE_REQUEST", None)));
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    let result = capture(&connector(&base), &command, CAPTURE_ID).await;
    assert!(is_unknown(&result), "{result:?}");
    Ok(())
}

#[tokio::test]
async fn configuration_refusals_are_unauthorized() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    let connector = connector(&base);
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    let replies = [
        (
            reply(400, invalid_request("INVALID_MERCHANT_CONFIGURATION", None)),
            "INVALID_MERCHANT_CONFIGURATION",
        ),
        (
            reply(401, r#"{"response":{"rmsg":"Authentication Failed"}}"#),
            "HTTP_401",
        ),
        (
            reply(502, server_error("INVALID_OR_MISSING_CONFIG")),
            "INVALID_OR_MISSING_CONFIG",
        ),
    ];
    for (answer, code) in replies {
        mock.reply_any(answer);
        let (rejection, failure, _) =
            refusal(capture(&connector, &command, CAPTURE_ID).await).ok_or("expected a refusal")?;
        assert_eq!(rejection, Rejection::Unauthorized, "{code}");
        assert_eq!(failure.code, code);
        assert!(!failure.message.contains(SECRET));
    }
    let (_, failure, _) = {
        mock.reply_any(reply(
            401,
            r#"{"response":{"rmsg":"Authentication Failed"}}"#,
        ));
        refusal(capture(&connector, &command, CAPTURE_ID).await).ok_or("expected a refusal")?
    };
    assert_eq!(failure.message, "Authentication Failed");
    Ok(())
}

#[tokio::test]
async fn a_502_is_an_unknown_outcome_and_never_resent() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    let connector = connector(&base);
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    for reason in ["SYSTEM_ERROR", "SERVER_TIMEOUT", "SERVICE_TIMEOUT"] {
        mock.reply_any(reply(502, server_error(reason)));
        let result = capture(&connector, &command, CAPTURE_ID).await;
        assert!(is_unknown(&result), "{reason}: {result:?}");
    }
    mock.reply_any(reply(503, "<html>Service Unavailable</html>"));
    assert!(is_unknown(&capture(&connector, &command, CAPTURE_ID).await));
    // Cybersource has no idempotency key: one request per capture, whatever the answer.
    assert_eq!(mock.requests().len(), 4);
    Ok(())
}

#[tokio::test]
async fn a_timeout_is_an_unknown_outcome_and_never_resent() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    mock.reply_any(reply(201, created("PENDING", "5.00", "USD")).after(Duration::from_secs(3)));
    let connector = connector_with(&base, Duration::from_millis(300));
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    let result = capture(&connector, &command, CAPTURE_ID).await;
    assert!(is_unknown(&result), "{result:?}");
    assert_eq!(mock.requests().len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_malformed_or_undocumented_201_is_an_unknown_outcome() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    let connector = connector(&base);
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    mock.reply_any(reply(201, "<html><body>Bad Gateway</body>"));
    assert!(is_unknown(&capture(&connector, &command, CAPTURE_ID).await));
    mock.reply_any(reply(201, created("SETTLED_SOMEHOW", "5.00", "USD")));
    assert!(is_unknown(&capture(&connector, &command, CAPTURE_ID).await));
    mock.reply_any(reply(200, created("PENDING", "5.00", "USD")));
    assert!(is_unknown(&capture(&connector, &command, CAPTURE_ID).await));
    Ok(())
}

#[tokio::test]
async fn a_429_is_rate_limited_with_its_retry_after() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    mock.reply_any(reply(429, "").header("retry-after", "30"));
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    let (rejection, failure, retry_after) =
        refusal(capture(&connector(&base), &command, CAPTURE_ID).await)
            .ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::RateLimited);
    assert_eq!(failure.code, "HTTP_429");
    assert_eq!(retry_after, Some(Duration::from_secs(30)));
    Ok(())
}

#[tokio::test]
async fn a_secret_that_is_not_base64_is_refused_before_anything_is_sent() -> TestResult {
    let mock = mock_cybersource().await?;
    let base = mock.url();
    let http = ProviderHttp::new(Duration::from_secs(5), 0)?;
    let connector = CybersourceConnector::new(&account(&base, "not base64!"), http);
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    let (rejection, failure, _) =
        refusal(capture(&connector, &command, CAPTURE_ID).await).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::Unauthorized);
    assert_eq!(failure.code, "INVALID_SHARED_SECRET");
    assert!(!failure.message.contains("not base64!"));
    assert!(mock.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn an_unreachable_cybersource_is_an_unknown_outcome() -> TestResult {
    let connector = connector(&unreachable_base_url().await?);
    let command = command(parts(Some(domain_money("USD", "5.00")?))?)?;
    assert!(is_unknown(&capture(&connector, &command, CAPTURE_ID).await));
    Ok(())
}

mod release;
