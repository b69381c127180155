//! PaymentOptions emulator: the server-to-server capture as PaymentOptions documents it
//! (providers.md, seed 001), so the real connector can be exercised end to end.
//!
//! State lives in memory behind one `std::sync::Mutex`, never held across an `.await`.
//! Rules worth knowing (the seed documents only the success answer and the list of failure
//! statuses and response codes; the `ERR…` gateway codes are this emulator's):
//! - `Authorization: Basic <basic_key>` and `x-api-key: <api_key>` must both match: else 401
//!   `ERR1002`. A body that is not the documented JSON: 400 `ERR1003`. Another merchant's
//!   `merchant_id`: 406 `ERR1008`. An unknown `transactionId`: 404 `ERR1001`.
//! - One capture per authorization, of at most the authorized amount (a smaller one releases
//!   the rest): above it, 412 `ERR1004`; once captured, the same amount again is a duplicate
//!   transmission (400, `response_code` 94) and another amount 412 `ERR1005`. There is no
//!   idempotency key, so a re-sent capture whose first answer was lost gets the 94.
//! - Scenarios: `Expired` 412 `ERR1006`, `Voided` 412 `ERR1007`; `Declined` 400 with
//!   `success: false` and `response_code` 5 (do not honour); `ServerError` 500 `ERR1500`; none of
//!   them captures. `Timeout` captures, then answers after `TIMEOUT_DELAY` (60 s); `MalformedBody`
//!   captures, then answers 201 with a body that is not JSON. `Pending` is `Approve`:
//!   PaymentOptions has no pending capture.
//! - `POST {prefix}/server-to-server-interface/void` (`void.rs`) cancels an authorization never
//!   captured; a capture of less than authorized releases the rest (both noted in the book).
//! - Answers carry the full test card number [`TEST_PAN`], as PaymentOptions' do: the connector
//!   must mask it (`replies.rs`).

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

use super::kit::{delay_of, header_str, held, random_uuid, Decision, Locked, Reply, Secrets};
use super::{Charged, Charges, Emulator, SandboxAuthorization, Scenario};
use crate::domain::{Money, Provider};
use replies::{answer_body, error, failure, Outcome};

mod replies;
mod void;

/// The card every sandbox authorization was made with (Visa's test number).
pub const TEST_PAN: &str = "4111111111111111";
/// The capture endpoint under the default path prefix.
const CAPTURE_PATH: &str = "/api/v1/server-to-server-interface/capture";
/// The same, as the published example writes it (`/api/v1` twice).
const DOUBLED_CAPTURE_PATH: &str = "/api/v1/api/v1/server-to-server-interface/capture";
/// The void endpoint, under the default prefix and doubled as the published example has it.
const VOID_PATH: &str = "/api/v1/server-to-server-interface/void";
const DOUBLED_VOID_PATH: &str = "/api/v1/api/v1/server-to-server-interface/void";
/// PaymentOptions' limits on the request fields.
const MAX_TRANSACTION_ID_CHARS: usize = 36;
const MAX_AMOUNT: i64 = 9_999_999_999;
const MAX_MERCHANT_ID_CHARS: usize = 10;
const MAX_NOTES_CHARS: usize = 128;
/// The `transaction_type` of each answer.
const CAPTURE: &str = "CAPTURE";
const VOID: &str = "VOID";

/// One authorization and its capture, if it has one.
struct Authorization {
    amount: Money,
    scenario: Scenario,
    /// Minor units of the one capture made.
    captured: Option<i64>,
    /// Voided through the API.
    voided: bool,
}

/// The emulated PaymentOptions: generated credentials plus its authorizations.
pub struct PaymentOptionsEmulator {
    base_url: String,
    basic_key: String,
    api_key: String,
    merchant_id: String,
    charges: Charges,
    authorizations: Locked<HashMap<String, Authorization>>,
    /// `transaction_details.ref`, a running number.
    next_ref: AtomicU64,
}

impl PaymentOptionsEmulator {
    pub(super) fn new(base_url: String, charges: Charges, secrets: &Secrets) -> Self {
        PaymentOptionsEmulator {
            base_url,
            charges,
            basic_key: secrets.hex("payment_options.basic_key", 48),
            api_key: secrets.hex("payment_options.api_key", 40),
            merchant_id: format!(
                "M{}",
                secrets.chars("payment_options.merchant_id", b"0123456789", 7)
            ),
            authorizations: Locked::default(),
            next_ref: AtomicU64::new(74_819),
        }
    }

