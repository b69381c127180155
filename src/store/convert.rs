//! Rows ⇄ domain records. Stored values were valid when written; reading them back re-checks
//! them, and a row that no longer parses is reported as corrupt rather than guessed at.

use std::collections::BTreeMap;

use sea_orm::ActiveValue::{NotSet, Set};

use super::entities::{captures, platform_fees, seller_receivable_breakdowns};
use super::StoreError;
use crate::domain::capture::{
    AccountName, AuthorizationId, DisbursementMode, EmailAddress, FeePayee, InvoiceId, MerchantId,
    Metadata, NoteToPayer, PlatformFee, Reference, RequestId, SoftDescriptor,
};
use crate::domain::outcome::{ExchangeRate, ProviderFailure, SellerReceivableBreakdown};
use crate::domain::{
    CaptureCommand, CaptureParts, CaptureRecord, CaptureStatus, Currency, Money, Operation,
    Provider, StatusReason,
};

/// Fees the caller asked for.
pub const FEE_REQUESTED: &str = "REQUESTED";
/// Fees the provider reported taking.
pub const FEE_REPORTED: &str = "REPORTED";

fn corrupt(id: &str, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        id: id.to_owned(),
        problem: problem.to_string(),
    }
}

fn money(
    id: &str,
    currency: Option<&str>,
    minor: Option<i64>,
) -> Result<Option<Money>, StoreError> {
    match (currency, minor) {
        (Some(code), Some(minor)) => {
            let currency =
                Currency::from_code(code).ok_or_else(|| corrupt(id, format!("currency {code}")))?;
            Ok(Some(Money::from_minor_units(currency, minor)))
        }
        _ => Ok(None),
    }
}

fn text<T>(
    id: &str,
    value: Option<String>,
    parse: fn(String) -> Result<T, String>,
) -> Result<Option<T>, StoreError> {
    value.map(parse).transpose().map_err(|e| corrupt(id, e))
}

fn json<T: serde::de::DeserializeOwned>(
    id: &str,
    value: &Option<String>,
) -> Result<Option<T>, StoreError> {
    value
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| corrupt(id, e))
}

fn to_json<T: serde::Serialize>(value: &Option<T>) -> Option<String> {
    value.as_ref().and_then(|v| serde_json::to_string(v).ok())
}

/// The row for a new capture, `PROCESSING`.
pub fn new_capture_row(
    id: &str,
    tenant: &str,
    account: &str,
    command: &CaptureCommand,
    reserved_minor: i64,
    capture_sequence: u32,
    now: i64,
) -> captures::ActiveModel {
    let p = command.parts();
    let currency = p
        .amount
        .or(p.authorized_amount)
        .map(|m| m.currency().code().to_owned());
    captures::ActiveModel {
        id: Set(id.to_owned()),
        tenant: Set(tenant.to_owned()),
        request_id: Set(p.request_id.as_str().to_owned()),
        request_fingerprint: Set(command.fingerprint()),
        provider: Set(p.provider.as_str().to_owned()),
        provider_account: Set(account.to_owned()),
        authorization_id: Set(p.authorization_id.as_str().to_owned()),
        currency_code: Set(currency),
        amount_minor: Set(p.amount.map(|m| m.minor_units())),
        authorized_amount_minor: Set(p.authorized_amount.map(|m| m.minor_units())),
        reserved_minor: Set(reserved_minor),
        final_capture: Set(p.final_capture),
        invoice_id: Set(p.invoice_id.as_ref().map(|v| v.as_str().to_owned())),
        note_to_payer: Set(p.note_to_payer.as_ref().map(|v| v.as_str().to_owned())),
        soft_descriptor: Set(p.soft_descriptor.as_ref().map(|v| v.as_str().to_owned())),
        reference: Set(p.reference.as_ref().map(|v| v.as_str().to_owned())),
        metadata: Set(serde_json::to_string(p.metadata.entries()).unwrap_or_else(|_| "{}".into())),
        disbursement_mode: Set(p.disbursement_mode.map(|m| m.as_str().to_owned())),
        status: Set(CaptureStatus::Processing.as_str().to_owned()),
        status_reason: Set(None),
        provider_reason: Set(None),
        provider_capture_id: Set(None),
        provider_status: Set(None),
        captured_currency_code: Set(None),
        captured_amount_minor: Set(None),
        network_reference: Set(None),
        seller_protection: Set(None),
        processor_response: Set(None),
        error_code: Set(None),
        error_message: Set(None),
        error_debug_id: Set(None),
        error_http_status: Set(None),
        provider_response: Set(None),
        create_time: Set(now),
        update_time: Set(now),
        reconcile_after: Set(None),
        reconcile_attempts: Set(0),
        capture_sequence: Set(i32::try_from(capture_sequence).unwrap_or(i32::MAX)),
        lease_until: Set(None),
        lease_owner: Set(None),
        operation: Set(p.operation.as_str().to_owned()),
        refunded_minor: Set(None),
    }
}

