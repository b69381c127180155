//! Checkout.com voids ⇄ domain: the void request, and a void refused on a payment voided
//! already. The void's 202 and its action in the actions list read as a capture's do.

use crate::domain::ProviderOutcome;
use crate::providers::checkout::wire;
use crate::providers::kit::released;

/// The void request body: our reference is the release's id (its idempotency key).
pub fn void_request(release_id: &str) -> wire::VoidRequest<'_> {
    wire::VoidRequest {
        reference: release_id,
    }
}

/// A void refused (403, "Void not allowed") on a payment Checkout.com reports `Voided` is a
/// release done: the authorization was voided already, by our earlier void whose answer was lost
/// (past the idempotency key's life) or by Checkout.com when it expired, and nothing is held.
/// `None` for a payment in any other status: the refusal stands.
pub fn already_voided(payment: &wire::Payment) -> Option<ProviderOutcome> {
    (payment.status.as_deref() == Some(wire::Payment::VOIDED)).then(|| ProviderOutcome {
        provider_reason: Some("void not allowed: the payment is Voided already".to_owned()),
        ..released(wire::Payment::VOIDED, None)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CaptureStatus;
    use crate::providers::checkout::mapping::payment_from_body;

    #[test]
    fn only_a_voided_payment_makes_a_refused_void_a_release_done() -> Result<(), String> {
        let payment = |status: &str| {
            payment_from_body(
                format!(r#"{{"id":"pay_x","currency":"USD","status":"{status}"}}"#).as_bytes(),
            )
        };
        let done = already_voided(&payment("Voided")?).ok_or("not done")?;
        assert_eq!(done.status, CaptureStatus::Completed);
        assert_eq!(done.provider_status, "Voided");
        assert_eq!(done.captured_amount, None);
        for status in ["Authorized", "Partially Captured", "Captured", "Expired"] {
            assert_eq!(already_voided(&payment(status)?), None, "{status}");
        }
        Ok(())
    }

    #[test]
    fn the_void_names_only_our_reference() -> Result<(), serde_json::Error> {
        let body = serde_json::to_value(void_request("rel_01J0000000000000000000000"))?;
        assert_eq!(
            body,
            serde_json::json!({"reference": "rel_01J0000000000000000000000"})
        );
        Ok(())
    }
}
