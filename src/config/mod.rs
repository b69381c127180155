//! Typed configuration, validated at start: defaults, then an optional TOML file
//! (`CAPTURE_CONFIG`), then `CAPTURE_*` environment variables. A bad setting stops the start
//! with a message naming it. Secrets are wrapped so they never print.

mod load;
mod secrets;
mod sources;
mod summary;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

pub use secrets::{DatabaseUrl, Secret};
pub use sources::ProviderSources;
pub use summary::AccountLine;

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Whether the built-in provider emulator serves the providers that have no account configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// On when no provider account at all is configured.
    Auto,
    On,
    Off,
}

/// An API key's SHA-256 digest and the tenant it authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub tenant: String,
    pub sha256: [u8; 32],
}

/// TLS on the gRPC port: PEM files of the server's certificate chain and private key, and
/// of the CAs whose client certificates are taken (mTLS; none: no client certificates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcTls {
    pub cert_file: String,
    pub key_file: String,
    pub client_ca_file: Option<String>,
}

/// A client certificate's identity, a DNS name in its subjectAltName, and the tenant it
/// authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    pub dns_name: String,
    pub tenant: String,
}

/// How provider calls are made, and the providers' own settings (their accounts), which each
/// provider reads itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvidersConfig {
    /// Deadline of one HTTP attempt to a provider.
    pub request_timeout: Duration,
    /// Further attempts after a failure that is safe to retry (same idempotency key).
    pub max_retries: u32,
    pub sources: ProviderSources,
}

/// How the reconciler paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// Time between passes; zero turns the reconciler off.
    pub interval: Duration,
    /// A capture younger than this is left to the request that made it.
    pub min_age: Duration,
    /// After this many looks without a definite answer the capture is left for a person
    /// (its status and audit trail say so).
    pub max_attempts: i32,
    /// Captures looked at per pass.
    pub batch: u64,
    /// How long a lease on a capture lasts unless its holder renews it. A process renews the
    /// leases of its calls in flight every third of it, so a process that dies loses its
    /// leases within one period, and its captures are settled elsewhere then.
    pub lease: Duration,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            interval: Duration::from_secs(10),
            min_age: Duration::from_secs(60),
            max_attempts: 24,
            batch: 100,
            lease: Duration::from_secs(10),
        }
    }
}

