//! Stax: its account as configuration describes it — a `[[providers.stax]]` table or the
//! `CAPTURE_STAX_*` variables — and the connector it builds.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{ConfigError, Secret};
use crate::domain::Provider;
use crate::providers::account::{Account, AccountConfig, EnvAccount};
use crate::providers::http::ProviderHttp;
use crate::providers::Connector;

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

impl Account for StaxAccount {
    fn provider(&self) -> Provider {
        Provider::Stax
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn connector(&self, http: ProviderHttp) -> Arc<dyn Connector> {
        Arc::new(super::StaxConnector::new(self, http))
    }
}

impl AccountConfig for StaxAccount {
    const PROVIDER: Provider = Provider::Stax;

    fn from_env(vars: &EnvAccount<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(api_key) = vars.get("API_KEY") else {
            return Ok(None);
        };
        Ok(Some(StaxAccount {
            name: vars.account_name(),
            base_url: vars.base_url(Self::BASE_URL),
            api_key: Secret::new(api_key),
        }))
    }
}
