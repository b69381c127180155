//! Black-box tests of `capture.v1.CaptureService`: the real app on random ports, on SQLite and
//! on PostgreSQL, called through the generated gRPC client, capturing at the built-in PayPal
//! emulator (or, where calls must be counted, a counting stand-in).

use crate::common::*;
use crate::on_both_databases;
use capture_service::proto::{self, CaptureStatus, CaptureStatusReason, ListCapturesRequest};
use tonic::Code;

on_both_databases!(
    a_capture_completes_with_its_breakdown_and_reads_back,
    money_round_trips_exactly,
    a_bad_request_names_every_bad_field_and_writes_nothing,
    the_same_request_id_replays_the_stored_capture,
    a_reused_request_id_with_a_different_request_is_refused,
    fifty_concurrent_identical_requests_make_one_provider_call,
    concurrent_captures_never_exceed_the_authorized_amount,
    an_over_capture_is_refused_before_the_provider_is_called,
    a_final_capture_closes_the_authorization,
    an_unknown_authorization_is_not_found_with_the_provider_code_kept,
    an_expired_authorization_fails_precondition,
    a_pending_capture_has_no_breakdown,
    a_provider_5xx_leaves_the_capture_processing,
    a_provider_timeout_leaves_the_capture_processing_and_a_retry_resumes_it,
    a_timed_out_attempt_is_retried_with_the_same_key_and_captures_once,
    another_tenants_capture_is_invisible,
    calls_without_a_valid_key_are_unauthenticated,
    lists_page_newest_first_and_filter,
    shutdown_lets_an_in_flight_capture_finish_and_record_its_outcome,
    a_caller_that_hangs_up_does_not_cut_the_capture_short,
);

async fn a_capture_completes_with_its_breakdown_and_reads_back(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let mut request = paypal_capture(&auth, usd("40.00"));
    request.invoice_id = "INV-1".into();
    request.metadata.insert("order".into(), "42".into());
    let response = app.capture(request).await?;
    assert!(!response.replayed);
    let capture = response.capture.ok_or("no capture")?;
    assert!(capture.id.starts_with("cap_"));
    assert_eq!(capture.status(), CaptureStatus::Completed);
    assert_eq!(capture.provider_status, "COMPLETED");
    assert!(!capture.provider_capture_id.is_empty());
    assert_eq!(capture.captured_amount, usd("40.00"));
    let breakdown = capture
        .seller_receivable_breakdown
        .clone()
        .ok_or("no breakdown")?;
    assert_eq!(breakdown.gross_amount, usd("40.00"));
    let fee = breakdown.provider_fee.ok_or("no fee")?;
    let net = breakdown.net_amount.ok_or("no net")?;
    let cents = |m: &proto::Money| -> Result<i64, Box<dyn std::error::Error>> {
        Ok(
            (m.value.parse::<rust_decimal::Decimal>()? * rust_decimal::Decimal::from(100))
                .try_into()?,
        )
    };
    assert_eq!(cents(&fee)? + cents(&net)?, 4000, "gross = fee + net");
    assert_eq!(capture.invoice_id, "INV-1");
    assert_eq!(
        capture.metadata.get("order").map(String::as_str),
        Some("42")
    );

    let read = app.get(TENANT_A_KEY, &capture.id).await?;
    assert_eq!(read, capture);
    let listed = app
        .list(TENANT_A_KEY, ListCapturesRequest::default())
        .await?;
    assert_eq!(listed.captures, vec![capture]);
    app.stop().await
}

async fn money_round_trips_exactly(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    for (currency, value) in [
        ("USD", "0.01"),
        ("USD", "99999999999.99"),
        ("JPY", "1"),
        ("TND", "123.456"),
    ] {
        let auth = app.authorize(currency, value, "APPROVE").await?;
        let capture = app
            .captured(paypal_capture(&auth, money(currency, value)))
            .await?;
        assert_eq!(
            capture.status(),
            CaptureStatus::Completed,
            "{currency} {value}"
        );
        let read = app.get(TENANT_A_KEY, &capture.id).await?;
        assert_eq!(read.amount, money(currency, value));
        assert_eq!(read.captured_amount, money(currency, value));
        assert_eq!(
            read.seller_receivable_breakdown
                .and_then(|b| b.gross_amount),
            money(currency, value)
        );
    }
    app.stop().await
}

