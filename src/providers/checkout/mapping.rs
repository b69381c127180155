//! Checkout.com wire types ⇄ domain: the amount unit, the payment's currency, the capture and
//! void requests, the 202 answer, the capture and void actions and the 422 error codes.
//!
//! An action's outcome maps through an exhaustive `match` over [`ActionState`]; an answer we
//! cannot read is an unknown outcome, never a guess.

use serde_json::Value;

use super::wire;
use crate::domain::outcome::{ProcessorResponse, ProviderFailure};
use crate::domain::{
    CaptureCommand, CaptureStatus, Currency, Money, ProviderOutcome, StatusReason,
};
use crate::providers::Rejection;

mod release;

pub use release::{already_voided, void_request};

/// Checkout.com's longest `amount`: "not more than nine digits".
pub const MAX_AMOUNT: i64 = 999_999_999;
/// The longest `reference` we send. Checkout.com limits payment references to 80 characters;
/// the capture reference is taken to share that limit (*unconfirmed*).
pub const MAX_REFERENCE_CHARS: usize = 80;

/// Currencies whose Checkout.com `amount` is the full amount ("format the amount value").
const FULL_AMOUNT: &[&str] = &[
    "BIF", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VUV", "VND", "XAF",
    "XOF", "XPF",
];
/// Currencies whose Checkout.com `amount` is divided by 1000, and whose last digit must be 0.
const THOUSANDTHS: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// How Checkout.com writes amounts of one currency. It follows ISO 4217 for most currencies but
/// not all (CLP: hundredths, not whole pesos), so the unit is Checkout.com's own table; every
/// other currency is in hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrencyUnit {
    /// Decimals of Checkout.com's unit: 0, 2 or 3.
    pub exponent: u32,
    /// Thousandths currencies: the last digit must be 0.
    pub last_digit_zero: bool,
}

impl CurrencyUnit {
    pub fn of(currency: Currency) -> Self {
        let code = currency.code();
        if FULL_AMOUNT.contains(&code) {
            CurrencyUnit {
                exponent: 0,
                last_digit_zero: false,
            }
        } else if THOUSANDTHS.contains(&code) {
            CurrencyUnit {
                exponent: 3,
                last_digit_zero: true,
            }
        } else {
            CurrencyUnit {
                exponent: 2,
                last_digit_zero: false,
            }
        }
    }
}

/// Money as Checkout.com's integer `amount`; `Err` says why Checkout.com cannot express it.
pub fn amount_to_wire(money: &Money) -> Result<i64, String> {
    let currency = money.currency();
    let unit = CurrencyUnit::of(currency);
    let iso = currency.exponent();
    let minor = money.minor_units();
    let units = if unit.exponent >= iso {
        10_i64
            .checked_pow(unit.exponent - iso)
            .and_then(|factor| minor.checked_mul(factor))
    } else {
        let divisor = 10_i64.pow(iso - unit.exponent);
        (minor % divisor == 0).then_some(minor / divisor)
    };
    let smallest = Money::from_minor_units(currency, smallest_minor(currency, unit));
    let too_fine = || {
        format!(
            "Checkout.com takes {currency} amounts in steps of {}",
            smallest.to_major_string()
        )
    };
    let units = units.ok_or_else(too_fine)?;
    if unit.last_digit_zero && units % 10 != 0 {
        return Err(too_fine());
    }
    if units > MAX_AMOUNT {
        return Err(format!(
            "Checkout.com takes at most nine digits ({MAX_AMOUNT} in {currency}'s unit)"
        ));
    }
    Ok(units)
}

/// The smallest amount Checkout.com can express, in ISO minor units.
fn smallest_minor(currency: Currency, unit: CurrencyUnit) -> i64 {
    let step_exponent = unit.exponent - u32::from(unit.last_digit_zero);
    10_i64.pow(currency.exponent().saturating_sub(step_exponent))
}

