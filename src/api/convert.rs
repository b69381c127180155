//! Proto ⇄ domain, done once at the edge. Requests become domain commands (every bad field
//! reported, with its proto path); records become proto resources.

use crate::domain::capture::{
    AccountName, AuthorizationId, DisbursementMode, EmailAddress, FeePayee, InvoiceId, MerchantId,
    Metadata, NoteToPayer, PlatformFee, Reference, RequestId, SoftDescriptor,
};
use crate::domain::outcome::SellerReceivableBreakdown;
use crate::domain::{
    CaptureCommand, CaptureParts, CaptureRecord, CaptureStatus, FieldViolation, Money, MoneyError,
    Provider, StatusReason, Violations,
};
use crate::proto;

/// The domain provider of a proto enum value; `None` for unspecified or unknown numbers.
/// Matched by name: `PROVIDER_<NAME>` is the provider whose `as_str` is `<name>`, so a new
/// provider needs no line here (the round trip is tested below).
pub fn provider_from_proto(value: i32) -> Option<Provider> {
    let name = proto::Provider::try_from(value)
        .ok()?
        .as_str_name()
        .strip_prefix("PROVIDER_")?;
    // Compared without allocating: this runs on every Capture and List request.
    Provider::ALL
        .into_iter()
        .find(|p| p.as_str().eq_ignore_ascii_case(name))
}

pub(super) fn provider_to_proto(provider: Provider) -> proto::Provider {
    proto::Provider::from_str_name(&proto_provider_name(provider))
        .unwrap_or(proto::Provider::Unspecified)
}

/// `PROVIDER_PAYMENT_OPTIONS` for `payment_options`.
fn proto_provider_name(provider: Provider) -> String {
    format!("PROVIDER_{}", provider.as_str().to_uppercase())
}

/// What `provider` may be, for the error that names it.
pub(super) fn provider_choices() -> String {
    let names: Vec<String> = Provider::ALL.into_iter().map(proto_provider_name).collect();
    format!("required: one of {}", names.join(", "))
}

/// A proto enum number this build does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownEnumValue(pub i32);

/// The domain status of a proto value; `None` for unspecified ("any").
pub fn status_from_proto(value: i32) -> Result<Option<CaptureStatus>, UnknownEnumValue> {
    Ok(
        match proto::CaptureStatus::try_from(value).map_err(|_| UnknownEnumValue(value))? {
            proto::CaptureStatus::Unspecified => None,
            proto::CaptureStatus::Processing => Some(CaptureStatus::Processing),
            proto::CaptureStatus::Pending => Some(CaptureStatus::Pending),
            proto::CaptureStatus::Completed => Some(CaptureStatus::Completed),
            proto::CaptureStatus::Declined => Some(CaptureStatus::Declined),
            proto::CaptureStatus::Failed => Some(CaptureStatus::Failed),
            proto::CaptureStatus::PartiallyRefunded => Some(CaptureStatus::PartiallyRefunded),
            proto::CaptureStatus::Refunded => Some(CaptureStatus::Refunded),
        },
    )
}

pub fn status_to_proto(status: CaptureStatus) -> proto::CaptureStatus {
    match status {
        CaptureStatus::Processing => proto::CaptureStatus::Processing,
        CaptureStatus::Pending => proto::CaptureStatus::Pending,
        CaptureStatus::Completed => proto::CaptureStatus::Completed,
        CaptureStatus::Declined => proto::CaptureStatus::Declined,
        CaptureStatus::Failed => proto::CaptureStatus::Failed,
        CaptureStatus::PartiallyRefunded => proto::CaptureStatus::PartiallyRefunded,
        CaptureStatus::Refunded => proto::CaptureStatus::Refunded,
    }
}

fn reason_to_proto(reason: StatusReason) -> proto::CaptureStatusReason {
    use proto::CaptureStatusReason as P;
    match reason {
        StatusReason::BuyerComplaint => P::BuyerComplaint,
        StatusReason::Chargeback => P::Chargeback,
        StatusReason::Echeck => P::Echeck,
        StatusReason::InternationalWithdrawal => P::InternationalWithdrawal,
        StatusReason::Other => P::Other,
        StatusReason::PendingReview => P::PendingReview,
        StatusReason::ReceivingPreferenceMandatesManualAction => {
            P::ReceivingPreferenceMandatesManualAction
        }
        StatusReason::Refunded => P::Refunded,
        StatusReason::TransactionApprovedAwaitingFunding => P::TransactionApprovedAwaitingFunding,
        StatusReason::Unilateral => P::Unilateral,
        StatusReason::VerificationRequired => P::VerificationRequired,
        StatusReason::DeclinedByRiskFraudFilters => P::DeclinedByRiskFraudFilters,
        StatusReason::AwaitingProviderConfirmation => P::AwaitingProviderConfirmation,
        StatusReason::ProviderOutcomeUnknown => P::ProviderOutcomeUnknown,
        StatusReason::ProviderRejected => P::ProviderRejected,
    }
}

