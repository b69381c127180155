//! The sandbox's PayPal, driven over real HTTP as the PayPal connector drives PayPal.

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use capture_service::domain::Provider;
use capture_service::sandbox::{MoneyJson, NewAuthorization, Sandbox, Scenario};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::TestResult;

/// Its voids, and the rest released by a final capture.
mod releases;
/// Its webhooks: what is sent after each change, signed as the provider signs.
mod webhooks;

/// A started sandbox, an HTTP client and a PayPal access token, as the connector holds them.
struct PayPal {
    sandbox: Sandbox,
    http: reqwest::Client,
    base: String,
    token: String,
}

/// One answer to a capture: status, raw body and the body as JSON (`Null` if not JSON).
struct Answer {
    status: StatusCode,
    text: String,
    json: Value,
}

impl Answer {
    fn issue(&self) -> &Value {
        &self.json["details"][0]["issue"]
    }

    fn money(&self, pointer: &str) -> Option<(&str, &str)> {
        let money = self.json.pointer(pointer)?;
        Some((money["currency_code"].as_str()?, money["value"].as_str()?))
    }
}

impl PayPal {
    async fn start() -> Result<Self, Box<dyn Error>> {
        let sandbox = Sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let account = crate::common::sandbox_account::<
            capture_service::providers::paypal::PaypalAccount,
        >(&sandbox)?;
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{}/v1/oauth2/token", account.base_url))
            .basic_auth(&account.client_id, Some(account.client_secret.expose()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = answer["access_token"]
            .as_str()
            .ok_or("no token")?
            .to_owned();
        Ok(PayPal {
            base: account.base_url,
            sandbox,
            http,
            token,
        })
    }

    /// Authorizes `value` `currency` at the sandbox's PayPal; returns the authorization id.
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
            .create_authorization(Provider::Paypal, request)
            .await?
            .id)
    }

    /// Captures with the full representation and a fresh request id.
    async fn capture(&self, id: &str, body: Value) -> Result<Answer, Box<dyn Error>> {
        let request_id = format!("test-{}", rand_suffix());
        self.capture_with(id, Some(body), &request_id, Some("return=representation"))
            .await
    }

    async fn capture_with(
        &self,
        id: &str,
        body: Option<Value>,
        request_id: &str,
        prefer: Option<&str>,
    ) -> Result<Answer, Box<dyn Error>> {
        self.post_action(id, "capture", body, request_id, prefer)
            .await
    }

    /// `POST /v2/payments/authorizations/{id}/{action}` (`capture`, `void`) with the token.
    async fn post_action(
        &self,
        id: &str,
        action: &str,
        body: Option<Value>,
        request_id: &str,
        prefer: Option<&str>,
    ) -> Result<Answer, Box<dyn Error>> {
        let url = format!("{}/v2/payments/authorizations/{id}/{action}", self.base);
        let mut request = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .header("PayPal-Request-Id", request_id);
        if let Some(prefer) = prefer {
            request = request.header("Prefer", prefer);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, text, json })
    }
}

/// A unique enough suffix for request ids within one test.
fn rand_suffix() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    nanos + u128::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

fn usd(value: &str) -> Value {
    json!({"amount": {"currency_code": "USD", "value": value}})
}

#[tokio::test]
async fn a_token_is_issued_for_the_generated_credentials_and_refused_for_others() -> TestResult {
    let paypal = PayPal::start().await?;
    assert!(paypal.token.starts_with("A21AA"));
    let account = crate::common::sandbox_account::<
        capture_service::providers::paypal::PaypalAccount,
    >(&paypal.sandbox)?;
    assert_eq!(account.name, "default");
    assert_eq!(account.base_url, paypal.sandbox.base_url(Provider::Paypal));
    assert!(account.auth_assertion.is_none());

    let refused = paypal
        .http
        .post(format!("{}/v1/oauth2/token", paypal.base))
        .basic_auth(&account.client_id, Some("wrong"))
        .body("grant_type=client_credentials")
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await?;
    assert_eq!(body["error"], "invalid_client");

    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    let url = format!("{}/v2/payments/authorizations/{id}/capture", paypal.base);
    let anonymous = paypal.http.post(url).bearer_auth("made-up").send().await?;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await?;
    assert_eq!(body["name"], "AUTHENTICATION_FAILURE");
    Ok(())
}

