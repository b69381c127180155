//! Hostile load against a real service process: the figures behind README's promises about
//! silent connections and capture storms. It starts the service binary (any build: pass its
//! path, so an older release can be measured the same way) under a container-like open-file
//! limit, with PayPal served by a slow stand-in in this process, and prints one JSON line.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example red_team -- silent target/release/capture-service 2000
//! cargo run --release --example red_team -- storm  target/release/capture-service 6000 [postgres]
//! cargo run --release --example red_team -- slowbody target/release/capture-service 1030
//! ```
//! - `silent N`: N TCP connections to the gRPC port that never send a byte and N to the HTTP
//!   port that send half a request head; then, 15 s later, how many are still open, whether a
//!   new `/healthz` and a new gRPC channel get an answer, and the service's open files.
//! - `slowbody N`: N connections to the HTTP port that send the whole head of a webhook
//!   delivery announcing a 100,000-byte body, one byte of it, then a byte a second; whether a
//!   new `/healthz` answers (within 5 s) while they do, and how many are still open 15 s and
//!   45 s on.
//! - `storm N`: N concurrent captures against a provider that answers after 1 s (the service's
//!   provider timeout is 2 s); the codes they got, their p50/p99, the service's peak RSS and
//!   open files, and GetCapture's latency during the storm.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use capture_service::proto::capture_service_client::CaptureServiceClient;
use capture_service::proto::{self, CaptureRequest, GetCaptureRequest};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tonic::metadata::MetadataValue;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const KEY: &str = "red-team-key-0123456789";
const OPEN_FILES: u32 = 1024;
const PROVIDER_DELAY: Duration = Duration::from_secs(1);

