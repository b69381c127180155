//! PaymentOptions' parsers fed arbitrary answers: never a panic; and a full card number in any
//! text never survives masking.

use proptest::prelude::*;

use super::mapping;
use crate::providers::fuzzing::bodies;

const WORDS: &[&str] = &[
    "success",
    "status_code",
    "transaction_type",
    "CAPTURE",
    "VOID",
    "response_code",
    "gateway_response",
    "code",
    "message",
    "transactionId",
    "transaction_details",
    "ref",
    "card",
    "number",
    "amount",
    "currency",
    "errors",
    "status",
    "INFO0001",
    "ERR1001",
    "ERR0094",
    "94",
    "0",
    "5",
    "4111111111111111",
];

/// Card numbers of the usual lengths that pass the Luhn check.
fn card_numbers() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![3u8, 4, 5, 6]),
        prop::collection::vec(0u8..10, 11..18),
    )
        .prop_map(|(first, rest)| {
            let mut digits: Vec<u8> = std::iter::once(first).chain(rest).collect();
            // The check digit that makes the Luhn sum a multiple of 10.
            let sum: u32 = digits
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &d)| {
                    let d = u32::from(d);
                    let doubled = d * 2;
                    match (i % 2 == 0, doubled > 9) {
                        (true, true) => doubled - 9,
                        (true, false) => doubled,
                        (false, _) => d,
                    }
                })
                .sum();
            digits.push(((10 - sum % 10) % 10) as u8);
            digits.iter().map(|d| char::from(b'0' + d)).collect()
        })
}

proptest! {
    #[test]
    fn answers_never_panic(body in bodies(WORDS)) {
        let _ = mapping::read_body(&body);
    }

    #[test]
    fn no_card_number_survives_masking(
        before in "[^0-9]{0,12}",
        pan in card_numbers(),
        after in "[^0-9]{0,12}",
        noise in any::<String>(),
    ) {
        let text = format!("{before}{pan}{after}");
        let masked = mapping::mask_pans(&text);
        prop_assert!(!masked.contains(&pan), "{masked}");
        let again = mapping::mask_pans(&masked).into_owned();
        prop_assert_eq!(again.as_str(), masked.as_ref());
        let _ = mapping::mask_pans(&noise);
        let _ = mapping::mask_card_number(&noise);
    }
}
