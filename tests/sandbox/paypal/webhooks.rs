//! The sandbox's PayPal webhooks: capture state changes made through the admin endpoints, each
//! delivered with PayPal's transmission headers, and `verify-webhook-signature`, which vouches
//! for exactly what was delivered.

use std::error::Error;
use std::time::Duration;

use base64::Engine;
use capture_service::sandbox::Scenario;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{usd, PayPal};
use crate::common::TestResult;
use crate::receiver::{env_var, Received, Receiver};

const HEADERS: [&str; 5] = [
    "PAYPAL-TRANSMISSION-ID",
    "PAYPAL-TRANSMISSION-TIME",
    "PAYPAL-TRANSMISSION-SIG",
    "PAYPAL-CERT-URL",
    "PAYPAL-AUTH-ALGO",
];

/// A status and a JSON body (`Null` if none).
type Answer = (StatusCode, Value);

impl PayPal {
    async fn with_receiver() -> Result<(PayPal, Receiver), Box<dyn Error>> {
        let paypal = PayPal::start().await?;
        let receiver = Receiver::start(StatusCode::OK).await?;
        paypal.sandbox.send_webhooks_to(&receiver.origin);
        Ok((paypal, receiver))
    }

    /// `POST /sandbox/paypal/captures/{id}/{change}`.
    async fn change(
        &self,
        id: &str,
        change: &str,
        body: Option<Value>,
    ) -> Result<Answer, Box<dyn Error>> {
        let url = format!(
            "{}/sandbox/paypal/captures/{id}/{change}",
            self.sandbox.origin()
        );
        let mut request = self.http.post(url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await?).await
    }

    /// `GET {base}{path}` with the token.
    async fn get(&self, path: &str) -> Result<Answer, Box<dyn Error>> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        answer(response).await
    }

    /// `POST /v1/notifications/verify-webhook-signature`.
    async fn verify(&self, request: &Value, token: &str) -> Result<Answer, Box<dyn Error>> {
        let response = self
            .http
            .post(format!(
                "{}/v1/notifications/verify-webhook-signature",
                self.base
            ))
            .bearer_auth(token)
            .json(request)
            .send()
            .await?;
        answer(response).await
    }

    async fn status_of(&self, verification: &Value) -> Result<String, Box<dyn Error>> {
        let (status, body) = self.verify(verification, &self.token).await?;
        assert_eq!(status, StatusCode::OK, "{body}");
        Ok(body["verification_status"]
            .as_str()
            .unwrap_or("none")
            .to_owned())
    }

    /// A capture of 10.00 USD whose authorization follows `scenario`; its id.
    async fn captured(&self, scenario: Scenario) -> Result<String, Box<dyn Error>> {
        let id = self.authorize("USD", "10.00", scenario).await?;
        let capture = self.capture(&id, json!({})).await?;
        assert_eq!(capture.status, StatusCode::CREATED);
        Ok(capture.json["id"]
            .as_str()
            .ok_or("no capture id")?
            .to_owned())
    }
}

