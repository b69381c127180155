//! PaymentOptions wire types ⇄ domain.
//!
//! The answer carries the **full card number** (`payment_details.card.number`). [`read_body`]
//! masks it (first six and last four digits) in the parsed JSON before anything else reads the
//! answer: the typed answer, the stored `redacted_body`, failures and log lines only ever see the
//! masked form. Any other run of 13 or more digits in the answer is masked the same way, in case
//! the card number also shows up elsewhere.
//!
//! `payment_details.response_code` is the capture's status: it maps through an exhaustive
//! `match` over the documented codes, and an undocumented code is an unknown outcome.

use std::borrow::Cow;

use serde_json::Value;

use super::wire::{self, ResponseCode};
use crate::domain::outcome::{ProcessorResponse, ProviderFailure};
use crate::domain::{
    CaptureCommand, CaptureStatus, Currency, Money, ProviderOutcome, StatusReason,
};

mod release;

pub use release::{void_request, voided};

/// The largest `amount` PaymentOptions takes: 10 digits of minor units.
pub const MAX_AMOUNT_MINOR_UNITS: i64 = 9_999_999_999;
/// `transactionId` length limit.
pub const MAX_TRANSACTION_ID_CHARS: usize = 36;
/// `notes` length limit.
pub const MAX_NOTES_CHARS: usize = 128;
/// Digit runs at least this long are treated as card numbers (PANs have 13 to 19 digits).
const PAN_MIN_DIGITS: usize = 13;

/// The capture body for a command, or `None` when the command has no amount (PaymentOptions has
/// no full-amount default; `check` refuses such commands before they get here).
pub fn request<'a>(
    command: &'a CaptureCommand,
    merchant_id: &'a str,
) -> Option<wire::CaptureRequest<'a>> {
    let parts = command.parts();
    let amount = parts.amount.as_ref()?;
    Some(wire::CaptureRequest {
        transaction_id: parts.authorization_id.as_str(),
        amount: amount.minor_units(),
        merchant_id,
        notes: notes(command).map(|(_, text)| text),
    })
}

/// What goes into `notes`, with the request field it comes from: `note_to_payer`, else our
/// `reference`.
pub fn notes(command: &CaptureCommand) -> Option<(&'static str, &str)> {
    let parts = command.parts();
    parts
        .note_to_payer
        .as_ref()
        .map(|n| ("note_to_payer", n.as_str()))
        .or_else(|| parts.reference.as_ref().map(|r| ("reference", r.as_str())))
}

/// An answer body read as JSON, with card numbers already masked.
#[derive(Debug)]
pub struct Parsed {
    /// The masked JSON, as kept in `redacted_body`.
    pub json: Value,
    pub answer: wire::Answer,
}

/// Reads an answer body. `Err` says why it cannot be read (not JSON, not the documented
/// envelope), without quoting the body.
pub fn read_body(body: &[u8]) -> Result<Parsed, String> {
    let mut json: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "answer is not JSON ({} at line {} column {})",
            category(&e),
            e.line(),
            e.column()
        )
    })?;
    redact(&mut json);
    // Deserialized from the masked JSON, so even a type error message cannot carry the number.
    let answer: wire::Answer = serde_json::from_value(json.clone())
        .map_err(|e| format!("answer does not match PaymentOptions' schema: {e}"))?;
    Ok(Parsed { json, answer })
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

/// Masks `payment_details.card.number` and every other long digit run in `json`, in place.
pub fn redact(json: &mut Value) {
    if let Some(number) = json.pointer_mut("/payment_details/card/number") {
        let masked = match number {
            Value::String(text) => Some(mask_card_number(text)),
            Value::Number(n) => Some(mask_card_number(&n.to_string())),
            _ => None,
        };
        if let Some(masked) = masked {
            *number = Value::String(masked);
        }
    }
    scrub(json);
}

fn scrub(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Cow::Owned(masked) = mask_pans(text) {
                *text = masked;
            }
        }
        Value::Number(n) => {
            let digits = n.to_string();
            if digits.chars().filter(char::is_ascii_digit).count() >= PAN_MIN_DIGITS {
                *value = Value::String(mask_pans(&digits).into_owned());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(fields) => fields.values_mut().for_each(scrub),
        Value::Null | Value::Bool(_) => {}
    }
}