/// Parses a proto money under `field`, recording what is wrong with it.
pub(super) fn money(
    violations: &mut Violations,
    field: &str,
    money: &proto::Money,
) -> Option<Money> {
    match Money::parse_positive(&money.currency_code, &money.value) {
        Ok(m) => Some(m),
        Err(err @ MoneyError::UnknownCurrency(_)) => {
            violations.add(format!("{field}.currency_code"), err.to_string());
            None
        }
        Err(err) => {
            violations.add(format!("{field}.value"), err.to_string());
            None
        }
    }
}

/// A request's optional provider filter (0: none); an unknown value is a violation.
pub(super) fn provider_filter(violations: &mut Violations, value: i32) -> Option<Provider> {
    if value == 0 {
        return None;
    }
    let provider = provider_from_proto(value);
    if provider.is_none() {
        violations.add("provider", "unknown provider");
    }
    provider
}

/// A request's optional status filter (0: none); an unknown value is a violation.
pub(super) fn status_filter(violations: &mut Violations, value: i32) -> Option<CaptureStatus> {
    status_from_proto(value).unwrap_or_else(|_| {
        violations.add("status", "unknown status");
        None
    })
}

/// An optional text field: empty means absent.
pub(super) fn optional<T>(
    violations: &mut Violations,
    field: &str,
    value: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Option<T> {
    if value.is_empty() {
        return None;
    }
    violations.check(field, parse(value))
}

fn platform_fee(
    violations: &mut Violations,
    index: usize,
    fee: &proto::PlatformFee,
) -> Option<PlatformFee> {
    let field = format!("platform_fees[{index}]");
    let amount = match &fee.amount {
        Some(m) => money(violations, &format!("{field}.amount"), m),
        None => {
            violations.add(format!("{field}.amount"), "required");
            None
        }
    };
    let payee = match fee.payee.as_ref().and_then(|p| p.payee.as_ref()) {
        None => None,
        Some(proto::fee_payee::Payee::EmailAddress(email)) => violations
            .check(
                &format!("{field}.payee.email_address"),
                EmailAddress::parse(email),
            )
            .map(FeePayee::Email),
        Some(proto::fee_payee::Payee::MerchantId(id)) => violations
            .check(&format!("{field}.payee.merchant_id"), MerchantId::parse(id))
            .map(FeePayee::MerchantId),
    };
    Some(PlatformFee {
        amount: amount?,
        payee,
    })
}

impl TryFrom<proto::CaptureRequest> for CaptureCommand {
    type Error = Vec<FieldViolation>;

    fn try_from(request: proto::CaptureRequest) -> Result<Self, Self::Error> {
        let mut v = Violations::default();
        let provider = provider_from_proto(request.provider);
        if provider.is_none() {
            v.add("provider", provider_choices());
        }
        let account = optional(
            &mut v,
            "provider_account",
            &request.provider_account,
            AccountName::parse,
        );
        let authorization_id = v.check(
            "authorization_id",
            AuthorizationId::parse(&request.authorization_id),
        );
        let amount = request
            .amount
            .as_ref()
            .and_then(|m| money(&mut v, "amount", m));
        let authorized_amount = request
            .authorized_amount
            .as_ref()
            .and_then(|m| money(&mut v, "authorized_amount", m));
        let invoice_id = optional(&mut v, "invoice_id", &request.invoice_id, InvoiceId::parse);
        let note_to_payer = optional(
            &mut v,
            "note_to_payer",
            &request.note_to_payer,
            NoteToPayer::parse,
        );
        let soft_descriptor = optional(
            &mut v,
            "soft_descriptor",
            &request.soft_descriptor,
            SoftDescriptor::parse,
        );
        let reference = optional(&mut v, "reference", &request.reference, Reference::parse);
        let metadata = match Metadata::parse(request.metadata) {
            Ok(m) => m,
            Err(errors) => {
                for (key, problem) in errors {
                    let field = if key.is_empty() {
                        "metadata".to_owned()
                    } else {
                        format!("metadata[{key}]")
                    };
                    v.add(field, problem);
                }
                Metadata::default()
            }
        };
        let platform_fees: Vec<PlatformFee> = request
            .platform_fees
            .iter()
            .enumerate()
            .filter_map(|(i, fee)| platform_fee(&mut v, i, fee))
            .collect();
        let disbursement_mode = match proto::DisbursementMode::try_from(request.disbursement_mode) {
            Ok(proto::DisbursementMode::Unspecified) => None,
            Ok(proto::DisbursementMode::Instant) => Some(DisbursementMode::Instant),
            Ok(proto::DisbursementMode::Delayed) => Some(DisbursementMode::Delayed),
            Err(_) => {
                v.add("disbursement_mode", "unknown value");
                None
            }
        };
        let request_id = v.check("request_id", RequestId::parse(&request.request_id));

        let (Some(provider), Some(authorization_id), Some(request_id), true) =
            (provider, authorization_id, request_id, v.is_empty())
        else {
            return Err(v.into_vec());
        };
        CaptureCommand::new(CaptureParts {
            operation: crate::domain::Operation::Capture,
            provider,
            account,
            authorization_id,
            amount,
            authorized_amount,
            final_capture: request.final_capture,
            invoice_id,
            note_to_payer,
            soft_descriptor,
            reference,
            metadata,
            platform_fees,
            disbursement_mode,
            request_id,
        })
        .map_err(|errors| {
            errors
                .into_iter()
                .map(|e| FieldViolation::new(e.field(), e.to_string()))
                .collect()
        })
    }
}

pub(super) fn money_to_proto(money: &Money) -> proto::Money {
    proto::Money {
        currency_code: money.currency().code().to_owned(),
        value: money.to_major_string(),
    }
}

fn fee_to_proto(fee: &PlatformFee) -> proto::PlatformFee {
    proto::PlatformFee {
        amount: Some(money_to_proto(&fee.amount)),
        payee: fee.payee.as_ref().map(|payee| proto::FeePayee {
            payee: Some(match payee {
                FeePayee::Email(e) => proto::fee_payee::Payee::EmailAddress(e.as_str().to_owned()),
                FeePayee::MerchantId(m) => {
                    proto::fee_payee::Payee::MerchantId(m.as_str().to_owned())
                }
            }),
        }),
    }
}

fn breakdown_to_proto(b: &SellerReceivableBreakdown) -> proto::SellerReceivableBreakdown {
    proto::SellerReceivableBreakdown {
        gross_amount: b.gross_amount.as_ref().map(money_to_proto),
        provider_fee: b.provider_fee.as_ref().map(money_to_proto),
        provider_fee_in_receivable_currency: b
            .provider_fee_in_receivable_currency
            .as_ref()
            .map(money_to_proto),
        net_amount: b.net_amount.as_ref().map(money_to_proto),
        receivable_amount: b.receivable_amount.as_ref().map(money_to_proto),
        exchange_rate: b.exchange_rate.as_ref().map(|r| proto::ExchangeRate {
            source_currency: r.source_currency.clone(),
            target_currency: r.target_currency.clone(),
            value: r.value.clone(),
        }),
        platform_fees: b.platform_fees.iter().map(fee_to_proto).collect(),
    }
}

/// Microseconds since the epoch as a protobuf timestamp.
pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    }
}

