//! Cybersource wire types ⇄ domain. Statuses and error reasons map through exhaustive
//! `match`es, so a value added to the documentation is a compile error here, and one Cybersource
//! sends without documenting is an unknown outcome (status) or kept verbatim (error reason).
//!
//! Decisions, where Cybersource leaves a choice:
//! - `clientReferenceInformation.code` is always our capture id (30 characters), never the
//!   caller's `reference`: it is unique per capture and identical on every retry, so Cybersource's
//!   `DUPLICATE_REQUEST` means exactly "this capture reached you before". The caller's reference
//!   (two captures of one order may share it) goes to `merchantDefinedInformation` under the key
//!   `reference`, beside the metadata.
//! - Cybersource has no full-amount default: without `amount`, `authorized_amount` is sent as
//!   the amount with `isFinal: "true"` (the domain's "no amount = the whole authorization, closing
//!   it"); without either, `check()` refuses the command.
//! - `captureOptions` is always sent. `captureSequenceNumber` is the capture's place among its
//!   authorization's captures, counted by the service's ledger. The total is not known until
//!   the final capture, so a capture that leaves the authorization open says `sequence + 1`,
//!   and the final one says `sequence` with `isFinal: "true"`. Processors refuse a second capture
//!   without these fields (ActiveMerchant's users see it as reason 242), so a first capture
//!   that is not final says "1 of 2" rather than "1 of 1". Both are at most 99: a capture that
//!   would need more is refused before it is sent.
//! - `soft_descriptor` becomes `merchantInformation.merchantDescriptor.name`; `invoice_id` and
//!   `note_to_payer` have no Cybersource field and stay ours (stored, not sent), as PayPal's
//!   connector does with `reference`; platform fees and a disbursement mode cannot be expressed
//!   and are refused by `check()`.

use super::wire;
use crate::domain::{CaptureCommand, CaptureStatus, Money, ProviderOutcome};
use crate::providers::{CaptureCall, Rejection};

mod release;

pub use release::{
    already_reversed, reversal_outcome, reversal_refusal_for_400, reversal_request,
    AUTHORIZED_AMOUNT_REQUIRED,
};

/// The `merchantDefinedInformation` key carrying the caller's reference.
pub const REFERENCE_KEY: &str = "reference";

/// What the capture sends as its amount: `amount`, else the whole `authorized_amount`.
pub fn amount_to_send(command: &CaptureCommand) -> Option<Money> {
    let parts = command.parts();
    parts.amount.or(parts.authorized_amount)
}

/// The most captures Cybersource numbers on one authorization.
pub const MAX_CAPTURES: u32 = 99;

/// Why a capture cannot be sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsendable {
    /// No amount to send (refused by `check()` before it gets here).
    NoAmount,
    /// Its number (and the one after it, when it is not final) would pass [`MAX_CAPTURES`].
    TooManyCaptures,
}

/// `captureOptions` for the capture numbered `sequence` (1 for the first).
pub fn capture_options(
    sequence: u32,
    closes_authorization: bool,
) -> Result<wire::CaptureOptions, Unsendable> {
    let total = if closes_authorization {
        sequence
    } else {
        sequence + 1
    };
    if sequence == 0 || total > MAX_CAPTURES {
        return Err(Unsendable::TooManyCaptures);
    }
    Ok(wire::CaptureOptions {
        capture_sequence_number: sequence,
        total_capture_count: total,
        is_final: closes_authorization.then_some("true"),
    })
}

/// The body of `call`'s capture request.
pub fn request<'a>(call: &CaptureCall<'a>) -> Result<wire::CaptureRequest<'a>, Unsendable> {
    let command = call.command;
    let parts = command.parts();
    let amount = amount_to_send(command).ok_or(Unsendable::NoAmount)?;
    let mut merchant_defined_information: Vec<wire::MerchantDefinedField<'a>> = Vec::new();
    if let Some(reference) = &parts.reference {
        merchant_defined_information.push(wire::MerchantDefinedField {
            key: REFERENCE_KEY,
            value: reference.as_str(),
        });
    }
    merchant_defined_information.extend(parts.metadata.entries().iter().map(|(key, value)| {
        wire::MerchantDefinedField {
            key: key.as_str(),
            value: value.as_str(),
        }
    }));
    Ok(wire::CaptureRequest {
        client_reference_information: wire::ClientReferenceInformation {
            code: call.idempotency_key,
        },
        processing_information: wire::ProcessingInformation {
            capture_options: capture_options(
                call.capture_sequence,
                command.closes_authorization(),
            )?,
        },
        order_information: wire::OrderInformation {
            amount_details: money_to_wire(&amount),
        },
        merchant_information: parts.soft_descriptor.as_ref().map(|descriptor| {
            wire::MerchantInformation {
                merchant_descriptor: wire::MerchantDescriptor {
                    name: descriptor.as_str(),
                },
            }
        }),
        merchant_defined_information,
    })
}

