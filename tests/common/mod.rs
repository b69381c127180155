//! The black-box test harness: the real app, built by `App::build` like `main` does, on random
//! ports, with its own database (a SQLite file or a fresh PostgreSQL database), called through
//! the generated gRPC client.
#![allow(dead_code)]

pub mod connector_fixtures;
pub mod counting_paypal;
pub mod db_outage;
pub mod mock_provider;

use std::collections::HashMap;
use std::time::Duration;

use capture_service::app::App;
use capture_service::config::{ApiKey, Config, SandboxMode};
use capture_service::proto::capture_service_client::CaptureServiceClient;
use capture_service::proto::{self, CaptureRequest, Money};
use sea_orm::{ConnectionTrait, Database};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const TENANT_A_KEY: &str = "test-key-tenant-a";
pub const TENANT_B_KEY: &str = "test-key-tenant-b";

/// Which database the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A new PostgreSQL database named `prefix` and a random suffix: its URL and name.
pub async fn create_postgres_database(
    prefix: &str,
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).map_err(|e| e.to_string())?;
    let name = format!("{prefix}_{}", hex::encode(random));
    let admin = Database::connect(format!("{}/postgres", postgres_base())).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    admin.close().await?;
    Ok((format!("{}/{name}", postgres_base()), name))
}

/// Drops a database [`create_postgres_database`] made; callable outside async (from `Drop`): a
/// short-lived runtime on a thread of its own does it.
pub fn drop_postgres_database(name: String) {
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            if let Ok(admin) = Database::connect(format!("{}/postgres", postgres_base())).await {
                let _ = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
        });
    })
    .join();
}

