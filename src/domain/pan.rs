//! Card numbers (PANs) in free text. PCI DSS 3.4 asks that a PAN is unreadable wherever it is
//! stored, so callers' free-text fields may not carry one, and provider answers are masked to
//! first six / last four before they are written.
//!
//! A PAN here is a Luhn-valid number of 13 to 19 digits written either together
//! (`4111111111111111`, also inside other text) or in groups of 3 to 6 digits split by single
//! spaces or dashes (`4111 1111 1111 1111`, `3782-822463-10005`), as cards print them.

use std::borrow::Cow;

const MIN_DIGITS: usize = 13;
const MAX_DIGITS: usize = 19;
/// Digits per printed group of a card number (4-4-4-4, 4-6-5, 4-6-4).
const GROUP_DIGITS: std::ops::RangeInclusive<usize> = 3..=6;

/// A run of adjacent digits: where it starts, how long it is, and whether a single separator
/// joins it to the next run.
struct Group {
    start: usize,
    len: usize,
    joined_to_next: bool,
}

fn groups(text: &[u8]) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && text[i].is_ascii_digit() {
            i += 1;
        }
        let joined_to_next = matches!(text.get(i), Some(b' ' | b'-'))
            && text.get(i + 1).is_some_and(u8::is_ascii_digit);
        groups.push(Group {
            start,
            len: i - start,
            joined_to_next,
        });
    }
    groups
}

/// The byte positions of the digits of each card-number candidate in `text`.
fn candidates(text: &[u8]) -> Vec<Vec<usize>> {
    let groups = groups(text);
    let positions = |range: &[Group]| -> Vec<usize> {
        range
            .iter()
            .flat_map(|g| g.start..g.start + g.len)
            .collect()
    };
    let mut found = Vec::new();
    for (first, group) in groups.iter().enumerate() {
        if (MIN_DIGITS..=MAX_DIGITS).contains(&group.len) {
            found.push(positions(&groups[first..=first]));
        }
        // Printed groups: consecutive small groups, each joined to the next.
        let mut digits = 0;
        for last in first..groups.len() {
            if !GROUP_DIGITS.contains(&groups[last].len) {
                break;
            }
            digits += groups[last].len;
            if last > first && (MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
                found.push(positions(&groups[first..=last]));
            }
            if digits > MAX_DIGITS || !groups[last].joined_to_next {
                break;
            }
        }
    }
    found
}

fn is_card_number(text: &[u8], digits: &[usize]) -> bool {
    luhn_valid(digits.iter().map(|&i| text[i] - b'0'))
}

