//! Webhook deliveries under hostile conditions: senders that never finish their body, a PayPal
//! whose verification never answers, and forged deliveries in a flood. Each bounded delivery
//! gets its answer in time, the health checks stay reachable, and one provider's trouble
//! never takes another's deliveries.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::webhooks::{checkout_event, deliver, hmac_hex};
use crate::common::*;
use crate::on_both_databases;

on_both_databases!(
    a_paypal_that_never_answers_holds_neither_its_senders_nor_other_providers_deliveries,
);

/// Opens a connection that sends the whole head of a webhook delivery announcing a 100,000
/// byte body, then one byte of it, and nothing more.
async fn half_sent_delivery(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            b"POST /webhooks/checkout HTTP/1.1\r\nHost: capture\r\n\
              Content-Type: application/json\r\nCko-Signature: 00\r\n\
              Content-Length: 100000\r\n\r\n{",
        )
        .await?;
    Ok(stream)
}

/// The HTTP status the server answered on `stream`, once it has also closed it; `None` when it
/// is still open at `deadline`.
async fn answered_and_closed(mut stream: TcpStream, deadline: Instant) -> Option<u16> {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
}

/// More half-sent deliveries than the HTTP port takes connections: past the receiving limit
/// they are answered 503 at once and closed, the rest 408 at the body deadline and closed, and
/// `/healthz` answers all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_webhook_bodies_are_cut_off_and_health_stays_reachable() -> TestResult {
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        config.limits.max_connections = 16;
        config.limits.webhook_max_receiving = 4;
        config.limits.http_body_timeout_seconds = 2;
    })
    .await?;
    let mut senders = Vec::new();
    for _ in 0..24 {
        senders.push(half_sent_delivery(app.http_addr).await?);
    }
    // The port is not locked up: health answers while the senders hold what they can.
    let health = tokio::time::timeout(
        Duration::from_secs(2),
        reqwest::get(format!("http://{}/healthz", app.http_addr)),
    )
    .await
    .map_err(|_| "/healthz did not answer within 2 s")??;
    assert_eq!(health.status(), reqwest::StatusCode::OK);

    let deadline = Instant::now() + Duration::from_secs(5);
    let answers = futures_util::future::join_all(
        senders
            .into_iter()
            .map(|stream| answered_and_closed(stream, deadline)),
    )
    .await;
    assert!(
        answers.iter().all(Option::is_some),
        "half-sent deliveries still open 5 s on: {answers:?}"
    );
    let timed_out = answers.iter().filter(|a| **a == Some(408)).count();
    let shed = answers.iter().filter(|a| **a == Some(503)).count();
    assert!(timed_out <= 4, "{answers:?}");
    assert_eq!(timed_out + shed, answers.len(), "{answers:?}");
    app.stop().await
}

/// A listener that accepts connections and never answers: a provider that went silent.
async fn silent_provider() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    Ok(url)
}

/// The five transmission headers PayPal sends.
fn paypal_headers() -> Vec<(&'static str, String)> {
    [
        ("PAYPAL-AUTH-ALGO", "SHA256withRSA"),
        (
            "PAYPAL-CERT-URL",
            "https://api.paypal.com/v1/notifications/certs/CERT-1",
        ),
        (
            "PAYPAL-TRANSMISSION-ID",
            "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
        ),
        ("PAYPAL-TRANSMISSION-SIG", "c2lnbmF0dXJl"),
        ("PAYPAL-TRANSMISSION-TIME", "2026-12-06T10:00:00Z"),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.to_owned()))
    .collect()
}

const PAYPAL_EVENT: &[u8] = br#"{"id":"WH-1","event_type":"PAYMENT.CAPTURE.COMPLETED","resource_type":"capture","resource":{"id":"2GG279541U471931P","status":"COMPLETED"}}"#;

