//! The registry: [`PROVIDERS`], one line per provider, which configuration, the app and the
//! edge iterate over; and [`Connectors`], the configured accounts' connectors by (provider,
//! account name).

use std::collections::HashMap;
use std::sync::Arc;

use super::account::{self, Account, Accounts};
use super::http::ProviderHttp;
use super::{checkout, cybersource, payment_options, paypal, stax, Connector};
use crate::config::{ConfigError, ProviderSources};
use crate::domain::capture::AccountName;
use crate::domain::Provider;

/// One provider: its domain value (whose `as_str` names its `[[providers.<name>]]` table and,
/// upper-cased, its `CAPTURE_<NAME>_*` variables) and how its accounts are read. Each
/// account type builds its own connector.
pub struct Registration {
    pub provider: Provider,
    pub load_accounts: fn(&ProviderSources) -> Result<Accounts, ConfigError>,
}

/// Every provider the service captures at.
#[rustfmt::skip]
pub const PROVIDERS: [Registration; 5] = [
    Registration { provider: Provider::Paypal, load_accounts: account::load::<paypal::PaypalAccount> },
    Registration { provider: Provider::Checkout, load_accounts: account::load::<checkout::CheckoutAccount> },
    Registration { provider: Provider::Cybersource, load_accounts: account::load::<cybersource::CybersourceAccount> },
    Registration { provider: Provider::PaymentOptions, load_accounts: account::load::<payment_options::PaymentOptionsAccount> },
    Registration { provider: Provider::Stax, load_accounts: account::load::<stax::StaxAccount> },
];

/// Every configured account, each provider's default first. A table for a provider that does
/// not exist is an error naming it.
pub fn load_accounts(sources: &ProviderSources) -> Result<Accounts, ConfigError> {
    if let Some(unknown) = sources
        .table_names()
        .find(|name| !PROVIDERS.iter().any(|r| r.provider.as_str() == *name))
    {
        return Err(ConfigError::new(
            &format!("providers.{unknown}"),
            "no such provider (or setting)",
        ));
    }
    let mut accounts = Vec::new();
    for registration in &PROVIDERS {
        accounts.extend((registration.load_accounts)(sources)?);
    }
    Ok(accounts)
}

/// The caller named an account (or relied on a default) that is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnknownAccount {
    #[error("no account is configured for {0}")]
    NoAccount(Provider),
    #[error("{provider} has no account named {name:?}")]
    NoSuchAccount { provider: Provider, name: String },
}

/// Every configured connector, by provider and account name.
#[derive(Clone, Default)]
pub struct Connectors {
    accounts: HashMap<(Provider, String), Arc<dyn Connector>>,
    /// The first account registered for a provider is its default.
    defaults: HashMap<Provider, String>,
}

impl Connectors {
    /// The connectors of `accounts`; the first account of a provider is its default.
    pub fn from_accounts(accounts: &[Arc<dyn Account>], http: &ProviderHttp) -> Self {
        let mut connectors = Connectors::default();
        for account in accounts {
            connectors.register(account.name(), account.connector(http.clone()));
        }
        connectors
    }

    pub fn register(&mut self, account: &str, connector: Arc<dyn Connector>) {
        let provider = connector.provider();
        self.defaults
            .entry(provider)
            .or_insert_with(|| account.to_owned());
        self.accounts
            .insert((provider, account.to_owned()), connector);
    }

    /// The connector for an account, or the provider's default account when none is named.
    /// Returns the account's name with it.
    pub fn resolve(
        &self,
        provider: Provider,
        account: Option<&AccountName>,
    ) -> Result<(String, Arc<dyn Connector>), UnknownAccount> {
        let name = match account {
            Some(name) => name.as_str().to_owned(),
            None => self
                .defaults
                .get(&provider)
                .cloned()
                .ok_or(UnknownAccount::NoAccount(provider))?,
        };
        self.accounts
            .get(&(provider, name.clone()))
            .map(|c| (name.clone(), Arc::clone(c)))
            .ok_or(UnknownAccount::NoSuchAccount { provider, name })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{Config, SandboxMode};

    fn config(file: &str, vars: &[(&str, &str)]) -> Result<Config, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("capture.toml");
        std::fs::write(&path, file)?;
        let mut env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("CAPTURE_CONFIG".into(), path.to_string_lossy().into_owned());
        Ok(Config::load(&env)?)
    }

