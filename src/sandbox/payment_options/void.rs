//! PaymentOptions' "Void Authorization": `POST {prefix}/server-to-server-interface/void`
//! `{transactionId, merchant_id}`, as the API manual documents it.
//!
//! - It cancels an authorization never captured: 201 with `transaction_type: "VOID"` and
//!   `INFO0003`, its `payment_details.amount` the authorized amount, noted in the book as a void.
//! - A capture releases the rest by itself ("if the capture is for a lesser amount, the remaining
//!   funds will be released"; noted in the book), so after any capture nothing is left to void:
//!   412 `ERR1005`.
//! - A voided authorization (through the API or by the `Voided` scenario) refuses voids and
//!   captures with 412 `ERR1007`, an expired one 412 `ERR1006`; credentials, body, merchant and
//!   unknown ids as for captures. Every refusal says `transaction_type: "VOID"`.
//! - *Unconfirmed*: these refusals' statuses and codes (the manual shows only the success).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::kit::Decision;
use super::replies::{answer_body, failure, Outcome};
use super::{open_authorization, parse_named, PaymentOptionsEmulator, VOID};
use crate::domain::Provider;

/// `POST {prefix}/server-to-server-interface/void`.
pub(super) async fn void(
    State(emulator): State<Arc<PaymentOptionsEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !emulator.credentials_ok(&headers) {
        return failure(VOID, StatusCode::UNAUTHORIZED, "ERR1002", "Unauthorized.").into_response();
    }
    let (reply, _) = voided(&emulator, &headers, &body).unwrap_or_else(|r| (r, None));
    reply.into_response()
}

/// Applies PaymentOptions' void rules to one request, releasing the authorization if allowed.
fn voided(emulator: &PaymentOptionsEmulator, headers: &HeaderMap, body: &[u8]) -> Decision {
    let named = parse_named(VOID, headers, body)?;
    let id = &named.transaction_id;
    let mut authorizations = emulator.authorizations();
    let auth = open_authorization(VOID, emulator, &mut authorizations, id, &named.merchant_id)?;
    if auth.captured.is_some() {
        return Err(failure(
            VOID,
            StatusCode::PRECONDITION_FAILED,
            "ERR1005",
            "The transaction has already been captured.",
        ));
    }
    auth.voided = true;
    let amount = auth.amount;
    drop(authorizations);
    emulator
        .charges
        .voided(Provider::PaymentOptions, id, id, amount, None);
    let cancelled = ("INFO", "Authorization Successfully Cancelled.", "INFO0003");
    let outcome = Outcome {
        transaction_type: VOID,
        status: StatusCode::CREATED,
        response_code: 0,
        gateway: cancelled,
    };
    Ok((answer_body(emulator, id, amount, outcome), None))
}
