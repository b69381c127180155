//! The README walkthrough, run as a newcomer would: the real compiled `capture-service` binary
//! in a fresh directory, called with the real `grpcurl` binary (found as `$GRPCURL`, else on
//! `PATH`) and plain HTTP. Only the ports and the working directory differ from the README.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

#[path = "../common/mod.rs"]
mod common;
mod metrics;
mod traces;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Res<T> = Result<T, Box<dyn std::error::Error>>;

const BINARY: &str = env!("CARGO_BIN_EXE_capture-service");

/// The service binary with none of the caller's `CAPTURE_*` variables, run in `dir`.
fn service_command(dir: &Path, envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    for (name, _) in std::env::vars() {
        if name.starts_with("CAPTURE_") {
            command.env_remove(name);
        }
    }
    command.current_dir(dir).stdin(Stdio::null());
    command.envs(envs.iter().copied());
    command
}

fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `capture-service serve`; killed on drop so a failing test leaks no process.
struct Server {
    child: Child,
    dir: tempfile::TempDir,
    grpc_port: u16,
    http_port: u16,
}

impl Server {
    /// Starts the binary in a fresh directory on free ports and waits until `/readyz` answers.
    async fn start(envs: &[(&str, &str)]) -> Res<Server> {
        let mut last_output = String::new();
        // Another process may take a port between probing and binding: try fresh ports again.
        for _ in 0..3 {
            let dir = tempfile::tempdir()?;
            let (grpc_port, http_port) = (free_port()?, free_port()?);
            let grpc_addr = format!("127.0.0.1:{grpc_port}");
            let http_addr = format!("127.0.0.1:{http_port}");
            let mut all = vec![
                ("CAPTURE_GRPC_ADDR", grpc_addr.as_str()),
                ("CAPTURE_HTTP_ADDR", http_addr.as_str()),
            ];
            all.extend_from_slice(envs);
            let child = service_command(dir.path(), &all)
                .stdout(File::create(dir.path().join("stdout.log"))?)
                .stderr(File::create(dir.path().join("stderr.log"))?)
                .spawn()?;
            let mut server = Server {
                child,
                dir,
                grpc_port,
                http_port,
            };
            match server.wait_ready().await? {
                true => return Ok(server),
                false => last_output = server.output(),
            }
            if !last_output.contains("Failed to bind") {
                break;
            }
        }
        Err(format!("capture-service did not start:\n{last_output}").into())
    }

    /// True once `/readyz` answers 200; false if the process exits first; an error after 20 s.
    async fn wait_ready(&mut self) -> Res<bool> {
        let url = format!("http://127.0.0.1:{}/readyz", self.http_port);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(false);
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status() == reqwest::StatusCode::OK {
                    return Ok(true);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("/readyz not ready after 20 s:\n{}", self.output()).into())
    }

    /// `localhost:PORT`, as the README writes it.
    fn grpc_target(&self) -> String {
        format!("localhost:{}", self.grpc_port)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Everything the process wrote, stdout then stderr.
    fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        format!("{}{}", read("stdout.log"), read("stderr.log"))
    }

