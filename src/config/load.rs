//! Loading: defaults, then the optional TOML file, then `CAPTURE_*` variables; then validation.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
struct ApiKeyFile {
    tenant: String,
    sha256: String,
}

/// The optional file: every field optional, overriding the defaults.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    grpc_addr: Option<String>,
    http_addr: Option<String>,
    database_url: Option<String>,
    migrate_on_start: Option<bool>,
    log_format: Option<LogFormat>,
    log_filter: Option<String>,
    otlp_endpoint: Option<String>,
    sandbox: Option<SandboxMode>,
    shutdown_grace_seconds: Option<u64>,
    reconcile_interval_seconds: Option<u64>,
    reconcile_min_age_seconds: Option<u64>,
    lease_seconds: Option<u64>,
    #[serde(default)]
    api_keys: Vec<ApiKeyFile>,
    grpc_tls: Option<GrpcTlsFile>,
    #[serde(default)]
    client_certificates: Vec<ClientCertificateFile>,
    #[serde(default)]
    providers: FileProviders,
    limits: Option<Limits>,
}

/// `[grpc_tls]`: PEM files.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrpcTlsFile {
    cert_file: String,
    key_file: String,
    client_ca_file: Option<String>,
}

/// `[[client_certificates]]`: an identity and its tenant.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientCertificateFile {
    dns_name: String,
    tenant: String,
}

/// `[providers]`: how calls are made, and each provider's `[[providers.<name>]]` accounts,
/// kept as tables for the provider to read.
#[derive(Deserialize, Default)]
struct FileProviders {
    request_timeout_seconds: Option<u64>,
    max_retries: Option<u32>,
    #[serde(flatten)]
    accounts: std::collections::BTreeMap<String, Vec<toml::Table>>,
}

