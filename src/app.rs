//! Builds the whole server from a [`Config`]: `main` and the tests go through the same path.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use tonic_health::ServingStatus;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::{info, warn};

use crate::api::{ApiKeys, Callers, CaptureApi, CertificateTenants, WatchLimits};
use crate::capture::{Captures, WebhookLimits};
use crate::config::{ApiKey, Config, ProviderSources, SandboxMode};
use crate::http::{RandomRequestId, Readiness};
use crate::net::{raise_open_file_limit, serve_http1, Listener, ListenerRules, HTTP2_PREFACE_LEN};
use crate::proto::capture_service_server::CaptureServiceServer;
use crate::providers::http::ProviderHttp;
use crate::providers::{load_accounts, Account, Connectors};
#[cfg(feature = "sandbox")]
use crate::sandbox::Sandbox;
use crate::store::{PoolSettings, Store};
#[cfg(not(feature = "sandbox"))]
use without_sandbox::Sandbox;

/// The API's name in `grpc.health.v1`.
const CAPTURE_SERVICE: &str = "capture.v1.CaptureService";

/// A built server: listeners bound, database migrated, not yet serving.
pub struct App {
    config: Config,
    grpc: TcpListener,
    http: TcpListener,
    store: Store,
    captures: Captures,
    tasks: TaskTracker,
    callers: Callers,
    /// TLS on the gRPC port, read from its files at build.
    grpc_tls: Option<tonic::transport::ServerTlsConfig>,
    sandbox: Option<Sandbox>,
    dev_api_key: Option<DevApiKey>,
}

/// The development key of sandbox mode without configured API keys.
struct DevApiKey {
    key: String,
    /// Made by this process (then it is shown), rather than set by the operator.
    generated: bool,
}