/// Limits that keep hostile or broken callers, and a struggling database, from taking the
/// service down. Whole numbers, as in the file's `[limits]` table and the `CAPTURE_*`
/// variables of the same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Open connections per port; more wait in the kernel's backlog. Lowered at start to fit
    /// the process's open-file limit.
    pub max_connections: u64,
    /// Idle seconds before TCP keepalive probes start on accepted connections (0: off).
    pub tcp_keepalive_seconds: u64,
    /// Seconds an HTTP connection has to send a complete request head (also when idle).
    pub http_header_read_timeout_seconds: u64,
    /// Seconds a gRPC connection has to send the HTTP/2 preface.
    pub grpc_handshake_timeout_seconds: u64,
    /// Seconds between HTTP/2 keep-alive pings on gRPC connections.
    pub grpc_keepalive_interval_seconds: u64,
    /// Seconds a ping may go unanswered before the connection is closed.
    pub grpc_keepalive_timeout_seconds: u64,
    /// Concurrent gRPC calls on one connection.
    pub grpc_max_concurrent_streams: u64,
    /// Largest gRPC request, in bytes; larger ones are refused whole (`OUT_OF_RANGE`).
    pub grpc_max_request_bytes: u64,
    /// Captures in progress at once; more are refused at once (`RESOURCE_EXHAUSTED`).
    pub max_captures_in_flight: u64,
    /// GetCapture and ListCaptures calls in progress at once, apart from the captures.
    pub max_reads_in_flight: u64,
    /// Changes a `WatchCaptures` stream holds for a caller that reads slowly; when they are
    /// full the stream ends, telling the caller the cursor to resume from.
    pub watch_buffer: u64,
    /// `WatchCaptures` streams open at once; past it a new one is refused with
    /// `RESOURCE_EXHAUSTED`.
    pub max_watchers: u64,
    /// `WatchCaptures` streams one tenant may have open at once.
    pub max_watchers_per_tenant: u64,
    /// Database connections in the pool.
    pub database_max_connections: u64,
    /// Pool connections that writes may not take, so reads answer during a capture storm.
    pub database_reserved_for_reads: u64,
    /// Milliseconds a statement waits for a database connection before `UNAVAILABLE`.
    pub database_acquire_timeout_ms: u64,
    /// Milliseconds one store operation (a transaction, or a read) may take before it is given
    /// up as `UNAVAILABLE`; also PostgreSQL's `statement_timeout` and
    /// `idle_in_transaction_session_timeout` of the service's sessions. A database that stops
    /// answering without closing anything (a dropped network) is noticed by this bound alone.
    pub database_statement_timeout_ms: u64,
    /// Seconds an HTTP request has to send its whole body (webhooks); then 408.
    pub http_body_timeout_seconds: u64,
    /// Seconds an HTTP request may take in all, from its head to its answer; then 408.
    pub http_request_timeout_seconds: u64,
    /// Webhook deliveries being received and handled at once, all providers together; past it
    /// 503 before the body is read, so slow senders cannot take the HTTP port's connections
    /// from the health checks.
    pub webhook_max_receiving: u64,
    /// Webhook deliveries of one provider verified and applied at once; past it 503.
    pub webhook_max_in_flight_per_provider: u64,
    /// Milliseconds a provider's webhook verification call (PayPal's) may take; then 503.
    pub webhook_verify_timeout_ms: u64,
    /// Milliseconds between the readiness checks that drive `grpc.health.v1`.
    pub readiness_check_interval_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            tcp_keepalive_seconds: 60,
            http_header_read_timeout_seconds: 10,
            grpc_handshake_timeout_seconds: 10,
            grpc_keepalive_interval_seconds: 30,
            grpc_keepalive_timeout_seconds: 10,
            grpc_max_concurrent_streams: 256,
            grpc_max_request_bytes: 256 * 1024,
            max_captures_in_flight: 1024,
            max_reads_in_flight: 1024,
            watch_buffer: 256,
            max_watchers: 1024,
            max_watchers_per_tenant: 128,
            database_max_connections: 16,
            database_reserved_for_reads: 4,
            database_acquire_timeout_ms: 2000,
            database_statement_timeout_ms: 5000,
            http_body_timeout_seconds: 10,
            http_request_timeout_seconds: 30,
            webhook_max_receiving: 256,
            webhook_max_in_flight_per_provider: 64,
            webhook_verify_timeout_ms: 5000,
            readiness_check_interval_ms: 2000,
        }
    }
}