    fn authorizations(&self) -> MutexGuard<'_, HashMap<String, Authorization>> {
        self.authorizations.lock()
    }

    fn credentials_ok(&self, headers: &HeaderMap) -> bool {
        let basic = header_str(headers, header::AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Basic "));
        basic == Some(self.basic_key.as_str())
            && header_str(headers, "x-api-key") == Some(self.api_key.as_str())
    }
}

impl Emulator for PaymentOptionsEmulator {
    /// The authorization is the body's `transactionId`.
    fn captured_authorization(&self, path: &str, body: &[u8]) -> Option<String> {
        if path != CAPTURE_PATH && path != DOUBLED_CAPTURE_PATH {
            return None;
        }
        let body: serde_json::Value = serde_json::from_slice(body).ok()?;
        Some(body["transactionId"].as_str()?.to_owned())
    }

    /// The `CAPTURE_*` variables a service needs to capture here: base URL and credentials.
    fn service_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "CAPTURE_PAYMENT_OPTIONS_BASE_URL".into(),
                self.base_url.clone(),
            ),
            (
                "CAPTURE_PAYMENT_OPTIONS_MERCHANT_ID".into(),
                self.merchant_id.clone(),
            ),
            (
                "CAPTURE_PAYMENT_OPTIONS_BASIC_KEY".into(),
                self.basic_key.clone(),
            ),
            (
                "CAPTURE_PAYMENT_OPTIONS_API_KEY".into(),
                self.api_key.clone(),
            ),
        ]
    }

    fn provider(&self) -> Provider {
        Provider::PaymentOptions
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route(CAPTURE_PATH, post(capture))
            .route(DOUBLED_CAPTURE_PATH, post(capture))
            .route(VOID_PATH, post(void::void))
            .route(DOUBLED_VOID_PATH, post(void::void))
            .with_state(self)
    }

    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization {
        let id = random_uuid();
        let status = match scenario {
            Scenario::Expired => "EXPIRED",
            Scenario::Voided => "VOIDED",
            _ => "AUTHORISED",
        };
        let authorization = Authorization {
            amount,
            scenario,
            captured: None,
            voided: false,
        };
        self.authorizations().insert(id.clone(), authorization);
        SandboxAuthorization::new(Provider::PaymentOptions, id, status, amount, scenario)
    }
}

/// `POST {prefix}/server-to-server-interface/capture`.
async fn capture(
    State(emulator): State<Arc<PaymentOptionsEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !emulator.credentials_ok(&headers) {
        return error(StatusCode::UNAUTHORIZED, "ERR1002", "Unauthorized.").into_response();
    }
    let (reply, delay) = decide(&emulator, &headers, &body).unwrap_or_else(|r| (r, None));
    held(delay).await;
    reply.into_response()
}

/// The documented capture body, checked field by field.
struct CaptureRequest {
    transaction_id: String,
    amount: i64,
    merchant_id: String,
}

/// The fields every request names, `transactionId` and `merchant_id`, read from a JSON body;
/// refusals are written for a request of `transaction_type`.
struct Named {
    value: Value,
    transaction_id: String,
    merchant_id: String,
}

fn parse_named(transaction_type: &str, headers: &HeaderMap, body: &[u8]) -> Result<Named, Reply> {
    let invalid = |message: &str| {
        failure(
            transaction_type,
            StatusCode::BAD_REQUEST,
            "ERR1003",
            message,
        )
    };
    let is_json = header_str(headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(invalid("Content-Type must be application/json."));
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| invalid("The request body is not valid JSON."))?;
    let transaction_id = value["transactionId"]
        .as_str()
        .filter(|t| !t.is_empty() && t.chars().count() <= MAX_TRANSACTION_ID_CHARS)
        .ok_or_else(|| invalid("transactionId is required: a string of at most 36 characters."))?
        .to_owned();
    let merchant_id = value["merchant_id"]
        .as_str()
        .filter(|m| !m.is_empty() && m.chars().count() <= MAX_MERCHANT_ID_CHARS)
        .ok_or_else(|| invalid("merchant_id is required: at most 10 characters."))?
        .to_owned();
    Ok(Named {
        value,
        transaction_id,
        merchant_id,
    })
}

fn parse_request(headers: &HeaderMap, body: &[u8]) -> Result<CaptureRequest, Reply> {
    let invalid = |message: &str| error(StatusCode::BAD_REQUEST, "ERR1003", message);
    let Named {
        value,
        transaction_id,
        merchant_id,
    } = parse_named(CAPTURE, headers, body)?;
    let amount = value["amount"]
        .as_i64()
        .filter(|a| (1..=MAX_AMOUNT).contains(a))
        .ok_or_else(|| invalid("amount is required: an integer of at most 10 digits."))?;
    match &value["notes"] {
        Value::Null => {}
        Value::String(notes) if notes.chars().count() <= MAX_NOTES_CHARS => {}
        _ => return Err(invalid("notes must be a string of at most 128 characters.")),
    }
    Ok(CaptureRequest {
        transaction_id,
        amount,
        merchant_id,
    })
}

