//! Stax (formerly Fattmerchant) emulator: capture a pre-authorization and read a transaction (a
//! capture or a pre-authorization), as Stax documents them (providers.md, seed 002), so the real
//! Stax connector can be exercised end to end.
//!
//! State lives in memory behind one `std::sync::Mutex`, never held across an `.await`.
//! Rules worth knowing:
//! - `Authorization: Bearer <api key>`; any other key gets 401 `{"message": "Unauthenticated."}`.
//! - At most [`RATE_LIMIT`] requests a minute per key, reads included (counted in fixed one-minute
//!   windows, 401s included); beyond, 429 `{"message": "Too Many Attempts."}` with `Retry-After`.
//! - Several partial captures may be taken up to the pre-authorized total; more is a 400. A
//!   capture without `total` takes all that remains and closes the pre-authorization; so does
//!   taking exactly what remains. A closed one answers 400 "already captured".
//! - `total` must be a number (or numeric string) above zero with at most the currency's
//!   decimals, else 422 `{"total": [...]}`. Amounts are read and written exactly (never `f64`).
//! - An `idempotency_id` seen before gets the stored answer, byte for byte, whatever the new
//!   request says. Captures (200, declines included) and business refusals (400) are stored;
//!   401, 404, 422, 429 and 5xx are not, since nothing happened.
//! - Scenarios: `Expired`/`Voided` → 400 with Stax's words; `Declined` → 200 `success: false`,
//!   nothing taken; `ServerError` → 500 `{"message": "Server Error"}`, nothing taken; `Timeout`
//!   → the capture and its answer are recorded, then the answer comes after
//!   `TIMEOUT_DELAY` (60 s), so a retry with the same `idempotency_id` gets it at once;
//!   `MalformedBody` → captured, answered 200 with a body that is not JSON; `Pending` → Stax
//!   documents no pending capture, so it completes like `Approve`.
//! - `POST /transaction/{id}/void` (`void.rs`) voids a pre-authorization, releasing what it has
//!   left (noted in the book). Transaction objects are written in `transaction.rs`.

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::kit::{
    delay_of, header_str, held, json_reply, random_uuid, Book, Decision, Locked, Reply, Secrets,
};
use super::{Charged, Charges, Emulator, SandboxAuthorization, Scenario};
use crate::domain::{Money, Provider};
use transaction::{now, transaction, Tx};

mod transaction;
mod void;

/// Requests a key may make per [`RATE_WINDOW`] (Stax: 100 a minute).
pub const RATE_LIMIT: u32 = 100;
/// The rate limit's window.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// One pre-authorization and what has been taken from it.
struct PreAuth {
    amount: Money,
    scenario: Scenario,
    /// Minor units captured so far (declined captures take nothing).
    captured: i64,
    /// Closed by a full capture (no `total`) or by taking exactly what remained.
    closed: bool,
    /// Voided through the API.
    voided: bool,
    customer_id: String,
    payment_method_id: String,
    created_at: String,
}

#[derive(Default)]
struct Ledger {
    pre_auths: HashMap<String, PreAuth>,
    /// Capture transactions by id, as answered, for `GET /transaction/{id}`.
    transactions: HashMap<String, Bytes>,
    /// Start of the current rate window and the requests counted in it, per presented key.
    windows: HashMap<String, (Instant, u32)>,
}

/// The emulated Stax: one generated API key plus the ledger.
pub struct StaxEmulator {
    base_url: String,
    api_key: String,
    charges: Charges,
    ledger: Locked<Book<Ledger>>,
}

