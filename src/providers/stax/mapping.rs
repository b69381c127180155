//! Stax wire ⇄ domain: the capture body for a command, a transaction answer (to a capture or a
//! void) as an outcome, and Stax's error bodies as failures. Stax has no status field; [`wire::State`] is derived from
//! `success`, `is_voided` and `total_refunded`, and maps to our status through an exhaustive
//! `match`. Whatever does not fit what Stax documents is an unknown outcome, never a guess.

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::wire::{self, Field};
use crate::domain::outcome::ProviderFailure;
use crate::domain::{CaptureCommand, CaptureStatus, Currency, Money, ProviderOutcome};

mod release;

pub use release::{already_voided, says_already_voided, void_code_for_400, void_outcome};

/// The key of `meta` that carries the caller's `reference`.
pub const REFERENCE_META_KEY: &str = "reference";

/// The failure code of a capture refused because its amount is in another currency than the
/// pre-authorization's. The service's own code, not Stax's: Stax never saw the capture.
pub const CURRENCY_MISMATCH: &str = "CURRENCY_MISMATCH";

/// Refuses a capture of an amount in `asked` on a pre-authorization held in `held`: a capture's
/// `total` carries no currency, so Stax would take the amount in `held`. Not sent, hence
/// `http_status` 0.
pub fn check_currency(
    transaction_id: &str,
    held: &str,
    asked: Currency,
) -> Result<(), ProviderFailure> {
    if held == asked.code() {
        return Ok(());
    }
    Err(ProviderFailure {
        code: CURRENCY_MISMATCH.to_owned(),
        message: format!(
            "pre-authorization {transaction_id} is in {held}, the capture asks for {asked}: not \
             sent, since Stax would capture the amount in {held}"
        ),
        debug_id: None,
        http_status: 0,
    })
}

/// `POST /transaction/{id}/capture` body: `total` (major units, a JSON number with exactly the
/// currency's decimals; absent = the full pre-authorized amount), `meta` (the caller's metadata
/// plus `reference`; absent when both are empty) and `idempotency_id` (always).
pub fn request(command: &CaptureCommand, idempotency_key: &str) -> Result<Vec<u8>, String> {
    let parts = command.parts();
    let mut fields = Vec::with_capacity(3);
    if let Some(amount) = &parts.amount {
        fields.push(("total", Field::Number(amount.to_major_string())));
    }
    let mut meta: Map<String, Value> = parts
        .metadata
        .entries()
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    if let Some(reference) = &parts.reference {
        meta.insert(
            REFERENCE_META_KEY.to_owned(),
            Value::from(reference.as_str()),
        );
    }
    if !meta.is_empty() {
        fields.push(("meta", Field::Json(Value::Object(meta))));
    }
    fields.push(("idempotency_id", Field::Json(Value::from(idempotency_key))));
    wire::encode_object(fields)
}

/// Reads a 200 transaction answer to a capture of `command`. `Err` carries why the answer cannot
/// be trusted (not JSON, no `success`, a voided transaction, unreadable or foreign money): the
/// caller reports the outcome as unknown.
pub fn outcome(body: &[u8], command: &CaptureCommand) -> Result<ProviderOutcome, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("transaction answer is not JSON: {e}"))?;
    let Value::Object(object) = &json else {
        return Err("transaction answer is not a JSON object".to_owned());
    };
    let transaction: wire::Transaction = serde_json::from_value(json.clone())
        .map_err(|e| format!("transaction answer does not match Stax's schema: {e}"))?;
    let currency = answer_currency(transaction.currency.as_deref(), command)?;
    let total = exact_amount(body, "total", transaction.total.as_ref())?;
    let refunded = exact_amount(body, "total_refunded", transaction.total_refunded.as_ref())?;
    let state = state_of(&transaction, total, refunded)?;
    let status = status_from_wire(state);
    let captured_amount = match (status.holds_funds(), currency, total) {
        (true, Some(currency), Some(total)) => Some(
            Money::from_decimal(currency, total)
                .map_err(|e| format!("unreadable total {total} {currency}: {e}"))?,
        ),
        _ => None,
    };
    let message = transaction.message.filter(|m| !m.trim().is_empty());
    // Every transaction Stax answers with names itself; a body that does not is no answer.
    let id = (transaction.id.as_deref())
        .filter(|id| !id.is_empty())
        .ok_or("transaction answer without the transaction's id")?
        .to_owned();
    Ok(ProviderOutcome {
        status,
        reason: None,
        provider_capture_id: Some(id),
        provider_status: state.as_provider_status().to_owned(),
        // Stax's own words, kept verbatim: on a decline, the processor's reason.
        provider_reason: message,
        captured_amount,
        breakdown: None,
        network_reference: None,
        seller_protection: None,
        processor_response: None,
        redacted_body: Some(redact(object).into()),
    })
}

