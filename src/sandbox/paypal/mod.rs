//! PayPal emulator: OAuth2 client credentials and Payments v2 capture, as PayPal documents them
//! (providers.md, seed 004), so the real PayPal connector can be exercised end to end.
//!
//! State lives in memory behind one `std::sync::Mutex`, never held across an `.await`.
//! Rules worth knowing:
//! - A `PayPal-Request-Id` seen before gets the stored answer (status and body, byte for byte),
//!   whatever the new body says. Captures (201) and business refusals (422) are stored;
//!   malformed requests, 401, 404 and 5xx are not, since nothing happened.
//! - The `Timeout` scenario records the capture and its answer *before* sleeping, as a provider
//!   whose answer was lost would: a retry with the same request id gets the answer at once.
//! - The PayPal fee is `3.49 % × gross + fixed`, fixed being 49 in currencies without decimals
//!   (JPY) and 0.49 otherwise, rounded half-even to the currency's decimals, never above gross.
//! - Webhooks (`notifications.rs`) follow capture state changes made through the admin endpoints
//!   (`admin.rs`: complete, deny, refund, reverse a capture); `POST
//!   /v1/notifications/verify-webhook-signature` verifies exactly what was sent. Captures made
//!   through the API send none.
//! - `GET /v2/payments/refunds/{id}` reads a refund made through the admin endpoints.
//! - `POST /v2/payments/authorizations/{id}/void` and `GET /v2/payments/authorizations/{id}`
//!   (`authorizations.rs`): a void releases what the authorization has left; a capture with
//!   `final_capture: true` releases the rest by itself (both noted in the book).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, MutexGuard};
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

mod admin;
mod amounts;
mod authorizations;
mod errors;
mod notifications;

use super::kit::{
    delay_of, header_str, held, json_reply, random_alnum, random_digits, random_hex, rfc3339, Book,
    Decision, Locked, Reply, Secrets,
};
use super::webhooks::Webhooks;
use super::{Charged, Charges, Emulator, MoneyJson, SandboxAuthorization, Scenario};
use crate::domain::{Money, Provider};
use amounts::{parse_amount, paypal_fee, receivable_breakdown};
use errors::{authentication_failure, error, invalid, unprocessable};

/// The request field of platform fees, named in their errors.
const FEES: &str = "/payment_instruction/platform_fees";
/// Token lifetime announced in the token answer (PayPal's usual nine hours).
const TOKEN_EXPIRES_IN: u64 = 32_400;

/// One authorization and what has been taken from it.
struct Authorization {
    amount: Money,
    scenario: Scenario,
    /// Minor units captured so far by completed or pending captures (declined ones do not count).
    captured: i64,
    /// Closed by a final or a full (no-amount) capture.
    closed: bool,
    /// Voided through the API: nothing more can be captured.
    voided: bool,
    /// When it was made, for its representation.
    created: SystemTime,
}

/// One capture: its full representation and what later changes to it need.
struct Capture {
    /// As `GET /v2/payments/captures/{id}` answers it.
    json: Value,
    authorization_id: String,
    gross: Money,
    /// It closed its authorization (a final or a full capture).
    closes: bool,
    /// The request's platform fees, as echoed in the breakdown, and their total in minor units.
    platform_fees: Vec<Value>,
    fee_total: i64,
    /// Minor units refunded (or reversed) so far, and the part of the PayPal fee given back.
    refunded: i64,
    refunded_fee: i64,
}

#[derive(Default)]
struct Ledger {
    tokens: HashSet<String>,
    authorizations: HashMap<String, Authorization>,
    captures: HashMap<String, Capture>,
    /// Refunds by id, for `GET /v2/payments/refunds/{id}`.
    refunds: HashMap<String, Value>,
}

/// The emulated PayPal: generated credentials plus the ledger.
pub(super) struct PaypalEmulator {
    base_url: String,
    client_id: String,
    client_secret: String,
    /// The id of the merchant's webhook, as `verify-webhook-signature` takes it.
    webhook_id: String,
    /// The sandbox's private key that its transmission signatures are made with.
    signing_key: String,
    webhooks: Webhooks,
    charges: Charges,
    ledger: Locked<Book<Ledger>>,
    /// What was sent with each transmission, for `verify-webhook-signature`.
    transmissions: Locked<notifications::Transmissions>,
}

