//! What the sandbox's book says of one authorization (`GET /sandbox/book/holds`): what was
//! authorized, captured and released, for the release tests of every provider; and the request
//! that makes an authorization.

use std::error::Error;

use capture_service::domain::Money;
use capture_service::sandbox::{Hold, MoneyJson, NewAuthorization, ReleasedBy, Sandbox, Scenario};

/// An authorization of `value` `currency` whose captures follow `scenario`, not observed.
pub fn new_authorization(currency: &str, value: &str, scenario: Scenario) -> NewAuthorization {
    NewAuthorization {
        amount: MoneyJson {
            currency_code: currency.to_owned(),
            value: value.to_owned(),
        },
        scenario,
        faults: None,
    }
}

/// The book's hold of `authorization_id`, read over HTTP as a test of the service would, after
/// checking the rule every provider keeps: captured + released never exceeds authorized.
pub async fn hold_of(sandbox: &Sandbox, authorization_id: &str) -> Result<Hold, Box<dyn Error>> {
    let holds: Vec<Hold> = reqwest::get(format!("{}/sandbox/book/holds", sandbox.origin()))
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(holds, sandbox.holds(), "the view and the API agree");
    let hold = holds
        .into_iter()
        .find(|h| h.authorization_id == authorization_id)
        .ok_or("no such hold")?;
    let taken = minor(&hold.captured)? + minor(&hold.released)?;
    assert!(
        taken <= minor(&hold.authorized)?,
        "captured + released exceeds authorized: {hold:#?}"
    );
    let released: i64 = hold
        .releases
        .iter()
        .map(|r| minor(&r.amount))
        .sum::<Result<_, _>>()?;
    assert_eq!(released, minor(&hold.released)?, "{hold:#?}");
    Ok(hold)
}

/// The hold's captured and released amounts, as written (`("30.00", "70.00")`).
pub fn amounts(hold: &Hold) -> (&str, &str) {
    (hold.captured.value.as_str(), hold.released.value.as_str())
}

/// How each release was made, oldest first.
pub fn ways(hold: &Hold) -> Vec<ReleasedBy> {
    hold.releases.iter().map(|r| r.by).collect()
}

fn minor(money: &MoneyJson) -> Result<i64, Box<dyn Error>> {
    Ok(Money::parse(&money.currency_code, &money.value)?.minor_units())
}
