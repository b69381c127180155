//! `ReleaseAuthorization` and `GetAuthorization`: the authorization as a whole. A release is
//! recorded before the provider is called, like a capture; afterwards captures are refused; a
//! final capture releases the rest where the provider does so by itself; the authorization's
//! amounts add up from its captures. On SQLite and PostgreSQL, at the built-in sandbox (written
//! from the providers' documentation) and at counting stand-ins.

use std::time::{Duration, Instant};

use capture_service::proto::{self, AuthorizationStatus, CaptureStatus, Provider, ReleasedBy};
use tonic::Code;

use crate::common::mock_provider::{MockProvider, Reply};
use crate::common::*;
use crate::on_both_databases;

on_both_databases!(
    a_release_before_any_capture_releases_the_whole_authorization,
    a_release_after_partial_captures_releases_what_they_left,
    a_final_capture_releases_the_rest,
    payment_options_releases_the_rest_of_a_lesser_capture_by_itself,
    every_provider_releases_an_uncaptured_authorization,
    a_bad_release_request_names_its_fields_and_writes_nothing,
    another_tenant_sees_neither_the_authorization_nor_its_release,
    an_unknown_release_outcome_is_settled_by_the_reconciler,
    a_refused_release_reopens_the_authorization,
    a_watch_of_the_authorization_sees_its_release,
    releases_racing_captures_on_two_replicas_never_exceed_the_authorization,
    a_final_capture_at_stax_is_followed_by_a_void_of_the_rest,
);

const TENANT_A: &str = TENANT_A_KEY;

/// What `value` is in cents.
fn cents(money: &Option<proto::Money>) -> Option<i64> {
    let money = money.as_ref()?;
    let value: rust_decimal::Decimal = money.value.parse().ok()?;
    (value * rust_decimal::Decimal::from(100)).try_into().ok()
}

async fn a_release_before_any_capture_releases_the_whole_authorization(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let request = release_request(Provider::Paypal, &auth, usd("100.00"));
    let answer = app.release_as(TENANT_A, request.clone()).await?;
    assert!(!answer.replayed);
    let release = answer.release.ok_or("no release")?;
    assert!(release.id.starts_with("rel_"), "{release:?}");
    assert_eq!(release.status(), CaptureStatus::Completed, "{release:?}");
    assert_eq!(release.released_by(), ReleasedBy::VoidCall);
    let authorization = answer.authorization.ok_or("no authorization")?;
    assert_eq!(authorization.status(), AuthorizationStatus::Released);
    assert_eq!(cents(&authorization.released_amount), Some(10_000));
    assert_eq!(cents(&authorization.remaining_amount), Some(0));
    assert_eq!(authorization.closed_by, release.id);

    // Captures are refused afterwards, before the provider is called.
    let refused_capture = app.capture(paypal_capture(&auth, usd("1.00"))).await;
    let metadata = refused(
        refused_capture,
        Code::FailedPrecondition,
        "AUTHORIZATION_RELEASED",
    )?;
    assert_eq!(detail(&metadata, "release_id"), Some(release.id.as_str()));
    // The same request replays the release; a second release is refused.
    let again = app.release_as(TENANT_A, request).await?;
    assert!(again.replayed);
    assert_eq!(again.release.map(|r| r.id), Some(release.id.clone()));
    let second = app
        .release_as(TENANT_A, release_request(Provider::Paypal, &auth, None))
        .await;
    refused(second, Code::FailedPrecondition, "AUTHORIZATION_RELEASED")?;
    // No capture of it was listed, and its read is the answer's.
    let read = app
        .authorization_as(TENANT_A, Provider::Paypal, &auth)
        .await?;
    assert_eq!(read.releases.len(), 1);
    assert!(read.captures.is_empty());
    assert_eq!(read.status(), AuthorizationStatus::Released);
    app.stop().await
}

