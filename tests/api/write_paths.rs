//! On PostgreSQL a capture's two writes are single statements, each guarded by what it relies
//! on; the general path is a transaction that locks the ledger row. These tests hold the two to
//! the same stored result, and the single statements to their guards under contention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use capture_service::domain::capture::{AuthorizationId, PlatformFee, RequestId};
use capture_service::domain::outcome::{ProviderFailure, SellerReceivableBreakdown};
use capture_service::domain::{
    CaptureCommand, CaptureParts, CaptureRecord, CaptureStatus, Money, Operation, Provider,
    ProviderOutcome, ReleaseRules,
};
use capture_service::store::{
    Begin, EventSource, LedgerRefusal, NewCapture, PoolSettings, Resolution, Store,
};
use sea_orm::{ConnectionTrait, Statement};

use crate::common::db_outage::{outage_of, Outage, TcpProxy};
use crate::common::{create_postgres_database, drop_postgres_database, Db, TestResult};

/// A PostgreSQL database of its own, dropped with it.
struct Scratch {
    url: String,
    name: String,
}

impl Scratch {
    async fn new() -> Result<Scratch, Box<dyn std::error::Error>> {
        let (url, name) = create_postgres_database("write_paths").await?;
        Ok(Scratch { url, name })
    }

    async fn store(&self, single_statement: bool) -> Result<Store, Box<dyn std::error::Error>> {
        Ok(Store::connect_migrated(&self.url, PoolSettings::default())
            .await?
            .with_single_statement_writes(single_statement))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        drop_postgres_database(std::mem::take(&mut self.name));
    }
}

fn usd(value: &str) -> Option<Money> {
    Money::parse_positive("USD", value).ok()
}

/// A PayPal capture of `amount` (`None`: the rest) of a 100.00 authorization.
fn command(
    authorization: &str,
    request: &str,
    amount: Option<&str>,
    final_capture: bool,
) -> Result<CaptureCommand, Box<dyn std::error::Error>> {
    let fee = PlatformFee {
        amount: usd("0.50").ok_or("amount")?,
        payee: None,
    };
    let command = CaptureCommand::new(CaptureParts {
        operation: Operation::Capture,
        provider: Provider::Paypal,
        account: None,
        authorization_id: AuthorizationId::parse(authorization)?,
        amount: amount.and_then(usd),
        authorized_amount: usd("100.00"),
        final_capture,
        invoice_id: None,
        note_to_payer: None,
        soft_descriptor: None,
        reference: None,
        metadata: Default::default(),
        // A fee needs an amount to be taken from.
        platform_fees: amount.map(|_| fee).into_iter().collect(),
        disbursement_mode: None,
        request_id: RequestId::parse(request)?,
    });
    command.map_err(|errors| format!("{errors:?}").into())
}

async fn begin(
    store: &Store,
    id: &str,
    command: &CaptureCommand,
) -> Result<Begin, Box<dyn std::error::Error>> {
    Ok(store
        .begin_capture(&NewCapture {
            id,
            tenant: "tenant-a",
            account: "default",
            command,
            lease_micros: 60_000_000,
            release_rules: ReleaseRules::NONE,
        })
        .await?)
}

async fn created(
    store: &Store,
    id: &str,
    command: &CaptureCommand,
) -> Result<CaptureRecord, Box<dyn std::error::Error>> {
    match begin(store, id, command).await? {
        Begin::Created(record) => Ok(record),
        other => Err(format!("{id} was not created: {other:?}").into()),
    }
}

fn completed(captured: &str) -> Option<Resolution> {
    Some(Resolution::Outcome(Box::new(ProviderOutcome {
        status: CaptureStatus::Completed,
        reason: None,
        provider_capture_id: Some("2GG279541U471931P".into()),
        provider_status: "COMPLETED".into(),
        provider_reason: None,
        captured_amount: usd(captured),
        breakdown: Some(SellerReceivableBreakdown {
            gross_amount: usd(captured),
            provider_fee: usd("0.29"),
            net_amount: usd("9.21"),
            platform_fees: vec![
                PlatformFee {
                    amount: usd("0.50")?,
                    payee: None,
                },
                PlatformFee {
                    amount: usd("0.25")?,
                    payee: None,
                },
            ],
            ..Default::default()
        }),
        network_reference: None,
        seller_protection: None,
        processor_response: None,
        redacted_body: Some(serde_json::json!({"id": "2GG279541U471931P"}).into()),
    })))
}