impl Config {
    /// Loads from the process environment (and the file it names).
    pub fn from_env() -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars()
            .filter(|(k, _)| k.starts_with("CAPTURE_"))
            .collect();
        Self::load(&env)
    }

    /// Loads from the given `CAPTURE_*` variables (and the file `CAPTURE_CONFIG` names).
    pub fn load(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut config = Config::default();
        if let Some(path) = env.get("CAPTURE_CONFIG") {
            let text = std::fs::read_to_string(Path::new(path))
                .map_err(|e| bad("CAPTURE_CONFIG", format!("cannot read {path}: {e}")))?;
            let file: FileConfig =
                toml::from_str(&text).map_err(|e| bad("CAPTURE_CONFIG", format!("{path}: {e}")))?;
            config.apply_file(file)?;
        }
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_file(&mut self, file: FileConfig) -> Result<(), ConfigError> {
        if let Some(v) = file.grpc_addr {
            self.grpc_addr = parse_addr("grpc_addr", &v)?;
        }
        if let Some(v) = file.http_addr {
            self.http_addr = parse_addr("http_addr", &v)?;
        }
        if let Some(v) = file.database_url {
            self.database_url = DatabaseUrl::from(v);
        }
        if let Some(v) = file.migrate_on_start {
            self.migrate_on_start = v;
        }
        if let Some(v) = file.log_format {
            self.log_format = v;
        }
        if let Some(v) = file.log_filter {
            self.log_filter = v;
        }
        if let Some(v) = file.otlp_endpoint {
            self.otlp_endpoint = Some(v);
        }
        if let Some(v) = file.sandbox {
            self.sandbox = v;
        }
        if let Some(v) = file.shutdown_grace_seconds {
            self.shutdown_grace = Duration::from_secs(v);
        }
        if let Some(v) = file.reconcile_interval_seconds {
            self.reconcile.interval = Duration::from_secs(v);
        }
        if let Some(v) = file.reconcile_min_age_seconds {
            self.reconcile.min_age = Duration::from_secs(v);
        }
        if let Some(v) = file.lease_seconds {
            self.reconcile.lease = Duration::from_secs(v);
        }
        if let Some(limits) = file.limits {
            self.limits = limits;
        }
        for key in file.api_keys {
            self.api_keys.push(ApiKey {
                sha256: parse_digest("api_keys.sha256", &key.sha256)?,
                tenant: key.tenant,
            });
        }
        if let Some(tls) = file.grpc_tls {
            self.grpc_tls = Some(GrpcTls {
                cert_file: tls.cert_file,
                key_file: tls.key_file,
                client_ca_file: tls.client_ca_file,
            });
        }
        for certificate in file.client_certificates {
            self.client_certificates.push(ClientCertificate {
                dns_name: certificate.dns_name,
                tenant: certificate.tenant,
            });
        }
        if let Some(v) = file.providers.request_timeout_seconds {
            self.providers.request_timeout = Duration::from_secs(v);
        }
        if let Some(v) = file.providers.max_retries {
            self.providers.max_retries = v;
        }
        for (provider, tables) in file.providers.accounts {
            self.providers.sources.set_tables(provider, tables);
        }
        Ok(())
    }

    fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        // Every name asked for, so that the rest can be reported as unknown.
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::<String>::new());
        let get = |name: &str| {
            asked.borrow_mut().insert(name.to_owned());
            env.get(name).map(String::as_str).filter(|v| !v.is_empty())
        };
        if let Some(v) = get("CAPTURE_GRPC_ADDR") {
            self.grpc_addr = parse_addr("CAPTURE_GRPC_ADDR", v)?;
        }
        if let Some(v) = get("CAPTURE_HTTP_ADDR") {
            self.http_addr = parse_addr("CAPTURE_HTTP_ADDR", v)?;
        }
        if let Some(v) = get("CAPTURE_DATABASE_URL") {
            self.database_url = DatabaseUrl::from(v.to_owned());
        }
        if let Some(v) = get("CAPTURE_MIGRATE_ON_START") {
            self.migrate_on_start = parse_word("CAPTURE_MIGRATE_ON_START", v)?;
        }
        if let Some(v) = get("CAPTURE_LOG_FORMAT") {
            self.log_format = parse_word("CAPTURE_LOG_FORMAT", v)?;
        }
        if let Some(v) = get("CAPTURE_LOG") {
            self.log_filter = v.to_owned();
        }
        if let Some(v) = get("CAPTURE_OTLP_ENDPOINT") {
            self.otlp_endpoint = Some(v.to_owned());
        }
        if let Some(v) = get("CAPTURE_SANDBOX") {
            self.sandbox = parse_word("CAPTURE_SANDBOX", v)?;
        }
        if let Some(v) = get("CAPTURE_CHANGE_POLL_MS") {
            let ms = parse_num("CAPTURE_CHANGE_POLL_MS", v)?;
            if ms == 0 {
                return Err(bad("CAPTURE_CHANGE_POLL_MS", "must be at least 1"));
            }
            self.change_poll = Duration::from_millis(ms);
        }
        if let Some(v) = get("CAPTURE_SANDBOX_WEBHOOKS") {
            self.sandbox_webhooks = match v {
                "true" | "on" => true,
                "false" | "off" => false,
                _ => return Err(bad("CAPTURE_SANDBOX_WEBHOOKS", "must be true or false")),
            };
        }
        if let Some(v) = get("CAPTURE_RECONCILE_INTERVAL_SECONDS") {
            self.reconcile.interval =
                Duration::from_secs(parse_num("CAPTURE_RECONCILE_INTERVAL_SECONDS", v)?);
        }
        if let Some(v) = get("CAPTURE_RECONCILE_MIN_AGE_SECONDS") {
            self.reconcile.min_age =
                Duration::from_secs(parse_num("CAPTURE_RECONCILE_MIN_AGE_SECONDS", v)?);
        }
        if let Some(v) = get("CAPTURE_LEASE_SECONDS") {
            self.reconcile.lease = Duration::from_secs(parse_num("CAPTURE_LEASE_SECONDS", v)?);
        }
        if let Some(v) = get("CAPTURE_DEV_API_KEY") {
            // The same rule as every API key (`hash-key`): a short key is guessable.
            crate::api::auth::key_digest_hex(v).map_err(|e| bad("CAPTURE_DEV_API_KEY", e))?;
            self.dev_api_key = Some(Secret::new(v));
        }
        if let Some(v) = env.get("CAPTURE_DEV_API_KEY_FILE") {
            // Set but empty: do not write the key anywhere.
            self.dev_api_key_file = (!v.is_empty()).then(|| v.clone());
        }
        if let Some(v) = get("CAPTURE_SHUTDOWN_GRACE_SECONDS") {
            self.shutdown_grace =
                Duration::from_secs(parse_num("CAPTURE_SHUTDOWN_GRACE_SECONDS", v)?);
        }
        if let Some(v) = get("CAPTURE_PROVIDER_TIMEOUT_SECONDS") {
            self.providers.request_timeout =
                Duration::from_secs(parse_num("CAPTURE_PROVIDER_TIMEOUT_SECONDS", v)?);
        }
        if let Some(v) = get("CAPTURE_PROVIDER_MAX_RETRIES") {
            self.providers.max_retries = parse_num("CAPTURE_PROVIDER_MAX_RETRIES", v)?;
        }
        for (name, field) in self.limits.fields_mut() {
            if let Some(v) = get(name) {
                *field = parse_num(name, v)?;
            }
        }
        let cert = get("CAPTURE_GRPC_TLS_CERT");
        let key = get("CAPTURE_GRPC_TLS_KEY");
        let client_ca = get("CAPTURE_GRPC_TLS_CLIENT_CA");
        if cert.is_some() || key.is_some() || client_ca.is_some() {
            let (Some(cert), Some(key)) = (cert, key) else {
                return Err(bad(
                    "CAPTURE_GRPC_TLS_CERT",
                    "TLS on the gRPC port needs both CAPTURE_GRPC_TLS_CERT and CAPTURE_GRPC_TLS_KEY (PEM files)",
                ));
            };
            self.grpc_tls = Some(GrpcTls {
                cert_file: cert.to_owned(),
                key_file: key.to_owned(),
                client_ca_file: client_ca.map(str::to_owned),
            });
        }
        if let Some(v) = get("CAPTURE_CLIENT_CERT_TENANTS") {
            for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let (dns_name, tenant) = entry.split_once('=').ok_or_else(|| {
                    bad(
                        "CAPTURE_CLIENT_CERT_TENANTS",
                        "entries are dns-name=tenant, comma-separated",
                    )
                })?;
                self.client_certificates.push(ClientCertificate {
                    dns_name: dns_name.trim().to_owned(),
                    tenant: tenant.trim().to_owned(),
                });
            }
        }
        if let Some(v) = get("CAPTURE_API_KEYS") {
            for entry in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let (tenant, digest) = entry.split_once(':').ok_or_else(|| {
                    bad(
                        "CAPTURE_API_KEYS",
                        "entries are tenant:sha256-hex, comma-separated",
                    )
                })?;
                self.api_keys.push(ApiKey {
                    tenant: tenant.to_owned(),
                    sha256: parse_digest("CAPTURE_API_KEYS", digest)?,
                });
            }
        }
        // Every provider reads its own CAPTURE_<NAME>_* variables.
        for (name, value) in env {
            self.providers.sources.set_var(name.clone(), value.clone());
        }
        let asked = asked.into_inner();
        self.unknown_variables = env
            .keys()
            .filter(|name| !asked.contains(name.as_str()) && !is_known_elsewhere(name))
            .cloned()
            .collect();
        self.unknown_variables.sort();
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let client_ca = self
            .grpc_tls
            .as_ref()
            .and_then(|t| t.client_ca_file.as_ref());
        if !self.client_certificates.is_empty() && client_ca.is_none() {
            return Err(bad(
                "CAPTURE_CLIENT_CERT_TENANTS",
                "client certificate identities need CAPTURE_GRPC_TLS_CLIENT_CA, the CA that signs them",
            ));
        }
        for certificate in &self.client_certificates {
            let valid = rustls_pki_types::DnsName::try_from(certificate.dns_name.as_str()).is_ok();
            if !valid || certificate.tenant.is_empty() {
                return Err(bad(
                    "CAPTURE_CLIENT_CERT_TENANTS",
                    format!(
                        "{:?}={:?}: each entry is a DNS name (as in the certificate's subjectAltName) and a tenant",
                        certificate.dns_name, certificate.tenant
                    ),
                ));
            }
        }
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&self.log_filter) {
            return Err(bad(
                "CAPTURE_LOG",
                format!("{err}: a tracing filter such as info,capture_service=debug"),
            ));
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            let authority = endpoint
                .strip_prefix("http://")
                .or_else(|| endpoint.strip_prefix("https://"));
            if authority.is_none_or(|a| a.is_empty() || a.starts_with('/')) {
                return Err(bad(
                    "CAPTURE_OTLP_ENDPOINT",
                    "must be an http:// or https:// URL of an OTLP/gRPC collector, such as http://otel-collector:4317",
                ));
            }
        }
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            return Err(bad(
                "CAPTURE_DATABASE_URL",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if self.providers.request_timeout.is_zero() {
            return Err(bad(
                "CAPTURE_PROVIDER_TIMEOUT_SECONDS",
                "must be at least 1",
            ));
        }
        if self.reconcile.lease < Duration::from_secs(1) {
            return Err(bad("CAPTURE_LEASE_SECONDS", "must be at least 1"));
        }
        self.validate_limits()?;
        Ok(())
    }
}

