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

/// A database URL whose password never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its user information replaced, for messages.
    pub fn redacted(&self) -> String {
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://…@{}", &self.0[..scheme], &self.0[at + 1..])
            }
            _ => self.0.clone(),
        }
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl(url)
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
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

/// One Checkout.com account (secret key).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CheckoutAccount {
    pub name: String,
    /// `https://api.sandbox.checkout.com`, `https://api.checkout.com`, or an account-specific
    /// `https://{prefix}.api.checkout.com`.
    #[serde(default = "CheckoutAccount::default_base_url")]
    pub base_url: String,
    /// `sk_...`, sent as `Authorization: Bearer`.
    pub secret_key: Secret,
}

impl CheckoutAccount {
    pub const SANDBOX_BASE_URL: &'static str = "https://api.sandbox.checkout.com";

    fn default_base_url() -> String {
        Self::SANDBOX_BASE_URL.to_owned()
    }
}

/// One Cybersource merchant with an HTTP Signature shared secret key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CybersourceAccount {
    pub name: String,
    /// `https://apitest.cybersource.com`, `https://api.cybersource.com` or
    /// `https://api.in.cybersource.com`.
    #[serde(default = "CybersourceAccount::default_base_url")]
    pub base_url: String,
    /// `v-c-merchant-id`.
    pub merchant_id: String,
    /// The shared secret key's id (`keyid` of the signature).
    pub key_id: String,
    /// The shared secret, base64 as Cybersource issues it.
    pub shared_secret: Secret,
}

impl CybersourceAccount {
    pub const SANDBOX_BASE_URL: &'static str = "https://apitest.cybersource.com";

    fn default_base_url() -> String {
        Self::SANDBOX_BASE_URL.to_owned()
    }
}

/// One PaymentOptions merchant.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PaymentOptionsAccount {
    pub name: String,
    /// `https://api-dev.paymentoptions.com` (sandbox) or `https://api.paymentoptions.com`.
    #[serde(default = "PaymentOptionsAccount::default_base_url")]
    pub base_url: String,
    /// Path before `/server-to-server-interface/capture`. The published example doubles
    /// `/api/v1`, so which one the gateway routes is unconfirmed: configurable.
    #[serde(default = "PaymentOptionsAccount::default_path_prefix")]
    pub path_prefix: String,
    /// The encoded key sent as `Authorization: Basic <basic_key>`.
    pub basic_key: Secret,
    /// Sent as `x-api-key`.
    pub api_key: Secret,
    /// `merchant_id` of the capture body (at most 10 characters).
    pub merchant_id: String,
}

impl PaymentOptionsAccount {
    pub const SANDBOX_BASE_URL: &'static str = "https://api-dev.paymentoptions.com";
    pub const DEFAULT_PATH_PREFIX: &'static str = "/api/v1";

    fn default_base_url() -> String {
        Self::SANDBOX_BASE_URL.to_owned()
    }

    fn default_path_prefix() -> String {
        Self::DEFAULT_PATH_PREFIX.to_owned()
    }
}

/// One Stax (Fattmerchant) merchant API key.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaxAccount {
    pub name: String,
    /// `https://apiprod.fattlabs.com` (sandbox keys use the same host).
    #[serde(default = "StaxAccount::default_base_url")]
    pub base_url: String,
    /// Sent as `Authorization: Bearer`.
    pub api_key: Secret,
}

impl StaxAccount {
    pub const BASE_URL: &'static str = "https://apiprod.fattlabs.com";

    fn default_base_url() -> String {
        Self::BASE_URL.to_owned()
    }
}

/// What every provider account has: a name callers select it by, and a base URL.
pub trait ProviderAccount {
    fn name(&self) -> &str;
    fn base_url(&self) -> &str;
}