/// An outcome that captured nothing (yet): `status` as the provider's `provider_status` says.
fn uncaptured(status: CaptureStatus, provider_status: &str, reason: &str) -> Resolution {
    Resolution::Outcome(Box::new(ProviderOutcome {
        status,
        reason: None,
        provider_capture_id: Some("8F148933LY9388354".into()),
        provider_status: provider_status.into(),
        provider_reason: Some(reason.into()),
        captured_amount: None,
        breakdown: None,
        network_reference: None,
        seller_protection: None,
        processor_response: None,
        redacted_body: None,
    }))
}

fn declined() -> Option<Resolution> {
    Some(uncaptured(
        CaptureStatus::Declined,
        "DECLINED",
        "DECLINED_BY_RISK_FRAUD_FILTERS",
    ))
}

fn pending() -> Option<Resolution> {
    Some(uncaptured(
        CaptureStatus::Pending,
        "PENDING",
        "PENDING_REVIEW",
    ))
}

fn rejected() -> Option<Resolution> {
    Some(Resolution::Rejected(ProviderFailure {
        code: "AUTHORIZATION_EXPIRED".into(),
        message: "The authorization has expired. Card 4111111111111111.".into(),
        debug_id: Some("90957fca61718".into()),
        http_status: 422,
    }))
}

/// One history of captures of an authorization: each step begins a capture (amount, final)
/// and records its resolution.
type Step = (Option<&'static str>, bool, fn() -> Option<Resolution>);

const HISTORIES: &[&[Step]] = &[
    // Captured for less than was asked: the ledger holds what was captured.
    &[(Some("10.00"), false, || completed("9.50"))],
    // A final capture refused: the authorization reopens and forgets what it claimed.
    &[(Some("30.00"), true, rejected)],
    // A second capture declined: the first keeps its hold, currency and authorized amount.
    &[
        (Some("20.00"), false, || completed("20.00")),
        (None, true, declined),
    ],
    // Pending: the hold stays.
    &[(Some("5.00"), false, pending)],
];

/// Everything stored about one authorization, as JSON text, with its ids and times replaced:
/// `ids` are replaced by their position.
async fn stored(
    store: &Store,
    authorization: &str,
    ids: &[String],
) -> Result<String, Box<dyn std::error::Error>> {
    let db = store.connection();
    let queries = [
        "SELECT row_to_json(a)::text FROM authorizations a WHERE authorization_id = $1",
        "SELECT row_to_json(c)::text FROM captures c WHERE authorization_id = $1 \
         ORDER BY capture_sequence, create_time",
        "SELECT row_to_json(e)::text FROM capture_events e JOIN captures c \
         ON c.id = e.capture_id WHERE c.authorization_id = $1 ORDER BY e.id",
        "SELECT row_to_json(b)::text FROM seller_receivable_breakdowns b JOIN captures c \
         ON c.id = b.capture_id WHERE c.authorization_id = $1 ORDER BY c.create_time",
        "SELECT row_to_json(f)::text FROM platform_fees f JOIN captures c \
         ON c.id = f.capture_id WHERE c.authorization_id = $1 ORDER BY f.id",
    ];
    let mut tables = Vec::new();
    for sql in queries {
        let rows = db
            .query_all(Statement::from_sql_and_values(
                db.get_database_backend(),
                sql,
                [authorization.into()],
            ))
            .await?;
        let mut table = Vec::new();
        for row in rows {
            let text: String = row.try_get_by_index(0)?;
            let mut value: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text)?;
            for volatile in [
                "create_time",
                "update_time",
                "lease_until",
                "lease_owner",
                "id",
                "request_fingerprint",
            ] {
                value.remove(volatile);
            }
            table.push(value);
        }
        tables.push(table);
    }
    let mut text = serde_json::to_string_pretty(&tables)?;
    for (n, id) in ids.iter().enumerate() {
        text = text.replace(id.as_str(), &format!("<capture {n}>"));
    }
    Ok(text.replace(authorization, "<authorization>"))
}