/// The record of a capture just committed by [`new_capture_row`]: what reading it back gives.
pub fn new_record(
    id: String,
    tenant: String,
    account: String,
    command: CaptureCommand,
    capture_sequence: u32,
    now: i64,
) -> CaptureRecord {
    let command = match AccountName::parse(&account) {
        Ok(name) => command.with_account(name),
        Err(_) => command,
    };
    CaptureRecord::processing(id, tenant, account, command, capture_sequence, now)
}

/// Fee rows, requested or reported.
pub fn fee_rows(
    capture_id: &str,
    source: &str,
    fees: &[PlatformFee],
) -> Vec<platform_fees::ActiveModel> {
    fees.iter()
        .map(|fee| platform_fees::ActiveModel {
            id: NotSet,
            capture_id: Set(capture_id.to_owned()),
            source: Set(source.to_owned()),
            currency_code: Set(fee.amount.currency().code().to_owned()),
            amount_minor: Set(fee.amount.minor_units()),
            payee_email: Set(match &fee.payee {
                Some(FeePayee::Email(e)) => Some(e.as_str().to_owned()),
                _ => None,
            }),
            payee_merchant_id: Set(match &fee.payee {
                Some(FeePayee::MerchantId(m)) => Some(m.as_str().to_owned()),
                _ => None,
            }),
        })
        .collect()
}

fn split(m: &Option<Money>) -> (Option<String>, Option<i64>) {
    (
        m.map(|m| m.currency().code().to_owned()),
        m.map(|m| m.minor_units()),
    )
}

/// The breakdown row.
pub fn breakdown_row(
    capture_id: &str,
    b: &SellerReceivableBreakdown,
) -> seller_receivable_breakdowns::ActiveModel {
    let (gross_currency, gross_minor) = split(&b.gross_amount);
    let (fee_currency, fee_minor) = split(&b.provider_fee);
    let (fee_recv_currency, fee_recv_minor) = split(&b.provider_fee_in_receivable_currency);
    let (net_currency, net_minor) = split(&b.net_amount);
    let (recv_currency, recv_minor) = split(&b.receivable_amount);
    seller_receivable_breakdowns::ActiveModel {
        capture_id: Set(capture_id.to_owned()),
        gross_currency: Set(gross_currency),
        gross_minor: Set(gross_minor),
        provider_fee_currency: Set(fee_currency),
        provider_fee_minor: Set(fee_minor),
        provider_fee_receivable_currency: Set(fee_recv_currency),
        provider_fee_receivable_minor: Set(fee_recv_minor),
        net_currency: Set(net_currency),
        net_minor: Set(net_minor),
        receivable_currency: Set(recv_currency),
        receivable_minor: Set(recv_minor),
        exchange_source_currency: Set(b.exchange_rate.as_ref().map(|r| r.source_currency.clone())),
        exchange_target_currency: Set(b.exchange_rate.as_ref().map(|r| r.target_currency.clone())),
        exchange_rate: Set(b.exchange_rate.as_ref().map(|r| r.value.clone())),
    }
}

pub fn to_json_columns<T: serde::Serialize>(value: &Option<T>) -> Option<String> {
    to_json(value)
}

fn fees_from_rows(
    id: &str,
    rows: &[&platform_fees::Model],
) -> Result<Vec<PlatformFee>, StoreError> {
    rows.iter()
        .map(|row| {
            let amount = money(id, Some(&row.currency_code), Some(row.amount_minor))?
                .ok_or_else(|| corrupt(id, "fee amount"))?;
            let payee = match (&row.payee_email, &row.payee_merchant_id) {
                (Some(e), _) => Some(FeePayee::Email(
                    EmailAddress::parse(e).map_err(|e| corrupt(id, e))?,
                )),
                (None, Some(m)) => Some(FeePayee::MerchantId(
                    MerchantId::parse(m).map_err(|e| corrupt(id, e))?,
                )),
                (None, None) => None,
            };
            Ok(PlatformFee { amount, payee })
        })
        .collect()
}