async fn answer(response: reqwest::Response) -> Result<Answer, Box<dyn Error>> {
    let status = response.status();
    let text = response.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// The verification request a service makes for `delivery`.
fn verification_of(delivery: &Received, webhook_id: &str) -> Result<Value, Box<dyn Error>> {
    let header = |name: &str| delivery.header(name).unwrap_or_default().to_owned();
    Ok(json!({
        "auth_algo": header("paypal-auth-algo"),
        "cert_url": header("paypal-cert-url"),
        "transmission_id": header("paypal-transmission-id"),
        "transmission_sig": header("paypal-transmission-sig"),
        "transmission_time": header("paypal-transmission-time"),
        "webhook_id": webhook_id,
        "webhook_event": delivery.json()?,
    }))
}

#[tokio::test]
async fn completing_a_pending_capture_delivers_payment_capture_completed_with_paypal_headers(
) -> TestResult {
    let (paypal, receiver) = PayPal::with_receiver().await?;
    let id = paypal.captured(Scenario::Pending).await?;
    let (status, changed) = paypal.change(&id, "complete", None).await?;
    assert_eq!(status, StatusCode::OK, "{changed}");

    let delivered = receiver.wait_for(1).await?;
    assert_eq!(delivered.len(), 1);
    let delivery = &delivered[0];
    assert_eq!(delivery.provider, "paypal");
    assert_eq!(delivery.header("content-type"), Some("application/json"));
    for name in HEADERS {
        assert_eq!(
            delivery.header(name),
            changed["headers"][name].as_str(),
            "{name} as the admin answer says"
        );
    }
    assert_eq!(delivery.header("paypal-auth-algo"), Some("SHA256withRSA"));
    let cert = format!("{}/v1/notifications/certs/CERT-sandbox", paypal.base);
    assert_eq!(delivery.header("paypal-cert-url"), Some(cert.as_str()));
    let sig = delivery.header("paypal-transmission-sig").ok_or("no sig")?;
    assert!(!base64::engine::general_purpose::STANDARD
        .decode(sig)?
        .is_empty());
    assert!(delivery
        .header("paypal-transmission-time")
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(
        delivery.header("paypal-transmission-id").map(str::len),
        Some(36)
    );

    let event = delivery.json()?;
    assert_eq!(event, changed["event"]);
    assert!(event["id"].as_str().is_some_and(|i| i.starts_with("WH-")));
    assert_eq!(event["event_type"], "PAYMENT.CAPTURE.COMPLETED");
    assert_eq!(event["resource_type"], "capture");
    assert_eq!(event["event_version"], "1.0");
    assert_eq!(event["resource_version"], "2.0");
    assert!(event["summary"]
        .as_str()
        .is_some_and(|s| s.contains("10.00 USD")));
    let (status, shown) = paypal.get(&format!("/v2/payments/captures/{id}")).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        event["resource"], shown,
        "the resource is the capture as GET shows it"
    );
    assert_eq!(shown["status"], "COMPLETED");
    assert!(shown.get("status_details").is_none());
    let breakdown = &shown["seller_receivable_breakdown"];
    assert_eq!(breakdown["gross_amount"]["value"], "10.00");
    // 3.49 % of 10.00 + 0.49 = 0.839, rounded half-even.
    assert_eq!(breakdown["paypal_fee"]["value"], "0.84");
    assert_eq!(breakdown["net_amount"]["value"], "9.16");
    Ok(())
}

#[tokio::test]
async fn verification_succeeds_only_for_exactly_what_was_delivered() -> TestResult {
    let (paypal, receiver) = PayPal::with_receiver().await?;
    let id = paypal.captured(Scenario::Pending).await?;
    paypal.change(&id, "complete", None).await?;
    let delivered = receiver.wait_for(1).await?;
    let delivery = &delivered[0];
    let webhook_id = env_var(&paypal.sandbox, "CAPTURE_PAYPAL_WEBHOOK_ID")?;
    let genuine = verification_of(delivery, &webhook_id)?;
    assert_eq!(paypal.status_of(&genuine).await?, "SUCCESS");

    // One byte of the event changed: the last character of its id.
    let raw = String::from_utf8(delivery.body.to_vec())?;
    let event_id = genuine["webhook_event"]["id"].as_str().ok_or("no id")?;
    let at = raw.find(event_id).ok_or("id not in body")? + event_id.len() - 1;
    let mut bytes = raw.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let mut tampered = genuine.clone();
    tampered["webhook_event"] = serde_json::from_slice(&bytes)?;
    assert_eq!(
        paypal.status_of(&tampered).await?,
        "FAILURE",
        "event changed"
    );

    let sig = genuine["transmission_sig"].as_str().ok_or("no sig")?;
    let mut other_sig = sig.to_owned();
    let last = if other_sig.pop() == Some('A') {
        'B'
    } else {
        'A'
    };
    other_sig.push(last);
    let variants = [
        ("transmission_sig", json!(other_sig)),
        ("webhook_id", json!(format!("{webhook_id}X"))),
        (
            "transmission_id",
            json!("00000000-0000-4000-a000-000000000000"),
        ),
        ("transmission_time", json!("2020-01-01T00:00:00Z")),
        ("auth_algo", json!("SHA1withRSA")),
        ("cert_url", json!("https://example.com/cert")),
    ];
    for (field, value) in variants {
        let mut wrong = genuine.clone();
        wrong[field] = value;
        assert_eq!(
            paypal.status_of(&wrong).await?,
            "FAILURE",
            "{field} changed"
        );
    }
    assert_eq!(
        paypal.status_of(&genuine).await?,
        "SUCCESS",
        "still, after all that"
    );
    Ok(())
}

#[tokio::test]
async fn verification_needs_the_token_and_every_field() -> TestResult {
    let (paypal, receiver) = PayPal::with_receiver().await?;
    let id = paypal.captured(Scenario::Pending).await?;
    paypal.change(&id, "complete", None).await?;
    let delivered = receiver.wait_for(1).await?;
    let webhook_id = env_var(&paypal.sandbox, "CAPTURE_PAYPAL_WEBHOOK_ID")?;
    let genuine = verification_of(&delivered[0], &webhook_id)?;

    let (status, body) = paypal.verify(&genuine, "A21AAnot-a-token").await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["name"], "AUTHENTICATION_FAILURE");

    let mut incomplete = genuine.clone();
    let fields = incomplete.as_object_mut().ok_or("not an object")?;
    fields.remove("transmission_sig");
    fields.remove("webhook_event");
    let (status, body) = paypal.verify(&incomplete, &paypal.token).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["name"], "VALIDATION_ERROR");
    assert!(body["debug_id"].is_string());
    let named: Vec<_> = body["details"]
        .as_array()
        .ok_or("no details")?
        .iter()
        .map(|d| d["field"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(named, ["transmission_sig", "webhook_event"]);

    let response = paypal
        .http
        .post(format!(
            "{}/v1/notifications/verify-webhook-signature",
            paypal.base
        ))
        .bearer_auth(&paypal.token)
        .body("{not json")
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    Ok(())
}

#[tokio::test]
async fn denying_a_pending_capture_delivers_payment_capture_denied_and_frees_the_amount(
) -> TestResult {
    let (paypal, receiver) = PayPal::with_receiver().await?;
    let authorization = paypal.authorize("USD", "10.00", Scenario::Pending).await?;
    let first = paypal.capture(&authorization, json!({})).await?;
    let id = first.json["id"].as_str().ok_or("no id")?;
    let again = paypal.capture(&authorization, json!({})).await?;
    assert_eq!(
        again.issue(),
        "AUTHORIZATION_ALREADY_CAPTURED",
        "while it is pending"
    );

    let (status, changed) = paypal.change(id, "deny", None).await?;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let delivered = receiver.wait_for(1).await?;
    let event = delivered[0].json()?;
    assert_eq!(event["event_type"], "PAYMENT.CAPTURE.DENIED");
    assert_eq!(event["resource_type"], "capture");
    assert_eq!(event["resource"]["status"], "DECLINED");
    let (_, shown) = paypal.get(&format!("/v2/payments/captures/{id}")).await?;
    assert_eq!(event["resource"], shown);
    assert!(shown.get("seller_receivable_breakdown").is_none());

    let retaken = paypal.capture(&authorization, json!({})).await?;
    assert_eq!(retaken.status, StatusCode::CREATED, "{}", retaken.text);
    assert_eq!(retaken.money("/amount"), Some(("USD", "10.00")));
    Ok(())
}

#[tokio::test]
async fn a_partial_refund_then_the_rest_make_the_capture_partially_refunded_then_refunded(
) -> TestResult {
    let (paypal, receiver) = PayPal::with_receiver().await?;
    let id = paypal.captured(Scenario::Approve).await?;
    let (status, partial) = paypal.change(&id, "refund", Some(usd("4.00"))).await?;
    assert_eq!(status, StatusCode::OK, "{partial}");
    let refund = &partial["event"]["resource"];
    assert_eq!(partial["event"]["event_type"], "PAYMENT.CAPTURE.REFUNDED");
    assert_eq!(partial["event"]["resource_type"], "refund");
    assert_eq!(refund["status"], "COMPLETED");
    assert_eq!(
        refund["amount"],
        json!({"currency_code": "USD", "value": "4.00"})
    );
    let payable = &refund["seller_payable_breakdown"];
    assert_eq!(payable["gross_amount"]["value"], "4.00");
    assert_eq!(payable["total_refunded_amount"]["value"], "4.00");
    let refund_id = refund["id"].as_str().ok_or("no refund id")?;
    let links = refund["links"].as_array().ok_or("no links")?;
    let rels: Vec<_> = links
        .iter()
        .map(|l| (l["rel"].as_str(), l["href"].as_str()))
        .collect();
    let self_href = format!("{}/v2/payments/refunds/{refund_id}", paypal.base);
    let up_href = format!("{}/v2/payments/captures/{id}", paypal.base);
    assert_eq!(
        rels,
        [
            (Some("self"), Some(self_href.as_str())),
            (Some("up"), Some(up_href.as_str()))
        ]
    );
    assert_eq!(
        paypal
            .get(&format!("/v2/payments/refunds/{refund_id}"))
            .await?
            .1,
        *refund
    );
    let (_, shown) = paypal.get(&format!("/v2/payments/captures/{id}")).await?;
    assert_eq!(shown["status"], "PARTIALLY_REFUNDED");

    let (status, rest) = paypal.change(&id, "refund", None).await?;
    assert_eq!(status, StatusCode::OK, "{rest}");
    let refund = &rest["event"]["resource"];
    assert_eq!(refund["amount"]["value"], "6.00");
    assert_eq!(
        refund["seller_payable_breakdown"]["total_refunded_amount"]["value"],
        "10.00"
    );
    let (_, shown) = paypal.get(&format!("/v2/payments/captures/{id}")).await?;
    assert_eq!(shown["status"], "REFUNDED");
    // The fee given back adds up to the capture's fee.
    let fee = |v: &Value| {
        v["seller_payable_breakdown"]["paypal_fee"]["value"]
            .as_str()
            .and_then(|f| f.parse::<f64>().ok())
    };
    let given_back = fee(&partial["event"]["resource"]).unwrap_or(0.0) + fee(refund).unwrap_or(0.0);
    assert!((given_back - 0.84).abs() < 1e-9, "{given_back}");

    let delivered = receiver.wait_for(2).await?;
    let types: Vec<_> = delivered
        .iter()
        .map(|d| d.json().map(|e| e["event_type"].clone()))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        types,
        [
            json!("PAYMENT.CAPTURE.REFUNDED"),
            json!("PAYMENT.CAPTURE.REFUNDED")
        ]
    );
    let (status, _) = paypal.change(&id, "refund", None).await?;
    assert_eq!(status, StatusCode::CONFLICT, "nothing is left");
    Ok(())
}