struct Service {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of /proc/PID/status, in kB.
    fn status_kb(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn free_addr() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A PayPal that answers every capture COMPLETED after [`PROVIDER_DELAY`].
async fn slow_paypal() -> Result<String> {
    let router = Router::new()
        .route(
            "/v1/oauth2/token",
            post(|| async {
                Json(serde_json::json!({"access_token": "A21AA-red", "token_type": "Bearer", "expires_in": 32400}))
            }),
        )
        .route(
            "/v2/payments/authorizations/{id}/capture",
            post(|body: Json<serde_json::Value>| async move {
                tokio::time::sleep(PROVIDER_DELAY).await;
                (
                    axum::http::StatusCode::CREATED,
                    Json(serde_json::json!({
                        "id": "CAPTURE-RED", "status": "COMPLETED", "amount": body.0["amount"],
                        "final_capture": false,
                    })),
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{addr}"))
}

async fn start_service(binary: &str, database_url: Option<String>) -> Result<Service> {
    let dir = tempfile::tempdir()?;
    let (grpc, http) = (free_addr()?, free_addr()?);
    let database_url = database_url.unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("capture.db").display()
        )
    });
    let digest = hex::encode(Sha256::digest(KEY.as_bytes()));
    let mut command = Command::new("sh");
    // The limit a typical container has: soft and hard.
    command
        .arg("-c")
        .arg(format!("ulimit -n {OPEN_FILES} && exec \"$0\""))
        .arg(binary);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("CAPTURE_")) {
        command.env_remove(name);
    }
    let child = command
        .current_dir(dir.path())
        .env("CAPTURE_DATABASE_URL", database_url)
        .env("CAPTURE_GRPC_ADDR", grpc.to_string())
        .env("CAPTURE_HTTP_ADDR", http.to_string())
        .env("CAPTURE_SANDBOX", "off")
        .env("CAPTURE_API_KEYS", format!("red:{digest}"))
        .env("CAPTURE_PAYPAL_CLIENT_ID", "red")
        .env("CAPTURE_PAYPAL_CLIENT_SECRET", "red")
        .env("CAPTURE_PAYPAL_BASE_URL", slow_paypal().await?)
        .env("CAPTURE_PROVIDER_TIMEOUT_SECONDS", "2")
        .env("CAPTURE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log"))?)
        .spawn()?;
    let service = Service {
        child,
        grpc,
        http,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if healthz(service.http).await {
            return Ok(service);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the service did not start".into())
}

async fn healthz(http: SocketAddr) -> bool {
    reqwest::Client::new()
        .get(format!("http://{http}/healthz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

async fn grpc_answers(grpc: SocketAddr) -> bool {
    let attempt = async {
        let mut client = CaptureServiceClient::connect(format!("http://{grpc}")).await?;
        let answer = client
            .get_capture(authed(GetCaptureRequest {
                id: "cap_01JDQ3W5X8K2M4N6P8R0S2T4V6".into(),
            })?)
            .await;
        Result::Ok(answer.err().map(|s| s.code()) == Some(tonic::Code::NotFound))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), attempt).await,
        Ok(Ok(true))
    )
}

fn authed<T>(message: T) -> Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {KEY}"))?,
    );
    Ok(request)
}

/// Whether the server closed the connection (a read returns end of stream or an error).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

async fn silent(binary: &str, n: usize) -> Result<serde_json::Value> {
    let service = start_service(binary, None).await?;
    // Opened 200 at a time: a connect the kernel's full backlog drops waits out its 2 s.
    let mut streams = Vec::with_capacity(2 * n);
    let mut refused = 0;
    let targets: Vec<(SocketAddr, &'static [u8])> = (0..2 * n)
        .map(|i| {
            if i % 2 == 0 {
                (service.grpc, &b""[..])
            } else {
                (service.http, &b"GET /healthz HTTP/1.1\r\nHost: x\r\n"[..])
            }
        })
        .collect();
    for batch in targets.chunks(200) {
        let opened =
            futures_util::future::join_all(batch.iter().map(|&(addr, first)| async move {
                let mut stream =
                    tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
                        .await
                        .ok()?
                        .ok()?;
                let _ = stream.write_all(first).await;
                Some(stream)
            }))
            .await;
        for stream in opened {
            match stream {
                Some(stream) => streams.push(stream),
                None => refused += 1,
            }
        }
    }
    let files_during = service.open_files();
    let healthz_during = healthz(service.http).await;
    let grpc_during = grpc_answers(service.grpc).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let mut still_open = 0;
    for stream in &mut streams {
        if !closed_by_server(stream).await {
            still_open += 1;
        }
    }
    Ok(serde_json::json!({
        "scenario": "silent", "connections": 2 * n, "connect_failed": refused,
        "service_open_files_during": files_during,
        "new_healthz_answered_during": healthz_during,
        "new_grpc_channel_answered_during": grpc_during,
        "still_open_after_15s": still_open,
        "new_healthz_answered_after": healthz(service.http).await,
        "new_grpc_channel_answered_after": grpc_answers(service.grpc).await,
        "service_open_files_after": service.open_files(),
    }))
}

async fn slowbody(binary: &str, n: usize) -> Result<serde_json::Value> {
    let service = start_service(binary, None).await?;
    let head = b"POST /webhooks/checkout HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Cko-Signature: 00\r\nContent-Length: 100000\r\n\r\n{";
    let mut senders = Vec::with_capacity(n);
    let mut refused = 0;
    let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for batch in (0..n).collect::<Vec<_>>().chunks(200) {
        let opened = futures_util::future::join_all(batch.iter().map(|_| async {
            let mut stream =
                tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(service.http))
                    .await
                    .ok()?
                    .ok()?;
            stream.write_all(head).await.ok()?;
            Some(stream)
        }))
        .await;
        for stream in opened {
            let Some(mut stream) = stream else {
                refused += 1;
                continue;
            };
            let open = Arc::clone(&open);
            open.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // A byte a second until the server closes the connection.
            senders.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if closed_by_server(&mut stream).await || stream.write_all(b" ").await.is_err()
                    {
                        open.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        return;
                    }
                }
            }));
        }
    }
    let started = Instant::now();
    let healthz_during = {
        let began = Instant::now();
        let answered = reqwest::Client::new()
            .get(format!("http://{}/healthz", service.http))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        (answered, began.elapsed().as_millis() as u64)
    };
    let open_at = |at: Duration| {
        let open = Arc::clone(&open);
        async move {
            tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
            open.load(std::sync::atomic::Ordering::SeqCst)
        }
    };
    let after_15s = open_at(Duration::from_secs(15)).await;
    let after_45s = open_at(Duration::from_secs(45)).await;
    let healthz_after = healthz(service.http).await;
    for sender in senders {
        sender.abort();
    }
    Ok(serde_json::json!({
        "scenario": "slowbody", "connections": n, "connect_failed": refused,
        "new_healthz_answered_during": healthz_during.0,
        "new_healthz_ms_during": healthz_during.1,
        "still_open_after_15s": after_15s,
        "still_open_after_45s": after_45s,
        "new_healthz_answered_after": healthz_after,
    }))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e3
}

