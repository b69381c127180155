//! Past the limit of captures in progress, a capture is refused at once with
//! `RESOURCE_EXHAUSTED` and `RetryInfo`, before anything is written; reads keep their own
//! share and still answer.

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt;

use crate::common::counting_paypal::{self, Behaviour};
use crate::common::{
    paypal_capture, refused, usd, use_paypal_at, Db, TestApp, TestResult, TENANT_A_KEY,
};
use crate::on_both_databases;
use capture_service::proto;

const LIMIT: u64 = 4;
const STORM: usize = 24;

async fn captures_past_the_limit_are_shed_before_anything_is_written(db: Db) -> TestResult {
    // A slow provider, so the admitted captures are still in progress when the rest arrive.
    let (paypal, counter) = counting_paypal::start_with(Behaviour {
        delay: Duration::from_millis(1500),
        ..Behaviour::default()
    })
    .await?;
    let app = TestApp::spawn_with(db, |config| {
        config.limits.max_captures_in_flight = LIMIT;
        use_paypal_at(config, paypal);
    })
    .await?;
    let earlier = app
        .captured(paypal_capture("AUTH-EARLIER", usd("1.00")))
        .await?;

    let storm = (0..STORM).map(|i| {
        let request = paypal_capture(&format!("AUTH-STORM-{i}"), usd("5.00"));
        app.capture(request)
    });
    let reads = async {
        // While the storm holds every capture slot, a read still answers.
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.get(TENANT_A_KEY, &earlier.id).await
    };
    let (results, read) = tokio::join!(futures_util::future::join_all(storm), reads);
    assert_eq!(read?.id, earlier.id);

    let admitted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(admitted as u64, LIMIT, "{results:?}");
    for result in results.into_iter().filter(Result::is_err) {
        let status = result.as_ref().err().cloned().ok_or("no status")?;
        assert!(status.get_details_retry_info().is_some(), "{status:?}");
        let metadata = refused(result, Code::ResourceExhausted, "OVERLOADED")?;
        assert_eq!(metadata.get("limit").map(String::as_str), Some("4"));
    }
    // The shed ones left no trace: only the admitted captures exist, and only they reached
    // PayPal.
    let listed = app
        .list(
            TENANT_A_KEY,
            proto::ListCapturesRequest {
                page_size: 100,
                ..Default::default()
            },
        )
        .await?;
    assert_eq!(listed.captures.len() as u64, LIMIT + 1);
    assert_eq!(counter.captures() as u64, LIMIT + 1);

    // Once the slots are free, captures are admitted again.
    let after = app
        .captured(paypal_capture("AUTH-AFTER", usd("1.00")))
        .await?;
    assert_eq!(after.status(), proto::CaptureStatus::Completed);
    Ok(())
}

on_both_databases!(captures_past_the_limit_are_shed_before_anything_is_written);
