//! Card numbers never land where they don't belong: a caller's free text that carries one is
//! refused with a field violation that says why, and one in a provider's answer is stored
//! masked to first six / last four.

use sea_orm::{ConnectionTrait, Database, Statement};

use crate::common::counting_paypal::{self, Behaviour};
use crate::common::{
    bad_fields, error_of, paypal_capture, usd, Db, TestApp, TestResult, TENANT_A_KEY,
};
use crate::on_both_databases;
use capture_service::proto;
use tonic_types::StatusExt;

const PAN: &str = "4111 1111 1111 1111";

async fn free_text_with_a_card_number_is_refused_and_nothing_is_written(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let mut request = paypal_capture(&auth, usd("10.00"));
    request.note_to_payer = format!("paid with {PAN}");
    request.reference = "4111111111111111".into();
    request.invoice_id = "INV-4111-1111-1111-1111".into();
    request.metadata = [("card".to_owned(), PAN.to_owned())].into();
    let status = error_of(app.capture(request).await)?;
    assert_eq!(
        bad_fields(&status),
        ["invoice_id", "note_to_payer", "reference", "metadata[card]"]
    );
    let says_why = status
        .get_details_bad_request()
        .ok_or("no BadRequest")?
        .field_violations
        .iter()
        .all(|v| v.description.contains("card number"));
    assert!(says_why, "{status:?}");
    assert!(!status.message().contains("4111"), "{}", status.message());
    let listed = app
        .list(TENANT_A_KEY, proto::ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());

    // Numbers that are not card numbers are welcome.
    let mut fine = paypal_capture(&auth, usd("10.00"));
    fine.invoice_id = "INV-2026-000123456789".into();
    fine.reference = "4111111111111112".into();
    assert_eq!(
        app.captured(fine).await?.status(),
        proto::CaptureStatus::Completed
    );
    Ok(())
}

async fn a_card_number_in_a_provider_answer_is_stored_masked(db: Db) -> TestResult {
    // A PayPal answer that echoes a card number in a field the connector does not read.
    let (paypal, _) = counting_paypal::start_with(Behaviour {
        extra_fields: serde_json::json!({"custom_id": "card 4111111111111111 on file"}),
        ..Behaviour::default()
    })
    .await?;
    let app = TestApp::spawn_against_paypal(db, &paypal).await?;
    let capture = app
        .captured(paypal_capture("0VF52814937998046", usd("10.00")))
        .await?;

    let database = Database::connect(app.database_url.clone()).await?;
    let backend = database.get_database_backend();
    let row = database
        .query_one(Statement::from_sql_and_values(
            backend,
            "SELECT provider_response FROM captures WHERE id = $1",
            [capture.id.clone().into()],
        ))
        .await?
        .ok_or("no row")?;
    let stored: String = row.try_get("", "provider_response")?;
    assert!(!stored.contains("4111111111111111"), "{stored}");
    assert!(stored.contains("411111******1111"), "{stored}");
    database.close().await?;
    Ok(())
}

/// Everything a refusal carries, as text: message and encoded details.
fn refusal_text(status: &tonic::Status) -> String {
    format!(
        "{} {:?} {}",
        status.message(),
        status.get_details_bad_request(),
        String::from_utf8_lossy(status.details())
    )
}

/// A card number as a metadata key, a request_id or an authorization_id is refused, and the
/// refusal quotes none of it; numeric ids that no card network issues (snowflakes) are taken.
async fn card_numbers_as_ids_and_keys_are_refused_without_being_quoted(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;

    let mut keyed = paypal_capture(&auth, usd("10.00"));
    keyed.metadata = [("4111111111111111".to_owned(), "x".to_owned())].into();
    let mut requested = paypal_capture(&auth, usd("10.00"));
    requested.request_id = "4111111111111111".into();
    let authorized = paypal_capture("5555555555554444", usd("10.00"));
    for (request, field) in [
        (keyed, "metadata[411111******1111]"),
        (requested, "request_id"),
        (authorized, "authorization_id"),
    ] {
        let status = error_of(app.capture(request).await)?;
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert_eq!(bad_fields(&status), [field]);
        let text = refusal_text(&status);
        for pan in ["4111111111111111", "5555555555554444"] {
            assert!(!text.contains(pan), "{text}");
        }
    }
    let listed = app
        .list(TENANT_A_KEY, proto::ListCapturesRequest::default())
        .await?;
    assert!(listed.captures.is_empty());

    // A Luhn-valid snowflake id is no card number any network issues.
    let mut snowflake = paypal_capture(&auth, usd("10.00"));
    snowflake.request_id = "1541815603606036480".into();
    let capture = app.captured(snowflake).await?;
    assert_eq!(capture.request_id, "1541815603606036480");
    Ok(())
}

on_both_databases!(
    card_numbers_as_ids_and_keys_are_refused_without_being_quoted,
    free_text_with_a_card_number_is_refused_and_nothing_is_written,
    a_card_number_in_a_provider_answer_is_stored_masked,
);
