//! PaymentOptions voids ⇄ domain: the void body and its answer (whose card number `read_body`
//! has already masked).

use super::{outcome, Parsed};
use crate::domain::{CaptureStatus, ProviderOutcome};
use crate::providers::payment_options::wire::{self, ResponseCode};

/// The void body: the authorization's id and the merchant's, as the capture's.
pub fn void_request<'a>(transaction_id: &'a str, merchant_id: &'a str) -> wire::VoidRequest<'a> {
    wire::VoidRequest {
        transaction_id,
        merchant_id,
    }
}

/// A void done: `success: true`, response code 0, and `transaction_type` `VOID` when the answer
/// names one (one naming another type is not the void's answer: `Err`). A void captures
/// nothing, so the answer's `payment_details.amount` (the authorized amount) is not reported.
pub fn voided(parsed: Parsed) -> Result<ProviderOutcome, String> {
    match parsed.answer.transaction_type.as_deref() {
        None | Some(wire::VOID) => Ok(ProviderOutcome {
            captured_amount: None,
            ..outcome(parsed, CaptureStatus::Completed, ResponseCode::Approved)
        }),
        Some(other) => Err(format!("the void was answered as a {other} transaction")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::payment_options::mapping::read_body;

    const PAN: &str = "5200000000001005";

    /// The documented answer to a void (PaymentOptions' API reference, "Void authorization").
    fn documented(transaction_type: &str) -> String {
        format!(
            r#"{{"success": true, "status_code": 201, "is_live": false,
            "transaction_type": "{transaction_type}",
            "gateway_response": {{"version": "1", "type": "INFO",
              "message": "Authorization Successfully Cancelled.", "code": "INFO0003"}},
            "merchant_details": {{"legal_name": "Tink15 Factory", "mid": "M1",
              "merchant_txn_ref": "qwe"}},
            "payment_details": {{"amount": 1000, "response_code": 0, "auth_code": "917290",
              "currency": "JPY", "payment_method": "ECMC-SSL", "scheme": "MASTERCARD",
              "card": {{"name": "John Doe", "number": "{PAN}", "exp_month": "12",
                "exp_year": "24"}}}},
            "transaction_details": {{"id": "9e9255f5-d3dc-423e-9026-6e4da194bab5",
              "ref": 74813, "timestamp": "2024-11-25T08:33:48.000Z",
              "merchant_txn_ref": "qwe"}}}}"#
        )
    }

    #[test]
    fn a_void_answer_is_a_release_without_an_amount_and_without_the_card_number(
    ) -> Result<(), String> {
        let outcome = voided(read_body(documented("VOID").as_bytes())?)?;
        assert_eq!(outcome.status, CaptureStatus::Completed);
        assert_eq!(outcome.provider_status, "INFO0003");
        assert_eq!(
            outcome.provider_capture_id.as_deref(),
            Some("9e9255f5-d3dc-423e-9026-6e4da194bab5")
        );
        assert_eq!(outcome.captured_amount, None);
        assert!(!format!("{outcome:?}").contains(PAN));
        assert!(voided(read_body(documented("CAPTURE").as_bytes())?).is_err());
        Ok(())
    }

    #[test]
    fn the_void_names_the_transaction_and_the_merchant() -> Result<(), serde_json::Error> {
        let body = serde_json::to_value(void_request("ab8444e7", "M123"))?;
        assert_eq!(
            body,
            serde_json::json!({"transactionId": "ab8444e7", "merchant_id": "M123"})
        );
        Ok(())
    }
}