/// A card number as `first six` + `*` + `last four` of its digits (`411111******1111`),
/// whatever separators it was written with. Fewer than 13 digits: only the last four are kept,
/// so a short or already masked value never reveals more than it did.
pub fn mask_card_number(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    if n >= PAN_MIN_DIGITS {
        let mut masked: String = digits[..6].iter().collect();
        masked.push_str(&"*".repeat(n - 10));
        masked.extend(&digits[n - 4..]);
        masked
    } else if number.chars().any(|c| c == '*' || c == 'X' || c == 'x') {
        // Already masked by PaymentOptions: kept as sent (at most ten digits show).
        number.to_owned()
    } else {
        let keep = n.min(4);
        let mut masked = "*".repeat(n - keep);
        masked.extend(&digits[n - keep..]);
        masked
    }
}

/// `text` with every run of 13 or more digits masked to its first six and last four.
pub fn mask_pans(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut run_start: Option<usize> = None;
    let bytes = text.as_bytes();
    let flush = |out: &mut Option<String>, start: usize, end: usize, done: usize| {
        let run = &text[start..end];
        if run.len() >= PAN_MIN_DIGITS {
            let buf = out.get_or_insert_with(|| String::with_capacity(text.len()));
            buf.push_str(&text[done..start]);
            buf.push_str(&run[..6]);
            buf.push_str(&"*".repeat(run.len() - 10));
            buf.push_str(&run[run.len() - 4..]);
            true
        } else {
            false
        }
    };
    let mut done = 0;
    for (i, b) in bytes.iter().enumerate() {
        match (b.is_ascii_digit(), run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                if flush(&mut out, start, i, done) {
                    done = i;
                }
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        if flush(&mut out, start, bytes.len(), done) {
            done = bytes.len();
        }
    }
    match out {
        Some(mut buf) => {
            buf.push_str(&text[done..]);
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(text),
    }
}

/// What a documented response code says about the capture (or void).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meaning {
    /// Done: captured, or voided (when `success` agrees).
    Approved,
    /// The issuer refused; nothing was captured.
    Declined,
    /// PaymentOptions did not say whether money moved.
    Unresolved(&'static str),
}

/// The response code's meaning: an exhaustive `match`, so a code added to the documented list
/// is a compile error here.
pub fn meaning(code: ResponseCode) -> Meaning {
    match code {
        ResponseCode::Approved => Meaning::Approved,
        // "Expired card" is the issuer's answer about the card, like the other two: a decline
        // of this capture, not a state of the authorization we could have checked.
        ResponseCode::DoNotHonour | ResponseCode::InsufficientFunds | ResponseCode::ExpiredCard => {
            Meaning::Declined
        }
        // A duplicate is a capture PaymentOptions has seen before: it may be ours, made by an
        // attempt whose answer was lost, and there is no lookup to tell.
        ResponseCode::Duplicate => Meaning::Unresolved(
            "response_code 94 (duplicate): PaymentOptions already has this capture; whether an \
             earlier attempt made it cannot be looked up",
        ),
        ResponseCode::GatewayError => Meaning::Unresolved(
            "response_code -1 (gateway error): the gateway failed and did not say whether the \
             capture reached the acquirer",
        ),
    }
}

/// The documented response code of an answer: `Ok(None)` when it has none, `Err` when it has
/// one that is not documented.
pub fn response_code(answer: &wire::Answer) -> Result<Option<ResponseCode>, String> {
    let Some(raw) = answer
        .payment_details
        .as_ref()
        .and_then(|p| p.response_code.as_ref())
    else {
        return Ok(None);
    };
    let code = wire::integer(raw)
        .ok_or_else(|| format!("unreadable payment_details.response_code {raw}"))?;
    ResponseCode::from_code(code)
        .map(Some)
        .ok_or_else(|| format!("undocumented payment_details.response_code {code}"))
}

/// A completed capture: `success: true`, response code 0.
pub fn completed(parsed: Parsed) -> ProviderOutcome {
    outcome(parsed, CaptureStatus::Completed, ResponseCode::Approved)
}

/// A declined capture (response code 5, 51 or 54): nothing was captured.
pub fn declined(parsed: Parsed, code: ResponseCode) -> ProviderOutcome {
    outcome(parsed, CaptureStatus::Declined, code)
}

fn outcome(parsed: Parsed, status: CaptureStatus, code: ResponseCode) -> ProviderOutcome {
    let Parsed { json, answer } = parsed;
    let code_text = code.code().to_string();
    ProviderOutcome {
        status,
        // The response code is the only reason PaymentOptions gives; it has no closer match
        // among ours, so `OTHER` points at `provider_reason`.
        reason: match status {
            CaptureStatus::Completed => None,
            _ => Some(StatusReason::Other),
        },
        provider_capture_id: answer.transaction_id().map(str::to_owned),
        provider_status: answer
            .gateway_code()
            .map_or_else(|| format!("RESPONSE_CODE_{code_text}"), str::to_owned),
        provider_reason: match status {
            CaptureStatus::Completed => None,
            _ => Some(code_text.clone()),
        },
        captured_amount: match status {
            CaptureStatus::Completed => captured_amount(&answer),
            _ => None,
        },
        // PaymentOptions reports no fees.
        breakdown: None,
        network_reference: None,
        seller_protection: None,
        processor_response: Some(ProcessorResponse {
            avs_code: None,
            cvv_code: None,
            response_code: Some(code_text),
            payment_advice_code: None,
        }),
        redacted_body: Some(json.into()),
    }
}

/// `payment_details.amount` (minor units) in `payment_details.currency`; `None` if either is
/// missing or unreadable (the status stays definite; the raw answer is kept).
pub fn captured_amount(answer: &wire::Answer) -> Option<Money> {
    let details = answer.payment_details.as_ref()?;
    let currency = Currency::from_code(details.currency.as_deref()?)?;
    let minor = details.amount.as_ref().and_then(wire::integer)?;
    Money::checked_from_minor_units(currency, minor)
}

/// PaymentOptions' refusal as a failure: `code` is `gateway_response.code` (else the response
/// code, else the HTTP status); `message` carries the response code too. Provider text is
/// masked once more, in case it quotes a card number.
pub fn failure(parsed: Option<&Parsed>, http_status: u16) -> ProviderFailure {
    let answer = parsed.map(|p| &p.answer);
    let code = answer.and_then(|a| a.response_code());
    let reason = http::StatusCode::from_u16(http_status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut message = answer
        .and_then(|a| a.gateway_message().or(a.message.as_deref()))
        .unwrap_or(reason)
        .to_owned();
    if let Some(code) = code {
        message = format!("{message} (response_code {code})");
    }
    ProviderFailure {
        code: mask_pans(
            &answer
                .and_then(wire::Answer::gateway_code)
                .map(str::to_owned)
                .or_else(|| code.map(|c| format!("RESPONSE_CODE_{c}")))
                .unwrap_or_else(|| format!("HTTP_{http_status}")),
        )
        .into_owned(),
        message: mask_pans(&message).into_owned(),
        debug_id: answer
            .and_then(wire::Answer::transaction_id)
            .map(|id| mask_pans(id).into_owned()),
        http_status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAN: &str = "5200000000001005";

    /// The documented success answer (seed 001).
    fn documented() -> String {
        format!(
            r#"{{"success": true, "status_code": 201, "is_live": false,
            "transaction_type": "CAPTURE",
            "gateway_response": {{"version": "1", "type": "INFO",
              "message": "Amount successfully captured.", "code": "INFO0001"}},
            "merchant_details": {{"legal_name": "Tink15 Factory", "mid": "M1",
              "merchant_txn_ref": "qwe"}},
            "payment_details": {{"amount": 1000, "response_code": 0, "auth_code": "264302",
              "currency": "JPY", "payment_method": "ECMC-SSL", "scheme": "MASTERCARD",
              "card": {{"name": "John Doe", "number": "{PAN}", "exp_month": "12",
                "exp_year": "24"}},
              "additional_data": {{"payment_data_source": {{"type": "card"}}}}}},
            "transaction_details": {{"id": "9dfd39ec-eb4a-4f8b-a526-17abf140a717",
              "ref": 74819, "timestamp": "2024-11-25T08:41:15.000Z",
              "merchant_txn_ref": "qwe"}}}}"#
        )
    }

    #[test]
    fn the_card_number_is_masked_before_anything_reads_the_answer() -> Result<(), String> {
        let parsed = read_body(documented().as_bytes())?;
        let text = parsed.json.to_string();
        assert!(!text.contains(PAN));
        assert_eq!(
            parsed.json["payment_details"]["card"]["number"],
            "520000******1005"
        );
        assert!(!format!("{:?}", parsed.answer).contains(PAN));
        let outcome = completed(parsed);
        assert!(!format!("{outcome:?}").contains(PAN));
        Ok(())
    }

    #[test]
    fn the_documented_answer_reads_as_a_completed_capture() -> Result<(), String> {
        let outcome = completed(read_body(documented().as_bytes())?);
        assert_eq!(outcome.status, CaptureStatus::Completed);
        assert_eq!(outcome.provider_status, "INFO0001");
        assert_eq!(
            outcome.provider_capture_id.as_deref(),
            Some("9dfd39ec-eb4a-4f8b-a526-17abf140a717")
        );
        assert_eq!(outcome.captured_amount, Money::parse("JPY", "1000").ok());
        assert_eq!(outcome.breakdown, None);
        let processor = outcome.processor_response.ok_or("processor response")?;
        assert_eq!(processor.response_code.as_deref(), Some("0"));
        Ok(())
    }

    #[test]
    fn card_numbers_keep_only_six_and_four_digits() {
        assert_eq!(mask_card_number("4111111111111111"), "411111******1111");
        assert_eq!(mask_card_number("4111 1111 1111 1111"), "411111******1111");
        assert_eq!(mask_card_number("4222222222222"), "422222***2222");
        assert_eq!(mask_card_number("520000******1005"), "520000******1005");
        assert_eq!(mask_card_number("12345678"), "****5678");
        assert_eq!(
            mask_pans("card 4111111111111111 declined, ref 74819"),
            "card 411111******1111 declined, ref 74819"
        );
        assert_eq!(
            mask_pans("no numbers here 2024-11-25"),
            "no numbers here 2024-11-25"
        );
        assert_eq!(mask_pans("6011000990139424"), "601100******9424");
    }

    #[test]
    fn a_card_number_elsewhere_or_as_a_json_number_is_masked_too() -> Result<(), String> {
        let body = br#"{"success": false, "payment_details": {"card": {"number": 4111111111111111},
            "additional_data": {"pan": "4111111111111111", "note": "x4111111111111111y"}}}"#;
        let parsed = read_body(body)?;
        let text = parsed.json.to_string();
        assert!(!text.contains("4111111111111111"), "{text}");
        assert_eq!(
            parsed.json["payment_details"]["card"]["number"],
            "411111******1111"
        );
        Ok(())
    }

    #[test]
    fn every_documented_response_code_has_a_meaning() {
        let cases = [
            (0, Meaning::Approved),
            (5, Meaning::Declined),
            (51, Meaning::Declined),
            (54, Meaning::Declined),
        ];
        for (code, expected) in cases {
            assert_eq!(ResponseCode::from_code(code).map(meaning), Some(expected));
        }
        for code in [94, -1] {
            assert!(matches!(
                ResponseCode::from_code(code).map(meaning),
                Some(Meaning::Unresolved(_))
            ));
        }
        assert_eq!(ResponseCode::from_code(12), None);
        for code in [0, 5, 51, 54, 94, -1] {
            assert_eq!(
                ResponseCode::from_code(code).map(ResponseCode::code),
                Some(code)
            );
        }
    }

    #[test]
    fn an_undocumented_or_unreadable_response_code_is_an_error() -> Result<(), String> {
        let parsed = read_body(br#"{"payment_details": {"response_code": 12}}"#)?;
        assert!(response_code(&parsed.answer).is_err());
        let parsed = read_body(br#"{"payment_details": {"response_code": "05"}}"#)?;
        assert_eq!(
            response_code(&parsed.answer),
            Ok(Some(ResponseCode::DoNotHonour))
        );
        let parsed = read_body(br#"{"payment_details": {"response_code": true}}"#)?;
        assert!(response_code(&parsed.answer).is_err());
        let parsed = read_body(br#"{"success": false}"#)?;
        assert_eq!(response_code(&parsed.answer), Ok(None));
        Ok(())
    }

    #[test]
    fn a_failure_keeps_the_gateway_code_and_the_response_code() -> Result<(), String> {
        let parsed = read_body(
            br#"{"success": false, "gateway_response": {"type": "ERROR",
                "code": "ERR1004", "message": "Too much for 4111111111111111"},
                "payment_details": {"response_code": 0},
                "transaction_details": {"id": "t-1"}}"#,
        )?;
        let failure = failure(Some(&parsed), 412);
        assert_eq!(failure.code, "ERR1004");
        assert_eq!(
            failure.message,
            "Too much for 411111******1111 (response_code 0)"
        );
        assert_eq!(failure.debug_id.as_deref(), Some("t-1"));
        assert_eq!(failure.http_status, 412);
        let bare = super::failure(None, 502);
        assert_eq!(
            (bare.code.as_str(), bare.message.as_str()),
            ("HTTP_502", "Bad Gateway")
        );
        Ok(())
    }

    #[test]
    fn a_body_that_is_not_json_is_reported_without_quoting_it() {
        let result = read_body(b"<html>4111111111111111</html>");
        assert!(
            result.as_ref().is_err_and(|e| !e.contains("4111")),
            "{result:?}"
        );
    }
}
