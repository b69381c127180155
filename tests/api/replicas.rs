//! Two replicas of the service on one PostgreSQL database, calling one stand-in PayPal: the
//! reconciler's lease keeps them from looking at one capture twice, and from looking at a
//! capture whose own request is still in flight on the other. (The replicas are two apps in
//! this test process, each with its own pool, reconciler and in-flight table, as two processes
//! have.)

use std::collections::HashMap;
use std::time::Duration;

use crate::common::mock_provider::{MockProvider, Reply};
use crate::common::*;
use capture_service::proto::CaptureStatus;

const CAPTURE_PATH_PREFIX: &str = "/v2/payments/authorizations/";

fn completed(id: &str) -> Reply {
    Reply::json(
        201,
        format!(
            r#"{{"id":"{id}","status":"COMPLETED","amount":{{"currency_code":"USD","value":"1.00"}}}}"#
        ),
    )
}

/// Capture calls the stand-in PayPal saw, per `PayPal-Request-Id`.
fn capture_calls(paypal: &MockProvider) -> HashMap<String, usize> {
    let mut calls = HashMap::new();
    for request in paypal.requests() {
        if request.path.starts_with(CAPTURE_PATH_PREFIX) {
            let key = request
                .header("paypal-request-id")
                .unwrap_or_default()
                .to_owned();
            *calls.entry(key).or_default() += 1;
        }
    }
    calls
}

/// A replica on `database_url` (empty: a new database) reconciling every 50 ms at captures of
/// any age, with the stand-in PayPal.
async fn replica(
    paypal: &MockProvider,
    database_url: Option<String>,
    reconcile: bool,
    timeout: Duration,
) -> Result<TestApp, Box<dyn std::error::Error>> {
    let base = paypal.url();
    TestApp::spawn_with(Db::Postgres, move |config| {
        use_paypal_at(config, base);
        if let Some(url) = database_url {
            config.database_url = url.into();
        }
        config.reconcile.interval = if reconcile {
            Duration::from_millis(50)
        } else {
            Duration::ZERO
        };
        config.reconcile.min_age = Duration::ZERO;
        config.providers.request_timeout = timeout;
        config.providers.max_retries = 0;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_on_one_replica_holds_its_capture_from_the_other_replicas_reconciler(
) -> TestResult {
    let paypal = MockProvider::paypal_granting_tokens().await?;
    // PayPal takes 2 s to answer; the other replica reconciles every 50 ms with no minimum age.
    paypal.default_for(
        http::Method::POST,
        "/v2/payments/authorizations/AUTH-SLOW-1/capture",
        |_| completed("CAP-SLOW-1").after(Duration::from_secs(2)),
    );
    let first = replica(&paypal, None, false, Duration::from_secs(10)).await?;
    let second = replica(
        &paypal,
        Some(first.database_url.clone()),
        true,
        Duration::from_secs(10),
    )
    .await?;
    let capture = first
        .captured(paypal_capture("AUTH-SLOW-1", usd("1.00")))
        .await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    let calls = capture_calls(&paypal);
    assert_eq!(
        calls.values().sum::<usize>(),
        1,
        "only the request called PayPal: {calls:?}"
    );
    second.stop().await?;
    first.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_reconciling_together_never_look_at_one_capture_twice() -> TestResult {
    let paypal = MockProvider::paypal_granting_tokens().await?;
    // Every capture call ends without an answer (a 500): twenty captures stay PROCESSING.
    paypal.default_for(
        http::Method::POST,
        "/v2/payments/authorizations/AUTH-R/capture",
        |_| Reply::json(500, r#"{"name":"INTERNAL_SERVER_ERROR"}"#),
    );
    let maker = replica(&paypal, None, false, Duration::from_secs(5)).await?;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(unknown_outcome(
            maker.capture(paypal_capture("AUTH-R", usd("1.00"))).await,
            "paypal",
        )?);
    }
    // Now PayPal answers, slowly (so two looks at one capture would overlap), and two replicas
    // reconcile at once.
    paypal.default_for(
        http::Method::POST,
        "/v2/payments/authorizations/AUTH-R/capture",
        |n| completed(&format!("CAP-R-{n}")).after(Duration::from_millis(300)),
    );
    let url = maker.database_url.clone();
    let one = replica(&paypal, Some(url.clone()), true, Duration::from_secs(5)).await?;
    let two = replica(&paypal, Some(url), true, Duration::from_secs(5)).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for id in &ids {
        loop {
            let capture = maker.get(TENANT_A_KEY, id).await?;
            if capture.status() == CaptureStatus::Completed {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("{id} was not reconciled: {capture:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let calls = capture_calls(&paypal);
    for id in &ids {
        assert_eq!(
            calls.get(id),
            Some(&2),
            "{id}: the request, then one look: {calls:?}"
        );
    }
    two.stop().await?;
    one.stop().await?;
    maker.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_on_another_replica_while_the_request_is_in_flight_does_not_call_the_provider_again(
) -> TestResult {
    let paypal = MockProvider::paypal_granting_tokens().await?;
    paypal.default_for(
        http::Method::POST,
        "/v2/payments/authorizations/AUTH-RETRY-1/capture",
        |_| completed("CAP-RETRY-1").after(Duration::from_secs(2)),
    );
    let first = replica(&paypal, None, false, Duration::from_secs(10)).await?;
    let second = replica(
        &paypal,
        Some(first.database_url.clone()),
        false,
        Duration::from_secs(10),
    )
    .await?;
    let request = paypal_capture("AUTH-RETRY-1", usd("1.00"));
    let in_flight = {
        let request = request.clone();
        let first = &first;
        async move { first.capture(request).await }
    };
    let retry = async {
        // The caller gave up on the first replica and retries on the second.
        tokio::time::sleep(Duration::from_millis(500)).await;
        second.capture(request.clone()).await
    };
    let (answered, retried) = tokio::join!(in_flight, retry);
    let capture = answered?.capture.ok_or("no capture")?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    // The retry is told to come back later, naming the capture, and PayPal was called once.
    let id = unknown_outcome(retried, "paypal")?;
    assert_eq!(id, capture.id);
    let calls = capture_calls(&paypal);
    assert_eq!(calls.get(&capture.id), Some(&1), "{calls:?}");
    // Once the request has its answer, the retry gets the capture.
    let replayed = second.capture(request).await?;
    assert!(replayed.replayed);
    assert_eq!(
        replayed.capture.map(|c| c.status()),
        Some(CaptureStatus::Completed)
    );
    second.stop().await?;
    first.stop().await
}
