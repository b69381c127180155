//! The full card number PaymentOptions returns never lands anywhere: the real service binary
//! runs in sandbox mode with debug logs and a SQLite file, captures at the sandbox's
//! PaymentOptions (which answers with the full test card number, as PaymentOptions does), is
//! stopped, and then its database file, its write-ahead log and everything it printed are
//! searched for the number.

use std::error::Error;
use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use capture_service::proto::capture_service_client::CaptureServiceClient;
use capture_service::proto::{self, CaptureRequest, CaptureStatus};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

type TestResult = Result<(), Box<dyn Error>>;

const DEV_KEY: &str = "dev_pan_test_key_0123456789";
const FULL_PAN: &str = "4111111111111111";
const MASKED_PAN: &str = "411111******1111";

/// The service process; killed when dropped, so a failing test never leaves it running.
struct Service(Child);

impl Service {
    /// Asks the service to stop (SIGTERM, as an orchestrator would) and waits for it; kills it
    /// if it has not stopped within ten seconds.
    fn stop(&mut self) -> Result<(), Box<dyn Error>> {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.0.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.0.kill()?;
        self.0.wait()?;
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A port nobody listens on right now.
fn free_addr() -> Result<SocketAddr, std::io::Error> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn start(dir: &Path, grpc: SocketAddr, http: SocketAddr) -> Result<Service, Box<dyn Error>> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_capture-service"));
    // Only this test's settings: nothing from the environment the tests run in.
    for (name, _) in std::env::vars() {
        if name.starts_with("CAPTURE_") {
            command.env_remove(name);
        }
    }
    let database = dir.join("capture.db");
    command
        .current_dir(dir)
        .env(
            "CAPTURE_DATABASE_URL",
            format!("sqlite://{}?mode=rwc", database.display()),
        )
        .env("CAPTURE_GRPC_ADDR", grpc.to_string())
        .env("CAPTURE_HTTP_ADDR", http.to_string())
        .env("CAPTURE_SANDBOX", "on")
        .env("CAPTURE_LOG", "debug")
        .env("CAPTURE_DEV_API_KEY", DEV_KEY)
        .env("CAPTURE_DEV_API_KEY_FILE", "")
        .env("CAPTURE_PROVIDER_TIMEOUT_SECONDS", "2")
        .stdin(Stdio::null())
        .stdout(File::create(dir.join("stdout.log"))?)
        .stderr(File::create(dir.join("stderr.log"))?);
    Ok(Service(command.spawn()?))
}

async fn wait_ready(http: SocketAddr, service: &mut Service) -> TestResult {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = service.0.try_wait()? {
            return Err(format!("the service exited early: {status}").into());
        }
        let ready = client
            .get(format!("http://{http}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the service did not become ready within 60 s".into())
}

async fn authorize(
    http: SocketAddr,
    value: &str,
    scenario: &str,
) -> Result<String, Box<dyn Error>> {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "http://{http}/sandbox/payment_options/authorizations"
        ))
        .json(&serde_json::json!({
            "amount": {"currency_code": "USD", "value": value},
            "scenario": scenario,
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer["id"].as_str().ok_or("no id")?.to_owned())
}

async fn capture(
    client: &mut CaptureServiceClient<Channel>,
    authorization_id: &str,
    value: &str,
    request_id: &str,
) -> Result<Result<proto::Capture, tonic::Status>, Box<dyn Error>> {
    let mut request = tonic::Request::new(CaptureRequest {
        provider: proto::Provider::PaymentOptions as i32,
        authorization_id: authorization_id.to_owned(),
        amount: Some(proto::Money {
            currency_code: "USD".into(),
            value: value.into(),
        }),
        request_id: request_id.to_owned(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {DEV_KEY}"))?,
    );
    Ok(client
        .capture(request)
        .await
        .map(|r| r.into_inner().capture.unwrap_or_default()))
}

/// The bytes of `path`, or nothing if it does not exist.
fn bytes(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_card_number_reaches_neither_the_database_nor_the_logs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (grpc, http) = (free_addr()?, free_addr()?);
    let mut service = start(dir.path(), grpc, http)?;
    wait_ready(http, &mut service).await?;
    let mut client = CaptureServiceClient::connect(format!("http://{grpc}")).await?;

    // A completed capture and a declined one: both answers carry the full card number.
    let approved = authorize(http, "100.00", "APPROVE").await?;
    let done = capture(&mut client, &approved, "100.00", "pan-1").await??;
    assert_eq!(done.status(), CaptureStatus::Completed);
    let declined = authorize(http, "10.00", "DECLINED").await?;
    let refused = capture(&mut client, &declined, "10.00", "pan-2").await??;
    assert_eq!(refused.status(), CaptureStatus::Declined);
    // And a refusal, whose error travels through logs and the stored failure.
    let over = capture(&mut client, &approved, "1.00", "pan-3").await?;
    assert!(over.is_err(), "{over:?}");

    drop(client);
    service.stop()?;

    let database = dir.path().join("capture.db");
    let db = bytes(&database)?;
    let wal = bytes(&dir.path().join("capture.db-wal"))?;
    let stdout = bytes(&dir.path().join("stdout.log"))?;
    let stderr = bytes(&dir.path().join("stderr.log"))?;
    assert!(!db.is_empty(), "no database file");
    for (name, content) in [
        ("database", &db),
        ("WAL", &wal),
        ("stdout", &stdout),
        ("stderr", &stderr),
    ] {
        assert!(
            !contains(content, FULL_PAN),
            "the full card number is in the {name}"
        );
    }
    // The operator chose the development key (CAPTURE_DEV_API_KEY): it is never printed.
    for (name, content) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !contains(content, DEV_KEY),
            "the development key is in {name}"
        );
    }
    assert!(
        contains(&db, MASKED_PAN) || contains(&wal, MASKED_PAN),
        "the masked card number should be kept in the stored answer"
    );
    // The scan means something only if the logs were written at debug level.
    let logs = [stdout.as_slice(), stderr.as_slice()].concat();
    assert!(
        contains(&logs, "PaymentOptions answered the capture"),
        "no connector log line"
    );
    assert!(
        contains(&logs, "DEBUG") || contains(&logs, "debug"),
        "not at debug level"
    );
    Ok(())
}