/// A protobuf timestamp as microseconds since the epoch.
pub fn micros(timestamp: &prost_types::Timestamp) -> i64 {
    timestamp
        .seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(timestamp.nanos / 1000))
}

impl From<&CaptureRecord> for proto::Capture {
    fn from(record: &CaptureRecord) -> Self {
        proto::Capture::from(record.clone())
    }
}

/// A record as the API shows it. The record's strings move into the message: a page of 100
/// copied some 1,500 of them.
impl From<CaptureRecord> for proto::Capture {
    fn from(record: CaptureRecord) -> Self {
        let status_details = status_details(&record);
        let error = provider_error(&record);
        let CaptureRecord {
            id,
            account,
            command,
            status,
            provider_capture_id,
            provider_status,
            captured_amount,
            refunded_amount,
            breakdown,
            network_reference,
            seller_protection,
            processor_response,
            create_time,
            update_time,
            ..
        } = record;
        let p = command.into_parts();
        let text = |t: Option<String>| t.unwrap_or_default();
        proto::Capture {
            id,
            provider: provider_to_proto(p.provider) as i32,
            provider_account: account,
            authorization_id: p.authorization_id.into_string(),
            amount: p.amount.as_ref().map(money_to_proto),
            final_capture: p.final_capture,
            invoice_id: text(p.invoice_id.map(InvoiceId::into_string)),
            note_to_payer: text(p.note_to_payer.map(NoteToPayer::into_string)),
            soft_descriptor: text(p.soft_descriptor.map(SoftDescriptor::into_string)),
            reference: text(p.reference.map(Reference::into_string)),
            metadata: p.metadata.into_entries().into_iter().collect(),
            platform_fees: p.platform_fees.iter().map(fee_to_proto).collect(),
            disbursement_mode: match p.disbursement_mode {
                None => proto::DisbursementMode::Unspecified,
                Some(DisbursementMode::Instant) => proto::DisbursementMode::Instant,
                Some(DisbursementMode::Delayed) => proto::DisbursementMode::Delayed,
            } as i32,
            request_id: p.request_id.into_string(),
            status: status_to_proto(status) as i32,
            status_details: Some(status_details),
            provider_capture_id: text(provider_capture_id),
            provider_status: text(provider_status),
            captured_amount: captured_amount.as_ref().map(money_to_proto),
            seller_receivable_breakdown: breakdown.as_ref().map(breakdown_to_proto),
            network_transaction_reference: network_reference.map(|n| {
                proto::NetworkTransactionReference {
                    id: n.id,
                    date: text(n.date),
                    network: text(n.network),
                    acquirer_reference_number: text(n.acquirer_reference_number),
                }
            }),
            seller_protection: seller_protection.map(|s| proto::SellerProtection {
                status: s.status,
                dispute_categories: s.dispute_categories,
            }),
            processor_response: processor_response.map(|r| proto::ProcessorResponse {
                avs_code: text(r.avs_code),
                cvv_code: text(r.cvv_code),
                response_code: text(r.response_code),
                payment_advice_code: text(r.payment_advice_code),
            }),
            error,
            create_time: Some(timestamp(create_time)),
            update_time: Some(timestamp(update_time)),
            refunded_amount: refunded_amount.as_ref().map(money_to_proto),
        }
    }
}

