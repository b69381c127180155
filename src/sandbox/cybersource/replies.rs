//! The emulated Cybersource's answers: its error bodies and the correlation header on each.

use std::time::SystemTime;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::super::kit::{json_reply, random_digits, random_hex, rfc3339, Reply};

/// Cybersource's message for each reason the emulator raises.
fn describe(reason: &str) -> &'static str {
    match reason {
        "MISSING_FIELD" => "Declined - The request is missing one or more fields",
        "INVALID_DATA" => "Declined - One or more fields in the request contains invalid data",
        "DUPLICATE_REQUEST" => "Declined - The merchantReferenceCode sent with this authorization request matches the merchantReferenceCode of another authorization request that you sent in the last 15 minutes.",
        "EXCEEDS_AUTH_AMOUNT" => "Declined - The requested amount exceeds the originally authorized amount.",
        "AUTH_ALREADY_REVERSED" => "Declined - The authorization has already been reversed.",
        "TRANSACTION_ALREADY_REVERSED_OR_SETTLED" => "Declined - The transaction has already been settled or reversed.",
        "TRANSACTION_ALREADY_SETTLED" => "Declined - The authorization has already been captured or settled.",
        "INVALID_AMOUNT" => "Declined - The request amount is invalid.",
        "MISSING_AUTH" => "Declined - You requested a capture, but there is no corresponding, unused authorization record.",
        "SYSTEM_ERROR" => "Error - General system failure.",
        "SERVER_TIMEOUT" => "Error - The request was received but a server timeout occurred. This error does not include timeouts between the client and the server.",
        _ => "Declined - The request could not be processed.",
    }
}

/// 400 `{submitTimeUtc, status: INVALID_REQUEST, reason, message, details[]}`; `field` is the
/// field named in `details`, `message` replaces the reason's usual message when not empty.
pub(super) fn invalid(reason: &str, field: Option<&str>, message: &str) -> Reply {
    let message = if message.is_empty() {
        describe(reason).to_owned()
    } else {
        format!("Declined - {message}")
    };
    let mut body = json!({
        "id": random_digits(22),
        "submitTimeUtc": rfc3339(SystemTime::now()),
        "status": "INVALID_REQUEST",
        "reason": reason,
        "message": message,
    });
    if let Some(field) = field {
        let why = if reason == "MISSING_FIELD" {
            "MISSING_FIELD"
        } else {
            "INVALID_DATA"
        };
        body["details"] = json!([{"field": field, "reason": why}]);
    }
    json_reply(StatusCode::BAD_REQUEST, &body)
}

/// 502 `{submitTimeUtc, status: SERVER_ERROR, reason, message}`.
pub(super) fn server_error(reason: &str) -> Reply {
    let body = json!({
        "submitTimeUtc": rfc3339(SystemTime::now()),
        "status": "SERVER_ERROR",
        "reason": reason,
        "message": describe(reason),
    });
    json_reply(StatusCode::BAD_GATEWAY, &body)
}

pub(super) fn authentication_failed() -> Reply {
    json_reply(
        StatusCode::UNAUTHORIZED,
        &json!({"response": {"rmsg": "Authentication Failed"}}),
    )
}

/// The reply with Cybersource's correlation header.
pub(super) fn respond(reply: Reply) -> Response {
    let mut response = reply.into_response();
    let correlation = format!(
        "{}-{}-{}-{}-{}",
        random_hex(8),
        random_hex(4),
        random_hex(4),
        random_hex(4),
        random_hex(12)
    );
    if let Ok(value) = HeaderValue::from_str(&correlation) {
        response.headers_mut().insert("v-c-correlation-id", value);
    }
    response
}
