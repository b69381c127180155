//! Trouble that comes in storms (a database away, load shed) is logged as episodes, not as one
//! line per call: a WARN line when an episode begins, a line with the count every
//! [`SUMMARY_EVERY`] while it lasts, and one when it has been quiet that long. A 6,000-call
//! storm writes three lines, not 6,000.

use std::fmt::Display;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use tracing::warn;

/// How often an ongoing episode is summed up, and how long a quiet spell ends it.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// One kind of trouble, counted in episodes.
#[derive(Clone)]
pub struct Episodes {
    what: &'static str,
    state: Arc<Mutex<State>>,
    every: Duration,
}

#[derive(Default)]
struct State {
    /// The episode under way: when it began, and counts.
    open: Option<Open>,
}

struct Open {
    began: Instant,
    last_seen: Instant,
    total: u64,
    since_summary: u64,
}

impl Episodes {
    /// Episodes of `what` ("calls shed", "database unavailable").
    pub fn new(what: &'static str) -> Self {
        Self::every(what, SUMMARY_EVERY)
    }

    /// With another summary period (tests).
    pub fn every(what: &'static str, every: Duration) -> Self {
        Episodes {
            what,
            state: Arc::default(),
            every,
        }
    }

    /// Counts one occurrence; the first of an episode is logged with `detail`.
    pub fn record(&self, detail: &dyn Display) {
        let now = Instant::now();
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        match &mut state.open {
            Some(open) => {
                open.total += 1;
                open.since_summary += 1;
                open.last_seen = now;
            }
            None => {
                state.open = Some(Open {
                    began: now,
                    last_seen: now,
                    total: 1,
                    since_summary: 0,
                });
                warn!(episode = self.what, %detail, "{} began (further ones are counted, not logged)", self.what);
                // The watcher that sums the episode up and ends it; outside a runtime (a unit
                // test) the episode just stays open.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(self.clone().watch());
                }
            }
        }
    }

    /// Sums the open episode up every period, and ends it after a quiet one.
    async fn watch(self) {
        loop {
            tokio::time::sleep(self.every).await;
            let mut state = match self.state.lock() {
                Ok(state) => state,
                Err(poisoned) => poisoned.into_inner(),
            };
            let Some(open) = &mut state.open else { return };
            let lasted = open.began.elapsed();
            if open.last_seen.elapsed() >= self.every {
                warn!(
                    episode = self.what,
                    total = open.total,
                    lasted_ms = lasted.as_millis() as u64,
                    "{} ended: {} in {:.1} s",
                    self.what,
                    open.total,
                    lasted.as_secs_f64()
                );
                state.open = None;
                return;
            }
            warn!(
                episode = self.what,
                recent = open.since_summary,
                total = open.total,
                "{} goes on: {} more in the last {} s, {} in all",
                self.what,
                open.since_summary,
                self.every.as_secs(),
                open.total
            );
            open.since_summary = 0;
        }
    }

    /// Occurrences in the episode under way (0 when there is none).
    pub fn current(&self) -> u64 {
        match self.state.lock() {
            Ok(state) => state.open.as_ref().map_or(0, |o| o.total),
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_storm_is_one_episode_that_ends_after_a_quiet_spell() {
        let shed = Episodes::every("calls shed", Duration::from_secs(1));
        for _ in 0..5_000 {
            shed.record(&"limit 1024");
        }
        assert_eq!(shed.current(), 5_000);
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(shed.current(), 0, "the quiet spell ended the episode");
        shed.record(&"limit 1024");
        assert_eq!(shed.current(), 1, "a new episode began");
    }
}