/// Stax's transaction state as our status.
pub fn status_from_wire(state: wire::State) -> CaptureStatus {
    match state {
        wire::State::Captured => CaptureStatus::Completed,
        wire::State::PartiallyRefunded => CaptureStatus::PartiallyRefunded,
        wire::State::Refunded => CaptureStatus::Refunded,
        wire::State::Declined => CaptureStatus::Declined,
    }
}

/// Derives the state from the fields Stax documents; an answer without `success`, or a voided
/// transaction (which a capture answer never documents), is not trusted.
fn state_of(
    transaction: &wire::Transaction,
    total: Option<Decimal>,
    refunded: Option<Decimal>,
) -> Result<wire::State, String> {
    match (transaction.success, transaction.is_voided) {
        (None, _) => Err("transaction answer has no success flag".to_owned()),
        (Some(false), _) => Ok(wire::State::Declined),
        (Some(true), Some(true)) => Err("Stax reports the transaction as voided".to_owned()),
        (Some(true), Some(false) | None) => Ok(match (refunded, total) {
            (Some(r), _) if r <= Decimal::ZERO => wire::State::Captured,
            (None, _) => wire::State::Captured,
            (Some(r), Some(t)) if r < t => wire::State::PartiallyRefunded,
            (Some(_), _) => wire::State::Refunded,
        }),
    }
}

/// The currency to read amounts in: the answer's, which must be the command's when the command
/// names one (Stax captures in the pre-authorization's currency and takes none in the request;
/// a capture in another currency than asked is not recorded as if it were the one asked for).
fn answer_currency(
    answered: Option<&str>,
    command: &CaptureCommand,
) -> Result<Option<Currency>, String> {
    let parts = command.parts();
    let asked = parts
        .amount
        .or(parts.authorized_amount)
        .map(|m| m.currency());
    let Some(code) = answered.map(str::trim).filter(|c| !c.is_empty()) else {
        return Ok(asked);
    };
    let answered = Currency::from_code(&code.to_ascii_uppercase())
        .ok_or_else(|| format!("unknown currency {code:?} in the transaction answer"))?;
    match asked {
        Some(asked) if asked != answered => Err(format!(
            "Stax captured in {answered} but the capture asked for {asked}"
        )),
        _ => Ok(Some(answered)),
    }
}

/// An amount field read exactly: a JSON number (its text as written) or a numeric string.
/// Absent or `null` is `None`; anything else, or a negative amount, is an error.
fn exact_amount(body: &[u8], key: &str, value: Option<&Value>) -> Result<Option<Decimal>, String> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(_)) => wire::top_level_number(body, key)
            .ok_or_else(|| format!("{key} could not be read exactly"))?,
        Some(Value::String(text)) => text.as_str(),
        Some(other) => return Err(format!("{key} is not a number: {other}")),
    };
    let amount =
        wire::parse_decimal(text).ok_or_else(|| format!("{key} {text:?} is not a decimal"))?;
    if amount.is_sign_negative() {
        return Err(format!("{key} {text} is negative"));
    }
    Ok(Some(amount))
}

