//! Checkout.com: its account as configuration describes it — a `[[providers.checkout]]` table or the
//! `CAPTURE_CHECKOUT_*` variables — and the connector it builds.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{ConfigError, Secret};
use crate::domain::Provider;
use crate::providers::account::{Account, AccountConfig, EnvAccount};
use crate::providers::http::ProviderHttp;
use crate::providers::Connector;

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
    /// The webhook's secret key: `Cko-Signature` is the HMAC-SHA256 of each delivery with it.
    /// Without it every delivery is refused (401).
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
}

impl CheckoutAccount {
    pub const SANDBOX_BASE_URL: &'static str = "https://api.sandbox.checkout.com";

    fn default_base_url() -> String {
        Self::SANDBOX_BASE_URL.to_owned()
    }
}

impl Account for CheckoutAccount {
    fn provider(&self) -> Provider {
        Provider::Checkout
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn connector(&self, http: ProviderHttp) -> Arc<dyn Connector> {
        Arc::new(super::CheckoutConnector::new(self, http))
    }
}

impl AccountConfig for CheckoutAccount {
    const PROVIDER: Provider = Provider::Checkout;

    fn from_env(vars: &EnvAccount<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(secret_key) = vars.get("SECRET_KEY") else {
            return Ok(None);
        };
        Ok(Some(CheckoutAccount {
            name: vars.account_name(),
            base_url: vars.base_url(Self::SANDBOX_BASE_URL),
            secret_key: Secret::new(secret_key),
            webhook_secret: vars.get("WEBHOOK_SECRET").map(Secret::new),
        }))
    }
}
