//! Stax connector. PLACEHOLDER being replaced by its implementation in this session.

use async_trait::async_trait;

use super::http::ProviderHttp;
use super::{CaptureCall, Connector, ProviderError};
use crate::config::StaxAccount;
use crate::domain::{CaptureCommand, CaptureRecord, FieldViolation, Provider, ProviderOutcome};

/// Captures at one configured Stax account.
pub struct StaxConnector {
    base_url: String,
    _http: ProviderHttp,
}

impl StaxConnector {
    pub fn new(account: &StaxAccount, http: ProviderHttp) -> Self {
        StaxConnector {
            base_url: account.base_url.trim_end_matches('/').to_owned(),
            _http: http,
        }
    }
}

#[async_trait]
impl Connector for StaxConnector {
    fn provider(&self) -> Provider {
        Provider::Stax
    }

    fn check(&self, _command: &CaptureCommand) -> Vec<FieldViolation> {
        Vec::new()
    }

    async fn capture(&self, _call: CaptureCall<'_>) -> Result<ProviderOutcome, ProviderError> {
        Err(ProviderError::OutcomeUnknown {
            provider: Provider::Stax,
            detail: format!("not implemented ({})", self.base_url),
        })
    }

    async fn fetch_outcome(
        &self,
        _capture: &CaptureRecord,
    ) -> Result<ProviderOutcome, ProviderError> {
        Err(ProviderError::OutcomeUnknown {
            provider: Provider::Stax,
            detail: "not implemented".into(),
        })
    }
}
