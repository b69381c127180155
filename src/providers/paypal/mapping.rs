//! PayPal wire types ⇄ domain, for captures and voids. Statuses and reasons map through
//! exhaustive `match`es, so a status PayPal adds to its documentation is a compile error here,
//! and a status it sends without documenting is an unknown outcome, never a guess.

use super::wire;
use crate::domain::capture::{EmailAddress, FeePayee, MerchantId, PlatformFee};
use crate::domain::outcome::{
    ExchangeRate, NetworkTransactionReference, ProcessorResponse, SellerProtection,
    SellerReceivableBreakdown,
};
use crate::domain::{CaptureCommand, CaptureStatus, Money, ProviderOutcome, StatusReason};
use crate::providers::Rejection;

mod release;

pub use release::{previously_voided, void_refusal, voided_authorization, VoidRefusal, VOIDED};

/// The capture request body for a command. `reference` and `metadata` are ours alone: PayPal's
/// capture request has no field for them, so they are not sent.
pub fn request(command: &CaptureCommand) -> wire::CaptureRequest<'_> {
    let parts = command.parts();
    let platform_fees: Vec<wire::PlatformFee<'_>> = parts
        .platform_fees
        .iter()
        .map(|fee| wire::PlatformFee {
            amount: money_to_wire(&fee.amount),
            payee: fee.payee.as_ref().map(|payee| match payee {
                FeePayee::Email(email) => wire::Payee {
                    email_address: Some(email.as_str()),
                    merchant_id: None,
                },
                FeePayee::MerchantId(id) => wire::Payee {
                    email_address: None,
                    merchant_id: Some(id.as_str()),
                },
            }),
        })
        .collect();
    let disbursement_mode = parts.disbursement_mode.map(|m| m.as_str());
    let payment_instruction = (!platform_fees.is_empty() || disbursement_mode.is_some()).then_some(
        wire::PaymentInstruction {
            platform_fees,
            disbursement_mode,
        },
    );
    wire::CaptureRequest {
        amount: parts.amount.as_ref().map(money_to_wire),
        invoice_id: parts.invoice_id.as_ref().map(|v| v.as_str()),
        note_to_payer: parts.note_to_payer.as_ref().map(|v| v.as_str()),
        final_capture: parts.final_capture,
        soft_descriptor: parts.soft_descriptor.as_ref().map(|v| v.as_str()),
        payment_instruction,
    }
}

/// Domain money as PayPal writes it: major units with the currency's decimals ("1000" JPY).
pub fn money_to_wire(money: &Money) -> wire::Money {
    wire::Money {
        currency_code: money.currency().code().to_owned(),
        value: money.to_major_string(),
    }
}

/// Reads a 2xx capture body. `Err` carries why the answer cannot be trusted (malformed JSON,
/// undocumented status, unreadable money): the caller reports the outcome as unknown.
pub fn outcome(body: &[u8]) -> Result<ProviderOutcome, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("capture answer is not JSON: {e}"))?;
    let capture: wire::Capture = serde_json::from_value(json.clone())
        .map_err(|e| format!("capture answer does not match PayPal's schema: {e}"))?;
    let mut outcome = outcome_from_capture(capture)?;
    // PayPal's capture carries no card numbers or secrets; it is kept whole for support.
    outcome.redacted_body = Some(json.into());
    Ok(outcome)
}

fn outcome_from_capture(capture: wire::Capture) -> Result<ProviderOutcome, String> {
    let wire_status: wire::Status = wire::parse_name(&capture.status)
        .ok_or_else(|| format!("undocumented capture status {:?}", capture.status))?;
    // Every capture PayPal answers with names itself; a body that does not is no capture.
    let id = (capture.id.as_deref())
        .filter(|id| !id.is_empty())
        .ok_or("capture answer without the capture's id")?
        .to_owned();
    let provider_reason = capture.status_details.and_then(|d| d.reason);
    // An undocumented reason leaves `reason` empty; the status itself is still definite, and
    // the raw reason is kept in `provider_reason`.
    let reason = provider_reason
        .as_deref()
        .and_then(wire::parse_name::<wire::Reason>)
        .map(reason_from_wire);
    Ok(ProviderOutcome {
        status: status_from_wire(wire_status),
        reason,
        provider_capture_id: Some(id),
        provider_status: capture.status,
        provider_reason,
        captured_amount: capture.amount.as_ref().map(money_from_wire).transpose()?,
        breakdown: capture
            .seller_receivable_breakdown
            .map(breakdown_from_wire)
            .transpose()?,
        network_reference: capture.network_transaction_reference.map(|n| {
            NetworkTransactionReference {
                id: n.id,
                date: n.date,
                network: n.network,
                acquirer_reference_number: n.acquirer_reference_number,
            }
        }),
        seller_protection: capture.seller_protection.map(|s| SellerProtection {
            status: s.status.unwrap_or_default(),
            dispute_categories: s.dispute_categories,
        }),
        processor_response: capture.processor_response.map(|p| ProcessorResponse {
            avs_code: p.avs_code,
            cvv_code: p.cvv_code,
            response_code: p.response_code,
            payment_advice_code: p.payment_advice_code,
        }),
        redacted_body: None,
    })
}