#[tokio::test]
async fn a_capture_without_amount_takes_the_whole_authorization_with_its_breakdown() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    let body =
        json!({"invoice_id": "INV-1", "payment_instruction": {"disbursement_mode": "DELAYED"}});
    let answer = paypal.capture(&id, body).await?;
    assert_eq!(answer.status, StatusCode::CREATED);
    let capture = &answer.json;
    let capture_id = capture["id"].as_str().ok_or("no id")?;
    assert_eq!(capture_id.len(), 17);
    assert!(capture_id
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
    assert_eq!(capture["status"], "COMPLETED");
    assert_eq!(capture["final_capture"], true);
    assert_eq!(capture["invoice_id"], "INV-1");
    assert_eq!(capture["disbursement_mode"], "DELAYED");
    assert_eq!(answer.money("/amount"), Some(("USD", "10.00")));
    let breakdown = "/seller_receivable_breakdown";
    assert_eq!(
        answer.money(&format!("{breakdown}/gross_amount")),
        Some(("USD", "10.00"))
    );
    // 3.49 % of 10.00 + 0.49 = 0.839, rounded to 0.84.
    assert_eq!(
        answer.money(&format!("{breakdown}/paypal_fee")),
        Some(("USD", "0.84"))
    );
    assert_eq!(
        answer.money(&format!("{breakdown}/net_amount")),
        Some(("USD", "9.16"))
    );
    assert_eq!(
        capture["supplementary_data"]["related_ids"]["authorization_id"],
        id.as_str()
    );
    assert_eq!(capture["seller_protection"]["status"], "ELIGIBLE");
    assert_eq!(capture["processor_response"]["response_code"], "0000");
    let created = capture["create_time"].as_str().ok_or("no create_time")?;
    assert!(created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T');
    let rels: Vec<&str> = capture["links"]
        .as_array()
        .ok_or("no links")?
        .iter()
        .filter_map(|l| l["rel"].as_str())
        .collect();
    assert_eq!(rels, ["self", "refund", "up"]);

    let fetched: Value = paypal
        .http
        .get(format!("{}/v2/payments/captures/{capture_id}", paypal.base))
        .bearer_auth(&paypal.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(&fetched, capture);
    Ok(())
}

#[tokio::test]
async fn partial_captures_are_allowed_until_the_final_one_then_refused_as_already_captured(
) -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "100.00", Scenario::Approve).await?;
    let first = paypal.capture(&id, usd("30.00")).await?;
    assert_eq!(
        (first.status, &first.json["final_capture"]),
        (StatusCode::CREATED, &json!(false))
    );
    let mut last = usd("20.00");
    last["final_capture"] = json!(true);
    let second = paypal.capture(&id, last).await?;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.json["final_capture"], true);
    let third = paypal.capture(&id, usd("1.00")).await?;
    assert_eq!(third.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(third.json["name"], "UNPROCESSABLE_ENTITY");
    assert_eq!(third.issue(), "AUTHORIZATION_ALREADY_CAPTURED");
    assert!(third.json["debug_id"].is_string());
    assert_eq!(third.json["links"][0]["rel"], "information_link");
    Ok(())
}

#[tokio::test]
async fn a_capture_above_what_remains_is_refused_as_max_capture_amount_exceeded() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    assert_eq!(
        paypal.capture(&id, usd("6.00")).await?.status,
        StatusCode::CREATED
    );
    let over = paypal.capture(&id, usd("4.01")).await?;
    assert_eq!(over.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(over.issue(), "MAX_CAPTURE_AMOUNT_EXCEEDED");
    assert_eq!(over.json["details"][0]["field"], "/amount/value");
    // Exactly what remains still fits.
    assert_eq!(
        paypal.capture(&id, usd("4.00")).await?.status,
        StatusCode::CREATED
    );
    Ok(())
}

#[tokio::test]
async fn amounts_in_another_currency_with_too_many_decimals_or_zero_are_refused() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    let euros = json!({"amount": {"currency_code": "EUR", "value": "1.00"}});
    let mismatch = paypal.capture(&id, euros).await?;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(mismatch.issue(), "AUTH_CAPTURE_CURRENCY_MISMATCH");
    let precise = paypal.capture(&id, usd("1.001")).await?;
    assert_eq!(
        (precise.status, precise.issue()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!("DECIMAL_PRECISION")
        )
    );
    let zero = paypal.capture(&id, usd("0.00")).await?;
    assert_eq!(zero.issue(), "CANNOT_BE_ZERO_OR_NEGATIVE");
    let garbage = paypal.capture(&id, usd("ten")).await?;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn malformed_json_is_refused_as_an_invalid_request() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    let response = paypal
        .http
        .post(format!(
            "{}/v2/payments/authorizations/{id}/capture",
            paypal.base
        ))
        .bearer_auth(&paypal.token)
        .header("content-type", "application/json")
        .body("{\"amount\":")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await?;
    assert_eq!(body["name"], "INVALID_REQUEST");
    assert_eq!(body["details"][0]["issue"], "MALFORMED_REQUEST_JSON");
    Ok(())
}

