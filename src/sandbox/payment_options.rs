//! PaymentOptions emulator. PLACEHOLDER being replaced by its implementation in this session.

use std::sync::Arc;

use axum::Router;

use super::{Emulator, SandboxAuthorization, Scenario};
use crate::config::PaymentOptionsAccount;
use crate::domain::{Money, Provider};

/// The emulated PaymentOptions.
pub struct PaymentOptionsEmulator {
    base_url: String,
}

impl PaymentOptionsEmulator {
    pub fn new(base_url: String) -> Self {
        PaymentOptionsEmulator { base_url }
    }

    /// An account whose credentials this emulator accepts.
    pub fn account(&self) -> PaymentOptionsAccount {
        todo_account(&self.base_url)
    }
}

impl Emulator for PaymentOptionsEmulator {
    fn provider(&self) -> Provider {
        Provider::PaymentOptions
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
    }

    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization {
        SandboxAuthorization {
            id: "placeholder".into(),
            provider: Provider::PaymentOptions.as_str().to_owned(),
            status: "CREATED".into(),
            amount: amount.into(),
            scenario,
        }
    }
}

fn todo_account(base_url: &str) -> PaymentOptionsAccount {
    PaymentOptionsAccount {
        name: "default".into(),
        base_url: base_url.into(),
        path_prefix: "/api/v1".into(),
        basic_key: crate::config::Secret::new("b"),
        api_key: crate::config::Secret::new("a"),
        merchant_id: "m".into(),
    }
}
