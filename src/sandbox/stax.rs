//! Stax emulator. PLACEHOLDER being replaced by its implementation in this session.

use std::sync::Arc;

use axum::Router;

use super::{Emulator, SandboxAuthorization, Scenario};
use crate::config::StaxAccount;
use crate::domain::{Money, Provider};

/// The emulated Stax.
pub struct StaxEmulator {
    base_url: String,
}

impl StaxEmulator {
    pub fn new(base_url: String) -> Self {
        StaxEmulator { base_url }
    }

    /// An account whose credentials this emulator accepts.
    pub fn account(&self) -> StaxAccount {
        todo_account(&self.base_url)
    }
}

impl Emulator for StaxEmulator {
    fn provider(&self) -> Provider {
        Provider::Stax
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
    }

    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization {
        SandboxAuthorization {
            id: "placeholder".into(),
            provider: Provider::Stax.as_str().to_owned(),
            status: "CREATED".into(),
            amount: amount.into(),
            scenario,
        }
    }
}

fn todo_account(base_url: &str) -> StaxAccount {
    StaxAccount {
        name: "default".into(),
        base_url: base_url.into(),
        api_key: crate::config::Secret::new("k"),
    }
}
