//! The sandbox's Stax, driven over real HTTP as the Stax connector drives Stax: its key check,
//! validation, exact amounts, idempotent replay, pre-authorization reads and rate limit.

use std::error::Error;
use std::net::SocketAddr;

use capture_service::domain::Provider;
use capture_service::sandbox::stax::RATE_LIMIT;
use capture_service::sandbox::{MoneyJson, NewAuthorization, Sandbox, Scenario};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::TestResult;

/// Its void of a pre-authorization.
mod releases;

/// A started sandbox and the Stax account it accepts.
struct Stax {
    sandbox: Sandbox,
    http: reqwest::Client,
    base: String,
    key: String,
}

/// One answer: status, `Retry-After`, raw body and the body as JSON (`Null` if not JSON).
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    text: String,
    json: Value,
}

impl Stax {
    async fn start() -> Result<Self, Box<dyn Error>> {
        let sandbox = Sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let account = crate::common::sandbox_account::<
            capture_service::providers::stax::StaxAccount,
        >(&sandbox)?;
        Ok(Stax {
            sandbox,
            http: reqwest::Client::new(),
            base: account.base_url,
            key: account.api_key.expose().to_owned(),
        })
    }

    async fn pre_authorize(
        &self,
        value: &str,
        scenario: Scenario,
    ) -> Result<String, Box<dyn Error>> {
        self.pre_authorize_in("USD", value, scenario).await
    }

