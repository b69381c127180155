//! PayPal's authorized payments: "Void authorized payment" and "Show details for authorized
//! payment" (Payments v2), as PayPal's REST specification (`payments_payment_v2.json`) and its
//! reference pages document them.
//!
//! - `POST /v2/payments/authorizations/{id}/void`, no body: 204 without a body, or 200 with the
//!   authorization (status `VOIDED`) under `Prefer: return=representation`. Allowed before any
//!   capture and after partial captures made with `final_capture: false` ("Void
//!   Authorization": the void ends the possibility of further captures); it releases what the
//!   authorization has left, noted in the book as a void. Refusals are 422 with one
//!   `details[].issue`: `PREVIOUSLY_VOIDED` (voided already, through the API or by the `Voided`
//!   scenario) or `PREVIOUSLY_CAPTURED` (fully captured, or closed by a final or full capture).
//!   `CANNOT_BE_VOIDED` is documented for reauthorizations only, which the emulator does not
//!   make. *Unconfirmed*: an expired authorization's answer (here 422 `AUTHORIZATION_EXPIRED`,
//!   the capture's issue for it).
//! - A `PayPal-Request-Id` on a void (named on the current reference page, not in the
//!   specification snapshot) gets the stored answer (200, 204 or 422) byte for byte. Keys are
//!   kept apart from the captures' (*unconfirmed* whether PayPal shares them between calls).
//! - `GET /v2/payments/authorizations/{id}`: the same representation: `CREATED`,
//!   `PARTIALLY_CAPTURED`, `CAPTURED` (closed or taken whole), `VOIDED` or `EXPIRED`.
//!
//! Both need the bearer token a capture needs (401 `AUTHENTICATION_FAILURE` otherwise); an
//! unknown authorization is a 404 `INVALID_RESOURCE_ID`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::super::kit::{json_reply, rfc3339, Decision, Reply};
use super::errors::{authentication_failure, error, unprocessable};
use super::{request_id, wants_representation, Authorization, Ledger, PaypalEmulator};
use crate::domain::{Money, Provider};
use crate::sandbox::{MoneyJson, Scenario};

/// How long an authorization is valid after it was made (PayPal: 29 days).
const VALIDITY: Duration = Duration::from_secs(29 * 24 * 60 * 60);

/// `POST /v2/payments/authorizations/{id}/void`.
pub(super) async fn void(
    State(paypal): State<Arc<PaypalEmulator>>,
    Path(authorization_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !paypal.bearer_ok(&headers) {
        return authentication_failure().into_response();
    }
    let key = request_id(&headers);
    let representation = wants_representation(&headers);
    // A void's key is its own: the same id on a capture is another request.
    let (reply, _) = paypal.ledger().replay_or(
        key.as_ref().map(|key| format!("void {key}")),
        |status| matches!(status.as_u16(), 200 | 204 | 422),
        |ledger| {
            voided(
                &paypal,
                ledger,
                &authorization_id,
                representation,
                key.as_deref(),
            )
        },
    );
    reply.into_response()
}

/// `GET /v2/payments/authorizations/{id}`.
pub(super) async fn show(
    State(paypal): State<Arc<PaypalEmulator>>,
    Path(authorization_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !paypal.bearer_ok(&headers) {
        return authentication_failure().into_response();
    }
    let ledger = paypal.ledger();
    match ledger.authorizations.get(&authorization_id) {
        Some(auth) => {
            let shown = shown(&paypal.base_url, &authorization_id, auth);
            json_reply(StatusCode::OK, &shown).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "INVALID_RESOURCE_ID", None).into_response(),
    }
}

/// Applies PayPal's void rules to one request, releasing the rest when allowed.
fn voided(
    paypal: &PaypalEmulator,
    ledger: &mut Ledger,
    auth_id: &str,
    representation: bool,
    key: Option<&str>,
) -> Decision {
    let Some(auth) = ledger.authorizations.get_mut(auth_id) else {
        return Err(error(StatusCode::NOT_FOUND, "INVALID_RESOURCE_ID", None));
    };
    if auth.scenario == Scenario::Voided || auth.voided {
        return Err(unprocessable("PREVIOUSLY_VOIDED", None));
    }
    if auth.scenario == Scenario::Expired {
        return Err(unprocessable("AUTHORIZATION_EXPIRED", None));
    }
    let remaining = auth.amount.minor_units() - auth.captured;
    if auth.closed || remaining <= 0 {
        return Err(unprocessable("PREVIOUSLY_CAPTURED", None));
    }
    auth.voided = true;
    let rest = Money::from_minor_units(auth.amount.currency(), remaining);
    // PayPal's void has no id of its own: it is the authorization's.
    paypal
        .charges
        .voided(Provider::Paypal, auth_id, auth_id, rest, key);
    let reply = if representation {
        json_reply(StatusCode::OK, &shown(&paypal.base_url, auth_id, auth))
    } else {
        Reply::empty(StatusCode::NO_CONTENT)
    };
    Ok((reply, None))
}

/// Where the authorization stands, in PayPal's words.
fn status(auth: &Authorization) -> &'static str {
    let whole = auth.captured >= auth.amount.minor_units();
    match auth.scenario {
        Scenario::Expired => "EXPIRED",
        Scenario::Voided => "VOIDED",
        _ if auth.voided => "VOIDED",
        _ if auth.captured > 0 && (auth.closed || whole) => "CAPTURED",
        _ if auth.captured > 0 => "PARTIALLY_CAPTURED",
        _ => "CREATED",
    }
}

/// The authorization as PayPal shows it: id, status, amount, times, and the links of what can
/// still be done with it.
fn shown(base_url: &str, id: &str, auth: &Authorization) -> Value {
    let status = status(auth);
    let href = |tail: &str| format!("{base_url}/v2/payments/authorizations/{id}{tail}");
    let mut links = vec![json!({"href": href(""), "rel": "self", "method": "GET"})];
    if matches!(status, "CREATED" | "PARTIALLY_CAPTURED") {
        links.push(json!({"href": href("/capture"), "rel": "capture", "method": "POST"}));
        links.push(json!({"href": href("/void"), "rel": "void", "method": "POST"}));
    }
    json!({
        "id": id,
        "status": status,
        "amount": MoneyJson::from(auth.amount),
        "create_time": rfc3339(auth.created),
        "expiration_time": rfc3339(auth.created + VALIDITY),
        "links": links,
    })
}
