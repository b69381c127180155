//! Captures whose provider call is running in this process, so a concurrent retry of the same
//! request waits for that call instead of making a second one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// The registry of running provider calls, by capture id.
#[derive(Clone, Default)]
pub struct InFlight {
    running: Arc<Mutex<HashMap<String, watch::Receiver<()>>>>,
}

/// Held while a provider call runs; dropping it wakes every waiter.
pub struct Claim {
    id: String,
    registry: InFlight,
    _done: watch::Sender<()>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut running) = self.registry.running.lock() {
            running.remove(&self.id);
        }
    }
}

/// Either the right to run the call, or a way to wait for whoever has it.
pub enum Slot {
    Claimed(Claim),
    Running(watch::Receiver<()>),
}

impl InFlight {
    /// Claims the call for `id`, or returns a receiver that resolves when the running call ends.
    pub fn claim(&self, id: &str) -> Slot {
        let mut running = match self.running.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(rx) = running.get(id) {
            return Slot::Running(rx.clone());
        }
        let (tx, rx) = watch::channel(());
        running.insert(id.to_owned(), rx);
        Slot::Claimed(Claim {
            id: id.to_owned(),
            registry: self.clone(),
            _done: tx,
        })
    }
}

impl InFlight {
    /// The capture ids whose calls are running now.
    pub fn ids(&self) -> Vec<String> {
        let running = match self.running.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        running.keys().cloned().collect()
    }
}

/// Waits until the claim behind `rx` is dropped.
pub async fn finished(mut rx: watch::Receiver<()>) {
    // `changed` errors once the sender (the claim) is gone, which is the signal.
    while rx.changed().await.is_ok() {}
}