#[tokio::test]
async fn a_reversal_takes_what_is_left_and_delivers_payment_capture_reversed() -> TestResult {
    let (paypal, receiver) = PayPal::with_receiver().await?;
    let id = paypal.captured(Scenario::Approve).await?;
    paypal.change(&id, "refund", Some(usd("3.00"))).await?;
    let (status, reversed) = paypal.change(&id, "reverse", None).await?;
    assert_eq!(status, StatusCode::OK, "{reversed}");
    let event = &reversed["event"];
    assert_eq!(event["event_type"], "PAYMENT.CAPTURE.REVERSED");
    assert_eq!(event["resource_type"], "refund");
    assert_eq!(event["resource"]["amount"]["value"], "7.00");
    assert_eq!(
        event["resource"]["seller_payable_breakdown"]["total_refunded_amount"]["value"],
        "10.00"
    );
    let (_, shown) = paypal.get(&format!("/v2/payments/captures/{id}")).await?;
    assert_eq!(shown["status"], "REFUNDED");
    let delivered = receiver.wait_for(2).await?;
    assert_eq!(delivered.len(), 2);
    assert_eq!(delivered[1].json()?, *event);
    assert_eq!(
        paypal.change(&id, "reverse", None).await?.0,
        StatusCode::CONFLICT
    );
    Ok(())
}

