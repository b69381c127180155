//! Black-box tests of provider webhooks on `POST /webhooks/{provider}`: the real app on SQLite
//! and PostgreSQL, its built-in sandbox delivering signed events the way Checkout.com and PayPal
//! do, and deliveries forged, repeated, reordered, oversized or early.

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::common::mock_provider::{MockProvider, Reply};
use crate::common::*;
use crate::on_both_databases;
use capture_service::proto::{self, CaptureStatus};

on_both_databases!(
    a_checkout_capture_completes_through_its_webhook_within_a_second,
    checkout_deliveries_unsigned_or_wrongly_signed_are_refused_and_change_nothing,
    repeated_and_late_checkout_events_never_move_a_capture_back,
    a_checkout_webhook_that_arrives_before_our_answer_settles_the_capture,
    paypal_events_are_verified_by_paypal_and_refunds_follow_the_refunded_total,
    a_paypal_denial_declines_a_pending_capture,
    a_paypal_event_for_a_capture_not_known_yet_is_kept_and_applied_when_it_appears,
    cybersource_and_stax_notifications_are_hints_looked_up_at_the_provider,
    oversized_and_unknown_deliveries_are_refused,
);

/// The app with the reconciler off: whatever settles a capture here is a webhook.
async fn spawn_without_reconciler(db: Db) -> Result<TestApp, Box<dyn std::error::Error>> {
    TestApp::spawn_with(db, |config| {
        config.reconcile.interval = Duration::ZERO;
        config.sandbox_webhooks = true;
    })
    .await
}

