//! Checkout.com emulator: `POST /payments/{id}/captures`, `GET /payments/{id}/actions` and
//! `GET /payments/{id}` ("Get payment details"), as Checkout.com documents them (providers.md,
//! seed 003), so the real connector can be exercised end to end.
//!
//! State lives in memory behind one `std::sync::Mutex`, never held across an `.await`.
//! Rules worth knowing:
//! - Auth is `Authorization: Bearer <secret key>`; anything else is a 401 without a body.
//! - A capture is answered `202 {action_id, reference, _links}`; its outcome is read from the
//!   actions list: approved (`Approve`, `Timeout`, `MalformedBody`), declined with response
//!   code `20051` (`Declined`, taking nothing from the payment), or not listed yet (`Pending`).
//! - `capture_type` `Final` (the default) closes the payment, even after a partial capture: later
//!   captures get 403. `NonFinal` leaves the rest capturable; more than remains is a 422
//!   `capture_value_greater_than_remaining_authorized` (`..._authorized` above the whole payment).
//!   At most 150 capture actions per payment, then 403.
//! - Amounts are in Checkout.com's unit for the payment's currency ([`Unit`], from Checkout.com's
//!   "Format the amount value" page): integers, 1 to 9 digits, ending in 0 for thousandths
//!   currencies; else 422 `amount_invalid`.
//! - A `Cko-Idempotency-Key` seen before gets the stored answer (202 or 422), byte for byte,
//!   whatever the new body says; 401, 403, 404 and 5xx are not stored, since nothing happened.
//! - `Expired` and `Voided` payments answer 403; an unknown payment 404; both without a body.
//! - `GET /payments/{id}` answers 200 `{id, amount (authorized), currency, status, approved,
//!   reference, balances, _links}` whatever the scenario (status `Authorized`, `Partially
//!   Captured`, `Captured`, `Voided` or `Expired`); an unknown payment 404 without a body.
//! - `ServerError` answers 500 without a body and captures nothing; `Timeout` records the capture
//!   and its answer, then answers after `TIMEOUT_DELAY` (60 s); `MalformedBody` captures and answers
//!   202 with a body that is not JSON.
//! - `POST /payments/{id}/voids` (`voids.rs`) releases what the payment has left; a `Final`
//!   capture releases the rest by itself (both noted in the book).
//! - Each capture that got a 202 is followed by a signed webhook (`events.rs`):
//!   `payment_captured`, `payment_capture_declined` or, while the action is unprocessed,
//!   `payment_capture_pending`. `Timeout` sends it at once, before its answer. Refusals, 5xx and
//!   replays of a `Cko-Idempotency-Key` send none.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

mod events;
mod voids;

use super::kit::{
    delay_of, header_str, held, json_reply, random_digits, random_from, random_hex, rfc3339, Book,
    Decision, Locked, Reply, Secrets,
};
use super::webhooks::Webhooks;
use super::{Charged, Charges, Emulator, SandboxAuthorization, Scenario};
use crate::domain::{Currency, Money, Provider};

/// Checkout.com allows up to 150 partial actions per payment.
pub const MAX_CAPTURES: usize = 150;
/// Checkout.com's issuer response code for "Insufficient Funds", the usual decline.
pub const DECLINE_CODE: &str = "20051";

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// "The amount value must not contain more than nine digits."
const MAX_AMOUNT: i64 = 999_999_999;
/// The longest `reference` taken: Checkout.com's payment reference limit, assumed to hold for
/// captures too (*unconfirmed*).
const MAX_REFERENCE_CHARS: usize = 80;

/// How Checkout.com reads an `amount` in a currency, per its "Format the amount value" page
/// (checkout.com/docs/payments/accept-payments/format-the-amount-value): the full amount, the
/// amount divided by 1000 (last digit 0), or, for every other currency, divided by 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Whole,
    Thousandths,
    Hundredths,
}