/// PayPal's capture status as ours.
pub fn status_from_wire(status: wire::Status) -> CaptureStatus {
    match status {
        wire::Status::Completed => CaptureStatus::Completed,
        wire::Status::Declined => CaptureStatus::Declined,
        wire::Status::PartiallyRefunded => CaptureStatus::PartiallyRefunded,
        wire::Status::Pending => CaptureStatus::Pending,
        wire::Status::Refunded => CaptureStatus::Refunded,
        wire::Status::Failed => CaptureStatus::Failed,
    }
}

/// PayPal's status reason as ours (our reasons are modelled on PayPal's).
pub fn reason_from_wire(reason: wire::Reason) -> StatusReason {
    match reason {
        wire::Reason::BuyerComplaint => StatusReason::BuyerComplaint,
        wire::Reason::Chargeback => StatusReason::Chargeback,
        wire::Reason::Echeck => StatusReason::Echeck,
        wire::Reason::InternationalWithdrawal => StatusReason::InternationalWithdrawal,
        wire::Reason::Other => StatusReason::Other,
        wire::Reason::PendingReview => StatusReason::PendingReview,
        wire::Reason::ReceivingPreferenceMandatesManualAction => {
            StatusReason::ReceivingPreferenceMandatesManualAction
        }
        wire::Reason::Refunded => StatusReason::Refunded,
        wire::Reason::TransactionApprovedAwaitingFunding => {
            StatusReason::TransactionApprovedAwaitingFunding
        }
        wire::Reason::Unilateral => StatusReason::Unilateral,
        wire::Reason::VerificationRequired => StatusReason::VerificationRequired,
        wire::Reason::DeclinedByRiskFraudFilters => StatusReason::DeclinedByRiskFraudFilters,
    }
}

fn money_from_wire(money: &wire::Money) -> Result<Money, String> {
    Money::parse(&money.currency_code, &money.value).map_err(|e| {
        format!(
            "unreadable amount {:?} {:?}: {e}",
            money.value, money.currency_code
        )
    })
}

fn optional_money(money: Option<wire::Money>) -> Result<Option<Money>, String> {
    money.as_ref().map(money_from_wire).transpose()
}

