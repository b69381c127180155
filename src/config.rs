//! Typed configuration, validated at start: defaults, then an optional TOML file
//! (`CAPTURE_CONFIG`), then `CAPTURE_*` environment variables. A bad setting stops the start
//! with a message naming it. Secrets are wrapped so they never print.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// A secret that never shows in `Debug` or logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

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

#[derive(Deserialize)]
struct ApiKeyFile {
    tenant: String,
    sha256: String,
}

/// One PayPal REST app's credentials.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PaypalAccount {
    /// The name callers select it by (`provider_account`).
    pub name: String,
    /// `https://api-m.sandbox.paypal.com` or `https://api-m.paypal.com`.
    #[serde(default = "PaypalAccount::default_base_url")]
    pub base_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// `PayPal-Auth-Assertion` for a partner acting for a merchant.
    #[serde(default)]
    pub auth_assertion: Option<Secret>,
}

impl PaypalAccount {
    pub const SANDBOX_BASE_URL: &'static str = "https://api-m.sandbox.paypal.com";

    fn default_base_url() -> String {
        Self::SANDBOX_BASE_URL.to_owned()
    }
}

/// Provider accounts and how provider calls are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidersConfig {
    /// Deadline of one HTTP attempt to a provider.
    pub request_timeout: Duration,
    /// Further attempts after a failure that is safe to retry (same idempotency key).
    pub max_retries: u32,
    /// The first account listed is the provider's default.
    pub paypal: Vec<PaypalAccount>,
}

impl ProvidersConfig {
    pub fn has_any_account(&self) -> bool {
        !self.paypal.is_empty()
    }
}

/// The whole configuration of one service process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub database_url: String,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub api_keys: Vec<ApiKey>,
    pub sandbox: SandboxMode,
    pub providers: ProvidersConfig,
    /// How long shutdown waits for captures in flight.
    pub shutdown_grace: Duration,
    /// Sandbox mode without API keys: the development key to accept (random when unset).
    pub dev_api_key: Option<Secret>,
    /// Sandbox mode without API keys: where the development key is written for local tools.
    pub dev_api_key_file: Option<String>,
}