impl Unit {
    fn of(currency: Currency) -> Self {
        match currency.code() {
            "BIF" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
            | "VUV" | "VND" | "XAF" | "XOF" | "XPF" => Unit::Whole,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => Unit::Thousandths,
            _ => Unit::Hundredths,
        }
    }

    /// Decimals of the unit.
    fn exponent(self) -> u32 {
        match self {
            Unit::Whole => 0,
            Unit::Hundredths => 2,
            Unit::Thousandths => 3,
        }
    }
}

/// One payment and what has been taken from it, in Checkout.com's amount unit.
struct Payment {
    currency: Currency,
    authorized: i64,
    /// The merchant's order reference, as Checkout.com returns it with the payment.
    reference: String,
    scenario: Scenario,
    /// Captured or about to be (approved and pending actions; declined ones do not count).
    captured: i64,
    /// Closed by a `Final` capture or a void.
    closed: bool,
    /// Voided through the API.
    voided: bool,
    /// Oldest first; the authorization itself is the first.
    actions: Vec<Action>,
}

/// An action and whether Checkout.com has processed it (unprocessed ones are not listed).
struct Action {
    json: Value,
    processed: bool,
}

#[derive(Default)]
struct Ledger {
    payments: HashMap<String, Payment>,
    /// Webhook events the last decision produced, taken and sent once the lock is released.
    outbox: Vec<Value>,
}

/// The emulated Checkout.com.
pub struct CheckoutEmulator {
    base_url: String,
    secret_key: String,
    /// The webhook's secret key: `Cko-Signature` is the HMAC-SHA256 of each body with it.
    webhook_secret: String,
    webhooks: Webhooks,
    charges: Charges,
    ledger: Locked<Book<Ledger>>,
}

impl CheckoutEmulator {
    pub(super) fn new(
        base_url: String,
        webhooks: Webhooks,
        charges: Charges,
        secrets: &Secrets,
    ) -> Self {
        CheckoutEmulator {
            base_url,
            charges,
            secret_key: format!("sk_sbox_{}", secrets.hex("checkout.secret_key", 32)),
            webhook_secret: secrets.hex("checkout.webhook_secret", 64),
            webhooks,
            ledger: Locked::default(),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Book<Ledger>> {
        self.ledger.lock()
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        header_str(headers, header::AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| key == self.secret_key)
    }
}

impl Emulator for CheckoutEmulator {
    fn captured_authorization(&self, path: &str, _body: &[u8]) -> Option<String> {
        super::faults::id_between(path, "/payments/", "/captures").map(Into::into)
    }

    fn idempotency_key(&self, headers: &HeaderMap, _body: &[u8]) -> Option<String> {
        idempotency_key(headers)
    }

    /// A capture action is pending until processed (the book holds approved ones only).
    fn capture_status(&self, payment_id: &str, action_id: &str) -> Option<String> {
        let ledger = self.ledger();
        let action = ledger
            .payments
            .get(payment_id)?
            .actions
            .iter()
            .find(|a| a.json["id"] == action_id)?;
        Some(
            if action.processed {
                "COMPLETED"
            } else {
                "PENDING"
            }
            .to_owned(),
        )
    }

    /// The `CAPTURE_*` variables a service needs to capture here: base URL and credentials.
    fn service_env(&self) -> Vec<(String, String)> {
        vec![
            ("CAPTURE_CHECKOUT_BASE_URL".into(), self.base_url.clone()),
            (
                "CAPTURE_CHECKOUT_SECRET_KEY".into(),
                self.secret_key.clone(),
            ),
            (
                "CAPTURE_CHECKOUT_WEBHOOK_SECRET".into(),
                self.webhook_secret.clone(),
            ),
        ]
    }

    fn provider(&self) -> Provider {
        Provider::Checkout
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/payments/{payment_id}/captures", post(capture))
            .route("/payments/{payment_id}/voids", post(voids::void))
            .route("/payments/{payment_id}/actions", get(actions))
            .route("/payments/{payment_id}", get(payment))
            .with_state(self)
    }

    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization {
        let id = format!("pay_{}", random_from(LOWER_ALNUM, 26));
        let authorized = units_of(amount);
        let authorization = json!({
            "id": action_id(),
            "type": "Authorization",
            "processed_on": rfc3339(SystemTime::now()),
            "amount": authorized,
            "approved": true,
            "response_code": "10000",
            "response_summary": "Approved",
        });
        let payment = Payment {
            currency: amount.currency(),
            authorized,
            reference: format!("ORD-{}", random_hex(8)),
            scenario,
            captured: 0,
            closed: false,
            voided: false,
            actions: vec![Action {
                json: authorization,
                processed: true,
            }],
        };
        self.ledger().payments.insert(id.clone(), payment);
        let status = match scenario {
            Scenario::Expired => "Expired",
            Scenario::Voided => "Voided",
            _ => "Authorized",
        };
        SandboxAuthorization::new(Provider::Checkout, id, status, amount, scenario)
    }
}

/// An amount in Checkout.com's unit for its currency, rounded down where the unit is coarser.
fn units_of(amount: Money) -> i64 {
    let unit = Unit::of(amount.currency()).exponent();
    let iso = amount.currency().exponent();
    if unit >= iso {
        amount.minor_units().saturating_mul(10_i64.pow(unit - iso))
    } else {
        amount.minor_units() / 10_i64.pow(iso - unit)
    }
}

/// Units of `currency` in Checkout.com's unit back as money (the inverse of [`units_of`]).
fn money_of(currency: Currency, units: i64) -> Money {
    let unit = Unit::of(currency).exponent();
    let iso = currency.exponent();
    let minor = if unit >= iso {
        units / 10_i64.pow(unit - iso)
    } else {
        units.saturating_mul(10_i64.pow(iso - unit))
    };
    Money::from_minor_units(currency, minor)
}

fn action_id() -> String {
    format!("act_{}", random_from(LOWER_ALNUM, 26))
}

/// The `Cko-Idempotency-Key` a capture carries.
fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "cko-idempotency-key").map(str::to_owned)
}

