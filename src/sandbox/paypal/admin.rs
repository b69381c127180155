//! The PayPal emulator's admin endpoints, under `/sandbox/paypal/`: what PayPal decides after a
//! capture (a review ends, the merchant refunds, the buyer's bank charges back), each followed by
//! its webhook.
//!
//! - `POST /captures/{id}/complete`: PENDING → COMPLETED, with the breakdown a completed capture
//!   has; sends `PAYMENT.CAPTURE.COMPLETED` (resource: the capture as GET shows it).
//! - `POST /captures/{id}/deny`: PENDING → DECLINED, giving its amount back to the authorization
//!   (and reopening it, if the capture had closed it) as a declined capture does; sends
//!   `PAYMENT.CAPTURE.DENIED` (providers.md also names `.DECLINED`; PayPal's event list names
//!   `.DENIED`).
//! - `POST /captures/{id}/refund`, body optional `{"amount": {currency_code, value}}` (default:
//!   what is left unrefunded): COMPLETED or PARTIALLY_REFUNDED → PARTIALLY_REFUNDED or REFUNDED;
//!   sends `PAYMENT.CAPTURE.REFUNDED` with the refund as resource.
//! - `POST /captures/{id}/reverse`: a refund of all that is left, made by PayPal (a chargeback):
//!   → REFUNDED; sends `PAYMENT.CAPTURE.REVERSED` with a refund-shaped resource
//!   (*unconfirmed*: providers.md does not give that resource's shape).
//!
//! Each answers 200 `{"event": <the event sent>, "headers": {<the PAYPAL-* headers sent>}}`, so
//! a test can replay the exact delivery; 404 for an unknown capture, 409 when the capture's
//! status does not allow the change, 400 for a bad refund body, 422 for a refund above what is
//! left. The PayPal fee given back by a refund is its share of the capture's fee (the rest of it
//! on the last refund) — *unconfirmed*, PayPal's fee policy on refunds varies by country.

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use serde_json::{json, Value};

use super::super::kit::{random_alnum, rfc3339};
use super::amounts::{paypal_fee, receivable_breakdown};
use super::notifications::event;
use super::{Capture, Ledger, PaypalEmulator};
use crate::domain::Money;
use crate::sandbox::MoneyJson;

pub(super) fn routes(paypal: Arc<PaypalEmulator>) -> Router {
    Router::new()
        .route("/captures/{capture_id}/complete", post(complete))
        .route("/captures/{capture_id}/deny", post(deny))
        .route("/captures/{capture_id}/refund", post(refund))
        .route("/captures/{capture_id}/reverse", post(reverse))
        .with_state(paypal)
}

/// Why a change was not made.
struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

/// A change made: the event to send about it.
struct Change {
    event_type: &'static str,
    resource_type: &'static str,
    summary: String,
    resource: Value,
}

/// Applies `change` to the capture under the ledger's lock, then sends its event (lock released).
fn apply(
    paypal: &PaypalEmulator,
    capture_id: &str,
    change: impl FnOnce(&mut Ledger, &str) -> Result<Change, Refused>,
) -> Response {
    let made = {
        let mut book = paypal.ledger();
        let ledger: &mut Ledger = &mut book;
        if !ledger.captures.contains_key(capture_id) {
            return Refused(StatusCode::NOT_FOUND, format!("no capture {capture_id:?}"))
                .into_response();
        }
        change(ledger, capture_id)
    };
    match made {
        Ok(change) => {
            let event = event(
                change.event_type,
                change.resource_type,
                change.summary,
                change.resource,
            );
            let headers = paypal.transmit(&event);
            Json(json!({"event": event, "headers": headers})).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

/// The capture, if its status is one of `allowed`; else 409 (404 was ruled out by [`apply`]).
fn capture_in<'a>(
    ledger: &'a mut Ledger,
    id: &str,
    allowed: &[&str],
) -> Result<&'a mut Capture, Refused> {
    let capture = ledger
        .captures
        .get_mut(id)
        .ok_or_else(|| Refused(StatusCode::NOT_FOUND, format!("no capture {id:?}")))?;
    let status = capture.json["status"].as_str().unwrap_or_default();
    if !allowed.contains(&status) {
        let message = format!(
            "capture {id} is {status}; this needs {}",
            allowed.join(" or ")
        );
        return Err(Refused(StatusCode::CONFLICT, message));
    }
    Ok(capture)
}

/// "10.99 USD", as event summaries write amounts.
fn written(money: Money) -> String {
    format!("{} {}", money.to_major_string(), money.currency().code())
}

async fn complete(
    State(paypal): State<Arc<PaypalEmulator>>,
    Path(capture_id): Path<String>,
) -> Response {
    apply(&paypal, &capture_id, |ledger, id| {
        let capture = capture_in(ledger, id, &["PENDING"])?;
        let breakdown =
            receivable_breakdown(capture.gross, capture.fee_total, &capture.platform_fees);
        let json = &mut capture.json;
        json["status"] = json!("COMPLETED");
        if let Some(fields) = json.as_object_mut() {
            fields.remove("status_details");
        }
        json["seller_receivable_breakdown"] = breakdown;
        json["update_time"] = json!(rfc3339(SystemTime::now()));
        Ok(Change {
            event_type: "PAYMENT.CAPTURE.COMPLETED",
            resource_type: "capture",
            summary: format!("Payment completed for {}", written(capture.gross)),
            resource: capture.json.clone(),
        })
    })
}

async fn deny(
    State(paypal): State<Arc<PaypalEmulator>>,
    Path(capture_id): Path<String>,
) -> Response {
    apply(&paypal, &capture_id, |ledger, id| {
        let capture = capture_in(ledger, id, &["PENDING"])?;
        let json = &mut capture.json;
        json["status"] = json!("DECLINED");
        if let Some(fields) = json.as_object_mut() {
            fields.remove("status_details");
        }
        // 0500: "do not honor", as a capture declined at once answers.
        json["processor_response"]["response_code"] = json!("0500");
        json["update_time"] = json!(rfc3339(SystemTime::now()));
        let change = Change {
            event_type: "PAYMENT.CAPTURE.DENIED",
            resource_type: "capture",
            summary: format!("A {} capture payment was denied", written(capture.gross)),
            resource: capture.json.clone(),
        };
        let (gross, closed_it) = (capture.gross.minor_units(), capture.closes);
        let authorization = capture.authorization_id.clone();
        if let Some(auth) = ledger.authorizations.get_mut(&authorization) {
            auth.captured -= gross;
            auth.closed &= !closed_it;
        }
        Ok(change)
    })
}

/// The refund endpoint's optional body.
#[derive(Deserialize, Default)]
struct RefundRequest {
    amount: Option<MoneyJson>,
}

async fn refund(
    State(paypal): State<Arc<PaypalEmulator>>,
    Path(capture_id): Path<String>,
    body: Bytes,
) -> Response {
    let request: RefundRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefundRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => return Refused(StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        }
    };
    apply(&paypal, &capture_id, |ledger, id| {
        let capture = capture_in(ledger, id, &["COMPLETED", "PARTIALLY_REFUNDED"])?;
        let left = capture.gross.minor_units() - capture.refunded;
        let currency = capture.gross.currency();
        let amount = match &request.amount {
            None => left,
            Some(asked) if asked.currency_code != currency.code() => {
                let message = format!("the capture is in {}", currency.code());
                return Err(Refused(StatusCode::BAD_REQUEST, message));
            }
            Some(asked) => Money::parse_positive(&asked.currency_code, &asked.value)
                .map_err(|e| Refused(StatusCode::BAD_REQUEST, format!("amount: {e}")))?
                .minor_units(),
        };
        if amount > left {
            let left = Money::from_minor_units(currency, left);
            let message = format!("only {} is left to refund", written(left));
            return Err(Refused(StatusCode::UNPROCESSABLE_ENTITY, message));
        }
        let resource = refund_of(&paypal.base_url, ledger, id, amount);
        Ok(Change {
            event_type: "PAYMENT.CAPTURE.REFUNDED",
            resource_type: "refund",
            summary: format!("A {} capture payment was refunded", money(&resource)),
            resource,
        })
    })
}