macro_rules! provider_account {
    ($($account:ty),*) => {$(
        impl ProviderAccount for $account {
            fn name(&self) -> &str {
                &self.name
            }
            fn base_url(&self) -> &str {
                &self.base_url
            }
        }
    )*};
}
provider_account!(
    PaypalAccount,
    CheckoutAccount,
    CybersourceAccount,
    PaymentOptionsAccount,
    StaxAccount
);

/// Provider accounts and how provider calls are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidersConfig {
    /// Deadline of one HTTP attempt to a provider.
    pub request_timeout: Duration,
    /// Further attempts after a failure that is safe to retry (same idempotency key).
    pub max_retries: u32,
    /// For each provider, the first account listed is its default.
    pub paypal: Vec<PaypalAccount>,
    pub checkout: Vec<CheckoutAccount>,
    pub cybersource: Vec<CybersourceAccount>,
    pub payment_options: Vec<PaymentOptionsAccount>,
    pub stax: Vec<StaxAccount>,
}

impl ProvidersConfig {
    pub fn has_any_account(&self) -> bool {
        !(self.paypal.is_empty()
            && self.checkout.is_empty()
            && self.cybersource.is_empty()
            && self.payment_options.is_empty()
            && self.stax.is_empty())
    }
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
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            interval: Duration::from_secs(30),
            min_age: Duration::from_secs(60),
            max_attempts: 24,
            batch: 100,
        }
    }
}