impl Config {
    /// Whether the built-in emulator serves providers without accounts.
    pub fn sandbox_enabled(&self) -> bool {
        match self.sandbox {
            SandboxMode::On => true,
            SandboxMode::Off => false,
            SandboxMode::Auto => !self.providers.has_any_account(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://capture.db?mode=rwc".to_owned(),
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            api_keys: Vec::new(),
            sandbox: SandboxMode::Auto,
            providers: ProvidersConfig {
                request_timeout: Duration::from_secs(20),
                max_retries: 2,
                paypal: Vec::new(),
            },
            shutdown_grace: Duration::from_secs(30),
            dev_api_key: None,
            dev_api_key_file: Some(".capture-dev-key".to_owned()),
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

fn bad(setting: &str, problem: impl fmt::Display) -> ConfigError {
    ConfigError {
        setting: setting.to_owned(),
        problem: problem.to_string(),
    }
}

/// The optional file: every field optional, overriding the defaults.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    grpc_addr: Option<String>,
    http_addr: Option<String>,
    database_url: Option<String>,
    log_format: Option<LogFormat>,
    log_filter: Option<String>,
    sandbox: Option<SandboxMode>,
    shutdown_grace_seconds: Option<u64>,
    #[serde(default)]
    api_keys: Vec<ApiKeyFile>,
    #[serde(default)]
    providers: FileProviders,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileProviders {
    request_timeout_seconds: Option<u64>,
    max_retries: Option<u32>,
    #[serde(default)]
    paypal: Vec<PaypalAccount>,
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
                toml::from_str(&text).map_err(|e| bad("CAPTURE_CONFIG", e.message()))?;
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
            self.database_url = v;
        }
        if let Some(v) = file.log_format {
            self.log_format = v;
        }
        if let Some(v) = file.log_filter {
            self.log_filter = v;
        }
        if let Some(v) = file.sandbox {
            self.sandbox = v;
        }
        if let Some(v) = file.shutdown_grace_seconds {
            self.shutdown_grace = Duration::from_secs(v);
        }
        for key in file.api_keys {
            self.api_keys.push(ApiKey {
                sha256: parse_digest("api_keys.sha256", &key.sha256)?,
                tenant: key.tenant,
            });
        }
        if let Some(v) = file.providers.request_timeout_seconds {
            self.providers.request_timeout = Duration::from_secs(v);
        }
        if let Some(v) = file.providers.max_retries {
            self.providers.max_retries = v;
        }
        self.providers.paypal = file.providers.paypal;
        Ok(())
    }

    fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        let get = |name: &str| env.get(name).map(String::as_str).filter(|v| !v.is_empty());
        if let Some(v) = get("CAPTURE_GRPC_ADDR") {
            self.grpc_addr = parse_addr("CAPTURE_GRPC_ADDR", v)?;
        }
        if let Some(v) = get("CAPTURE_HTTP_ADDR") {
            self.http_addr = parse_addr("CAPTURE_HTTP_ADDR", v)?;
        }
        if let Some(v) = get("CAPTURE_DATABASE_URL") {
            self.database_url = v.to_owned();
        }
        if let Some(v) = get("CAPTURE_LOG_FORMAT") {
            self.log_format = parse_word("CAPTURE_LOG_FORMAT", v)?;
        }
        if let Some(v) = get("CAPTURE_LOG") {
            self.log_filter = v.to_owned();
        }
        if let Some(v) = get("CAPTURE_SANDBOX") {
            self.sandbox = parse_word("CAPTURE_SANDBOX", v)?;
        }
        if let Some(v) = get("CAPTURE_DEV_API_KEY") {
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
        if let Some(client_id) = get("CAPTURE_PAYPAL_CLIENT_ID") {
            let client_secret = get("CAPTURE_PAYPAL_CLIENT_SECRET").ok_or_else(|| {
                bad(
                    "CAPTURE_PAYPAL_CLIENT_SECRET",
                    "required with CAPTURE_PAYPAL_CLIENT_ID",
                )
            })?;
            let account = PaypalAccount {
                name: get("CAPTURE_PAYPAL_ACCOUNT")
                    .unwrap_or("default")
                    .to_owned(),
                base_url: get("CAPTURE_PAYPAL_BASE_URL")
                    .unwrap_or(PaypalAccount::SANDBOX_BASE_URL)
                    .to_owned(),
                client_id: client_id.to_owned(),
                client_secret: Secret::new(client_secret),
                auth_assertion: get("CAPTURE_PAYPAL_AUTH_ASSERTION").map(Secret::new),
            };
            // The environment's account becomes the default, ahead of the file's.
            self.providers.paypal.retain(|a| a.name != account.name);
            self.providers.paypal.insert(0, account);
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
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
        let mut names = std::collections::HashSet::new();
        for account in &self.providers.paypal {
            if !names.insert(account.name.as_str()) {
                return Err(bad(
                    "providers.paypal.name",
                    format!("{:?} twice", account.name),
                ));
            }
            if !(account.base_url.starts_with("https://")
                || account.base_url.starts_with("http://"))
            {
                return Err(bad("providers.paypal.base_url", "must be an http(s) URL"));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_serve_locally_on_sqlite_with_the_sandbox() -> Result<(), ConfigError> {
        let config = Config::load(&env(&[]))?;
        assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert!(config.database_url.starts_with("sqlite:"));
        assert!(config.sandbox_enabled());
        Ok(())
    }

    #[test]
    fn a_bad_setting_is_named() {
        let err = Config::load(&env(&[("CAPTURE_GRPC_ADDR", "nowhere")])).err();
        assert_eq!(err.map(|e| e.setting), Some("CAPTURE_GRPC_ADDR".to_owned()));
        let err = Config::load(&env(&[("CAPTURE_API_KEYS", "team:abc")])).err();
        assert_eq!(err.map(|e| e.setting), Some("CAPTURE_API_KEYS".to_owned()));
        let err = Config::load(&env(&[("CAPTURE_SANDBOX", "maybe")])).err();
        assert_eq!(err.map(|e| e.setting), Some("CAPTURE_SANDBOX".to_owned()));
    }

    #[test]
    fn paypal_credentials_turn_the_automatic_sandbox_off_and_never_print() -> Result<(), ConfigError>
    {
        let config = Config::load(&env(&[
            ("CAPTURE_PAYPAL_CLIENT_ID", "client"),
            ("CAPTURE_PAYPAL_CLIENT_SECRET", "hunter2"),
        ]))?;
        assert!(!config.sandbox_enabled());
        assert_eq!(config.providers.paypal[0].name, "default");
        assert!(!format!("{config:?}").contains("hunter2"));
        Ok(())
    }
}