/// Checkout.com's integer `amount` as money of the payment's currency.
pub fn amount_from_wire(units: i64, currency: Currency) -> Result<Money, String> {
    let unit = CurrencyUnit::of(currency);
    let iso = currency.exponent();
    let minor = if unit.exponent >= iso {
        let divisor = 10_i64.pow(unit.exponent - iso);
        (units % divisor == 0).then_some(units / divisor)
    } else {
        10_i64
            .checked_pow(iso - unit.exponent)
            .and_then(|factor| units.checked_mul(factor))
    };
    minor
        .and_then(|minor| Money::checked_from_minor_units(currency, minor))
        .ok_or_else(|| format!("unreadable {currency} amount {units}"))
}

/// The failure code of a capture refused because its amount is in another currency than the
/// payment's. The service's own code, not Checkout.com's: Checkout.com never sees the capture.
pub const CURRENCY_MISMATCH: &str = "currency_mismatch";

/// The payment details answer (`GET /payments/{id}`).
pub fn payment_from_body(body: &[u8]) -> Result<wire::Payment, String> {
    serde_json::from_slice(body)
        .map_err(|e| format!("payment answer does not match Checkout.com's schema: {e}"))
}

/// Refuses a capture of `asked` on a payment in another currency: the capture's `amount` carries
/// no currency, so Checkout.com would take it in the payment's. Not sent, hence `http_status` 0.
pub fn check_currency(payment: &wire::Payment, asked: Currency) -> Result<(), ProviderFailure> {
    if payment.currency.eq_ignore_ascii_case(asked.code()) {
        return Ok(());
    }
    Err(ProviderFailure {
        code: CURRENCY_MISMATCH.to_owned(),
        message: format!(
            "payment {} is in {}, the capture asks for {asked}: not sent, since Checkout.com \
             would capture the amount in {}",
            payment.id, payment.currency, payment.currency
        ),
        debug_id: None,
        http_status: 0,
    })
}

/// The `reference` we send: the caller's, else the capture id (our idempotency key), so the
/// capture can be found among the payment's actions even without its action id.
pub fn reference<'a>(command: &'a CaptureCommand, capture_id: &'a str) -> &'a str {
    command
        .parts()
        .reference
        .as_ref()
        .map_or(capture_id, |r| r.as_str())
}

/// The capture request body. `capture_type` is `Final` when the command closes the
/// authorization (flagged final, or no amount: the full amount), else `NonFinal`.
pub fn request<'a>(
    command: &'a CaptureCommand,
    capture_id: &'a str,
) -> Result<wire::CaptureRequest<'a>, String> {
    let parts = command.parts();
    Ok(wire::CaptureRequest {
        amount: parts.amount.as_ref().map(amount_to_wire).transpose()?,
        capture_type: if command.closes_authorization() {
            wire::CaptureType::Final
        } else {
            wire::CaptureType::NonFinal
        },
        reference: reference(command, capture_id),
        metadata: parts.metadata.entries(),
    })
}

/// The 202 answer to a capture or a void: accepted, to be confirmed later (webhook or the
/// actions list).
pub fn outcome(body: &[u8]) -> Result<ProviderOutcome, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| format!("202 answer is not JSON: {e}"))?;
    let accepted: wire::Accepted = serde_json::from_value(json.clone())
        .map_err(|e| format!("202 answer does not match Checkout.com's schema: {e}"))?;
    if !accepted.action_id.starts_with("act_") {
        return Err(format!("unexpected action id {:?}", accepted.action_id));
    }
    Ok(ProviderOutcome {
        status: CaptureStatus::Pending,
        reason: Some(StatusReason::AwaitingProviderConfirmation),
        provider_capture_id: Some(accepted.action_id),
        provider_status: "Accepted".to_owned(),
        provider_reason: None,
        captured_amount: None,
        breakdown: None,
        network_reference: None,
        seller_protection: None,
        processor_response: None,
        // `{action_id, reference, _links}`: no secrets or card data.
        redacted_body: Some(json.into()),
    })
}

/// Where a capture action stands, read from its `approved` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionState {
    Approved,
    Declined,
    /// Listed but not processed yet (no `approved`).
    NotProcessed,
}

impl ActionState {
    pub fn of(action: &wire::Action) -> Self {
        match action.approved {
            Some(true) => ActionState::Approved,
            Some(false) => ActionState::Declined,
            None => ActionState::NotProcessed,
        }
    }
}