async fn a_bad_request_names_every_bad_field_and_writes_nothing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let mut request = paypal_capture("", money("JPY", "10.5"));
    request.provider = 0;
    request.soft_descriptor = "x".repeat(23);
    request.request_id = String::new();
    request.authorized_amount = money("XXX", "1");
    let status = error_of(app.capture(request).await)?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        bad_fields(&status),
        [
            "provider",
            "authorization_id",
            "amount.value",
            "authorized_amount.currency_code",
            "soft_descriptor",
            "request_id"
        ]
    );
    let listed = app
        .list(TENANT_A_KEY, ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());
    app.stop().await
}

async fn the_same_request_id_replays_the_stored_capture(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let request = paypal_capture(&auth, usd("10.00"));
    let first = app.captured(request.clone()).await?;
    let second = app.replayed(request).await?;
    assert_eq!(first, second);
    // The replay did not count against the authorization: 90.00 still fits.
    let rest = app.capture(paypal_capture(&auth, usd("90.00"))).await?;
    assert_eq!(
        rest.capture.map(|c| c.status()),
        Some(CaptureStatus::Completed)
    );
    app.stop().await
}

async fn a_reused_request_id_with_a_different_request_is_refused(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let request = paypal_capture(&auth, usd("10.00"));
    let first = app.captured(request.clone()).await?;
    let mut changed = request;
    changed.amount = usd("11.00");
    let metadata = refused(
        app.capture(changed).await,
        Code::AlreadyExists,
        "IDEMPOTENCY_KEY_REUSED",
    )?;
    assert_eq!(metadata.get("capture_id"), Some(&first.id));
    app.stop().await
}

async fn fifty_concurrent_identical_requests_make_one_provider_call(db: Db) -> TestResult {
    let (paypal, counter) = counting_paypal::start().await?;
    let app = TestApp::spawn_against_paypal(db, &paypal).await?;
    let request = paypal_capture("AUTH0000000000001", usd("25.00"));
    let calls = (0..50).map(|_| app.capture(request.clone()));
    let responses = futures_join_all(calls).await;
    let mut ids = std::collections::BTreeSet::new();
    for response in responses {
        let capture = response?.capture.ok_or("no capture")?;
        assert_eq!(capture.status(), CaptureStatus::Completed);
        ids.insert(capture.id);
    }
    assert_eq!(ids.len(), 1, "every request got the same capture");
    assert_eq!(counter.captures(), 1, "exactly one provider call");
    app.stop().await
}

async fn concurrent_captures_never_exceed_the_authorized_amount(db: Db) -> TestResult {
    let (paypal, counter) = counting_paypal::start().await?;
    let app = TestApp::spawn_against_paypal(db, &paypal).await?;
    let calls = (0..10).map(|_| {
        let mut request = paypal_capture("AUTH0000000000002", usd("20.00"));
        request.authorized_amount = usd("100.00");
        app.capture(request)
    });
    let results = futures_join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::FailedPrecondition))
        .count();
    // On a loaded machine a store bound may run out: UNAVAILABLE, to retry. Nothing else.
    let unavailable = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Unavailable))
        .count();
    assert_eq!(ok + refused + unavailable, 10, "{results:?}");
    if unavailable == 0 {
        assert_eq!((ok, refused, counter.captures()), (5, 5, 5), "{results:?}");
    }
    // Never more captured than authorized: at the provider, and in the records.
    assert!(counter.captures() <= 5, "{results:?}");
    let listed = app
        .list(
            TENANT_A_KEY,
            ListCapturesRequest {
                authorization_id: "AUTH0000000000002".into(),
                ..Default::default()
            },
        )
        .await?;
    let open_or_taken = listed
        .captures
        .iter()
        .filter(|c| c.status() != CaptureStatus::Failed)
        .count();
    assert!(open_or_taken <= 5, "{listed:?}");
    assert!(open_or_taken >= ok, "{listed:?}");
    app.stop().await
}

async fn an_over_capture_is_refused_before_the_provider_is_called(db: Db) -> TestResult {
    let (paypal, counter) = counting_paypal::start().await?;
    let app = TestApp::spawn_against_paypal(db, &paypal).await?;
    let mut first = paypal_capture("AUTH0000000000003", usd("60.00"));
    first.authorized_amount = usd("100.00");
    app.capture(first).await?;
    let mut second = paypal_capture("AUTH0000000000003", usd("50.00"));
    second.authorized_amount = usd("100.00");
    let metadata = refused(
        app.capture(second).await,
        Code::FailedPrecondition,
        "AMOUNT_EXCEEDS_AUTHORIZATION",
    )?;
    assert_eq!(detail(&metadata, "remaining"), Some("40.00 USD"));
    assert_eq!(counter.captures(), 1);
    let listed = app
        .list(TENANT_A_KEY, ListCapturesRequest::default())
        .await?;
    assert_eq!(
        listed.captures.len(),
        1,
        "the refused capture wrote nothing"
    );
    app.stop().await
}