#[tokio::test]
async fn changes_refuse_unknown_captures_statuses_that_forbid_them_and_bad_refunds() -> TestResult {
    let (paypal, receiver) = PayPal::with_receiver().await?;
    for change in ["complete", "deny", "refund", "reverse"] {
        let (status, body) = paypal.change("NOSUCHCAPTURE0000", change, None).await?;
        assert_eq!(status, StatusCode::NOT_FOUND, "{change}");
        assert!(body["error"].is_string());
    }
    let completed = paypal.captured(Scenario::Approve).await?;
    let pending = paypal.captured(Scenario::Pending).await?;
    let conflicts = [
        (&completed, "complete"),
        (&completed, "deny"),
        (&pending, "refund"),
        (&pending, "reverse"),
    ];
    for (id, change) in conflicts {
        assert_eq!(
            paypal.change(id, change, None).await?.0,
            StatusCode::CONFLICT,
            "{change}"
        );
    }
    let too_much = paypal
        .change(&completed, "refund", Some(usd("10.01")))
        .await?;
    assert_eq!(too_much.0, StatusCode::UNPROCESSABLE_ENTITY);
    let euros = json!({"amount": {"currency_code": "EUR", "value": "1.00"}});
    assert_eq!(
        paypal.change(&completed, "refund", Some(euros)).await?.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        paypal
            .change(&completed, "refund", Some(usd("1.001")))
            .await?
            .0,
        StatusCode::BAD_REQUEST
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.received().is_empty(),
        "a refused change sends nothing"
    );
    Ok(())
}

#[tokio::test]
async fn the_admin_router_the_service_mounts_carries_the_capture_changes() -> TestResult {
    let (paypal, receiver) = PayPal::with_receiver().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let service = format!("http://{}", listener.local_addr()?);
    let router = paypal.sandbox.admin_router();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let id = paypal.captured(Scenario::Pending).await?;
    let completed = paypal
        .http
        .post(format!("{service}/sandbox/paypal/captures/{id}/complete"))
        .send()
        .await?;
    assert_eq!(completed.status(), StatusCode::OK);
    // Beside it, authorizations are still made for every provider.
    let amount = json!({"amount": {"currency_code": "USD", "value": "1.00"}});
    for provider in ["paypal", "checkout"] {
        let created = paypal
            .http
            .post(format!("{service}/sandbox/{provider}/authorizations"))
            .json(&amount)
            .send()
            .await?;
        assert_eq!(created.status(), StatusCode::CREATED, "{provider}");
    }
    let no_such = paypal
        .http
        .post(format!("{service}/sandbox/checkout/captures/{id}/complete"))
        .send()
        .await?;
    assert_eq!(
        no_such.status(),
        StatusCode::NOT_FOUND,
        "Checkout has no such endpoint"
    );
    assert_eq!(receiver.wait_for(1).await?.len(), 1);
    Ok(())
}
