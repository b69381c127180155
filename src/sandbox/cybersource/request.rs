//! The emulated Cybersource's reading of a capture request: its shape, its capture options and
//! its amount.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;

use super::replies::invalid;
use super::Reply;
use crate::domain::Money;

/// The capture request; fields the emulator does not use are accepted and ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CaptureRequest {
    pub(super) client_reference_information: Option<ClientReference>,
    pub(super) order_information: Option<OrderInformation>,
    pub(super) processing_information: Option<ProcessingInformation>,
    #[serde(default)]
    pub(super) merchant_defined_information: Vec<MerchantDefined>,
}

#[derive(Deserialize)]
pub(super) struct ClientReference {
    pub(super) code: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OrderInformation {
    pub(super) amount_details: Option<AmountDetails>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AmountDetails {
    pub(super) total_amount: Option<String>,
    pub(super) currency: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProcessingInformation {
    pub(super) capture_options: Option<CaptureOptions>,
}

/// Cybersource's samples write these as strings or numbers/booleans; both are taken.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CaptureOptions {
    pub(super) capture_sequence_number: Option<Value>,
    pub(super) total_capture_count: Option<Value>,
    pub(super) is_final: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct MerchantDefined {
    pub(super) key: Option<String>,
    pub(super) value: Option<String>,
}
pub(super) const SEQUENCE: &str = "processingInformation.captureOptions.captureSequenceNumber";

/// What a capture's options say of its place in the authorization's captures.
pub(super) struct Numbering {
    /// `captureSequenceNumber`, when sent.
    pub(super) sequence: Option<u64>,
    /// Whether it closes the authorization (`isFinal`, or the sequence reaching the total).
    pub(super) closes: bool,
}

/// The capture options read; `Err` for values out of 1..=99 or a sequence above its total.
pub(super) fn numbering(options: Option<&CaptureOptions>) -> Result<Numbering, Reply> {
    let Some(options) = options else {
        return Ok(Numbering {
            sequence: None,
            closes: false,
        });
    };
    let number = |value: &Option<Value>, field: &str| -> Result<Option<u64>, Reply> {
        let parsed = match value {
            None => return Ok(None),
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            Some(_) => None,
        };
        match parsed {
            Some(n @ 1..=99) => Ok(Some(n)),
            _ => Err(invalid("INVALID_DATA", Some(field), "")),
        }
    };
    let sequence = number(&options.capture_sequence_number, SEQUENCE)?;
    let total = number(
        &options.total_capture_count,
        "processingInformation.captureOptions.totalCaptureCount",
    )?;
    let is_final = match &options.is_final {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(_) => {
            let at = "processingInformation.captureOptions.isFinal";
            return Err(invalid("INVALID_DATA", Some(at), ""));
        }
    };
    match (sequence, total) {
        (Some(s), Some(t)) if s > t => Err(invalid("INVALID_DATA", Some(SEQUENCE), "")),
        (Some(s), Some(t)) => Ok(Numbering {
            sequence: Some(s),
            closes: is_final || s == t,
        }),
        (Some(_), None) | (None, Some(_)) => Err(invalid(
            "MISSING_FIELD",
            Some(if sequence.is_none() {
                SEQUENCE
            } else {
                "processingInformation.captureOptions.totalCaptureCount"
            }),
            "",
        )),
        (None, None) => Ok(Numbering {
            sequence: None,
            closes: is_final,
        }),
    }
}

/// The request's `clientReferenceInformation.code` (empty when absent), at most 50 characters;
/// else `INVALID_DATA` naming it.
pub(super) fn reference_code(client: Option<ClientReference>) -> Result<String, Reply> {
    let code = client.and_then(|c| c.code).unwrap_or_default();
    if code.chars().count() > 50 {
        let at = Some("clientReferenceInformation.code");
        return Err(invalid("INVALID_DATA", at, ""));
    }
    Ok(code)
}

/// A positive decimal with at most the currency's decimals; else `INVALID_AMOUNT` naming
/// `field`.
pub(super) fn parse_amount(value: &str, authorized: Money, field: &str) -> Result<Money, Reply> {
    let currency = authorized.currency();
    let well_formed = !value.is_empty()
        && value.len() <= 19
        && value.chars().all(|c| c.is_ascii_digit() || c == '.')
        && value.matches('.').count() <= 1;
    let amount = value
        .parse::<Decimal>()
        .ok()
        .filter(|a| well_formed && *a > Decimal::ZERO && a.scale() <= currency.exponent());
    amount
        .and_then(|a| Money::from_decimal(currency, a).ok())
        .ok_or_else(|| invalid("INVALID_AMOUNT", Some(field), ""))
}