async fn a_final_capture_closes_the_authorization(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    app.capture(paypal_capture(&auth, usd("30.00"))).await?;
    let mut last = paypal_capture(&auth, usd("20.00"));
    last.final_capture = true;
    let closed = app.captured(last).await?;
    assert!(closed.final_capture);
    let metadata = refused(
        app.capture(paypal_capture(&auth, usd("1.00"))).await,
        Code::FailedPrecondition,
        "AUTHORIZATION_CLOSED",
    )?;
    assert_eq!(metadata.get("closed_by"), Some(&closed.id));
    app.stop().await
}

async fn an_unknown_authorization_is_not_found_with_the_provider_code_kept(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let metadata = refused(
        app.capture(paypal_capture("NOSUCHAUTH0000000", usd("1.00")))
            .await,
        Code::NotFound,
        "PROVIDER_RESOURCE_NOT_FOUND",
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("INVALID_RESOURCE_ID")
    );
    assert!(metadata.get("debug_id").is_some_and(|d| !d.is_empty()));
    let stored = app.stored_capture(&metadata).await?;
    assert_failed_with(&stored, "INVALID_RESOURCE_ID", 404);
    app.stop().await
}

async fn an_expired_authorization_fails_precondition(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "EXPIRED").await?;
    let (_, metadata) = refusal(
        app.capture(paypal_capture(&auth, usd("1.00"))).await,
        Code::FailedPrecondition,
    )?;
    assert_eq!(
        detail(&metadata, "provider_code"),
        Some("AUTHORIZATION_EXPIRED")
    );
    app.stop().await
}

async fn a_pending_capture_has_no_breakdown(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("EUR", "50.00", "PENDING").await?;
    let capture = app
        .captured(paypal_capture(&auth, money("EUR", "50.00")))
        .await?;
    assert_eq!(capture.status(), CaptureStatus::Pending);
    let details = capture.status_details.clone().ok_or("no status details")?;
    assert_eq!(details.reason(), CaptureStatusReason::PendingReview);
    assert_eq!(details.provider_reason, "PENDING_REVIEW");
    assert!(capture.seller_receivable_breakdown.is_none());
    app.stop().await
}

async fn a_provider_5xx_leaves_the_capture_processing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "SERVER_ERROR").await?;
    app.left_processing(
        app.capture(paypal_capture(&auth, usd("5.00"))).await,
        "paypal",
    )
    .await?;
    app.stop().await
}

async fn a_provider_timeout_leaves_the_capture_processing_and_a_retry_resumes_it(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn_with(db, |config| config.providers.max_retries = 0).await?;
    let auth = app.authorize("USD", "100.00", "TIMEOUT").await?;
    let request = paypal_capture(&auth, usd("5.00"));
    let id = app
        .left_processing(app.capture(request.clone()).await, "paypal")
        .await?
        .id;
    // The caller retries with the same request_id: the service re-sends with the same
    // PayPal-Request-Id, PayPal answers with the capture it made the first time.
    let capture = app.replayed(request).await?;
    assert_eq!(
        (capture.id.as_str(), capture.status()),
        (id.as_str(), CaptureStatus::Completed)
    );
    // One capture at PayPal: the remaining 95.00 still fits, 95.01 would not.
    let mut over = paypal_capture(&auth, usd("95.01"));
    over.final_capture = true;
    assert_code(&app.capture(over).await, Code::FailedPrecondition);
    app.stop().await
}

async fn a_timed_out_attempt_is_retried_with_the_same_key_and_captures_once(db: Db) -> TestResult {
    let app = TestApp::spawn_with(db, |config| config.providers.max_retries = 1).await?;
    let auth = app.authorize("USD", "100.00", "TIMEOUT").await?;
    let capture = app.captured(paypal_capture(&auth, usd("100.00"))).await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    assert_eq!(capture.captured_amount, usd("100.00"));
    app.stop().await
}

async fn another_tenants_capture_is_invisible(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "10.00", "APPROVE").await?;
    let capture = app.captured(paypal_capture(&auth, None)).await?;
    assert_code(&app.get(TENANT_B_KEY, &capture.id).await, Code::NotFound);
    let listed = app
        .list(TENANT_B_KEY, ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());
    assert_eq!(app.get(TENANT_A_KEY, &capture.id).await?.id, capture.id);
    app.stop().await
}