/// A capture row with its breakdown and fees, back into a record. The row's strings move into
/// the record: a page of 100 records copied some 1,000 of them.
pub fn record_from_rows(
    row: captures::Model,
    breakdown: Option<&seller_receivable_breakdowns::Model>,
    fees: &[platform_fees::Model],
) -> Result<CaptureRecord, StoreError> {
    let captures::Model {
        id,
        tenant,
        request_id,
        provider,
        provider_account,
        authorization_id,
        currency_code,
        amount_minor,
        authorized_amount_minor,
        final_capture,
        invoice_id,
        note_to_payer,
        soft_descriptor,
        reference,
        metadata,
        disbursement_mode,
        status,
        status_reason,
        provider_reason,
        provider_capture_id,
        provider_status,
        captured_currency_code,
        captured_amount_minor,
        network_reference,
        seller_protection,
        processor_response,
        error_code,
        error_message,
        error_debug_id,
        error_http_status,
        create_time,
        update_time,
        capture_sequence,
        operation,
        refunded_minor,
        ..
    } = row;
    let at = id.as_str();
    let requested: Vec<&platform_fees::Model> =
        fees.iter().filter(|f| f.source == FEE_REQUESTED).collect();
    let reported: Vec<&platform_fees::Model> =
        fees.iter().filter(|f| f.source == FEE_REPORTED).collect();
    let metadata_map: BTreeMap<String, String> =
        serde_json::from_str(&metadata).map_err(|e| corrupt(at, e))?;
    let parts = CaptureParts {
        operation: Operation::parse(&operation).ok_or_else(|| corrupt(at, "operation"))?,
        provider: Provider::parse(&provider).ok_or_else(|| corrupt(at, "provider"))?,
        account: Some(AccountName::parse(&provider_account).map_err(|e| corrupt(at, e))?),
        authorization_id: AuthorizationId::parse_owned(authorization_id)
            .map_err(|e| corrupt(at, e))?,
        amount: money(at, currency_code.as_deref(), amount_minor)?,
        authorized_amount: money(at, currency_code.as_deref(), authorized_amount_minor)?,
        final_capture,
        invoice_id: text(at, invoice_id, InvoiceId::parse_owned)?,
        note_to_payer: text(at, note_to_payer, NoteToPayer::parse_owned)?,
        soft_descriptor: text(at, soft_descriptor, SoftDescriptor::parse_owned)?,
        reference: text(at, reference, Reference::parse_owned)?,
        metadata: Metadata::parse(metadata_map).map_err(|_| corrupt(at, "metadata"))?,
        platform_fees: fees_from_rows(at, &requested)?,
        disbursement_mode: disbursement_mode
            .as_deref()
            .map(|m| DisbursementMode::parse(m).ok_or_else(|| corrupt(at, "disbursement_mode")))
            .transpose()?,
        request_id: RequestId::parse_owned(request_id).map_err(|e| corrupt(at, e))?,
    };
    let command = CaptureCommand::new(parts).map_err(|e| corrupt(at, format!("{e:?}")))?;
    let breakdown = breakdown
        .map(|b| -> Result<SellerReceivableBreakdown, StoreError> {
            Ok(SellerReceivableBreakdown {
                gross_amount: money(at, b.gross_currency.as_deref(), b.gross_minor)?,
                provider_fee: money(at, b.provider_fee_currency.as_deref(), b.provider_fee_minor)?,
                provider_fee_in_receivable_currency: money(
                    at,
                    b.provider_fee_receivable_currency.as_deref(),
                    b.provider_fee_receivable_minor,
                )?,
                net_amount: money(at, b.net_currency.as_deref(), b.net_minor)?,
                receivable_amount: money(at, b.receivable_currency.as_deref(), b.receivable_minor)?,
                exchange_rate: match (
                    &b.exchange_source_currency,
                    &b.exchange_target_currency,
                    &b.exchange_rate,
                ) {
                    (Some(s), Some(t), Some(v)) => Some(ExchangeRate {
                        source_currency: s.clone(),
                        target_currency: t.clone(),
                        value: v.clone(),
                    }),
                    _ => None,
                },
                platform_fees: fees_from_rows(at, &reported)?,
            })
        })
        .transpose()?;
    let failure = error_code.map(|code| ProviderFailure {
        code,
        message: error_message.unwrap_or_default(),
        debug_id: error_debug_id,
        http_status: error_http_status
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0),
    });
    Ok(CaptureRecord {
        status: CaptureStatus::parse(&status).ok_or_else(|| corrupt(at, "status"))?,
        reason: status_reason
            .as_deref()
            .map(|r| StatusReason::parse(r).ok_or_else(|| corrupt(at, "status_reason")))
            .transpose()?,
        captured_amount: money(at, captured_currency_code.as_deref(), captured_amount_minor)?,
        refunded_amount: money(
            at,
            captured_currency_code
                .as_deref()
                .or(currency_code.as_deref()),
            refunded_minor,
        )?,
        breakdown,
        network_reference: json(at, &network_reference)?,
        seller_protection: json(at, &seller_protection)?,
        processor_response: json(at, &processor_response)?,
        failure,
        capture_sequence: u32::try_from(capture_sequence)
            .map_err(|_| corrupt(at, "capture_sequence"))?,
        provider_reason,
        provider_capture_id,
        provider_status,
        create_time,
        update_time,
        account: provider_account,
        tenant,
        command,
        id,
    })
}
