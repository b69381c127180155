//! `WatchCaptures`: a tenant's capture changes, replayed from the audit trail after a cursor and
//! then followed live.
//!
//! One [`Hub`] per process reads each new change once, with its capture, up to the change
//! feed's horizon, and broadcasts it; every watcher filters the broadcast for its tenant and
//! filters. A watcher that resumes first replays its own changes from the trail, then joins
//! the broadcast where the replay ended (skipping what it already sent). Each watcher has a
//! task of its own and a bounded buffer towards its caller: captures never wait for a watcher,
//! and a watcher whose buffer fills is ended with `ABORTED` and the cursor to resume from, so
//! it loses nothing and holds nothing up.

use std::collections::HashMap;
use std::pin::Pin;

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, watch, OnceCell};
use tokio_util::sync::CancellationToken;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::tokio_stream::Stream;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::convert::{optional, provider_filter, status_filter, status_to_proto, timestamp};
use super::error::{invalid_argument, ERROR_DOMAIN};
use crate::capture::{is_capture_id, Admitted};
use crate::domain::capture::AuthorizationId;
use crate::domain::Operation;
use crate::domain::{CaptureRecord, Violations};
use crate::proto::{self, WatchCapturesRequest};
use crate::store::{Change, ChangeFilter, Store};

/// The stream a `WatchCaptures` call answers with.
pub type ChangeStream =
    Pin<Box<dyn Stream<Item = Result<proto::WatchCapturesResponse, Status>> + Send>>;

/// At most this many capture ids in one request.
const MAX_CAPTURE_IDS: usize = 100;
/// Changes read from the trail at a time.
const PAGE: u64 = 100;

/// The request as a starting cursor and a filter, or the fields that are wrong.
pub fn parse_request(request: &WatchCapturesRequest) -> Result<(i64, ChangeFilter), Status> {
    let mut violations = Violations::default();
    if request.since < 0 {
        violations.add("since", "must be a cursor the service sent, or 0");
    }
    if request.capture_ids.len() > MAX_CAPTURE_IDS {
        violations.add("capture_ids", format!("at most {MAX_CAPTURE_IDS} ids"));
    }
    for (i, id) in request.capture_ids.iter().enumerate() {
        if !is_capture_id(id) {
            violations.add(
                format!("capture_ids[{i}]"),
                "must be a capture id (cap_ and 26 characters)",
            );
        }
    }
    let provider = provider_filter(&mut violations, request.provider);
    let status = status_filter(&mut violations, request.status);
    let authorization_id = optional(
        &mut violations,
        "authorization_id",
        &request.authorization_id,
        AuthorizationId::parse,
    );
    if !violations.is_empty() {
        return Err(invalid_argument(&violations.into_vec()));
    }
    Ok((
        request.since,
        ChangeFilter {
            capture_ids: request.capture_ids.clone(),
            authorization_id: authorization_id.map(|id| id.as_str().to_owned()),
            provider,
            status,
        },
    ))
}

/// The process's reader of new changes, started by its first watcher.
#[derive(Clone, Default)]
pub struct Hub {
    live: Arc<OnceCell<Live>>,
}

/// What the hub broadcasts, and how far it has.
#[derive(Clone)]
struct Live {
    changes: broadcast::Sender<Arc<Broadcast>>,
    /// The cursor up to which every change has been broadcast.
    position: watch::Receiver<i64>,
}

/// What the hub sends its watchers.
enum Broadcast {
    /// Changes, oldest first.
    Page(Vec<Shared>),
    /// The hub cannot read the trail now: watchers end, naming their cursor, rather than wait
    /// without a word.
    Unavailable,
}

/// A change as every watcher receives it: what they filter on, and the message they send.
struct Shared {
    change: Change,
    message: proto::WatchCapturesResponse,
}

/// Pages of changes the broadcast holds for a watcher's task that falls behind.
const BROADCAST_PAGES: usize = 256;

