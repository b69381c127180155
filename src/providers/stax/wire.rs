//! Stax (formerly Fattmerchant) wire types and the two JSON helpers Stax's money needs.
//!
//! Stax writes amounts as JSON *numbers* in major units (`"total": 12.34`). serde_json, as this
//! crate builds it (no `arbitrary_precision`), only keeps such numbers as `f64`, which would
//! turn `0.10` into `0.1` and lose digits of large amounts. So amounts never go through
//! serde_json's number type: requests are written with [`encode_object`], which places a
//! number's exact text, and answers are read with [`top_level_number`], which returns a number's
//! exact text as Stax wrote it. Everything else is ordinary serde.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde::Deserialize;

/// One top-level field of an object written by [`encode_object`].
#[derive(Debug, Clone)]
pub enum Field {
    /// A JSON number, written exactly as this text (which must be a valid JSON number).
    Number(String),
    /// Any other JSON value, written by serde_json.
    Json(serde_json::Value),
}

/// Writes a JSON object from its fields in order, numbers verbatim. `Err` names a number text
/// that is not a JSON number (a bug in the caller, never sent).
pub fn encode_object<'a>(
    fields: impl IntoIterator<Item = (&'a str, Field)>,
) -> Result<Vec<u8>, String> {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(key).to_string());
        out.push(':');
        match value {
            Field::Number(text) if is_json_number(&text) => out.push_str(&text),
            Field::Number(text) => return Err(format!("{text:?} is not a JSON number")),
            Field::Json(value) => {
                let _ = write!(out, "{value}");
            }
        }
    }
    out.push('}');
    Ok(out.into_bytes())
}

/// A JSON number's text as an exact decimal (exponents allowed, as JSON allows them).
pub fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    if !is_json_number(text) {
        return None;
    }
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(text).ok()
    } else {
        Decimal::from_str_exact(text).ok()
    }
}

/// RFC 8259 `number`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
pub fn is_json_number(text: &str) -> bool {
    let rest = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let int_ok = digits(int) && (int == "0" || !int.starts_with('0'));
    let frac_ok = frac.is_none_or(digits);
    let exp_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    int_ok && frac_ok && exp_ok
}

/// The exact text of the number stored under `key` in the top-level object of `body`, as
/// written (`"12.30"` stays `12.30`). `None` when the body is not an object, the key is absent,
/// or its value is not a number. With a repeated key the last one counts, as in serde_json.
pub fn top_level_number<'a>(body: &'a [u8], key: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(body).ok()?;
    let bytes = text.as_bytes();
    let is_ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let skip_ws = |mut at: usize| {
        while bytes.get(at).is_some_and(|b| is_ws(*b)) {
            at += 1;
        }
        at
    };
    let mut i = skip_ws(0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut depth = 1_usize;
    let mut expect_key = true;
    let mut found = None;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                let end = string_end(bytes, start)?;
                i = end + 1;
                if depth == 1 && expect_key {
                    expect_key = false;
                    if &text[start..end] == key {
                        let mut at = skip_ws(i);
                        if bytes.get(at) != Some(&b':') {
                            return None;
                        }
                        at = skip_ws(at + 1);
                        let value_start = at;
                        while bytes.get(at).is_some_and(|b| {
                            matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                        }) {
                            at += 1;
                        }
                        let value = &text[value_start..at];
                        found = is_json_number(value).then_some(value);
                        i = at;
                    }
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return found;
                }
            }
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the quote closing a JSON string whose content starts at `start`.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// A Stax transaction object, as `POST /transaction/{id}/capture` and `GET /transaction/{id}`
/// return it. Every field is optional and unknown fields are ignored: Stax adds fields without
/// notice, and an extra field must never turn a capture into an unknown outcome. `total` and
/// `total_refunded` are read exactly with [`top_level_number`]; here they are only looked at
/// for their JSON type.
#[derive(Debug, Default, Deserialize)]
pub struct Transaction {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub success: Option<bool>,
    pub message: Option<String>,
    pub total: Option<serde_json::Value>,
    pub currency: Option<String>,
    pub method: Option<String>,
    pub pre_auth: Option<bool>,
    pub is_voided: Option<bool>,
    pub total_refunded: Option<serde_json::Value>,
    pub reference_id: Option<String>,
}

/// The currency of the pre-authorization a `GET /transaction/{id}` answer describes, upper-cased;
/// `None` when the answer has no (or an empty) `currency`. `Err` says why it cannot be read.
pub fn pre_auth_currency(body: &[u8]) -> Result<Option<String>, String> {
    let transaction: Transaction = serde_json::from_slice(body)
        .map_err(|e| format!("pre-authorization answer does not match Stax's schema: {e}"))?;
    Ok(transaction
        .currency
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty()))
}