#[tokio::test]
async fn an_unknown_authorization_is_not_found() -> TestResult {
    let paypal = PayPal::start().await?;
    let answer = paypal.capture("0VF52814937998046", usd("1.00")).await?;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.json["name"], "RESOURCE_NOT_FOUND");
    assert_eq!(answer.issue(), "INVALID_RESOURCE_ID");
    Ok(())
}

#[tokio::test]
async fn expired_and_voided_authorizations_are_refused() -> TestResult {
    let paypal = PayPal::start().await?;
    for (scenario, issue) in [
        (Scenario::Expired, "AUTHORIZATION_EXPIRED"),
        (Scenario::Voided, "AUTHORIZATION_VOIDED"),
    ] {
        let id = paypal.authorize("USD", "10.00", scenario).await?;
        let answer = paypal.capture(&id, json!({})).await?;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(answer.issue(), issue);
    }
    Ok(())
}

#[tokio::test]
async fn a_replayed_request_id_gets_the_identical_answer_and_captures_nothing_more() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    let prefer = Some("return=representation");
    let first = paypal
        .capture_with(&id, Some(usd("6.00")), "key-1", prefer)
        .await?;
    let replay = paypal
        .capture_with(&id, Some(usd("9.99")), "key-1", None)
        .await?;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(replay.status, first.status);
    assert_eq!(replay.text, first.text);
    // Had the replay counted, 6.00 + 6.00 + 4.00 would exceed the 10.00 authorized.
    assert_eq!(
        paypal.capture(&id, usd("4.00")).await?.status,
        StatusCode::CREATED
    );
    Ok(())
}

#[tokio::test]
async fn a_pending_capture_has_a_reason_and_no_seller_receivable_breakdown() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Pending).await?;
    let answer = paypal.capture(&id, json!({})).await?;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert_eq!(answer.json["status"], "PENDING");
    assert_eq!(answer.json["status_details"]["reason"], "PENDING_REVIEW");
    assert!(answer.json.get("seller_receivable_breakdown").is_none());
    Ok(())
}

#[tokio::test]
async fn a_declined_capture_does_not_count_against_the_authorization() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Declined).await?;
    for _ in 0..2 {
        let answer = paypal.capture(&id, usd("10.00")).await?;
        assert_eq!(
            (answer.status, &answer.json["status"]),
            (StatusCode::CREATED, &json!("DECLINED"))
        );
        assert!(answer.json.get("seller_receivable_breakdown").is_none());
    }
    Ok(())
}

#[tokio::test]
async fn yen_and_dinar_amounts_and_fees_are_exact_and_rounded_half_even() -> TestResult {
    let paypal = PayPal::start().await?;
    let cases = [
        // 1000 × 3.49 % + 49 = 83.9 → 84.
        ("JPY", "1000", "84", "916"),
        // 1.234 × 3.49 % + 0.490 = 0.5330666 → 0.533.
        ("TND", "1.234", "0.533", "0.701"),
        // 150.00 × 3.49 % + 0.49 = 5.725 → 5.72 (half-even; half-up would give 5.73).
        ("USD", "150.00", "5.72", "144.28"),
    ];
    for (currency, value, fee, net) in cases {
        let id = paypal.authorize(currency, value, Scenario::Approve).await?;
        let body = json!({"amount": {"currency_code": currency, "value": value}});
        let answer = paypal.capture(&id, body).await?;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{currency}: {}",
            answer.text
        );
        assert_eq!(answer.money("/amount"), Some((currency, value)));
        let breakdown = "/seller_receivable_breakdown";
        assert_eq!(
            answer.money(&format!("{breakdown}/paypal_fee")),
            Some((currency, fee))
        );
        assert_eq!(
            answer.money(&format!("{breakdown}/net_amount")),
            Some((currency, net))
        );
    }
    let id = paypal.authorize("JPY", "1000", Scenario::Approve).await?;
    let fractional = json!({"amount": {"currency_code": "JPY", "value": "10.5"}});
    assert_eq!(
        paypal.capture(&id, fractional).await?.issue(),
        "DECIMAL_PRECISION"
    );
    Ok(())
}

#[tokio::test]
async fn platform_fees_are_echoed_and_taken_from_the_net_amount() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    let fee = json!({"amount": {"currency_code": "USD", "value": "1.00"}, "payee": {"merchant_id": "ABCDEFGHJKLMN"}});
    let mut body = usd("10.00");
    body["payment_instruction"] = json!({"platform_fees": [fee]});
    let answer = paypal.capture(&id, body).await?;
    let breakdown = &answer.json["seller_receivable_breakdown"];
    assert_eq!(breakdown["platform_fees"], json!([fee]));
    assert_eq!(
        answer.money("/seller_receivable_breakdown/net_amount"),
        Some(("USD", "8.16"))
    );
    Ok(())
}