    async fn pre_authorize_in(
        &self,
        currency: &str,
        value: &str,
        scenario: Scenario,
    ) -> Result<String, Box<dyn Error>> {
        let request = NewAuthorization {
            amount: MoneyJson {
                currency_code: currency.into(),
                value: value.into(),
            },
            scenario,
            faults: None,
        };
        Ok(self
            .sandbox
            .create_authorization(Provider::Stax, request)
            .await?
            .id)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, Box<dyn Error>> {
        let response = request.send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            retry_after,
            text,
            json,
        })
    }

    async fn capture_with_key(
        &self,
        key: &str,
        pre_auth: &str,
        body: &str,
    ) -> Result<Answer, Box<dyn Error>> {
        self.send(
            self.http
                .post(format!("{}/transaction/{pre_auth}/capture", self.base))
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    async fn capture(&self, pre_auth: &str, body: &str) -> Result<Answer, Box<dyn Error>> {
        self.capture_with_key(&self.key, pre_auth, body).await
    }

    /// `GET /transaction/{id}` with `key`.
    async fn read_with_key(&self, key: &str, id: &str) -> Result<Answer, Box<dyn Error>> {
        self.send(
            self.http
                .get(format!("{}/transaction/{id}", self.base))
                .bearer_auth(key)
                .header("accept", "application/json"),
        )
        .await
    }

    async fn read(&self, id: &str) -> Result<Answer, Box<dyn Error>> {
        self.read_with_key(&self.key, id).await
    }
}

/// The fields Stax documents for a transaction object.
const TRANSACTION_FIELDS: [&str; 19] = [
    "id",
    "type",
    "success",
    "message",
    "total",
    "currency",
    "method",
    "meta",
    "pre_auth",
    "is_refundable",
    "is_voidable",
    "is_voided",
    "total_refunded",
    "customer_id",
    "payment_method_id",
    "reference_id",
    "last_four",
    "created_at",
    "updated_at",
];

#[tokio::test]
async fn a_wrong_api_key_gets_staxs_401_and_captures_nothing() -> TestResult {
    let stax = Stax::start().await?;
    let pre_auth = stax.pre_authorize("10.00", Scenario::Approve).await?;
    let refused = stax
        .capture_with_key("not-the-key", &pre_auth, r#"{"total":1}"#)
        .await?;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json["message"], "Unauthenticated.");
    let all = stax.capture(&pre_auth, "{}").await?;
    assert_eq!(all.status, StatusCode::OK);
    assert!(all.text.contains(r#""total":10.00"#), "{}", all.text);
    Ok(())
}

#[tokio::test]
async fn a_capture_answers_a_transaction_object_with_the_exact_total() -> TestResult {
    let stax = Stax::start().await?;
    let pre_auth = stax.pre_authorize("100.00", Scenario::Approve).await?;
    let answer = stax
        .capture(
            &pre_auth,
            r#"{"total":0.10,"meta":{"order":"42"},"idempotency_id":"k1"}"#,
        )
        .await?;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.text.contains(r#""total":0.10,"#), "{}", answer.text);
    let tx = &answer.json;
    for field in TRANSACTION_FIELDS {
        assert!(tx.get(field).is_some(), "{field}");
    }
    assert_eq!(tx["success"], true);
    assert_eq!(tx["currency"], "USD");
    assert_eq!(tx["meta"]["order"], "42");
    assert_eq!(tx["reference_id"], pre_auth.as_str());
    let id = tx["id"].as_str().ok_or("no id")?;
    let read = stax.read(id).await?;
    assert_eq!((read.status, read.text), (StatusCode::OK, answer.text));
    Ok(())
}

#[tokio::test]
async fn a_pre_authorization_reads_back_with_its_currency_and_exact_total() -> TestResult {
    let stax = Stax::start().await?;
    let pre_auth = stax
        .pre_authorize_in("EUR", "25.50", Scenario::Approve)
        .await?;
    let read = stax.read(&pre_auth).await?;
    assert_eq!(read.status, StatusCode::OK);
    assert!(read.text.contains(r#""total":25.50,"#), "{}", read.text);
    let tx = &read.json;
    for field in TRANSACTION_FIELDS {
        assert!(tx.get(field).is_some(), "{field}");
    }
    assert_eq!(tx["id"], pre_auth.as_str());
    assert_eq!(tx["type"], "pre_auth");
    assert_eq!(tx["pre_auth"], true);
    assert_eq!(tx["success"], true);
    assert_eq!(tx["currency"], "EUR");
    assert_eq!(tx["is_voided"], false);
    assert_eq!(tx["is_voidable"], true);
    // A capture from it leaves the pre-authorization's own total as it was.
    let taken = stax.capture(&pre_auth, r#"{"total":5}"#).await?;
    assert_eq!(taken.status, StatusCode::OK);
    let again = stax.read(&pre_auth).await?;
    assert_eq!(again.json["total"], read.json["total"]);
    assert_eq!(again.json["created_at"], read.json["created_at"]);

    let voided = stax.pre_authorize("10.00", Scenario::Voided).await?;
    let read = stax.read(&voided).await?;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.json["currency"], "USD");
    assert_eq!(
        (&read.json["is_voided"], &read.json["is_voidable"]),
        (&Value::Bool(true), &Value::Bool(false))
    );
    Ok(())
}

#[tokio::test]
async fn reading_a_transaction_needs_the_key_and_an_id_stax_knows() -> TestResult {
    let stax = Stax::start().await?;
    let pre_auth = stax.pre_authorize("10.00", Scenario::Approve).await?;
    let refused = stax.read_with_key("not-the-key", &pre_auth).await?;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json["message"], "Unauthenticated.");
    assert!(refused.json.get("currency").is_none(), "nothing disclosed");
    let missing = stax.read("00000000-0000-4000-a000-000000000000").await?;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json["message"].is_string(), "{}", missing.text);
    Ok(())
}

#[tokio::test]
async fn a_total_that_is_not_a_positive_number_is_a_422_naming_total() -> TestResult {
    let stax = Stax::start().await?;
    let pre_auth = stax.pre_authorize("10.00", Scenario::Approve).await?;
    for (body, message) in [
        (r#"{"total":"ten"}"#, "The total must be a number."),
        (r#"{"total":true}"#, "The total must be a number."),
        (r#"{"total":-5}"#, "The total must be at least 0.01."),
        (r#"{"total":0}"#, "The total must be at least 0.01."),
        (
            r#"{"total":1.005}"#,
            "The total may not have more than 2 decimal places.",
        ),
    ] {
        let answer = stax.capture(&pre_auth, body).await?;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(answer.json["total"][0], message, "{body}");
    }
    let answer = stax
        .capture("00000000-0000-4000-a000-000000000000", "{}")
        .await?;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn the_same_idempotency_id_gets_the_first_answer_byte_for_byte() -> TestResult {
    let stax = Stax::start().await?;
    let pre_auth = stax.pre_authorize("10.00", Scenario::Approve).await?;
    let first = stax
        .capture(&pre_auth, r#"{"total":6,"idempotency_id":"same"}"#)
        .await?;
    let again = stax
        .capture(&pre_auth, r#"{"total":6,"idempotency_id":"same"}"#)
        .await?;
    assert_eq!((first.status, &first.text), (again.status, &again.text));
    // Only one 6.00 was taken: 4.00 remain.
    let rest = stax.capture(&pre_auth, r#"{"total":4.01}"#).await?;
    assert_eq!(rest.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        rest.json["message"],
        "Cannot capture more than the pre-authorized amount."
    );
    Ok(())
}

#[tokio::test]
async fn a_declined_capture_says_so_and_takes_nothing() -> TestResult {
    let stax = Stax::start().await?;
    let pre_auth = stax.pre_authorize("10.00", Scenario::Declined).await?;
    let answer = stax.capture(&pre_auth, r#"{"total":10}"#).await?;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["success"], false);
    assert_eq!(
        answer.json["message"],
        "Unable to process the purchase transaction"
    );
    Ok(())
}

#[tokio::test]
async fn more_than_the_rate_limit_in_a_minute_is_a_429_with_retry_after() -> TestResult {
    let stax = Stax::start().await?;
    let pre_auth = stax.pre_authorize("1000.00", Scenario::Approve).await?;
    // Reads count as captures do: the connector's lookups share the budget.
    for n in 0..RATE_LIMIT {
        let answer = match n % 2 {
            0 => stax.read(&pre_auth).await?,
            _ => stax.capture(&pre_auth, r#"{"total":1}"#).await?,
        };
        assert_eq!(answer.status, StatusCode::OK, "request {n}");
    }
    let throttled = stax.capture(&pre_auth, r#"{"total":1}"#).await?;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.json["message"], "Too Many Attempts.");
    let wait: u64 = throttled.retry_after.ok_or("no Retry-After")?.parse()?;
    assert!((1..=60).contains(&wait), "{wait}");
    let read = stax.read(&pre_auth).await?;
    assert_eq!(read.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(read.retry_after.is_some());
    Ok(())
}

/// An observed pre-authorization: its capture requests meet their faults in turn (a 502 page
/// and a 429 take nothing; a truncated answer did capture, and a retry under the same key gets
/// the whole stored answer), and every one is listed with its key and fault.
#[tokio::test]
async fn observed_captures_meet_their_faults_in_turn_and_are_listed() -> TestResult {
    use capture_service::sandbox::{Attempt, Fault};
    let stax = Stax::start().await?;
    let request = NewAuthorization {
        amount: MoneyJson {
            currency_code: "USD".into(),
            value: "10.00".into(),
        },
        scenario: Scenario::Approve,
        faults: Some(vec![
            Fault::Html502,
            Fault::RateLimited {
                retry_after: Some(1),
            },
            Fault::TruncatedJson,
        ]),
    };
    let pre_auth = stax
        .sandbox
        .create_authorization(Provider::Stax, request)
        .await?
        .id;
    let body = r#"{"total":6,"idempotency_id":"faulted"}"#;

    let page = stax.capture(&pre_auth, body).await?;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(page.text.contains("<html>"), "{}", page.text);
    let throttled = stax.capture(&pre_auth, body).await?;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.retry_after.as_deref(), Some("1"));
    assert!(
        stax.sandbox.charges().is_empty(),
        "a 502 page and a 429 take nothing"
    );

    let cut = stax.capture(&pre_auth, body).await?;
    assert_eq!(cut.status, StatusCode::OK);
    assert_eq!(cut.json, Value::Null, "not JSON: {}", cut.text);
    assert_eq!(
        stax.sandbox.charges().len(),
        1,
        "the truncated answer did capture"
    );
    let whole = stax.capture(&pre_auth, body).await?;
    assert_eq!(whole.status, StatusCode::OK);
    assert!(whole.text.starts_with(&cut.text) && whole.text.len() > cut.text.len());
    assert_eq!(stax.sandbox.charges().len(), 1, "the retry was a replay");

    let attempts: Vec<Attempt> =
        reqwest::get(format!("{}/sandbox/attempts", stax.sandbox.origin()))
            .await?
            .json()
            .await?;
    let faults: Vec<Option<Fault>> = attempts.iter().map(|a| a.fault).collect();
    assert_eq!(
        faults,
        [
            Some(Fault::Html502),
            Some(Fault::RateLimited {
                retry_after: Some(1)
            }),
            Some(Fault::TruncatedJson),
            None
        ]
    );
    assert!(attempts
        .iter()
        .all(|a| a.authorization_id == pre_auth && a.key.as_deref() == Some("faulted")));
    Ok(())
}