/// Domain money as Cybersource writes it: major units with the currency's decimals.
pub fn money_to_wire(money: &Money) -> wire::AmountDetails {
    wire::AmountDetails {
        total_amount: money.to_major_string(),
        currency: money.currency().code().to_owned(),
    }
}

/// Reads a capture answer (201 or 200). `Err` carries why it cannot be trusted (not JSON,
/// undocumented status, unreadable money): the caller reports the outcome as unknown.
pub fn outcome(body: &[u8]) -> Result<ProviderOutcome, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("capture answer is not JSON: {e}"))?;
    let capture: wire::Capture = serde_json::from_value(json.clone())
        .map_err(|e| format!("capture answer does not match Cybersource's schema: {e}"))?;
    let wire_status: wire::Status = wire::parse_name(&capture.status)
        .ok_or_else(|| format!("undocumented capture status {:?}", capture.status))?;
    // Every capture Cybersource answers with names itself; a body that does not is no capture.
    let id = (capture.id.as_deref())
        .filter(|id| !id.is_empty())
        .ok_or("capture answer without the capture's id")?
        .to_owned();
    let captured_amount = capture
        .order_information
        .and_then(|o| o.amount_details)
        .map(|a| money_from_wire(&a))
        .transpose()?;
    Ok(ProviderOutcome {
        status: status_from_wire(wire_status),
        reason: None,
        provider_capture_id: Some(id),
        provider_status: capture.status,
        provider_reason: None,
        captured_amount,
        // Cybersource reports no fees or net amount on a capture.
        breakdown: None,
        network_reference: None,
        seller_protection: None,
        processor_response: None,
        redacted_body: Some(redact(json).into()),
    })
}

/// Cybersource's capture status as ours.
///
/// Both documented statuses are `COMPLETED`: a 201 is Cybersource's definite acceptance of the
/// capture. `PENDING` means "queued for tonight's settlement batch" and `TRANSMITTED` "sent in
/// it"; neither waits for anyone's approval, and Cybersource never reports a later change
/// through this API or a webhook we receive. Our `PENDING` means "the provider has not decided
/// yet", which would leave every Cybersource capture pending forever. The verbatim status stays
/// in `provider_status`.
pub fn status_from_wire(status: wire::Status) -> CaptureStatus {
    match status {
        wire::Status::Pending => CaptureStatus::Completed,
        wire::Status::Transmitted => CaptureStatus::Completed,
    }
}

/// What a 400 (`INVALID_REQUEST`) means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing was done, for this reason.
    Rejected(Rejection),
    /// `DUPLICATE_REQUEST`: this very request (same `clientReferenceInformation.code` = our
    /// capture or release id) reached Cybersource before, whose answer we did not get.
    Duplicate,
    /// `PROCESSOR_UNAVAILABLE`: the processor could not be reached; sending again later may
    /// succeed, so it is no refusal.
    ProcessorUnavailable,
    /// `AUTH_ALREADY_REVERSED` to a reversal: the release is done.
    AlreadyReversed,
}

/// Which request an answer is to: a capture and a reversal read their success and their 400s
/// differently; the rest of an answer reads the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Capture,
    Reversal,
}

impl Sent {
    /// The request's name, in logs and errors.
    pub fn what(self) -> &'static str {
        match self {
            Sent::Capture => "capture",
            Sent::Reversal => "reversal",
        }
    }

    /// Reads the documented success answer.
    pub fn outcome(self, body: &[u8]) -> Result<ProviderOutcome, String> {
        match self {
            Sent::Capture => outcome(body),
            Sent::Reversal => reversal_outcome(body),
        }
    }

    /// What a 400 `reason` means for this request.
    pub fn refusal_for_400(self, reason: wire::InvalidRequestReason, fields: &[&str]) -> Refusal {
        match self {
            Sent::Capture => refusal_for_400(reason, fields),
            Sent::Reversal => reversal_refusal_for_400(reason),
        }
    }
}

