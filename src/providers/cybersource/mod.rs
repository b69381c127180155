//! Cybersource connector. PLACEHOLDER being replaced by its implementation in this session.

use async_trait::async_trait;

use super::http::ProviderHttp;
use super::{CaptureCall, Connector, ProviderError};
use crate::config::CybersourceAccount;
use crate::domain::{CaptureCommand, CaptureRecord, FieldViolation, Provider, ProviderOutcome};

/// Captures at one configured Cybersource account.
pub struct CybersourceConnector {
    base_url: String,
    _http: ProviderHttp,
}

impl CybersourceConnector {
    pub fn new(account: &CybersourceAccount, http: ProviderHttp) -> Self {
        CybersourceConnector {
            base_url: account.base_url.trim_end_matches('/').to_owned(),
            _http: http,
        }
    }
}

#[async_trait]
impl Connector for CybersourceConnector {
    fn provider(&self) -> Provider {
        Provider::Cybersource
    }

    fn check(&self, _command: &CaptureCommand) -> Vec<FieldViolation> {
        Vec::new()
    }

    async fn capture(&self, _call: CaptureCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        Err(ProviderError::OutcomeUnknown {
            provider: Provider::Cybersource,
            detail: format!("not implemented ({})", self.base_url),
        })
    }

    async fn fetch_outcome(
        &self,
        _capture: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        Err(ProviderError::OutcomeUnknown {
            provider: Provider::Cybersource,
            detail: "not implemented".into(),
        })
    }
}