/// Reads the capture until `done` holds (at most `within`); the last read.
async fn until(
    app: &TestApp,
    id: &str,
    within: Duration,
    done: impl Fn(&proto::Capture) -> bool,
) -> Result<proto::Capture, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + within;
    loop {
        let capture = app.get(TENANT_A_KEY, id).await?;
        if done(&capture) || Instant::now() > deadline {
            return Ok(capture);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts a delivery; its HTTP status and JSON answer.
pub(crate) async fn deliver(
    app: &TestApp,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error>> {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}{path}", app.http_addr))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let answer = request.send().await?;
    let status = answer.status().as_u16();
    let json = answer.json().await.unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

pub(crate) fn hmac_hex(secret: &str, body: &[u8]) -> Result<String, Box<dyn std::error::Error>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(body);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// A Checkout.com event about one capture action, as Checkout.com documents it.
pub(crate) fn checkout_event(
    event_id: &str,
    kind: &str,
    payment: &str,
    action_id: &str,
    reference: &str,
) -> Vec<u8> {
    serde_json::json!({
        "id": event_id,
        "type": kind,
        "created_on": "2026-12-04T10:00:00Z",
        "data": {
            "id": payment, "action_id": action_id, "reference": reference,
            "amount": 3000, "currency": "EUR",
            "response_code": "10000", "response_summary": "Approved",
            "processed_on": "2026-12-04T10:00:00Z",
        }
    })
    .to_string()
    .into_bytes()
}

/// Signed with the sandbox account's webhook secret.
async fn deliver_checkout(
    app: &TestApp,
    body: Vec<u8>,
) -> Result<(u16, serde_json::Value), Box<dyn std::error::Error>> {
    let secret = app.sandbox_var("CAPTURE_CHECKOUT_WEBHOOK_SECRET")?;
    let signature = hmac_hex(&secret, &body)?;
    deliver(
        app,
        "/webhooks/checkout",
        &[("Cko-Signature", signature)],
        body,
    )
    .await
}

async fn sources(
    app: &TestApp,
    id: &str,
) -> Result<Vec<(String, String, String)>, Box<dyn std::error::Error>> {
    let store = capture_service::store::Store::connect(&app.database_url).await?;
    Ok(store.events(id).await?)
}

async fn a_checkout_capture_completes_through_its_webhook_within_a_second(db: Db) -> TestResult {
    let app = spawn_without_reconciler(db).await?;
    let payment = app
        .authorize_at("checkout", "EUR", "80.00", "APPROVE")
        .await?;
    // Not `captured`: the webhook may complete the capture between the answer and a read.
    let accepted = app
        .capture(capture_request(
            proto::Provider::Checkout,
            &payment,
            money("EUR", "30.00"),
        ))
        .await?
        .capture
        .ok_or("no capture")?;
    let settled = until(&app, &accepted.id, Duration::from_secs(1), |c| {
        c.status() == CaptureStatus::Completed
    })
    .await?;
    assert_eq!(settled.status(), CaptureStatus::Completed, "{settled:?}");
    assert_eq!(settled.amount, money("EUR", "30.00"));
    let trail = sources(&app, &accepted.id).await?;
    assert!(
        trail
            .iter()
            .any(|(_, status, source)| status == "COMPLETED" && source == "webhook"),
        "{trail:?}"
    );
    app.stop().await
}

/// A Checkout.com capture left `PENDING` (the sandbox's pending scenario): its action id.
async fn pending_checkout_capture(
    app: &TestApp,
) -> Result<(String, String, proto::Capture), Box<dyn std::error::Error>> {
    let payment = app
        .authorize_at("checkout", "EUR", "80.00", "PENDING")
        .await?;
    let capture = app
        .capture(capture_request(
            proto::Provider::Checkout,
            &payment,
            money("EUR", "30.00"),
        ))
        .await?
        .capture
        .ok_or("no capture")?;
    // The sandbox's `payment_capture_pending` may still be on its way: let it land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let capture = app.get(TENANT_A_KEY, &capture.id).await?;
    assert_eq!(capture.status(), CaptureStatus::Pending);
    let action = capture.provider_capture_id.clone();
    Ok((payment, action, capture))
}

async fn checkout_deliveries_unsigned_or_wrongly_signed_are_refused_and_change_nothing(
    db: Db,
) -> TestResult {
    let app = spawn_without_reconciler(db).await?;
    let (payment, action, capture) = pending_checkout_capture(&app).await?;
    let trail = sources(&app, &capture.id).await?.len();
    let forged = checkout_event(
        "evt_forged",
        "payment_captured",
        &payment,
        &action,
        &capture.id,
    );
    let (status, _) = deliver(&app, "/webhooks/checkout", &[], forged.clone()).await?;
    assert_eq!(status, 401, "unsigned");
    let wrong = hmac_hex("not-the-secret", &forged)?;
    let (status, _) = deliver(
        &app,
        "/webhooks/checkout",
        &[("Cko-Signature", wrong)],
        forged.clone(),
    )
    .await?;
    assert_eq!(status, 401, "signed with another secret");
    // Signed, then altered: the signature covers the exact bytes.
    let secret = app.sandbox_var("CAPTURE_CHECKOUT_WEBHOOK_SECRET")?;
    let signature = hmac_hex(&secret, &forged)?;
    let mut altered = forged.clone();
    altered.push(b' ');
    let (status, _) = deliver(
        &app,
        "/webhooks/checkout",
        &[("Cko-Signature", signature)],
        altered,
    )
    .await?;
    assert_eq!(status, 401, "altered after signing");
    let unchanged = app.get(TENANT_A_KEY, &capture.id).await?;
    assert_eq!(unchanged.status(), CaptureStatus::Pending);
    assert_eq!(
        sources(&app, &capture.id).await?.len(),
        trail,
        "nothing was recorded"
    );
    // The same event, signed: it applies.
    let (status, answer) = deliver_checkout(&app, forged).await?;
    assert_eq!((status, answer["result"].as_str()), (200, Some("applied")));
    assert_eq!(
        app.get(TENANT_A_KEY, &capture.id).await?.status(),
        CaptureStatus::Completed
    );
    app.stop().await
}

async fn repeated_and_late_checkout_events_never_move_a_capture_back(db: Db) -> TestResult {
    let app = spawn_without_reconciler(db).await?;
    let (payment, action, capture) = pending_checkout_capture(&app).await?;
    let captured = checkout_event("evt_c1", "payment_captured", &payment, &action, &capture.id);
    let (status, answer) = deliver_checkout(&app, captured.clone()).await?;
    assert_eq!((status, answer["result"].as_str()), (200, Some("applied")));
    let trail = sources(&app, &capture.id).await?.len();
    // The same delivery again: recognized, nothing added.
    let (status, answer) = deliver_checkout(&app, captured).await?;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate"))
    );
    // A pending event that arrives late, and a decline after the capture completed.
    let late = checkout_event(
        "evt_p1",
        "payment_capture_pending",
        &payment,
        &action,
        &capture.id,
    );
    let (status, answer) = deliver_checkout(&app, late).await?;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("unchanged"))
    );
    let declined = checkout_event(
        "evt_d1",
        "payment_capture_declined",
        &payment,
        &action,
        &capture.id,
    );
    let (status, answer) = deliver_checkout(&app, declined).await?;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("unchanged"))
    );
    let after = app.get(TENANT_A_KEY, &capture.id).await?;
    assert_eq!(after.status(), CaptureStatus::Completed);
    assert_eq!(
        sources(&app, &capture.id).await?.len(),
        trail,
        "no change was recorded"
    );
    app.stop().await
}