impl Config {
    fn validate_limits(&self) -> Result<(), ConfigError> {
        let mut limits = self.limits;
        for (name, value) in limits.fields_mut() {
            let may_be_zero = matches!(
                name,
                "CAPTURE_TCP_KEEPALIVE_SECONDS" | "CAPTURE_DATABASE_RESERVED_FOR_READS"
            );
            if *value == 0 && !may_be_zero {
                return Err(bad(name, "must be at least 1"));
            }
            if *value > u64::from(u32::MAX) {
                return Err(bad(name, "is too large"));
            }
        }
        let l = &self.limits;
        if l.database_reserved_for_reads >= l.database_max_connections {
            return Err(bad(
                "CAPTURE_DATABASE_RESERVED_FOR_READS",
                "must be below CAPTURE_DATABASE_MAX_CONNECTIONS, or writes get no connection",
            ));
        }
        Ok(())
    }
}

fn parse_addr(setting: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        bad(
            setting,
            format!("{value:?} is not an address such as 127.0.0.1:50051"),
        )
    })
}

fn parse_num<T: std::str::FromStr>(setting: &str, value: &str) -> Result<T, ConfigError> {
    value
        .parse()
        .map_err(|_| bad(setting, format!("{value:?} is not a whole number")))
}

fn parse_word<T: for<'de> Deserialize<'de>>(setting: &str, value: &str) -> Result<T, ConfigError> {
    T::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(value))
        .map_err(|e| bad(setting, e))
}