/// Our status for an action's state, with the provider status we record for it.
pub fn status_from_state(state: ActionState) -> (CaptureStatus, &'static str) {
    match state {
        ActionState::Approved => (CaptureStatus::Completed, "Approved"),
        ActionState::Declined => (CaptureStatus::Declined, "Declined"),
        ActionState::NotProcessed => (CaptureStatus::Pending, "Accepted"),
    }
}

/// The actions list answer: every action, with its JSON kept for the stored body.
pub fn actions_from_body(body: &[u8]) -> Result<Vec<(wire::Action, Value)>, String> {
    let json: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| format!("actions answer is not a list: {e}"))?;
    json.into_iter()
        .map(|value| {
            serde_json::from_value::<wire::Action>(value.clone())
                .map(|action| (action, value))
                .map_err(|e| format!("an action does not match Checkout.com's schema: {e}"))
        })
        .collect()
}

/// The outcome one capture (or void) action reports. `currency` is the payment's, when the
/// command says it (Checkout.com's actions carry none); without it (and for a void, which
/// captures nothing) the amount is not reported.
pub fn action_outcome(
    action: wire::Action,
    json: Value,
    currency: Option<Currency>,
) -> Result<ProviderOutcome, String> {
    let state = ActionState::of(&action);
    let (status, provider_status) = status_from_state(state);
    let reason = match state {
        ActionState::NotProcessed => Some(StatusReason::AwaitingProviderConfirmation),
        // Checkout.com's 4xxxx response codes are risk refusals.
        ActionState::Declined
            if action
                .response_code
                .as_deref()
                .is_some_and(|c| c.starts_with('4')) =>
        {
            Some(StatusReason::DeclinedByRiskFraudFilters)
        }
        ActionState::Declined | ActionState::Approved => None,
    };
    let captured_amount = match (state, action.amount, currency) {
        (ActionState::Approved, Some(units), Some(currency)) => {
            Some(amount_from_wire(units, currency)?)
        }
        _ => None,
    };
    let processor_response = action.response_code.as_ref().map(|code| ProcessorResponse {
        response_code: Some(code.clone()),
        ..ProcessorResponse::default()
    });
    Ok(ProviderOutcome {
        status,
        reason,
        provider_capture_id: Some(action.id),
        provider_status: provider_status.to_owned(),
        provider_reason: match state {
            ActionState::Declined => action.response_code.or(action.response_summary),
            ActionState::Approved | ActionState::NotProcessed => None,
        },
        captured_amount,
        breakdown: None,
        network_reference: None,
        seller_protection: None,
        processor_response,
        redacted_body: Some(json.into()),
    })
}

/// The outcome of a capture (or void) Checkout.com accepted but does not list yet.
pub fn still_awaiting(action_id: &str) -> ProviderOutcome {
    ProviderOutcome {
        status: CaptureStatus::Pending,
        reason: Some(StatusReason::AwaitingProviderConfirmation),
        provider_capture_id: Some(action_id.to_owned()),
        provider_status: "Accepted".to_owned(),
        provider_reason: None,
        captured_amount: None,
        breakdown: None,
        network_reference: None,
        seller_protection: None,
        processor_response: None,
        redacted_body: None,
    }
}

/// Checkout.com error codes that mean the payment's state forbids the capture; every other 422
/// code means the request itself is wrong. From Checkout.com's public error code list.
pub const STATE_ERROR_CODES: &[&str] = &[
    "action_failure_limit_exceeded",
    "amount_exceeds_balance",
    "capture_value_greater_than_authorized",
    "capture_value_greater_than_remaining_authorized",
    "payment_expired",
    "payment_invalid",
    "payment_not_capturable",
    "business_invalid",
    "business_settings_missing",
];

