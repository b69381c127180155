//! Connections that open and say nothing are closed after their timeout, and never lock out
//! the clients that do speak.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Db, TestApp, TestResult};
use capture_service::proto;

const SILENT: usize = 150;

async fn app_with_short_timeouts() -> Result<TestApp, Box<dyn std::error::Error>> {
    TestApp::spawn_with(Db::Sqlite, |config| {
        config.limits.max_connections = 64;
        config.limits.grpc_handshake_timeout_seconds = 1;
        config.limits.http_header_read_timeout_seconds = 1;
        config.limits.grpc_keepalive_interval_seconds = 1;
        config.limits.grpc_keepalive_timeout_seconds = 1;
        config.limits.grpc_max_concurrent_streams = 7;
    })
    .await
}

/// Opens `n` connections to `addr`, each sending `first` (maybe nothing) and then staying
/// silent.
async fn silent_connections(
    addr: std::net::SocketAddr,
    n: usize,
    first: &[u8],
) -> std::io::Result<Vec<TcpStream>> {
    let mut connections = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await?;
        if !first.is_empty() {
            stream.write_all(first).await?;
        }
        connections.push(stream);
    }
    Ok(connections)
}

/// Waits until the server has closed every connection (end of stream or reset), reading and
/// discarding whatever it sent first. Fails if one is still open at `deadline`.
async fn all_closed(connections: Vec<TcpStream>, within: Duration) -> TestResult {
    let deadline = Instant::now() + within;
    for mut stream in connections {
        let mut buf = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut buf)).await {
                Err(_) => return Err("a silent connection is still open".into()),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => continue,
            }
        }
    }
    Ok(())
}

async fn healthz(app: &TestApp) -> Result<reqwest::StatusCode, reqwest::Error> {
    Ok(reqwest::Client::new()
        .get(format!("http://{}/healthz", app.http_addr))
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_speaking_clients_keep_working() -> TestResult {
    let app = app_with_short_timeouts().await?;
    // The test's own channel is open before the flood.
    let before = app
        .list(crate::common::TENANT_A_KEY, Default::default())
        .await;
    assert!(before.is_ok(), "{before:?}");

    // Nothing at all on the gRPC port; half a request head on the HTTP port.
    let grpc = silent_connections(app.grpc_addr, SILENT, b"").await?;
    let http = silent_connections(
        app.http_addr,
        SILENT,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
    )
    .await?;

    // The open channel is served while the silent ones hold every slot.
    let during = app
        .list(crate::common::TENANT_A_KEY, Default::default())
        .await;
    assert!(during.is_ok(), "{during:?}");

    // 150 per port through 64 slots with a 1 s deadline: all closed within a few rounds.
    all_closed(grpc, Duration::from_secs(15)).await?;
    all_closed(http, Duration::from_secs(15)).await?;

    // New clients get in again, on both ports.
    assert_eq!(healthz(&app).await?, reqwest::StatusCode::OK);
    let mut fresh = proto::capture_service_client::CaptureServiceClient::connect(format!(
        "http://{}",
        app.grpc_addr
    ))
    .await?;
    let unauthenticated = fresh
        .list_captures(proto::ListCapturesRequest::default())
        .await;
    assert_eq!(
        unauthenticated.err().map(|s| s.code()),
        Some(tonic::Code::Unauthenticated),
        "a new channel reaches the service"
    );
    Ok(())
}

/// The client preface and an empty SETTINGS frame (RFC 9113 §3.4, §6.5).
const PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The frames a server sent within `within`, as (type, payload), and whether it then closed.
async fn read_frames(
    stream: &mut TcpStream,
    within: Duration,
) -> Result<(Vec<(u8, Vec<u8>)>, bool), Box<dyn std::error::Error>> {
    let deadline = Instant::now() + within;
    let mut bytes = Vec::new();
    let mut closed = false;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    let mut frames = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 9 {
        let len = usize::from(bytes[at]) << 16
            | usize::from(bytes[at + 1]) << 8
            | usize::from(bytes[at + 2]);
        let kind = bytes[at + 3];
        let end = (at + 9 + len).min(bytes.len());
        frames.push((kind, bytes[at + 9..end].to_vec()));
        at += 9 + len;
    }
    Ok((frames, closed))
}

const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_peer_that_stops_answering_pings_is_closed_and_streams_are_capped() -> TestResult {
    let app = app_with_short_timeouts().await?;
    let mut stream = TcpStream::connect(app.grpc_addr).await?;
    stream.write_all(PREFACE_AND_SETTINGS).await?;
    // Never acknowledge anything: interval 1 s + timeout 1 s, then the server hangs up.
    let (frames, closed) = read_frames(&mut stream, Duration::from_secs(8)).await?;
    assert!(closed, "the connection is still open: {frames:?}");
    assert!(
        frames.iter().any(|(kind, _)| *kind == PING),
        "no keep-alive ping: {frames:?}"
    );

    let settings = frames
        .iter()
        .find(|(kind, payload)| *kind == SETTINGS && !payload.is_empty())
        .map(|(_, payload)| payload.clone())
        .ok_or("no SETTINGS from the server")?;
    let max_streams = settings.chunks(6).find_map(|entry| {
        (entry.len() == 6
            && u16::from_be_bytes([entry[0], entry[1]]) == SETTINGS_MAX_CONCURRENT_STREAMS)
            .then(|| u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]))
    });
    assert_eq!(max_streams, Some(7));
    Ok(())
}