/// The whole configuration of one service process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub database_url: DatabaseUrl,
    /// Apply pending migrations at `serve` (off where a deploy job runs `migrate` first).
    pub migrate_on_start: bool,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub api_keys: Vec<ApiKey>,
    pub sandbox: SandboxMode,
    pub providers: ProvidersConfig,
    /// How long shutdown waits for captures in flight.
    pub shutdown_grace: Duration,
    pub reconcile: ReconcileConfig,
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
            database_url: DatabaseUrl("sqlite://capture.db?mode=rwc".to_owned()),
            migrate_on_start: true,
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            api_keys: Vec::new(),
            sandbox: SandboxMode::Auto,
            providers: ProvidersConfig {
                request_timeout: Duration::from_secs(20),
                max_retries: 2,
                paypal: Vec::new(),
                checkout: Vec::new(),
                cybersource: Vec::new(),
                payment_options: Vec::new(),
                stax: Vec::new(),
            },
            shutdown_grace: Duration::from_secs(30),
            reconcile: ReconcileConfig::default(),
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
    migrate_on_start: Option<bool>,
    log_format: Option<LogFormat>,
    log_filter: Option<String>,
    sandbox: Option<SandboxMode>,
    shutdown_grace_seconds: Option<u64>,
    reconcile_interval_seconds: Option<u64>,
    reconcile_min_age_seconds: Option<u64>,
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
    #[serde(default)]
    checkout: Vec<CheckoutAccount>,
    #[serde(default)]
    cybersource: Vec<CybersourceAccount>,
    #[serde(default)]
    payment_options: Vec<PaymentOptionsAccount>,
    #[serde(default)]
    stax: Vec<StaxAccount>,
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
            self.database_url = DatabaseUrl(v);
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
        self.providers.checkout = file.providers.checkout;
        self.providers.cybersource = file.providers.cybersource;
        self.providers.payment_options = file.providers.payment_options;
        self.providers.stax = file.providers.stax;
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
            self.database_url = DatabaseUrl(v.to_owned());
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
        if let Some(v) = get("CAPTURE_SANDBOX") {
            self.sandbox = parse_word("CAPTURE_SANDBOX", v)?;
        }
        if let Some(v) = get("CAPTURE_RECONCILE_INTERVAL_SECONDS") {
            self.reconcile.interval =
                Duration::from_secs(parse_num("CAPTURE_RECONCILE_INTERVAL_SECONDS", v)?);
        }
        if let Some(v) = get("CAPTURE_RECONCILE_MIN_AGE_SECONDS") {
            self.reconcile.min_age =
                Duration::from_secs(parse_num("CAPTURE_RECONCILE_MIN_AGE_SECONDS", v)?);
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
        let account_name = |provider: &str| {
            get(&format!("CAPTURE_{provider}_ACCOUNT"))
                .unwrap_or("default")
                .to_owned()
        };
        let base_url = |provider: &str, default: &str| {
            get(&format!("CAPTURE_{provider}_BASE_URL"))
                .unwrap_or(default)
                .to_owned()
        };
        let required = |name: &str, with: &str| {
            get(name)
                .map(str::to_owned)
                .ok_or_else(|| bad(name, format!("required with {with}")))
        };
        if let Some(client_id) = get("CAPTURE_PAYPAL_CLIENT_ID") {
            let account = PaypalAccount {
                name: account_name("PAYPAL"),
                base_url: base_url("PAYPAL", PaypalAccount::SANDBOX_BASE_URL),
                client_id: client_id.to_owned(),
                client_secret: Secret::new(required(
                    "CAPTURE_PAYPAL_CLIENT_SECRET",
                    "CAPTURE_PAYPAL_CLIENT_ID",
                )?),
                auth_assertion: get("CAPTURE_PAYPAL_AUTH_ASSERTION").map(Secret::new),
            };
            put_first(&mut self.providers.paypal, account);
        }
        if let Some(secret_key) = get("CAPTURE_CHECKOUT_SECRET_KEY") {
            let account = CheckoutAccount {
                name: account_name("CHECKOUT"),
                base_url: base_url("CHECKOUT", CheckoutAccount::SANDBOX_BASE_URL),
                secret_key: Secret::new(secret_key),
            };
            put_first(&mut self.providers.checkout, account);
        }
        if let Some(merchant_id) = get("CAPTURE_CYBERSOURCE_MERCHANT_ID") {
            let with = "CAPTURE_CYBERSOURCE_MERCHANT_ID";
            let account = CybersourceAccount {
                name: account_name("CYBERSOURCE"),
                base_url: base_url("CYBERSOURCE", CybersourceAccount::SANDBOX_BASE_URL),
                merchant_id: merchant_id.to_owned(),
                key_id: required("CAPTURE_CYBERSOURCE_KEY_ID", with)?,
                shared_secret: Secret::new(required("CAPTURE_CYBERSOURCE_SHARED_SECRET", with)?),
            };
            put_first(&mut self.providers.cybersource, account);
        }
        if let Some(merchant_id) = get("CAPTURE_PAYMENT_OPTIONS_MERCHANT_ID") {
            let with = "CAPTURE_PAYMENT_OPTIONS_MERCHANT_ID";
            let account = PaymentOptionsAccount {
                name: account_name("PAYMENT_OPTIONS"),
                base_url: base_url("PAYMENT_OPTIONS", PaymentOptionsAccount::SANDBOX_BASE_URL),
                path_prefix: get("CAPTURE_PAYMENT_OPTIONS_PATH_PREFIX")
                    .unwrap_or(PaymentOptionsAccount::DEFAULT_PATH_PREFIX)
                    .to_owned(),
                basic_key: Secret::new(required("CAPTURE_PAYMENT_OPTIONS_BASIC_KEY", with)?),
                api_key: Secret::new(required("CAPTURE_PAYMENT_OPTIONS_API_KEY", with)?),
                merchant_id: merchant_id.to_owned(),
            };
            put_first(&mut self.providers.payment_options, account);
        }
        if let Some(api_key) = get("CAPTURE_STAX_API_KEY") {
            let account = StaxAccount {
                name: account_name("STAX"),
                base_url: base_url("STAX", StaxAccount::BASE_URL),
                api_key: Secret::new(api_key),
            };
            put_first(&mut self.providers.stax, account);
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
        let p = &self.providers;
        check_accounts("providers.paypal", &p.paypal)?;
        check_accounts("providers.checkout", &p.checkout)?;
        check_accounts("providers.cybersource", &p.cybersource)?;
        check_accounts("providers.payment_options", &p.payment_options)?;
        check_accounts("providers.stax", &p.stax)?;
        for account in &p.cybersource {
            use base64::Engine;
            if base64::engine::general_purpose::STANDARD
                .decode(account.shared_secret.expose())
                .is_err()
            {
                return Err(bad(
                    "providers.cybersource.shared_secret",
                    "must be the base64 shared secret Cybersource issued",
                ));
            }
        }
        for account in &p.payment_options {
            if account.merchant_id.is_empty() || account.merchant_id.chars().count() > 10 {
                return Err(bad(
                    "providers.payment_options.merchant_id",
                    "must be 1 to 10 characters",
                ));
            }
        }
        Ok(())
    }
}

