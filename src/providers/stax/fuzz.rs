//! Stax's parsers fed arbitrary answers: never a panic; and its scanner of top-level JSON
//! numbers (which keeps amounts exact) agrees with a real JSON parser.

use proptest::prelude::*;
use serde_json::Value;

use super::{mapping, wire};
use crate::providers::fuzzing::{bodies, json_value};

const WORDS: &[&str] = &[
    "id",
    "type",
    "pre_auth",
    "capture",
    "total",
    "currency",
    "success",
    "is_voided",
    "message",
    "meta",
    "error",
    "errors",
    "child_transactions",
    "method",
    "card",
    "total_refunded",
    "idempotency_id",
    "created_at",
    "USD",
    "10.00",
];

proptest! {
    #[test]
    fn answers_never_panic(body in bodies(WORDS), text in any::<String>()) {
        let _ = wire::pre_auth_currency(&body);
        let _ = wire::parse_decimal(&text);
        let _ = wire::is_json_number(&text);
        let _ = mapping::code_for_400(&text);
        if let Ok(value) = serde_json::from_slice::<Value>(&body) {
            let _ = mapping::validation_failure(&value);
            let _ = mapping::error_message(&value);
        }
        for key in WORDS {
            if let Some(number) = wire::top_level_number(&body, key) {
                prop_assert!(wire::is_json_number(number), "{number:?}");
            }
        }
    }

    #[test]
    fn top_level_numbers_are_what_a_json_parser_reads(
        fields in prop::collection::vec((prop::sample::select(WORDS), json_value(WORDS)), 0..8),
    ) {
        let object: serde_json::Map<String, Value> =
            fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let body = serde_json::to_vec(&object).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for key in WORDS {
            let expected = match object.get(*key) {
                Some(Value::Number(number)) => Some(number.to_string()),
                _ => None,
            };
            prop_assert_eq!(wire::top_level_number(&body, key).map(str::to_owned), expected);
        }
    }
}
