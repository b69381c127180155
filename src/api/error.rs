//! The one place errors become `tonic::Status`: an exhaustive match, with
//! `google.rpc.BadRequest`, `ErrorInfo` and `RetryInfo` details. Internal errors reach the client
//! as an opaque message; their cause chain goes to the log.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::error;

use crate::capture::{CaptureError, Overloaded};
use crate::domain::Operation;
use crate::domain::{pan, FieldViolation};
use crate::providers::connectors::UnknownAccount;
use crate::providers::{ProviderError, Rejection};
use crate::store::{LedgerRefusal, StoreError};

/// `ErrorInfo.domain` of every error this service raises.
pub const ERROR_DOMAIN: &str = "capture.v1.CaptureService";

/// How long a caller should wait before retrying a capture whose outcome is unknown.
const RETRY_UNKNOWN_AFTER: Duration = Duration::from_secs(2);
/// How long a caller should wait before retrying after the database was unavailable.
const RETRY_STORE_AFTER: Duration = Duration::from_secs(1);

/// The most field violations one error lists; the rest are counted.
pub const MAX_VIOLATIONS: usize = 20;
/// Longest field path and description a violation carries, in characters.
const MAX_FIELD_CHARS: usize = 64;
const MAX_DESCRIPTION_CHARS: usize = 240;

/// `INVALID_ARGUMENT` naming the bad fields: at most [`MAX_VIOLATIONS`] of them, each cut short,
/// and "and N more", so that the error stays far below the 16 KiB metadata limit of default
/// gRPC clients whatever the request held.
pub fn invalid_argument(violations: &[FieldViolation]) -> Status {
    let shown = &violations[..violations.len().min(MAX_VIOLATIONS)];
    let mut field_violations: Vec<tonic_types::FieldViolation> = shown
        .iter()
        .map(|v| {
            // A field path or description may quote what the caller sent (a metadata key):
            // no card number leaves in a refusal.
            tonic_types::FieldViolation::new(
                truncate(&pan::mask_card_numbers(&v.field), MAX_FIELD_CHARS),
                truncate(
                    &pan::mask_card_numbers(&v.description),
                    MAX_DESCRIPTION_CHARS,
                ),
            )
        })
        .collect();
    let mut message = format!(
        "invalid request: {}",
        field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let more = violations.len() - shown.len();
    if more > 0 {
        message.push_str(&format!(" and {more} more"));
        field_violations.push(tonic_types::FieldViolation::new(
            "",
            format!("and {more} more violations not listed"),
        ));
    }
    Status::with_error_details(
        Code::InvalidArgument,
        message,
        ErrorDetails::with_bad_request(field_violations),
    )
}

/// At most `max` characters of `text`, with `…` where it was cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn with_info(
    code: Code,
    message: String,
    reason: &str,
    metadata: HashMap<String, String>,
) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

fn internal(err: &dyn std::error::Error) -> Status {
    error!(error = %err, source = ?err.source(), "internal error");
    Status::internal("internal error; see the service logs")
}

impl From<StoreError> for Status {
    fn from(err: StoreError) -> Self {
        store_error(err, None)
    }
}

/// `UNAVAILABLE` + `RetryInfo` when the database could not be used (with the capture that is
/// already recorded, if any); `INTERNAL` for anything else the store refused.
fn store_error(err: StoreError, recorded: Option<&str>) -> Status {
    if !err.is_unavailable() {
        return match recorded {
            None => internal(&err),
            Some(capture_id) => {
                error!(error = %err, source = ?std::error::Error::source(&err), capture_id,
                    "internal error after the capture was recorded");
                with_info(
                    Code::Internal,
                    format!("internal error; capture {capture_id} is recorded and its outcome will be settled later: retry with the same request_id, or read it with GetCapture"),
                    "OUTCOME_NOT_RECORDED",
                    HashMap::from([("capture_id".to_owned(), capture_id.to_owned())]),
                )
            }
        };
    }
    match recorded {
        // A capture left PROCESSING is worth its own line; the rest are counted.
        Some(capture_id) => tracing::warn!(error = %err, capture_id, "database unavailable"),
        None => crate::telemetry::store_unavailable().record(&err),
    }
    let (message, metadata) = match recorded {
        None => (
            "the database is unavailable: retry with the same request_id".to_owned(),
            HashMap::new(),
        ),
        Some(capture_id) => (
            format!("the database became unavailable while capture {capture_id} was being recorded; its outcome will be recorded later: retry with the same request_id"),
            HashMap::from([("capture_id".to_owned(), capture_id.to_owned())]),
        ),
    };
    let mut details = ErrorDetails::with_error_info("STORE_UNAVAILABLE", ERROR_DOMAIN, metadata);
    details.set_retry_info(Some(RETRY_STORE_AFTER));
    Status::with_error_details(Code::Unavailable, message, details)
}