fn breakdown_from_wire(
    b: wire::SellerReceivableBreakdown,
) -> Result<SellerReceivableBreakdown, String> {
    let platform_fees = b
        .platform_fees
        .into_iter()
        .map(|fee| {
            let payee = match fee.payee {
                None => None,
                Some(wire::AnsweredPayee {
                    merchant_id: Some(id),
                    ..
                }) => Some(FeePayee::MerchantId(
                    MerchantId::parse(&id).map_err(|e| format!("platform fee merchant_id: {e}"))?,
                )),
                Some(wire::AnsweredPayee {
                    email_address: Some(email),
                    ..
                }) => Some(FeePayee::Email(
                    EmailAddress::parse(&email)
                        .map_err(|e| format!("platform fee email_address: {e}"))?,
                )),
                // A payee object with neither field names nobody: the API caller, by default.
                Some(wire::AnsweredPayee { .. }) => None,
            };
            Ok(PlatformFee {
                amount: money_from_wire(&fee.amount)?,
                payee,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(SellerReceivableBreakdown {
        gross_amount: optional_money(b.gross_amount)?,
        provider_fee: optional_money(b.paypal_fee)?,
        provider_fee_in_receivable_currency: optional_money(b.paypal_fee_in_receivable_currency)?,
        net_amount: optional_money(b.net_amount)?,
        receivable_amount: optional_money(b.receivable_amount)?,
        // PayPal's schema makes each field optional; a missing one is kept as empty text rather
        // than invented.
        exchange_rate: b.exchange_rate.map(|r| ExchangeRate {
            source_currency: r.source_currency.unwrap_or_default(),
            target_currency: r.target_currency.unwrap_or_default(),
            value: r.value.unwrap_or_default(),
        }),
        platform_fees,
    })
}

/// How a 422 `issue` refuses the capture: the authorization's state forbids it
/// (`FailedPrecondition`) or the request itself is wrong (`InvalidArgument`).
pub fn rejection(issue: Option<&str>) -> Rejection {
    match issue {
        Some(
            "AUTHORIZATION_EXPIRED"
            | "AUTHORIZATION_VOIDED"
            | "AUTHORIZATION_ALREADY_CAPTURED"
            | "MAX_CAPTURE_AMOUNT_EXCEEDED"
            | "MAX_CAPTURE_COUNT_EXCEEDED"
            | "AUTH_CAPTURE_CURRENCY_MISMATCH"
            | "PAYER_CANNOT_PAY"
            | "TRANSACTION_REFUSED"
            | "PAYEE_ACCOUNT_RESTRICTED"
            | "DUPLICATE_INVOICE_ID",
        ) => Rejection::FailedPrecondition,
        Some(_) | None => Rejection::InvalidArgument,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPLETED: &str = r#"{
      "id": "2GG279541U471931P",
      "status": "COMPLETED",
      "amount": {"currency_code": "USD", "value": "10.99"},
      "final_capture": true,
      "seller_protection": {"status": "ELIGIBLE",
        "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"]},
      "seller_receivable_breakdown": {
        "gross_amount": {"currency_code": "USD", "value": "10.99"},
        "paypal_fee": {"currency_code": "USD", "value": "0.33"},
        "paypal_fee_in_receivable_currency": {"currency_code": "EUR", "value": "0.30"},
        "net_amount": {"currency_code": "USD", "value": "9.66"},
        "receivable_amount": {"currency_code": "EUR", "value": "8.90"},
        "exchange_rate": {"source_currency": "USD", "target_currency": "EUR", "value": "0.9213"},
        "platform_fees": [{"amount": {"currency_code": "USD", "value": "1.00"},
                           "payee": {"merchant_id": "2ABCDEFGHJKLM"}}]
      },
      "network_transaction_reference": {"id": "123456789012345", "date": "0521",
        "network": "VISA", "acquirer_reference_number": "ARN123"},
      "processor_response": {"avs_code": "Y", "cvv_code": "M", "response_code": "0000"},
      "links": [{"href": "https://api-m.paypal.com/v2/payments/captures/2GG279541U471931P",
                 "rel": "self", "method": "GET"}],
      "create_time": "2024-05-21T10:00:00Z"
    }"#;

    fn money(code: &str, value: &str) -> Option<Money> {
        Money::parse(code, value).ok()
    }

    #[test]
    fn a_completed_capture_keeps_the_full_breakdown() -> Result<(), String> {
        let outcome = super::outcome(COMPLETED.as_bytes())?;
        assert_eq!(outcome.status, CaptureStatus::Completed);
        assert_eq!(outcome.provider_status, "COMPLETED");
        assert_eq!(
            outcome.provider_capture_id.as_deref(),
            Some("2GG279541U471931P")
        );
        assert_eq!(outcome.captured_amount, money("USD", "10.99"));
        let b = outcome.breakdown.ok_or("breakdown")?;
        assert_eq!(b.gross_amount, money("USD", "10.99"));
        assert_eq!(b.provider_fee, money("USD", "0.33"));
        assert_eq!(b.provider_fee_in_receivable_currency, money("EUR", "0.30"));
        assert_eq!(b.net_amount, money("USD", "9.66"));
        assert_eq!(b.receivable_amount, money("EUR", "8.90"));
        let rate = b.exchange_rate.ok_or("rate")?;
        assert_eq!(
            (rate.source_currency.as_str(), rate.target_currency.as_str()),
            ("USD", "EUR")
        );
        assert_eq!(rate.value, "0.9213");
        assert_eq!(b.platform_fees.len(), 1);
        assert!(matches!(
            b.platform_fees[0].payee,
            Some(FeePayee::MerchantId(ref id)) if id.as_str() == "2ABCDEFGHJKLM"
        ));
        let seller = outcome.seller_protection.ok_or("seller protection")?;
        assert_eq!(seller.status, "ELIGIBLE");
        assert_eq!(seller.dispute_categories.len(), 2);
        let network = outcome.network_reference.ok_or("network reference")?;
        assert_eq!(network.network.as_deref(), Some("VISA"));
        let processor = outcome.processor_response.ok_or("processor response")?;
        assert_eq!(processor.response_code.as_deref(), Some("0000"));
        assert!(outcome.redacted_body.is_some_and(|b| b["links"].is_array()));
        Ok(())
    }

    #[test]
    fn a_pending_capture_has_its_reason_and_no_breakdown() -> Result<(), String> {
        let body = r#"{"id":"7TK53561YB803214S","status":"PENDING",
            "status_details":{"reason":"PENDING_REVIEW"},
            "amount":{"currency_code":"JPY","value":"1000"}}"#;
        let outcome = super::outcome(body.as_bytes())?;
        assert_eq!(outcome.status, CaptureStatus::Pending);
        assert_eq!(outcome.reason, Some(StatusReason::PendingReview));
        assert_eq!(outcome.provider_reason.as_deref(), Some("PENDING_REVIEW"));
        assert_eq!(outcome.captured_amount, money("JPY", "1000"));
        assert_eq!(outcome.breakdown, None);
        Ok(())
    }

    #[test]
    fn every_documented_status_and_reason_maps() {
        let statuses = [
            ("COMPLETED", CaptureStatus::Completed),
            ("DECLINED", CaptureStatus::Declined),
            ("PARTIALLY_REFUNDED", CaptureStatus::PartiallyRefunded),
            ("PENDING", CaptureStatus::Pending),
            ("REFUNDED", CaptureStatus::Refunded),
            ("FAILED", CaptureStatus::Failed),
        ];
        for (name, status) in statuses {
            assert_eq!(wire::parse_name(name).map(status_from_wire), Some(status));
        }
        // Our first twelve reasons are PayPal's, spelled the same way.
        for reason in &StatusReason::ALL[..12] {
            let parsed = wire::parse_name(reason.as_str()).map(reason_from_wire);
            assert_eq!(parsed, Some(*reason));
        }
        assert_eq!(wire::parse_name::<wire::Status>("completed"), None);
    }

    #[test]
    fn an_undocumented_status_or_unreadable_money_is_not_trusted() {
        let unknown = r#"{"id":"X","status":"DENIED"}"#;
        assert!(outcome(unknown.as_bytes()).is_err());
        let bad_money = r#"{"id":"X","status":"COMPLETED",
            "amount":{"currency_code":"JPY","value":"10.5"}}"#;
        assert!(outcome(bad_money.as_bytes()).is_err());
        assert!(outcome(b"{not json").is_err());
        assert!(outcome(br#"{"id":"X"}"#).is_err());
    }

    #[test]
    fn an_answer_that_names_no_capture_is_no_outcome() {
        // A 200 whose body says declined but names no capture (a proxy's, or a lie): unknown,
        // never DECLINED, whatever the first attempt did.
        for body in [
            r#"{"status":"DECLINED","message":"Declined by the issuer"}"#,
            r#"{"id":"","status":"COMPLETED"}"#,
        ] {
            assert!(outcome(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn an_undocumented_reason_is_kept_verbatim_only() -> Result<(), String> {
        let body = r#"{"id":"2GG279541U471931P","status":"PENDING","status_details":{"reason":"NEW_REASON"}}"#;
        let outcome = super::outcome(body.as_bytes())?;
        assert_eq!(outcome.reason, None);
        assert_eq!(outcome.provider_reason.as_deref(), Some("NEW_REASON"));
        Ok(())
    }

    #[test]
    fn state_issues_are_preconditions_and_the_rest_invalid_arguments() {
        assert_eq!(
            rejection(Some("AUTHORIZATION_EXPIRED")),
            Rejection::FailedPrecondition
        );
        assert_eq!(
            rejection(Some("DUPLICATE_INVOICE_ID")),
            Rejection::FailedPrecondition
        );
        assert_eq!(
            rejection(Some("DECIMAL_PRECISION")),
            Rejection::InvalidArgument
        );
        assert_eq!(rejection(None), Rejection::InvalidArgument);
    }
}