impl StaxEmulator {
    pub(super) fn new(base_url: String, charges: Charges, secrets: &Secrets) -> Self {
        StaxEmulator {
            base_url,
            charges,
            api_key: secrets.hex("stax.api_key", 64),
            ledger: Locked::default(),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Book<Ledger>> {
        self.ledger.lock()
    }

    /// Counts the request against its key and checks the key: `Some` is the refusal to send.
    fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        let presented = header_str(headers, header::AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_owned();
        let now = Instant::now();
        {
            let mut ledger = self.ledger();
            let window = ledger.windows.entry(presented.clone()).or_insert((now, 0));
            if now.duration_since(window.0) >= RATE_WINDOW {
                *window = (now, 0);
            }
            window.1 += 1;
            if window.1 > RATE_LIMIT {
                let wait = RATE_WINDOW.saturating_sub(now.duration_since(window.0));
                return Some(too_many_requests(wait.as_secs().max(1)));
            }
        }
        (presented != self.api_key)
            .then(|| message(StatusCode::UNAUTHORIZED, "Unauthenticated.").into_response())
    }
}

impl Emulator for StaxEmulator {
    fn captured_authorization(&self, path: &str, _body: &[u8]) -> Option<String> {
        super::faults::id_between(path, "/transaction/", "/capture").map(Into::into)
    }

    fn idempotency_key(&self, _headers: &HeaderMap, body: &[u8]) -> Option<String> {
        parse_request(body).ok()?.idempotency_id
    }

    /// The `CAPTURE_*` variables a service needs to capture here: base URL and credentials.
    fn service_env(&self) -> Vec<(String, String)> {
        vec![
            ("CAPTURE_STAX_BASE_URL".into(), self.base_url.clone()),
            ("CAPTURE_STAX_API_KEY".into(), self.api_key.clone()),
        ]
    }

    fn provider(&self) -> Provider {
        Provider::Stax
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/transaction/{transaction_id}/capture", post(capture))
            .route("/transaction/{transaction_id}/void", post(void::void))
            .route("/transaction/{transaction_id}", get(get_transaction))
            .with_state(self)
    }

    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization {
        let id = random_uuid();
        let status = match scenario {
            Scenario::Expired => "EXPIRED",
            Scenario::Voided => "VOIDED",
            _ => "CREATED",
        };
        let pre_auth = PreAuth {
            amount,
            scenario,
            captured: 0,
            closed: false,
            voided: false,
            customer_id: random_uuid(),
            payment_method_id: random_uuid(),
            created_at: now(),
        };
        self.ledger().pre_auths.insert(id.clone(), pre_auth);
        SandboxAuthorization::new(Provider::Stax, id, status, amount, scenario)
    }
}

/// `POST /transaction/{id}/capture`.
async fn capture(
    State(stax): State<Arc<StaxEmulator>>,
    Path(transaction_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = stax.refusal(&headers) {
        return refusal;
    }
    let request = match parse_request(&body) {
        Ok(request) => request,
        Err(refusal) => return refusal.into_response(),
    };
    // Stax keeps its answers to an `idempotency_id`: a transaction (200) or a refusal (400).
    let key = request.idempotency_id.clone();
    let charged = Charged {
        charges: &stax.charges,
        key: key.as_deref(),
    };
    let (reply, delay) = stax.ledger().replay_or(
        key.clone(),
        |status| matches!(status.as_u16(), 200 | 400),
        |ledger| decide(ledger, &transaction_id, &request, charged),
    );
    held(delay).await;
    reply.into_response()
}

/// 200 with a transaction object, or the refusal.
fn transaction_reply(found: Result<Bytes, Reply>) -> Response {
    let status = StatusCode::OK;
    found
        .map_or_else(|refusal| refusal, |body| Reply { status, body })
        .into_response()
}

/// What `pre_auth` has left in minor units, if it is still open: else the refusal (expired,
/// voided, or already captured whole).
fn open_remaining(pre_auth: &PreAuth) -> Result<i64, Reply> {
    if pre_auth.scenario == Scenario::Expired {
        return Err(bad_request("This pre-authorization has expired."));
    }
    if pre_auth.scenario == Scenario::Voided || pre_auth.voided {
        return Err(bad_request("This pre-authorization has been voided."));
    }
    let remaining = pre_auth.amount.minor_units() - pre_auth.captured;
    if pre_auth.closed || remaining <= 0 {
        return Err(bad_request(
            "This pre-authorization has already been captured.",
        ));
    }
    Ok(remaining)
}

/// `GET /transaction/{id}`: a capture as it was answered, or a pre-authorization (`type:
/// "pre_auth"`, its pre-authorized `total` and `currency`, `is_voided` once voided); else 404.
async fn get_transaction(
    State(stax): State<Arc<StaxEmulator>>,
    Path(transaction_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = stax.refusal(&headers) {
        return refusal;
    }
    let ledger = stax.ledger();
    let found = match ledger.transactions.get(&transaction_id) {
        Some(body) => Ok(body.clone()),
        None => match ledger.pre_auths.get(&transaction_id) {
            Some(pre_auth) => transaction(&transaction_id, pre_auth, Tx::PreAuth, &json!({})),
            None => Err(not_found()),
        },
    };
    transaction_reply(found)
}

/// The capture request as the emulator reads it.
struct CaptureRequest {
    /// `None`: capture all that remains. The exact decimal text otherwise.
    total: Option<String>,
    meta: Value,
    idempotency_id: Option<String>,
}

/// An empty body is an empty request; otherwise a JSON object whose `total` is a number or a
/// numeric string, `meta` an object and `idempotency_id` a string.
fn parse_request(body: &[u8]) -> Result<CaptureRequest, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CaptureRequest {
            total: None,
            meta: json!({}),
            idempotency_id: None,
        });
    }
    let invalid = |field: &str, text: &str| {
        json_reply(StatusCode::UNPROCESSABLE_ENTITY, &json!({ field: [text] }))
    };
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("body", "The request body must be a JSON object."));
    };
    // `total` as the caller wrote it: a JSON number's own text (never through f64), or a string.
    let raw: HashMap<String, Box<RawValue>> = serde_json::from_slice(body).unwrap_or_default();
    let total = match object.get("total") {
        None | Some(Value::Null) => None,
        Some(Value::Number(_)) => raw.get("total").map(|n| n.get().to_owned()),
        Some(Value::String(text)) => Some(text.trim().to_owned()),
        Some(_) => Some(String::new()),
    };
    let meta = match object.get("meta") {
        None | Some(Value::Null) => json!({}),
        Some(meta @ Value::Object(_)) => meta.clone(),
        Some(_) => return Err(invalid("meta", "The meta must be an array.")),
    };
    let idempotency_id = match object.get("idempotency_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(_) => {
            return Err(invalid(
                "idempotency_id",
                "The idempotency id must be a string.",
            ))
        }
    };
    Ok(CaptureRequest {
        total,
        meta,
        idempotency_id,
    })
}

