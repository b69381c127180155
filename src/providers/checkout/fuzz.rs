//! Checkout.com's parsers fed arbitrary answers and webhook bodies: never a panic; and the
//! `Cko-Signature` check takes exactly the body's HMAC.

use hmac::{Hmac, Mac};
use proptest::prelude::*;
use sha2::Sha256;

use super::{mapping, webhook};
use crate::config::Secret;
use crate::providers::fuzzing::bodies;
use crate::providers::webhook::Delivery;

const WORDS: &[&str] = &[
    "id",
    "type",
    "data",
    "action_id",
    "reference",
    "amount",
    "currency",
    "response_code",
    "response_summary",
    "processed_on",
    "approved",
    "status",
    "actions",
    "balances",
    "total_authorized",
    "total_captured",
    "total_voided",
    "available_to_capture",
    "processing",
    "_links",
    "payment_captured",
    "payment_capture_declined",
    "payment_capture_pending",
    "payment_approved",
    "Capture",
    "Authorization",
    "Captured",
    "Authorized",
    "Partially Captured",
    "10000",
    "20051",
    "USD",
    "EUR",
    "JPY",
    "KWD",
];

proptest! {
    #[test]
    fn answers_never_panic(body in bodies(WORDS)) {
        let _ = mapping::outcome(&body);
        let _ = mapping::actions_from_body(&body);
        let _ = mapping::payment_from_body(&body);
    }

    #[test]
    fn webhook_events_never_panic(body in bodies(WORDS)) {
        let _ = webhook::read(&body);
    }

    #[test]
    fn only_the_bodys_own_signature_passes(
        body in bodies(WORDS),
        other in prop::collection::vec(any::<u8>(), 0..64),
        garbage in any::<String>(),
    ) {
        let secret = Secret::new("whsec_fuzz_0123456789abcdef");
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        mac.update(&body);
        let signed = hex::encode(mac.finalize().into_bytes());
        for (signature, passes) in [(signed.clone(), true), (hex::encode(&other), false), (garbage, false)] {
            let mut headers = http::HeaderMap::new();
            if let Ok(value) = http::HeaderValue::from_str(&signature) {
                headers.insert(webhook::SIGNATURE_HEADER, value);
            }
            let verdict = webhook::verify(Delivery { headers: &headers, body: &body }, Some(&secret));
            // A random signature equal to the real one is a 2^-256 event.
            prop_assert_eq!(verdict.is_ok(), passes && signature == signed);
        }
    }
}