async fn a_checkout_webhook_that_arrives_before_our_answer_settles_the_capture(
    db: Db,
) -> TestResult {
    // The sandbox's timeout scenario records the capture and sends its webhook at once, but
    // answers the capture call only after a minute: the webhook finds the capture PROCESSING,
    // known only by the reference we sent (our capture id).
    let app = spawn_without_reconciler(db).await?;
    let payment = app
        .authorize_at("checkout", "EUR", "80.00", "TIMEOUT")
        .await?;
    let answered = app
        .capture(capture_request(
            proto::Provider::Checkout,
            &payment,
            money("EUR", "30.00"),
        ))
        .await;
    let capture = match answered {
        Ok(response) => response.capture.ok_or("no capture")?,
        Err(status) => {
            let (_, metadata) = error_info(&status).ok_or("no error info")?;
            let id = metadata.get("capture_id").ok_or("no capture id")?;
            app.get(TENANT_A_KEY, id).await?
        }
    };
    let settled = until(&app, &capture.id, Duration::from_secs(5), |c| {
        c.status() == CaptureStatus::Completed
    })
    .await?;
    assert_eq!(settled.status(), CaptureStatus::Completed, "{settled:?}");
    assert!(
        settled.provider_capture_id.starts_with("act_"),
        "{settled:?}"
    );
    let trail = sources(&app, &settled.id).await?;
    assert_eq!(trail.first().map(|e| e.2.as_str()), Some("api"));
    assert!(
        trail.iter().any(|e| e.1 == "COMPLETED" && e.2 == "webhook"),
        "{trail:?}"
    );
    app.stop().await
}