async fn reverse(
    State(paypal): State<Arc<PaypalEmulator>>,
    Path(capture_id): Path<String>,
) -> Response {
    apply(&paypal, &capture_id, |ledger, id| {
        let capture = capture_in(ledger, id, &["COMPLETED", "PARTIALLY_REFUNDED"])?;
        let left = capture.gross.minor_units() - capture.refunded;
        let resource = refund_of(&paypal.base_url, ledger, id, left);
        Ok(Change {
            event_type: "PAYMENT.CAPTURE.REVERSED",
            resource_type: "refund",
            summary: format!("A {} capture payment was reversed", money(&resource)),
            resource,
        })
    })
}

/// The refund's amount as summaries write it.
fn money(refund: &Value) -> String {
    let amount = &refund["amount"];
    format!(
        "{} {}",
        amount["value"].as_str().unwrap_or_default(),
        amount["currency_code"].as_str().unwrap_or_default()
    )
}

/// Refunds `amount` minor units (at most what is left) of capture `id`: records the refund,
/// moves the capture to PARTIALLY_REFUNDED or REFUNDED, and returns the refund as PayPal shows it.
fn refund_of(base_url: &str, ledger: &mut Ledger, id: &str, amount: i64) -> Value {
    let Some(capture) = ledger.captures.get_mut(id) else {
        return Value::Null;
    };
    let gross = capture.gross;
    let currency = gross.currency();
    let capture_fee = paypal_fee(gross).minor_units();
    let last = capture.refunded + amount >= gross.minor_units();
    let fee = if last {
        capture_fee - capture.refunded_fee
    } else {
        share(capture_fee, amount, gross.minor_units())
    };
    capture.refunded += amount;
    capture.refunded_fee += fee;
    let now = rfc3339(SystemTime::now());
    capture.json["status"] = json!(if last {
        "REFUNDED"
    } else {
        "PARTIALLY_REFUNDED"
    });
    capture.json["update_time"] = json!(now);
    let money = |minor| MoneyJson::from(Money::from_minor_units(currency, minor));
    let refund_id = random_alnum(17);
    let refund = json!({
        "id": refund_id,
        "amount": money(amount),
        "status": "COMPLETED",
        "seller_payable_breakdown": {
            "gross_amount": money(amount),
            "paypal_fee": money(fee),
            "net_amount": money(amount - fee),
            "total_refunded_amount": money(capture.refunded),
        },
        "create_time": now,
        "update_time": now,
        "links": [
            {"href": format!("{base_url}/v2/payments/refunds/{refund_id}"), "rel": "self", "method": "GET"},
            {"href": format!("{base_url}/v2/payments/captures/{id}"), "rel": "up", "method": "GET"},
        ],
    });
    ledger.refunds.insert(refund_id, refund.clone());
    refund
}

/// `fee × part / whole`, rounded half-even to a minor unit.
fn share(fee: i64, part: i64, whole: i64) -> i64 {
    if whole == 0 {
        return 0;
    }
    let exact = Decimal::from(fee) * Decimal::from(part) / Decimal::from(whole);
    let rounded = exact.round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven);
    i64::try_from(rounded).unwrap_or(fee)
}