impl App {
    /// Connects and migrates the database, starts the sandbox if enabled, builds the connectors
    /// and binds both ports (port 0 picks a free one).
    pub async fn build(mut config: Config) -> anyhow::Result<App> {
        for name in &config.unknown_variables {
            warn!(variable = %name, "unknown setting {name}, ignored: a misspelling? (README lists every CAPTURE_* variable)");
        }
        if let Some(open_files) = raise_open_file_limit() {
            let (fitted, lowered) = config.limits.fitted_to(open_files);
            for line in lowered {
                warn!("{line}");
            }
            config.limits = fitted;
        }
        // Settings that can refuse the start come first, before the database is touched.
        let configured = load_accounts(&config.providers.sources)?;
        let sandbox = if config.sandbox.enabled(!configured.is_empty()) {
            start_sandbox(config.sandbox).await?
        } else {
            None
        };
        let limits = &config.limits;
        let pool = PoolSettings {
            max_connections: limits.database_max_connections as u32,
            reserved_for_reads: limits.database_reserved_for_reads as u32,
            acquire_timeout: limits.database_acquire_timeout(),
            change_poll: config.change_poll,
            statement_timeout: Some(limits.database_statement_timeout()),
        };
        let store = if config.migrate_on_start {
            Store::connect_migrated(&config.database_url, pool).await
        } else {
            Store::connect_with(&config.database_url, pool).await
        }
        .map_err(|err| database_error(&config.database_url, &err))?;

        let connectors = build_connectors(&config, configured, sandbox.as_ref())?;

        let mut keys = config.api_keys.clone();
        let dev_api_key = if keys.is_empty() && sandbox.is_some() {
            let (key, generated) = match &config.dev_api_key {
                Some(key) => (key.expose().to_owned(), false),
                None => (dev_api_key()?, true),
            };
            if let Some(path) = &config.dev_api_key_file {
                write_private(path, &key)
                    .with_context(|| format!("Failed to write the development key to {path}"))?;
            }
            keys.push(ApiKey {
                tenant: "dev".to_owned(),
                sha256: sha256(&key),
            });
            Some(DevApiKey { key, generated })
        } else {
            None
        };
        if keys.is_empty() {
            warn!("no API keys are configured (CAPTURE_API_KEYS): every call will be refused");
        }

        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("Failed to bind gRPC on {}", config.grpc_addr))?;
        let http = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("Failed to bind HTTP on {}", config.http_addr))?;
        if let Some(sandbox) = sandbox.as_ref().filter(|_| config.sandbox_webhooks) {
            // The built-in sandbox delivers its providers' webhooks to this service.
            let mut to = http.local_addr()?;
            if to.ip().is_unspecified() {
                to.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            sandbox.send_webhooks_to(&format!("http://{to}"));
        }
        let tasks = TaskTracker::new();
        let captures = Captures::new(
            store.clone(),
            connectors,
            tasks.clone(),
            config.limits.max_captures_in_flight as usize,
            config.reconcile.lease,
            config
                .reconcile
                .interval
                .max(std::time::Duration::from_secs(1)),
        )
        .with_webhook_limits(WebhookLimits::new(
            config.limits.webhook_max_in_flight_per_provider as usize,
            config.limits.webhook_verify_timeout(),
        ));
        let grpc_tls = config
            .grpc_tls
            .as_ref()
            .map(|tls| grpc_tls(tls, config.limits.grpc_handshake_timeout()))
            .transpose()?;
        let callers = Callers {
            keys: ApiKeys::new(keys),
            certificates: CertificateTenants::new(&config.client_certificates),
        };
        Ok(App {
            config,
            grpc,
            http,
            store,
            captures,
            tasks,
            callers,
            grpc_tls,
            sandbox,
            dev_api_key,
        })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// The development key this process generated (sandbox mode with no keys configured),
    /// tenant `dev`; `None` when the operator set it (`CAPTURE_DEV_API_KEY`), which is then
    /// never shown.
    pub fn generated_dev_api_key(&self) -> Option<&str> {
        self.dev_api_key
            .as_ref()
            .filter(|dev| dev.generated)
            .map(|dev| dev.key.as_str())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The built-in sandbox's `CAPTURE_<PROVIDER>_*` variables (its accounts' credentials and
    /// webhook secrets), empty without it: for tests that sign provider deliveries.
    pub fn sandbox_env(&self) -> Vec<(String, String)> {
        self.sandbox
            .as_ref()
            .map(Sandbox::service_env)
            .unwrap_or_default()
    }

    /// Serves until `shutdown` resolves, then stops taking requests, lets in-flight calls and
    /// captures finish (up to the configured grace), and returns.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let token = CancellationToken::new();
        let readiness = Readiness::new(self.store.clone());
        let trigger = token.clone();
        let draining = readiness.clone();
        tokio::spawn(async move {
            shutdown.await;
            // Not ready first, then drain: probes turn traffic away while calls finish.
            draining.drain();
            trigger.cancel();
        });

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status(crate::http::readiness::LIVENESS, ServingStatus::Serving)
            .await;
        // "" and the API follow the readiness check: not serving until it first passes.
        let health_task = {
            let health = health.clone();
            let mut ready = readiness.subscribe();
            tokio::spawn(async move {
                loop {
                    let status = if *ready.borrow_and_update() {
                        ServingStatus::Serving
                    } else {
                        ServingStatus::NotServing
                    };
                    for name in ["", CAPTURE_SERVICE] {
                        health.set_service_status(name, status).await;
                    }
                    if ready.changed().await.is_err() {
                        return;
                    }
                }
            })
        };
        let checker = {
            let readiness = readiness.clone();
            let stop = token.clone();
            let every = self.config.limits.readiness_check_interval();
            tokio::spawn(async move { readiness.check_until(every, stop).await })
        };
        let reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // So that reflection clients (grpcurl) can decode BadRequest/ErrorInfo/RetryInfo.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .context("Failed to build reflection v1")?;
        let reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .build_v1alpha()
            .context("Failed to build reflection v1alpha")?;
        let limits = self.config.limits;
        let api = CaptureServiceServer::new(CaptureApi::new(
            self.captures.clone(),
            limits.max_reads_in_flight as usize,
            WatchLimits {
                max_watchers: limits.max_watchers as usize,
                max_watchers_per_tenant: limits.max_watchers_per_tenant as usize,
                buffer: limits.watch_buffer as usize,
            },
            token.clone(),
        ))
        // Larger requests are refused whole, before they are decoded.
        .max_decoding_message_size(limits.grpc_max_request_bytes as usize);
        let api = InterceptedService::new(api, self.callers.interceptor());
        let max_connections = limits.max_connections as usize;
        let grpc_listener = Listener::new(
            self.grpc,
            ListenerRules {
                max_connections,
                tcp_keepalive: limits.tcp_keepalive(),
                first_bytes: Some((HTTP2_PREFACE_LEN, limits.grpc_handshake_timeout())),
            },
            "grpc",
        );
        let http_listener = Listener::new(
            self.http,
            ListenerRules {
                max_connections,
                tcp_keepalive: limits.tcp_keepalive(),
                // hyper's header-read timeout covers HTTP/1 from the first byte on.
                first_bytes: None,
            },
            "http",
        );

        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;
        let grpc_token = token.clone();
        let mut grpc = tonic::transport::Server::builder();
        if let Some(tls) = self.grpc_tls.take() {
            grpc = grpc.tls_config(tls).context("CAPTURE_GRPC_TLS_*")?;
        }
        let grpc = grpc
            .http2_keepalive_interval(Some(limits.grpc_keepalive_interval()))
            .http2_keepalive_timeout(Some(limits.grpc_keepalive_timeout()))
            .max_concurrent_streams(limits.grpc_max_concurrent_streams as u32)
            // Outermost first: a request id (the caller's `x-request-id`, else a new one) is
            // set, carried by the call's span into every log line, and returned in the answer.
            .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(
                TraceLayer::new_for_grpc()
                    .make_span_with(crate::telemetry::calls::grpc_span)
                    .on_failure(crate::telemetry::calls::GrpcFailures),
            )
            .layer(crate::telemetry::grpc_metrics::GrpcMetricsLayer)
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(api)
            .serve_with_incoming_shutdown(grpc_listener.into_incoming(), async move {
                grpc_token.cancelled().await
            });

        let sandbox_routes = self.sandbox.as_ref().map(Sandbox::admin_router);
        let http_router = crate::http::router(
            self.captures.clone(),
            readiness.clone(),
            sandbox_routes,
            crate::http::webhooks::ReceiveLimits {
                max_receiving: limits.webhook_max_receiving as usize,
                body_timeout: limits.http_body_timeout(),
            },
            limits.http_request_timeout(),
        );
        let http_token = token.clone();
        let http = serve_http1(
            http_listener,
            http_router,
            limits.http_header_read_timeout(),
            async move { http_token.cancelled().await },
        );

        // Its own token: leases are renewed until the last call in flight has ended.
        let keeper_stop = CancellationToken::new();
        let keeper = {
            let captures = self.captures.clone();
            let stop = keeper_stop.clone();
            tokio::spawn(async move { captures.keep_leases_until(stop).await })
        };
        let reconciler = {
            let captures = self.captures.clone();
            let config = self.config.reconcile;
            let stop = token.clone();
            tokio::spawn(async move { captures.reconcile_until(config, stop).await })
        };

        info!(%grpc_addr, %http_addr, sandbox = self.sandbox.is_some(), "capture-service serving");
        match (&self.dev_api_key, &self.config.dev_api_key_file) {
            (Some(_), Some(path)) => info!("development API key (tenant dev) written to {path}"),
            (Some(dev), None) if dev.generated => {
                info!("development API key (tenant dev) printed on standard output")
            }
            (Some(_), None) => info!("development API key (tenant dev) from CAPTURE_DEV_API_KEY"),
            (None, _) => {}
        }
        // A peer that stops reading (a watcher's stream it never drains) must not hold the
        // shutdown: calls get the grace period to finish, then the connections are dropped.
        let drain_token = token.clone();
        let grace = self.config.shutdown_grace;
        let grpc = async move {
            tokio::select! {
                served = grpc => served,
                () = async {
                    drain_token.cancelled().await;
                    tokio::time::sleep(grace).await;
                } => {
                    warn!("gRPC calls still open after the shutdown grace; closing their connections");
                    Ok(())
                }
            }
        };
        let (grpc_result, ()) = tokio::join!(grpc, http);
        if let Err(err) = reconciler.await {
            warn!(error = %err, "the reconciler stopped abnormally");
        }
        let _ = checker.await;
        health_task.abort();
        for name in ["", CAPTURE_SERVICE, crate::http::readiness::LIVENESS] {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }

        // Provider calls run in their own tasks; give them the grace period to record outcomes.
        self.tasks.close();
        if tokio::time::timeout(self.config.shutdown_grace, self.tasks.wait())
            .await
            .is_err()
        {
            warn!("shutdown grace elapsed with captures in flight; they stay PROCESSING and are resumed on retry");
        }
        keeper_stop.cancel();
        let _ = keeper.await;
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
        grpc_result.context("gRPC server failed")?;
        info!("capture-service stopped");
        Ok(())
    }
}

