//! Provider accounts: one struct per provider, each with its credentials and base URL.

use serde::Deserialize;

use super::Secret;

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