/// Runs `history` on `store` for `authorization`; what is stored afterwards.
async fn run(
    store: &Store,
    authorization: &str,
    history: &[Step],
) -> Result<String, Box<dyn std::error::Error>> {
    let mut ids = Vec::new();
    for (n, (amount, final_capture, resolution)) in history.iter().enumerate() {
        let id = format!("cap_{authorization}_{n}");
        let request = format!("req-{authorization}-{n}");
        let command = command(authorization, &request, *amount, *final_capture)?;
        let record = created(store, &id, &command).await?;
        let resolution = resolution().ok_or("an invalid amount")?;
        let answered = store
            .resolve(record, resolution.clone(), EventSource::Api)
            .await?;
        // The answer is the record as stored.
        let read = store.get("tenant-a", &id).await?.ok_or("not stored")?;
        assert_eq!(
            format!("{answered:?}"),
            format!("{read:?}"),
            "the answer is what a read gives"
        );
        assert_eq!(Some(answered.status), resolution.status());
        ids.push(id);
    }
    stored(store, authorization, &ids).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_statements_store_what_the_general_path_stores() -> TestResult {
    let scratch = Scratch::new().await?;
    let single = scratch.store(true).await?;
    let general = scratch.store(false).await?;
    for (n, history) in HISTORIES.iter().enumerate() {
        let before = single.single_statements_made();
        let by_single = run(&single, &format!("SINGLE{n}"), history).await?;
        // Nothing raced them: each capture's two writes were single statements, not the
        // general path they fall back to.
        let writes = 2 * history.len() as u64;
        assert_eq!(
            single.single_statements_made() - before,
            writes,
            "history {n}"
        );
        let by_general = run(&general, &format!("GENERAL{n}"), history).await?;
        assert_eq!(general.single_statements_made(), 0);
        assert_eq!(by_single, by_general, "history {n}");
        // The history wrote what it says (not two empty tables agreeing).
        assert!(by_single.contains("\"capture_count\""), "{by_single}");
    }
    Ok(())
}

/// Many captures of one authorization at once: the single statement's guard (the ledger row's
/// version) sends those that lose a race to the general path, and the ledger never holds more
/// than was authorized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_captures_of_one_authorization_never_exceed_it() -> TestResult {
    let scratch = Scratch::new().await?;
    let store = Arc::new(scratch.store(true).await?);
    let captures = (0..24).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let command = command("RACED", &format!("req-raced-{n}"), Some("10.00"), false)
                .map_err(|e| e.to_string())?;
            begin(&store, &format!("cap_raced_{n}"), &command)
                .await
                .map_err(|e| e.to_string())
        })
    });
    let (mut admitted, mut refused) = (0, 0);
    for capture in captures.collect::<Vec<_>>() {
        match capture.await?? {
            Begin::Created(_) => admitted += 1,
            Begin::Refused(LedgerRefusal::ExceedsAuthorization { .. }) => refused += 1,
            other => return Err(format!("unexpected: {other:?}").into()),
        }
    }
    assert_eq!((admitted, refused), (10, 14));
    // Some were written as single statements; the guard sent the losers of a race to the
    // general path, which refused the 14.
    let single = store.single_statements_made();
    assert!((1..=10).contains(&single), "{single} single statements");
    let db = store.connection();
    let row = db
        .query_one(Statement::from_string(
            db.get_database_backend(),
            "SELECT held_minor, capture_count, \
             (SELECT count(*) FROM captures WHERE authorization_id = 'RACED') \
             FROM authorizations WHERE authorization_id = 'RACED'",
        ))
        .await?
        .ok_or("no ledger row")?;
    let held: i64 = row.try_get_by_index(0)?;
    let count: i32 = row.try_get_by_index(1)?;
    let rows: i64 = row.try_get_by_index(2)?;
    assert_eq!((held, count, rows), (10_000, 10, 10));
    Ok(())
}