/// `POST /payments/{id}/captures`.
async fn capture(
    State(checkout): State<Arc<CheckoutEmulator>>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !checkout.authorized(&headers) {
        return answer(Reply::empty(StatusCode::UNAUTHORIZED));
    }
    let key = idempotency_key(&headers);
    // Checkout.com keeps its answers to a Cko-Idempotency-Key: accepted (202) or refused (422).
    let (reply, delay, outbox) = {
        let mut book = checkout.ledger();
        let charged = Charged {
            charges: &checkout.charges,
            key: key.as_deref(),
        };
        let (reply, delay) = book.replay_or(
            key.clone(),
            |status| matches!(status.as_u16(), 202 | 422),
            |ledger| decide(&checkout.base_url, ledger, &payment_id, &body, charged),
        );
        (reply, delay, std::mem::take(&mut book.outbox))
    };
    // Sent from tasks of their own: a held-back (`Timeout`) answer is preceded by its webhook.
    for event in &outbox {
        checkout
            .webhooks
            .send(events::signed(event, &checkout.webhook_secret));
    }
    held(delay).await;
    answer(reply)
}

/// `GET /payments/{id}/actions`: processed actions, newest first.
async fn actions(
    State(checkout): State<Arc<CheckoutEmulator>>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !checkout.authorized(&headers) {
        return answer(Reply::empty(StatusCode::UNAUTHORIZED));
    }
    let listed: Option<Vec<Value>> = checkout.ledger().payments.get(&payment_id).map(|p| {
        p.actions
            .iter()
            .rev()
            .filter(|a| a.processed)
            .map(|a| a.json.clone())
            .collect()
    });
    match listed {
        Some(listed) => answer(json_reply(StatusCode::OK, &Value::Array(listed))),
        None => answer(Reply::empty(StatusCode::NOT_FOUND)),
    }
}