/// The transaction object with only its documented fields: nothing Stax might add (customer
/// or payment-method objects, card data) reaches the store.
fn redact(object: &Map<String, Value>) -> Value {
    Value::Object(
        object
            .iter()
            .filter(|(k, _)| wire::TRANSACTION_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// A stable code for a 400's message: Stax answers these with words only.
pub fn code_for_400(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("already") && m.contains("captur") {
        "ALREADY_CAPTURED"
    } else if m.contains("expired") {
        "EXPIRED"
    } else if m.contains("void") {
        "VOIDED"
    } else if m.contains("more than") || m.contains("exceed") || m.contains("greater than") {
        "AMOUNT_EXCEEDS_PREAUTH"
    } else {
        "BAD_REQUEST"
    }
}

/// A 422 body `{field: [messages]}` as a code naming the first field (`INVALID_TOTAL`) and a
/// message listing every field's messages (`total: The total must be a number.`).
pub fn validation_failure(body: &Value) -> Option<(String, String)> {
    let Value::Object(fields) = body else {
        return None;
    };
    let mut lines = Vec::new();
    let mut first = None;
    for (field, messages) in fields {
        let texts: Vec<&str> = match messages {
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            Value::String(text) => vec![text.as_str()],
            _ => continue,
        };
        if texts.is_empty() {
            continue;
        }
        first.get_or_insert_with(|| field.clone());
        lines.push(format!("{field}: {}", texts.join(" ")));
    }
    let field = first?;
    let code = format!(
        "INVALID_{}",
        field
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            })
            .collect::<String>()
    );
    Some((code, lines.join("; ")))
}

/// The human message of a Stax error body: `message`, `error` or `errors` (a string or a list
/// of strings), whichever comes first.
pub fn error_message(body: &Value) -> Option<String> {
    ["message", "error", "errors"]
        .iter()
        .find_map(|key| match body.get(key)? {
            Value::String(text) if !text.trim().is_empty() => Some(text.clone()),
            Value::Array(items) => {
                let texts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                (!texts.is_empty()).then(|| texts.join(" "))
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::capture::{AuthorizationId, CaptureParts, Metadata, Reference, RequestId};
    use crate::domain::Provider;

    fn command(amount: Option<(&str, &str)>) -> Result<CaptureCommand, String> {
        let amount = amount
            .map(|(c, v)| Money::parse_positive(c, v))
            .transpose()
            .map_err(|e| e.to_string())?;
        CaptureCommand::new(CaptureParts {
            operation: crate::domain::Operation::Capture,
            provider: Provider::Stax,
            account: None,
            authorization_id: AuthorizationId::parse("8e1d5b5c-1c1a-4c8e-9d7a-0f6c3b2a1e11")?,
            amount,
            authorized_amount: None,
            final_capture: false,
            invoice_id: None,
            note_to_payer: None,
            soft_descriptor: None,
            reference: Some(Reference::parse("order-7")?),
            metadata: Metadata::parse([("k".to_owned(), "v".to_owned())])
                .map_err(|e| format!("{e:?}"))?,
            platform_fees: vec![],
            disbursement_mode: None,
            request_id: RequestId::parse("req-1")?,
        })
        .map_err(|e| format!("{e:?}"))
    }

    fn money(code: &str, value: &str) -> Option<Money> {
        Money::parse(code, value).ok()
    }

    #[test]
    fn the_body_carries_the_exact_total_meta_and_idempotency_id() -> Result<(), String> {
        for (currency, value, written) in [
            ("USD", "0.1", "0.10"),
            ("USD", "99999999.99", "99999999.99"),
            ("JPY", "1000", "1000"),
            ("TND", "1.5", "1.500"),
            ("BHD", "0.001", "0.001"),
        ] {
            let body = request(&command(Some((currency, value)))?, "cap_1")?;
            let text = String::from_utf8(body).map_err(|e| e.to_string())?;
            assert_eq!(
                text,
                format!(
                    r#"{{"total":{written},"meta":{{"k":"v","reference":"order-7"}},"idempotency_id":"cap_1"}}"#
                )
            );
        }
        let full = request(&command(None)?, "cap_2")?;
        assert_eq!(
            full,
            br#"{"meta":{"k":"v","reference":"order-7"},"idempotency_id":"cap_2"}"#
        );
        Ok(())
    }

    #[test]
    fn a_successful_transaction_is_completed_with_its_exact_total() -> Result<(), String> {
        let body = br#"{"id":"tx-1","type":"charge","success":true,"message":null,
            "total":99999999.99,"currency":"USD","method":"card","total_refunded":0,
            "is_voided":false,"last_four":"1111",
            "customer":{"email":"someone@example.com"}}"#;
        let outcome = super::outcome(body, &command(Some(("USD", "99999999.99")))?)?;
        assert_eq!(outcome.status, CaptureStatus::Completed);
        assert_eq!(outcome.provider_capture_id.as_deref(), Some("tx-1"));
        assert_eq!(outcome.captured_amount, money("USD", "99999999.99"));
        assert_eq!(outcome.provider_reason, None);
        let stored = outcome.redacted_body.ok_or("no body")?;
        assert!(
            stored.get("customer").is_none(),
            "undocumented fields dropped"
        );
        assert_eq!(stored["last_four"], "1111");
        Ok(())
    }

    #[test]
    fn a_missing_currency_is_the_commands_and_a_foreign_one_is_not_trusted() -> Result<(), String> {
        let body = br#"{"id":"tx-2","success":true,"total":1000}"#;
        let outcome = super::outcome(body, &command(Some(("JPY", "1000")))?)?;
        assert_eq!(outcome.captured_amount, money("JPY", "1000"));
        // A full capture without currency anywhere: the amount is not invented.
        let outcome = super::outcome(body, &command(None)?)?;
        assert_eq!(outcome.captured_amount, None);
        let usd = br#"{"id":"tx-3","success":true,"total":10,"currency":"USD"}"#;
        assert!(super::outcome(usd, &command(Some(("EUR", "10")))?).is_err());
        Ok(())
    }

    #[test]
    fn every_state_maps_and_doubtful_answers_are_not_trusted() -> Result<(), String> {
        let cmd = command(Some(("USD", "10.00")))?;
        let status = |body: &str| outcome(body.as_bytes(), &cmd).map(|o| o.status);
        assert_eq!(
            status(r#"{"id":"tx-1","success":true,"total":10,"total_refunded":4.5}"#)?,
            CaptureStatus::PartiallyRefunded
        );
        assert_eq!(
            status(r#"{"id":"tx-2","success":true,"total":10,"total_refunded":"10.00"}"#)?,
            CaptureStatus::Refunded
        );
        let declined = outcome(
            br#"{"id":"tx-4","success":false,"message":"Unable to process the purchase transaction","total":10}"#,
            &cmd,
        )?;
        assert_eq!(declined.status, CaptureStatus::Declined);
        assert_eq!(declined.captured_amount, None);
        assert_eq!(
            declined.provider_reason.as_deref(),
            Some("Unable to process the purchase transaction")
        );
        for bad in [
            r#"{"id":"x","total":10}"#,
            r#"{"id":"x","success":true,"is_voided":true,"total":10}"#,
            r#"{"id":"x","success":true,"total":10.001}"#,
            r#"{"id":"x","success":true,"total":-1}"#,
            r#"{"id":"x","success":true,"total":true}"#,
            r#"{"id":"x","success":true,"currency":"XYZ"}"#,
            // No id: no transaction, whatever else it says.
            r#"{"success":true,"total":10}"#,
            r#"["success"]"#,
            "<html>oops</html>",
        ] {
            assert!(status(bad).is_err(), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn a_capture_in_another_currency_than_the_pre_authorization_is_refused() -> Result<(), String> {
        let usd = Currency::from_code("USD").ok_or("no USD")?;
        let eur = Currency::from_code("EUR").ok_or("no EUR")?;
        assert_eq!(check_currency("pa-1", "USD", usd), Ok(()));
        let refused = check_currency("pa-1", "USD", eur)
            .err()
            .ok_or("not refused")?;
        assert_eq!(refused.code, CURRENCY_MISMATCH);
        assert!(refused.message.contains("USD") && refused.message.contains("EUR"));
        assert_eq!((refused.http_status, refused.debug_id), (0, None));
        Ok(())
    }

    #[test]
    fn error_bodies_give_stable_codes_and_keep_stax_words() {
        assert_eq!(
            code_for_400("Cannot capture more than the pre-authorized amount."),
            "AMOUNT_EXCEEDS_PREAUTH"
        );
        assert_eq!(
            code_for_400("This pre-authorization has already been captured."),
            "ALREADY_CAPTURED"
        );
        assert_eq!(
            code_for_400("The pre-authorization has expired."),
            "EXPIRED"
        );
        assert_eq!(
            code_for_400("This pre-authorization has been voided."),
            "VOIDED"
        );
        assert_eq!(code_for_400("Something else."), "BAD_REQUEST");
        let body = serde_json::json!({"total": ["The total must be a number."],
            "meta": ["The meta must be an array."]});
        assert_eq!(
            validation_failure(&body),
            Some((
                "INVALID_META".to_owned(),
                "meta: The meta must be an array.; total: The total must be a number.".to_owned()
            ))
        );
        assert_eq!(
            error_message(&serde_json::json!({"error": ["a", "b"]})).as_deref(),
            Some("a b")
        );
    }
}