/// Applies Stax's capture rules to one request, updating the ledger when money moves.
fn decide(
    ledger: &mut Ledger,
    pre_auth_id: &str,
    request: &CaptureRequest,
    charged: Charged<'_>,
) -> Decision {
    let Some(pre_auth) = ledger.pre_auths.get_mut(pre_auth_id) else {
        return Err(not_found());
    };
    let currency = pre_auth.amount.currency();
    let asked = match &request.total {
        None => None,
        Some(text) => Some(parse_total(text, currency)?),
    };
    let remaining = open_remaining(pre_auth)?;
    let amount = match asked {
        None => Money::from_minor_units(currency, remaining),
        Some(asked) if asked.minor_units() > remaining => {
            return Err(bad_request(
                "Cannot capture more than the pre-authorized amount.",
            ))
        }
        Some(asked) => asked,
    };
    let success = match pre_auth.scenario {
        Scenario::ServerError => {
            return Err(message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"))
        }
        Scenario::Declined => false,
        _ => true,
    };
    if success {
        pre_auth.captured += amount.minor_units();
        pre_auth.closed |= asked.is_none() || pre_auth.captured >= pre_auth.amount.minor_units();
    }
    let id = random_uuid();
    if success {
        charged.record(Provider::Stax, pre_auth_id, &id, amount);
    }
    let tx = Tx::Capture(pre_auth_id, amount, success);
    let body = transaction(&id, pre_auth, tx, &request.meta)?;
    let scenario = pre_auth.scenario;
    ledger.transactions.insert(id, body.clone());
    let reply = match scenario {
        Scenario::MalformedBody => Reply {
            status: StatusCode::OK,
            body: Bytes::from_static(b"<html><body>Bad Gateway</body></html>"),
        },
        _ => Reply {
            status: StatusCode::OK,
            body,
        },
    };
    let delay = delay_of(scenario);
    Ok((reply, delay))
}

/// Reads `total` exactly in the pre-authorization's currency; a 422 as Stax words it otherwise.
fn parse_total(text: &str, currency: crate::domain::Currency) -> Result<Money, Reply> {
    let invalid = |message: String| {
        json_reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({ "total": [message] }),
        )
    };
    let Some(amount) = exact_decimal(text) else {
        return Err(invalid("The total must be a number.".to_owned()));
    };
    if amount <= rust_decimal::Decimal::ZERO {
        return Err(invalid("The total must be at least 0.01.".to_owned()));
    }
    Money::from_decimal(currency, amount).map_err(|_| {
        invalid(format!(
            "The total may not have more than {} decimal places.",
            currency.exponent()
        ))
    })
}

/// `total`'s text (a JSON number's own text, or a string's content) read exactly, in decimal or
/// exponent notation.
fn exact_decimal(text: &str) -> Option<rust_decimal::Decimal> {
    if text.contains(['e', 'E']) {
        rust_decimal::Decimal::from_scientific(text).ok()
    } else {
        rust_decimal::Decimal::from_str_exact(text).ok()
    }
}

fn message(status: StatusCode, text: &str) -> Reply {
    json_reply(status, &json!({ "message": text }))
}

fn bad_request(text: &str) -> Reply {
    message(StatusCode::BAD_REQUEST, text)
}

fn not_found() -> Reply {
    message(
        StatusCode::NOT_FOUND,
        "The provided transaction_id does not correspond to a valid pre-authorization.",
    )
}

fn too_many_requests(retry_after_secs: u64) -> Response {
    let mut response = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts.").into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_uuids() {
        let id = random_uuid();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}