impl Hub {
    async fn live(&self, store: &Store) -> Result<Live, Status> {
        let live = self
            .live
            .get_or_try_init(|| async {
                let horizon = store.change_horizon().await?;
                let start = *horizon.borrow();
                let (changes, _) = broadcast::channel(BROADCAST_PAGES);
                let (position, read) = watch::channel(start);
                tokio::spawn(broadcast_changes(
                    store.clone(),
                    horizon,
                    changes.clone(),
                    position,
                ));
                Ok::<_, crate::store::StoreError>(Live {
                    changes,
                    position: read,
                })
            })
            .await?;
        Ok(live.clone())
    }
}

/// Reads every change up to the horizon once, with its capture, and broadcasts it, until no
/// watcher is left to subscribe (the hub is dropped with its API).
async fn broadcast_changes(
    store: Store,
    mut horizon: watch::Receiver<i64>,
    changes: broadcast::Sender<Arc<Broadcast>>,
    position: watch::Sender<i64>,
) {
    let mut at = *position.borrow();
    loop {
        let up_to = *horizon.borrow_and_update();
        while at < up_to {
            match read_page(&store, at, up_to).await {
                Ok((page, next)) => {
                    // The position moves first: a watcher that joins between the two replays
                    // up to it and also gets the page (and skips what it already sent), rather
                    // than missing the page.
                    at = next;
                    position.send_replace(at);
                    if !page.is_empty() {
                        // No receiver now is fine: a watcher joining later replays from the trail.
                        let _ = changes.send(Arc::new(Broadcast::Page(page)));
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the watch hub could not read the trail");
                    let _ = changes.send(Arc::new(Broadcast::Unavailable));
                    if position.is_closed() {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
            }
        }
        tokio::select! {
            changed = horizon.changed() => if changed.is_err() { return },
            // The API that owned the hub is gone.
            () = position.closed() => return,
        }
    }
}

/// One page of every tenant's changes after `at`, with their captures; and where the next
/// page starts.
async fn read_page(
    store: &Store,
    at: i64,
    up_to: i64,
) -> Result<(Vec<Shared>, i64), crate::store::StoreError> {
    let changes = store.all_changes(at, up_to, PAGE).await?;
    let next = match changes.last() {
        Some(last) if changes.len() as u64 == PAGE => last.cursor,
        _ => up_to,
    };
    Ok((with_captures(store, changes).await?, next))
}

/// The changes with their captures as stored now, read in one statement.
async fn with_captures(
    store: &Store,
    changes: Vec<Change>,
) -> Result<Vec<Shared>, crate::store::StoreError> {
    let mut ids: Vec<&str> = changes.iter().map(|c| c.capture_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let records: HashMap<String, CaptureRecord> = store
        .records(ids.into_iter())
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    Ok(changes
        .into_iter()
        .map(|change| {
            let message = to_proto(&change, records.get(&change.capture_id));
            Shared { change, message }
        })
        .collect())
}

/// Opens a stream of `tenant`'s changes after `since` (0: from now on), holding at most
/// `buffer` changes for a slow reader; it ends when the caller leaves or `stop` is cancelled.
pub async fn open(
    hub: &Hub,
    store: Store,
    watch: Watch,
    buffer: usize,
    stop: CancellationToken,
) -> Result<ChangeStream, Status> {
    let live = hub.live(&store).await?;
    // Subscribed before the position is read: every change after it comes by the broadcast,
    // and the replay covers the rest (one sent by both is skipped by its cursor).
    let changes = live.changes.subscribe();
    let joined_at = *live.position.borrow();
    // A cursor past what this process has seen may come from a replica that is ahead; one past
    // the trail's head was never sent, and would wait in silence for changes that may never
    // come.
    if watch.since > joined_at {
        let head = store.last_change().await.map_err(Status::from)?;
        if watch.since > head {
            return Err(beyond_head(watch.since, head));
        }
    }
    let start = if watch.since > 0 {
        watch.since
    } else {
        joined_at
    };
    // One slot more than the buffer: the last is kept for the status that ends the stream.
    let (tx, rx) = mpsc::channel(buffer.max(1) + 1);
    let watcher = Watcher {
        store,
        watch,
        tx,
        stop,
    };
    tokio::spawn(watcher.follow(start, joined_at, changes));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

/// What one caller watches, and its admission slots (held while the stream is open).
pub struct Watch {
    pub tenant: String,
    pub since: i64,
    pub filter: ChangeFilter,
    pub admitted: Admitted,
    pub tenant_slot: TenantSlot,
}

/// Watches open per tenant, so that one tenant cannot take every watch of the service.
#[derive(Clone)]
pub struct TenantWatches {
    open: Arc<std::sync::Mutex<HashMap<String, usize>>>,
    limit: usize,
}

/// One open watch of a tenant; given back when dropped.
pub struct TenantSlot {
    open: Arc<std::sync::Mutex<HashMap<String, usize>>>,
    tenant: String,
}

impl TenantWatches {
    pub fn new(limit: usize) -> Self {
        TenantWatches {
            open: Arc::default(),
            limit,
        }
    }

    /// A slot for one more watch of `tenant`, unless it has `limit` open.
    pub fn admit(&self, tenant: &str) -> Result<TenantSlot, crate::capture::Overloaded> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(tenant.to_owned()).or_default();
        if *count >= self.limit {
            return Err(crate::capture::Overloaded {
                kind: "watches of this tenant",
                limit: self.limit,
            });
        }
        *count += 1;
        Ok(TenantSlot {
            open: Arc::clone(&self.open),
            tenant: tenant.to_owned(),
        })
    }
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.tenant);
            }
        }
    }
}

