//! The sandbox's book (`GET /sandbox/book`), the fault suite's ground truth: one entry per
//! capture a provider accepted, under the capture id the service sent as its key; nothing for
//! a declined capture or a replay.

use capture_service::proto::{self, CaptureStatus};
use capture_service::sandbox::Charge;

use crate::common::*;

async fn book(app: &TestApp) -> Result<Vec<Charge>, Box<dyn std::error::Error>> {
    Ok(
        reqwest::get(format!("http://{}/sandbox/book", app.http_addr))
            .await?
            .error_for_status()?
            .json()
            .await?,
    )
}

#[tokio::test]
async fn the_book_has_one_charge_per_accepted_capture_under_its_key() -> TestResult {
    let app = TestApp::spawn(Db::Sqlite).await?;
    let providers = [
        (proto::Provider::Paypal, "paypal"),
        (proto::Provider::Checkout, "checkout"),
        (proto::Provider::Cybersource, "cybersource"),
        (proto::Provider::PaymentOptions, "payment_options"),
        (proto::Provider::Stax, "stax"),
    ];
    let mut captured = Vec::new();
    for (provider, name) in providers {
        let authorization = app.authorize_at(name, "USD", "25.00", "APPROVE").await?;
        let request = capture_request(provider, &authorization, usd("12.34"));
        let capture = app.captured(request.clone()).await?;
        // The same request again is answered from the service's record: no second charge.
        app.replayed(request).await?;
        captured.push((name, authorization, capture));
    }
    let declined = app
        .authorize_at("paypal", "USD", "5.00", "DECLINED")
        .await?;
    let refused = app.captured(paypal_capture(&declined, usd("5.00"))).await?;
    assert_eq!(refused.status(), CaptureStatus::Declined);

    let book = book(&app).await?;
    assert_eq!(book.len(), captured.len(), "{book:#?}");
    for (name, authorization, capture) in &captured {
        let charges: Vec<&Charge> = book
            .iter()
            .filter(|c| c.authorization_id == *authorization)
            .collect();
        assert_eq!(charges.len(), 1, "{name}: {book:#?}");
        let charge = charges[0];
        assert_eq!(charge.provider, *name);
        assert_eq!(
            (
                charge.amount.currency_code.as_str(),
                charge.amount.value.as_str()
            ),
            ("USD", "12.34")
        );
        // PaymentOptions takes no key; every other provider's is the service's capture id.
        let key = (*name != "payment_options").then(|| capture.id.clone());
        assert_eq!(charge.key, key, "{name}");
        if *name != "payment_options" {
            assert_eq!(charge.capture_id, capture.provider_capture_id, "{name}");
        }
    }
    assert!(book.iter().all(|c| c.authorization_id != declined));
    Ok(())
}
