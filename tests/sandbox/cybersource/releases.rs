//! The sandbox's Cybersource releasing authorizations: the authorization reversal of one never
//! captured, the rest reversed by a capture with `isFinal: "true"`, and the refusals around
//! them, each checked in the book's holds. Requests are signed here, from Cybersource's
//! documented HTTP Signature scheme (providers.md), not by the connector.

use std::error::Error;
use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use capture_service::domain::Provider;
use capture_service::sandbox::{ReleasedBy, Sandbox, Scenario};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common::TestResult;
use crate::holds::{amounts, hold_of, new_authorization, ways};

/// A started sandbox and the merchant credentials it issued, read from its service variables.
struct Signed {
    sandbox: Sandbox,
    http: reqwest::Client,
    base: String,
    merchant_id: String,
    key_id: String,
    secret: Vec<u8>,
}

impl Signed {
    async fn start() -> Result<Self, Box<dyn Error>> {
        let sandbox = Sandbox::start(([127, 0, 0, 1], 0).into()).await?;
        let env = sandbox.service_env();
        let var = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .ok_or(format!("no {name}"))
        };
        Ok(Signed {
            base: var("CAPTURE_CYBERSOURCE_BASE_URL")?,
            merchant_id: var("CAPTURE_CYBERSOURCE_MERCHANT_ID")?,
            key_id: var("CAPTURE_CYBERSOURCE_KEY_ID")?,
            secret: BASE64.decode(var("CAPTURE_CYBERSOURCE_SHARED_SECRET")?)?,
            http: reqwest::Client::new(),
            sandbox,
        })
    }

    async fn authorize(&self, value: &str, scenario: Scenario) -> Result<String, Box<dyn Error>> {
        let request = new_authorization("USD", value, scenario);
        let made = self
            .sandbox
            .create_authorization(Provider::Cybersource, request)
            .await?;
        Ok(made.id)
    }

    /// POSTs `body` to `{base}{path}`, signed with `secret`.
    async fn post(
        &self,
        path: &str,
        body: &Value,
        secret: &[u8],
    ) -> Result<(StatusCode, Value), Box<dyn Error>> {
        let url = reqwest::Url::parse(&format!("{}{path}", self.base))?;
        let host = format!(
            "{}:{}",
            url.host_str().ok_or("no host")?,
            url.port().ok_or("no port")?
        );
        let body = body.to_string();
        let date = httpdate::fmt_http_date(SystemTime::now());
        let digest = format!("SHA-256={}", BASE64.encode(Sha256::digest(body.as_bytes())));
        let signing = [
            format!("host: {host}"),
            format!("date: {date}"),
            format!("request-target: post {}", url.path()),
            format!("digest: {digest}"),
            format!("v-c-merchant-id: {}", self.merchant_id),
        ]
        .join("\n");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret)?;
        mac.update(signing.as_bytes());
        let signature = format!(
            r#"keyid="{}", algorithm="HmacSHA256", headers="host date request-target digest v-c-merchant-id", signature="{}""#,
            self.key_id,
            BASE64.encode(mac.finalize().into_bytes())
        );
        let response = self
            .http
            .post(url)
            .header("host", host)
            .header("date", date)
            .header("digest", digest)
            .header("v-c-merchant-id", &self.merchant_id)
            .header("signature", signature)
            .header("content-type", "application/json;charset=utf-8")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Reverses `value` USD of `auth` under reference `code`.
    async fn reverse(
        &self,
        auth: &str,
        value: &str,
        code: &str,
    ) -> Result<(StatusCode, Value), Box<dyn Error>> {
        let body = json!({
            "clientReferenceInformation": {"code": code},
            "reversalInformation": {
                "amountDetails": {"totalAmount": value},
                "reason": "testing",
            },
        });
        let path = format!("/pts/v2/payments/{auth}/reversals");
        self.post(&path, &body, &self.secret).await
    }

    /// Captures `value` USD of `auth` as the only capture, final (`isFinal: "true"`) or not.
    async fn capture(
        &self,
        auth: &str,
        value: &str,
        is_final: bool,
        code: &str,
    ) -> Result<(StatusCode, Value), Box<dyn Error>> {
        let mut body = json!({
            "clientReferenceInformation": {"code": code},
            "orderInformation": {"amountDetails": {"totalAmount": value, "currency": "USD"}},
        });
        if is_final {
            body["processingInformation"] = json!({"captureOptions": {"isFinal": "true"}});
        }
        let path = format!("/pts/v2/payments/{auth}/captures");
        self.post(&path, &body, &self.secret).await
    }
}

