//! Black-box tests of `WatchCaptures`: changes pushed as they are committed, only the caller's
//! own, resumable by cursor, a slow watcher cut off without slowing anyone, and (PostgreSQL)
//! changes committed on one replica reaching watchers on another.

use std::time::Duration;

use crate::common::*;
use crate::on_both_databases;
use capture_service::proto::{self, CaptureStatus, WatchCapturesRequest, WatchCapturesResponse};
use tonic::{Code, Streaming};

on_both_databases!(
    a_watcher_sees_its_own_tenants_changes_live_and_resumes_from_its_cursor,
    a_slow_watcher_is_ended_with_its_resume_cursor_and_slows_nobody,
    watch_filters_are_checked_and_applied,
    one_tenant_cannot_take_every_watch,
    at_shutdown_a_watch_ends_naming_its_cursor,
    a_watch_from_beyond_the_newest_change_is_out_of_range,
);

/// A cursor no change has reached yet was never sent: `OUT_OF_RANGE` naming the newest one,
/// not a watch that stays silent for ever. The newest cursor itself is a fine place to start.
async fn a_watch_from_beyond_the_newest_change_is_out_of_range(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    app.captured(paypal_capture(&auth, usd("1.00"))).await?;
    let mut from_start = app
        .watch(
            TENANT_A_KEY,
            WatchCapturesRequest {
                since: 0,
                ..Default::default()
            },
        )
        .await?;
    // Any watcher's first change tells the newest cursor: replay from 1.
    let mut replay = app
        .watch(
            TENANT_A_KEY,
            WatchCapturesRequest {
                since: 1,
                ..Default::default()
            },
        )
        .await?;
    let seen = next_changes(&mut replay, 1).await?;
    let newest = seen.last().map(|c| c.cursor).ok_or("no change replayed")?;
    drop(from_start.message());
    for since in [1_i64 << 62, newest + 1_000] {
        let refused = app
            .watch(
                TENANT_A_KEY,
                WatchCapturesRequest {
                    since,
                    ..Default::default()
                },
            )
            .await;
        let status = refused.err().ok_or("a watch from the future was taken")?;
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
        let (reason, metadata) = error_info(&status).ok_or("no ErrorInfo")?;
        assert_eq!(reason, "CURSOR_BEYOND_HEAD");
        let head: i64 = metadata.get("head_cursor").ok_or("no head")?.parse()?;
        assert!(head >= newest, "{head} < {newest}");
    }
    app.watch(
        TENANT_A_KEY,
        WatchCapturesRequest {
            since: newest,
            ..Default::default()
        },
    )
    .await?;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_on_one_replica_reaches_watchers_on_another() -> TestResult {
    let first = TestApp::spawn(Db::Postgres).await?;
    let url = first.database_url.clone();
    // The second replica reads the trail only once a minute: what reaches it within the few
    // seconds below came by the first one's NOTIFY.
    let second = TestApp::spawn_with(Db::Postgres, move |config| {
        config.database_url = url.into();
        config.change_poll = Duration::from_secs(60);
    })
    .await?;
    let mut watching = second
        .watch(TENANT_A_KEY, WatchCapturesRequest::default())
        .await?;
    let auth = first.authorize("USD", "100.00", "APPROVE").await?;
    let capture = first.captured(paypal_capture(&auth, usd("10.00"))).await?;
    let changes = next_changes(&mut watching, 2).await?;
    assert_eq!(
        ids_and_statuses(&changes),
        [
            (capture.id.clone(), CaptureStatus::Processing),
            (capture.id.clone(), CaptureStatus::Completed),
        ]
    );
    second.stop().await?;
    first.stop().await
}

/// The next `n` changes (each within 5 s).
async fn next_changes(
    stream: &mut Streaming<WatchCapturesResponse>,
    n: usize,
) -> Result<Vec<WatchCapturesResponse>, Box<dyn std::error::Error>> {
    let mut changes = Vec::new();
    while changes.len() < n {
        let change = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .map_err(|_| format!("only {} of {n} changes came", changes.len()))??
            .ok_or("the stream ended")?;
        changes.push(change);
    }
    Ok(changes)
}

/// Nothing arrives for a while.
async fn quiet(
    stream: &mut Streaming<WatchCapturesResponse>,
) -> Result<(), Box<dyn std::error::Error>> {
    match tokio::time::timeout(Duration::from_millis(500), stream.message()).await {
        Err(_) => Ok(()),
        Ok(got) => Err(format!("expected nothing, got {got:?}").into()),
    }
}

fn ids_and_statuses(changes: &[WatchCapturesResponse]) -> Vec<(String, CaptureStatus)> {
    changes
        .iter()
        .map(|c| (c.capture_id.clone(), c.status()))
        .collect()
}

async fn a_watcher_sees_its_own_tenants_changes_live_and_resumes_from_its_cursor(
    db: Db,
) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let mut a = app
        .watch(TENANT_A_KEY, WatchCapturesRequest::default())
        .await?;
    let mut b = app
        .watch(TENANT_B_KEY, WatchCapturesRequest::default())
        .await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let first = app.captured(paypal_capture(&auth, usd("10.00"))).await?;
    let seen = next_changes(&mut a, 2).await?;
    assert_eq!(
        ids_and_statuses(&seen),
        [
            (first.id.clone(), CaptureStatus::Processing),
            (first.id.clone(), CaptureStatus::Completed),
        ]
    );
    assert_eq!(seen[0].kind, "CREATED");
    assert_eq!(seen[1].source, "api");
    assert!(seen[0].cursor < seen[1].cursor, "cursors grow");
    let snapshot = seen[1].capture.as_ref().ok_or("no capture")?;
    assert_eq!(snapshot.status(), CaptureStatus::Completed);
    // Tenant B sees nothing of tenant A's.
    quiet(&mut b).await?;

    // A leaves; two more captures happen while it is away.
    let cursor = seen[1].cursor;
    drop(a);
    let second = app.captured(paypal_capture(&auth, usd("5.00"))).await?;
    let third = app.captured(paypal_capture(&auth, usd("6.00"))).await?;
    // Back with its last cursor: the missed changes in order, then live ones.
    let mut a = app
        .watch(
            TENANT_A_KEY,
            WatchCapturesRequest {
                since: cursor,
                ..Default::default()
            },
        )
        .await?;
    let missed = next_changes(&mut a, 4).await?;
    assert_eq!(
        ids_and_statuses(&missed),
        [
            (second.id.clone(), CaptureStatus::Processing),
            (second.id.clone(), CaptureStatus::Completed),
            (third.id.clone(), CaptureStatus::Processing),
            (third.id.clone(), CaptureStatus::Completed),
        ]
    );
    let fourth = app.captured(paypal_capture(&auth, usd("7.00"))).await?;
    let live = next_changes(&mut a, 2).await?;
    assert!(live.iter().all(|c| c.capture_id == fourth.id), "{live:?}");
    quiet(&mut b).await?;
    // Another tenant replaying from the start still sees only its own (none).
    let mut b_replay = app
        .watch(
            TENANT_B_KEY,
            WatchCapturesRequest {
                since: 1,
                ..Default::default()
            },
        )
        .await?;
    quiet(&mut b_replay).await?;
    app.stop().await
}

