//! Stax's void of a pre-authorization: `POST /transaction/{id}/void`, as Stax's SDKs call it
//! (the iOS SDK's `VoidTransaction`; `is_voided` in its Python client's transaction model).
//!
//! - No body. A void answers 200 with the pre-authorization's transaction object, `is_voided:
//!   true`, and the book notes what it had left as released.
//! - A void after partial captures releases the rest (*unconfirmed*: the seed says only that
//!   the rest "may need to be released").
//! - A voided pre-authorization (through the API or by the `Voided` scenario) refuses voids and
//!   captures with 400 "has been voided"; a closed one (captured whole) refuses voids with 400
//!   "already captured", an expired one with 400 "expired"; unknown ids 404; the key and the
//!   rate limit as for captures.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

use super::super::kit::Reply;
use super::super::Charges;
use super::transaction::{transaction, Tx};
use super::{not_found, open_remaining, transaction_reply, Ledger, StaxEmulator};
use crate::domain::{Money, Provider};

/// `POST /transaction/{id}/void`.
pub(super) async fn void(
    State(stax): State<Arc<StaxEmulator>>,
    Path(transaction_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = stax.refusal(&headers) {
        return refusal;
    }
    let mut ledger = stax.ledger();
    transaction_reply(voided(&stax.charges, &mut ledger, &transaction_id))
}

/// Voids pre-authorization `id` if it is still open, releasing what it has left; the
/// pre-authorization as Stax then shows it.
fn voided(charges: &Charges, ledger: &mut Ledger, id: &str) -> Result<Bytes, Reply> {
    let pre_auth = ledger.pre_auths.get_mut(id).ok_or_else(not_found)?;
    let remaining = open_remaining(pre_auth)?;
    pre_auth.voided = true;
    let rest = Money::from_minor_units(pre_auth.amount.currency(), remaining);
    charges.voided(Provider::Stax, id, id, rest, None);
    transaction(id, pre_auth, Tx::PreAuth, &json!({}))
}
