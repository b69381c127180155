//! PayPal: its account as configuration describes it — a `[[providers.paypal]]` table or the
//! `CAPTURE_PAYPAL_*` variables — and the connector it builds.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{ConfigError, Secret};
use crate::domain::Provider;
use crate::providers::account::{Account, AccountConfig, EnvAccount};
use crate::providers::http::ProviderHttp;
use crate::providers::Connector;

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
    /// The id PayPal gave the webhook that delivers to this service: its deliveries are
    /// verified with it. Without it every delivery is refused (401).
    #[serde(default)]
    pub webhook_id: Option<String>,
}

impl PaypalAccount {
    pub const SANDBOX_BASE_URL: &'static str = "https://api-m.sandbox.paypal.com";

    fn default_base_url() -> String {
        Self::SANDBOX_BASE_URL.to_owned()
    }
}

impl Account for PaypalAccount {
    fn provider(&self) -> Provider {
        Provider::Paypal
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn connector(&self, http: ProviderHttp) -> Arc<dyn Connector> {
        Arc::new(super::PaypalConnector::new(self, http))
    }
}

impl AccountConfig for PaypalAccount {
    const PROVIDER: Provider = Provider::Paypal;

    fn from_env(vars: &EnvAccount<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(client_id) = vars.get("CLIENT_ID") else {
            return Ok(None);
        };
        Ok(Some(PaypalAccount {
            name: vars.account_name(),
            base_url: vars.base_url(Self::SANDBOX_BASE_URL),
            client_id: client_id.to_owned(),
            client_secret: Secret::new(vars.required("CLIENT_SECRET", "CLIENT_ID")?),
            auth_assertion: vars.get("AUTH_ASSERTION").map(Secret::new),
            webhook_id: vars.get("WEBHOOK_ID").map(str::to_owned),
        }))
    }
}