/// An outcome for a capture that another write already moved on is not applied by the single
/// statement; the general path answers with what is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_for_a_capture_no_longer_processing_changes_nothing_twice() -> TestResult {
    let scratch = Scratch::new().await?;
    let store = scratch.store(true).await?;
    let command = command("LATE", "req-late", Some("10.00"), false)?;
    let record = created(&store, "cap_late", &command).await?;
    let completed = completed("10.00").ok_or("an invalid amount")?;
    let first = store
        .resolve(record.clone(), completed, EventSource::Webhook)
        .await?;
    assert_eq!(first.status, CaptureStatus::Completed);
    let made = store.single_statements_made();
    // The caller still holds the PROCESSING record: its late refusal must not undo the capture.
    let rejected = rejected().ok_or("an invalid amount")?;
    let late = store.resolve(record, rejected, EventSource::Api).await?;
    assert_eq!(late.status, CaptureStatus::Completed);
    // The single statement found it no longer PROCESSING and wrote nothing.
    assert_eq!(store.single_statements_made(), made);
    let stored = stored(&store, "LATE", &["cap_late".to_owned()]).await?;
    assert!(stored.contains("\"held_minor\": 1000"), "{stored}");
    assert!(!stored.contains("PROVIDER_REJECTED"), "{stored}");
    Ok(())
}

/// A store of four connections (two lanes, two in the pool) on a database of its own, reached
/// through a proxy that counts what passes; `bound`: the store's operation bound.
async fn behind_proxy(
    bound: Option<Duration>,
) -> Result<(Scratch, Outage, Store), Box<dyn std::error::Error>> {
    let scratch = Scratch::new().await?;
    let outage = outage_of(Db::Postgres).await?;
    let pool = PoolSettings {
        max_connections: 4,
        reserved_for_reads: 1,
        statement_timeout: bound.or(PoolSettings::default().statement_timeout),
        ..PoolSettings::default()
    };
    let store = Store::connect_migrated(&outage.route(&scratch.url), pool).await?;
    Ok((scratch, outage, store))
}

/// Waits until nothing has passed the proxy for 100 ms, and gives its (round trips, simple
/// queries) then.
async fn quiet(proxy: &TcpProxy) -> (u64, u64) {
    let mut last = (proxy.round_trips(), proxy.simple_queries());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = (proxy.round_trips(), proxy.simple_queries());
        if now == last {
            return now;
        }
        last = now;
    }
}

/// A capture on PostgreSQL is its three statements (the read, the start, the outcome), each one
/// round trip and no more: they run on the store's lanes (`store::lanes`), which go back
/// without the test sqlx's pool makes of every connection it takes back (a `Sync`, a round trip
/// more each: 60 for ten captures), and are not tested as they are taken when they answered a
/// moment ago (with that test, 90).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_is_three_round_trips() -> TestResult {
    // One caller at a time takes the same lane each time, so the statements it prepared at the
    // first capture serve the rest (a connection new to a statement first prepares it, one
    // round trip more).
    let (_scratch, outage, store) = behind_proxy(None).await?;
    let Outage::Postgres(proxy) = &outage else {
        return Err("no proxy in front of PostgreSQL".into());
    };
    let store = store.with_single_statement_writes(true);
    let capture = |n: usize| {
        let store = store.clone();
        async move {
            let authorization = format!("TRIPS{n}");
            let command = command(
                &authorization,
                &format!("req-trips-{n}"),
                Some("10.00"),
                false,
            )?;
            // Its begin reads the request's record and the ledger, then starts the capture.
            let record = created(&store, &format!("cap_trips_{n}"), &command).await?;
            let resolution = completed("10.00").ok_or("an invalid amount")?;
            store.resolve(record, resolution, EventSource::Api).await?;
            Ok::<(), Box<dyn std::error::Error>>(())
        }
    };
    // The first prepares the statements.
    capture(0).await?;
    // Counted once quiet: the release test runs after the statement has answered, and the
    // notices (below) a moment after the commits.
    let settled = || quiet(proxy);
    let (trips, notices) = settled().await;
    for n in 1..=10 {
        capture(n).await?;
    }
    let (trips_after, notices_after) = settled().await;
    // Besides, the store tells other processes of its commits: a `pg_notify` at most every
    // 20 ms, a simple query on a pooled connection, with the pool's release test and, when
    // that connection sat idle for 500 ms, its test as it is taken: two or three round trips.
    let notices = notices_after - notices;
    let trips = trips_after - trips;
    let captures = trips.saturating_sub(3 * notices)..=trips.saturating_sub(2 * notices);
    assert!(
        captures.contains(&30),
        "ten captures and {notices} notices made {trips} round trips"
    );
    assert_eq!(store.single_statements_made(), 22);
    Ok(())
}

