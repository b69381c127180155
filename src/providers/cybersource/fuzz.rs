//! Cybersource's parsers fed arbitrary answers: never a panic.

use proptest::prelude::*;

use super::mapping;
use crate::providers::fuzzing::bodies;

const WORDS: &[&str] = &[
    "id",
    "status",
    "PENDING",
    "TRANSMITTED",
    "clientReferenceInformation",
    "code",
    "orderInformation",
    "amountDetails",
    "totalAmount",
    "authorizedAmount",
    "currency",
    "processorInformation",
    "transactionId",
    "_embedded",
    "transactionSummaries",
    "applicationInformation",
    "applications",
    "name",
    "rFlag",
    "rCode",
    "ics_bill",
    "SOK",
    "reason",
    "message",
    "details",
    "field",
    "submitTimeUtc",
    "reconciliationId",
    "errorInformation",
    "DUPLICATE_REQUEST",
    "EXCEEDS_AUTH_AMOUNT",
    "cap_01hzy",
    "USD",
    "1",
];

proptest! {
    #[test]
    fn answers_and_searches_never_panic(body in bodies(WORDS)) {
        let _ = mapping::outcome(&body);
        let _ = mapping::found_capture(&body, "cap_01hzy");
    }
}