async fn calls_without_a_valid_key_are_unauthenticated(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    assert_code(&app.get("wrong-key", "cap_X").await, Code::Unauthenticated);
    assert_code(
        &app.capture_as("", paypal_capture("AUTH", usd("1.00")))
            .await,
        Code::Unauthenticated,
    );
    app.stop().await
}

async fn lists_page_newest_first_and_filter(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let mut made = Vec::new();
    let mut made_at = Vec::new();
    for n in 0..5 {
        let mut request = paypal_capture(&auth, usd("1.00"));
        request.invoice_id = format!("INV-LIST-{n}");
        // Every other one with a platform fee (PayPal takes one at most), which PayPal's
        // breakdown reports back: a page's rows carry each capture's own fees.
        if n % 2 == 1 {
            request.platform_fees = vec![proto::PlatformFee {
                amount: usd(&format!("0.0{n}")),
                payee: None,
            }];
        }
        let capture = app.captured(request).await?;
        made_at.push(capture.create_time.ok_or("no create_time")?);
        made.push(capture.id);
    }
    let declined = app.authorize("USD", "100.00", "DECLINED").await?;
    let declined_id = app
        .captured(paypal_capture(&declined, usd("1.00")))
        .await?
        .id;

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = app
            .list(
                TENANT_A_KEY,
                ListCapturesRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    authorization_id: auth.clone(),
                    ..Default::default()
                },
            )
            .await?;
        assert!(page.captures.len() <= 2);
        for listed in &page.captures {
            // A listed capture is the whole record, as GetCapture gives it.
            assert_eq!(&app.get(TENANT_A_KEY, &listed.id).await?, listed);
        }
        seen.extend(page.captures.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    made.reverse();
    assert_eq!(seen, made, "newest first, each once");

    // Each filter alone, and all of them together.
    let ids = |page: proto::ListCapturesResponse| -> Vec<String> {
        page.captures.into_iter().map(|c| c.id).collect()
    };
    let filtered = |filter: ListCapturesRequest| app.list(TENANT_A_KEY, filter);
    let by_invoice = filtered(ListCapturesRequest {
        invoice_id: "INV-LIST-3".into(),
        ..Default::default()
    })
    .await?;
    assert_eq!(ids(by_invoice), vec![made[1].clone()], "invoice_id");
    let paypal = filtered(ListCapturesRequest {
        provider: proto::Provider::Paypal as i32,
        ..Default::default()
    })
    .await?;
    assert_eq!(paypal.captures.len(), 6, "provider: PayPal's");
    let stax = filtered(ListCapturesRequest {
        provider: proto::Provider::Stax as i32,
        ..Default::default()
    })
    .await?;
    assert!(stax.captures.is_empty(), "provider: none at Stax");
    // The second to the fourth (the window's start is in it, its end is not).
    let window = ListCapturesRequest {
        create_time_start: Some(made_at[1]),
        create_time_end: Some(made_at[4]),
        ..Default::default()
    };
    let in_window = filtered(window.clone()).await?;
    assert_eq!(ids(in_window), made[1..4].to_vec(), "create_time window");
    let everything = filtered(ListCapturesRequest {
        page_size: 1,
        provider: proto::Provider::Paypal as i32,
        status: CaptureStatus::Completed as i32,
        authorization_id: auth.clone(),
        invoice_id: "INV-LIST-2".into(),
        ..window
    })
    .await?;
    assert_eq!(
        ids(everything),
        vec![made[2].clone()],
        "every filter at once"
    );

    let declined_only = app
        .list(
            TENANT_A_KEY,
            ListCapturesRequest {
                status: CaptureStatus::Declined as i32,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(
        declined_only
            .captures
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>(),
        vec![declined_id]
    );

    let first = app
        .list(
            TENANT_A_KEY,
            ListCapturesRequest {
                page_size: 1,
                ..Default::default()
            },
        )
        .await?;
    let misuse = app
        .list(
            TENANT_A_KEY,
            ListCapturesRequest {
                page_token: first.next_page_token,
                status: CaptureStatus::Completed as i32,
                ..Default::default()
            },
        )
        .await;
    assert_code(&misuse, Code::InvalidArgument);
    app.stop().await
}

async fn shutdown_lets_an_in_flight_capture_finish_and_record_its_outcome(db: Db) -> TestResult {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let (paypal, counter) = counting_paypal::start().await?;
    let mut app = TestApp::spawn_against_paypal(db, &paypal).await?;
    let database_url = app.database_url.clone();
    // A load balancer's view: the API's health, watched from before the shutdown.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr))?
        .connect()
        .await?;
    let mut health = HealthClient::new(channel);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "capture.v1.CaptureService".into(),
        })
        .await?
        .into_inner();
    // Ready first (the readiness check's first pass may still be running).
    let ready = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(answer) = watch.message().await? {
            if answer.status() == ServingStatus::Serving {
                return Ok::<_, tonic::Status>(true);
            }
        }
        Ok(false)
    });
    assert!(ready.await??, "never SERVING");
    let not_serving = async {
        while let Some(answer) = watch.message().await? {
            if answer.status() == ServingStatus::NotServing {
                return Ok::<_, tonic::Status>(Some(std::time::Instant::now()));
            }
        }
        Ok(None)
    };
    let capture = async {
        let captured = app
            .capture(paypal_capture("AUTH0000000000004", usd("7.00")))
            .await;
        (captured, std::time::Instant::now())
    };
    let stop_while_in_flight = async {
        // The stand-in PayPal answers after 200 ms: stop while the call is out.
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;
        app.stop_signal();
    };
    let ((captured, answered_at), (), not_serving_at) =
        tokio::join!(capture, stop_while_in_flight, not_serving);
    let captured = captured?.capture.ok_or("no capture")?;
    assert_eq!(captured.status(), CaptureStatus::Completed);
    // Not ready first, then drain: the watcher heard NOT_SERVING while the capture still ran.
    let not_serving_at = not_serving_at?.ok_or("the health watch ended without NOT_SERVING")?;
    assert!(
        not_serving_at < answered_at,
        "NOT_SERVING came {:?} after the in-flight capture's answer",
        not_serving_at.duration_since(answered_at)
    );
    assert_eq!(counter.captures(), 1);
    app.stopped().await?;
    // The outcome is in the database, read back without the server.
    let store = capture_service::store::Store::connect(&database_url).await?;
    let stored = store.get_any(&captured.id).await?;
    assert_eq!(
        stored.status,
        capture_service::domain::CaptureStatus::Completed
    );
    Ok(())
}