/// A lane whose statement was cut off is closed, never handed to the next statement: the Get
/// held in a blackhole times out, and the next Get opens a connection of its own and reads
/// its own record (a lane kept after the cut would be taken again: no new connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_cut_off_mid_statement_is_closed_not_reused() -> TestResult {
    let (_scratch, outage, store) = behind_proxy(Some(Duration::from_millis(500))).await?;
    let Outage::Postgres(proxy) = &outage else {
        return Err("no proxy in front of PostgreSQL".into());
    };
    for (id, authorization) in [("cap_lane_held", "LANE1"), ("cap_lane_after", "LANE2")] {
        let command = command(authorization, &format!("req-{id}"), Some("10.00"), false)?;
        created(&store, id, &command).await?;
    }
    // One caller at a time: every Get takes the same lane, the one the last statement used.
    let read = |id: &'static str| {
        let store = store.clone();
        async move { store.get("tenant-a", id).await }
    };
    read("cap_lane_after").await?.ok_or("not found")?;
    let opened = proxy.connections();

    // The Get's parameters carry the id: its bytes start the blackhole, and are held.
    proxy.blackhole_at(b"cap_lane_held");
    let held = read("cap_lane_held").await;
    assert!(
        matches!(&held, Err(e) if e.is_unavailable()),
        "a Get held in a blackhole: {held:?}"
    );
    proxy.lift_blackhole();

    let after = read("cap_lane_after").await?.ok_or("not found")?;
    assert_eq!(after.id, "cap_lane_after");
    assert_eq!(
        proxy.connections(),
        opened + 1,
        "the cut lane was closed and a new one opened"
    );
    let again = read("cap_lane_after").await?.ok_or("not found")?;
    assert_eq!(again.id, "cap_lane_after");
    assert_eq!(proxy.connections(), opened + 1, "the new lane is kept");
    Ok(())
}

/// A Get and a replay on PostgreSQL are one statement each, on a lane: one round trip and no
/// more (through the pool each would be two: sqlx tests every connection it takes back; a lane
/// tested as it is taken, three).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_and_a_replay_are_one_round_trip_each() -> TestResult {
    let (_scratch, outage, store) = behind_proxy(None).await?;
    let Outage::Postgres(proxy) = &outage else {
        return Err("no proxy in front of PostgreSQL".into());
    };
    let store = store.with_single_statement_writes(true);
    let command = command("READS1", "req-reads-1", Some("10.00"), false)?;
    let record = created(&store, "cap_reads_1", &command).await?;
    let resolution = completed("10.00").ok_or("an invalid amount")?;
    store.resolve(record, resolution, EventSource::Api).await?;
    // The commits' notices (a moment after them) go out before counting starts.
    quiet(proxy).await;
    // One caller at a time takes the same lane, which prepares both statements here (and is
    // tested, if it sat idle): counted from then on, with no pause in which it could idle.
    store
        .get("tenant-a", "cap_reads_1")
        .await?
        .ok_or("not found")?;
    begin(&store, "cap_reads_unused", &command).await?;

    let before = proxy.round_trips();
    for _ in 0..10 {
        let got = store.get("tenant-a", "cap_reads_1").await?;
        assert_eq!(got.map(|r| r.status), Some(CaptureStatus::Completed));
    }
    let after_gets = proxy.round_trips();
    for _ in 0..10 {
        match begin(&store, "cap_reads_unused", &command).await? {
            Begin::Existing(found) => assert_eq!(found.id, "cap_reads_1"),
            other => return Err(format!("a replay was answered {other:?}").into()),
        }
    }
    let after_replays = proxy.round_trips();
    assert_eq!(after_gets - before, 10, "ten Gets");
    assert_eq!(after_replays - after_gets, 10, "ten replays");
    Ok(())
}