fn postgres_base() -> String {
    std::env::var("CAPTURE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// The account of `A`'s provider that a sandbox hands a service (its `service_env`).
pub fn sandbox_account<A: capture_service::providers::account::AccountConfig>(
    sandbox: &capture_service::sandbox::Sandbox,
) -> Result<A, capture_service::config::ConfigError> {
    capture_service::providers::account::from_variables::<A>(
        &capture_service::config::ProviderSources::from_vars(sandbox.service_env()),
    )
}

/// Sandbox off, and PayPal's default account at `base_url` (a stand-in PayPal).
pub fn use_paypal_at(config: &mut Config, base_url: String) {
    config.sandbox = SandboxMode::Off;
    let vars = &mut config.providers.sources;
    vars.set_var("CAPTURE_PAYPAL_BASE_URL", base_url);
    vars.set_var("CAPTURE_PAYPAL_CLIENT_ID", "test-client");
    vars.set_var("CAPTURE_PAYPAL_CLIENT_SECRET", "test-secret");
}

/// A running app and a client for it. Dropping it stops the app and drops its database.
pub struct TestApp {
    pub grpc_addr: std::net::SocketAddr,
    pub http_addr: std::net::SocketAddr,
    pub database_url: String,
    client: CaptureServiceClient<Channel>,
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    postgres_db: Option<String>,
    /// The built-in sandbox's variables (empty without it).
    pub sandbox_env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl TestApp {
    /// The app in sandbox mode: PayPal is the built-in emulator.
    pub async fn spawn(db: Db) -> Result<TestApp, Box<dyn std::error::Error>> {
        Self::spawn_with(db, |_| {}).await
    }

    /// The app with PayPal pointed at `base_url` instead of the sandbox.
    pub async fn spawn_against_paypal(
        db: Db,
        base_url: &str,
    ) -> Result<TestApp, Box<dyn std::error::Error>> {
        let base_url = base_url.to_owned();
        Self::spawn_with(db, move |config| use_paypal_at(config, base_url)).await
    }

    pub async fn spawn_with(
        db: Db,
        customize: impl FnOnce(&mut Config),
    ) -> Result<TestApp, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let (database_url, postgres_db) = match db {
            Db::Sqlite => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("capture.db").display()
                ),
                None,
            ),
            Db::Postgres => {
                let (url, name) = create_postgres_database("capture_test").await?;
                (url, Some(name))
            }
        };
        let mut config = Config::load(&HashMap::new())?;
        config.grpc_addr = "127.0.0.1:0".parse()?;
        config.http_addr = "127.0.0.1:0".parse()?;
        config.database_url = database_url.clone().into();
        config.sandbox = SandboxMode::On;
        config.api_keys = vec![
            ApiKey {
                tenant: "tenant-a".into(),
                sha256: digest(TENANT_A_KEY),
            },
            ApiKey {
                tenant: "tenant-b".into(),
                sha256: digest(TENANT_B_KEY),
            },
        ];
        config.providers.request_timeout = Duration::from_secs(2);
        config.providers.max_retries = 1;
        config.shutdown_grace = Duration::from_secs(5);
        config.dev_api_key_file = None;
        // Tests of the capture path see the providers' answers alone; the webhook and watch
        // tests turn the sandbox's deliveries on.
        config.sandbox_webhooks = false;
        customize(&mut config);
        let tls = config.grpc_tls.is_some();

        let app = App::build(config).await.map_err(|e| format!("{e:#}"))?;
        let grpc_addr = app.grpc_addr()?;
        let http_addr = app.http_addr()?;
        let sandbox_env = app.sandbox_env();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        // Over TLS, the test makes its own clients; this plaintext one answers nothing.
        let client = if tls {
            CaptureServiceClient::new(
                Channel::from_shared(format!("http://{grpc_addr}"))?.connect_lazy(),
            )
        } else {
            CaptureServiceClient::connect(format!("http://{grpc_addr}")).await?
        };
        Ok(TestApp {
            grpc_addr,
            http_addr,
            database_url,
            client,
            stop: std::sync::Mutex::new(Some(stop)),
            server: Some(server),
            postgres_db,
            sandbox_env,
            _dir: dir,
        })
    }

    /// One of the built-in sandbox's variables.
    pub fn sandbox_var(&self, name: &str) -> Result<String, String> {
        self.sandbox_env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("the sandbox sets no {name}"))
    }

    /// A client of the app, for calls the harness has no helper for (concurrent ones).
    pub fn client(&self) -> CaptureServiceClient<Channel> {
        self.client.clone()
    }

    /// `message` as a request of the tenant of `key`.
    pub fn authed_request<T>(message: T, key: &str) -> Request<T> {
        Self::authed(message, key)
    }

    fn authed<T>(message: T, key: &str) -> Request<T> {
        let mut request = Request::new(message);
        if let Ok(value) = MetadataValue::try_from(format!("Bearer {key}")) {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    pub async fn capture(&self, request: CaptureRequest) -> Result<proto::CaptureResponse, Status> {
        self.capture_as(TENANT_A_KEY, request).await
    }

    pub async fn capture_as(
        &self,
        key: &str,
        request: CaptureRequest,
    ) -> Result<proto::CaptureResponse, Status> {
        let mut client = self.client.clone();
        client
            .capture(Self::authed(request, key))
            .await
            .map(|r| r.into_inner())
    }

    /// Captures as tenant A and returns the capture the call must answer with, checking that
    /// the answer is exactly what is stored (the service answers without reading it back).
    pub async fn captured(
        &self,
        request: CaptureRequest,
    ) -> Result<proto::Capture, Box<dyn std::error::Error>> {
        let capture = self.capture(request).await?.capture.ok_or("no capture")?;
        let stored = self.get(TENANT_A_KEY, &capture.id).await?;
        assert_eq!(
            capture, stored,
            "the answer differs from the stored capture"
        );
        Ok(capture)
    }

    /// Captures as tenant A with a `request_id` used before; asserts the answer is a replay and
    /// returns its capture.
    pub async fn replayed(
        &self,
        request: CaptureRequest,
    ) -> Result<proto::Capture, Box<dyn std::error::Error>> {
        let response = self.capture(request).await?;
        assert!(response.replayed, "{response:?}");
        Ok(response.capture.ok_or("no capture")?)
    }

    /// Asserts a call to `provider` ended in an unknown outcome (see [`unknown_outcome`]) and
    /// that the capture it names is stored PROCESSING for that reason; returns that capture.
    pub async fn left_processing<T: std::fmt::Debug>(
        &self,
        result: Result<T, Status>,
        provider: &str,
    ) -> Result<proto::Capture, Box<dyn std::error::Error>> {
        let id = unknown_outcome(result, provider)?;
        let stored = self.get(TENANT_A_KEY, &id).await?;
        assert_eq!(
            stored.status(),
            proto::CaptureStatus::Processing,
            "{stored:?}"
        );
        assert_eq!(
            stored.status_details.as_ref().map(|d| d.reason()),
            Some(proto::CaptureStatusReason::ProviderOutcomeUnknown)
        );
        Ok(stored)
    }

    /// The stored capture an error's `ErrorInfo` metadata names (`capture_id`), read as tenant A.
    pub async fn stored_capture(
        &self,
        metadata: &HashMap<String, String>,
    ) -> Result<proto::Capture, Box<dyn std::error::Error>> {
        let id = metadata.get("capture_id").ok_or("no capture id")?;
        Ok(self.get(TENANT_A_KEY, id).await?)
    }

    /// Releases what is left of an authorization, as the tenant of `key`.
    pub async fn release_as(
        &self,
        key: &str,
        request: proto::ReleaseAuthorizationRequest,
    ) -> Result<proto::ReleaseAuthorizationResponse, Status> {
        let mut client = self.client.clone();
        client
            .release_authorization(Self::authed(request, key))
            .await
            .map(|r| r.into_inner())
    }

    /// The authorization `authorization_id` at `provider`'s default account, as the tenant of
    /// `key` sees it.
    pub async fn authorization_as(
        &self,
        key: &str,
        provider: proto::Provider,
        authorization_id: &str,
    ) -> Result<proto::Authorization, Status> {
        let mut client = self.client.clone();
        let request = proto::GetAuthorizationRequest {
            provider: provider as i32,
            authorization_id: authorization_id.to_owned(),
            ..Default::default()
        };
        client
            .get_authorization(Self::authed(request, key))
            .await?
            .into_inner()
            .authorization
            .ok_or_else(|| Status::internal("no authorization in response"))
    }

    pub async fn get(&self, key: &str, id: &str) -> Result<proto::Capture, Status> {
        let mut client = self.client.clone();
        let request = proto::GetCaptureRequest { id: id.to_owned() };
        let response = client
            .get_capture(Self::authed(request, key))
            .await?
            .into_inner();
        response
            .capture
            .ok_or_else(|| Status::internal("no capture in response"))
    }

    pub async fn list(
        &self,
        key: &str,
        request: proto::ListCapturesRequest,
    ) -> Result<proto::ListCapturesResponse, Status> {
        let mut client = self.client.clone();
        client
            .list_captures(Self::authed(request, key))
            .await
            .map(|r| r.into_inner())
    }

    /// Opens a `WatchCaptures` stream as the tenant of `key`.
    pub async fn watch(
        &self,
        key: &str,
        request: proto::WatchCapturesRequest,
    ) -> Result<tonic::Streaming<proto::WatchCapturesResponse>, Status> {
        let mut client = self.client.clone();
        client
            .watch_captures(Self::authed(request, key))
            .await
            .map(|r| r.into_inner())
    }

    /// Creates an authorization in the sandbox through its HTTP helper endpoint.
    pub async fn authorize(
        &self,
        currency: &str,
        value: &str,
        scenario: &str,
    ) -> Result<String, Box<dyn std::error::Error>> {
        self.authorize_at("paypal", currency, value, scenario).await
    }

    /// Creates an authorization at `provider` (`paypal`, `checkout`, `cybersource`,
    /// `payment_options`, `stax`) in the sandbox, through its HTTP helper endpoint.
    pub async fn authorize_at(
        &self,
        provider: &str,
        currency: &str,
        value: &str,
        scenario: &str,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let answer: serde_json::Value = reqwest::Client::new()
            .post(format!(
                "http://{}/sandbox/{provider}/authorizations",
                self.http_addr
            ))
            .json(&serde_json::json!({
                "amount": {"currency_code": currency, "value": value},
                "scenario": scenario,
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(answer["id"]
            .as_str()
            .ok_or("no id in sandbox answer")?
            .to_owned())
    }

    /// Asks the server to stop (as SIGTERM does) without waiting for it.
    pub fn stop_signal(&self) {
        if let Some(stop) = self.stop.lock().ok().and_then(|mut s| s.take()) {
            let _ = stop.send(());
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.stopped().await
    }

    /// Stops the server gracefully and waits for it, keeping its database for inspection.
    pub async fn stopped(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.stop_signal();
        if let Some(server) = self.server.take() {
            server.await?.map_err(|e| format!("{e:#}"))?;
        }
        Ok(())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop_signal();
        if let Some(name) = self.postgres_db.take() {
            drop_postgres_database(name);
        }
    }
}

pub fn usd(value: &str) -> Option<Money> {
    money("USD", value)
}

pub fn money(currency: &str, value: &str) -> Option<Money> {
    Some(Money {
        currency_code: currency.to_owned(),
        value: value.to_owned(),
    })
}

/// A PayPal capture request for `authorization_id` with a fresh request id.
pub fn paypal_capture(authorization_id: &str, amount: Option<Money>) -> CaptureRequest {
    capture_request(proto::Provider::Paypal, authorization_id, amount)
}

/// A capture request at `provider` for `authorization_id` with a fresh request id.
pub fn capture_request(
    provider: proto::Provider,
    authorization_id: &str,
    amount: Option<Money>,
) -> CaptureRequest {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    CaptureRequest {
        provider: provider as i32,
        authorization_id: authorization_id.to_owned(),
        amount,
        // A letter between two halves: 16 hex digits could be a Luhn-valid card number, which
        // the service refuses to store (a flake of 1 in thousands of requests).
        request_id: format!(
            "req-{}x{}",
            hex::encode(&random[..4]),
            hex::encode(&random[4..])
        ),
        ..Default::default()
    }
}

/// A release request at `provider` for `authorization_id` with a fresh request id.
pub fn release_request(
    provider: proto::Provider,
    authorization_id: &str,
    authorized_amount: Option<Money>,
) -> proto::ReleaseAuthorizationRequest {
    let capture = capture_request(provider, authorization_id, None);
    proto::ReleaseAuthorizationRequest {
        provider: provider as i32,
        authorization_id: authorization_id.to_owned(),
        authorized_amount,
        request_id: capture.request_id.replace("req-", "rel-"),
        ..Default::default()
    }
}

/// The `google.rpc.ErrorInfo` reason and metadata of an error, if it has one.
pub fn error_info(status: &Status) -> Option<(String, HashMap<String, String>)> {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| (info.reason, info.metadata))
}

/// The fields a `google.rpc.BadRequest` names.
pub fn bad_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// The error of a call that must fail.
pub fn error_of<T: std::fmt::Debug>(
    result: Result<T, Status>,
) -> Result<Status, Box<dyn std::error::Error>> {
    match result {
        Ok(value) => Err(format!("expected an error, got {value:?}").into()),
        Err(status) => Ok(status),
    }
}

/// Asserts that a call failed with `code` and an `ErrorInfo`; returns its reason and metadata.
#[track_caller]
pub fn refusal<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
) -> Result<(String, HashMap<String, String>), Box<dyn std::error::Error>> {
    let status = error_of(result)?;
    assert_eq!(status.code(), code, "{status:?}");
    Ok(error_info(&status).ok_or("no ErrorInfo")?)
}

/// Asserts that a call failed with `code` and the `ErrorInfo` reason `reason`; returns the
/// `ErrorInfo` metadata.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    reason: &str,
) -> Result<HashMap<String, String>, Box<dyn std::error::Error>> {
    let (actual, metadata) = refusal(result, code)?;
    assert_eq!(actual, reason, "{metadata:?}");
    Ok(metadata)
}

/// Asserts that a call to `provider` ended in an unknown outcome (UNAVAILABLE,
/// `PROVIDER_OUTCOME_UNKNOWN`); returns the id of the capture left open.
#[track_caller]
pub fn unknown_outcome<T: std::fmt::Debug>(
    result: Result<T, Status>,
    provider: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let metadata = refused(result, Code::Unavailable, "PROVIDER_OUTCOME_UNKNOWN")?;
    assert_eq!(detail(&metadata, "provider"), Some(provider));
    Ok(metadata.get("capture_id").ok_or("no capture id")?.clone())
}

/// One entry of an `ErrorInfo`'s metadata.
pub fn detail<'a>(metadata: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    metadata.get(key).map(String::as_str)
}

/// Asserts a capture is FAILED with the provider's error `code` and `http_status` kept.
#[track_caller]
pub fn assert_failed_with(capture: &proto::Capture, code: &str, http_status: i32) {
    assert_eq!(
        capture.status(),
        proto::CaptureStatus::Failed,
        "{capture:?}"
    );
    assert_eq!(
        capture
            .error
            .as_ref()
            .map(|e| (e.code.as_str(), e.http_status)),
        Some((code, http_status))
    );
}

pub fn assert_code(result: &Result<impl std::fmt::Debug, Status>, code: Code) {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(status) => assert_eq!(status.code(), code, "{status:?}"),
    }
}

/// Declares each scenario twice: once on SQLite, once on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> $crate::common::TestResult {
                    super::$name($crate::common::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> $crate::common::TestResult {
                    super::$name($crate::common::Db::Postgres).await
                }
            )*
        }
    };
}
