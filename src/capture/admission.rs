//! Admission control: a bounded number of calls in progress, and an immediate refusal past it,
//! before anything is written. Without it the database pool becomes the queue, and every
//! caller waits longer than its deadline.
//!
//! tower's `ConcurrencyLimit` + `LoadShed` do the same per service, but release the slot when
//! the handler's future ends, also when a caller hangs up. A capture's provider call outlives
//! its caller (it runs in its own task), so its slot must too: the slot here moves into that
//! task.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A limit on calls of one kind in progress.
#[derive(Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    limit: usize,
    kind: &'static str,
}

/// Held while an admitted call is in progress (counted in `capture_in_flight`).
#[derive(Debug)]
pub struct Admitted {
    _slot: OwnedSemaphorePermit,
    kind: &'static str,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        in_flight(self.kind).dec();
    }
}

fn in_flight(kind: &'static str) -> prometheus_client::metrics::gauge::Gauge {
    crate::telemetry::metrics::metrics()
        .in_flight
        .get_or_create(&crate::telemetry::metrics::Kind { kind })
        .clone()
}

/// The limit was reached: the call was refused before it did anything.
#[derive(Debug, Clone, thiserror::Error)]
#[error("too many {kind} in progress (limit {limit})")]
pub struct Overloaded {
    pub kind: &'static str,
    pub limit: usize,
}

impl Admission {
    /// At most `limit` calls of `kind` (e.g. "captures") at once.
    pub fn new(kind: &'static str, limit: usize) -> Self {
        // Exported from the start, at zero, so that rates and alerts see the series.
        in_flight(kind);
        let _ = crate::telemetry::metrics::metrics()
            .shed
            .get_or_create(&crate::telemetry::metrics::Kind { kind });
        Admission {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            kind,
        }
    }

    /// A slot, or [`Overloaded`] at once when none is free.
    pub fn admit(&self) -> Result<Admitted, Overloaded> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => {
                in_flight(self.kind).inc();
                Ok(Admitted {
                    _slot: slot,
                    kind: self.kind,
                })
            }
            Err(_) => {
                crate::telemetry::metrics::metrics()
                    .shed
                    .get_or_create(&crate::telemetry::metrics::Kind { kind: self.kind })
                    .inc();
                Err(Overloaded {
                    kind: self.kind,
                    limit: self.limit,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_past_the_limit_are_refused_until_a_slot_frees() {
        let admission = Admission::new("captures", 2);
        let first = admission.admit();
        let second = admission.admit();
        assert!(first.is_ok() && second.is_ok());
        assert!(admission.admit().is_err());
        drop(first);
        assert!(admission.admit().is_ok());
    }
}
