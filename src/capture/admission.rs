//! Admission control: a bounded number of calls in progress, and an immediate refusal past it,
//! before anything is written. Without it the database pool becomes the queue, and every
//! caller waits longer than its deadline.
//!
//! tower's `ConcurrencyLimit` + `LoadShed` do the same per service, but release the slot when
//! the handler's future ends, also when a caller hangs up. A capture's provider call outlives
//! its caller (it runs in its own task), so its slot must too: the slot here moves into that
//! task.

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A limit on calls of one kind in progress.
#[derive(Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    limit: usize,
    kind: &'static str,
    /// This kind's `capture_in_flight` and `capture_shed_total` series, looked up once: every
    /// call of the kind moves them.
    in_flight: Gauge,
    shed: Counter,
}

/// Held while an admitted call is in progress (counted in `capture_in_flight`).
#[derive(Debug)]
pub struct Admitted {
    _slot: OwnedSemaphorePermit,
    in_flight: Gauge,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
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
        // Created now, so both series are exported from the start, at zero.
        let metrics = crate::telemetry::metrics::metrics();
        let label = crate::telemetry::metrics::Kind { kind };
        Admission {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            kind,
            in_flight: metrics.in_flight.get_or_create(&label).clone(),
            shed: metrics.shed.get_or_create(&label).clone(),
        }
    }

    /// A slot, or [`Overloaded`] at once when none is free.
    pub fn admit(&self) -> Result<Admitted, Overloaded> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => {
                self.in_flight.inc();
                Ok(Admitted {
                    _slot: slot,
                    in_flight: self.in_flight.clone(),
                })
            }
            Err(_) => {
                self.shed.inc();
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