#[tokio::test]
async fn return_minimal_and_no_prefer_answer_only_id_status_and_links() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Approve).await?;
    for (key, prefer) in [("minimal", Some("return=minimal")), ("none", None)] {
        let answer = paypal
            .capture_with(&id, Some(usd("1.00")), key, prefer)
            .await?;
        assert_eq!(answer.status, StatusCode::CREATED);
        let mut keys: Vec<&String> = answer
            .json
            .as_object()
            .ok_or("not an object")?
            .keys()
            .collect();
        keys.sort();
        assert_eq!(keys, ["id", "links", "status"]);
        assert_eq!(answer.json["status"], "COMPLETED");
    }
    Ok(())
}

#[tokio::test]
async fn a_server_error_answers_500_with_no_body_and_captures_nothing() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal
        .authorize("USD", "10.00", Scenario::ServerError)
        .await?;
    let answer = paypal
        .capture_with(&id, Some(usd("10.00")), "k", None)
        .await?;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(answer.text.is_empty());
    // The same key is not remembered: the retry meets the provider again.
    let retry = paypal
        .capture_with(&id, Some(usd("10.00")), "k", None)
        .await?;
    assert_eq!(retry.status, StatusCode::INTERNAL_SERVER_ERROR);
    Ok(())
}

#[tokio::test]
async fn a_malformed_answer_still_records_the_capture() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal
        .authorize("USD", "10.00", Scenario::MalformedBody)
        .await?;
    let answer = paypal.capture_with(&id, None, "k", None).await?;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert!(serde_json::from_str::<Value>(&answer.text).is_err());
    let again = paypal.capture(&id, json!({})).await?;
    assert_eq!(again.issue(), "AUTHORIZATION_ALREADY_CAPTURED");
    Ok(())
}

#[tokio::test]
async fn a_timed_out_capture_was_recorded_and_its_replay_answers_at_once() -> TestResult {
    let paypal = PayPal::start().await?;
    let id = paypal.authorize("USD", "10.00", Scenario::Timeout).await?;
    let url = format!("{}/v2/payments/authorizations/{id}/capture", paypal.base);
    let send = || {
        paypal
            .http
            .post(&url)
            .bearer_auth(&paypal.token)
            .header("PayPal-Request-Id", "slow")
            .timeout(Duration::from_millis(300))
            .send()
    };
    assert!(send().await.is_err_and(|e| e.is_timeout()));
    let replay = send().await?;
    assert_eq!(replay.status(), StatusCode::CREATED);
    let body: Value = replay.json().await?;
    assert_eq!(body["status"], "COMPLETED");
    Ok(())
}

#[tokio::test]
async fn the_admin_endpoint_creates_an_authorization_and_rejects_bad_input() -> TestResult {
    let paypal = PayPal::start().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let admin = format!("http://{}/sandbox", listener.local_addr()?);
    let router = paypal.sandbox.admin_router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let post = |provider: &str, body: Value| {
        paypal
            .http
            .post(format!("{admin}/{provider}/authorizations"))
            .json(&body)
            .send()
    };

    let amount = json!({"currency_code": "TND", "value": "1.5"});
    let created = post("paypal", json!({"amount": amount, "scenario": "PENDING"})).await?;
    assert_eq!(created.status(), StatusCode::CREATED);
    let authorization: Value = created.json().await?;
    assert_eq!(authorization["provider"], "paypal");
    assert_eq!(authorization["status"], "CREATED");
    assert_eq!(authorization["scenario"], "PENDING");
    assert_eq!(
        authorization["amount"],
        json!({"currency_code": "TND", "value": "1.500"})
    );
    let id = authorization["id"].as_str().ok_or("no id")?;
    assert_eq!(
        paypal.capture(id, json!({})).await?.json["status"],
        "PENDING"
    );

    let bad_currency = json!({"amount": {"currency_code": "XXX", "value": "1"}});
    let refused = post("paypal", bad_currency).await?;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await?;
    assert!(body["error"].as_str().is_some_and(|e| e.contains("XXX")));
    let ok_amount = json!({"amount": {"currency_code": "USD", "value": "1"}});
    assert_eq!(
        post("nowhere", ok_amount.clone()).await?.status(),
        StatusCode::NOT_FOUND
    );
    // Every provider is emulated: each makes authorizations.
    for provider in ["checkout", "cybersource", "payment_options", "stax"] {
        assert_eq!(
            post(provider, ok_amount.clone()).await?.status(),
            StatusCode::CREATED,
            "{provider}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_the_server() -> TestResult {
    let paypal = PayPal::start().await?;
    let base = paypal.base.clone();
    paypal.sandbox.shutdown().await;
    let after = paypal
        .http
        .post(format!("{base}/v1/oauth2/token"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(after.is_err());
    Ok(())
}