/// POSTs a sandbox admin action on a PayPal capture; the event and headers it delivered.
async fn paypal_admin(
    app: &TestApp,
    capture: &str,
    action: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    Ok(reqwest::Client::new()
        .post(format!(
            "http://{}/sandbox/paypal/captures/{capture}/{action}",
            app.http_addr
        ))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn pending_paypal_capture(
    app: &TestApp,
    amount: &str,
) -> Result<proto::Capture, Box<dyn std::error::Error>> {
    let auth = app.authorize("USD", "100.00", "PENDING").await?;
    let capture = app.captured(paypal_capture(&auth, usd(amount))).await?;
    assert_eq!(capture.status(), CaptureStatus::Pending);
    Ok(capture)
}

async fn paypal_events_are_verified_by_paypal_and_refunds_follow_the_refunded_total(
    db: Db,
) -> TestResult {
    let app = spawn_without_reconciler(db).await?;
    let capture = pending_paypal_capture(&app, "40.00").await?;
    let delivered = paypal_admin(
        &app,
        &capture.provider_capture_id,
        "complete",
        serde_json::json!({}),
    )
    .await?;
    let completed = until(&app, &capture.id, Duration::from_secs(2), |c| {
        c.status() == CaptureStatus::Completed
    })
    .await?;
    assert_eq!(completed.status(), CaptureStatus::Completed);

    // The same delivery replayed is recognized; altered, PayPal does not verify it.
    let headers: Vec<(&str, String)> = delivered["headers"]
        .as_object()
        .ok_or("no headers")?
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str().unwrap_or_default().to_owned()))
        .collect();
    let event = delivered["event"].to_string().into_bytes();
    let (status, answer) = deliver(&app, "/webhooks/paypal", &headers, event).await?;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate"))
    );
    let mut altered = delivered["event"].clone();
    altered["id"] = "WH-ALTERED".into();
    let (status, _) = deliver(
        &app,
        "/webhooks/paypal",
        &headers,
        altered.to_string().into_bytes(),
    )
    .await?;
    assert_eq!(status, 401, "PayPal does not verify an altered event");
    let (status, _) = deliver(
        &app,
        "/webhooks/paypal",
        &[],
        delivered["event"].to_string().into_bytes(),
    )
    .await?;
    assert_eq!(status, 401, "no transmission headers");

    paypal_admin(
        &app,
        &capture.provider_capture_id,
        "refund",
        serde_json::json!({"amount": {"currency_code": "USD", "value": "15.00"}}),
    )
    .await?;
    let partly = until(&app, &capture.id, Duration::from_secs(2), |c| {
        c.status() == CaptureStatus::PartiallyRefunded
    })
    .await?;
    assert_eq!(partly.status(), CaptureStatus::PartiallyRefunded);
    // The refunded total shows on the capture and on its authorization.
    assert_eq!(partly.refunded_amount, usd("15.00"));
    let authorization = app
        .authorization_as(
            TENANT_A_KEY,
            capture_service::proto::Provider::Paypal,
            &capture.authorization_id,
        )
        .await?;
    assert_eq!(authorization.refunded_amount, usd("15.00"));
    paypal_admin(
        &app,
        &capture.provider_capture_id,
        "refund",
        serde_json::json!({}),
    )
    .await?;
    let refunded = until(&app, &capture.id, Duration::from_secs(2), |c| {
        c.status() == CaptureStatus::Refunded
    })
    .await?;
    assert_eq!(refunded.status(), CaptureStatus::Refunded);
    assert_eq!(refunded.refunded_amount, capture.captured_amount);
    let trail = sources(&app, &capture.id).await?;
    let by_webhook: Vec<&str> = trail
        .iter()
        .filter(|e| e.2 == "webhook")
        .map(|e| e.1.as_str())
        .collect();
    assert_eq!(by_webhook, ["COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"]);
    app.stop().await
}

async fn a_paypal_denial_declines_a_pending_capture(db: Db) -> TestResult {
    let app = spawn_without_reconciler(db).await?;
    let capture = pending_paypal_capture(&app, "10.00").await?;
    paypal_admin(
        &app,
        &capture.provider_capture_id,
        "deny",
        serde_json::json!({}),
    )
    .await?;
    let denied = until(&app, &capture.id, Duration::from_secs(2), |c| {
        c.status() == CaptureStatus::Declined
    })
    .await?;
    assert_eq!(denied.status(), CaptureStatus::Declined);
    app.stop().await
}

