//! `WatchCaptures`: a tenant's capture changes, replayed from the audit trail after a cursor and
//! then followed live.
//!
//! Each stream has a task of its own that reads the trail up to the change feed's horizon and
//! puts changes into a bounded buffer. Captures never wait for a watcher: they only move the
//! horizon. A watcher whose buffer fills is ended with `ABORTED` and the cursor to resume from,
//! so it loses nothing and holds nothing up.

use std::collections::HashMap;
use std::pin::Pin;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::tokio_stream::Stream;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::convert::{
    optional, provider_from_proto, status_from_proto, status_to_proto, timestamp,
};
use super::error::{invalid_argument, ERROR_DOMAIN};
use crate::capture::is_capture_id;
use crate::domain::capture::AuthorizationId;
use crate::domain::Violations;
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
    let provider = match request.provider {
        0 => None,
        n => {
            let provider = provider_from_proto(n);
            if provider.is_none() {
                violations.add("provider", "unknown provider");
            }
            provider
        }
    };
    let status = status_from_proto(request.status).unwrap_or_else(|_| {
        violations.add("status", "unknown status");
        None
    });
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

/// Opens a stream of `tenant`'s changes after `since` (0: from now on), holding at most
/// `buffer` changes for a slow reader; it ends when the caller leaves or `stop` is cancelled.
pub async fn open(
    store: Store,
    tenant: String,
    since: i64,
    filter: ChangeFilter,
    buffer: usize,
    stop: CancellationToken,
) -> Result<ChangeStream, Status> {
    let horizon = store.change_horizon().await?;
    let start = if since > 0 { since } else { *horizon.borrow() };
    // One slot more than the buffer: the last is kept for the status that ends the stream.
    let (tx, rx) = mpsc::channel(buffer.max(1) + 1);
    let watcher = Watcher {
        store,
        tenant,
        filter,
        tx,
    };
    tokio::spawn(watcher.follow(start, horizon, stop));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

struct Watcher {
    store: Store,
    tenant: String,
    filter: ChangeFilter,
    tx: mpsc::Sender<Result<proto::WatchCapturesResponse, Status>>,
}

impl Watcher {
    async fn follow(
        self,
        mut cursor: i64,
        mut horizon: watch::Receiver<i64>,
        stop: CancellationToken,
    ) {
        loop {
            let up_to = *horizon.borrow_and_update();
            while cursor < up_to {
                match self.send_page(cursor, up_to).await {
                    Ok(Some(last)) => cursor = last,
                    // Nothing more of this tenant's up to the horizon.
                    Ok(None) => cursor = up_to,
                    Err(end) => {
                        let _ = self.tx.try_send(Err(end));
                        return;
                    }
                }
            }
            tokio::select! {
                changed = horizon.changed() => if changed.is_err() { return },
                () = self.tx.closed() => return,
                () = stop.cancelled() => {
                    let _ = self.tx.try_send(Err(resume_status(
                        Code::Unavailable,
                        "the service is shutting down",
                        cursor,
                    )));
                    return;
                }
            }
        }
    }

    /// Sends the changes of one page after `after`: the cursor to read on from, or `None` when
    /// the page was short, so nothing more matches up to `up_to`.
    async fn send_page(&self, after: i64, up_to: i64) -> Result<Option<i64>, Status> {
        let page = self
            .store
            .changes(&self.tenant, &self.filter, after, up_to, PAGE)
            .await?;
        let full = page.len() as u64 == PAGE;
        let mut last = after;
        for change in page {
            if self.tx.capacity() <= 1 {
                return Err(resume_status(
                    Code::Aborted,
                    "the watcher read too slowly and its buffer is full",
                    last,
                ));
            }
            let capture = self.store.get(&self.tenant, &change.capture_id).await?;
            let cursor = change.cursor;
            if self.tx.try_send(Ok(to_proto(change, capture))).is_err() {
                // The caller left.
                return Err(Status::cancelled("the caller left"));
            }
            last = cursor;
        }
        Ok(full.then_some(last))
    }
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

fn to_proto(
    change: Change,
    capture: Option<crate::domain::CaptureRecord>,
) -> proto::WatchCapturesResponse {
    proto::WatchCapturesResponse {
        cursor: change.cursor,
        capture_id: change.capture_id,
        status: status_to_proto(change.status) as i32,
        kind: change.kind,
        source: change.source,
        change_time: Some(timestamp(change.time)),
        capture: capture.as_ref().map(proto::Capture::from),
    }
}