/// Applies PaymentOptions' capture rules to one request, recording the capture when money moves.
fn decide(emulator: &PaymentOptionsEmulator, headers: &HeaderMap, body: &[u8]) -> Decision {
    let request = parse_request(headers, body)?;
    let mut authorizations = emulator.authorizations();
    let auth = open_authorization(
        CAPTURE,
        emulator,
        &mut authorizations,
        &request.transaction_id,
        &request.merchant_id,
    )?;
    let refuse =
        |code: &str, message: &str| Err(error(StatusCode::PRECONDITION_FAILED, code, message));
    let currency = auth.amount.currency();
    let asked = Money::from_minor_units(currency, request.amount);
    let answer = |status: StatusCode, response_code: i64, gateway: (&str, &str, &str)| {
        let outcome = Outcome {
            transaction_type: CAPTURE,
            status,
            response_code,
            gateway,
        };
        answer_body(emulator, &request.transaction_id, asked, outcome)
    };
    match auth.captured {
        Some(captured) if captured == request.amount => {
            return Err(answer(
                StatusCode::BAD_REQUEST,
                94,
                ("ERROR", "Duplicate transmission.", "ERR0094"),
            ));
        }
        Some(_) => return refuse("ERR1005", "The transaction has already been captured."),
        None => {}
    }
    if request.amount > auth.amount.minor_units() {
        return refuse(
            "ERR1004",
            "The capture amount exceeds the authorised amount.",
        );
    }
    match auth.scenario {
        Scenario::Declined => {
            return Err(answer(
                StatusCode::BAD_REQUEST,
                5,
                ("ERROR", "Do not honour.", "ERR0005"),
            ));
        }
        Scenario::ServerError => {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR1500",
                "Internal server error.",
            ));
        }
        Scenario::Approve
        | Scenario::Pending
        | Scenario::Expired
        | Scenario::Voided
        | Scenario::Timeout
        | Scenario::MalformedBody => {}
    }
    auth.captured = Some(request.amount);
    // No idempotency key: one capture per authorization, named by its transactionId.
    let charged = Charged {
        charges: &emulator.charges,
        key: None,
    };
    let money = |minor| Money::from_minor_units(currency, minor);
    let id = &request.transaction_id;
    charged.record(Provider::PaymentOptions, id, id, money(request.amount));
    // A capture for less than was authorized releases the rest.
    let rest = money(auth.amount.minor_units() - request.amount);
    charged.closed(Provider::PaymentOptions, id, id, rest);
    let scenario = auth.scenario;
    drop(authorizations);
    let success = ("INFO", "Amount successfully captured.", "INFO0001");
    let reply = match scenario {
        Scenario::MalformedBody => Reply {
            status: StatusCode::CREATED,
            body: Bytes::from_static(b"{\"success\": true, \"status_code\": 201, \"transac"),
        },
        _ => answer(StatusCode::CREATED, 0, success),
    };
    let delay = delay_of(scenario);
    Ok((reply, delay))
}

/// The authorization `transaction_id` of `merchant_id` if it is still open (neither expired nor
/// voided); else the refusal, written for a request of `transaction_type`.
fn open_authorization<'a>(
    transaction_type: &str,
    emulator: &PaymentOptionsEmulator,
    authorizations: &'a mut HashMap<String, Authorization>,
    transaction_id: &str,
    merchant_id: &str,
) -> Result<&'a mut Authorization, Reply> {
    let refuse = |status, code, message| failure(transaction_type, status, code, message);
    if merchant_id != emulator.merchant_id {
        return Err(refuse(
            StatusCode::NOT_ACCEPTABLE,
            "ERR1008",
            "The merchant_id does not belong to this API key.",
        ));
    }
    let Some(auth) = authorizations.get_mut(transaction_id) else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "ERR1001",
            "Transaction not found.",
        ));
    };
    let failed = StatusCode::PRECONDITION_FAILED;
    if auth.scenario == Scenario::Expired {
        return Err(refuse(failed, "ERR1006", "The authorisation has expired."));
    }
    if auth.scenario == Scenario::Voided || auth.voided {
        return Err(refuse(
            failed,
            "ERR1007",
            "The authorisation has been voided.",
        ));
    }
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_uuids_and_fit_the_transaction_id_limit() {
        let id = random_uuid();
        assert_eq!(id.len(), MAX_TRANSACTION_ID_CHARS);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(&id[14..15], "4");
    }
}