fn parse_digest(setting: &str, value: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = hex::decode(value.trim()).map_err(|_| {
        bad(
            setting,
            "the key digest must be 64 hex characters (SHA-256)",
        )
    })?;
    bytes.try_into().map_err(|_| {
        bad(
            setting,
            "the key digest must be 64 hex characters (SHA-256)",
        )
    })
}

/// `CAPTURE_*` variables read elsewhere: by the providers' accounts (`CAPTURE_<PROVIDER>_*`),
/// apart from the service's settings, or by other commands and tools.
fn is_known_elsewhere(name: &str) -> bool {
    const OTHERS: &[&str] = &[
        "CAPTURE_CONFIG",
        "CAPTURE_DEV_API_KEY_FILE",
        // `capture-service sandbox`
        "CAPTURE_SANDBOX_ADDR",
        "CAPTURE_SANDBOX_WEBHOOK_URL",
        "CAPTURE_SANDBOX_CREDENTIALS_SEED",
        // the build
        "CAPTURE_GIT_REVISION",
    ];
    // The tests' and the benchmark's own settings.
    const TOOLS: &[&str] = &["CAPTURE_TEST_", "CAPTURE_BENCH_"];
    OTHERS.contains(&name)
        || TOOLS.iter().any(|prefix| name.starts_with(prefix))
        || crate::domain::Provider::ALL.iter().any(|provider| {
            let prefix = format!("CAPTURE_{}_", provider.as_str().to_ascii_uppercase());
            name.starts_with(&prefix)
        })
}