async fn a_paypal_that_never_answers_holds_neither_its_senders_nor_other_providers_deliveries(
    db: Db,
) -> TestResult {
    let paypal = silent_provider().await?;
    let app = TestApp::spawn_with(db, |config| {
        // PayPal is the silent one; the sandbox serves the other providers.
        let vars = &mut config.providers.sources;
        vars.set_var("CAPTURE_PAYPAL_BASE_URL", paypal);
        vars.set_var("CAPTURE_PAYPAL_CLIENT_ID", "test-client");
        vars.set_var("CAPTURE_PAYPAL_CLIENT_SECRET", "test-secret");
        vars.set_var("CAPTURE_PAYPAL_WEBHOOK_ID", "WH-ID-1");
        config.providers.request_timeout = Duration::from_secs(30);
        config.limits.webhook_verify_timeout_ms = 500;
    })
    .await?;

    // One delivery: 503 at the verification deadline, not at the provider's timeout.
    let started = Instant::now();
    let (status, _) = deliver(
        &app,
        "/webhooks/paypal",
        &paypal_headers(),
        PAYPAL_EVENT.to_vec(),
    )
    .await?;
    assert_eq!(status, 503);
    println!(
        "silent PayPal ({db:?}): one delivery answered 503 after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A flood of them, past PayPal's 64 slots: every one is answered in time.
    let headers = paypal_headers();
    let flood = futures_util::future::join_all(
        (0..80).map(|_| deliver(&app, "/webhooks/paypal", &headers, PAYPAL_EVENT.to_vec())),
    );
    let during = async {
        // While PayPal's slots are full of hung verifications, Checkout.com's signed delivery
        // is taken, a forged one is refused as forged, and a PayPal delivery without its
        // headers is refused at once.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let secret = app.sandbox_var("CAPTURE_CHECKOUT_WEBHOOK_SECRET")?;
        let body = checkout_event("evt_during", "payment_captured", "pay_x", "act_x", "ref");
        let signed = deliver(
            &app,
            "/webhooks/checkout",
            &[("Cko-Signature", hmac_hex(&secret, &body)?)],
            body.clone(),
        )
        .await?;
        let forged = deliver(
            &app,
            "/webhooks/checkout",
            &[("Cko-Signature", hmac_hex("not-the-secret", &body)?)],
            body,
        )
        .await?;
        let headless = deliver(&app, "/webhooks/paypal", &[], PAYPAL_EVENT.to_vec()).await?;
        Ok::<_, Box<dyn std::error::Error>>((signed, forged, headless))
    };
    let started = Instant::now();
    let (flooded, during) = tokio::join!(flood, during);
    let ((signed, answer), (forged, _), (headless, _)) = during?;
    assert_eq!(signed, 200, "{answer}");
    assert_eq!(answer["result"], "kept", "{answer}");
    assert_eq!(forged, 401);
    assert_eq!(headless, 401);
    let statuses: Vec<u16> = flooded
        .into_iter()
        .map(|r| r.map(|(status, _)| status))
        .collect::<Result<_, _>>()?;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    println!(
        "silent PayPal ({db:?}): 80 deliveries all answered 503 within {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the flood took {:?}",
        started.elapsed()
    );
    app.stop().await
}

/// Any request on the HTTP port has `CAPTURE_HTTP_REQUEST_TIMEOUT_SECONDS` from its head to its
/// answer: a body trickled into another route (the sandbox's helper) is cut off with 408 and
/// the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_http_request_is_cut_off_at_the_request_deadline() -> TestResult {
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        config.limits.http_request_timeout_seconds = 1;
    })
    .await?;
    let mut stream = TcpStream::connect(app.http_addr).await?;
    stream
        .write_all(
            b"POST /sandbox/paypal/authorizations HTTP/1.1\r\nHost: capture\r\n\
              Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .await?;
    let started = Instant::now();
    let status = answered_and_closed(stream, Instant::now() + Duration::from_secs(5)).await;
    assert_eq!(status, Some(408), "after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    app.stop().await
}