async fn a_paypal_event_for_a_capture_not_known_yet_is_kept_and_applied_when_it_appears(
    db: Db,
) -> TestResult {
    // A stand-in PayPal that verifies every delivery and answers the capture PENDING under
    // the id the early event names.
    let paypal = MockProvider::start().await?;
    paypal.reply(
        http::Method::POST,
        "/v1/oauth2/token",
        Reply::json(
            200,
            r#"{"access_token":"token","token_type":"Bearer","expires_in":3600}"#,
        ),
    );
    paypal.reply(
        http::Method::POST,
        "/v1/notifications/verify-webhook-signature",
        Reply::json(200, r#"{"verification_status":"SUCCESS"}"#),
    );
    paypal.reply(
        http::Method::POST,
        "/v2/payments/authorizations/AUTH-EARLY-1/capture",
        Reply::json(
            201,
            r#"{"id":"CAP-EARLY-1","status":"PENDING","status_details":{"reason":"PENDING_REVIEW"},
                "amount":{"currency_code":"USD","value":"10.00"}}"#,
        ),
    );
    let base = paypal.url();
    let app = TestApp::spawn_with(db, move |config| {
        use_paypal_at(config, base);
        config.reconcile.interval = Duration::ZERO;
        config
            .providers
            .sources
            .set_var("CAPTURE_PAYPAL_WEBHOOK_ID", "WH-TEST");
    })
    .await?;
    let event = serde_json::json!({
        "id": "WH-EARLY-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource_type": "capture",
        "resource": {"id": "CAP-EARLY-1", "status": "COMPLETED",
                     "amount": {"currency_code": "USD", "value": "10.00"}},
    });
    let headers = [
        ("PAYPAL-AUTH-ALGO", "SHA256withRSA".to_owned()),
        (
            "PAYPAL-CERT-URL",
            format!("{}/v1/notifications/certs/CERT-1", paypal.url()),
        ),
        ("PAYPAL-TRANSMISSION-ID", "t-early".to_owned()),
        ("PAYPAL-TRANSMISSION-SIG", "c2ln".to_owned()),
        (
            "PAYPAL-TRANSMISSION-TIME",
            "2026-12-04T10:00:00Z".to_owned(),
        ),
    ];
    let (status, answer) = deliver(
        &app,
        "/webhooks/paypal",
        &headers,
        event.to_string().into_bytes(),
    )
    .await?;
    assert_eq!((status, answer["result"].as_str()), (200, Some("kept")));
    let verification = paypal
        .seen("/v1/notifications/verify-webhook-signature")
        .pop()
        .ok_or("the service did not ask PayPal to verify")?
        .json()?;
    assert_eq!(verification["webhook_id"], "WH-TEST");
    assert_eq!(verification["transmission_id"], "t-early");
    assert_eq!(verification["webhook_event"], event);

    let capture = app
        .captured(paypal_capture("AUTH-EARLY-1", usd("10.00")))
        .await?;
    assert_eq!(
        capture.status(),
        CaptureStatus::Completed,
        "the kept event applied: {capture:?}"
    );
    let trail = sources(&app, &capture.id).await?;
    let statuses: Vec<(&str, &str)> = trail.iter().map(|e| (e.1.as_str(), e.2.as_str())).collect();
    assert_eq!(
        statuses,
        [
            ("PROCESSING", "api"),
            ("PENDING", "api"),
            ("COMPLETED", "webhook")
        ]
    );
    app.stop().await
}

/// Posts an unsigned notice to `/webhooks/{provider}`: its `result`, once it was taken (200).
async fn deliver_hint(
    app: &TestApp,
    provider: &str,
    body: &[u8],
) -> Result<String, Box<dyn std::error::Error>> {
    let (status, answer) =
        deliver(app, &format!("/webhooks/{provider}"), &[], body.to_vec()).await?;
    assert_eq!(status, 200, "{provider}: {answer}");
    Ok(answer["result"].as_str().unwrap_or_default().to_owned())
}

