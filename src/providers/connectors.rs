//! The configured accounts' connectors, by (provider, account name).

use std::collections::HashMap;
use std::sync::Arc;

use super::account::Account;
use super::http::ProviderHttp;
use super::Connector;
use crate::domain::capture::AccountName;
use crate::domain::Provider;

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

    /// The providers whose final capture leaves the rest of the authorization held, so the
    /// service voids it after the capture (Stax).
    pub fn needing_a_void_after_a_final_capture(&self) -> Vec<Provider> {
        let mut providers: Vec<Provider> = self
            .accounts
            .iter()
            .filter(|(_, c)| !c.release_rules().final_capture_releases)
            .map(|((provider, _), _)| *provider)
            .collect();
        providers.sort();
        providers.dedup();
        providers
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