impl Limits {
    /// Each field with its `CAPTURE_*` variable, for loading and for error messages.
    fn fields_mut(&mut self) -> [(&'static str, &mut u64); 23] {
        [
            ("CAPTURE_MAX_CONNECTIONS", &mut self.max_connections),
            (
                "CAPTURE_TCP_KEEPALIVE_SECONDS",
                &mut self.tcp_keepalive_seconds,
            ),
            (
                "CAPTURE_HTTP_HEADER_READ_TIMEOUT_SECONDS",
                &mut self.http_header_read_timeout_seconds,
            ),
            (
                "CAPTURE_GRPC_HANDSHAKE_TIMEOUT_SECONDS",
                &mut self.grpc_handshake_timeout_seconds,
            ),
            (
                "CAPTURE_GRPC_KEEPALIVE_INTERVAL_SECONDS",
                &mut self.grpc_keepalive_interval_seconds,
            ),
            (
                "CAPTURE_GRPC_KEEPALIVE_TIMEOUT_SECONDS",
                &mut self.grpc_keepalive_timeout_seconds,
            ),
            (
                "CAPTURE_GRPC_MAX_CONCURRENT_STREAMS",
                &mut self.grpc_max_concurrent_streams,
            ),
            (
                "CAPTURE_GRPC_MAX_REQUEST_BYTES",
                &mut self.grpc_max_request_bytes,
            ),
            (
                "CAPTURE_MAX_CAPTURES_IN_FLIGHT",
                &mut self.max_captures_in_flight,
            ),
            ("CAPTURE_MAX_READS_IN_FLIGHT", &mut self.max_reads_in_flight),
            ("CAPTURE_WATCH_BUFFER", &mut self.watch_buffer),
            ("CAPTURE_MAX_WATCHERS", &mut self.max_watchers),
            (
                "CAPTURE_MAX_WATCHERS_PER_TENANT",
                &mut self.max_watchers_per_tenant,
            ),
            (
                "CAPTURE_DATABASE_MAX_CONNECTIONS",
                &mut self.database_max_connections,
            ),
            (
                "CAPTURE_DATABASE_RESERVED_FOR_READS",
                &mut self.database_reserved_for_reads,
            ),
            (
                "CAPTURE_DATABASE_ACQUIRE_TIMEOUT_MS",
                &mut self.database_acquire_timeout_ms,
            ),
            (
                "CAPTURE_DATABASE_STATEMENT_TIMEOUT_MS",
                &mut self.database_statement_timeout_ms,
            ),
            (
                "CAPTURE_HTTP_BODY_TIMEOUT_SECONDS",
                &mut self.http_body_timeout_seconds,
            ),
            (
                "CAPTURE_HTTP_REQUEST_TIMEOUT_SECONDS",
                &mut self.http_request_timeout_seconds,
            ),
            (
                "CAPTURE_WEBHOOK_MAX_RECEIVING",
                &mut self.webhook_max_receiving,
            ),
            (
                "CAPTURE_WEBHOOK_MAX_IN_FLIGHT_PER_PROVIDER",
                &mut self.webhook_max_in_flight_per_provider,
            ),
            (
                "CAPTURE_WEBHOOK_VERIFY_TIMEOUT_MS",
                &mut self.webhook_verify_timeout_ms,
            ),
            (
                "CAPTURE_READINESS_CHECK_INTERVAL_MS",
                &mut self.readiness_check_interval_ms,
            ),
        ]
    }

    pub fn tcp_keepalive(&self) -> Option<Duration> {
        (self.tcp_keepalive_seconds > 0).then(|| Duration::from_secs(self.tcp_keepalive_seconds))
    }

    pub fn http_header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.http_header_read_timeout_seconds)
    }

    pub fn grpc_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.grpc_handshake_timeout_seconds)
    }

    pub fn grpc_keepalive_interval(&self) -> Duration {
        Duration::from_secs(self.grpc_keepalive_interval_seconds)
    }

    pub fn grpc_keepalive_timeout(&self) -> Duration {
        Duration::from_secs(self.grpc_keepalive_timeout_seconds)
    }

    pub fn database_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.database_acquire_timeout_ms)
    }

    pub fn database_statement_timeout(&self) -> Duration {
        Duration::from_millis(self.database_statement_timeout_ms)
    }

    pub fn http_body_timeout(&self) -> Duration {
        Duration::from_secs(self.http_body_timeout_seconds)
    }

    pub fn http_request_timeout(&self) -> Duration {
        Duration::from_secs(self.http_request_timeout_seconds)
    }

    pub fn readiness_check_interval(&self) -> Duration {
        Duration::from_millis(self.readiness_check_interval_ms)
    }

    pub fn webhook_verify_timeout(&self) -> Duration {
        Duration::from_millis(self.webhook_verify_timeout_ms)
    }

    /// These limits lowered, where they must be, so that everything they allow at once fits
    /// `open_files` descriptors: each capture in flight may hold a connection to its provider,
    /// each port its connections, the pool its own, and a reserve is kept for files, logs and
    /// the rest. Returns the fitted limits and a line for each one lowered.
    pub fn fitted_to(&self, open_files: u64) -> (Limits, Vec<String>) {
        const RESERVED_FILES: u64 = 256;
        let mut fitted = *self;
        let mut lowered = Vec::new();
        let available = open_files
            .saturating_sub(RESERVED_FILES + self.database_max_connections)
            .max(4);
        let captures = self.max_captures_in_flight.min(available / 2).max(1);
        let per_port = self
            .max_connections
            .min(available.saturating_sub(captures) / 2)
            .max(1);
        if captures < self.max_captures_in_flight {
            lowered.push(format!(
                "CAPTURE_MAX_CAPTURES_IN_FLIGHT lowered from {} to {captures} to fit the open-file limit of {open_files} (ulimit -n)",
                self.max_captures_in_flight
            ));
            fitted.max_captures_in_flight = captures;
        }
        if per_port < self.max_connections {
            lowered.push(format!(
                "CAPTURE_MAX_CONNECTIONS lowered from {} to {per_port} per port to fit the open-file limit of {open_files} (ulimit -n)",
                self.max_connections
            ));
            fitted.max_connections = per_port;
        }
        // Webhook senders may hold at most half of the HTTP port's connections: the health
        // checks must always find one.
        let receiving = self
            .webhook_max_receiving
            .min(fitted.max_connections / 2)
            .max(1);
        if receiving < self.webhook_max_receiving {
            lowered.push(format!(
                "CAPTURE_WEBHOOK_MAX_RECEIVING lowered from {} to {receiving}, half of the HTTP port's {} connections, so that health checks always find one",
                self.webhook_max_receiving, fitted.max_connections
            ));
            fitted.webhook_max_receiving = receiving;
        }
        (fitted, lowered)
    }
}

