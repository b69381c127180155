//! PayPal voids ⇄ domain: what PayPal's answer to a void (the release) says. The void has no
//! body to map.

use crate::domain::ProviderOutcome;
use crate::providers::kit::released;
use crate::providers::paypal::wire;

/// The authorization status of a voided authorization, also what a 204 (no body) stands for.
pub const VOIDED: &str = "VOIDED";

/// Reads the 200 answer to the void of `authorization_id`: the authorization, which must be that
/// one and `VOIDED`. Any other status contradicts the void: `Err` says so, and the caller
/// reports the outcome as unknown rather than guess.
pub fn voided_authorization(
    body: &[u8],
    authorization_id: &str,
) -> Result<ProviderOutcome, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("void answer is not JSON: {e}"))?;
    let authorization: wire::Authorization = serde_json::from_value(json.clone())
        .map_err(|e| format!("void answer does not match PayPal's schema: {e}"))?;
    let status: wire::AuthorizationStatus =
        wire::parse_name(&authorization.status).ok_or_else(|| {
            format!(
                "undocumented authorization status {:?}",
                authorization.status
            )
        })?;
    if authorization.id.as_deref() != Some(authorization_id) {
        return Err(format!(
            "void answer names authorization {:?}, not {authorization_id}",
            authorization.id
        ));
    }
    match status {
        wire::AuthorizationStatus::Voided => Ok(ProviderOutcome {
            // An authorization carries no card numbers or secrets; kept whole for support.
            redacted_body: Some(json.into()),
            ..released(authorization.status, Some(authorization_id.to_owned()))
        }),
        wire::AuthorizationStatus::Created
        | wire::AuthorizationStatus::Captured
        | wire::AuthorizationStatus::Denied
        | wire::AuthorizationStatus::PartiallyCaptured
        | wire::AuthorizationStatus::Pending => Err(format!(
            "PayPal answered the void with the authorization {}, not VOIDED",
            authorization.status
        )),
    }
}

/// What a 422 to a void says, from its first `issue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoidRefusal {
    /// `PREVIOUSLY_VOIDED`: the authorization is voided already, so the release is done.
    AlreadyVoided,
    /// The authorization's state forbids the void.
    Refused,
}

/// How a 422 `issue` answers a void. The void sends no body, so whatever PayPal finds wrong is
/// the authorization's state, documented or not (`AUTHORIZATION_EXPIRED`, say).
pub fn void_refusal(issue: Option<&str>) -> VoidRefusal {
    match issue.and_then(wire::parse_name) {
        Some(wire::VoidIssue::PreviouslyVoided) => VoidRefusal::AlreadyVoided,
        Some(wire::VoidIssue::PreviouslyCaptured | wire::VoidIssue::CannotBeVoided) | None => {
            VoidRefusal::Refused
        }
    }
}

/// A void PayPal refuses as `PREVIOUSLY_VOIDED` is a release done: a void re-sent after its
/// answer was lost (the reconciler's, or a caller's retry past PayPal's 45 days of
/// `PayPal-Request-Id`) is answered so, and must settle the release, not fail it. The issue is
/// kept as the provider's reason, and the error body (no secrets in it) for support.
pub fn previously_voided(authorization_id: &str, body: &[u8]) -> ProviderOutcome {
    ProviderOutcome {
        provider_reason: Some("PREVIOUSLY_VOIDED".to_owned()),
        redacted_body: serde_json::from_slice(body).ok().map(std::sync::Arc::new),
        ..released(VOIDED, Some(authorization_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CaptureStatus;

    #[test]
    fn only_a_voided_authorization_is_a_void_done() -> Result<(), String> {
        let body = br#"{"id":"0VF52814937998046","status":"VOIDED",
            "amount":{"currency_code":"USD","value":"100.00"}}"#;
        let outcome = voided_authorization(body, "0VF52814937998046")?;
        assert_eq!(outcome.status, CaptureStatus::Completed);
        assert_eq!(outcome.provider_status, "VOIDED");
        assert_eq!(
            outcome.provider_capture_id.as_deref(),
            Some("0VF52814937998046")
        );
        assert_eq!(outcome.captured_amount, None);
        assert!(outcome.redacted_body.is_some());
        for contradicting in [
            r#"{"id":"0VF52814937998046","status":"CREATED"}"#,
            r#"{"id":"0VF52814937998046","status":"PARTIALLY_CAPTURED"}"#,
            r#"{"id":"0VF52814937998046","status":"CANCELLED"}"#,
            r#"{"id":"OTHER","status":"VOIDED"}"#,
            r#"{"status":"VOIDED"}"#,
            "<html>",
        ] {
            assert!(
                voided_authorization(contradicting.as_bytes(), "0VF52814937998046").is_err(),
                "{contradicting}"
            );
        }
        Ok(())
    }

    #[test]
    fn previously_voided_is_done_and_every_other_void_issue_a_refusal() {
        assert_eq!(
            void_refusal(Some("PREVIOUSLY_VOIDED")),
            VoidRefusal::AlreadyVoided
        );
        for issue in [
            Some("PREVIOUSLY_CAPTURED"),
            Some("CANNOT_BE_VOIDED"),
            Some("AUTHORIZATION_EXPIRED"),
            None,
        ] {
            assert_eq!(void_refusal(issue), VoidRefusal::Refused, "{issue:?}");
        }
        let done = previously_voided("0VF52814937998046", br#"{"name":"UNPROCESSABLE_ENTITY"}"#);
        assert_eq!(
            (done.status, done.provider_reason.as_deref()),
            (CaptureStatus::Completed, Some("PREVIOUSLY_VOIDED"))
        );
    }
}