struct Watcher {
    store: Store,
    watch: Watch,
    tx: mpsc::Sender<Result<proto::WatchCapturesResponse, Status>>,
    stop: CancellationToken,
}

/// Why a watcher stops.
enum End {
    /// With this status to the caller.
    Status(Status),
    /// The caller left.
    Gone,
}

impl Watcher {
    async fn follow(
        self,
        start: i64,
        joined_at: i64,
        mut changes: broadcast::Receiver<Arc<Broadcast>>,
    ) {
        let mut cursor = start;
        let end = loop {
            // The replay: this tenant's changes up to where the broadcast was joined.
            if cursor < joined_at {
                match self.replay(cursor, joined_at).await {
                    Ok(Some(last)) => {
                        cursor = last;
                        continue;
                    }
                    Ok(None) => cursor = cursor.max(joined_at),
                    Err(end) => break end,
                }
            }
            tokio::select! {
                received = changes.recv() => match received {
                    Ok(broadcast) => match &*broadcast {
                        Broadcast::Page(page) => {
                            if let Err(end) = self.send_live(page, &mut cursor) {
                                break end;
                            }
                        }
                        Broadcast::Unavailable => break End::Status(resume_status(
                            Code::Unavailable,
                            "the service cannot read its audit trail now",
                            cursor,
                        )),
                    },
                    Err(broadcast::error::RecvError::Lagged(_)) => break End::Status(resume_status(
                        Code::Aborted,
                        "the watcher fell behind the service's changes",
                        cursor,
                    )),
                    Err(broadcast::error::RecvError::Closed) => break End::Status(resume_status(
                        Code::Unavailable,
                        "the service is shutting down",
                        cursor,
                    )),
                },
                () = self.tx.closed() => break End::Gone,
                () = self.stop.cancelled() => break End::Status(resume_status(
                    Code::Unavailable,
                    "the service is shutting down",
                    cursor,
                )),
            }
        };
        if let End::Status(status) = end {
            let _ = self.tx.try_send(Err(status));
        }
    }

