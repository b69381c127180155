//! Cybersource emulator: REST payments capture and capture lookup, as Cybersource documents them
//! (providers.md, seed 000), so the real Cybersource connector can be exercised end to end.
//!
//! State lives in memory behind one `std::sync::Mutex`, never held across an `.await`.
//! Rules worth knowing:
//! - Every request must carry a valid HTTP Signature ([`auth`]); otherwise 401
//!   `{"response":{"rmsg":"Authentication Failed"}}` and nothing happens.
//! - Cybersource has no idempotency key. A capture whose `clientReferenceInformation.code` and
//!   amount match an earlier recorded capture is refused with 400 `DUPLICATE_REQUEST`, checked
//!   before the authorization's state, so a retry of a final capture is still a duplicate.
//! - Multiple partial captures are allowed up to the authorized amount (`EXCEEDS_AUTH_AMOUNT`
//!   beyond). `isFinal: "true"` (a string, as the REST reference types it; a JSON boolean is
//!   taken too), or `captureSequenceNumber` = `totalCaptureCount`, closes the authorization
//!   (its remainder is reversed): later captures get `AUTH_ALREADY_REVERSED`.
//! - An unknown authorization id gets 400 `MISSING_AUTH` ("no corresponding, unused
//!   authorization record"), as Cybersource answers captures; a capture in another currency gets
//!   400 `INVALID_DATA` naming `orderInformation.amountDetails.currency`.
//! - Scenarios: `Approve` and `Pending` answer 201 `PENDING` (Cybersource's answer to every
//!   accepted capture); a later `GET` shows `TRANSMITTED` (the batch ran), except under
//!   `Pending`, where it stays `PENDING`. `Declined` → `MISSING_AUTH` (a declined authorization
//!   leaves nothing to capture), `Voided` → `AUTH_ALREADY_REVERSED`, `Expired` →
//!   `TRANSACTION_ALREADY_REVERSED_OR_SETTLED`; `ServerError` → 502 `SERVER_ERROR`/`SYSTEM_ERROR`,
//!   nothing recorded; `Timeout` records the capture, then answers 502 `SERVER_TIMEOUT` only
//!   after `TIMEOUT_DELAY` (60 s) (a retry meanwhile gets `DUPLICATE_REQUEST`); `MalformedBody`
//!   records the capture and answers 201 with a body that is not JSON.
//! - `POST /pts/v2/payments/{id}/reversals` (`reversals.rs`) reverses an authorization never
//!   captured; a final capture reverses the rest by itself (both noted in the book).
//! - Every answer carries a `v-c-correlation-id` header.

mod auth;
mod replies;
mod request;
mod reversals;

use std::collections::HashMap;
use std::sync::{Arc, MutexGuard};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

use super::kit::{
    delay_of, held, json_reply, random_alnum, random_digits, random_hex, rfc3339, Decision, Locked,
    Reply, Secrets,
};
use super::{Charged, Charges, Emulator, SandboxAuthorization, Scenario};
use crate::domain::{Money, Provider};
use auth::Credentials;
use replies::{authentication_failed, invalid, respond, server_error};
use request::{numbering, parse_amount, reference_code, AmountDetails, CaptureRequest, SEQUENCE};

const AMOUNT: &str = "orderInformation.amountDetails.totalAmount";
const CURRENCY: &str = "orderInformation.amountDetails.currency";

/// One authorization and what has been taken from it.
struct Authorization {
    amount: Money,
    scenario: Scenario,
    /// Minor units captured so far.
    captured: i64,
    /// Closed by a final capture (its remainder reversed) or by a reversal.
    closed: bool,
    /// Reversed by an authorization reversal.
    reversed: bool,
    /// Captures taken so far.
    captures: u64,
}

/// A recorded capture, for `GET /pts/v2/captures/{id}`.
struct Recorded {
    body: Value,
    scenario: Scenario,
}

#[derive(Default)]
struct Ledger {
    authorizations: HashMap<String, Authorization>,
    captures: HashMap<String, Recorded>,
    /// `(clientReferenceInformation.code, currency, minor units)` of recorded captures.
    seen: Vec<(String, String, i64)>,
}