async fn cybersource_and_stax_notifications_are_hints_looked_up_at_the_provider(
    db: Db,
) -> TestResult {
    // No retry of the capture call: its answer is lost for good.
    let app = TestApp::spawn_with(db, |config| {
        config.reconcile.interval = Duration::ZERO;
        config.providers.max_retries = 0;
        config.sandbox_webhooks = true;
    })
    .await?;
    for (provider, proto_provider) in [
        ("cybersource", proto::Provider::Cybersource),
        ("stax", proto::Provider::Stax),
    ] {
        // The sandbox captures, but the answer never reaches us: PROCESSING.
        let auth = app
            .authorize_at(provider, "USD", "100.00", "TIMEOUT")
            .await?;
        let id = unknown_outcome(
            app.capture(capture_request(proto_provider, &auth, usd("25.00")))
                .await,
            provider,
        )?;
        // An unsigned notice naming the capture, whose body claims what it likes.
        let hint = serde_json::json!({
            "notificationId": format!("n-{id}"), "eventType": "payments.captures.reversed",
            "status": "REFUNDED", "payload": [{"data": {"id": id}}],
        });
        let hint = hint.to_string().into_bytes();
        assert_eq!(
            deliver_hint(&app, provider, &hint).await?,
            "applied",
            "{provider}"
        );
        let looked_up = app.get(TENANT_A_KEY, &id).await?;
        assert!(
            matches!(
                looked_up.status(),
                CaptureStatus::Completed | CaptureStatus::Pending
            ),
            "{provider}: the provider's answer, not the body's: {looked_up:?}"
        );
        let trail = sources(&app, &id).await?;
        assert_eq!(
            trail.last().map(|e| e.2.as_str()),
            Some("webhook"),
            "{provider}"
        );
        // A notice naming no capture of ours is not even kept.
        let unknown = br#"{"payload":[{"data":{"id":"no-such-capture"}}]}"#;
        assert_eq!(
            deliver_hint(&app, provider, unknown).await?,
            "ignored",
            "{provider}"
        );
        // The notice that named the capture, again: hints are not kept, and the capture is
        // settled, so nothing more happens.
        assert_eq!(
            deliver_hint(&app, provider, &hint).await?,
            "unchanged",
            "{provider}"
        );
    }
    app.stop().await
}

async fn oversized_and_unknown_deliveries_are_refused(db: Db) -> TestResult {
    let app = spawn_without_reconciler(db).await?;
    let secret = app.sandbox_var("CAPTURE_CHECKOUT_WEBHOOK_SECRET")?;
    let mut huge = checkout_event("evt_big", "payment_captured", "pay_x", "act_x", "ref");
    huge.extend(std::iter::repeat_n(b' ', 300 * 1024));
    let signature = hmac_hex(&secret, &huge)?;
    let (status, _) = deliver(
        &app,
        "/webhooks/checkout",
        &[("Cko-Signature", signature)],
        huge,
    )
    .await?;
    assert_eq!(status, 413);
    // Signed, but not an event we can read: 400, and the answer quotes no card number.
    let malformed = br#"{"id":"evt_bad","type":"payment_captured","data":{"action_id":"act_x","amount":"4111111111111111"}}"#.to_vec();
    let signature = hmac_hex(&secret, &malformed)?;
    let (status, answer) = deliver(
        &app,
        "/webhooks/checkout",
        &[("Cko-Signature", signature)],
        malformed,
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert!(!answer.to_string().contains("4111111111111111"), "{answer}");
    let (status, answer) = deliver(&app, "/webhooks/payment_options", &[], b"{}".to_vec()).await?;
    assert_eq!(
        status, 404,
        "PaymentOptions documents no capture webhook: {answer}"
    );
    let (status, _) = deliver(&app, "/webhooks/acme", &[], b"{}".to_vec()).await?;
    assert_eq!(status, 404);
    let (status, _) = deliver(
        &app,
        "/webhooks/checkout/no-such-account",
        &[],
        b"{}".to_vec(),
    )
    .await?;
    assert_eq!(status, 404);
    app.stop().await
}