/// The built-in sandbox, started on a free local port.
#[cfg(feature = "sandbox")]
async fn start_sandbox(_mode: SandboxMode) -> anyhow::Result<Option<Sandbox>> {
    let sandbox = Sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("Failed to start the sandbox")?;
    warn!("SANDBOX MODE: providers without configured accounts are served by the built-in emulator; no real money moves");
    Ok(Some(sandbox))
}

/// A build without the sandbox refuses to be asked for one, and runs without it otherwise.
#[cfg(not(feature = "sandbox"))]
async fn start_sandbox(mode: SandboxMode) -> anyhow::Result<Option<Sandbox>> {
    if mode == SandboxMode::On {
        anyhow::bail!(
            "CAPTURE_SANDBOX=on, but this build has no sandbox (built without the `sandbox` \
             feature): configure provider accounts and set CAPTURE_SANDBOX=off, or run a \
             standalone sandbox elsewhere (`capture-service sandbox`, from a default build)"
        );
    }
    warn!("no provider account is configured and this build has no sandbox: every capture will be refused (PROVIDER_NOT_CONFIGURED)");
    Ok(None)
}

/// Stands in for the sandbox in builds without it: no value of it can exist.
#[cfg(not(feature = "sandbox"))]
mod without_sandbox {
    pub enum Sandbox {}