async fn a_slow_watcher_is_ended_with_its_resume_cursor_and_slows_nobody(db: Db) -> TestResult {
    let app = TestApp::spawn_with(db, |config| config.limits.watch_buffer = 4).await?;
    // Opened, then not read until the end, on a connection whose flow-control window (64 KiB,
    // HTTP/2's default) holds back what the service may send it.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", app.grpc_addr))?
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await?;
    let mut request = tonic::Request::new(WatchCapturesRequest::default());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {TENANT_A_KEY}").parse()?);
    let mut slow = proto::capture_service_client::CaptureServiceClient::new(channel)
        .watch_captures(request)
        .await?
        .into_inner();
    let mut fast = app
        .watch(TENANT_A_KEY, WatchCapturesRequest::default())
        .await?;
    let auth = app.authorize("USD", "100000.00", "APPROVE").await?;
    const CAPTURES: usize = 200;
    let mut ids = Vec::new();
    for _ in 0..CAPTURES {
        ids.push(app.captured(paypal_capture(&auth, usd("1.00"))).await?.id);
    }
    // The fast watcher got every change while the slow one read nothing.
    let all = next_changes(&mut fast, 2 * CAPTURES).await?;
    assert_eq!(
        all.iter()
            .filter(|c| c.status() == CaptureStatus::Completed)
            .count(),
        CAPTURES
    );

    let mut got = Vec::new();
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(5), slow.message()).await? {
            Ok(Some(change)) => got.push(change),
            Ok(None) => return Err("the slow stream ended without a status".into()),
            Err(status) => break status,
        }
    };
    assert_eq!(ended.code(), Code::Aborted, "{ended:?}");
    let (reason, metadata) = error_info(&ended).ok_or("no error info")?;
    assert_eq!(reason, "WATCH_BUFFER_FULL");
    let resume: i64 = metadata
        .get("resume_cursor")
        .ok_or("no resume cursor")?
        .parse()?;
    assert!(got.len() < 2 * CAPTURES, "the slow watcher was cut off");
    assert_eq!(
        got.last().map(|c| c.cursor).unwrap_or(0).max(resume),
        resume
    );
    // Resuming gives exactly the rest: nothing lost, nothing twice.
    let mut resumed = app
        .watch(
            TENANT_A_KEY,
            WatchCapturesRequest {
                since: resume,
                ..Default::default()
            },
        )
        .await?;
    let rest = next_changes(&mut resumed, 2 * CAPTURES - got.len()).await?;
    let cursors: Vec<i64> = got.iter().chain(&rest).map(|c| c.cursor).collect();
    let expected: Vec<i64> = all.iter().map(|c| c.cursor).collect();
    assert_eq!(cursors, expected);
    app.stop().await
}