/// How a 422 refuses the capture, from its first error code: the payment's state
/// (`FailedPrecondition`) or the request's shape (`InvalidArgument`: `amount_invalid`,
/// `reference_invalid`, `metadata_key_invalid`, `request_invalid`, ...).
pub fn rejection(first_code: Option<&str>) -> Rejection {
    match first_code {
        Some(code) if STATE_ERROR_CODES.contains(&code) => Rejection::FailedPrecondition,
        Some(_) | None => Rejection::InvalidArgument,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(code: &str, value: &str) -> Result<Money, String> {
        Money::parse_positive(code, value).map_err(|e| e.to_string())
    }

    #[test]
    fn amounts_follow_checkouts_unit_per_currency() -> Result<(), String> {
        assert_eq!(amount_to_wire(&money("USD", "10.99")?)?, 1099);
        assert_eq!(amount_to_wire(&money("JPY", "1000")?)?, 1000);
        assert_eq!(amount_to_wire(&money("BHD", "1.23")?)?, 1230);
        assert_eq!(amount_to_wire(&money("TND", "100")?)?, 100_000);
        assert_eq!(amount_to_wire(&money("CLP", "1000")?)?, 100_000);
        assert_eq!(amount_to_wire(&money("CLF", "1.5")?)?, 150);
        assert_eq!(amount_to_wire(&money("USD", "9999999.99")?)?, MAX_AMOUNT);
        Ok(())
    }

    #[test]
    fn what_checkout_cannot_express_is_refused() -> Result<(), String> {
        let err = amount_to_wire(&money("TND", "1.235")?)
            .err()
            .ok_or("accepted")?;
        assert!(err.contains("steps of 0.010"), "{err}");
        assert!(amount_to_wire(&money("BHD", "0.001")?).is_err());
        assert!(amount_to_wire(&money("CLF", "1.0001")?).is_err());
        assert!(amount_to_wire(&money("USD", "10000000.00")?).is_err());
        assert!(amount_to_wire(&money("JPY", "1000000000")?).is_err());
        Ok(())
    }

    #[test]
    fn amounts_read_back_in_the_payments_currency() -> Result<(), String> {
        let code = |c: &str| Currency::from_code(c).ok_or("currency");
        assert_eq!(
            amount_from_wire(1099, code("USD")?)?,
            money("USD", "10.99")?
        );
        assert_eq!(amount_from_wire(1230, code("TND")?)?, money("TND", "1.23")?);
        assert_eq!(amount_from_wire(5, code("JPY")?)?, money("JPY", "5")?);
        assert_eq!(
            amount_from_wire(100_000, code("CLP")?)?,
            money("CLP", "1000")?
        );
        assert!(amount_from_wire(150, code("CLP")?).is_err());
        assert!(amount_from_wire(-1, code("USD")?).is_err());
        Ok(())
    }

    #[test]
    fn every_action_state_maps() {
        assert_eq!(
            status_from_state(ActionState::Approved).0,
            CaptureStatus::Completed
        );
        assert_eq!(
            status_from_state(ActionState::Declined).0,
            CaptureStatus::Declined
        );
        assert_eq!(
            status_from_state(ActionState::NotProcessed).0,
            CaptureStatus::Pending
        );
    }

    #[test]
    fn state_codes_are_preconditions_and_the_rest_invalid_arguments() {
        assert_eq!(
            rejection(Some("capture_value_greater_than_remaining_authorized")),
            Rejection::FailedPrecondition
        );
        assert_eq!(
            rejection(Some("amount_invalid")),
            Rejection::InvalidArgument
        );
        assert_eq!(rejection(None), Rejection::InvalidArgument);
    }

    #[test]
    fn a_payment_in_another_currency_refuses_the_capture() -> Result<(), String> {
        let payment = payment_from_body(
            br#"{"id":"pay_x","amount":10000,"currency":"USD","status":"Authorized","approved":true}"#,
        )?;
        let code = |c: &str| Currency::from_code(c).ok_or("currency");
        assert_eq!(check_currency(&payment, code("USD")?), Ok(()));
        let refused = check_currency(&payment, code("EUR")?)
            .err()
            .ok_or("accepted")?;
        assert_eq!(refused.code, CURRENCY_MISMATCH);
        assert!(refused.message.contains("USD") && refused.message.contains("EUR"));
        assert_eq!(refused.http_status, 0);
        assert!(payment_from_body(br#"{"id":"pay_x"}"#).is_err());
        Ok(())
    }

    #[test]
    fn an_accepted_answer_without_an_action_id_is_not_trusted() {
        assert!(outcome(br#"{"reference":"x"}"#).is_err());
        assert!(outcome(b"<html>").is_err());
        assert!(outcome(br#"{"action_id":"pay_x"}"#).is_err());
    }
}