    /// `kill -TERM <pid>`, then waits up to 10 s for the exit.
    fn terminate(&mut self) -> Res<ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !sent.success() {
            return Err("kill -TERM failed".into());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("still running 10 s after SIGTERM:\n{}", self.output()).into())
    }

    /// `POST /sandbox/paypal/authorizations` with the README's body; the authorization's id.
    async fn authorize(&self) -> Res<String> {
        self.authorize_at("paypal").await
    }

    /// `POST /sandbox/{provider}/authorizations` with the README's body.
    async fn authorize_at(&self, provider: &str) -> Res<String> {
        self.authorize_with(
            provider,
            r#"{"amount":{"currency_code":"USD","value":"100.00"}}"#,
        )
        .await
    }

    /// `POST /sandbox/{provider}/authorizations` with `body`.
    async fn authorize_with(&self, provider: &str, body: &'static str) -> Res<String> {
        let answer: Value = reqwest::Client::new()
            .post(format!(
                "http://localhost:{}/sandbox/{provider}/authorizations",
                self.http_port
            ))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(answer["id"]
            .as_str()
            .ok_or_else(|| format!("no id in the sandbox answer {answer}"))?
            .to_owned())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const NO_GRPCURL: &str = "grpcurl not found: set GRPCURL to its path or put it on PATH, \
     or run the tests with ./scripts/test, which installs it";

fn grpcurl_path() -> Res<PathBuf> {
    if let Some(path) = std::env::var_os("GRPCURL").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            return Err(format!("GRPCURL={} is not a file; {NO_GRPCURL}", path.display()).into());
        }
        return Ok(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("grpcurl"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| NO_GRPCURL.into())
}

/// What one grpcurl run printed.
struct Grpcurl {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Grpcurl {
    fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Asserts the call succeeded and printed every one of `needles`.
    fn ok_with(&self, needles: &[&str]) {
        assert!(self.status.success(), "grpcurl failed:\n{}", self.text());
        assert_contains(&self.stdout, needles);
    }

    /// Asserts the call failed (non-zero exit) and printed every one of `needles`.
    fn failed_with(&self, needles: &[&str]) {
        assert!(!self.status.success(), "succeeded:\n{}", self.text());
        assert_contains(&self.text(), needles);
    }

    /// The JSON answer of a successful call.
    fn json(&self) -> Res<Value> {
        if !self.status.success() {
            return Err(format!("grpcurl failed ({}):\n{}", self.status, self.text()).into());
        }
        serde_json::from_str(&self.stdout)
            .map_err(|e| format!("grpcurl printed no JSON ({e}):\n{}", self.text()).into())
    }
}

/// Fails unless `text` contains every one of `needles`.
fn assert_contains(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
}

/// Runs `grpcurl ARGS...`.
fn grpcurl(args: &[&str]) -> Res<Grpcurl> {
    let path = grpcurl_path()?;
    let out = Command::new(&path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} ({e}); {NO_GRPCURL}", path.display()))?;
    let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Ok(Grpcurl {
        status: out.status,
        stdout: lossy(&out.stdout),
        stderr: lossy(&out.stderr),
    })
}

/// `grpcurl -plaintext -H "authorization: Bearer KEY" -d BODY TARGET METHOD`.
fn call(key: &str, body: &str, target: &str, method: &str) -> Res<Grpcurl> {
    let header = format!("authorization: Bearer {key}");
    grpcurl(&["-plaintext", "-H", &header, "-d", body, target, method])
}

/// The README's Capture body for `auth`, with the given amount and request id.
fn capture_body(auth: &str, value: &str, request_id: &str) -> String {
    format!(
        "{{\"provider\":\"PROVIDER_PAYPAL\",\"authorization_id\":\"{auth}\",\
         \"amount\":{{\"currency_code\":\"USD\",\"value\":\"{value}\"}},\
         \"request_id\":\"{request_id}\"}}"
    )
}

const CAPTURE: &str = "capture.v1.CaptureService/Capture";
const GET: &str = "capture.v1.CaptureService/GetCapture";
const LIST: &str = "capture.v1.CaptureService/ListCaptures";
const GET_AUTHORIZATION: &str = "capture.v1.CaptureService/GetAuthorization";
const RELEASE: &str = "capture.v1.CaptureService/ReleaseAuthorization";

#[tokio::test]
async fn the_readme_walkthrough_works_with_grpcurl() -> TestResult {
    grpcurl_path()?;
    let server = Server::start(&[]).await?;
    let target = server.grpc_target();

    // The defaults put the database and the development key in the working directory.
    assert!(server.path("capture.db").is_file(), "no capture.db in cwd");
    let key = std::fs::read_to_string(server.path(".capture-dev-key"))?
        .trim()
        .to_owned();
    assert!(!key.is_empty(), "empty .capture-dev-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.path(".capture-dev-key"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, ".capture-dev-key is readable by others");
    }

    grpcurl(&["-plaintext", &target, "list"])?.ok_with(&[
        "capture.v1.CaptureService",
        "grpc.health.v1.Health",
        "ServerReflection",
    ]);
    let service = "capture.v1.CaptureService";
    grpcurl(&["-plaintext", &target, "describe", service])?.ok_with(&[
        "rpc Capture",
        "rpc GetCapture",
        "rpc ListCaptures",
    ]);

    let auth = server.authorize().await?;
    let body = capture_body(&auth, "40.00", "walkthrough-1");
    let first = call(&key, &body, &target, CAPTURE)?.json()?;
    let capture = &first["capture"];
    let id = capture["id"].as_str().ok_or("no capture id")?.to_owned();
    assert!(id.starts_with("cap_"), "{first}");
    assert_eq!(capture["status"], "CAPTURE_STATUS_COMPLETED", "{first}");
    assert_eq!(capture["capturedAmount"]["value"], "40.00", "{first}");
    assert_eq!(capture["capturedAmount"]["currencyCode"], "USD", "{first}");
    let gross = &capture["sellerReceivableBreakdown"]["grossAmount"];
    assert_eq!(gross["value"], "40.00", "{first}");
    assert_ne!(first["replayed"], true, "a first capture is replayed");

    let get = call(&key, &format!("{{\"id\":\"{id}\"}}"), &target, GET)?.json()?;
    assert_eq!(get["capture"]["id"], id.as_str(), "{get}");
    assert_eq!(&get["capture"], capture, "GetCapture differs from Capture");

    let listed = call(&key, r#"{"page_size":10}"#, &target, LIST)?.json()?;
    let ids: Vec<&str> = listed["captures"]
        .as_array()
        .ok_or_else(|| format!("no captures listed: {listed}"))?
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(ids.contains(&id.as_str()), "{id} not listed: {listed}");

    let again = call(&key, &body, &target, CAPTURE)?.json()?;
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["capture"]["id"], id.as_str(), "{again}");

    let bad = call(
        &key,
        &capture_body(&auth, "40.001", "walkthrough-bad-amount"),
        &target,
        CAPTURE,
    )?;
    // The BadRequest detail is decoded through reflection, so the user reads the reason.
    bad.failed_with(&[
        "InvalidArgument",
        "amount.value",
        "USD allows at most 2 decimal places",
    ]);

    let anonymous = grpcurl(&["-plaintext", "-d", r#"{"page_size":10}"#, &target, LIST])?;
    anonymous.failed_with(&["Unauthenticated"]);

    // What is left, then the rest released; a capture afterwards is refused.
    let key_body = format!(r#"{{"provider":"PROVIDER_PAYPAL","authorization_id":"{auth}"}}"#);
    let open = call(&key, &key_body, &target, GET_AUTHORIZATION)?.json()?;
    let authorization = &open["authorization"];
    assert_eq!(
        authorization["status"], "AUTHORIZATION_STATUS_OPEN",
        "{open}"
    );
    assert_eq!(authorization["capturedAmount"]["value"], "40.00", "{open}");
    assert_eq!(authorization["captures"][0]["id"], id.as_str(), "{open}");
    let release_body = format!(
        r#"{{"provider":"PROVIDER_PAYPAL","authorization_id":"{auth}","authorized_amount":{{"currency_code":"USD","value":"100.00"}},"request_id":"walkthrough-release-1"}}"#
    );
    let released = call(&key, &release_body, &target, RELEASE)?.json()?;
    assert_eq!(
        released["release"]["status"], "CAPTURE_STATUS_COMPLETED",
        "{released}"
    );
    assert_eq!(
        released["release"]["releasedBy"], "RELEASED_BY_VOID_CALL",
        "{released}"
    );
    let after = &released["authorization"];
    assert_eq!(
        after["status"], "AUTHORIZATION_STATUS_RELEASED",
        "{released}"
    );
    assert_eq!(after["releasedAmount"]["value"], "60.00", "{released}");
    call(
        &key,
        &capture_body(&auth, "1.00", "walkthrough-after-release"),
        &target,
        CAPTURE,
    )?
    .failed_with(&["FailedPrecondition", "AUTHORIZATION_RELEASED"]);
    Ok(())
}

/// The README's loop: one sandbox authorization and one grpcurl Capture per other provider.
#[tokio::test]
async fn every_provider_captures_through_grpcurl() -> TestResult {
    grpcurl_path()?;
    let server = Server::start(&[]).await?;
    let target = server.grpc_target();
    let key = std::fs::read_to_string(server.path(".capture-dev-key"))?
        .trim()
        .to_owned();
    for (provider, expected) in [
        ("checkout", "CAPTURE_STATUS_PENDING"),
        ("cybersource", "CAPTURE_STATUS_COMPLETED"),
        ("payment_options", "CAPTURE_STATUS_COMPLETED"),
        ("stax", "CAPTURE_STATUS_COMPLETED"),
    ] {
        let auth = server.authorize_at(provider).await?;
        let body = format!(
            "{{\"provider\":\"PROVIDER_{}\",\"authorization_id\":\"{auth}\",\
             \"amount\":{{\"currency_code\":\"USD\",\"value\":\"25.00\"}},\
             \"request_id\":\"walkthrough-{provider}\"}}",
            provider.to_uppercase()
        );
        let answer = call(&key, &body, &target, CAPTURE)?.json()?;
        let capture = &answer["capture"];
        assert_eq!(capture["status"], expected, "{provider}: {answer}");
        assert_eq!(
            capture["authorizationId"],
            auth.as_str(),
            "{provider}: {answer}"
        );
        assert!(
            capture["providerCaptureId"]
                .as_str()
                .is_some_and(|id| !id.is_empty()),
            "{provider}: {answer}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn sigterm_stops_the_server_gracefully() -> TestResult {
    let mut server = Server::start(&[]).await?;
    let status = server.terminate()?;
    let output = server.output();
    assert_eq!(status.code(), Some(0), "exit {status}:\n{output}");
    assert_contains(&output, &["capture-service stopped"]);
    Ok(())
}

#[test]
fn migrate_applies_the_schema_and_check_config_hides_secrets() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("migrated.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let run = |command: &str, envs: &[(&str, &str)]| -> Res<(ExitStatus, String)> {
        let out = service_command(dir.path(), envs).arg(command).output()?;
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        Ok((out.status, text.into_owned()))
    };
    let (status, text) = run("migrate", &[("CAPTURE_DATABASE_URL", &url)])?;
    assert!(status.success(), "{text}");
    assert!(db.is_file(), "migrate created no database:\n{text}");
    assert!(std::fs::metadata(&db)?.len() > 0, "the database is empty");

    let secret = [
        ("CAPTURE_PAYPAL_CLIENT_ID", "x"),
        ("CAPTURE_PAYPAL_CLIENT_SECRET", "supersecret"),
    ];
    let mut with_password = secret.to_vec();
    with_password.push((
        "CAPTURE_DATABASE_URL",
        "postgres://capture:dbsecret@db.internal/capture",
    ));
    with_password.push(("CAPTURE_MAX_CONECTIONS", "10"));
    let (status, text) = run("check-config", &with_password)?;
    assert!(status.success(), "{text}");
    // A readable summary: each provider live, emulated or not configured; misspellings named.
    assert_contains(
        &text,
        &[
            "paypal           configured: default at https://api-m.",
            "checkout         not configured",
            "postgres://…@db.internal/capture",
            "sandbox            auto: off",
            "CAPTURE_MAX_CONNECTIONS = 1024",
            "unknown setting CAPTURE_MAX_CONECTIONS",
        ],
    );
    for secret in ["supersecret", "dbsecret"] {
        assert!(!text.contains(secret), "a secret printed:\n{text}");
    }
    let (status, text) = run("check-config", &[])?;
    assert!(status.success(), "{text}");
    assert_contains(
        &text,
        &["stax             emulated by the built-in sandbox"],
    );

    let (status, text) = run("check-config", &[("CAPTURE_GRPC_ADDR", "nowhere")])?;
    assert!(!status.success(), "{text}");
    assert_contains(&text, &["CAPTURE_GRPC_ADDR"]);
    Ok(())
}

#[tokio::test]
async fn json_logs_never_contain_the_api_key() -> TestResult {
    grpcurl_path()?;
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| e.to_string())?;
    let key = format!("walkthrough-key-{}", hex::encode(random));
    // The digest an operator puts in CAPTURE_API_KEYS comes from `capture-service hash-key`.
    let hashed = service_command(Path::new("."), &[])
        .args(["hash-key", &key])
        .output()?;
    assert!(hashed.status.success());
    let digest = String::from_utf8(hashed.stdout)?.trim().to_owned();
    assert_eq!(digest, hex::encode(Sha256::digest(key.as_bytes())));
    // A key short enough to guess gets no digest.
    let short = service_command(Path::new("."), &[])
        .args(["hash-key", "x"])
        .output()?;
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 16 characters"));
    let keys = format!("team:{digest}");
    let mut server = Server::start(&[
        ("CAPTURE_LOG_FORMAT", "json"),
        ("CAPTURE_LOG", "debug"),
        ("CAPTURE_API_KEYS", &keys),
        ("CAPTURE_SANDBOX", "on"),
    ])
    .await?;
    assert!(
        !server.path(".capture-dev-key").exists(),
        "a dev key was written although API keys are configured"
    );
    let auth = server.authorize().await?;
    let body = capture_body(&auth, "10.00", "json-logs-1");
    let answer = call(&key, &body, &server.grpc_target(), CAPTURE)?.json()?;
    assert_eq!(
        answer["capture"]["status"], "CAPTURE_STATUS_COMPLETED",
        "{answer}"
    );
    call("not-the-key", &body, &server.grpc_target(), CAPTURE)?.failed_with(&["Unauthenticated"]);
    // A caller's x-request-id comes back with the answer and is on every line of its call.
    let traced = grpcurl(&[
        "-plaintext",
        "-v",
        "-H",
        &format!("authorization: Bearer {key}"),
        "-H",
        "x-request-id: rid-walkthrough-7",
        "-d",
        &capture_body(&auth, "5.00", "json-logs-2"),
        &server.grpc_target(),
        CAPTURE,
    ])?;
    traced.ok_with(&["x-request-id: rid-walkthrough-7"]);
    let status = server.terminate()?;
    let output = server.output();
    assert!(status.success(), "exit {status}:\n{output}");

    let mut json_lines = 0;
    for line in output.lines().filter(|l| l.starts_with('{')) {
        let parsed: Value = serde_json::from_str(line)
            .map_err(|e| format!("log line is not JSON ({e}): {line}"))?;
        assert!(parsed.get("level").is_some(), "no level: {line}");
        json_lines += 1;
    }
    assert!(json_lines > 0, "no JSON log lines:\n{output}");
    let resolved = output
        .lines()
        .find(|l| l.contains("capture resolved") && l.contains("rid-walkthrough-7"))
        .ok_or_else(|| format!("no 'capture resolved' line with the request id:\n{output}"))?;
    assert_contains(
        resolved,
        &[
            "\"tenant\":\"team\"",
            "\"provider\":\"paypal\"",
            &auth,
            "\"capture_id\":\"cap_",
        ],
    );
    assert_contains(&output, &["capture-service stopped"]);
    assert!(
        !output.contains(&key),
        "the API key is in the logs:\n{output}"
    );
    Ok(())
}

#[tokio::test]
async fn health_reports_serving() -> TestResult {
    grpcurl_path()?;
    let server = Server::start(&[]).await?;
    let health = grpcurl(&[
        "-plaintext",
        &server.grpc_target(),
        "grpc.health.v1.Health/Check",
    ])?
    .json()?;
    assert_eq!(health["status"], "SERVING", "{health}");

    // The HTTP port: ready while the database answers; every answer carries an x-request-id,
    // the caller's own when it sent one.
    let http = reqwest::Client::new();
    let base = format!("http://localhost:{}", server.http_port);
    let ready = http.get(format!("{base}/readyz")).send().await?;
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    let generated = ready.headers().get("x-request-id").cloned();
    assert!(
        generated.is_some_and(|id| id.len() >= 16),
        "no generated x-request-id"
    );
    let echoed = http
        .get(format!("{base}/healthz"))
        .header("x-request-id", "caller-chosen-42")
        .send()
        .await?;
    assert_eq!(
        echoed.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"caller-chosen-42"[..])
    );
    Ok(())
}

/// A running `capture-service sandbox`, and the variables it printed for services.
struct StandaloneSandbox {
    child: Child,
    origin: String,
    vars: Vec<(String, String)>,
}

impl StandaloneSandbox {
    fn start() -> Res<StandaloneSandbox> {
        Self::start_with(&[])
    }

    /// `capture-service sandbox --addr 127.0.0.1:PORT ARGS...`.
    fn start_with(args: &[&str]) -> Res<StandaloneSandbox> {
        use std::io::BufRead;
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut child = service_command(Path::new("."), &[])
            .args(["sandbox", "--addr", &addr])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        // Read what it prints until its last line, on a thread so a silent process times out.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let last = line == "export CAPTURE_SANDBOX=off";
                let _ = tx.send(line);
                if last {
                    break;
                }
            }
        });
        let mut vars = Vec::new();
        let mut sandbox = StandaloneSandbox {
            child,
            origin: format!("http://{addr}"),
            vars: Vec::new(),
        };
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .map_err(|_| "the sandbox printed no variables within 20 s")?;
            if let Some((name, value)) =
                line.strip_prefix("export ").and_then(|v| v.split_once('='))
            {
                vars.push((name.to_owned(), value.to_owned()));
            }
            if line == "export CAPTURE_SANDBOX=off" {
                break;
            }
        }
        sandbox.vars = vars;
        Ok(sandbox)
    }

    /// The variables a service captures here with, and `CAPTURE_API_KEYS` = `api_keys`.
    fn service_env<'a>(&'a self, api_keys: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut envs: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        envs.push(("CAPTURE_API_KEYS", api_keys));
        envs
    }

    /// A PayPal authorization of USD 100.00, made at the sandbox's own helper endpoint.
    async fn authorize_paypal(&self) -> Res<String> {
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/sandbox/paypal/authorizations", self.origin))
            .json(&serde_json::json!({"amount": {"currency_code": "USD", "value": "100.00"}}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(answer["id"].as_str().ok_or("no id")?.to_owned())
    }
}

impl Drop for StandaloneSandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn two_services_capture_against_one_standalone_sandbox() -> TestResult {
    grpcurl_path()?;
    let sandbox = StandaloneSandbox::start()?;
    let names: Vec<&str> = sandbox.vars.iter().map(|(n, _)| n.as_str()).collect();
    for provider in [
        "PAYPAL",
        "CHECKOUT",
        "CYBERSOURCE",
        "PAYMENT_OPTIONS",
        "STAX",
    ] {
        let base = format!("CAPTURE_{provider}_BASE_URL");
        assert!(
            names.contains(&base.as_str()),
            "{base} not printed: {names:?}"
        );
    }
    let key = "standalone-sandbox-key-0123456789";
    let keys = api_keys(key);
    let envs = sandbox.service_env(&keys);
    let (a, b) = (Server::start(&envs).await?, Server::start(&envs).await?);

    // Both services capture from one authorization; only the shared provider knows the total.
    let auth = sandbox.authorize_paypal().await?;
    completed_capture(key, &auth, "60.00", "a-1", &a.grpc_target())?;
    completed_capture(key, &auth, "30.00", "b-1", &b.grpc_target())?;
    // Service A's own ledger would allow 20.00 more; PayPal (the sandbox) has only 10.00 left.
    let refused = call(
        key,
        &capture_body(&auth, "20.00", "a-2"),
        &a.grpc_target(),
        CAPTURE,
    )?;
    refused.failed_with(&["FailedPrecondition", "PROVIDER_PRECONDITION_FAILED"]);
    for server in [&a, &b] {
        assert!(
            !server.output().contains("SANDBOX MODE"),
            "a service started its own sandbox:\n{}",
            server.output()
        );
    }
    Ok(())
}

/// `CAPTURE_API_KEYS` accepting `key` as tenant `team`.
fn api_keys(key: &str) -> String {
    format!("team:{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// A PostgreSQL database of its own, dropped with the value.
struct PostgresDatabase {
    name: String,
    url: String,
}

impl PostgresDatabase {
    async fn create() -> Res<PostgresDatabase> {
        let (url, name) = common::create_postgres_database("capture_walk").await?;
        Ok(PostgresDatabase { name, url })
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        common::drop_postgres_database(self.name.clone());
    }
}

/// A grpcurl Capture of `value` at `auth`, which must complete.
fn completed_capture(
    key: &str,
    auth: &str,
    value: &str,
    request_id: &str,
    target: &str,
) -> Res<Value> {
    let answer = call(key, &capture_body(auth, value, request_id), target, CAPTURE)?.json()?;
    assert_eq!(
        answer["capture"]["status"], "CAPTURE_STATUS_COMPLETED",
        "{answer}"
    );
    Ok(answer)
}

/// Reads a capture through grpcurl until `done` holds (at most `within`); the last answer.
async fn capture_until(
    key: &str,
    target: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Res<Value> {
    let deadline = Instant::now() + within;
    loop {
        let got = call(key, &format!("{{\"id\":\"{id}\"}}"), target, GET)?.json()?;
        if done(&got["capture"]) || Instant::now() > deadline {
            return Ok(got["capture"].clone());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The environment of a service on `database` against `sandbox`, accepting `key`.
fn replica_envs<'a>(
    sandbox: &'a StandaloneSandbox,
    keys: &'a str,
    database: &'a PostgresDatabase,
) -> Vec<(&'a str, &'a str)> {
    let mut envs = sandbox.service_env(keys);
    envs.push(("CAPTURE_DATABASE_URL", database.url.as_str()));
    envs
}

/// Two service processes on one PostgreSQL database and one standalone sandbox whose every
/// answer takes 3 s, with 2 s leases: A's request (a token, then the capture: about 6 s) keeps
/// its lease alive all along, and B, which reconciles every second and looks at captures of
/// any age, never takes it over.
#[tokio::test]
async fn a_live_call_slower_than_its_lease_is_never_taken_over() -> TestResult {
    grpcurl_path()?;
    let database = PostgresDatabase::create().await?;
    let sandbox = StandaloneSandbox::start_with(&["--latency-ms", "3000"])?;
    let key = "replica-test-key-0123456789abcdef";
    let keys = api_keys(key);
    let mut envs = replica_envs(&sandbox, &keys, &database);
    envs.extend([
        ("CAPTURE_LEASE_SECONDS", "2"),
        ("CAPTURE_RECONCILE_MIN_AGE_SECONDS", "0"),
        ("CAPTURE_RECONCILE_INTERVAL_SECONDS", "1"),
    ]);
    let a = Server::start(&envs).await?;
    let b = Server::start(&envs).await?;
    let auth = sandbox.authorize_paypal().await?;
    let started = Instant::now();
    let answer = completed_capture(key, &auth, "10.00", "slow-1", &a.grpc_target())?;
    assert!(
        started.elapsed() > Duration::from_secs(5),
        "the call was not slower than two leases: {:?}",
        started.elapsed()
    );
    // A look B had started at it would end about two provider answers later: wait that out.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for server in [&a, &b] {
        assert!(
            !server.output().contains("capture reconciled")
                && !server.output().contains("reconciliation pass"),
            "a replica looked at a capture whose request was alive:\n{}",
            server.output()
        );
    }
    let id = answer["capture"]["id"].as_str().ok_or("no id")?;
    let store = capture_service::store::Store::connect(&database.url).await?;
    let trail = store.events(id).await?;
    assert_eq!(
        trail.iter().map(|e| e.2.as_str()).collect::<Vec<_>>(),
        vec!["api", "api"],
        "{trail:?}"
    );
    // The sandbox took the 10.00 once.
    completed_capture(key, &auth, "90.00", "slow-2", &b.grpc_target())?;
    Ok(())
}

/// With the default settings, `kill -9` of a process with two captures at the provider: the
/// other replica's reconciler settles one, and a retry of the other on that replica succeeds,
/// each within 30 s of the kill (the dead process's leases run out within 10 s), and the
/// sandbox took each once.
#[tokio::test]
async fn after_kill_9_another_replica_settles_the_dead_ones_captures_within_30_seconds(
) -> TestResult {
    grpcurl_path()?;
    let database = PostgresDatabase::create().await?;
    let sandbox = StandaloneSandbox::start_with(&["--latency-ms", "1500"])?;
    let key = "replica-test-key-0123456789abcdef";
    let keys = api_keys(key);
    let envs = replica_envs(&sandbox, &keys, &database);
    let mut a = Server::start(&envs).await?;
    let b = Server::start(&envs).await?;
    let auth = sandbox.authorize_paypal().await?;

    // A dies while both requests are at the provider.
    let callers: Vec<_> = ["orphan-reconciled", "orphan-retried"]
        .into_iter()
        .map(|request_id| {
            let body = capture_body(&auth, "20.00", request_id);
            let target = a.grpc_target();
            std::thread::spawn(move || call(key, &body, &target, CAPTURE).is_ok())
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.child.kill()?;
    let killed = Instant::now();
    let _ = a.child.wait();
    for caller in callers {
        let _ = caller.join();
    }
    let listed = call(key, r#"{"page_size":10}"#, &b.grpc_target(), LIST)?.json()?;
    let orphan = |request_id: &str| -> Res<String> {
        let found = listed["captures"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["requestId"] == request_id))
            .ok_or_else(|| format!("the killed request left no capture: {listed}"))?;
        assert_eq!(found["status"], "CAPTURE_STATUS_PROCESSING", "{found}");
        Ok(found["id"].as_str().ok_or("no id")?.to_owned())
    };
    let reconciled_id = orphan("orphan-reconciled")?;
    orphan("orphan-retried")?;

    // The caller retries on B until it is answered.
    let retry = capture_body(&auth, "20.00", "orphan-retried");
    let retried = loop {
        let answer = call(key, &retry, &b.grpc_target(), CAPTURE)?;
        if answer.status.success() {
            break answer.json()?;
        }
        answer.failed_with(&["Unavailable"]);
        if killed.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "the retry was still refused 30 s after the kill: {}",
                answer.text()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let retried_after = killed.elapsed();
    assert_eq!(
        retried["capture"]["status"], "CAPTURE_STATUS_COMPLETED",
        "{retried}"
    );

    let left = Duration::from_secs(30).saturating_sub(killed.elapsed());
    let settled = capture_until(key, &b.grpc_target(), &reconciled_id, left, |c| {
        c["status"] == "CAPTURE_STATUS_COMPLETED"
    })
    .await?;
    let settled_after = killed.elapsed();
    assert_eq!(
        settled["status"],
        "CAPTURE_STATUS_COMPLETED",
        "not settled 30 s after the kill: {settled}\n{}",
        b.output()
    );
    println!("after kill -9: retry answered in {retried_after:?}, reconciler settled in {settled_after:?}");
    let store = capture_service::store::Store::connect(&database.url).await?;
    let trail = store.events(&reconciled_id).await?;
    assert_eq!(
        trail.last().map(|e| e.1.as_str()),
        Some("COMPLETED"),
        "{trail:?}"
    );
    // The sandbox took each 20.00 once: 60.00 of the 100.00 are left, not 20.00.
    completed_capture(key, &auth, "60.00", "after-the-kill", &b.grpc_target())?;
    Ok(())
}

/// Every JSON object grpcurl printed for a stream, in order.
fn streamed(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .collect()
}

/// The README's second part: a watcher (`WatchCaptures` through grpcurl) sees a Checkout.com
/// capture turn COMPLETED within a second, through the sandbox's signed webhook; a watcher
/// that comes back with its cursor gets what it missed.
#[tokio::test]
async fn the_readme_watch_and_webhook_walkthrough_works_with_grpcurl() -> TestResult {
    let grpcurl_bin = grpcurl_path()?;
    let server = Server::start(&[]).await?;
    let target = server.grpc_target();
    let key = std::fs::read_to_string(server.path(".capture-dev-key"))?
        .trim()
        .to_owned();
    let header = format!("authorization: Bearer {key}");
    let log = server.path("watch.log");
    let mut watcher = Command::new(&grpcurl_bin)
        .args(["-plaintext", "-H", &header, "-d", "{}", &target])
        .arg("capture.v1.CaptureService/WatchCaptures")
        .stdout(File::create(&log)?)
        .stderr(Stdio::null())
        .spawn()?;
    // The watch follows changes from the moment it opens: give grpcurl that moment.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let payment = server
        .authorize_with(
            "checkout",
            r#"{"amount":{"currency_code":"EUR","value":"80.00"}}"#,
        )
        .await?;
    let body = format!(
        "{{\"provider\":\"PROVIDER_CHECKOUT\",\"authorization_id\":\"{payment}\",\
         \"amount\":{{\"currency_code\":\"EUR\",\"value\":\"30.00\"}},\
         \"request_id\":\"walkthrough-cko-1\"}}"
    );
    let answered = call(&key, &body, &target, CAPTURE)?.json()?;
    let answered_at = Instant::now();
    let id = answered["capture"]["id"]
        .as_str()
        .ok_or("no id")?
        .to_owned();
    // Accepted (202): PENDING, unless the webhook already beat the answer.
    let status = answered["capture"]["status"].as_str().unwrap_or_default();
    assert!(
        ["CAPTURE_STATUS_PENDING", "CAPTURE_STATUS_COMPLETED"].contains(&status),
        "{answered}"
    );
    let completed_by_webhook = |changes: &[Value]| {
        changes.iter().any(|c| {
            c["captureId"] == id.as_str()
                && c["status"] == "CAPTURE_STATUS_COMPLETED"
                && c["source"] == "webhook"
        })
    };
    loop {
        let changes = streamed(&std::fs::read_to_string(&log)?);
        if completed_by_webhook(&changes) {
            break;
        }
        if answered_at.elapsed() > Duration::from_secs(1) {
            return Err(
                format!("no COMPLETED change from the webhook within 1 s: {changes:?}").into(),
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = watcher.kill();
    let _ = watcher.wait();
    let got = call(&key, &format!("{{\"id\":\"{id}\"}}"), &target, GET)?.json()?;
    assert_eq!(
        got["capture"]["status"], "CAPTURE_STATUS_COMPLETED",
        "{got}"
    );

    // Back with the first cursor it saw: the rest replayed (grpcurl stops after 2 s).
    let changes = streamed(&std::fs::read_to_string(&log)?);
    let first = changes
        .first()
        .and_then(|c| c["cursor"].as_str())
        .ok_or("no cursor in the first change")?
        .to_owned();
    let resumed = grpcurl(&[
        "-plaintext",
        "-max-time",
        "2",
        "-H",
        &header,
        "-d",
        &format!("{{\"since\":{first}}}"),
        &target,
        "capture.v1.CaptureService/WatchCaptures",
    ])?;
    let replayed = streamed(&resumed.stdout);
    assert!(completed_by_webhook(&replayed), "{}", resumed.text());
    assert_eq!(replayed.len(), changes.len() - 1, "{}", resumed.text());
    Ok(())
}

/// A storm of calls shed at a limit, and of callers' mistakes, writes a few lines, not one a
/// call, and no ERROR: neither is the service's fault.
#[tokio::test]
async fn a_storm_of_shed_calls_is_logged_as_one_episode_not_a_line_a_call() -> TestResult {
    use capture_service::proto::capture_service_client::CaptureServiceClient;
    let key = "storm-test-key-0123456789abcdef";
    let keys = api_keys(key);
    let server = Server::start(&[
        ("CAPTURE_LOG_FORMAT", "json"),
        ("CAPTURE_API_KEYS", &keys),
        ("CAPTURE_SANDBOX", "on"),
        ("CAPTURE_MAX_READS_IN_FLIGHT", "1"),
    ])
    .await?;
    let client =
        CaptureServiceClient::connect(format!("http://127.0.0.1:{}", server.grpc_port)).await?;
    let calls = (0..400).map(|_| {
        let mut client = client.clone();
        async move {
            let mut request = tonic::Request::new(capture_service::proto::GetCaptureRequest {
                id: "cap_01JDQ3W5X8K2M4N6P8R0S2T4V6".into(),
            });
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {key}").parse().ok()?);
            client.get_capture(request).await.err().map(|s| s.code())
        }
    });
    let codes = futures_util::future::join_all(calls).await;
    let shed = codes
        .iter()
        .filter(|c| **c == Some(tonic::Code::ResourceExhausted))
        .count();
    let not_found = codes
        .iter()
        .filter(|c| **c == Some(tonic::Code::NotFound))
        .count();
    assert!(
        shed > 10 && not_found > 0,
        "shed {shed}, not found {not_found}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let output = server.output();
    let errors = output.matches("\"level\":\"ERROR\"").count();
    let shed_lines = output.matches("calls shed").count();
    assert_eq!(errors, 0, "{output}");
    assert!(
        shed_lines <= 2,
        "{shed_lines} lines for {shed} shed calls:\n{output}"
    );
    Ok(())
}

/// The command line: `--version` names the revision, `--help` on a command helps and does
/// nothing else, a mistyped flag is refused with a suggestion, `hash-key` reads its key from
/// standard input, and a `CAPTURE_LOG` that is no filter is refused.
#[test]
fn the_command_line_is_conventional() -> TestResult {
    let dir = tempfile::tempdir()?;
    let run = |args: &[&str], envs: &[(&str, &str)], input: &str| -> Res<(bool, String)> {
        use std::io::Write;
        let mut child = service_command(dir.path(), envs)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(input.as_bytes())?;
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        Ok((out.status.success(), text.into_owned()))
    };
    let (ok, text) = run(&["--version"], &[], "")?;
    assert!(ok, "{text}");
    assert!(
        text.starts_with(&format!("capture-service {} (", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    for command in ["serve", "sandbox", "migrate", "check-config", "hash-key"] {
        let (ok, text) = run(&[command, "--help"], &[], "")?;
        assert!(ok, "{command} --help: {text}");
        assert_contains(&text, &["Usage: capture-service", command]);
    }
    assert!(
        !dir.path().join("capture.db").exists(),
        "serve --help started the server"
    );
    let (ok, text) = run(&["sandbox", "--adr", "127.0.0.1:0"], &[], "")?;
    assert!(!ok);
    assert_contains(&text, &["--adr", "--addr"]);
    let key = "stdin-key-0123456789abcdef";
    let (ok, text) = run(&["hash-key"], &[], &format!("{key}\n"))?;
    assert!(ok, "{text}");
    assert_eq!(text.trim(), hex::encode(Sha256::digest(key.as_bytes())));
    let (ok, text) = run(&["check-config"], &[("CAPTURE_LOG", "nonsense===")], "")?;
    assert!(!ok);
    assert_contains(&text, &["CAPTURE_LOG"]);
    // A database that does not exist: one line naming it, password redacted, and the cause.
    let base = std::env::var("CAPTURE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let missing = format!(
        "{}/capture_no_such_database_42",
        base.replacen('@', ":hunter2@", 1)
    );
    let (ok, text) = run(&["migrate"], &[("CAPTURE_DATABASE_URL", &missing)], "")?;
    assert!(!ok);
    assert_contains(
        &text,
        &["cannot use the database at postgres://…@", "does not exist"],
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(text.matches("does not exist").count(), 1, "{text}");
    Ok(())
}

/// A standalone sandbox started with a credentials seed makes the same credentials after a
/// restart (a service or a CI configured once keeps working); without one, new ones each time.
#[test]
fn a_seeded_standalone_sandbox_keeps_its_credentials_across_restarts() -> TestResult {
    let credentials = |args: &[&str]| -> Res<Vec<(String, String)>> {
        let sandbox = StandaloneSandbox::start_with(args)?;
        // Base URLs name the port, which is new at each start: only the credentials count.
        Ok(sandbox
            .vars
            .iter()
            .filter(|(name, _)| !name.ends_with("_BASE_URL") && name != "CAPTURE_SANDBOX")
            .cloned()
            .collect())
    };
    let seeded = ["--credentials-seed", "team-ci-seed-1"];
    let first = credentials(&seeded)?;
    assert!(
        first
            .iter()
            .any(|(name, _)| name == "CAPTURE_PAYPAL_CLIENT_SECRET"),
        "{first:?}"
    );
    assert_eq!(credentials(&seeded)?, first);
    assert_ne!(credentials(&["--credentials-seed", "another-seed"])?, first);
    assert_ne!(credentials(&[])?, credentials(&[])?);
    Ok(())
}

/// A development key short enough to guess stops the start, naming the setting.
#[test]
fn a_development_key_shorter_than_an_api_key_is_refused_at_start() -> TestResult {
    let dir = tempfile::tempdir()?;
    let output = service_command(dir.path(), &[("CAPTURE_DEV_API_KEY", "x")])
        .arg("check-config")
        .output()?;
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("CAPTURE_DEV_API_KEY"), "{text}");
    assert!(text.contains("at least 16 characters"), "{text}");
    Ok(())
}