/// The emulated Cybersource: one merchant's generated credentials plus the ledger.
pub struct CybersourceEmulator {
    base_url: String,
    /// The path of `base_url` (`/cybersource`), part of every signed `request-target`.
    path_prefix: String,
    credentials: Credentials,
    charges: Charges,
    ledger: Locked<Ledger>,
}

impl CybersourceEmulator {
    pub(super) fn new(base_url: String, charges: Charges, secrets: &Secrets) -> Self {
        let secret = secrets.bytes("cybersource.secret", 32);
        let id = secrets.hex("cybersource.key_id", 32);
        let key_id = format!(
            "{}-{}-{}-{}-{}",
            &id[0..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..32]
        );
        let path_prefix = base_url
            .parse::<Uri>()
            .map(|uri| uri.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        CybersourceEmulator {
            base_url,
            path_prefix,
            credentials: Credentials {
                merchant_id: format!("sandbox_{}", secrets.hex("cybersource.merchant_id", 12)),
                key_id,
                secret,
            },
            charges,
            ledger: Locked::default(),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock()
    }

    fn authenticated(
        &self,
        method: &str,
        uri: &Uri,
        headers: &HeaderMap,
        body: Option<&Bytes>,
    ) -> bool {
        // Routes are nested under the provider prefix, which the router strips from `uri`.
        let relative = uri
            .path_and_query()
            .map_or_else(|| uri.path(), |p| p.as_str());
        let target = format!("{}{relative}", self.path_prefix);
        match auth::verify(&self.credentials, method, &target, headers, body) {
            Ok(()) => true,
            Err(why) => {
                tracing::debug!(why, "emulated Cybersource refused a signature");
                false
            }
        }
    }
}

impl Emulator for CybersourceEmulator {
    fn captured_authorization(&self, path: &str, _body: &[u8]) -> Option<String> {
        super::faults::id_between(path, "/pts/v2/payments/", "/captures").map(Into::into)
    }

    /// Cybersource takes no idempotency key; the book tells its captures apart by their
    /// `clientReferenceInformation.code`.
    fn idempotency_key(&self, _headers: &HeaderMap, body: &[u8]) -> Option<String> {
        let request: CaptureRequest = serde_json::from_slice(body).ok()?;
        request.client_reference_information?.code
    }

    /// The `CAPTURE_*` variables a service needs to capture here: base URL and credentials.
    fn service_env(&self) -> Vec<(String, String)> {
        vec![
            ("CAPTURE_CYBERSOURCE_BASE_URL".into(), self.base_url.clone()),
            (
                "CAPTURE_CYBERSOURCE_MERCHANT_ID".into(),
                self.credentials.merchant_id.clone(),
            ),
            (
                "CAPTURE_CYBERSOURCE_KEY_ID".into(),
                self.credentials.key_id.clone(),
            ),
            (
                "CAPTURE_CYBERSOURCE_SHARED_SECRET".into(),
                base64::engine::general_purpose::STANDARD.encode(&self.credentials.secret),
            ),
        ]
    }

    fn provider(&self) -> Provider {
        Provider::Cybersource
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route(
                "/pts/v2/payments/{authorization_id}/captures",
                post(capture),
            )
            .route(
                "/pts/v2/payments/{authorization_id}/reversals",
                post(reversals::reverse),
            )
            .route("/pts/v2/captures/{capture_id}", get(get_capture))
            .route("/tss/v2/searches", post(search))
            .with_state(self)
    }

    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization {
        let id = random_digits(22);
        let status = match scenario {
            Scenario::Declined => "DECLINED",
            Scenario::Voided => "REVERSED",
            _ => "AUTHORIZED",
        };
        let authorization = Authorization {
            amount,
            scenario,
            captured: 0,
            closed: false,
            reversed: false,
            captures: 0,
        };
        self.ledger()
            .authorizations
            .insert(id.clone(), authorization);
        SandboxAuthorization::new(Provider::Cybersource, id, status, amount, scenario)
    }
}

/// `POST /pts/v2/payments/{id}/captures`.
async fn capture(
    State(cybersource): State<Arc<CybersourceEmulator>>,
    Path(authorization_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !cybersource.authenticated("post", &uri, &headers, Some(&body)) {
        return respond(authentication_failed());
    }
    let (reply, delay) = {
        let mut ledger = cybersource.ledger();
        let charges = &cybersource.charges;
        decide(
            &cybersource.base_url,
            &mut ledger,
            charges,
            &authorization_id,
            &body,
        )
        .unwrap_or_else(|refusal| (refusal, None))
    };
    held(delay).await;
    respond(reply)
}

/// `GET /pts/v2/captures/{id}`: the recorded capture, `TRANSMITTED` once "the batch ran".
async fn get_capture(
    State(cybersource): State<Arc<CybersourceEmulator>>,
    Path(capture_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !cybersource.authenticated("get", &uri, &headers, None) {
        return respond(authentication_failed());
    }
    let ledger = cybersource.ledger();
    let Some(recorded) = ledger.captures.get(&capture_id) else {
        let body = json!({
            "submitTimeUtc": rfc3339(SystemTime::now()),
            "status": "NOT_FOUND",
            "reason": "NOT_FOUND",
            "message": "The requested resource does not exist",
        });
        return respond(json_reply(StatusCode::NOT_FOUND, &body));
    };
    let mut body = recorded.body.clone();
    if recorded.scenario != Scenario::Pending {
        body["status"] = json!("TRANSMITTED");
    }
    respond(json_reply(StatusCode::OK, &body))
}

/// `POST /tss/v2/searches`: Transaction Search, for the one query the emulator understands,
/// `clientReferenceInformation.code:<code>`. Each recorded capture under that code is one
/// summary whose `ics_bill` application succeeded. *Unconfirmed*: the summary's fields beyond
/// `id`, `clientReferenceInformation.code` and `applicationInformation.applications[]`
/// (`name`, `rCode`, `rFlag`), and how long a real search lags behind a capture (here: not at
/// all).
async fn search(
    State(cybersource): State<Arc<CybersourceEmulator>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !cybersource.authenticated("post", &uri, &headers, Some(&body)) {
        return respond(authentication_failed());
    }
    let request = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let Some(code) = request["query"]
        .as_str()
        .and_then(|q| q.strip_prefix("clientReferenceInformation.code:"))
    else {
        return respond(invalid("INVALID_DATA", Some("query"), ""));
    };
    let ledger = cybersource.ledger();
    let summaries: Vec<Value> = ledger
        .captures
        .values()
        .filter(|recorded| recorded.body["clientReferenceInformation"]["code"] == code)
        .map(|recorded| {
            json!({
                "id": recorded.body["id"],
                "submitTimeUtc": recorded.body["submitTimeUtc"],
                "clientReferenceInformation": {"code": code},
                "orderInformation": recorded.body["orderInformation"],
                "applicationInformation": {"applications": [
                    {"name": "ics_bill", "reasonCode": "100", "rCode": "1", "rFlag": "SOK"}
                ]},
            })
        })
        .collect();
    let answer = json!({
        "searchId": random_hex(16),
        "save": false,
        "name": request["name"],
        "timezone": "UTC",
        "query": format!("clientReferenceInformation.code:{code}"),
        "count": summaries.len(),
        "totalCount": summaries.len(),
        "submitTimeUtc": rfc3339(SystemTime::now()),
        "_embedded": {"transactionSummaries": summaries},
    });
    respond(json_reply(StatusCode::CREATED, &answer))
}

/// Applies Cybersource's capture rules to one request, updating the ledger when money moves.
fn decide(
    base_url: &str,
    ledger: &mut Ledger,
    charges: &Charges,
    auth_id: &str,
    body: &[u8],
) -> Decision {
    let request: CaptureRequest = serde_json::from_slice(body)
        .map_err(|_| invalid("INVALID_DATA", None, "The request is not well-formed JSON"))?;
    let code = reference_code(request.client_reference_information)?;
    for (i, field) in request.merchant_defined_information.iter().enumerate() {
        let key_ok = field
            .key
            .as_ref()
            .is_some_and(|k| (1..=50).contains(&k.chars().count()));
        let value_ok = field
            .value
            .as_ref()
            .is_some_and(|v| v.chars().count() <= 255);
        if !(key_ok && value_ok) {
            let at = format!("merchantDefinedInformation[{i}]");
            return Err(invalid("INVALID_DATA", Some(&at), ""));
        }
    }
    let details = request.order_information.and_then(|o| o.amount_details);
    let (value, currency) = match details {
        Some(AmountDetails {
            total_amount: Some(value),
            currency: Some(currency),
        }) => (value, currency),
        Some(AmountDetails {
            total_amount: Some(_),
            ..
        }) => return Err(invalid("MISSING_FIELD", Some(CURRENCY), "")),
        _ => return Err(invalid("MISSING_FIELD", Some(AMOUNT), "")),
    };
    let options = request
        .processing_information
        .and_then(|p| p.capture_options);
    let numbering = numbering(options.as_ref())?;

    let Some(auth) = ledger.authorizations.get_mut(auth_id) else {
        return Err(invalid("MISSING_AUTH", None, ""));
    };
    if currency != auth.amount.currency().code() {
        return Err(invalid("INVALID_DATA", Some(CURRENCY), ""));
    }
    let asked = parse_amount(&value, auth.amount, AMOUNT)?;
    if !code.is_empty()
        && ledger
            .seen
            .iter()
            .any(|(c, cur, minor)| *c == code && *cur == currency && *minor == asked.minor_units())
    {
        return Err(invalid("DUPLICATE_REQUEST", None, ""));
    }
    match auth.scenario {
        Scenario::Declined => return Err(invalid("MISSING_AUTH", None, "")),
        Scenario::Voided => return Err(invalid("AUTH_ALREADY_REVERSED", None, "")),
        Scenario::Expired => {
            return Err(invalid("TRANSACTION_ALREADY_REVERSED_OR_SETTLED", None, ""))
        }
        _ => {}
    }
    if auth.closed {
        return Err(invalid("AUTH_ALREADY_REVERSED", None, ""));
    }
    // The processor takes a second capture of an authorization only as a numbered one, and
    // numbers count up from 1 (providers.md: `captureSequenceNumber` for multiple captures).
    // *Unconfirmed*: the exact REST answer to a missing or wrong number; ActiveMerchant's users
    // meet a missing one as reason 242 of the older SOAP API.
    match numbering.sequence {
        None if auth.captures > 0 => return Err(invalid("MISSING_FIELD", Some(SEQUENCE), "")),
        Some(n) if n != auth.captures + 1 => {
            return Err(invalid("INVALID_DATA", Some(SEQUENCE), ""))
        }
        _ => {}
    }
    if asked.minor_units() > auth.amount.minor_units() - auth.captured {
        return Err(invalid("EXCEEDS_AUTH_AMOUNT", Some(AMOUNT), ""));
    }
    if auth.scenario == Scenario::ServerError {
        return Err(server_error("SYSTEM_ERROR"));
    }
    auth.captured += asked.minor_units();
    auth.closed |= numbering.closes;
    auth.captures += 1;
    let rest = Money::from_minor_units(
        auth.amount.currency(),
        auth.amount.minor_units() - auth.captured,
    );
    let scenario = auth.scenario;
    ledger
        .seen
        .push((code.clone(), currency.clone(), asked.minor_units()));

    let id = random_digits(22);
    let full = json!({
        "_links": {
            "void": {"method": "POST", "href": format!("/pts/v2/captures/{id}/voids")},
            "self": {"method": "GET", "href": format!("/pts/v2/captures/{id}")},
            "refund": {"method": "POST", "href": format!("/pts/v2/captures/{id}/refunds")},
        },
        "clientReferenceInformation": {"code": code},
        "id": id,
        "orderInformation": {"amountDetails": {
            "totalAmount": asked.to_major_string(),
            "currency": currency,
        }},
        "processorInformation": {"transactionId": random_digits(15)},
        "reconciliationId": random_alnum(16),
        "status": "PENDING",
        "submitTimeUtc": rfc3339(SystemTime::now()),
    });
    // Cybersource takes no idempotency key: a capture is told apart by its reference code.
    let charged = Charged {
        charges,
        key: Some(&code),
    };
    charged.record(Provider::Cybersource, auth_id, &id, asked);
    if numbering.closes {
        charged.closed(Provider::Cybersource, auth_id, &id, rest);
    }
    ledger.captures.insert(
        id,
        Recorded {
            body: full.clone(),
            scenario,
        },
    );
    tracing::debug!(base_url, auth_id, "emulated Cybersource recorded a capture");
    Ok(match scenario {
        Scenario::MalformedBody => (
            Reply {
                status: StatusCode::CREATED,
                body: Bytes::from_static(b"<html><body>Bad Gateway</body>"),
            },
            None,
        ),
        Scenario::Timeout => (server_error("SERVER_TIMEOUT"), delay_of(Scenario::Timeout)),
        _ => (json_reply(StatusCode::CREATED, &full), None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "7000000000000000000001";

    fn ledger() -> Result<Ledger, String> {
        let amount = Money::parse_positive("USD", "100.00").map_err(|e| e.to_string())?;
        let authorization = Authorization {
            amount,
            scenario: Scenario::Approve,
            captured: 0,
            closed: false,
            reversed: false,
            captures: 0,
        };
        Ok(Ledger {
            authorizations: HashMap::from([(AUTH.to_owned(), authorization)]),
            captures: HashMap::new(),
            seen: Vec::new(),
        })
    }

    /// A capture of 10.00 USD as `code`, with `options` as its `captureOptions` (or none).
    fn capture(ledger: &mut Ledger, code: &str, options: Option<Value>) -> (StatusCode, Value) {
        let mut body = json!({
            "clientReferenceInformation": {"code": code},
            "orderInformation": {"amountDetails": {"totalAmount": "10.00", "currency": "USD"}},
        });
        if let Some(options) = options {
            body["processingInformation"] = json!({ "captureOptions": options });
        }
        let charges = Charges::default();
        let body = body.to_string();
        let reply = match decide("http://sandbox", ledger, &charges, AUTH, body.as_bytes()) {
            Ok((reply, _)) | Err(reply) => reply,
        };
        let answer = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        (reply.status, answer)
    }

    fn refusal(answer: &Value) -> (&str, &str) {
        (
            answer["reason"].as_str().unwrap_or_default(),
            answer["details"][0]["field"].as_str().unwrap_or_default(),
        )
    }

    #[test]
    fn a_second_capture_is_taken_only_numbered_and_in_order() -> Result<(), String> {
        let mut ledger = ledger()?;
        // The first may go unnumbered (a single capture).
        assert_eq!(capture(&mut ledger, "cap_1", None).0, StatusCode::CREATED);
        let (status, answer) = capture(&mut ledger, "cap_2", None);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal(&answer), ("MISSING_FIELD", SEQUENCE));
        let only_number = json!({"captureSequenceNumber": 2});
        let (status, answer) = capture(&mut ledger, "cap_2", Some(only_number));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal(&answer).0, "MISSING_FIELD");
        let skipped = json!({"captureSequenceNumber": 3, "totalCaptureCount": 4});
        let (status, answer) = capture(&mut ledger, "cap_2", Some(skipped));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal(&answer), ("INVALID_DATA", SEQUENCE));
        let second = json!({"captureSequenceNumber": 2, "totalCaptureCount": 3});
        assert_eq!(
            capture(&mut ledger, "cap_2", Some(second)).0,
            StatusCode::CREATED
        );
        // The number reaching the total closes the authorization.
        let last = json!({"captureSequenceNumber": 3, "totalCaptureCount": 3});
        assert_eq!(
            capture(&mut ledger, "cap_3", Some(last)).0,
            StatusCode::CREATED
        );
        let after = json!({"captureSequenceNumber": 4, "totalCaptureCount": 5});
        let (status, answer) = capture(&mut ledger, "cap_4", Some(after));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refusal(&answer).0, "AUTH_ALREADY_REVERSED");
        Ok(())
    }
}
