//! Tenant isolation on every RPC: another tenant's key never reads, lists, watches (from any
//! cursor, with filters naming the other tenant's ids) or replays a tenant's captures.

use std::time::Duration;

use capture_service::proto::{
    self, CaptureStatus, ListCapturesRequest, WatchCapturesRequest, WatchCapturesResponse,
};
use tonic::{Code, Streaming};

use crate::common::*;
use crate::on_both_databases;

on_both_databases!(no_rpc_shows_or_touches_another_tenants_captures,);

/// The changes that come within half a second.
async fn within_half_a_second(
    stream: &mut Streaming<WatchCapturesResponse>,
) -> Result<Vec<WatchCapturesResponse>, Box<dyn std::error::Error>> {
    let mut changes = Vec::new();
    while let Ok(got) = tokio::time::timeout(Duration::from_millis(500), stream.message()).await {
        match got? {
            Some(change) => changes.push(change),
            None => break,
        }
    }
    Ok(changes)
}

async fn no_rpc_shows_or_touches_another_tenants_captures(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    // A first capture of A's (cursors 1 and 2), so that the one under test is not the very
    // first change (`since` is exclusive, and 0 means from now on).
    let earlier = app.authorize("USD", "5.00", "APPROVE").await?;
    app.captured(paypal_capture(&earlier, usd("5.00"))).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let mut request = paypal_capture(&auth, usd("10.00"));
    request.request_id = "order-1042-capture".to_owned();
    let a = app.captured(request.clone()).await?;

    // GetCapture and ListCaptures, unfiltered and filtered by A's own values.
    assert_code(&app.get(TENANT_B_KEY, &a.id).await, Code::NotFound);
    let filters = [
        ListCapturesRequest::default(),
        ListCapturesRequest {
            authorization_id: auth.clone(),
            ..Default::default()
        },
        ListCapturesRequest {
            provider: proto::Provider::Paypal as i32,
            status: CaptureStatus::Completed as i32,
            ..Default::default()
        },
    ];
    for filter in filters {
        let listed = app.list(TENANT_B_KEY, filter.clone()).await?;
        assert!(listed.captures.is_empty(), "{filter:?}: {listed:?}");
        let own = app.list(TENANT_A_KEY, filter.clone()).await?;
        assert!(own.captures.iter().any(|c| c.id == a.id), "{filter:?}");
    }

    // WatchCaptures replaying from the first cursor, unfiltered and filtered by A's capture id
    // or authorization: B sees nothing; A, asking the same, sees its changes (3 after cursor 1;
    // the 2 of the capture under test).
    let watches = [
        (
            WatchCapturesRequest {
                since: 1,
                ..Default::default()
            },
            3,
        ),
        (
            WatchCapturesRequest {
                since: 1,
                capture_ids: vec![a.id.clone()],
                ..Default::default()
            },
            2,
        ),
        (
            WatchCapturesRequest {
                since: 1,
                authorization_id: auth.clone(),
                ..Default::default()
            },
            2,
        ),
    ];
    for (watch, changes_of_a) in watches {
        let mut b = app.watch(TENANT_B_KEY, watch.clone()).await?;
        let seen_by_b = within_half_a_second(&mut b).await?;
        assert!(seen_by_b.is_empty(), "{watch:?}: {seen_by_b:?}");
        let mut own = app.watch(TENANT_A_KEY, watch.clone()).await?;
        let seen_by_a = within_half_a_second(&mut own).await?;
        assert_eq!(seen_by_a.len(), changes_of_a, "{watch:?}: {seen_by_a:?}");
        assert!(seen_by_a.last().is_some_and(|c| c.capture_id == a.id));
    }
    // A live watch from now (since 0) sees nothing of A's next capture either.
    let mut b_live = app
        .watch(TENANT_B_KEY, WatchCapturesRequest::default())
        .await?;
    let mut second = paypal_capture(&auth, usd("5.00"));
    second.request_id = "order-1043-capture".to_owned();
    app.captured(second).await?;
    assert!(within_half_a_second(&mut b_live).await?.is_empty());

    // Capture: B sending A's request_id is B's own request, never a replay of A's capture.
    let b = app
        .capture_as(TENANT_B_KEY, request)
        .await?
        .capture
        .ok_or("no capture")?;
    assert_ne!(b.id, a.id);
    assert_eq!(b.status(), CaptureStatus::Completed);
    // And A's view of its captures is unchanged by B's.
    let a_listed = app
        .list(TENANT_A_KEY, ListCapturesRequest::default())
        .await?;
    assert!(
        a_listed.captures.iter().all(|c| c.id != b.id),
        "{a_listed:?}"
    );
    assert_eq!(app.get(TENANT_A_KEY, &a.id).await?, a);
    app.stop().await
}
