//! Fixtures shared by the connector tests (`tests/*_connector.rs`): a transport without backoff,
//! a minimal capture command, a stored capture, and helpers that call a connector and take its
//! result apart. What belongs to one provider (its account, its answer bodies, its request
//! checks) stays in that provider's test file.

use std::time::Duration;

use capture_service::domain::capture::{AuthorizationId, CaptureParts, Metadata, RequestId};
use capture_service::domain::outcome::ProviderFailure;
use capture_service::domain::{CaptureCommand, CaptureRecord, Money, Provider, ProviderOutcome};
use capture_service::providers::http::ProviderHttp;
use capture_service::providers::{CaptureCall, Connector, ProviderError, Rejection, ReleaseCall};

use super::mock_provider::{MockProvider, Reply};

/// A started mock provider that answers `default_reply` to whatever its script does not cover.
pub async fn start_mock(default_reply: Reply) -> Result<MockProvider, std::io::Error> {
    let mock = MockProvider::start().await?;
    mock.default_reply(default_reply);
    Ok(mock)
}

/// A transport that waits `timeout` for each answer and retries twice, at once (no backoff).
pub fn fast_http(timeout: Duration) -> ProviderHttp {
    match ProviderHttp::new(timeout, 2) {
        Ok(http) => http.with_backoff(Duration::ZERO, Duration::ZERO, Duration::from_secs(1)),
        Err(e) => panic!("http client: {e}"),
    }
}

/// A capture of `authorization_id` at `provider` with only the amount set (`None`: the full
/// authorized amount) and request id `req-1`.
pub fn parts(
    provider: Provider,
    authorization_id: &str,
    amount: Option<Money>,
) -> Result<CaptureParts, String> {
    Ok(CaptureParts {
        operation: capture_service::domain::Operation::Capture,
        provider,
        account: None,
        authorization_id: AuthorizationId::parse(authorization_id)?,
        amount,
        authorized_amount: None,
        final_capture: false,
        invoice_id: None,
        note_to_payer: None,
        soft_descriptor: None,
        reference: None,
        metadata: Metadata::default(),
        platform_fees: vec![],
        disbursement_mode: None,
        request_id: RequestId::parse("req-1")?,
    })
}

/// The validated command of `parts`.
pub fn command(parts: CaptureParts) -> Result<CaptureCommand, String> {
    CaptureCommand::new(parts).map_err(|e| format!("{e:?}"))
}

/// A positive domain amount (not the `proto::Money` of `common::money`).
pub fn domain_money(code: &str, value: &str) -> Result<Money, String> {
    Money::parse_positive(code, value).map_err(|e| e.to_string())
}

/// Sends `command` through `connector` with idempotency key `key`, as the first capture of its
/// authorization.
pub async fn capture(
    connector: &dyn Connector,
    command: &CaptureCommand,
    key: &str,
) -> Result<ProviderOutcome, ProviderError> {
    capture_numbered(connector, command, key, 1).await
}

/// Sends `command` as capture number `sequence` of its authorization.
pub async fn capture_numbered(
    connector: &dyn Connector,
    command: &CaptureCommand,
    key: &str,
    sequence: u32,
) -> Result<ProviderOutcome, ProviderError> {
    connector
        .capture(CaptureCall {
            command,
            idempotency_key: key,
            capture_sequence: sequence,
        })
        .await
}

/// Sends a release of `authorization_id` through `connector` with idempotency key `key`, the
/// caller having said the authorized amount or not.
pub async fn release(
    connector: &dyn Connector,
    authorization_id: &str,
    key: &str,
    authorized_amount: Option<Money>,
) -> Result<ProviderOutcome, ProviderError> {
    let authorization_id = AuthorizationId::parse(authorization_id)
        .map_err(|e| ProviderError::unknown(connector.provider(), e))?;
    connector
        .release(ReleaseCall {
            authorization_id: &authorization_id,
            idempotency_key: key,
            authorized_amount,
        })
        .await
}

/// A stored release of `authorization_id` at `provider`, still `PROCESSING`, as
/// `fetch_release_outcome` gets it: its id is `id` (also the idempotency key), and it has the
/// provider's id for it when one is given, and the authorized amount when the caller gave it.
pub fn release_record(
    provider: Provider,
    authorization_id: &str,
    id: &str,
    provider_id: Option<&str>,
    authorized_amount: Option<Money>,
) -> Result<CaptureRecord, String> {
    let command = CaptureCommand::release(
        provider,
        None,
        AuthorizationId::parse(authorization_id)?,
        authorized_amount,
        RequestId::parse("req-release-1")?,
    );
    Ok(processing_record(command, id, provider_id))
}

/// A stored capture of `command` still `PROCESSING`, as `fetch_outcome` gets it: its id is
/// `id` (also the idempotency key), and it has the provider's capture id when one is given.
pub fn processing_record(
    command: CaptureCommand,
    id: &str,
    provider_capture_id: Option<&str>,
) -> CaptureRecord {
    let mut record = CaptureRecord::processing(
        id.to_owned(),
        "tenant-a".to_owned(),
        "default".to_owned(),
        command,
        1,
        0,
    );
    record.provider_capture_id = provider_capture_id.map(str::to_owned);
    record
}

/// The refusal inside a result (rejection, failure, retry-after), `None` for anything else.
pub fn refusal<T>(
    result: Result<T, ProviderError>,
) -> Option<(Rejection, ProviderFailure, Option<Duration>)> {
    match result {
        Err(ProviderError::Rejected {
            rejection,
            failure,
            retry_after,
            ..
        }) => Some((rejection, failure, retry_after)),
        _ => None,
    }
}

/// Whether the call ended without a definite answer.
pub fn is_unknown<T>(result: &Result<T, ProviderError>) -> bool {
    matches!(result, Err(ProviderError::OutcomeUnknown { .. }))
}

/// A base URL at which nothing listens: a loopback port bound, then released.
pub async fn unreachable_base_url() -> Result<String, std::io::Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    drop(listener);
    Ok(format!("http://{addr}"))
}

/// Sends `command` with key `key` through the connector `connector_at` builds for an
/// [`unreachable_base_url`]; the outer error is only a failure to find such a URL.
pub async fn capture_at_unreachable<C: Connector>(
    connector_at: impl FnOnce(&str) -> C,
    command: &CaptureCommand,
    key: &str,
) -> Result<Result<ProviderOutcome, ProviderError>, std::io::Error> {
    let connector = connector_at(&unreachable_base_url().await?);
    Ok(capture(&connector, command, key).await)
}