/// How a 400 `reason` refuses the capture. `fields` are the `details[].field` named.
pub fn refusal_for_400(reason: wire::InvalidRequestReason, fields: &[&str]) -> Refusal {
    use wire::InvalidRequestReason as R;
    match reason {
        R::ExceedsAuthAmount
        | R::AuthAlreadyReversed
        | R::TransactionAlreadySettled
        | R::TransactionAlreadyReversedOrSettled => {
            Refusal::Rejected(Rejection::FailedPrecondition)
        }
        // A currency other than the authorization's is the authorization's state refusing the
        // capture, like an amount above it, not a malformed request.
        R::InvalidData if fields.contains(&CURRENCY_FIELD) => {
            Refusal::Rejected(Rejection::FailedPrecondition)
        }
        R::MissingField | R::InvalidData | R::InvalidAmount | R::NotSupported => {
            Refusal::Rejected(Rejection::InvalidArgument)
        }
        R::MissingAuth => Refusal::Rejected(Rejection::NotFound),
        R::InvalidMerchantConfiguration => Refusal::Rejected(Rejection::Unauthorized),
        R::DuplicateRequest => Refusal::Duplicate,
        R::ProcessorUnavailable => Refusal::ProcessorUnavailable,
    }
}

/// The field Cybersource names when the currency is not the authorization's.
pub const CURRENCY_FIELD: &str = "orderInformation.amountDetails.currency";

/// How a 502 (`SERVER_ERROR`) `reason` ends the call: `None` when the outcome is unknown.
pub fn rejection_for_502(reason: wire::ServerErrorReason) -> Option<Rejection> {
    match reason {
        wire::ServerErrorReason::SystemError
        | wire::ServerErrorReason::ServerTimeout
        | wire::ServerErrorReason::ServiceTimeout => None,
        // Our account's setup at Cybersource is wrong: nothing was captured.
        wire::ServerErrorReason::InvalidOrMissingConfig => Some(Rejection::Unauthorized),
    }
}

fn money_from_wire(amount: &wire::AmountDetails) -> Result<Money, String> {
    Money::parse(&amount.currency, &amount.total_amount).map_err(|e| {
        format!(
            "unreadable amount {:?} {:?}: {e}",
            amount.total_amount, amount.currency
        )
    })
}

/// The answer without what could carry card or token data (`paymentInformation`,
/// `tokenInformation`); a capture answer normally has neither.
fn redact(mut json: serde_json::Value) -> serde_json::Value {
    if let Some(object) = json.as_object_mut() {
        object.remove("paymentInformation");
        object.remove("tokenInformation");
    }
    json
}

/// The Transaction Search for the capture sent with `clientReferenceInformation.code` =
/// `capture_id` (our capture id: unique per capture).
pub fn search_request(capture_id: &str) -> wire::SearchRequest<'static> {
    wire::SearchRequest {
        save: false,
        name: "capture-service reconciliation",
        timezone: "UTC",
        query: format!("clientReferenceInformation.code:{capture_id}"),
        offset: 0,
        limit: 10,
        sort: "id:asc,submitTimeUtc:asc",
    }
}

