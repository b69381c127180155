//! PayPal's error answers, with the bodies PayPal documents.

use axum::http::StatusCode;
use serde_json::json;

use super::super::kit::{json_reply, random_hex, Reply};

const MESSAGE_422: &str = "The requested action could not be performed, semantically incorrect, or failed business validation.";
const MESSAGE_400: &str =
    "Request is not well-formed, syntactically incorrect, or violates schema.";

pub(super) fn invalid(issue: &str, at: Option<(&str, &str)>) -> Reply {
    error(StatusCode::BAD_REQUEST, issue, at)
}

pub(super) fn unprocessable(issue: &str, at: Option<(&str, &str)>) -> Reply {
    error(StatusCode::UNPROCESSABLE_ENTITY, issue, at)
}

/// PayPal's description of each issue the emulator raises.
pub(super) fn describe(issue: &str) -> &'static str {
    match issue {
        "INVALID_RESOURCE_ID" => {
            "Specified resource ID does not exist. Please check the resource ID and try again."
        }
        "AUTHORIZATION_EXPIRED" => "Authorization has expired.",
        "AUTHORIZATION_VOIDED" => "A voided authorization cannot be captured or reauthorized.",
        "AUTHORIZATION_ALREADY_CAPTURED" => "Authorization has already been captured.",
        "PREVIOUSLY_CAPTURED" => {
            "Authorization has been previously captured and hence cannot be voided."
        }
        "PREVIOUSLY_VOIDED" => {
            "Authorization has been previously voided and hence cannot be voided again."
        }
        "MAX_CAPTURE_AMOUNT_EXCEEDED" => "Capture amount exceeds allowable limit.",
        "AUTH_CAPTURE_CURRENCY_MISMATCH" => {
            "Currency of capture must be the same as currency of authorization."
        }
        "DECIMAL_PRECISION" => "The value has more decimal places than the currency allows.",
        "CANNOT_BE_ZERO_OR_NEGATIVE" => "Must be greater than zero.",
        "MALFORMED_REQUEST_JSON" => "The request JSON is not well formed.",
        "INVALID_PARAMETER_SYNTAX" => {
            "The value of a field does not conform to the expected format."
        }
        "INVALID_ARRAY_MAX_ITEMS" => "The number of items in an array parameter is too large.",
        "INVALID_PLATFORM_FEES_AMOUNT" => "The platform fees exceed what the payee receives.",
        "UNSUPPORTED_MEDIA_TYPE" => "The request payload must be application/json.",
        _ => "The value of a field is invalid.",
    }
}

/// PayPal's error body, `{name, message, debug_id, details[], links[]}`, for one issue; `at`
/// names the offending field and its value.
pub(super) fn error(status: StatusCode, issue: &str, at: Option<(&str, &str)>) -> Reply {
    let (name, message) = match status {
        StatusCode::BAD_REQUEST => ("INVALID_REQUEST", MESSAGE_400),
        StatusCode::NOT_FOUND => (
            "RESOURCE_NOT_FOUND",
            "The specified resource does not exist.",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "UNSUPPORTED_MEDIA_TYPE",
            "The server does not support the request payload's media type.",
        ),
        _ => ("UNPROCESSABLE_ENTITY", MESSAGE_422),
    };
    let mut detail = json!({"issue": issue, "description": describe(issue)});
    if let Some((field, value)) = at {
        detail["field"] = json!(field);
        detail["value"] = json!(value);
        detail["location"] = json!("body");
    }
    let href = format!("https://developer.paypal.com/docs/api/payments/v2/#error-{issue}");
    json_reply(
        status,
        &json!({
            "name": name,
            "message": message,
            "debug_id": random_hex(13),
            "details": [detail],
            "links": [{"href": href, "rel": "information_link", "method": "GET"}],
        }),
    )
}

pub(super) fn authentication_failure() -> Reply {
    json_reply(
        StatusCode::UNAUTHORIZED,
        &json!({
            "name": "AUTHENTICATION_FAILURE",
            "message": "Authentication failed due to invalid authentication credentials or a missing Authorization header.",
            "links": [{"href": "https://developer.paypal.com/docs/api/overview/#error", "rel": "information_link"}],
        }),
    )
}

/// The 400 of PayPal's v1 APIs (Webhooks), `{name: VALIDATION_ERROR, message, debug_id,
/// information_link, details[{field, location, issue}]}`, one detail per `(field, issue)`.
pub(super) fn validation_error(details: &[(&str, &str)]) -> Reply {
    let details: Vec<_> = details
        .iter()
        .map(|(field, issue)| json!({"field": field, "location": "body", "issue": issue}))
        .collect();
    json_reply(
        StatusCode::BAD_REQUEST,
        &json!({
            "name": "VALIDATION_ERROR",
            "message": "Invalid request - see details",
            "debug_id": random_hex(13),
            "information_link": "https://developer.paypal.com/docs/api/webhooks/v1/#errors",
            "details": details,
        }),
    )
}
