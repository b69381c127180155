//! Cybersource authorization reversals ⇄ domain: the reversal body, its answer, and what a 400
//! to a reversal means.

use super::{money_to_wire, redact, Refusal};
use crate::domain::{Money, ProviderOutcome};
use crate::providers::cybersource::wire;
use crate::providers::kit::released;
use crate::providers::{Rejection, ReleaseCall};

/// The service's failure code for a release Cybersource cannot be asked for: its reversal states
/// the whole authorized amount, which the release does not give.
pub const AUTHORIZED_AMOUNT_REQUIRED: &str = "AUTHORIZED_AMOUNT_REQUIRED";

/// The body of `call`'s authorization reversal of `authorized` (the whole authorized amount, as
/// Cybersource requires). `clientReferenceInformation.code` is the release's id, unique and the
/// same on every retry, as a capture's is.
pub fn reversal_request<'a>(
    call: &ReleaseCall<'a>,
    authorized: &Money,
) -> wire::ReversalRequest<'a> {
    wire::ReversalRequest {
        client_reference_information: wire::ClientReferenceInformation {
            code: call.idempotency_key,
        },
        reversal_information: wire::ReversalInformation {
            amount_details: money_to_wire(authorized),
        },
    }
}

/// Reads a reversal's 201: `REVERSED` is the release done, named by the reversal's id. `Err` for
/// an answer that is not that (not JSON, another status, no id): the outcome is unknown.
pub fn reversal_outcome(body: &[u8]) -> Result<ProviderOutcome, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("reversal answer is not JSON: {e}"))?;
    let reversal: wire::Reversal = serde_json::from_value(json.clone())
        .map_err(|e| format!("reversal answer does not match Cybersource's schema: {e}"))?;
    let status: wire::ReversalStatus = wire::parse_name(&reversal.status)
        .ok_or_else(|| format!("undocumented reversal status {:?}", reversal.status))?;
    let id = (reversal.id.as_deref())
        .filter(|id| !id.is_empty())
        .ok_or("reversal answer without the reversal's id")?
        .to_owned();
    match status {
        wire::ReversalStatus::Reversed => Ok(ProviderOutcome {
            redacted_body: Some(redact(json).into()),
            ..released(reversal.status, Some(id))
        }),
    }
}

/// How a 400 `reason` answers a reversal. `AUTH_ALREADY_REVERSED` is the release done: Cybersource
/// has no idempotency key, so a reversal sent again after its answer was lost is answered so, and
/// must settle the release, not fail it. The amount and currency are the caller's
/// `authorized_amount`: a wrong one is an invalid argument, not the authorization's state.
pub fn reversal_refusal_for_400(reason: wire::InvalidRequestReason) -> Refusal {
    use wire::InvalidRequestReason as R;
    match reason {
        R::AuthAlreadyReversed => Refusal::AlreadyReversed,
        // Captured (and settled) already: nothing left to reverse. `..._REVERSED_OR_SETTLED`
        // cannot say which; it is kept as the failure's code.
        R::TransactionAlreadySettled | R::TransactionAlreadyReversedOrSettled => {
            Refusal::Rejected(Rejection::FailedPrecondition)
        }
        R::MissingField
        | R::InvalidData
        | R::InvalidAmount
        | R::ExceedsAuthAmount
        | R::NotSupported => Refusal::Rejected(Rejection::InvalidArgument),
        R::MissingAuth => Refusal::Rejected(Rejection::NotFound),
        R::InvalidMerchantConfiguration => Refusal::Rejected(Rejection::Unauthorized),
        R::DuplicateRequest => Refusal::Duplicate,
        R::ProcessorUnavailable => Refusal::ProcessorUnavailable,
    }
}

/// A reversal refused as `AUTH_ALREADY_REVERSED` (see [`reversal_refusal_for_400`]): done, with the
/// reason kept and the error body for support.
pub fn already_reversed(body: &[u8]) -> ProviderOutcome {
    ProviderOutcome {
        provider_reason: Some("AUTH_ALREADY_REVERSED".to_owned()),
        redacted_body: serde_json::from_slice(body)
            .ok()
            .map(|json| redact(json).into()),
        ..released("REVERSED", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CaptureStatus;

    #[test]
    fn a_reversal_is_done_when_reversed_now_or_before() -> Result<(), String> {
        let body = br#"{"id":"6869460219566537303955","status":"REVERSED",
            "reversalAmountDetails":{"reversedAmount":"100.00","currency":"USD"},
            "paymentInformation":{"card":{"number":"411111XXXXXX1111"}}}"#;
        let outcome = reversal_outcome(body)?;
        assert_eq!(outcome.status, CaptureStatus::Completed);
        assert_eq!(outcome.provider_status, "REVERSED");
        assert_eq!(
            outcome.provider_capture_id.as_deref(),
            Some("6869460219566537303955")
        );
        assert_eq!(outcome.captured_amount, None);
        let stored = outcome.redacted_body.ok_or("no body")?;
        assert!(stored.get("paymentInformation").is_none());
        for not_done in [
            r#"{"id":"1","status":"PENDING"}"#,
            r#"{"status":"REVERSED"}"#,
            "<html>",
        ] {
            assert!(reversal_outcome(not_done.as_bytes()).is_err(), "{not_done}");
        }
        use wire::InvalidRequestReason as R;
        assert_eq!(
            reversal_refusal_for_400(R::AuthAlreadyReversed),
            Refusal::AlreadyReversed
        );
        assert_eq!(
            reversal_refusal_for_400(R::TransactionAlreadySettled),
            Refusal::Rejected(Rejection::FailedPrecondition)
        );
        assert_eq!(
            reversal_refusal_for_400(R::InvalidAmount),
            Refusal::Rejected(Rejection::InvalidArgument)
        );
        assert_eq!(
            reversal_refusal_for_400(R::ProcessorUnavailable),
            Refusal::ProcessorUnavailable
        );
        let done = already_reversed(br#"{"status":"INVALID_REQUEST"}"#);
        assert_eq!(
            (done.status, done.provider_reason.as_deref()),
            (CaptureStatus::Completed, Some("AUTH_ALREADY_REVERSED"))
        );
        Ok(())
    }
}