async fn storm(binary: &str, n: usize, database_url: Option<String>) -> Result<serde_json::Value> {
    let service = Arc::new(start_service(binary, database_url).await?);
    // Many callers: 64 channels, as 64 client processes would open.
    let mut channels = Vec::new();
    for _ in 0..64 {
        channels.push(CaptureServiceClient::connect(format!("http://{}", service.grpc)).await?);
    }
    let first = channels[0]
        .clone()
        .capture(authed(capture_request("AUTH-FIRST", 0))?)
        .await?
        .into_inner()
        .capture
        .map(|c| c.id)
        .unwrap_or_default();

    let peak = Arc::new(std::sync::Mutex::new((0u64, 0usize)));
    let sampler = {
        let service = Arc::clone(&service);
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                let rss = service.status_kb("VmRSS:");
                let files = service.open_files();
                if let Ok(mut p) = peak.lock() {
                    *p = (p.0.max(rss), p.1.max(files));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let mut client = channels[i % channels.len()].clone();
        tasks.push(tokio::spawn(async move {
            let began = Instant::now();
            let request = authed(capture_request(&format!("AUTH-{i}"), i + 1));
            let code = match request {
                Ok(request) => match client.capture(request).await {
                    Ok(_) => tonic::Code::Ok,
                    Err(status) => status.code(),
                },
                Err(_) => tonic::Code::Unknown,
            };
            (began.elapsed(), code)
        }));
    }
    // GetCapture while the storm runs.
    let mut reads = Vec::new();
    let mut reader = channels[1].clone();
    for _ in 0..20 {
        let began = Instant::now();
        let ok = reader
            .get_capture(authed(GetCaptureRequest { id: first.clone() })?)
            .await
            .is_ok();
        reads.push((began.elapsed(), ok));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut latencies = Vec::with_capacity(n);
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks {
        let (latency, code) = task.await?;
        latencies.push(latency);
        *codes.entry(format!("{code:?}")).or_default() += 1;
    }
    let wall = started.elapsed();
    sampler.abort();
    latencies.sort();
    let mut read_latencies: Vec<Duration> = reads.iter().map(|(d, _)| *d).collect();
    read_latencies.sort();
    let (rss_kb, files) = peak.lock().map(|p| *p).unwrap_or_default();
    Ok(serde_json::json!({
        "scenario": "storm", "captures": n, "seconds": wall.as_secs_f64(),
        "codes": codes,
        "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99),
        "get_during_ok": reads.iter().filter(|(_, ok)| *ok).count(),
        "get_during_of": reads.len(),
        "get_during_p99_ms": percentile(&read_latencies, 0.99),
        "service_peak_rss_mb": rss_kb / 1024,
        "service_peak_open_files": files,
    }))
}

fn capture_request(authorization_id: &str, i: usize) -> CaptureRequest {
    CaptureRequest {
        provider: proto::Provider::Paypal as i32,
        authorization_id: authorization_id.to_owned(),
        amount: Some(proto::Money {
            currency_code: "USD".into(),
            value: "10.00".into(),
        }),
        request_id: format!("red-{i}-{}", std::process::id()),
        ..Default::default()
    }
}

/// A fresh database on the local PostgreSQL.
async fn fresh_postgres() -> Result<String> {
    use sea_orm::ConnectionTrait;
    let base = std::env::var("CAPTURE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let name = format!("red_team_{}", std::process::id());
    let admin = sea_orm::Database::connect(format!("{base}/postgres")).await?;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    Ok(format!("{base}/{name}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: red_team silent|slowbody|storm BINARY N [postgres]";
    let (mode, binary) = (
        args.first().ok_or(usage)?,
        args.get(1).ok_or(usage)?.clone(),
    );
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2000);
    let postgres = args.get(3).is_some_and(|a| a == "postgres");
    let report = match mode.as_str() {
        "silent" => silent(&binary, n).await?,
        "slowbody" => slowbody(&binary, n).await?,
        "storm" => {
            let url = if postgres {
                Some(fresh_postgres().await?)
            } else {
                None
            };
            let mut report = storm(&binary, n, url).await?;
            report["db"] = serde_json::json!(if postgres { "postgres" } else { "sqlite" });
            report
        }
        _ => return Err(usage.into()),
    };
    println!("{report}");
    Ok(())
}