    /// Sends one page of the replay after `after`: the cursor to read on from, or `None` when
    /// the page was short, so nothing more matches up to `up_to`.
    async fn replay(&self, after: i64, up_to: i64) -> Result<Option<i64>, End> {
        let watch = &self.watch;
        let page = self
            .store
            .changes(&watch.tenant, &watch.filter, after, up_to, PAGE)
            .await
            .map_err(|e| End::Status(e.into()))?;
        let full = page.len() as u64 == PAGE;
        let page = with_captures(&self.store, page)
            .await
            .map_err(|e| End::Status(e.into()))?;
        let mut last = after;
        for shared in &page {
            // The replay reads at its caller's pace: waiting here holds up no one else. (While
            // it waits, the broadcast keeps the live changes; if it falls that far behind, the
            // stream ends with its cursor.)
            // Two slots, one used: the last is kept for the status that may end the stream.
            // A caller that stops reading holds up only itself, until it leaves or shutdown.
            let mut permits = tokio::select! {
                permits = self.tx.reserve_many(2) => permits.map_err(|_| End::Gone)?,
                () = self.stop.cancelled() => return Err(End::Status(resume_status(
                    Code::Unavailable,
                    "the service is shutting down",
                    last,
                ))),
            };
            if let Some(permit) = permits.next() {
                permit.send(Ok(shared.message.clone()));
            }
            last = shared.change.cursor;
        }
        Ok(full.then_some(last))
    }

    /// Sends what of a broadcast page is this watcher's and new to it.
    fn send_live(&self, page: &[Shared], cursor: &mut i64) -> Result<(), End> {
        for shared in page {
            let change = &shared.change;
            if change.cursor <= *cursor {
                continue;
            }
            if change.tenant == self.watch.tenant && self.watch.filter.matches(change) {
                self.send(shared, *cursor)?;
            }
            *cursor = change.cursor;
        }
        Ok(())
    }

    /// Puts one change in the caller's buffer; a full buffer ends the stream at `last`.
    fn send(&self, shared: &Shared, last: i64) -> Result<(), End> {
        if self.tx.capacity() <= 1 {
            return Err(End::Status(resume_status(
                Code::Aborted,
                "the watcher read too slowly and its buffer is full",
                last,
            )));
        }
        self.tx
            .try_send(Ok(shared.message.clone()))
            .map_err(|_| End::Gone)
    }
}

/// `since` is past the newest change: `OUT_OF_RANGE`, naming the head.
fn beyond_head(since: i64, head: i64) -> Status {
    let metadata = HashMap::from([("head_cursor".to_owned(), head.to_string())]);
    Status::with_error_details(
        Code::OutOfRange,
        format!("since = {since} is beyond the newest change ({head}): resume from a cursor the service sent, or 0"),
        ErrorDetails::with_error_info("CURSOR_BEYOND_HEAD", ERROR_DOMAIN, metadata),
    )
}

/// Ends a stream, naming the cursor a new call resumes from.
fn resume_status(code: Code, why: &str, cursor: i64) -> Status {
    let metadata = HashMap::from([("resume_cursor".to_owned(), cursor.to_string())]);
    let reason = match code {
        Code::Aborted => "WATCH_BUFFER_FULL",
        _ => "WATCH_ENDED",
    };
    Status::with_error_details(
        code,
        format!("{why}: resume with since = {cursor}"),
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

fn to_proto(change: &Change, capture: Option<&CaptureRecord>) -> proto::WatchCapturesResponse {
    proto::WatchCapturesResponse {
        cursor: change.cursor,
        capture_id: change.capture_id.clone(),
        status: status_to_proto(change.status) as i32,
        kind: change.kind.clone(),
        source: change.source.clone(),
        change_time: Some(timestamp(change.time)),
        capture: capture
            .filter(|r| r.command.operation() == Operation::Capture)
            .map(proto::Capture::from),
        release: capture
            .filter(|r| r.command.operation() == Operation::Release)
            .map(super::authorization::release_to_proto),
    }
}