/// Reads keep connections of their own while captures storm (README,
/// `CAPTURE_DATABASE_RESERVED_FOR_READS`): writes may take half of what the reserve leaves, since
/// each holds a lane or a pooled connection, whichever they crowd. Here every write is stuck
/// behind a lock, twice as many as may run wait for their turn, and a Get, a replay's read and a
/// list page still answer. With the writes' share not halved, four writes hold all four lanes
/// and the Get waits out the acquire bound: an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_while_every_write_waits_on_a_lock() -> TestResult {
    let scratch = Scratch::new().await?;
    // 4 lanes and 4 pooled connections; writes may run 3 at once.
    let pool = PoolSettings {
        max_connections: 8,
        reserved_for_reads: 2,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Some(Duration::from_secs(20)),
        ..PoolSettings::default()
    };
    let store = Store::connect_migrated(&scratch.url, pool).await?;
    let first = command("RESERVE0", "req-reserve-0", Some("10.00"), false)?;
    created(&store, "cap_reserve_0", &first).await?;

    // Another session holds the ledger in SHARE mode: a capture's write of its ledger row waits
    // for it, while reads (ACCESS SHARE) do not.
    let locker = sea_orm::Database::connect(&scratch.url).await?;
    let lock = sea_orm::TransactionTrait::begin(&locker).await?;
    lock.execute_unprepared("LOCK TABLE authorizations IN SHARE MODE")
        .await?;
    let writes: Vec<_> = (1..=6)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let command = command(
                    &format!("RESERVE{n}"),
                    &format!("req-reserve-{n}"),
                    Some("10.00"),
                    false,
                )
                .map_err(|e| e.to_string())?;
                begin(&store, &format!("cap_reserve_{n}"), &command)
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    // Until the three writes that may run are waiting on the lock.
    let observer = sea_orm::Database::connect(&scratch.url).await?;
    let waiting = Statement::from_string(
        sea_orm::DbBackend::Postgres,
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    loop {
        let row = observer.query_one(waiting.clone()).await?.ok_or("no row")?;
        if row.try_get_by_index::<i64>(0)? >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    for _ in 0..5 {
        let got = store.get("tenant-a", "cap_reserve_0").await?;
        assert_eq!(got.map(|r| r.id), Some("cap_reserve_0".to_owned()));
        match begin(&store, "cap_reserve_unused", &first).await? {
            Begin::Existing(found) => assert_eq!(found.id, "cap_reserve_0"),
            other => return Err(format!("a replay was answered {other:?}").into()),
        }
        let query = capture_service::store::ListQuery {
            page_size: 10,
            ..Default::default()
        };
        let page = store.list("tenant-a", &query).await?;
        assert_eq!(page.records.len(), 1, "only the first capture is committed");
    }
    assert!(
        writes.iter().all(|write| !write.is_finished()),
        "the reads were answered while every write waited"
    );

    lock.rollback().await?;
    for write in writes {
        match write.await?? {
            Begin::Created(_) => {}
            other => return Err(format!("a write ended {other:?}").into()),
        }
    }
    Ok(())
}