/// The Cybersource id of a capture (`ics_bill`) that succeeded under `capture_id`, if the
/// search found one; `Err` for an answer that is not a search result.
pub fn found_capture(body: &[u8], capture_id: &str) -> Result<Option<String>, String> {
    let answer: wire::SearchAnswer = serde_json::from_slice(body)
        .map_err(|e| format!("unusable Transaction Search answer: {e}"))?;
    let summaries = answer
        .embedded
        .map(|e| e.transaction_summaries)
        .unwrap_or_default();
    Ok(summaries.into_iter().find_map(|summary| {
        let ours = summary
            .client_reference_information
            .and_then(|r| r.code)
            .is_some_and(|code| code == capture_id);
        let captured = summary
            .application_information
            .map(|a| a.applications)
            .unwrap_or_default()
            .iter()
            .any(|app| {
                app.name.as_deref() == Some("ics_bill")
                    && (app.r_flag.as_deref() == Some("SOK") || app.r_code.as_deref() == Some("1"))
            });
        if ours && captured {
            summary.id
        } else {
            None
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PENDING: &str = r#"{
      "_links": {
        "void": {"method": "POST", "href": "/pts/v2/captures/6482345928116004003002/voids"},
        "self": {"method": "GET", "href": "/pts/v2/captures/6482345928116004003002"}
      },
      "clientReferenceInformation": {"code": "cap_01hzy"},
      "id": "6482345928116004003002",
      "orderInformation": {"amountDetails": {"totalAmount": "102.21", "currency": "USD"}},
      "reconciliationId": "67332361D2UTBJLP",
      "status": "PENDING",
      "submitTimeUtc": "2022-04-14T18:43:13Z",
      "paymentInformation": {"card": {"number": "411111XXXXXX1111"}}
    }"#;

    #[test]
    fn a_pending_capture_is_completed_with_its_status_kept() -> Result<(), String> {
        let outcome = super::outcome(PENDING.as_bytes())?;
        assert_eq!(outcome.status, CaptureStatus::Completed);
        assert_eq!(outcome.provider_status, "PENDING");
        assert_eq!(
            outcome.provider_capture_id.as_deref(),
            Some("6482345928116004003002")
        );
        assert_eq!(outcome.captured_amount, Money::parse("USD", "102.21").ok());
        assert_eq!(outcome.breakdown, None);
        let body = outcome.redacted_body.ok_or("no body")?;
        assert_eq!(body["reconciliationId"], "67332361D2UTBJLP");
        assert!(body.get("paymentInformation").is_none());
        Ok(())
    }

    #[test]
    fn every_documented_status_maps() {
        for name in ["PENDING", "TRANSMITTED"] {
            assert_eq!(
                wire::parse_name(name).map(status_from_wire),
                Some(CaptureStatus::Completed)
            );
        }
        assert_eq!(wire::parse_name::<wire::Status>("pending"), None);
    }

    #[test]
    fn an_undocumented_status_or_unreadable_money_is_not_trusted() {
        assert!(outcome(br#"{"id":"1","status":"DECLINED"}"#).is_err());
        let bad_money = r#"{"id":"1","status":"PENDING",
            "orderInformation":{"amountDetails":{"totalAmount":"10.5","currency":"JPY"}}}"#;
        assert!(outcome(bad_money.as_bytes()).is_err());
        assert!(outcome(b"<html>").is_err());
        assert!(outcome(br#"{"id":"1"}"#).is_err());
    }

    #[test]
    fn state_reasons_are_preconditions_and_the_rest_invalid_arguments() {
        use wire::InvalidRequestReason as R;
        let rejected = |r| Refusal::Rejected(r);
        let cases = [
            (
                R::ExceedsAuthAmount,
                rejected(Rejection::FailedPrecondition),
            ),
            (
                R::AuthAlreadyReversed,
                rejected(Rejection::FailedPrecondition),
            ),
            (
                R::TransactionAlreadySettled,
                rejected(Rejection::FailedPrecondition),
            ),
            (
                R::TransactionAlreadyReversedOrSettled,
                rejected(Rejection::FailedPrecondition),
            ),
            (R::MissingField, rejected(Rejection::InvalidArgument)),
            (R::InvalidData, rejected(Rejection::InvalidArgument)),
            (R::InvalidAmount, rejected(Rejection::InvalidArgument)),
            (R::NotSupported, rejected(Rejection::InvalidArgument)),
            (R::MissingAuth, rejected(Rejection::NotFound)),
            (
                R::InvalidMerchantConfiguration,
                rejected(Rejection::Unauthorized),
            ),
            (R::DuplicateRequest, Refusal::Duplicate),
            (R::ProcessorUnavailable, Refusal::ProcessorUnavailable),
        ];
        for (reason, refusal) in cases {
            assert_eq!(refusal_for_400(reason, &[]), refusal, "{reason:?}");
        }
        assert_eq!(
            refusal_for_400(R::InvalidData, &[CURRENCY_FIELD]),
            rejected(Rejection::FailedPrecondition)
        );
    }

    #[test]
    fn only_a_configuration_502_is_definite() {
        use wire::ServerErrorReason as S;
        assert_eq!(rejection_for_502(S::SystemError), None);
        assert_eq!(rejection_for_502(S::ServerTimeout), None);
        assert_eq!(rejection_for_502(S::ServiceTimeout), None);
        assert_eq!(
            rejection_for_502(S::InvalidOrMissingConfig),
            Some(Rejection::Unauthorized)
        );
    }
}
