//! Stax voids ⇄ domain: a transaction answer to a void, and a 400 saying the pre-authorization
//! is voided already.

use serde_json::Value;

use super::redact;
use crate::domain::{CaptureStatus, ProviderOutcome};
use crate::providers::kit::released;
use crate::providers::stax::wire;

/// Reads a 200 transaction answer to the void of `pre_auth_id`. `Err` carries why the answer
/// cannot be trusted (not JSON, no `success`, no id, or the pre-authorization itself still not
/// voided): the caller reports the outcome as unknown.
pub fn void_outcome(body: &[u8], pre_auth_id: &str) -> Result<ProviderOutcome, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("void answer is not JSON: {e}"))?;
    let Value::Object(object) = &json else {
        return Err("void answer is not a JSON object".to_owned());
    };
    let transaction: wire::Transaction = serde_json::from_value(json.clone())
        .map_err(|e| format!("void answer does not match Stax's schema: {e}"))?;
    let id = (transaction.id.as_deref())
        .filter(|id| !id.is_empty())
        .ok_or("void answer without the transaction's id")?
        .to_owned();
    let state = match (transaction.success, transaction.is_voided) {
        (None, _) => return Err("void answer has no success flag".to_owned()),
        (_, Some(true)) => wire::VoidState::Voided,
        (Some(false), _) => wire::VoidState::Declined,
        (Some(true), Some(false)) if id == pre_auth_id => {
            return Err("Stax answered the void with the pre-authorization not voided".to_owned())
        }
        (Some(true), _) => wire::VoidState::Succeeded,
    };
    let message = transaction.message.filter(|m| !m.trim().is_empty());
    Ok(ProviderOutcome {
        status: void_status(state),
        provider_reason: message,
        redacted_body: Some(redact(object).into()),
        ..released(state.as_provider_status(), Some(id))
    })
}

/// Stax's void state as our status: voided is the release done; a declined void released
/// nothing.
pub fn void_status(state: wire::VoidState) -> CaptureStatus {
    match state {
        wire::VoidState::Voided | wire::VoidState::Succeeded => CaptureStatus::Completed,
        wire::VoidState::Declined => CaptureStatus::Declined,
    }
}

/// The provider status of a void refused because the pre-authorization is voided already.
pub const ALREADY_VOIDED: &str = "ALREADY_VOIDED";

/// Whether a 400's message says the transaction is voided already (Stax answers these with words
/// only; their wording is not documented). A void re-sent after its answer was lost is answered
/// so, and must settle the release, not fail it. A message that also says the void cannot be
/// done ("cannot be voided: already settled") is not read as one.
pub fn says_already_voided(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    let voided = [
        "already voided",
        "already been voided",
        "has been voided",
        "is voided",
    ]
    .iter()
    .any(|words| m.contains(words));
    let refused = [
        "cannot",
        "can not",
        "can't",
        "unable",
        "not be voided",
        "not voidable",
    ]
    .iter()
    .any(|words| m.contains(words));
    voided && !refused
}

/// A stable code for a 400 to a void, from its words (the message is kept beside it). A message
/// about voiding names the refusal itself here, not a voided pre-authorization as it does for a
/// capture.
pub fn void_code_for_400(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("already") && m.contains("captur") {
        "ALREADY_CAPTURED"
    } else if m.contains("settled") {
        "SETTLED"
    } else if m.contains("expired") {
        "EXPIRED"
    } else {
        "VOID_REFUSED"
    }
}

/// A void refused as voided already (see [`says_already_voided`]): done, with Stax's words kept.
pub fn already_voided(pre_auth_id: &str, message: String) -> ProviderOutcome {
    ProviderOutcome {
        provider_reason: Some(message),
        ..released(ALREADY_VOIDED, Some(pre_auth_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_void_answer_is_done_when_voided_or_successful_and_declined_otherwise() -> Result<(), String>
    {
        let pre_auth = "8e1d5b5c-1c1a-4c8e-9d7a-0f6c3b2a1e11";
        let read = |body: String| void_outcome(body.as_bytes(), pre_auth);
        let voided = read(format!(
            r#"{{"id":"{pre_auth}","success":true,"is_voided":true,"total":10,"customer":{{}}}}"#
        ))?;
        assert_eq!(
            (voided.status, voided.provider_status.as_str()),
            (CaptureStatus::Completed, "is_voided=true")
        );
        assert_eq!(voided.captured_amount, None);
        assert!(voided
            .redacted_body
            .is_some_and(|b| b.get("customer").is_none()));
        let void_tx =
            read(r#"{"id":"void-1","type":"void","success":true,"is_voided":false}"#.into())?;
        assert_eq!(void_tx.provider_capture_id.as_deref(), Some("void-1"));
        assert_eq!(void_tx.status, CaptureStatus::Completed);
        let declined = read(r#"{"id":"void-2","success":false,"message":"Void failed"}"#.into())?;
        assert_eq!(declined.status, CaptureStatus::Declined);
        assert_eq!(declined.provider_reason.as_deref(), Some("Void failed"));
        for doubtful in [
            format!(r#"{{"id":"{pre_auth}","success":true,"is_voided":false}}"#),
            r#"{"id":"x","is_voided":true}"#.to_owned(),
            r#"{"success":true,"is_voided":true}"#.to_owned(),
            "<html>".to_owned(),
        ] {
            assert!(read(doubtful.clone()).is_err(), "{doubtful}");
        }
        Ok(())
    }

    #[test]
    fn a_refused_void_gets_a_code_of_its_own() {
        let cases = [
            (
                "This pre-authorization has already been captured.",
                "ALREADY_CAPTURED",
            ),
            ("Cannot void a settled transaction.", "SETTLED"),
            ("The pre-authorization has expired.", "EXPIRED"),
            ("This transaction cannot be voided.", "VOID_REFUSED"),
        ];
        for (message, code) in cases {
            assert_eq!(void_code_for_400(message), code, "{message}");
        }
    }

    #[test]
    fn only_words_saying_voided_already_make_a_refused_void_done() {
        for done in [
            "This transaction has already been voided.",
            "Transaction is already voided",
            "The pre-authorization has been voided.",
        ] {
            assert!(says_already_voided(done), "{done}");
        }
        for refused in [
            "This transaction cannot be voided because it has already been settled.",
            "Transaction can not be voided: it has been voided or settled",
            "Unable to void this transaction.",
            "The pre-authorization has expired.",
            "Void failed",
        ] {
            assert!(!says_already_voided(refused), "{refused}");
        }
    }
}