/// The documented fields of a transaction object: the only ones kept in the stored body.
/// Anything else Stax may add (nested customer or payment method objects with personal data)
/// is dropped rather than stored.
pub const TRANSACTION_FIELDS: [&str; 19] = [
    "id",
    "type",
    "success",
    "message",
    "total",
    "currency",
    "method",
    "meta",
    "pre_auth",
    "is_refundable",
    "is_voidable",
    "is_voided",
    "total_refunded",
    "customer_id",
    "payment_method_id",
    "reference_id",
    "last_four",
    "created_at",
    "updated_at",
];

/// What a transaction answer says happened to the capture, read from `success`, `is_voided`
/// and `total_refunded` (Stax has no status field). The mapping to our status is an exhaustive
/// `match` over this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// `success: true`, nothing refunded.
    Captured,
    /// `success: true`, `0 < total_refunded < total`.
    PartiallyRefunded,
    /// `success: true`, `total_refunded >= total`.
    Refunded,
    /// `success: false`: the processor refused; `message` says why.
    Declined,
}

impl State {
    /// The Stax fields that decided the state, kept as the provider status.
    pub fn as_provider_status(&self) -> &'static str {
        match self {
            State::Captured => "success=true",
            State::PartiallyRefunded => "success=true,partially_refunded",
            State::Refunded => "success=true,refunded",
            State::Declined => "success=false",
        }
    }
}

/// What a transaction answer to a void says, read from `success` and `is_voided`. Which
/// transaction Stax answers a void with (the pre-authorization, now voided, or a new void
/// transaction) is not confirmed, so both readings are kept; the mapping to our status is an
/// exhaustive `match` over this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoidState {
    /// `is_voided: true`.
    Voided,
    /// `success: true`, without `is_voided: true`.
    Succeeded,
    /// `success: false`: the processor refused the void; `message` says why.
    Declined,
}

impl VoidState {
    /// The Stax fields that decided the state, kept as the provider status.
    pub fn as_provider_status(&self) -> &'static str {
        match self {
            VoidState::Voided => "is_voided=true",
            VoidState::Succeeded => "success=true",
            VoidState::Declined => "success=false",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_and_read_back_verbatim() -> Result<(), String> {
        let body = encode_object([
            ("total", Field::Number("0.10".into())),
            ("meta", Field::Json(serde_json::json!({"total": 5}))),
            ("idempotency_id", Field::Json("k\"1".into())),
        ])?;
        let text = String::from_utf8(body.clone()).map_err(|e| e.to_string())?;
        assert_eq!(
            text,
            r#"{"total":0.10,"meta":{"total":5},"idempotency_id":"k\"1"}"#
        );
        assert_eq!(top_level_number(&body, "total"), Some("0.10"));
        assert!(encode_object([("total", Field::Number("1,5".into()))]).is_err());
        Ok(())
    }

    #[test]
    fn only_the_top_level_number_is_read() {
        let body = br#" { "meta": {"total": 1, "x": "\"total\": 2"}, "a": [1, {"total": 3}],
            "total" : 99999999.99 , "total_refunded": 0 }"#;
        assert_eq!(top_level_number(body, "total"), Some("99999999.99"));
        assert_eq!(top_level_number(body, "total_refunded"), Some("0"));
        assert_eq!(top_level_number(body, "missing"), None);
        assert_eq!(top_level_number(br#"{"total":"12.34"}"#, "total"), None);
        assert_eq!(top_level_number(br#"[{"total":1}]"#, "total"), None);
        assert_eq!(
            top_level_number(br#"{"total":1.5e2}"#, "total"),
            Some("1.5e2")
        );
        assert_eq!(top_level_number(br#"{"total":1"#, "total"), None);
    }

    #[test]
    fn a_pre_authorizations_currency_is_read_only_when_it_is_there() -> Result<(), String> {
        let body = br#"{"id":"pa-1","type":"pre_auth","pre_auth":true,"total":10,
            "currency":" usd ","is_voided":false,"customer":{"currency":"EUR"}}"#;
        assert_eq!(pre_auth_currency(body)?.as_deref(), Some("USD"));
        let absent: [&[u8]; 3] = [
            br#"{"id":"pa-1"}"#,
            br#"{"currency":null}"#,
            br#"{"currency":""}"#,
        ];
        for body in absent {
            assert_eq!(pre_auth_currency(body)?, None);
        }
        let unreadable: [&[u8]; 3] = [b"<html>oops</html>", br#"{"currency":840}"#, br#"["USD"]"#];
        for body in unreadable {
            assert!(pre_auth_currency(body).is_err(), "{body:?}");
        }
        Ok(())
    }

    #[test]
    fn json_numbers_follow_rfc_8259() {
        for good in ["0", "-1", "12.34", "0.10", "1e5", "1.5E-3", "99999999.99"] {
            assert!(is_json_number(good), "{good}");
        }
        for bad in ["", "01", "1.", ".5", "+1", "1e", "NaN", "1,5", "--1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}
