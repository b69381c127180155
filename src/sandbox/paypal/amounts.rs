//! PayPal's money rules as the emulator applies them: the value pattern and decimals of an
//! amount, PayPal's fee, and the breakdown of what a completed capture leaves the seller.

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{json, Value};

use super::super::kit::Reply;
use super::errors::{invalid, unprocessable};
use crate::domain::{Currency, Money};
use crate::sandbox::MoneyJson;

/// Checks a money object against the authorization's currency, PayPal's value pattern
/// `^((-?[0-9]+)|(-?([0-9]+)?[.][0-9]+))$`, positivity and the currency's decimals.
pub(super) fn parse_amount(
    asked: &MoneyJson,
    currency: Currency,
    path: &str,
) -> Result<Money, Reply> {
    let value = asked.value.as_str();
    let at_value = format!("{path}/value");
    let refuse = |issue: &str| unprocessable(issue, Some((&at_value, value)));
    if asked.currency_code != currency.code() {
        let at = format!("{path}/currency_code");
        let at = Some((at.as_str(), asked.currency_code.as_str()));
        return Err(unprocessable("AUTH_CAPTURE_CURRENCY_MISMATCH", at));
    }
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let (whole, fraction) = unsigned
        .split_once('.')
        .map_or((unsigned, None), |(w, f)| (w, Some(f)));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let well_formed = value.len() <= 32
        && digits(whole)
        && fraction.map_or(!whole.is_empty(), |f| !f.is_empty() && digits(f));
    let Some(amount) = value.parse::<Decimal>().ok().filter(|_| well_formed) else {
        return Err(invalid(
            "INVALID_PARAMETER_SYNTAX",
            Some((&at_value, value)),
        ));
    };
    if amount <= Decimal::ZERO {
        return Err(refuse("CANNOT_BE_ZERO_OR_NEGATIVE"));
    }
    if fraction.map_or(0, str::len) > currency.exponent() as usize {
        return Err(refuse("DECIMAL_PRECISION"));
    }
    Money::from_decimal(currency, amount).map_err(|_| refuse("INVALID_PARAMETER_VALUE"))
}

/// A completed capture's `seller_receivable_breakdown`: gross, PayPal's fee, and net of both
/// fees, with the platform fees echoed.
pub(super) fn receivable_breakdown(gross: Money, fee_total: i64, fees: &[Value]) -> Value {
    let paypal_fee = paypal_fee(gross);
    let net = gross.minor_units() - paypal_fee.minor_units() - fee_total;
    let mut breakdown = json!({
        "gross_amount": MoneyJson::from(gross),
        "paypal_fee": MoneyJson::from(paypal_fee),
        "net_amount": MoneyJson::from(Money::from_minor_units(gross.currency(), net)),
    });
    if !fees.is_empty() {
        breakdown["platform_fees"] = json!(fees);
    }
    breakdown
}

/// 3.49 % of gross plus a fixed fee (49 without decimals, else 0.49), rounded half-even to the
/// currency's decimals and capped at gross, so net is never negative before platform fees.
pub(super) fn paypal_fee(gross: Money) -> Money {
    let currency = gross.currency();
    let fixed = if currency.exponent() == 0 {
        Decimal::from(49)
    } else {
        Decimal::new(49, 2)
    };
    let fee = (gross.amount() * Decimal::new(349, 4) + fixed)
        .round_dp_with_strategy(currency.exponent(), RoundingStrategy::MidpointNearestEven);
    let minor = Money::from_decimal(currency, fee).map_or(i64::MAX, |m| m.minor_units());
    Money::from_minor_units(currency, minor.min(gross.minor_units()))
}