    impl Sandbox {
        pub fn service_env(&self) -> Vec<(String, String)> {
            match *self {}
        }

        pub fn admin_router(&self) -> axum::Router {
            match *self {}
        }

        pub fn send_webhooks_to(&self, _origin: &str) {
            match *self {}
        }

        pub async fn shutdown(self) {
            match self {}
        }
    }
}

/// The configured accounts' connectors; in sandbox mode, providers without a configured
/// account are served by the sandbox's, read from the same variables a standalone sandbox
/// prints.
fn build_connectors(
    config: &Config,
    mut accounts: Vec<Arc<dyn Account>>,
    sandbox: Option<&Sandbox>,
) -> anyhow::Result<Connectors> {
    let http = ProviderHttp::new(
        config.providers.request_timeout,
        config.providers.max_retries,
    )
    .context("Failed to build the provider HTTP client")?;
    if let Some(sandbox) = sandbox {
        let sandboxed = load_accounts(&ProviderSources::from_vars(sandbox.service_env()))
            .context("The sandbox's accounts do not load")?;
        let missing: Vec<_> = sandboxed
            .into_iter()
            .filter(|s| !accounts.iter().any(|a| a.provider() == s.provider()))
            .collect();
        accounts.extend(missing);
    }
    Ok(Connectors::from_accounts(&accounts, &http))
}

/// Why the database cannot be used, in one line: where it is (password redacted) and the
/// root cause, instead of every layer repeating it.
pub fn database_error(
    url: &crate::config::DatabaseUrl,
    err: &crate::store::StoreError,
) -> anyhow::Error {
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let hint = if cause.to_string().contains("does not exist") {
        " (create it first: the service creates its tables, not the database)"
    } else {
        ""
    };
    anyhow::anyhow!(
        "cannot use the database at {}: {cause}{hint}",
        url.redacted()
    )
}

fn dev_api_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the dev key: {e}"))?;
    Ok(format!("dev_{}", hex::encode(bytes)))
}

/// Writes a file only its owner can read.
fn write_private(path: &str, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{contents}")
}

fn sha256(key: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes()).into()
}

/// The gRPC port's TLS from its PEM files: the server's chain and key, and the client CAs
/// when client certificates are taken (optional at the handshake: a caller without one
/// authenticates with an API key, and health probes need none).
fn grpc_tls(
    tls: &crate::config::GrpcTls,
    handshake_timeout: std::time::Duration,
) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let read = |setting: &str, path: &str| {
        std::fs::read(path).with_context(|| format!("{setting}: cannot read {path}"))
    };
    let identity = Identity::from_pem(
        read("CAPTURE_GRPC_TLS_CERT", &tls.cert_file)?,
        read("CAPTURE_GRPC_TLS_KEY", &tls.key_file)?,
    );
    let mut config = ServerTlsConfig::new()
        .identity(identity)
        .timeout(handshake_timeout);
    if let Some(ca) = &tls.client_ca_file {
        config = config
            .client_ca_root(Certificate::from_pem(read(
                "CAPTURE_GRPC_TLS_CLIENT_CA",
                ca,
            )?))
            .client_auth_optional(true);
    }
    Ok(config)
}