async fn a_release_after_partial_captures_releases_what_they_left(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let mut first = paypal_capture(&auth, usd("30.00"));
    first.authorized_amount = usd("100.00");
    let first = app.captured(first).await?;
    let second = app.captured(paypal_capture(&auth, usd("20.50"))).await?;
    let open = app
        .authorization_as(TENANT_A, Provider::Paypal, &auth)
        .await?;
    assert_eq!(open.status(), AuthorizationStatus::Open);
    assert_eq!(cents(&open.captured_amount), Some(5_050));
    assert_eq!(cents(&open.remaining_amount), Some(4_950));
    assert_eq!(cents(&open.pending_amount), Some(0));
    assert_eq!(
        open.captures
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>(),
        vec![first.id.clone(), second.id.clone()]
    );
    // GetAuthorization is the sum of its captures.
    let summed: i64 = open
        .captures
        .iter()
        .filter_map(|c| cents(&c.captured_amount))
        .sum();
    assert_eq!(cents(&open.captured_amount), Some(summed));

    let answer = app
        .release_as(TENANT_A, release_request(Provider::Paypal, &auth, None))
        .await?;
    let release = answer.release.ok_or("no release")?;
    assert_eq!(release.status(), CaptureStatus::Completed, "{release:?}");
    let after = answer.authorization.ok_or("no authorization")?;
    assert_eq!(after.status(), AuthorizationStatus::Released);
    assert_eq!(cents(&after.captured_amount), Some(5_050));
    assert_eq!(cents(&after.released_amount), Some(4_950));
    assert_eq!(cents(&after.remaining_amount), Some(0));
    assert_eq!(after.released_by(), ReleasedBy::VoidCall);
    // The captures are untouched.
    assert_eq!(app.get(TENANT_A, &first.id).await?, first);
    app.stop().await
}

async fn a_final_capture_releases_the_rest(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let mut request = paypal_capture(&auth, usd("40.00"));
    request.authorized_amount = usd("100.00");
    request.final_capture = true;
    let capture = app.captured(request).await?;
    let authorization = app
        .authorization_as(TENANT_A, Provider::Paypal, &auth)
        .await?;
    assert_eq!(authorization.status(), AuthorizationStatus::Closed);
    assert_eq!(authorization.released_by(), ReleasedBy::FinalCapture);
    assert_eq!(cents(&authorization.released_amount), Some(6_000));
    assert_eq!(cents(&authorization.remaining_amount), Some(0));
    assert_eq!(authorization.closed_by, capture.id);
    // Nothing is left to release.
    let release = app
        .release_as(TENANT_A, release_request(Provider::Paypal, &auth, None))
        .await;
    refused(release, Code::FailedPrecondition, "AUTHORIZATION_CLOSED")?;
    app.stop().await
}

async fn payment_options_releases_the_rest_of_a_lesser_capture_by_itself(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app
        .authorize_at("payment_options", "EUR", "80.00", "APPROVE")
        .await?;
    let mut request = capture_request(Provider::PaymentOptions, &auth, money("EUR", "30.00"));
    request.authorized_amount = money("EUR", "80.00");
    app.captured(request).await?;
    let answer = app
        .release_as(
            TENANT_A,
            release_request(Provider::PaymentOptions, &auth, None),
        )
        .await?;
    let release = answer.release.ok_or("no release")?;
    assert_eq!(release.status(), CaptureStatus::Completed, "{release:?}");
    assert_eq!(release.released_by(), ReleasedBy::ProviderAutomatic);
    // No call was made: the provider never answered it.
    assert_eq!(release.provider_status, "");
    assert_eq!(release.provider_release_id, "");
    let authorization = answer.authorization.ok_or("no authorization")?;
    assert_eq!(authorization.status(), AuthorizationStatus::Released);
    assert_eq!(cents(&authorization.released_amount), Some(5_000));
    // At PaymentOptions the capture released the rest; no void was sent.
    let hold = hold_at_sandbox(&app, &auth).await?;
    assert_eq!(hold, (8_000, 3_000, 5_000, 1, false));
    app.stop().await
}

async fn every_provider_releases_an_uncaptured_authorization(db: Db) -> TestResult {
    let app = TestApp::spawn_with(db, |config| {
        config.reconcile.interval = Duration::from_millis(100);
        config.reconcile.min_age = Duration::ZERO;
    })
    .await?;
    for (provider, name) in [
        (Provider::Paypal, "paypal"),
        (Provider::Checkout, "checkout"),
        (Provider::Cybersource, "cybersource"),
        (Provider::PaymentOptions, "payment_options"),
        (Provider::Stax, "stax"),
    ] {
        let auth = app.authorize_at(name, "USD", "25.00", "APPROVE").await?;
        let answer = app
            .release_as(TENANT_A, release_request(provider, &auth, usd("25.00")))
            .await?;
        let mut release = answer.release.ok_or("no release")?;
        // Checkout.com accepts a void and confirms it later: the reconciler asks.
        let deadline = Instant::now() + Duration::from_secs(10);
        while release.status() == CaptureStatus::Pending && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let read = app.authorization_as(TENANT_A, provider, &auth).await?;
            release = read.releases.into_iter().next().ok_or("no release")?;
        }
        assert_eq!(
            release.status(),
            CaptureStatus::Completed,
            "{name}: {release:?}"
        );
        assert_eq!(release.released_by(), ReleasedBy::VoidCall, "{name}");
        assert!(!release.provider_status.is_empty(), "{name}: {release:?}");
        let authorization = app.authorization_as(TENANT_A, provider, &auth).await?;
        assert_eq!(
            authorization.status(),
            AuthorizationStatus::Released,
            "{name}"
        );
        assert_eq!(cents(&authorization.released_amount), Some(2_500), "{name}");
        let capture = app
            .capture(capture_request(provider, &auth, usd("1.00")))
            .await;
        refused(capture, Code::FailedPrecondition, "AUTHORIZATION_RELEASED")?;
    }
    app.stop().await
}

