//! PayPal's parsers fed arbitrary answers and webhook bodies: never a panic.

use proptest::prelude::*;

use super::{mapping, webhook};
use crate::providers::fuzzing::bodies;

const WORDS: &[&str] = &[
    "id",
    "status",
    "status_details",
    "reason",
    "amount",
    "currency_code",
    "value",
    "seller_receivable_breakdown",
    "gross_amount",
    "paypal_fee",
    "net_amount",
    "receivable_amount",
    "exchange_rate",
    "source_currency",
    "target_currency",
    "platform_fees",
    "payee",
    "final_capture",
    "invoice_id",
    "custom_id",
    "create_time",
    "update_time",
    "links",
    "supplementary_data",
    "related_ids",
    "authorization_id",
    "network_transaction_reference",
    "processor_response",
    "seller_protection",
    "event_type",
    "resource",
    "resource_type",
    "verification_status",
    "COMPLETED",
    "PENDING",
    "DECLINED",
    "REFUNDED",
    "PARTIALLY_REFUNDED",
    "FAILED",
    "PENDING_REVIEW",
    "PAYMENT.CAPTURE.COMPLETED",
    "PAYMENT.CAPTURE.DENIED",
    "PAYMENT.CAPTURE.PENDING",
    "PAYMENT.CAPTURE.REVERSED",
    "capture",
    "SUCCESS",
    "FAILURE",
    "USD",
    "JPY",
    "0.00",
    "10.00",
];

proptest! {
    #[test]
    fn capture_answers_never_panic(body in bodies(WORDS)) {
        let _ = mapping::outcome(&body);
    }

    #[test]
    fn webhook_events_and_verifications_never_panic(body in bodies(WORDS)) {
        let _ = webhook::read(&body);
        let _ = webhook::verified(&body);
    }
}