    fn accounts_of(accounts: &[Arc<dyn Account>], provider: Provider) -> Vec<(&str, &str)> {
        accounts
            .iter()
            .filter(|a| a.provider() == provider)
            .map(|a| (a.name(), a.base_url()))
            .collect()
    }

    #[test]
    fn the_file_holds_several_accounts_and_the_environment_wins(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let config = config(
            r#"
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
            &[
                ("CAPTURE_STAX_API_KEY", "env-stax-key"),
                ("CAPTURE_STAX_BASE_URL", "http://127.0.0.1:9"),
            ],
        )?;
        let accounts = load_accounts(&config.providers.sources)?;
        assert_eq!(
            accounts_of(&accounts, Provider::Paypal),
            [
                ("eu", "https://api-m.paypal.com"),
                ("us", paypal::PaypalAccount::SANDBOX_BASE_URL)
            ]
        );
        // The environment's account replaces the file's of the same name.
        assert_eq!(
            accounts_of(&accounts, Provider::Stax),
            [("default", "http://127.0.0.1:9")]
        );
        let printed = format!("{accounts:?}");
        assert!(!printed.contains("eu-secret") && !printed.contains("stax-key"));
        Ok(())
    }

    #[test]
    fn credentials_in_the_environment_turn_the_automatic_sandbox_off_and_never_print(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let config = config(
            "",
            &[
                ("CAPTURE_PAYPAL_CLIENT_ID", "client"),
                ("CAPTURE_PAYPAL_CLIENT_SECRET", "hunter2"),
            ],
        )?;
        let accounts = load_accounts(&config.providers.sources)?;
        assert_eq!(accounts_of(&accounts, Provider::Paypal)[0].0, "default");
        assert!(!SandboxMode::Auto.enabled(!accounts.is_empty()));
        assert!(!format!("{accounts:?} {config:?}").contains("hunter2"));
        Ok(())
    }

    #[test]
    fn bad_accounts_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let setting =
            |file: &str, vars: &[(&str, &str)]| -> Result<String, Box<dyn std::error::Error>> {
                let config = config(file, vars)?;
                Ok(load_accounts(&config.providers.sources)
                    .err()
                    .map(|e| e.setting)
                    .unwrap_or_default())
            };
        assert_eq!(
            setting("[[providers.acme]]\nname = \"x\"\n", &[])?,
            "providers.acme"
        );
        assert_eq!(
            setting("", &[("CAPTURE_PAYPAL_CLIENT_ID", "id")])?,
            "CAPTURE_PAYPAL_CLIENT_SECRET"
        );
        assert_eq!(
            setting(
                "",
                &[
                    ("CAPTURE_CYBERSOURCE_MERCHANT_ID", "m"),
                    ("CAPTURE_CYBERSOURCE_KEY_ID", "k"),
                    ("CAPTURE_CYBERSOURCE_SHARED_SECRET", "not base64!"),
                ]
            )?,
            "providers.cybersource.shared_secret"
        );
        assert_eq!(
            setting(
                "[[providers.stax]]\nname = \"a\"\napi_key = \"k\"\nbase_url = \"ftp://x\"\n",
                &[]
            )?,
            "providers.stax.base_url"
        );
        assert_eq!(
            setting("[[providers.stax]]\nname = \"a\"\napi_key = \"k\"\n[[providers.stax]]\nname = \"a\"\napi_key = \"k\"\n", &[])?,
            "providers.stax.name"
        );
        Ok(())
    }

    #[test]
    fn every_provider_is_registered_once() {
        for provider in Provider::ALL {
            assert_eq!(
                PROVIDERS.iter().filter(|r| r.provider == provider).count(),
                1,
                "{provider}"
            );
        }
    }
}