async fn a_bad_release_request_names_its_fields_and_writes_nothing(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let request = proto::ReleaseAuthorizationRequest {
        provider: 0,
        authorization_id: "../admin".into(),
        authorized_amount: usd("1.001"),
        request_id: String::new(),
        ..Default::default()
    };
    let status = error_of(app.release_as(TENANT_A, request).await)?;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let mut fields = bad_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "authorization_id",
            "authorized_amount.value",
            "provider",
            "request_id"
        ]
    );
    let listed = app
        .list(TENANT_A, proto::ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());
    let unknown = app
        .authorization_as(TENANT_A, Provider::Paypal, "NEVER-USED")
        .await;
    assert_code(&unknown, Code::NotFound);
    app.stop().await
}

async fn another_tenant_sees_neither_the_authorization_nor_its_release(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "10.00", "APPROVE").await?;
    app.release_as(TENANT_A, release_request(Provider::Paypal, &auth, None))
        .await?;
    let seen_by_b = app
        .authorization_as(TENANT_B_KEY, Provider::Paypal, &auth)
        .await;
    assert_code(&seen_by_b, Code::NotFound);
    // Nor do releases show among captures.
    let listed = app
        .list(TENANT_A, proto::ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty(), "{listed:?}");
    app.stop().await
}

const AUTHORIZATION: &str = "5KX12345AB678901C";

fn void_path() -> String {
    format!("/v2/payments/authorizations/{AUTHORIZATION}/void")
}