impl From<CaptureError> for Status {
    fn from(err: CaptureError) -> Self {
        match err {
            CaptureError::Overloaded(overloaded) => Status::from(overloaded),
            CaptureError::UnknownAccount(UnknownAccount::NoAccount(provider)) => with_info(
                Code::FailedPrecondition,
                format!("no {provider} account is configured"),
                "PROVIDER_NOT_CONFIGURED",
                HashMap::from([("provider".to_owned(), provider.to_string())]),
            ),
            CaptureError::UnknownAccount(err @ UnknownAccount::NoSuchAccount { .. }) => {
                invalid_argument(&[FieldViolation::new("provider_account", err.to_string())])
            }
            CaptureError::Unsupported(violations) => invalid_argument(&violations),
            CaptureError::KeyReused { capture_id } => with_info(
                Code::AlreadyExists,
                format!(
                    "request_id was already used for a different request (capture {capture_id}); use a new request_id"
                ),
                "IDEMPOTENCY_KEY_REUSED",
                HashMap::from([("capture_id".to_owned(), capture_id)]),
            ),
            CaptureError::Refused(refusal) => ledger_refusal(refusal),
            CaptureError::Provider { error, capture } => provider_error(error, &capture.id),
            CaptureError::Store(err) => store_error(err, None),
            CaptureError::Unrecorded { capture_id, source } => {
                store_error(source, Some(&capture_id))
            }
            err @ (CaptureError::Entropy(_) | CaptureError::Task(_)) => internal(&err),
        }
    }
}

/// How long a caller should wait before retrying a call that was shed.
const RETRY_OVERLOADED_AFTER: Duration = Duration::from_secs(1);

impl From<Overloaded> for Status {
    /// `RESOURCE_EXHAUSTED` + `RetryInfo`: shed before anything was written.
    fn from(overloaded: Overloaded) -> Self {
        crate::telemetry::shed().record(&overloaded);
        let mut details = ErrorDetails::with_error_info(
            "OVERLOADED",
            ERROR_DOMAIN,
            HashMap::from([
                ("kind".to_owned(), overloaded.kind.to_owned()),
                ("limit".to_owned(), overloaded.limit.to_string()),
            ]),
        );
        details.set_retry_info(Some(RETRY_OVERLOADED_AFTER));
        Status::with_error_details(
            Code::ResourceExhausted,
            format!("{overloaded}; nothing was done: retry shortly"),
            details,
        )
    }
}

fn ledger_refusal(refusal: LedgerRefusal) -> Status {
    let (message, reason, metadata) = match refusal {
        LedgerRefusal::Closed { closed_by }
            if closed_by.starts_with(Operation::Release.id_prefix()) =>
        {
            (
                format!("the authorization was released by {closed_by}"),
                "AUTHORIZATION_RELEASED",
                HashMap::from([("release_id".to_owned(), closed_by)]),
            )
        }
        LedgerRefusal::Closed { closed_by } => (
            format!("the authorization was closed by capture {closed_by} (final or full amount)"),
            "AUTHORIZATION_CLOSED",
            HashMap::from([("closed_by".to_owned(), closed_by)]),
        ),
        LedgerRefusal::Released { release_id } => (
            format!("the authorization was released by {release_id}"),
            "AUTHORIZATION_RELEASED",
            HashMap::from([("release_id".to_owned(), release_id)]),
        ),
        LedgerRefusal::ReleaseUnsupported { reason } => (
            format!("the provider cannot release this authorization's remainder: {reason}"),
            "RELEASE_NOT_SUPPORTED",
            HashMap::new(),
        ),
        LedgerRefusal::CurrencyMismatch { expected } => (
            format!("earlier captures of this authorization are in {expected}"),
            "CURRENCY_MISMATCH",
            HashMap::from([("expected_currency".to_owned(), expected)]),
        ),
        LedgerRefusal::AuthorizedAmountMismatch { known } => (
            format!("authorized_amount differs from the {known} given earlier"),
            "AUTHORIZED_AMOUNT_MISMATCH",
            HashMap::from([("authorized_amount".to_owned(), known.to_string())]),
        ),
        LedgerRefusal::ExceedsAuthorization { remaining } => (
            format!("amount exceeds what remains of the authorization ({remaining})"),
            "AMOUNT_EXCEEDS_AUTHORIZATION",
            HashMap::from([("remaining".to_owned(), remaining.to_string())]),
        ),
        LedgerRefusal::LedgerFull => (
            "the authorization's captures already hold as much as the ledger can count".to_owned(),
            "LEDGER_LIMIT_REACHED",
            HashMap::new(),
        ),
    };
    with_info(Code::FailedPrecondition, message, reason, metadata)
}