/// The environment's account becomes the provider's default, ahead of the file's.
fn put_first<A: ProviderAccount>(accounts: &mut Vec<A>, account: A) {
    accounts.retain(|a| a.name() != account.name());
    accounts.insert(0, account);
}

/// Names are unique per provider and base URLs are http(s).
fn check_accounts<A: ProviderAccount>(setting: &str, accounts: &[A]) -> Result<(), ConfigError> {
    let mut names = std::collections::HashSet::new();
    for account in accounts {
        if !names.insert(account.name()) {
            return Err(bad(
                &format!("{setting}.name"),
                format!("{:?} twice", account.name()),
            ));
        }
        if !(account.base_url().starts_with("https://")
            || account.base_url().starts_with("http://"))
        {
            return Err(bad(
                &format!("{setting}.base_url"),
                "must be an http(s) URL",
            ));
        }
    }
    Ok(())
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
    fn the_database_password_never_prints() -> Result<(), ConfigError> {
        let config = Config::load(&env(&[(
            "CAPTURE_DATABASE_URL",
            "postgres://capture:hunter2@db:5432/capture",
        )]))?;
        assert_eq!(
            &*config.database_url,
            "postgres://capture:hunter2@db:5432/capture"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(format!("{config:?}").contains("postgres://…@db:5432/capture"));
        Ok(())
    }

    #[test]
    fn the_file_holds_several_accounts_and_the_environment_wins(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("capture.toml");
        std::fs::write(
            &path,
            r#"
grpc_addr = "0.0.0.0:6000"
sandbox = "off"
reconcile_interval_seconds = 5

[[api_keys]]
tenant = "shop"
sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"

[providers]
max_retries = 4

[[providers.paypal]]
name = "eu"
base_url = "https://api-m.paypal.com"
client_id = "eu-client"
client_secret = "eu-secret"

[[providers.paypal]]
name = "us"
client_id = "us-client"
client_secret = "us-secret"

[[providers.stax]]
name = "default"
api_key = "stax-key"
"#,
        )?;
        let path = path.to_string_lossy().into_owned();
        let config = Config::load(&env(&[
            ("CAPTURE_CONFIG", path.as_str()),
            ("CAPTURE_GRPC_ADDR", "127.0.0.1:7000"),
        ]))?;
        assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:7000");
        assert_eq!(config.sandbox, SandboxMode::Off);
        assert_eq!(config.reconcile.interval, Duration::from_secs(5));
        assert_eq!(config.providers.max_retries, 4);
        assert_eq!(config.api_keys.len(), 1);
        let names: Vec<&str> = config
            .providers
            .paypal
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, ["eu", "us"]);
        assert_eq!(
            config.providers.paypal[1].base_url,
            PaypalAccount::SANDBOX_BASE_URL
        );
        assert_eq!(config.providers.stax[0].api_key.expose(), "stax-key");

        std::fs::write(&path, "unknown_setting = 1\n")?;
        let err = Config::load(&env(&[("CAPTURE_CONFIG", path.as_str())])).err();
        assert_eq!(err.map(|e| e.setting), Some("CAPTURE_CONFIG".to_owned()));
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
