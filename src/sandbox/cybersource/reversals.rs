//! Cybersource's authorization reversal: `POST /pts/v2/payments/{id}/reversals`, as its
//! "Authorization Reversal" page and REST client (`AuthReversalRequest`,
//! `PtsV2PaymentsReversalsPost201Response`, `...Post400Response`) document it.
//!
//! - Signed as a capture is (HTTP Signature over the body's digest); else 401.
//! - Body: `clientReferenceInformation.code` (≤ 50), `reversalInformation.amountDetails
//!   .totalAmount` (a decimal string, required), optional `reversalInformation.amountDetails
//!   .currency` or `orderInformation.amountDetails.currency` (the authorization's, else 400
//!   `INVALID_DATA`) and `reversalInformation.reason` (taken, not checked).
//! - "The amount of the reversal must be the same as the authorization amount": any other
//!   amount is a 400 `INVALID_AMOUNT` (*unconfirmed* reason; some processors take partial
//!   reversals).
//! - Only an authorization never captured is reversed ("you can use the authorization reversal
//!   service only for an authorization that has not been captured and settled"): after a
//!   capture, 400 `TRANSACTION_ALREADY_SETTLED` (*unconfirmed* which of the documented reasons
//!   Cybersource gives). A second reversal, or one of a `Voided` authorization:
//!   `AUTH_ALREADY_REVERSED`; `Expired`: `TRANSACTION_ALREADY_REVERSED_OR_SETTLED`; `Declined`
//!   and unknown ids: `MISSING_AUTH`. A capture after a reversal: `AUTH_ALREADY_REVERSED`.
//! - Reversed: 201 `{_links.self, clientReferenceInformation.code, id, orderInformation
//!   .amountDetails.currency, processorInformation.responseCode, reconciliationId,
//!   reversalAmountDetails {reversedAmount, currency}, status: REVERSED, submitTimeUtc}`, as the
//!   page's example; the book notes the release under the reference code.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::super::kit::{json_reply, random_alnum, random_digits, rfc3339, Decision};
use super::replies::{authentication_failed, invalid, respond};
use super::request::{
    parse_amount, reference_code, AmountDetails, ClientReference, OrderInformation,
};
use super::{CybersourceEmulator, Ledger};
use crate::domain::Provider;
use crate::sandbox::Scenario;

const REVERSAL_AMOUNT: &str = "reversalInformation.amountDetails.totalAmount";
const REVERSAL_CURRENCY: &str = "reversalInformation.amountDetails.currency";

/// The reversal request; fields the emulator does not use are accepted and ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReversalRequest {
    client_reference_information: Option<ClientReference>,
    reversal_information: Option<ReversalInformation>,
    order_information: Option<OrderInformation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReversalInformation {
    amount_details: Option<AmountDetails>,
}

/// `POST /pts/v2/payments/{id}/reversals`.
pub(super) async fn reverse(
    State(cybersource): State<Arc<CybersourceEmulator>>,
    Path(authorization_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !cybersource.authenticated("post", &uri, &headers, Some(&body)) {
        return respond(authentication_failed());
    }
    let mut ledger = cybersource.ledger();
    let (reply, _) = reversed(&cybersource, &mut ledger, &authorization_id, &body)
        .unwrap_or_else(|refusal| (refusal, None));
    respond(reply)
}

/// Applies Cybersource's reversal rules to one request, releasing the authorization if allowed.
fn reversed(
    cybersource: &CybersourceEmulator,
    ledger: &mut Ledger,
    auth_id: &str,
    body: &[u8],
) -> Decision {
    let request: ReversalRequest = serde_json::from_slice(body)
        .map_err(|_| invalid("INVALID_DATA", None, "The request is not well-formed JSON"))?;
    let code = reference_code(request.client_reference_information)?;
    let details = request.reversal_information.and_then(|r| r.amount_details);
    let Some(value) = details.as_ref().and_then(|d| d.total_amount.clone()) else {
        return Err(invalid("MISSING_FIELD", Some(REVERSAL_AMOUNT), ""));
    };
    let order_currency = request
        .order_information
        .and_then(|o| o.amount_details)
        .and_then(|d| d.currency)
        .map(|c| (c, "orderInformation.amountDetails.currency"));
    let currency = details
        .and_then(|d| d.currency)
        .map(|c| (c, REVERSAL_CURRENCY))
        .or(order_currency);
    let Some(auth) = ledger.authorizations.get_mut(auth_id) else {
        let message = "There is no corresponding authorization record.";
        return Err(invalid("MISSING_AUTH", None, message));
    };
    let authorized = auth.amount;
    if let Some((currency, field)) = currency {
        if currency != authorized.currency().code() {
            return Err(invalid("INVALID_DATA", Some(field), ""));
        }
    }
    let asked = parse_amount(&value, authorized, REVERSAL_AMOUNT)?;
    let refusal = match auth.scenario {
        Scenario::Declined => Some("MISSING_AUTH"),
        Scenario::Expired => Some("TRANSACTION_ALREADY_REVERSED_OR_SETTLED"),
        Scenario::Voided => Some("AUTH_ALREADY_REVERSED"),
        _ if auth.reversed => Some("AUTH_ALREADY_REVERSED"),
        _ if auth.captures > 0 => Some("TRANSACTION_ALREADY_SETTLED"),
        _ => None,
    };
    if let Some(reason) = refusal {
        return Err(invalid(reason, None, ""));
    }
    if asked != authorized {
        let message = "The amount of the reversal must be the same as the authorization amount.";
        return Err(invalid("INVALID_AMOUNT", Some(REVERSAL_AMOUNT), message));
    }
    auth.reversed = true;
    auth.closed = true;
    let id = random_digits(22);
    let key = (!code.is_empty()).then_some(code.as_str());
    cybersource
        .charges
        .voided(Provider::Cybersource, auth_id, &id, authorized, key);
    let currency = authorized.currency().code();
    let answer = json!({
        "_links": {"self": {"method": "GET", "href": format!("/pts/v2/reversals/{id}")}},
        "clientReferenceInformation": {"code": code},
        "id": id,
        "orderInformation": {"amountDetails": {"currency": currency}},
        "processorInformation": {"responseCode": "200"},
        "reconciliationId": random_alnum(12),
        "reversalAmountDetails": {
            "reversedAmount": authorized.to_major_string(),
            "currency": currency,
        },
        "status": "REVERSED",
        "submitTimeUtc": rfc3339(SystemTime::now()),
    });
    Ok((json_reply(StatusCode::CREATED, &answer), None))
}