impl PaypalEmulator {
    pub(super) fn new(
        base_url: String,
        webhooks: Webhooks,
        charges: Charges,
        secrets: &Secrets,
    ) -> Self {
        PaypalEmulator {
            base_url,
            charges,
            client_id: secrets.hex("paypal.client_id", 40),
            client_secret: secrets.hex("paypal.client_secret", 40),
            webhook_id: secrets.chars(
                "paypal.webhook_id",
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                17,
            ),
            signing_key: secrets.hex("paypal.signing_key", 64),
            webhooks,
            ledger: Locked::default(),
            transmissions: Locked::default(),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Book<Ledger>> {
        self.ledger.lock()
    }

    fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        header_str(headers, header::AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| self.ledger().tokens.contains(token))
    }

    fn basic_ok(&self, headers: &HeaderMap) -> bool {
        let decoded = header_str(headers, header::AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        decoded.as_deref().and_then(|d| d.split_once(':'))
            == Some((self.client_id.as_str(), self.client_secret.as_str()))
    }
}

impl Emulator for PaypalEmulator {
    fn captured_authorization(&self, path: &str, _body: &[u8]) -> Option<String> {
        super::faults::id_between(path, "/v2/payments/authorizations/", "/capture").map(Into::into)
    }

    fn idempotency_key(&self, headers: &HeaderMap, _body: &[u8]) -> Option<String> {
        request_id(headers)
    }

    /// PayPal's own capture status: its words are the service's.
    fn capture_status(&self, _authorization_id: &str, capture_id: &str) -> Option<String> {
        let ledger = self.ledger();
        let status = ledger.captures.get(capture_id)?.json["status"].as_str()?;
        Some(status.to_owned())
    }

    /// The `CAPTURE_*` variables a service needs to capture here: base URL and credentials.
    fn service_env(&self) -> Vec<(String, String)> {
        vec![
            ("CAPTURE_PAYPAL_BASE_URL".into(), self.base_url.clone()),
            ("CAPTURE_PAYPAL_CLIENT_ID".into(), self.client_id.clone()),
            (
                "CAPTURE_PAYPAL_CLIENT_SECRET".into(),
                self.client_secret.clone(),
            ),
            ("CAPTURE_PAYPAL_WEBHOOK_ID".into(), self.webhook_id.clone()),
        ]
    }

    fn provider(&self) -> Provider {
        Provider::Paypal
    }

    fn routes(self: Arc<Self>) -> Router {
        Router::new()
            .route("/v1/oauth2/token", post(token))
            .route(
                "/v2/payments/authorizations/{authorization_id}/capture",
                post(capture),
            )
            .route(
                "/v2/payments/authorizations/{authorization_id}/void",
                post(authorizations::void),
            )
            .route(
                "/v2/payments/authorizations/{authorization_id}",
                get(authorizations::show),
            )
            .route("/v2/payments/captures/{capture_id}", get(get_capture))
            .route("/v2/payments/refunds/{refund_id}", get(get_refund))
            .route(
                "/v1/notifications/verify-webhook-signature",
                post(notifications::verify),
            )
            .with_state(self)
    }

    fn admin_routes(self: Arc<Self>) -> Option<Router> {
        Some(admin::routes(self))
    }

    fn authorize(&self, amount: Money, scenario: Scenario) -> SandboxAuthorization {
        let id = random_alnum(17);
        let status = match scenario {
            Scenario::Expired => "EXPIRED",
            Scenario::Voided => "VOIDED",
            _ => "CREATED",
        };
        let authorization = Authorization {
            amount,
            scenario,
            captured: 0,
            closed: false,
            voided: false,
            created: SystemTime::now(),
        };
        self.ledger()
            .authorizations
            .insert(id.clone(), authorization);
        SandboxAuthorization::new(Provider::Paypal, id, status, amount, scenario)
    }
}

/// The `PayPal-Request-Id` a capture or a void carries: PayPal's idempotency key.
fn request_id(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "paypal-request-id").map(str::to_owned)
}

/// Whether the request asks for the full representation (`Prefer: return=representation`).
fn wants_representation(headers: &HeaderMap) -> bool {
    header_str(headers, "prefer").is_some_and(|v| {
        v.split([',', ';'])
            .any(|p| p.trim() == "return=representation")
    })
}

/// `POST /v1/oauth2/token`: Basic client credentials and `grant_type=client_credentials`.
async fn token(
    State(paypal): State<Arc<PaypalEmulator>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !paypal.basic_ok(&headers) {
        let body =
            json!({"error": "invalid_client", "error_description": "Client Authentication failed"});
        return json_reply(StatusCode::UNAUTHORIZED, &body).into_response();
    }
    let form = String::from_utf8_lossy(&body);
    if !form
        .split('&')
        .any(|pair| pair == "grant_type=client_credentials")
    {
        let body =
            json!({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"});
        return json_reply(StatusCode::BAD_REQUEST, &body).into_response();
    }
    let access_token = format!("A21AA{}", random_alnum(90));
    paypal.ledger().tokens.insert(access_token.clone());
    let body = json!({
        "scope": "https://uri.paypal.com/services/payments/payment/authcapture https://uri.paypal.com/services/payments/refund",
        "access_token": access_token,
        "token_type": "Bearer",
        "app_id": format!("APP-{}", random_alnum(17)),
        "expires_in": TOKEN_EXPIRES_IN,
        "nonce": format!("{}{}", rfc3339(SystemTime::now()), random_hex(43)),
    });
    json_reply(StatusCode::OK, &body).into_response()
}

/// `POST /v2/payments/authorizations/{id}/capture`.
async fn capture(
    State(paypal): State<Arc<PaypalEmulator>>,
    Path(authorization_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !paypal.bearer_ok(&headers) {
        return authentication_failure().into_response();
    }
    let is_json = header_str(&headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|v| v.starts_with("application/json"));
    if !body.is_empty() && !is_json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            None,
        )
        .into_response();
    }
    let request_id = request_id(&headers);
    let representation = wants_representation(&headers);
    // PayPal keeps its answers to a PayPal-Request-Id: a capture (201) or a refusal (422).
    let charged = Charged {
        charges: &paypal.charges,
        key: request_id.as_deref(),
    };
    let (reply, delay) = paypal.ledger().replay_or(
        request_id.clone(),
        |status| matches!(status.as_u16(), 201 | 422),
        |ledger| {
            decide(
                &paypal.base_url,
                ledger,
                &authorization_id,
                &body,
                representation,
                charged,
            )
        },
    );
    held(delay).await;
    reply.into_response()
}

/// `GET /v2/payments/captures/{id}`: the full representation of a recorded capture.
async fn get_capture(
    State(paypal): State<Arc<PaypalEmulator>>,
    Path(capture_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !paypal.bearer_ok(&headers) {
        return authentication_failure().into_response();
    }
    match paypal.ledger().captures.get(&capture_id) {
        Some(capture) => json_reply(StatusCode::OK, &capture.json).into_response(),
        None => error(StatusCode::NOT_FOUND, "INVALID_RESOURCE_ID", None).into_response(),
    }
}

/// `GET /v2/payments/refunds/{id}`: a refund made through the admin endpoints.
async fn get_refund(
    State(paypal): State<Arc<PaypalEmulator>>,
    Path(refund_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !paypal.bearer_ok(&headers) {
        return authentication_failure().into_response();
    }
    match paypal.ledger().refunds.get(&refund_id) {
        Some(refund) => json_reply(StatusCode::OK, refund).into_response(),
        None => error(StatusCode::NOT_FOUND, "INVALID_RESOURCE_ID", None).into_response(),
    }
}

/// The capture request body; fields the emulator does not use are accepted and ignored.
#[derive(Deserialize, Default)]
struct CaptureRequest {
    amount: Option<MoneyJson>,
    invoice_id: Option<String>,
    #[serde(default)]
    final_capture: bool,
    payment_instruction: Option<PaymentInstruction>,
}

#[derive(Deserialize)]
struct PaymentInstruction {
    #[serde(default)]
    platform_fees: Vec<Value>,
    disbursement_mode: Option<String>,
}

/// Applies PayPal's capture rules to one request, updating the ledger when money moves.
fn decide(
    base_url: &str,
    ledger: &mut Ledger,
    auth_id: &str,
    body: &[u8],
    representation: bool,
    charged: Charged<'_>,
) -> Decision {
    let request = parse_request(body)?;
    let Some(auth) = ledger.authorizations.get_mut(auth_id) else {
        return Err(error(StatusCode::NOT_FOUND, "INVALID_RESOURCE_ID", None));
    };
    let refuse = |issue: &str, at: Option<(&str, &str)>| Err(unprocessable(issue, at));
    if auth.scenario == Scenario::Expired {
        return refuse("AUTHORIZATION_EXPIRED", None);
    }
    if auth.scenario == Scenario::Voided || auth.voided {
        return refuse("AUTHORIZATION_VOIDED", None);
    }
    let remaining = auth.amount.minor_units() - auth.captured;
    if auth.closed || remaining <= 0 {
        return refuse("AUTHORIZATION_ALREADY_CAPTURED", None);
    }
    let currency = auth.amount.currency();
    let (gross, closes) = match &request.amount {
        None => (Money::from_minor_units(currency, remaining), true),
        Some(asked) => {
            let money = parse_amount(asked, currency, "/amount")?;
            if money.minor_units() > remaining {
                return refuse(
                    "MAX_CAPTURE_AMOUNT_EXCEEDED",
                    Some(("/amount/value", &asked.value)),
                );
            }
            (money, request.final_capture)
        }
    };
    let instruction = request.payment_instruction.as_ref();
    let fees = instruction.map_or(&[][..], |i| i.platform_fees.as_slice());
    if fees.len() > 1 {
        return Err(invalid(
            "INVALID_ARRAY_MAX_ITEMS",
            Some((FEES, "more than one")),
        ));
    }
    let mut fee_total = 0;
    for fee in fees {
        let path = format!("{FEES}/0/amount");
        let amount = serde_json::from_value::<MoneyJson>(fee["amount"].clone())
            .map_err(|e| invalid("INVALID_PARAMETER_SYNTAX", Some((&path, &e.to_string()))))?;
        fee_total += parse_amount(&amount, currency, &path)?.minor_units();
    }
    let paypal_fee = paypal_fee(gross);
    if fee_total > gross.minor_units() - paypal_fee.minor_units() {
        return refuse("INVALID_PLATFORM_FEES_AMOUNT", Some((FEES, "")));
    }
    let mode = instruction
        .and_then(|i| i.disbursement_mode.as_deref())
        .unwrap_or("INSTANT");
    if !matches!(mode, "INSTANT" | "DELAYED") {
        let at = Some(("/payment_instruction/disbursement_mode", mode));
        return Err(invalid("INVALID_PARAMETER_VALUE", at));
    }
    let status = match auth.scenario {
        Scenario::ServerError => return Err(Reply::empty(StatusCode::INTERNAL_SERVER_ERROR)),
        Scenario::Pending => "PENDING",
        Scenario::Declined => "DECLINED",
        _ => "COMPLETED",
    };
    if status != "DECLINED" {
        auth.captured += gross.minor_units();
        auth.closed |= closes;
    }
    let rest = Money::from_minor_units(currency, auth.amount.minor_units() - auth.captured);
    let scenario = auth.scenario;

    let id = random_alnum(17);
    let now = rfc3339(SystemTime::now());
    let links = json!([
        {"href": format!("{base_url}/v2/payments/captures/{id}"), "rel": "self", "method": "GET"},
        {"href": format!("{base_url}/v2/payments/captures/{id}/refund"), "rel": "refund", "method": "POST"},
        {"href": format!("{base_url}/v2/payments/authorizations/{auth_id}"), "rel": "up", "method": "GET"},
    ]);
    let mut full = json!({
        "id": id,
        "status": status,
        "amount": MoneyJson::from(gross),
        "final_capture": closes,
        "disbursement_mode": mode,
        "seller_protection": {
            "status": "ELIGIBLE",
            "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
        },
        "network_transaction_reference": {"id": random_digits(15), "network": "VISA"},
        "processor_response": {
            "avs_code": "Y",
            "cvv_code": "M",
            // 0500: "do not honor", the usual card decline.
            "response_code": if status == "DECLINED" { "0500" } else { "0000" },
        },
        "supplementary_data": {"related_ids": {"authorization_id": auth_id}},
        "create_time": now,
        "update_time": now,
        "links": links,
    });
    if let Some(invoice_id) = &request.invoice_id {
        full["invoice_id"] = json!(invoice_id);
    }
    match status {
        "PENDING" => full["status_details"] = json!({"reason": "PENDING_REVIEW"}),
        "COMPLETED" => {
            full["seller_receivable_breakdown"] = receivable_breakdown(gross, fee_total, fees);
        }
        _ => {}
    }

    let reply = match scenario {
        Scenario::MalformedBody => Reply {
            status: StatusCode::CREATED,
            body: Bytes::from_static(b"{\"id\": \""),
        },
        _ if representation => json_reply(StatusCode::CREATED, &full),
        _ => json_reply(
            StatusCode::CREATED,
            &json!({"id": id, "status": status, "links": links}),
        ),
    };
    let capture = Capture {
        json: full,
        authorization_id: auth_id.to_owned(),
        gross,
        closes,
        platform_fees: fees.to_vec(),
        fee_total,
        refunded: 0,
        refunded_fee: 0,
    };
    if status != "DECLINED" {
        charged.record(Provider::Paypal, auth_id, &id, gross);
        if closes {
            charged.closed(Provider::Paypal, auth_id, &id, rest);
        }
    }
    ledger.captures.insert(id, capture);
    let delay = delay_of(scenario);
    Ok((reply, delay))
}

/// An empty body is an empty request; otherwise it must be JSON of the documented shape.
fn parse_request(body: &[u8]) -> Result<CaptureRequest, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(CaptureRequest::default());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| invalid("MALFORMED_REQUEST_JSON", None))?;
    serde_json::from_value(value)
        .map_err(|e| invalid("INVALID_PARAMETER_SYNTAX", Some(("/", &e.to_string()))))
}