fn provider_error(error: ProviderError, capture_id: &str) -> Status {
    match error {
        ProviderError::Rejected {
            provider,
            rejection,
            failure,
            retry_after,
        } => {
            let (code, reason) = match rejection {
                Rejection::NotFound => (Code::NotFound, "PROVIDER_RESOURCE_NOT_FOUND"),
                Rejection::FailedPrecondition => {
                    (Code::FailedPrecondition, "PROVIDER_PRECONDITION_FAILED")
                }
                Rejection::InvalidArgument => (Code::InvalidArgument, "PROVIDER_INVALID_REQUEST"),
                Rejection::RateLimited => (Code::ResourceExhausted, "PROVIDER_RATE_LIMITED"),
                Rejection::Unauthorized => (Code::Internal, "PROVIDER_AUTHENTICATION_FAILED"),
            };
            let mut metadata = HashMap::from([
                ("provider".to_owned(), provider.to_string()),
                ("provider_code".to_owned(), failure.code.clone()),
                ("provider_message".to_owned(), failure.message.clone()),
                ("http_status".to_owned(), failure.http_status.to_string()),
                ("capture_id".to_owned(), capture_id.to_owned()),
            ]);
            if let Some(debug_id) = &failure.debug_id {
                metadata.insert("debug_id".to_owned(), debug_id.clone());
            }
            let mut details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata);
            if rejection == Rejection::RateLimited {
                details.set_retry_info(Some(retry_after.unwrap_or(Duration::from_secs(1))));
            }
            let message = format!(
                "{provider} refused the capture: {} ({}); capture {capture_id} is FAILED",
                failure.code, failure.message
            );
            Status::with_error_details(code, message, details)
        }
        ProviderError::OutcomeUnknown {
            provider,
            detail,
            retry_after,
        } => {
            let mut details = ErrorDetails::with_error_info(
                "PROVIDER_OUTCOME_UNKNOWN",
                ERROR_DOMAIN,
                HashMap::from([
                    ("provider".to_owned(), provider.to_string()),
                    ("capture_id".to_owned(), capture_id.to_owned()),
                ]),
            );
            // Not sooner than a throttling provider asked.
            let wait = retry_after.map_or(RETRY_UNKNOWN_AFTER, |w| w.max(RETRY_UNKNOWN_AFTER));
            details.set_retry_info(Some(wait));
            Status::with_error_details(
                Code::Unavailable,
                format!(
                    "{provider} gave no definite answer ({detail}); capture {capture_id} stays PROCESSING: retry with the same request_id"
                ),
                details,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Provider;

    /// `RetryInfo` of an unknown outcome: 2 s, or a throttling provider's longer wait.
    #[test]
    fn an_unknown_outcome_asks_for_no_retry_sooner_than_the_provider() {
        let wait = |retry_after: Option<Duration>| {
            let error = ProviderError::OutcomeUnknown {
                provider: Provider::Paypal,
                detail: "no answer".into(),
                retry_after,
            };
            let status = provider_error(error, "cap_1");
            assert_eq!(status.code(), Code::Unavailable);
            status.get_details_retry_info().and_then(|r| r.retry_delay)
        };
        assert_eq!(wait(None), Some(RETRY_UNKNOWN_AFTER));
        assert_eq!(
            wait(Some(Duration::from_secs(1))),
            Some(RETRY_UNKNOWN_AFTER)
        );
        assert_eq!(
            wait(Some(Duration::from_secs(5))),
            Some(Duration::from_secs(5))
        );
    }
}
