//! Whether this replica can serve: one check, the database answering within its bound, shared
//! by `GET /readyz` and `grpc.health.v1` (for `""` and `capture.v1.CaptureService`), so the two
//! never disagree. Liveness is apart: `GET /healthz` and the gRPC service name [`LIVENESS`]
//! answer while the process runs, so a database outage never makes Kubernetes restart every
//! pod.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

/// The `grpc.health.v1` service name that reports the process alive, database or not.
pub const LIVENESS: &str = "liveness";

/// The readiness check and its last result.
#[derive(Clone)]
pub struct Readiness {
    store: Store,
    ready: watch::Sender<bool>,
    /// Set at shutdown: not ready from then on, whatever the database says.
    draining: Arc<AtomicBool>,
}

/// Why this replica is not ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error(transparent)]
    Database(#[from] StoreError),
    #[error("shutting down")]
    Draining,
}

impl Readiness {
    /// Not ready until the first check passes.
    pub fn new(store: Store) -> Self {
        Readiness {
            store,
            ready: watch::Sender::new(false),
            draining: Arc::default(),
        }
    }

    /// Not ready from now on: the process is shutting down (traffic goes elsewhere first).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.ready.send_replace(false);
    }

    /// Checks the database now, and notes the result.
    pub async fn check(&self) -> Result<(), NotReady> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(NotReady::Draining);
        }
        let checked = self.store.ping().await.map_err(NotReady::from);
        if self.draining.load(Ordering::SeqCst) {
            return Err(NotReady::Draining);
        }
        self.ready.send_if_modified(|ready| {
            let changed = *ready != checked.is_ok();
            *ready = checked.is_ok();
            changed
        });
        checked
    }

    /// The result of every check, as it changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Checks every `every` until `stop` is cancelled, logging each change.
    pub async fn check_until(&self, every: Duration, stop: CancellationToken) {
        loop {
            match self.check().await {
                Ok(()) => {}
                Err(err) => tracing::debug!(error = %err, "readiness check failed"),
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