/// The whole configuration of one service process.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub database_url: DatabaseUrl,
    /// Apply pending migrations at `serve` (off where a deploy job runs `migrate` first).
    pub migrate_on_start: bool,
    /// Whether the built-in sandbox delivers its providers' webhooks to this service.
    pub sandbox_webhooks: bool,
    /// How often the change feed reads the trail for changes other replicas committed,
    /// besides their notices.
    pub change_poll: Duration,
    pub log_format: LogFormat,
    pub log_filter: String,
    /// Where spans are exported over OTLP/gRPC (`http://collector:4317`); none: not exported.
    pub otlp_endpoint: Option<String>,
    pub api_keys: Vec<ApiKey>,
    /// TLS on the gRPC port; none: plaintext (behind a mesh or a TLS-terminating proxy).
    pub grpc_tls: Option<GrpcTls>,
    /// Client certificate identities that authenticate as a tenant, beside the API keys.
    pub client_certificates: Vec<ClientCertificate>,
    pub sandbox: SandboxMode,
    pub providers: ProvidersConfig,
    /// How long shutdown waits for captures in flight.
    pub shutdown_grace: Duration,
    pub reconcile: ReconcileConfig,
    /// Sandbox mode without API keys: the development key to accept (random when unset).
    pub dev_api_key: Option<Secret>,
    /// Sandbox mode without API keys: where the development key is written for local tools.
    pub dev_api_key_file: Option<String>,
    pub limits: Limits,
    /// `CAPTURE_*` variables set but read by nothing (a misspelling, most likely): warned about
    /// at start.
    pub unknown_variables: Vec<String>,
}

impl SandboxMode {
    /// Whether the built-in emulator serves the providers without accounts, given whether any
    /// provider account is configured.
    pub fn enabled(self, any_account: bool) -> bool {
        match self {
            SandboxMode::On => true,
            SandboxMode::Off => false,
            SandboxMode::Auto => !any_account,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: DatabaseUrl::from("sqlite://capture.db?mode=rwc".to_owned()),
            migrate_on_start: true,
            sandbox_webhooks: true,
            change_poll: Duration::from_millis(200),
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
            api_keys: Vec::new(),
            grpc_tls: None,
            client_certificates: Vec::new(),
            sandbox: SandboxMode::Auto,
            providers: ProvidersConfig {
                request_timeout: Duration::from_secs(20),
                max_retries: 2,
                sources: ProviderSources::default(),
            },
            shutdown_grace: Duration::from_secs(30),
            reconcile: ReconcileConfig::default(),
            dev_api_key: None,
            dev_api_key_file: Some(".capture-dev-key".to_owned()),
            limits: Limits::default(),
            unknown_variables: Vec::new(),
        }
    }
}

/// A setting that could not be used; names the setting.
#[derive(Debug, thiserror::Error)]
#[error("configuration {setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: &str, problem: impl fmt::Display) -> Self {
        ConfigError {
            setting: setting.to_owned(),
            problem: problem.to_string(),
        }
    }
}

fn bad(setting: &str, problem: impl fmt::Display) -> ConfigError {
    ConfigError::new(setting, problem)
}