/// `GET /payments/{id}`: the payment as authorized, with where its captures stand.
async fn payment(
    State(checkout): State<Arc<CheckoutEmulator>>,
    Path(payment_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !checkout.authorized(&headers) {
        return answer(Reply::empty(StatusCode::UNAUTHORIZED));
    }
    let href =
        |tail: &str| json!({"href": format!("{}/payments/{payment_id}{tail}", checkout.base_url)});
    let details = checkout.ledger().payments.get(&payment_id).map(|p| {
        let status = match p.scenario {
            Scenario::Expired => "Expired",
            Scenario::Voided => "Voided",
            _ if p.voided && p.captured == 0 => "Voided",
            _ if p.closed || p.captured >= p.authorized => "Captured",
            _ if p.captured > 0 => "Partially Captured",
            _ => "Authorized",
        };
        json!({"id": payment_id, "amount": p.authorized, "currency": p.currency.code(),
            "status": status, "approved": true, "reference": p.reference,
            "balances": events::balances(p),
            "_links": {"self": href(""), "actions": href("/actions")}})
    });
    match details {
        Some(details) => answer(json_reply(StatusCode::OK, &details)),
        None => answer(Reply::empty(StatusCode::NOT_FOUND)),
    }
}

/// A reply with the `Cko-Request-Id` every Checkout.com answer carries.
fn answer(reply: Reply) -> Response {
    let mut response = reply.into_response();
    if let Ok(value) = HeaderValue::from_str(&random_hex(32)) {
        response.headers_mut().insert("cko-request-id", value);
    }
    response
}

/// The capture request body; fields the emulator does not use are accepted and ignored.
#[derive(Deserialize, Default)]
struct CaptureRequest {
    amount: Option<Value>,
    capture_type: Option<String>,
    reference: Option<Value>,
    metadata: Option<Value>,
}

/// Applies Checkout.com's capture rules to one request, updating the ledger when money moves.
fn decide(
    base_url: &str,
    ledger: &mut Ledger,
    payment_id: &str,
    body: &[u8],
    charged: Charged<'_>,
) -> Decision {
    let Some(payment) = ledger.payments.get_mut(payment_id) else {
        return Err(Reply::empty(StatusCode::NOT_FOUND));
    };
    let request = parse_request(body)?;
    let unit = Unit::of(payment.currency);
    let mut invalid = Vec::new();
    let asked = match &request.amount {
        None => None,
        Some(value) => match value.as_i64() {
            Some(units)
                if (1..=MAX_AMOUNT).contains(&units)
                    && !(unit == Unit::Thousandths && units % 10 != 0) =>
            {
                Some(units)
            }
            _ => {
                invalid.push("amount_invalid");
                None
            }
        },
    };
    let closes = match request.capture_type.as_deref() {
        None | Some("Final") => true,
        Some("NonFinal") => false,
        Some(_) => {
            invalid.push("capture_type_invalid");
            false
        }
    };
    let reference = reference_of(&request.reference, &request.metadata, &mut invalid);
    if !invalid.is_empty() {
        return Err(error_422("request_invalid", &invalid));
    }
    let captures = payment
        .actions
        .iter()
        .filter(|a| a.json["type"] == "Capture")
        .count();
    let refused = matches!(payment.scenario, Scenario::Expired | Scenario::Voided);
    let remaining = payment.authorized - payment.captured;
    if refused || payment.closed || remaining <= 0 || captures >= MAX_CAPTURES {
        return Err(Reply::empty(StatusCode::FORBIDDEN));
    }
    let amount = asked.unwrap_or(remaining);
    if amount > payment.authorized {
        return Err(error_422(
            "processing_error",
            &["capture_value_greater_than_authorized"],
        ));
    }
    if amount > remaining {
        return Err(error_422(
            "processing_error",
            &["capture_value_greater_than_remaining_authorized"],
        ));
    }
    let approved = match payment.scenario {
        Scenario::ServerError => return Err(Reply::empty(StatusCode::INTERNAL_SERVER_ERROR)),
        Scenario::Pending => None,
        Scenario::Declined => Some(false),
        Scenario::Approve
        | Scenario::Timeout
        | Scenario::MalformedBody
        | Scenario::Expired
        | Scenario::Voided => Some(true),
    };
    if approved != Some(false) {
        payment.captured += amount;
        payment.closed |= closes;
    }
    let id = action_id();
    if approved != Some(false) {
        let money = |units| money_of(payment.currency, units);
        charged.record(Provider::Checkout, payment_id, &id, money(amount));
        if closes {
            let rest = money(payment.authorized - payment.captured);
            charged.closed(Provider::Checkout, payment_id, &id, rest);
        }
    }
    let mut action = json!({
        "id": id,
        "type": "Capture",
        "processed_on": rfc3339(SystemTime::now()),
        "amount": amount,
    });
    match approved {
        Some(true) => {
            action["approved"] = json!(true);
            action["response_code"] = json!("10000");
            action["response_summary"] = json!("Approved");
        }
        Some(false) => {
            action["approved"] = json!(false);
            action["response_code"] = json!(DECLINE_CODE);
            action["response_summary"] = json!("Insufficient Funds");
        }
        None => {}
    }
    if approved.is_some() {
        action["processing"] = json!({
            "acquirer_transaction_id": random_digits(19),
            "acquirer_reference_number": random_digits(23),
        });
    }
    if let Some(reference) = &reference {
        action["reference"] = json!(reference);
    }
    if let Some(metadata) = &request.metadata {
        action["metadata"] = metadata.clone();
    }
    payment.actions.push(Action {
        json: action,
        processed: approved.is_some(),
    });
    let scenario = payment.scenario;
    ledger
        .outbox
        .extend(events::latest_capture_event(payment_id, payment));

    let mut accepted = json!({
        "action_id": id,
        "_links": {"payment": {"href": format!("{base_url}/payments/{payment_id}")}},
    });
    if let Some(reference) = reference {
        accepted["reference"] = json!(reference);
    }
    let reply = match scenario {
        Scenario::MalformedBody => Reply {
            status: StatusCode::ACCEPTED,
            body: Bytes::from_static(b"<html><body>Accepted</body></html>"),
        },
        _ => json_reply(StatusCode::ACCEPTED, &accepted),
    };
    let delay = delay_of(scenario);
    Ok((reply, delay))
}

/// The request's `reference` (a string of at most [`MAX_REFERENCE_CHARS`]), with the codes of
/// a bad `reference` or a `metadata` that is not an object added to `invalid`.
fn reference_of(
    reference: &Option<Value>,
    metadata: &Option<Value>,
    invalid: &mut Vec<&'static str>,
) -> Option<String> {
    let reference = match reference {
        None => None,
        Some(Value::String(r)) if r.chars().count() <= MAX_REFERENCE_CHARS => Some(r.clone()),
        Some(_) => {
            invalid.push("reference_invalid");
            None
        }
    };
    if metadata.as_ref().is_some_and(|m| !m.is_object()) {
        invalid.push("metadata_invalid");
    }
    reference
}

/// An empty body is an empty request; otherwise it must be a JSON object.
fn parse_request(body: &[u8]) -> Result<CaptureRequest, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CaptureRequest::default());
    }
    serde_json::from_slice(body)
        .map_err(|_| error_422("request_invalid", &["request_json_invalid"]))
}

/// Checkout.com's 422 body: `{request_id, error_type, error_codes[]}`.
fn error_422(error_type: &str, codes: &[&str]) -> Reply {
    json_reply(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({
            "request_id": random_hex(32),
            "error_type": error_type,
            "error_codes": codes,
        }),
    )
}