/// A record's status details, as a capture and a release show them.
pub(super) fn status_details(record: &CaptureRecord) -> proto::StatusDetails {
    proto::StatusDetails {
        reason: record
            .reason
            .map(reason_to_proto)
            .unwrap_or(proto::CaptureStatusReason::Unspecified) as i32,
        provider_reason: record.provider_reason.clone().unwrap_or_default(),
    }
}

/// The provider's refusal kept on a record.
pub(super) fn provider_error(record: &CaptureRecord) -> Option<proto::ProviderError> {
    record.failure.as_ref().map(|f| proto::ProviderError {
        code: f.code.clone(),
        message: f.message.clone(),
        debug_id: f.debug_id.clone().unwrap_or_default(),
        http_status: i32::from(f.http_status),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_maps_to_its_proto_value_and_back() {
        for provider in Provider::ALL {
            let value = provider_to_proto(provider);
            assert_ne!(value, proto::Provider::Unspecified, "{provider}");
            assert_eq!(provider_from_proto(value as i32), Some(provider));
        }
        assert_eq!(provider_from_proto(0), None);
        assert_eq!(provider_from_proto(999), None);
        // Every proto value but UNSPECIFIED has a domain provider.
        for value in 1..256 {
            if proto::Provider::try_from(value).is_ok() {
                assert!(provider_from_proto(value).is_some(), "proto value {value}");
            }
        }
    }

    fn request() -> proto::CaptureRequest {
        proto::CaptureRequest {
            // Any provider: these rules are the edge's own.
            provider: provider_to_proto(Provider::ALL[0]) as i32,
            authorization_id: "0VF52814937998046".into(),
            amount: Some(proto::Money {
                currency_code: "USD".into(),
                value: "10.99".into(),
            }),
            request_id: "req-1".into(),
            ..Default::default()
        }
    }

    fn fields(result: Result<CaptureCommand, Vec<FieldViolation>>) -> Vec<String> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn a_valid_request_becomes_a_command() {
        let command = CaptureCommand::try_from(request());
        assert_eq!(
            command
                .ok()
                .and_then(|c| c.parts().amount)
                .map(|m| m.minor_units()),
            Some(1099)
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut r = request();
        r.provider = 0;
        r.authorization_id = String::new();
        r.amount = Some(proto::Money {
            currency_code: "JPY".into(),
            value: "1.5".into(),
        });
        r.invoice_id = "x".repeat(128);
        r.soft_descriptor = "y".repeat(23);
        r.request_id = String::new();
        r.platform_fees = vec![proto::PlatformFee {
            amount: Some(proto::Money {
                currency_code: "USD".into(),
                value: "1".into(),
            }),
            payee: Some(proto::FeePayee {
                payee: Some(proto::fee_payee::Payee::MerchantId("bad".into())),
            }),
        }];
        assert_eq!(
            fields(CaptureCommand::try_from(r)),
            vec![
                "provider",
                "authorization_id",
                "amount.value",
                "invoice_id",
                "soft_descriptor",
                "platform_fees[0].payee.merchant_id",
                "request_id"
            ]
        );
    }

    #[test]
    fn timestamps_round_trip_through_micros() {
        let t = timestamp(1_700_000_000_123_456);
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 123_456_000));
        assert_eq!(micros(&t), 1_700_000_000_123_456);
    }
}
