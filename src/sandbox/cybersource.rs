//! Cybersource emulator. PLACEHOLDER being replaced by its implementation in this session.

use std::sync::Arc;

use axum::Router;

use super::{Emulator, SandboxAuthorization, Scenario};
use crate::config::CybersourceAccount;
use crate::domain::{Money, Provider};

/// The emulated Cybersource.
pub struct CybersourceEmulator {
    base_url: String,
}

impl CybersourceEmulator {
    pub fn new(base_url: String) -> Self {
        CybersourceEmulator { base_url }
    }

    /// An account whose credentials this emulator accepts.
    pub fn account(&self) -> CybersourceAccount {
        todo_account(&self.base_url)
    }
}

impl Emulator for CybersourceEmulator {
    fn provider(&self) -> Provider {
        Provider::Cybersource
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
    }

    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization {
        SandboxAuthorization {
            id: "placeholder".into(),
            provider: Provider::Cybersource.as_str().to_owned(),
            status: "CREATED".into(),
            amount: amount.into(),
            scenario,
        }
    }
}

fn todo_account(base_url: &str) -> CybersourceAccount {
    CybersourceAccount {
        name: "default".into(),
        base_url: base_url.into(),
        merchant_id: "m".into(),
        key_id: "k".into(),
        shared_secret: crate::config::Secret::new("c2VjcmV0"),
    }
}