async fn an_unknown_release_outcome_is_settled_by_the_reconciler(db: Db) -> TestResult {
    let paypal = MockProvider::paypal_granting_tokens().await?;
    // PayPal voided, but its answer was lost; then it answers the same void again.
    paypal.reply(http::Method::POST, &void_path(), Reply::empty(503));
    paypal.reply(http::Method::POST, &void_path(), Reply::empty(204));
    let base = paypal.url();
    let app = TestApp::spawn_with(db, move |config| {
        use_paypal_at(config, base);
        config.providers.max_retries = 0;
        config.reconcile.interval = Duration::from_millis(100);
        config.reconcile.min_age = Duration::ZERO;
    })
    .await?;
    let request = release_request(Provider::Paypal, AUTHORIZATION, usd("50.00"));
    let unknown = app.release_as(TENANT_A, request).await;
    let release_id = unknown_outcome(unknown, "paypal")?;
    assert!(release_id.starts_with("rel_"), "{release_id}");
    // Meanwhile the authorization is closed to captures.
    let capture = app
        .capture(paypal_capture(AUTHORIZATION, usd("1.00")))
        .await;
    refused(capture, Code::FailedPrecondition, "AUTHORIZATION_RELEASED")?;

    let deadline = Instant::now() + Duration::from_secs(10);
    let authorization = loop {
        let read = app
            .authorization_as(TENANT_A, Provider::Paypal, AUTHORIZATION)
            .await?;
        if read.status() != AuthorizationStatus::Releasing || Instant::now() > deadline {
            break read;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(authorization.status(), AuthorizationStatus::Released);
    assert_eq!(cents(&authorization.released_amount), Some(5_000));
    let release = authorization.releases.first().ok_or("no release")?;
    assert_eq!(release.id, release_id);
    assert_eq!(release.status(), CaptureStatus::Completed);
    // Both sendings were one void under one key; no capture was sent.
    let voids = paypal.seen(&void_path());
    assert_eq!(voids.len(), 2, "{voids:?}");
    assert!(voids
        .iter()
        .all(|v| v.header("paypal-request-id") == Some(release_id.as_str())));
    assert!(paypal
        .requests()
        .iter()
        .all(|r| !r.path.ends_with("/capture")));
    app.stop().await
}

async fn a_refused_release_reopens_the_authorization(db: Db) -> TestResult {
    let paypal = MockProvider::paypal_granting_tokens().await?;
    paypal.reply(
        http::Method::POST,
        &void_path(),
        Reply::json(
            422,
            r#"{"name":"UNPROCESSABLE_ENTITY","details":[{"issue":"CANNOT_BE_VOIDED","description":"A reauthorization cannot be voided."}],"debug_id":"dbg-1"}"#,
        ),
    );
    let capture_path = format!("/v2/payments/authorizations/{AUTHORIZATION}/capture");
    paypal.reply(
        http::Method::POST,
        &capture_path,
        Reply::json(
            201,
            r#"{"id":"2GG279541U471931P","status":"COMPLETED","amount":{"currency_code":"USD","value":"5.00"}}"#,
        ),
    );
    let app = TestApp::spawn_against_paypal(db, &paypal.url()).await?;
    let refused_release = app
        .release_as(
            TENANT_A,
            release_request(Provider::Paypal, AUTHORIZATION, None),
        )
        .await;
    let status = error_of(refused_release)?;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let authorization = app
        .authorization_as(TENANT_A, Provider::Paypal, AUTHORIZATION)
        .await?;
    assert_eq!(authorization.status(), AuthorizationStatus::Open);
    let release = authorization.releases.first().ok_or("no release")?;
    assert_eq!(release.status(), CaptureStatus::Failed);
    assert_eq!(
        release.error.as_ref().map(|e| e.code.as_str()),
        Some("CANNOT_BE_VOIDED")
    );
    // The authorization takes captures again.
    let capture = app
        .captured(paypal_capture(AUTHORIZATION, usd("5.00")))
        .await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    app.stop().await
}

async fn a_watch_of_the_authorization_sees_its_release(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "30.00", "APPROVE").await?;
    let capture = app.captured(paypal_capture(&auth, usd("10.00"))).await?;
    let mut watch = app
        .watch(
            TENANT_A,
            proto::WatchCapturesRequest {
                since: 1,
                authorization_id: auth.clone(),
                ..Default::default()
            },
        )
        .await?;
    let release = app
        .release_as(TENANT_A, release_request(Provider::Paypal, &auth, None))
        .await?
        .release
        .ok_or("no release")?;
    let mut seen = Vec::new();
    // After the first change (the capture's CREATED, cursor 1): three.
    while seen.len() < 3 {
        let change = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await??
            .ok_or("the watch ended")?;
        seen.push(change);
    }
    // The capture's two changes carry the capture; the release's carry the release.
    let described: Vec<(String, CaptureStatus, bool, bool)> = seen
        .iter()
        .map(|c| {
            (
                c.capture_id.clone(),
                c.status(),
                c.capture.is_some(),
                c.release.is_some(),
            )
        })
        .collect();
    assert_eq!(
        described,
        vec![
            (capture.id.clone(), CaptureStatus::Completed, true, false),
            (release.id.clone(), CaptureStatus::Processing, false, true),
            (release.id.clone(), CaptureStatus::Completed, false, true),
        ]
    );
    let last = seen
        .last()
        .and_then(|c| c.release.clone())
        .ok_or("no release")?;
    assert_eq!(last.released_by(), ReleasedBy::VoidCall);
    app.stop().await
}

/// One authorization at the sandbox (`GET /sandbox/book/holds`): authorized, captured and
/// released in cents, how many releases, and whether a void call made one.
async fn hold_at_sandbox(
    app: &TestApp,
    authorization_id: &str,
) -> Result<(i64, i64, i64, usize, bool), Box<dyn std::error::Error>> {
    let holds: Vec<serde_json::Value> =
        reqwest::get(format!("http://{}/sandbox/book/holds", app.http_addr))
            .await?
            .error_for_status()?
            .json()
            .await?;
    let hold = holds
        .iter()
        .find(|h| h["authorization_id"] == authorization_id)
        .ok_or("not in the sandbox's holds")?;
    let cents_of = |field: &str| {
        cents(&Some(proto::Money {
            currency_code: "USD".into(),
            value: hold[field]["value"].as_str().unwrap_or_default().to_owned(),
        }))
        .ok_or(format!("no {field}"))
    };
    let releases = hold["releases"].as_array().map_or(0, Vec::len);
    Ok((
        cents_of("authorized")?,
        cents_of("captured")?,
        cents_of("released")?,
        releases,
        hold["voided"] == true,
    ))
}

async fn releases_racing_captures_on_two_replicas_never_exceed_the_authorization(
    db: Db,
) -> TestResult {
    let first = TestApp::spawn(db).await?;
    let (url, providers) = (first.database_url.clone(), first.sandbox_env.clone());
    // The second replica: the same database, the first one's sandbox as its providers.
    let second = TestApp::spawn_with(db, move |config| {
        config.database_url = url.into();
        config.sandbox = capture_service::config::SandboxMode::Off;
        for (name, value) in providers {
            config.providers.sources.set_var(name, value);
        }
    })
    .await?;
    for round in 0..3 {
        let auth = first.authorize("USD", "100.00", "APPROVE").await?;
        let mut calls = tokio::task::JoinSet::new();
        for n in 0..8 {
            let replica = if n % 2 == 0 { &first } else { &second };
            let mut client = replica.client();
            let mut request = paypal_capture(&auth, usd("15.00"));
            request.authorized_amount = usd("100.00");
            calls.spawn(async move {
                client
                    .capture(TestApp::authed_request(request, TENANT_A))
                    .await
                    .map(|_| ())
            });
            if n == 3 + round {
                for replica in [&first, &second] {
                    let mut client = replica.client();
                    let request = release_request(Provider::Paypal, &auth, usd("100.00"));
                    calls.spawn(async move {
                        client
                            .release_authorization(TestApp::authed_request(request, TENANT_A))
                            .await
                            .map(|_| ())
                    });
                }
            }
        }
        while let Some(call) = calls.join_next().await {
            // Each call succeeds, or is refused because the authorization was released (or
            // would be exceeded); nothing else.
            if let Err(status) = call? {
                let reason = error_info(&status).map(|(reason, _)| reason);
                assert!(
                    status.code() == Code::FailedPrecondition
                        && matches!(
                            reason.as_deref(),
                            Some("AUTHORIZATION_RELEASED" | "AMOUNT_EXCEEDS_AUTHORIZATION")
                        ),
                    "{status:?}"
                );
            }
        }
        let state = first
            .authorization_as(TENANT_A, Provider::Paypal, &auth)
            .await?;
        assert_eq!(state.status(), AuthorizationStatus::Released, "{state:?}");
        let completed = state
            .releases
            .iter()
            .filter(|r| r.status() == CaptureStatus::Completed)
            .count();
        assert_eq!(completed, 1, "one release, {:?}", state.releases);
        let (captured, released) = (
            cents(&state.captured_amount).ok_or("captured")?,
            cents(&state.released_amount).ok_or("released")?,
        );
        assert!(captured + released <= 10_000, "{captured} + {released}");
        let (authorized, charged, voided, releases, _) = hold_at_sandbox(&first, &auth).await?;
        assert_eq!(releases, 1, "released once at the provider");
        assert!(charged + voided <= authorized, "{charged} + {voided}");
        assert_eq!(charged, captured, "every charge is a completed capture");
        // The void waited for the captures in flight at the release: it released exactly what
        // the service says, and voided no capture over.
        assert_eq!(released, voided);
    }
    second.stop().await?;
    first.stop().await
}

async fn a_final_capture_at_stax_is_followed_by_a_void_of_the_rest(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize_at("stax", "USD", "50.00", "APPROVE").await?;
    let mut request = capture_request(Provider::Stax, &auth, usd("20.00"));
    request.authorized_amount = usd("50.00");
    request.final_capture = true;
    let capture = app.captured(request).await?;
    assert_eq!(capture.status(), CaptureStatus::Completed);
    // Stax keeps the rest held after a capture: the service voids it right after.
    let deadline = Instant::now() + Duration::from_secs(10);
    let authorization = loop {
        let read = app
            .authorization_as(TENANT_A, Provider::Stax, &auth)
            .await?;
        if read.status() == AuthorizationStatus::Released || Instant::now() > deadline {
            break read;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        authorization.status(),
        AuthorizationStatus::Released,
        "{authorization:?}"
    );
    assert_eq!(authorization.released_by(), ReleasedBy::VoidCall);
    assert_eq!(cents(&authorization.released_amount), Some(3_000));
    assert_eq!(authorization.closed_by, capture.id);
    let release = authorization.releases.first().ok_or("no release")?;
    assert_eq!(release.request_id, format!("release-after-{}", capture.id));
    let hold = hold_at_sandbox(&app, &auth).await?;
    assert_eq!(hold, (5_000, 2_000, 3_000, 1, true));
    app.stop().await
}
