//! Cybersource: its account as configuration describes it — a `[[providers.cybersource]]` table or the
//! `CAPTURE_CYBERSOURCE_*` variables — and the connector it builds.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::{ConfigError, Secret};
use crate::domain::Provider;
use crate::providers::account::{Account, AccountConfig, EnvAccount};
use crate::providers::http::ProviderHttp;
use crate::providers::Connector;

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
    /// How long after a capture was first sent Transaction Search must have had to show it
    /// before "not found" is believed and the capture may be sent again (searches lag behind
    /// captures; *unconfirmed* by how much).
    #[serde(default = "CybersourceAccount::default_search_grace_seconds")]
    pub search_grace_seconds: u64,
}

impl CybersourceAccount {
    pub const SANDBOX_BASE_URL: &'static str = "https://apitest.cybersource.com";

    /// Ten minutes: within Cybersource's 15-minute `DUPLICATE_REQUEST` window, so a capture
    /// that did arrive but was not yet found is still refused as a duplicate when re-sent.
    pub const DEFAULT_SEARCH_GRACE_SECONDS: u64 = 600;

    fn default_base_url() -> String {
        Self::SANDBOX_BASE_URL.to_owned()
    }

    fn default_search_grace_seconds() -> u64 {
        Self::DEFAULT_SEARCH_GRACE_SECONDS
    }
}

impl Account for CybersourceAccount {
    fn provider(&self) -> Provider {
        Provider::Cybersource
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn connector(&self, http: ProviderHttp) -> Arc<dyn Connector> {
        Arc::new(super::CybersourceConnector::new(self, http))
    }
}

impl AccountConfig for CybersourceAccount {
    const PROVIDER: Provider = Provider::Cybersource;

    fn from_env(vars: &EnvAccount<'_>) -> Result<Option<Self>, ConfigError> {
        let Some(merchant_id) = vars.get("MERCHANT_ID") else {
            return Ok(None);
        };
        Ok(Some(CybersourceAccount {
            name: vars.account_name(),
            base_url: vars.base_url(Self::SANDBOX_BASE_URL),
            merchant_id: merchant_id.to_owned(),
            key_id: vars.required("KEY_ID", "MERCHANT_ID")?,
            shared_secret: Secret::new(vars.required("SHARED_SECRET", "MERCHANT_ID")?),
            search_grace_seconds: match vars.get("SEARCH_GRACE_SECONDS") {
                None => Self::DEFAULT_SEARCH_GRACE_SECONDS,
                Some(value) => value.parse().map_err(|_| {
                    ConfigError::new(
                        &vars.variable("SEARCH_GRACE_SECONDS"),
                        "must be a whole number of seconds",
                    )
                })?,
            },
        }))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        use base64::Engine;
        if base64::engine::general_purpose::STANDARD
            .decode(self.shared_secret.expose())
            .is_err()
        {
            return Err(ConfigError::new(
                "providers.cybersource.shared_secret",
                "must be the base64 shared secret Cybersource issued",
            ));
        }
        Ok(())
    }
}
