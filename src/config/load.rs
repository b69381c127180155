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
    sandbox: Option<SandboxMode>,
    shutdown_grace_seconds: Option<u64>,
    reconcile_interval_seconds: Option<u64>,
    reconcile_min_age_seconds: Option<u64>,
    #[serde(default)]
    api_keys: Vec<ApiKeyFile>,
    #[serde(default)]
    providers: FileProviders,
    limits: Option<Limits>,
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
        if let Some(limits) = file.limits {
            self.limits = limits;
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
        for (name, field) in self.limits.fields_mut() {
            if let Some(v) = get(name) {
                *field = parse_num(name, v)?;
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
        self.validate_limits()?;
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
