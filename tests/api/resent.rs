//! A capture whose first answer was lost is sent again (a retry with its `request_id`, or the
//! reconciler's look). A refusal of that second sending that does not speak for the first (a
//! throttle, 429) must leave it `PROCESSING`, never `FAILED`: the first may have captured.
//! Found by `capture-faults` (kill9 and replicas: Stax throttling a re-sent capture's
//! pre-authorization lookup recorded captures it had taken as FAILED).

use std::collections::HashMap;

use capture_service::proto::{CaptureStatus, CaptureStatusReason};
use tonic::Code;

use crate::common::mock_provider::{MockProvider, Reply};
use crate::common::*;
use crate::on_both_databases;

on_both_databases!(a_throttled_resend_leaves_a_capture_that_may_be_taken_processing,);

const AUTHORIZATION: &str = "7HF62431DM4557623";

async fn a_throttled_resend_leaves_a_capture_that_may_be_taken_processing(db: Db) -> TestResult {
    let paypal = MockProvider::paypal_granting_tokens().await?;
    let path = format!("/v2/payments/authorizations/{AUTHORIZATION}/capture");
    // PayPal captured, but its answer was lost (a 5xx after the fact); then it throttles the
    // second sending; then it replays the capture it made under the same PayPal-Request-Id.
    paypal.reply(http::Method::POST, &path, Reply::empty(503));
    paypal.reply(
        http::Method::POST,
        &path,
        Reply::json(
            429,
            r#"{"name":"RATE_LIMIT_REACHED","message":"Too many requests."}"#,
        )
        .header("retry-after", "1"),
    );
    paypal.reply(
        http::Method::POST,
        &path,
        Reply::json(
            201,
            r#"{"id":"3C679366HH908993F","status":"COMPLETED","amount":{"currency_code":"USD","value":"10.00"}}"#,
        ),
    );
    let base = paypal.url();
    let app = TestApp::spawn_with(db, move |config| {
        use_paypal_at(config, base);
        config.providers.max_retries = 0;
    })
    .await?;
    let request = paypal_capture(AUTHORIZATION, usd("10.00"));
    let first = app
        .left_processing(app.capture(request.clone()).await, "paypal")
        .await?;

    let throttled = app.capture(request.clone()).await;
    assert_code(&throttled, Code::Unavailable);
    let stored = app.get(TENANT_A_KEY, &first.id).await?;
    assert_eq!(stored.status(), CaptureStatus::Processing, "{stored:?}");
    assert_eq!(
        stored.status_details.as_ref().map(|d| d.reason()),
        Some(CaptureStatusReason::ProviderOutcomeUnknown)
    );

    let settled = app.replayed(request).await?;
    assert_eq!(
        (settled.id.as_str(), settled.status()),
        (first.id.as_str(), CaptureStatus::Completed)
    );
    // Every sending carried the same key.
    let keys: HashMap<String, usize> =
        paypal
            .seen(&path)
            .iter()
            .fold(HashMap::new(), |mut keys, request| {
                let key = request.header("paypal-request-id").unwrap_or_default();
                *keys.entry(key.to_owned()).or_default() += 1;
                keys
            });
    assert_eq!(keys, HashMap::from([(first.id.clone(), 3)]));
    app.stop().await
}
