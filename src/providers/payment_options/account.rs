//! PaymentOptions: its account as configuration describes it — a `[[providers.payment_options]]` table or the
//! `CAPTURE_PAYMENT_OPTIONS_*` variables — and the connector it builds.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{ConfigError, Secret};
use crate::domain::Provider;
use crate::providers::account::{Account, AccountConfig, EnvAccount};
use crate::providers::http::ProviderHttp;
use crate::providers::Connector;

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

impl Account for PaymentOptionsAccount {
    fn provider(&self) -> Provider {
        Provider::PaymentOptions
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn connector(&self, http: ProviderHttp) -> Arc<dyn Connector> {
        Arc::new(super::PaymentOptionsConnector::new(self, http))
    }
}

impl AccountConfig for PaymentOptionsAccount {
    const PROVIDER: Provider = Provider::PaymentOptions;

    fn from_env(vars: &EnvAccount<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(merchant_id) = vars.get("MERCHANT_ID") else {
            return Ok(None);
        };
        Ok(Some(PaymentOptionsAccount {
            name: vars.account_name(),
            base_url: vars.base_url(Self::SANDBOX_BASE_URL),
            path_prefix: vars
                .get("PATH_PREFIX")
                .unwrap_or(Self::DEFAULT_PATH_PREFIX)
                .to_owned(),
            basic_key: Secret::new(vars.required("BASIC_KEY", "MERCHANT_ID")?),
            api_key: Secret::new(vars.required("API_KEY", "MERCHANT_ID")?),
            merchant_id: merchant_id.to_owned(),
        }))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.merchant_id.is_empty() || self.merchant_id.chars().count() > 10 {
            return Err(ConfigError::new(
                "providers.payment_options.merchant_id",
                "must be 1 to 10 characters",
            ));
        }
        Ok(())
    }
}