fn reason(answer: &(StatusCode, Value)) -> (StatusCode, &str) {
    (answer.0, answer.1["reason"].as_str().unwrap_or_default())
}

#[tokio::test]
async fn a_reversal_of_an_authorization_never_captured_reverses_all_of_it() -> TestResult {
    let cs = Signed::start().await?;
    let auth = cs.authorize("100.00", Scenario::Approve).await?;
    let (status, reversed) = cs.reverse(&auth, "100.00", "rev-1").await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(reversed["status"], "REVERSED");
    assert_eq!(reversed["clientReferenceInformation"]["code"], "rev-1");
    let amount = &reversed["reversalAmountDetails"];
    assert_eq!(
        (&amount["reversedAmount"], &amount["currency"]),
        (&json!("100.00"), &json!("USD"))
    );
    let id = reversed["id"].as_str().ok_or("no id")?;
    let href = format!("/pts/v2/reversals/{id}");
    assert_eq!(reversed["_links"]["self"]["href"], href);
    assert!(reversed["submitTimeUtc"].is_string());

    let hold = hold_of(&cs.sandbox, &auth).await?;
    assert_eq!(amounts(&hold), ("0.00", "100.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Void]);
    assert_eq!(
        (
            hold.releases[0].id.as_str(),
            hold.releases[0].key.as_deref()
        ),
        (id, Some("rev-1"))
    );
    Ok(())
}

#[tokio::test]
async fn a_capture_or_a_second_reversal_after_a_reversal_is_auth_already_reversed() -> TestResult {
    let cs = Signed::start().await?;
    let auth = cs.authorize("100.00", Scenario::Approve).await?;
    assert_eq!(
        cs.reverse(&auth, "100.00", "rev-1").await?.0,
        StatusCode::CREATED
    );
    let capture = cs.capture(&auth, "10.00", false, "cap-1").await?;
    assert_eq!(
        reason(&capture),
        (StatusCode::BAD_REQUEST, "AUTH_ALREADY_REVERSED")
    );
    let again = cs.reverse(&auth, "100.00", "rev-2").await?;
    assert_eq!(
        reason(&again),
        (StatusCode::BAD_REQUEST, "AUTH_ALREADY_REVERSED")
    );
    let voided = cs.authorize("100.00", Scenario::Voided).await?;
    let reversal = cs.reverse(&voided, "100.00", "rev-3").await?;
    assert_eq!(
        reason(&reversal),
        (StatusCode::BAD_REQUEST, "AUTH_ALREADY_REVERSED")
    );
    assert!(cs.sandbox.charges().is_empty());
    assert_eq!(hold_of(&cs.sandbox, &auth).await?.releases.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_reversal_after_a_capture_partial_or_whole_is_refused_as_already_settled() -> TestResult {
    let cs = Signed::start().await?;
    let partial = cs.authorize("100.00", Scenario::Approve).await?;
    assert_eq!(
        cs.capture(&partial, "30.00", false, "cap-1").await?.0,
        StatusCode::CREATED
    );
    let whole = cs.authorize("100.00", Scenario::Approve).await?;
    assert_eq!(
        cs.capture(&whole, "100.00", false, "cap-2").await?.0,
        StatusCode::CREATED
    );
    for auth in [&partial, &whole] {
        let refused = cs.reverse(auth, "100.00", "rev-1").await?;
        assert_eq!(
            reason(&refused),
            (StatusCode::BAD_REQUEST, "TRANSACTION_ALREADY_SETTLED")
        );
        assert!(hold_of(&cs.sandbox, auth).await?.releases.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn a_final_capture_reverses_the_rest_and_nothing_can_follow_it() -> TestResult {
    let cs = Signed::start().await?;
    let auth = cs.authorize("100.00", Scenario::Approve).await?;
    let (status, captured) = cs.capture(&auth, "30.00", true, "cap-1").await?;
    assert_eq!(status, StatusCode::CREATED);
    let hold = hold_of(&cs.sandbox, &auth).await?;
    assert_eq!(amounts(&hold), ("30.00", "70.00"));
    assert_eq!(ways(&hold), [ReleasedBy::Capture]);
    assert_eq!(
        hold.releases[0].id,
        captured["id"].as_str().unwrap_or_default()
    );

    let later = json!({"captureSequenceNumber": 2, "totalCaptureCount": 3});
    let body = json!({
        "clientReferenceInformation": {"code": "cap-2"},
        "orderInformation": {"amountDetails": {"totalAmount": "1.00", "currency": "USD"}},
        "processingInformation": {"captureOptions": later},
    });
    let path = format!("/pts/v2/payments/{auth}/captures");
    let capture = cs.post(&path, &body, &cs.secret).await?;
    assert_eq!(
        reason(&capture),
        (StatusCode::BAD_REQUEST, "AUTH_ALREADY_REVERSED")
    );
    let reversal = cs.reverse(&auth, "100.00", "rev-1").await?;
    assert_eq!(
        reason(&reversal),
        (StatusCode::BAD_REQUEST, "TRANSACTION_ALREADY_SETTLED")
    );
    assert_eq!(
        amounts(&hold_of(&cs.sandbox, &auth).await?),
        ("30.00", "70.00")
    );
    Ok(())
}

#[tokio::test]
async fn a_reversal_is_signed_and_of_the_authorized_amount_in_its_currency() -> TestResult {
    let cs = Signed::start().await?;
    let auth = cs.authorize("100.00", Scenario::Approve).await?;
    let path = format!("/pts/v2/payments/{auth}/reversals");
    let body = json!({"reversalInformation": {"amountDetails": {"totalAmount": "100.00"}}});
    let unsigned = cs.post(&path, &body, b"not the secret").await?;
    assert_eq!(unsigned.0, StatusCode::UNAUTHORIZED);
    let partial = cs.reverse(&auth, "50.00", "rev-1").await?;
    assert_eq!(
        reason(&partial),
        (StatusCode::BAD_REQUEST, "INVALID_AMOUNT")
    );
    let missing = json!({"reversalInformation": {"reason": "testing"}});
    let missing = cs.post(&path, &missing, &cs.secret).await?;
    assert_eq!(reason(&missing), (StatusCode::BAD_REQUEST, "MISSING_FIELD"));
    assert_eq!(
        missing.1["details"][0]["field"],
        "reversalInformation.amountDetails.totalAmount"
    );
    let euros = json!({"reversalInformation": {
        "amountDetails": {"totalAmount": "100.00", "currency": "EUR"}}});
    let euros = cs.post(&path, &euros, &cs.secret).await?;
    assert_eq!(reason(&euros), (StatusCode::BAD_REQUEST, "INVALID_DATA"));
    let unknown = cs
        .reverse("0000000000000000000000", "1.00", "rev-2")
        .await?;
    assert_eq!(reason(&unknown), (StatusCode::BAD_REQUEST, "MISSING_AUTH"));
    assert!(hold_of(&cs.sandbox, &auth).await?.releases.is_empty());
    Ok(())
}