async fn watch_filters_are_checked_and_applied(db: Db) -> TestResult {
    let app = TestApp::spawn(db).await?;
    let refused = app
        .watch(
            TENANT_A_KEY,
            WatchCapturesRequest {
                capture_ids: vec!["not-a-capture".into()],
                since: -1,
                ..Default::default()
            },
        )
        .await;
    let status = refused.err().ok_or("a bad request was taken")?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(bad_fields(&status), ["since", "capture_ids[0]"]);

    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let mut completed_only = app
        .watch(
            TENANT_A_KEY,
            WatchCapturesRequest {
                status: proto::CaptureStatus::Completed as i32,
                authorization_id: auth.clone(),
                ..Default::default()
            },
        )
        .await?;
    let other = app.authorize("USD", "100.00", "APPROVE").await?;
    app.captured(paypal_capture(&other, usd("1.00"))).await?;
    let mine = app.captured(paypal_capture(&auth, usd("2.00"))).await?;
    let seen = next_changes(&mut completed_only, 1).await?;
    assert_eq!(
        ids_and_statuses(&seen),
        [(mine.id, CaptureStatus::Completed)]
    );
    quiet(&mut completed_only).await?;
    app.stop().await
}

/// On PostgreSQL a transaction may take an event id and commit after a later id: the watcher
/// must neither skip it nor send the later one first, however long it stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_late_with_an_earlier_cursor_is_not_skipped() -> TestResult {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn(Db::Postgres).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let first = app.captured(paypal_capture(&auth, usd("1.00"))).await?;
    let mut watching = app
        .watch(TENANT_A_KEY, WatchCapturesRequest::default())
        .await?;
    // Another writer takes the next event id and keeps its transaction open. Like every writer
    // of the service, it writes another row first.
    let db = sea_orm::Database::connect(app.database_url.as_str()).await?;
    let slow = db.begin().await?;
    slow.execute_unprepared(&format!(
        "UPDATE captures SET update_time = update_time WHERE id = '{}'",
        first.id
    ))
    .await?;
    slow.execute_unprepared(&format!(
        "INSERT INTO capture_events (capture_id, kind, status, detail, create_time, source) \
         VALUES ('{}', 'NOTE', 'COMPLETED', '{{}}', 1, 'reconciler')",
        first.id
    ))
    .await?;
    // Meanwhile the service commits later ids; the watcher holds them back, for longer than
    // any fixed wait would.
    let second = app.captured(paypal_capture(&auth, usd("2.00"))).await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    quiet(&mut watching).await?;
    slow.commit().await?;
    let changes = next_changes(&mut watching, 3).await?;
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.capture_id.as_str(), c.kind.as_str()))
            .collect::<Vec<_>>(),
        [
            (first.id.as_str(), "NOTE"),
            (second.id.as_str(), "CREATED"),
            (second.id.as_str(), "PROVIDER_OUTCOME"),
        ]
    );
    assert!(changes.windows(2).all(|w| w[0].cursor < w[1].cursor));
    app.stop().await
}

