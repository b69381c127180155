//! The sandbox's Cybersource, driven by the real Cybersource connector over HTTP: its signature
//! check, its capture rules and its scenarios.

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use capture_service::config::Secret;
use capture_service::domain::capture::{AuthorizationId, CaptureParts, Metadata, RequestId};
use capture_service::domain::{
    CaptureCommand, CaptureRecord, CaptureStatus, Money, Provider, ProviderOutcome,
};
use capture_service::providers::cybersource::CybersourceConnector;
use capture_service::providers::http::ProviderHttp;
use capture_service::providers::{CaptureCall, Connector, ProviderError, Rejection};
use capture_service::sandbox::{MoneyJson, NewAuthorization, Sandbox, Scenario};

use crate::common::TestResult;

/// Its authorization reversal, and the rest reversed by a final capture.
mod releases;

/// A started sandbox and a connector holding the credentials it issued.
struct Cybersource {
    sandbox: Sandbox,
    connector: CybersourceConnector,
    /// Numbering as the service's ledger keeps it: how many captures of each authorization
    /// hold a place (all but refused ones), and each capture's own number, kept for re-sends.
    numbering: Mutex<Numbering>,
}

impl Cybersource {
    async fn start() -> Result<Self, Box<dyn Error>> {
        let sandbox = Sandbox::start(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let connector = CybersourceConnector::new(
            &crate::common::sandbox_account::<
                capture_service::providers::cybersource::CybersourceAccount,
            >(&sandbox)?,
            http()?,
        );
        Ok(Cybersource {
            sandbox,
            connector,
            numbering: Mutex::default(),
        })
    }

    async fn authorize(
        &self,
        currency: &str,
        value: &str,
        scenario: Scenario,
    ) -> Result<String, Box<dyn Error>> {
        let amount = MoneyJson {
            currency_code: currency.to_owned(),
            value: value.to_owned(),
        };
        let authorization = self
            .sandbox
            .create_authorization(
                Provider::Cybersource,
                NewAuthorization {
                    amount,
                    scenario,
                    faults: None,
                },
            )
            .await?;
        Ok(authorization.id)
    }

    /// Captures `value` `currency` of `auth` as capture `capture_id`, numbered after the
    /// captures of `auth` taken so far.
    async fn capture(
        &self,
        auth: &str,
        currency: &str,
        value: &str,
        final_capture: bool,
        capture_id: &str,
    ) -> Result<Result<ProviderOutcome, ProviderError>, Box<dyn Error>> {
        let command = command(auth, Some((currency, value)), final_capture)?;
        let sequence = {
            let mut numbering = self.numbering.lock().map_err(|_| "poisoned")?;
            let Numbering { held, of_capture } = &mut *numbering;
            let key = (auth.to_owned(), capture_id.to_owned());
            *of_capture.entry(key).or_insert_with(|| {
                let held = held.entry(auth.to_owned()).or_default();
                *held += 1;
                *held
            })
        };
        let result = self
            .connector
            .capture(CaptureCall {
                command: &command,
                idempotency_key: capture_id,
                capture_sequence: sequence,
            })
            .await;
        if matches!(result, Err(ProviderError::Rejected { .. })) {
            // A refused capture gives its place back, as the ledger's release does.
            let mut numbering = self.numbering.lock().map_err(|_| "poisoned")?;
            let key = (auth.to_owned(), capture_id.to_owned());
            numbering.of_capture.remove(&key);
            if let Some(held) = numbering.held.get_mut(auth) {
                *held -= 1;
            }
        }
        Ok(result)
    }
}

#[derive(Default)]
struct Numbering {
    held: HashMap<String, u32>,
    of_capture: HashMap<(String, String), u32>,
}

fn http() -> Result<ProviderHttp, Box<dyn Error>> {
    Ok(ProviderHttp::new(Duration::from_secs(2), 0)?)
}

fn command(
    auth: &str,
    amount: Option<(&str, &str)>,
    final_capture: bool,
) -> Result<CaptureCommand, Box<dyn Error>> {
    let amount = amount
        .map(|(currency, value)| Money::parse_positive(currency, value))
        .transpose()?;
    let parts = CaptureParts {
        operation: capture_service::domain::Operation::Capture,
        provider: Provider::Cybersource,
        account: None,
        authorization_id: AuthorizationId::parse(auth)?,
        amount,
        authorized_amount: None,
        final_capture,
        invoice_id: None,
        note_to_payer: None,
        soft_descriptor: None,
        reference: None,
        metadata: Metadata::default(),
        platform_fees: vec![],
        disbursement_mode: None,
        request_id: RequestId::parse("req-1")?,
    };
    CaptureCommand::new(parts).map_err(|e| format!("{e:?}").into())
}

/// The provider code of a refusal, or a description of what came instead.
fn refused<T: std::fmt::Debug>(result: &Result<T, ProviderError>) -> (Option<Rejection>, String) {
    match result {
        Err(ProviderError::Rejected {
            rejection, failure, ..
        }) => (Some(*rejection), failure.code.clone()),
        other => (None, format!("{other:?}")),
    }
}

fn is_unknown<T>(result: &Result<T, ProviderError>) -> bool {
    matches!(result, Err(ProviderError::OutcomeUnknown { .. }))
}

#[tokio::test]
async fn partial_captures_are_taken_until_the_authorization_is_used_up() -> TestResult {
    let cs = Cybersource::start().await?;
    let auth = cs.authorize("USD", "100.00", Scenario::Approve).await?;
    let first = cs.capture(&auth, "USD", "60.00", false, "cap_1").await??;
    assert_eq!(first.status, CaptureStatus::Completed);
    assert_eq!(first.provider_status, "PENDING");
    assert_eq!(first.captured_amount, Some(Money::parse("USD", "60.00")?));
    let over = cs.capture(&auth, "USD", "40.01", false, "cap_2").await?;
    assert_eq!(
        refused(&over),
        (
            Some(Rejection::FailedPrecondition),
            "EXCEEDS_AUTH_AMOUNT".into()
        )
    );
    cs.capture(&auth, "USD", "40.00", false, "cap_3").await??;
    let more = cs.capture(&auth, "USD", "0.01", false, "cap_4").await?;
    assert_eq!(refused(&more).1, "EXCEEDS_AUTH_AMOUNT");
    Ok(())
}

#[tokio::test]
async fn a_final_capture_reverses_the_rest_of_the_authorization() -> TestResult {
    let cs = Cybersource::start().await?;
    let auth = cs.authorize("EUR", "100.00", Scenario::Approve).await?;
    cs.capture(&auth, "EUR", "30.00", true, "cap_1").await??;
    let later = cs.capture(&auth, "EUR", "1.00", false, "cap_2").await?;
    assert_eq!(
        refused(&later),
        (
            Some(Rejection::FailedPrecondition),
            "AUTH_ALREADY_REVERSED".into()
        )
    );
    Ok(())
}

#[tokio::test]
async fn the_same_capture_sent_twice_is_a_duplicate_left_unknown() -> TestResult {
    let cs = Cybersource::start().await?;
    let auth = cs.authorize("USD", "100.00", Scenario::Approve).await?;
    cs.capture(&auth, "USD", "10.00", true, "cap_1").await??;
    let again = cs.capture(&auth, "USD", "10.00", true, "cap_1").await?;
    assert!(is_unknown(&again), "{again:?}");
    // Another capture of the same amount is not a duplicate.
    let auth = cs.authorize("USD", "100.00", Scenario::Approve).await?;
    cs.capture(&auth, "USD", "10.00", false, "cap_2").await??;
    cs.capture(&auth, "USD", "10.00", false, "cap_3").await??;
    Ok(())
}

#[tokio::test]
async fn unknown_authorizations_and_foreign_currencies_are_refused() -> TestResult {
    let cs = Cybersource::start().await?;
    let unknown = cs
        .capture("0000000000000000000000", "USD", "1.00", false, "cap_1")
        .await?;
    assert_eq!(
        refused(&unknown),
        (Some(Rejection::NotFound), "MISSING_AUTH".into())
    );
    let auth = cs.authorize("USD", "10.00", Scenario::Approve).await?;
    let euros = cs.capture(&auth, "EUR", "1.00", false, "cap_2").await?;
    assert_eq!(
        refused(&euros),
        (Some(Rejection::FailedPrecondition), "INVALID_DATA".into())
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_secret_or_merchant_is_refused_with_401() -> TestResult {
    let cs = Cybersource::start().await?;
    let auth = cs.authorize("USD", "10.00", Scenario::Approve).await?;
    let mut wrong_secret = crate::common::sandbox_account::<
        capture_service::providers::cybersource::CybersourceAccount,
    >(&cs.sandbox)?;
    wrong_secret.shared_secret = Secret::new("c2VjcmV0");
    let mut wrong_merchant = crate::common::sandbox_account::<
        capture_service::providers::cybersource::CybersourceAccount,
    >(&cs.sandbox)?;
    wrong_merchant.merchant_id = "someone_else".into();
    let mut wrong_key = crate::common::sandbox_account::<
        capture_service::providers::cybersource::CybersourceAccount,
    >(&cs.sandbox)?;
    wrong_key.key_id = "another-key".into();
    for account in [wrong_secret, wrong_merchant, wrong_key] {
        let connector = CybersourceConnector::new(&account, http()?);
        let command = command(&auth, Some(("USD", "1.00")), false)?;
        let result = connector
            .capture(CaptureCall {
                command: &command,
                idempotency_key: "cap_1",
                capture_sequence: 1,
            })
            .await;
        assert_eq!(
            refused(&result),
            (Some(Rejection::Unauthorized), "HTTP_401".into())
        );
    }
    // Nothing was captured by the refused requests.
    cs.capture(&auth, "USD", "10.00", false, "cap_2").await??;
    Ok(())
}

#[tokio::test]
async fn scenarios_answer_as_cybersource_does() -> TestResult {
    let cs = Cybersource::start().await?;
    let cases = [
        (Scenario::Declined, Rejection::NotFound, "MISSING_AUTH"),
        (
            Scenario::Voided,
            Rejection::FailedPrecondition,
            "AUTH_ALREADY_REVERSED",
        ),
        (
            Scenario::Expired,
            Rejection::FailedPrecondition,
            "TRANSACTION_ALREADY_REVERSED_OR_SETTLED",
        ),
    ];
    for (scenario, rejection, code) in cases {
        let auth = cs.authorize("USD", "10.00", scenario).await?;
        let result = cs.capture(&auth, "USD", "1.00", false, "cap_1").await?;
        assert_eq!(
            refused(&result),
            (Some(rejection), code.into()),
            "{scenario:?}"
        );
    }
    for scenario in [Scenario::ServerError, Scenario::MalformedBody] {
        let auth = cs.authorize("USD", "10.00", scenario).await?;
        let result = cs.capture(&auth, "USD", "1.00", false, "cap_1").await?;
        assert!(is_unknown(&result), "{scenario:?}: {result:?}");
    }
    // A server error captured nothing; a malformed answer hid a capture that was made.
    let auth = cs.authorize("USD", "10.00", Scenario::ServerError).await?;
    assert!(is_unknown(
        &cs.capture(&auth, "USD", "10.00", false, "cap_2").await?
    ));
    let again = cs.capture(&auth, "USD", "10.00", false, "cap_2").await?;
    assert!(is_unknown(&again) && !format!("{again:?}").contains("DUPLICATE"));
    let auth = cs
        .authorize("USD", "10.00", Scenario::MalformedBody)
        .await?;
    assert!(is_unknown(
        &cs.capture(&auth, "USD", "10.00", false, "cap_3").await?
    ));
    let over = cs.capture(&auth, "USD", "0.01", false, "cap_4").await?;
    assert_eq!(refused(&over).1, "EXCEEDS_AUTH_AMOUNT");
    Ok(())
}

#[tokio::test]
async fn a_lookup_shows_the_capture_transmitted_unless_still_pending() -> TestResult {
    let cs = Cybersource::start().await?;
    for (scenario, status, id) in [
        (Scenario::Approve, "TRANSMITTED", "cap_1"),
        (Scenario::Pending, "PENDING", "cap_2"),
    ] {
        let auth = cs.authorize("JPY", "1000", scenario).await?;
        let made = cs.capture(&auth, "JPY", "1000", false, id).await??;
        let record = CaptureRecord {
            status: made.status,
            provider_capture_id: made.provider_capture_id.clone(),
            provider_status: Some(made.provider_status.clone()),
            captured_amount: made.captured_amount,
            ..CaptureRecord::processing(
                id.into(),
                "t".into(),
                "default".into(),
                command(&auth, Some(("JPY", "1000")), false)?,
                1,
                0,
            )
        };
        let found = cs.connector.fetch_outcome(&record).await?;
        assert_eq!(found.provider_status, status);
        assert_eq!(found.status, CaptureStatus::Completed);
        assert_eq!(found.provider_capture_id, made.provider_capture_id);
        assert_eq!(found.captured_amount, Some(Money::parse("JPY", "1000")?));
        let mut missing = record;
        missing.provider_capture_id = Some("1111111111111111111111".into());
        let result = cs.connector.fetch_outcome(&missing).await;
        assert_eq!(
            refused(&result),
            (Some(Rejection::NotFound), "NOT_FOUND".into())
        );
    }
    Ok(())
}
