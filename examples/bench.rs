//! Measures the service end to end: the real app (built by `App::build`, as `main` does) with the
//! built-in PayPal emulator, driven over gRPC by many concurrent clients.
//!
//! ```sh
//! cargo run --release --example bench -- [captures] [concurrency]
//! CAPTURE_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench cargo run --release --example bench
//! ```
//! Prints throughput and latency percentiles for Capture, GetCapture and ListCaptures.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use capture_service::app::App;
use capture_service::config::{ApiKey, Config, SandboxMode};
use capture_service::proto::capture_service_client::CaptureServiceClient;
use capture_service::proto::{self, CaptureRequest, GetCaptureRequest, ListCapturesRequest};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::Request;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const KEY: &str = "bench-key";

fn authed<T>(message: T) -> BenchResult<Request<T>> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {KEY}"))?,
    );
    Ok(request)
}

/// Latencies of one kind of call, and the wall time they took together.
struct Run {
    name: &'static str,
    latencies: Vec<Duration>,
    wall: Duration,
    errors: usize,
}

impl Run {
    fn report(mut self) {
        self.latencies.sort();
        let pct = |p: f64| {
            let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
            self.latencies.get(index).copied().unwrap_or_default()
        };
        println!(
            "{:<13} {:>6} calls {:>4} errors {:>9.1} calls/s  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            self.name,
            self.latencies.len(),
            self.errors,
            self.latencies.len() as f64 / self.wall.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.90).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            pct(1.0).as_secs_f64() * 1e3,
        );
    }
}

/// Runs `count` calls made by `call(i)`, at most `concurrency` at once.
async fn measure<F, Fut, T>(
    name: &'static str,
    count: usize,
    concurrency: usize,
    call: F,
) -> (Run, Vec<T>)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = BenchResult<T>> + Send + 'static,
    T: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let permit = permits.clone().acquire_owned().await;
        let future = call(i);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let began = Instant::now();
            let result = future.await;
            (began.elapsed(), result)
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    let mut values = Vec::with_capacity(count);
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok((latency, Ok(value))) => {
                latencies.push(latency);
                values.push(value);
            }
            Ok((_, Err(e))) => {
                errors += 1;
                if errors == 1 {
                    eprintln!("{name}: first error: {e}");
                }
            }
            Err(_) => errors += 1,
        }
    }
    (
        Run {
            name,
            latencies,
            wall: start.elapsed(),
            errors,
        },
        values,
    )
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let captures = args.first().copied().unwrap_or(2000);
    let concurrency = args.get(1).copied().unwrap_or(32);
    let dir = tempfile::tempdir()?;
    let database_url = std::env::var("CAPTURE_BENCH_DATABASE_URL").unwrap_or_else(|_| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });

    let mut config = Config::load(&HashMap::new())?;
    config.grpc_addr = "127.0.0.1:0".parse()?;
    config.http_addr = "127.0.0.1:0".parse()?;
    config.database_url = database_url.clone().into();
    config.sandbox = SandboxMode::On;
    config.dev_api_key_file = None;
    config.api_keys = vec![ApiKey {
        tenant: "bench".into(),
        sha256: Sha256::digest(KEY.as_bytes()).into(),
    }];
    let app = App::build(config).await.map_err(|e| format!("{e:#}"))?;
    let grpc = app.grpc_addr()?;
    let http = app.http_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    let client = CaptureServiceClient::connect(format!("http://{grpc}")).await?;
    println!(
        "capture-service bench: {captures} captures, concurrency {concurrency}, database {}",
        database_url.split('?').next().unwrap_or_default()
    );

    // One authorization per capture, so the ledger lock measures contention-free captures.
    let web = reqwest::Client::new();
    let mut authorizations = Vec::with_capacity(captures);
    for _ in 0..captures {
        let answer: serde_json::Value = web
            .post(format!("http://{http}/sandbox/paypal/authorizations"))
            .json(&serde_json::json!({"amount": {"currency_code": "USD", "value": "100.00"}}))
            .send()
            .await?
            .json()
            .await?;
        authorizations.push(answer["id"].as_str().unwrap_or_default().to_owned());
    }
    let authorizations = Arc::new(authorizations);

    let capture = |client: CaptureServiceClient<Channel>, auth: Arc<Vec<String>>| {
        move |i: usize| {
            let mut client = client.clone();
            let auth = auth.clone();
            async move {
                let request = CaptureRequest {
                    provider: proto::Provider::Paypal as i32,
                    authorization_id: auth[i].clone(),
                    amount: Some(proto::Money {
                        currency_code: "USD".into(),
                        value: "12.34".into(),
                    }),
                    request_id: format!("bench-{i}"),
                    ..Default::default()
                };
                let response = client.capture(authed(request)?).await?.into_inner();
                Ok(response.capture.map(|c| c.id).unwrap_or_default())
            }
        }
    };
    let (run, ids) = measure(
        "Capture",
        captures,
        concurrency,
        capture(client.clone(), authorizations.clone()),
    )
    .await;
    run.report();
    let (run, _) = measure(
        "Capture replay",
        captures,
        concurrency,
        capture(client.clone(), authorizations),
    )
    .await;
    run.report();

    let ids = Arc::new(ids);
    let get = {
        let client = client.clone();
        let ids = ids.clone();
        move |i: usize| {
            let mut client = client.clone();
            let id = ids[i % ids.len().max(1)].clone();
            async move {
                client
                    .get_capture(authed(GetCaptureRequest { id })?)
                    .await?;
                Ok(())
            }
        }
    };
    let (run, _) = measure("GetCapture", captures, concurrency, get).await;
    run.report();
    let list = move |_: usize| {
        let mut client = client.clone();
        async move {
            client
                .list_captures(authed(ListCapturesRequest {
                    page_size: 50,
                    ..Default::default()
                })?)
                .await?;
            Ok(())
        }
    };
    let (run, _) = measure("ListCaptures", captures / 4, concurrency, list).await;
    run.report();

    let _ = stop.send(());
    server.await?.map_err(|e| format!("{e:#}"))?;
    Ok(())
}