/// The order PostgreSQL's snapshot alone cannot tell apart: the transaction holding the
/// missing id began after one that has already committed, so no snapshot's `xmax` covers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_id_of_a_transaction_begun_after_a_committed_one_is_not_skipped() -> TestResult {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn(Db::Postgres).await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    let first = app.captured(paypal_capture(&auth, usd("1.00"))).await?;
    let second = app.captured(paypal_capture(&auth, usd("2.00"))).await?;
    let mut watching = app
        .watch(TENANT_A_KEY, WatchCapturesRequest::default())
        .await?;
    let note = |id: &str, kind: &str| {
        format!(
            "INSERT INTO capture_events (capture_id, kind, status, detail, create_time, source) \
             VALUES ('{id}', '{kind}', 'COMPLETED', '{{}}', 1, 'reconciler')"
        )
    };
    let touch =
        |id: &str| format!("UPDATE captures SET update_time = update_time WHERE id = '{id}'");
    let (one, two) = (
        sea_orm::Database::connect(app.database_url.as_str()).await?,
        sea_orm::Database::connect(app.database_url.as_str()).await?,
    );
    // T1 takes a transaction id, then T2 a later one; T2 takes the earlier event id.
    let t1 = one.begin().await?;
    t1.execute_unprepared(&touch(&first.id)).await?;
    let t2 = two.begin().await?;
    t2.execute_unprepared(&touch(&second.id)).await?;
    t2.execute_unprepared(&note(&second.id, "EARLY")).await?;
    t1.execute_unprepared(&note(&first.id, "LATE")).await?;
    t1.commit().await?;
    // T1's event is committed, T2's earlier one is not: nothing may come yet.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    quiet(&mut watching).await?;
    t2.commit().await?;
    let changes = next_changes(&mut watching, 2).await?;
    assert_eq!(
        changes.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>(),
        ["EARLY", "LATE"]
    );
    app.stop().await
}

async fn one_tenant_cannot_take_every_watch(db: Db) -> TestResult {
    let app = TestApp::spawn_with(db, |config| config.limits.max_watchers_per_tenant = 2).await?;
    let first = app
        .watch(TENANT_A_KEY, WatchCapturesRequest::default())
        .await?;
    let _second = app
        .watch(TENANT_A_KEY, WatchCapturesRequest::default())
        .await?;
    let third = app
        .watch(TENANT_A_KEY, WatchCapturesRequest::default())
        .await;
    let status = third
        .err()
        .ok_or("a third watch of one tenant was opened")?;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Another tenant still watches.
    let _other = app
        .watch(TENANT_B_KEY, WatchCapturesRequest::default())
        .await?;
    // A watch closed gives its slot back.
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match app
            .watch(TENANT_A_KEY, WatchCapturesRequest::default())
            .await
        {
            Ok(_) => break,
            Err(status) if std::time::Instant::now() < deadline => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => return Err(format!("the slot never came back: {status:?}").into()),
        }
    }
    app.stop().await
}

async fn at_shutdown_a_watch_ends_naming_its_cursor(db: Db) -> TestResult {
    let mut app = TestApp::spawn(db).await?;
    let mut watching = app
        .watch(TENANT_A_KEY, WatchCapturesRequest::default())
        .await?;
    let auth = app.authorize("USD", "100.00", "APPROVE").await?;
    app.captured(paypal_capture(&auth, usd("1.00"))).await?;
    let seen = next_changes(&mut watching, 2).await?;
    app.stop_signal();
    let ended = tokio::time::timeout(Duration::from_secs(5), watching.message())
        .await?
        .err()
        .ok_or("the stream did not end with a status")?;
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    let (_, metadata) = error_info(&ended).ok_or("no error info")?;
    let cursor = seen.last().map(|c| c.cursor.to_string());
    assert_eq!(metadata.get("resume_cursor"), cursor.as_ref());
    app.stopped().await
}
