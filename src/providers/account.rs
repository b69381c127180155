//! Provider accounts: what every provider's account type offers the service, and how each is
//! read from configuration. Configuration itself knows no provider: it hands each its
//! `[[providers.<name>]]` tables and the `CAPTURE_*` variables ([`ProviderSources`]), and the
//! provider's account type reads its own.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::http::ProviderHttp;
use super::Connector;
use crate::config::{ConfigError, ProviderSources};
use crate::domain::Provider;

/// Configured accounts, each provider's default first.
pub type Accounts = Vec<Arc<dyn Account>>;

/// A configured account of one provider, ready to build its connector.
pub trait Account: fmt::Debug + Send + Sync + 'static {
    fn provider(&self) -> Provider;
    /// The name callers select it by (`provider_account`).
    fn name(&self) -> &str;
    fn base_url(&self) -> &str;
    fn connector(&self, http: ProviderHttp) -> Arc<dyn Connector>;
}

/// An account type as configuration describes it: a `[[providers.<name>]]` table (serde), or
/// the `CAPTURE_<NAME>_*` variables.
pub trait AccountConfig: Account + DeserializeOwned + Clone + Sized {
    const PROVIDER: Provider;

    /// The account the variables describe, if they describe one (the provider's defining
    /// variable is set).
    fn from_env(vars: &EnvAccount<'_>) -> Result<Option<Self>, ConfigError>;

    /// Rules the types cannot hold (an encoding, a length), naming the setting.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The `CAPTURE_<PREFIX>_*` variables of one provider.
pub struct EnvAccount<'a> {
    sources: &'a ProviderSources,
    prefix: String,
}

impl EnvAccount<'_> {
    /// `CAPTURE_<PREFIX>_<NAME>`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.sources.var(&self.variable(name))
    }

    /// `CAPTURE_<PREFIX>_<NAME>`, which must be set because `with` is.
    pub fn required(&self, name: &str, with: &str) -> Result<String, ConfigError> {
        self.get(name).map(str::to_owned).ok_or_else(|| {
            ConfigError::new(
                &self.variable(name),
                format!("required with {}", self.variable(with)),
            )
        })
    }

    /// The account's name: `CAPTURE_<PREFIX>_ACCOUNT`, else `default`.
    pub fn account_name(&self) -> String {
        self.get("ACCOUNT").unwrap_or("default").to_owned()
    }

    /// `CAPTURE_<PREFIX>_BASE_URL`, else `default`.
    pub fn base_url(&self, default: &str) -> String {
        self.get("BASE_URL").unwrap_or(default).to_owned()
    }

    /// The full name of one of these variables, for messages.
    pub fn variable(&self, name: &str) -> String {
        format!("CAPTURE_{}_{name}", self.prefix)
    }
}

/// Every account of `A`'s provider: its file tables, then the variables' account, which
/// replaces a file account of the same name and becomes the default (first).
pub fn load<A: AccountConfig>(sources: &ProviderSources) -> Result<Accounts, ConfigError> {
    let table = format!("providers.{}", A::PROVIDER.as_str());
    let mut accounts: Vec<A> = sources
        .tables(A::PROVIDER.as_str())
        .iter()
        .map(|t| {
            toml::Value::Table(t.clone())
                .try_into::<A>()
                .map_err(|e| ConfigError::new(&table, e.message()))
        })
        .collect::<Result<_, _>>()?;
    let env = EnvAccount {
        sources,
        prefix: A::PROVIDER.as_str().to_uppercase(),
    };
    if let Some(account) = A::from_env(&env)? {
        accounts.retain(|a| a.name() != account.name());
        accounts.insert(0, account);
    }
    let mut names = std::collections::HashSet::new();
    for account in &accounts {
        if !names.insert(account.name().to_owned()) {
            return Err(ConfigError::new(
                &format!("{table}.name"),
                format!("{:?} twice", account.name()),
            ));
        }
        if !(account.base_url().starts_with("https://")
            || account.base_url().starts_with("http://"))
        {
            return Err(ConfigError::new(
                &format!("{table}.base_url"),
                "must be an http(s) URL",
            ));
        }
        account.validate()?;
    }
    Ok(accounts
        .into_iter()
        .map(|a| Arc::new(a) as Arc<dyn Account>)
        .collect())
}

/// One account of `A`'s provider from the variables alone (the sandbox's, or a test's).
pub fn from_variables<A: AccountConfig>(sources: &ProviderSources) -> Result<A, ConfigError> {
    let env = EnvAccount {
        sources,
        prefix: A::PROVIDER.as_str().to_uppercase(),
    };
    A::from_env(&env)?.ok_or_else(|| {
        ConfigError::new(
            &env.variable("*"),
            format!("no {} account in the variables", A::PROVIDER),
        )
    })
}
