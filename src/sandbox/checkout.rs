//! Checkout.com emulator. PLACEHOLDER being replaced by its implementation in this session.

use std::sync::Arc;

use axum::Router;

use super::{Emulator, SandboxAuthorization, Scenario};
use crate::config::CheckoutAccount;
use crate::domain::{Money, Provider};

/// The emulated Checkout.com.
pub struct CheckoutEmulator {
    base_url: String,
}

impl CheckoutEmulator {
    pub fn new(base_url: String) -> Self {
        CheckoutEmulator { base_url }
    }

    /// An account whose credentials this emulator accepts.
    pub fn account(&self) -> CheckoutAccount {
        todo_account(&self.base_url)
    }
}

impl Emulator for CheckoutEmulator {
    fn provider(&self) -> Provider {
        Provider::Checkout
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
    }

    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization {
        SandboxAuthorization {
            id: "placeholder".into(),
            provider: Provider::Checkout.as_str().to_owned(),
            status: "CREATED".into(),
            amount: amount.into(),
            scenario,
        }
    }
}

fn todo_account(base_url: &str) -> CheckoutAccount {
    CheckoutAccount {
        name: "default".into(),
        base_url: base_url.into(),
        secret_key: crate::config::Secret::new("sk_sbox_placeholder"),
    }
}
