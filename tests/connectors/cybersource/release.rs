//! The Cybersource connector's release: the authorization reversal
//! (`POST /pts/v2/payments/{id}/reversals`), signed as a capture is, and each documented answer.

use axum::http::Method;
use serde_json::json;

use super::{
    assert_signed, connector, invalid_request, mock_cybersource, reply, server_error, TestResult,
    AUTH_ID,
};
use crate::common::connector_fixtures::{
    domain_money, is_unknown, refusal, release, release_record,
};
use capture_service::domain::{CaptureStatus, Provider, ReleaseMechanism};
use capture_service::providers::{Connector, Rejection};

const REVERSAL_PATH: &str = "/pts/v2/payments/6481692924466004003001/reversals";
const RELEASE_ID: &str = "rel_01J0000000000000000000000A";

/// A reversal's 201, as Cybersource's authorization reversal page shows it.
fn reversed() -> String {
    json!({
        "_links": {"self": {"method": "GET", "href": "/pts/v2/reversals/6869460219566537303955"}},
        "clientReferenceInformation": {"code": RELEASE_ID},
        "id": "6869460219566537303955",
        "orderInformation": {"amountDetails": {"currency": "USD"}},
        "processorInformation": {"responseCode": "200"},
        "reconciliationId": "82kBK3qDNtls",
        "reversalAmountDetails": {"reversedAmount": "100.00", "currency": "USD"},
        "status": "REVERSED",
        "submitTimeUtc": "2023-06-16T20:07:02Z"
    })
    .to_string()
}

#[tokio::test]
async fn a_reversal_is_signed_and_states_the_whole_authorized_amount() -> TestResult {
    let mock = mock_cybersource().await?;
    mock.reply(Method::POST, REVERSAL_PATH, reply(201, reversed()));

    let authorized = domain_money("USD", "100")?;
    let outcome = release(
        &connector(&mock.url()),
        AUTH_ID,
        RELEASE_ID,
        Some(authorized),
    )
    .await?;

    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(
        (&request.method, request.path.as_str()),
        (&Method::POST, REVERSAL_PATH)
    );
    assert_signed(request, &mock.host())?;
    assert_eq!(
        request.header_names(),
        [
            "accept",
            "content-length",
            "content-type",
            "date",
            "digest",
            "host",
            "signature",
            "v-c-merchant-id"
        ]
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/json;charset=utf-8")
    );
    assert_eq!(
        request.json()?,
        json!({
            "clientReferenceInformation": {"code": RELEASE_ID},
            "reversalInformation": {"amountDetails": {"totalAmount": "100.00", "currency": "USD"}}
        })
    );

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "REVERSED");
    assert_eq!(
        outcome.provider_capture_id.as_deref(),
        Some("6869460219566537303955")
    );
    assert_eq!(outcome.captured_amount, None);
    Ok(())
}

#[tokio::test]
async fn without_the_authorized_amount_nothing_is_sent_and_the_release_is_refused() -> TestResult {
    let mock = mock_cybersource().await?;
    let result = release(&connector(&mock.url()), AUTH_ID, RELEASE_ID, None).await;
    let (rejection, failure, _) = refusal(result).ok_or("expected a refusal")?;
    assert_eq!(rejection, Rejection::InvalidArgument);
    assert_eq!(failure.code, "AUTHORIZED_AMOUNT_REQUIRED");
    assert_eq!(failure.http_status, 0);
    assert!(mock.requests().is_empty());
    Ok(())
}

/// Cybersource has no idempotency key: a reversal sent again after its answer was lost is
/// answered AUTH_ALREADY_REVERSED, which settles the release as done.
#[tokio::test]
async fn an_authorization_reversed_already_is_the_release_done() -> TestResult {
    let mock = mock_cybersource().await?;
    mock.reply(
        Method::POST,
        REVERSAL_PATH,
        reply(400, invalid_request("AUTH_ALREADY_REVERSED", None)),
    );
    let authorized = domain_money("USD", "100.00")?;
    let record = release_record(
        Provider::Cybersource,
        AUTH_ID,
        RELEASE_ID,
        None,
        Some(authorized),
    )?;

    let outcome = connector(&mock.url())
        .fetch_release_outcome(&record)
        .await?;

    assert_eq!(outcome.status, CaptureStatus::Completed);
    assert_eq!(outcome.provider_status, "REVERSED");
    assert_eq!(
        outcome.provider_reason.as_deref(),
        Some("AUTH_ALREADY_REVERSED")
    );
    let sent = mock.seen(REVERSAL_PATH);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json()?["clientReferenceInformation"]["code"],
        RELEASE_ID
    );
    Ok(())
}

#[tokio::test]
async fn documented_refusals_keep_cybersources_reason() -> TestResult {
    let mock = mock_cybersource().await?;
    let connector = connector(&mock.url());
    let cases = [
        ("TRANSACTION_ALREADY_SETTLED", Rejection::FailedPrecondition),
        (
            "TRANSACTION_ALREADY_REVERSED_OR_SETTLED",
            Rejection::FailedPrecondition,
        ),
        ("INVALID_AMOUNT", Rejection::InvalidArgument),
        ("MISSING_AUTH", Rejection::NotFound),
    ];
    for (reason, expected) in cases {
        mock.reply(
            Method::POST,
            REVERSAL_PATH,
            reply(400, invalid_request(reason, None)),
        );
        let authorized = domain_money("USD", "100")?;
        let (rejection, failure, _) =
            refusal(release(&connector, AUTH_ID, RELEASE_ID, Some(authorized)).await)
                .ok_or("expected a refusal")?;
        assert_eq!(rejection, expected, "{reason}");
        assert_eq!(failure.code, reason);
        assert_eq!(failure.http_status, 400);
    }
    Ok(())
}

#[tokio::test]
async fn a_502_a_duplicate_and_an_unavailable_processor_are_unknown_and_never_resent() -> TestResult
{
    let mock = mock_cybersource().await?;
    let connector = connector(&mock.url());
    for body in [
        (502, server_error("SERVER_TIMEOUT")),
        (400, invalid_request("DUPLICATE_REQUEST", None)),
        (400, invalid_request("PROCESSOR_UNAVAILABLE", None)),
    ] {
        mock.reply(Method::POST, REVERSAL_PATH, reply(body.0, body.1.clone()));
        let before = mock.seen(REVERSAL_PATH).len();
        let authorized = domain_money("USD", "100")?;
        let result = release(&connector, AUTH_ID, RELEASE_ID, Some(authorized)).await;
        assert!(is_unknown(&result), "{}: {result:?}", body.1);
        assert_eq!(mock.seen(REVERSAL_PATH).len(), before + 1, "not retried");
    }
    Ok(())
}

#[test]
fn a_reversal_releases_before_any_capture_and_a_final_capture_after_partial_ones() {
    let rules = connector("http://127.0.0.1:9").release_rules();
    assert_eq!(rules.before_capture, ReleaseMechanism::Call);
    assert!(matches!(
        rules.after_partial_capture,
        ReleaseMechanism::Unsupported(reason) if reason.contains("final_capture")
    ));
    assert!(rules.final_capture_releases);
}