async fn a_caller_that_hangs_up_does_not_cut_the_capture_short(db: Db) -> TestResult {
    let (paypal, counter) = counting_paypal::start().await?;
    let app = TestApp::spawn_against_paypal(db, &paypal).await?;
    let request = paypal_capture("AUTH0000000000005", usd("9.00"));
    // The caller gives up after 50 ms; the stand-in PayPal answers after 200 ms.
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        app.capture(request.clone()),
    )
    .await;
    assert!(gave_up.is_err(), "the call should still have been running");
    // The call goes on without its caller; wait for it (bounded: a loaded machine is slow, and
    // a capture cut short would stay PROCESSING and fail below).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let listed = loop {
        let listed = app
            .list(TENANT_A_KEY, ListCapturesRequest::default())
            .await?;
        let open = listed
            .captures
            .iter()
            .any(|c| c.status() == CaptureStatus::Processing);
        if !open || std::time::Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        listed
            .captures
            .iter()
            .map(|c| c.status())
            .collect::<Vec<_>>(),
        [CaptureStatus::Completed]
    );
    // Its retry finds the finished capture without calling PayPal again.
    app.replayed(request).await?;
    assert_eq!(counter.captures(), 1);
    app.stop().await
}

/// Runs futures concurrently on the test runtime (no extra crate needed).
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
    T: Unpin,
{
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut results = Vec::with_capacity(set.len());
    // Poll all together by joining them in one select-free loop.
    let joined = JoinAll {
        futures: set.into_iter().map(Some).collect(),
        results: Vec::new(),
    };
    results.extend(joined.await);
    results
}

struct JoinAll<F: std::future::Future> {
    futures: Vec<Option<std::pin::Pin<Box<F>>>>,
    results: Vec<Option<F::Output>>,
}

impl<F: std::future::Future> std::future::Future for JoinAll<F>
where
    F::Output: Unpin,
{
    type Output = Vec<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        if this.results.is_empty() {
            this.results = (0..this.futures.len()).map(|_| None).collect();
        }
        let mut pending = false;
        for (slot, result) in this.futures.iter_mut().zip(this.results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(this.results.iter_mut().filter_map(Option::take).collect())
        }
    }
}