/// The Luhn (mod 10) check every card number's last digit satisfies.
fn luhn_valid(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let sum: u32 = digits
        .rev()
        .enumerate()
        .map(|(position, digit)| {
            let d = u32::from(digit);
            if position % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Whether `text` contains something that reads as a card number.
pub fn contains_card_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    candidates(bytes)
        .iter()
        .any(|digits| is_card_number(bytes, digits))
}

/// Refuses text that carries a card number (for callers' free-text fields).
pub fn check_no_card_number(text: &str) -> Result<(), String> {
    if contains_card_number(text) {
        return Err(
            "must not contain a card number (a Luhn-valid 13 to 19 digit sequence): card data is never stored"
                .to_owned(),
        );
    }
    Ok(())
}

/// Refuses an identifier that carries a card number a card network could have issued: a
/// Luhn-valid run of 13 to 19 digits whose prefix and length are a network's ([`issuable`]).
///
/// Ids are narrower than free text on purpose. Callers legitimately send numeric ids
/// (snowflakes, order numbers), and one in ten of those is Luhn-valid; today's snowflakes are
/// 18 to 19 digits starting with 1, which no network issues, so they pass. A card number a
/// caller mistook for an id does not, and is never stored, logged or answered.
pub fn check_id_not_card_number(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let found = candidates(bytes).iter().any(|digits| {
        is_card_number(bytes, digits) && issuable(digits.iter().map(|&i| bytes[i] - b'0'))
    });
    if found {
        return Err(
            "must not contain a card number (a Luhn-valid 13 to 19 digit card-network number): card data is never stored"
                .to_owned(),
        );
    }
    Ok(())
}

/// Whether `digits` have the prefix and length of a card network's numbers (ISO/IEC 7812 IIN
/// ranges of Visa, Mastercard, American Express, Discover, JCB, Diners Club, UnionPay and
/// Maestro). Prefixes 1, 7, 8, 9 and 0 belong to no card network here.
fn issuable(digits: impl Iterator<Item = u8>) -> bool {
    let digits: Vec<u32> = digits.map(u32::from).collect();
    let len = digits.len();
    let prefix = |n: usize| digits.iter().take(n).fold(0u32, |acc, d| acc * 10 + d);
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    let visa = p1 == 4 && matches!(len, 13 | 16 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16;
    let amex = matches!(p2, 34 | 37) && len == 15;
    let discover =
        (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && (16..=19).contains(&len);
    let jcb = (3528..=3589).contains(&p4) && (16..=19).contains(&len);
    let diners =
        ((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && (14..=19).contains(&len);
    let unionpay = p2 == 62 && (16..=19).contains(&len);
    let maestro = (p2 == 50 || (56..=69).contains(&p2)) && (13..=19).contains(&len);
    visa || mastercard || amex || discover || jcb || diners || unionpay || maestro
}

/// `text` with every card number in it masked to its first six and last four digits
/// (`4111 11** **** 1111`); separators stay where they were.
pub fn mask_card_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut masked: Option<Vec<u8>> = None;
    for digits in candidates(bytes) {
        if is_card_number(bytes, &digits) {
            let out = masked.get_or_insert_with(|| bytes.to_vec());
            for &i in &digits[6..digits.len() - 4] {
                out[i] = b'*';
            }
        }
    }
    match masked {
        // Only ASCII digits were replaced by an ASCII `*`, so the bytes are still UTF-8.
        Some(out) => Cow::Owned(String::from_utf8(out).unwrap_or_default()),
        None => Cow::Borrowed(text),
    }
}

/// Whether [`mask_card_numbers_in_json`] would change `value`: the same walk, without a copy.
pub fn json_has_card_number(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) => contains_card_number(text),
        Value::Number(n) => contains_card_number(&n.to_string()),
        Value::Array(items) => items.iter().any(json_has_card_number),
        Value::Object(fields) => fields.values().any(json_has_card_number),
        Value::Null | Value::Bool(_) => false,
    }
}

/// Masks card numbers in every string of a JSON value, and in numbers long enough to be one.
pub fn mask_card_numbers_in_json(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            if let Cow::Owned(masked) = mask_card_numbers(text) {
                *text = masked;
            }
        }
        Value::Number(n) => {
            let digits = n.to_string();
            if let Cow::Owned(masked) = mask_card_numbers(&digits) {
                *value = Value::String(masked);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_card_numbers_in_json),
        Value::Object(fields) => fields.values_mut().for_each(mask_card_numbers_in_json),
        Value::Null | Value::Bool(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_found_however_they_are_grouped() {
        for text in [
            "4111111111111111",
            "card 4111 1111 1111 1111 thanks",
            "4111-1111-1111-1111",
            "amex 378282246310005",
            "5555555555554444.",
            "x6011111111111117y",
            "2026-4111111111111111",
            "3782-822463-10005",
        ] {
            assert!(contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn other_numbers_are_not_card_numbers() {
        for text in [
            "4111111111111112",        // fails Luhn
            "411111111111",            // 12 digits
            "41111111111111111111111", // 23 digits: one longer run
            "order 2026-11-23 #42",
            "4111  1111 1111 1111", // a double space ends the groups
            "2026-000123456789",    // a 12-digit group is no printed card group
            "",
        ] {
            assert!(!contains_card_number(text), "{text}");
        }
    }

    #[test]
    fn masking_keeps_first_six_last_four_and_separators() {
        assert_eq!(mask_card_numbers("4111111111111111"), "411111******1111");
        assert_eq!(
            mask_card_numbers("pan 4111 1111 1111 1111 ok"),
            "pan 4111 11** **** 1111 ok"
        );
        assert_eq!(mask_card_numbers("no card here 123"), "no card here 123");
        assert!(matches!(mask_card_numbers("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_strings_and_numbers_are_masked() {
        let mut body = serde_json::json!({
            "note": "paid with 4111111111111111",
            "nested": [{"pan": 4111111111111111_u64}],
            "amount": 1000,
        });
        assert!(json_has_card_number(&body));
        mask_card_numbers_in_json(&mut body);
        assert!(!json_has_card_number(&body));
        assert_eq!(body["note"], "paid with 411111******1111");
        assert_eq!(body["nested"][0]["pan"], "411111******1111");
        assert_eq!(body["amount"], 1000);
    }

    #[test]
    fn json_card_numbers_are_found_in_strings_and_numbers_at_any_depth() {
        for body in [
            serde_json::json!({"a": {"b": ["x", "4111 1111 1111 1111"]}}),
            serde_json::json!([1, [2, [4111111111111111_u64]]]),
        ] {
            assert!(json_has_card_number(&body), "{body}");
        }
        let clean = serde_json::json!({"id": "2GG279541U471931P", "amount": 1000, "ok": true});
        assert!(!json_has_card_number(&clean));
    }

    #[test]
    fn ids_refuse_network_card_numbers_but_not_snowflakes() {
        for id in [
            "4111111111111111",
            "order-5555555555554444",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "4111-1111-1111-1111",
        ] {
            assert!(check_id_not_card_number(id).is_err(), "{id}");
        }
        for id in [
            "1541815603606036480",  // a Twitter snowflake (Luhn-valid, prefix 1)
            "1234567890123452",     // Luhn-valid, no network starts with 1
            "9999999999999995",     // Luhn-valid, prefix 9
            "41111111111111111111", // 20 digits
            "4111111111111112",     // fails Luhn
            "0VF52814937998046",    // a PayPal authorization id
            "req-1",
        ] {
            assert!(check_id_not_card_number(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn refusal_says_why() {
        assert!(check_no_card_number("ref 4111111111111111")
            .err()
            .is_some_and(|e| e.contains("card number")));
        assert!(check_no_card_number("ref 12345").is_ok());
    }
}
