//! The reconciler: asks providers what became of captures whose outcome is still open —
//! `PENDING` ones awaiting the provider's confirmation (Checkout.com's 202, PayPal's pending
//! review) and `PROCESSING` ones whose call ended without an answer or was cut off by a crash —
//! and records the answer. It uses each connector's `fetch_outcome`, which looks the capture up
//! or re-sends it with its original idempotency key, so it never captures twice.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Looks of one pass running at once. Each waits on the provider, not on this process: behind a
/// provider taking 2 s, 16 at once settled ~7 captures a second, and `overload`'s 750
/// `PENDING` Checkout.com captures took two minutes; 64 at once settle four times as many. A
/// look's own database work (a lease, a read, a write) is short and takes a pooled connection
/// only while it runs.
const LOOKS_AT_ONCE: usize = 64;

use super::inflight::Slot;
use super::Captures;
use crate::config::ReconcileConfig;
use crate::domain::{CaptureRecord, CaptureStatus};
use crate::providers::ProviderError;
use crate::store::{now_micros, DueCapture, EventSource, Resolution, StoreError};

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub looked_at: usize,
    /// Captures whose status changed.
    pub resolved: usize,
    /// Kept webhooks that found their capture.
    pub webhooks_matched: usize,
}

/// The longest wait between two looks at one capture.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

impl Captures {
    /// Runs passes every `config.interval` until `stop` is cancelled.
    pub async fn reconcile_until(&self, config: ReconcileConfig, stop: CancellationToken) {
        if config.interval.is_zero() {
            return;
        }
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(config.interval) => {}
            }
            match self.reconcile_pass(&config).await {
                Ok(report) if report.looked_at > 0 || report.webhooks_matched > 0 => {
                    info!(
                        looked_at = report.looked_at,
                        resolved = report.resolved,
                        webhooks_matched = report.webhooks_matched,
                        "reconciliation pass"
                    )
                }
                Ok(_) => {}
                Err(err) => warn!(error = %err, "reconciliation pass failed"),
            }
        }
    }

    /// Renews the leases of this process's provider calls in flight every third of a lease,
    /// until `stop` is cancelled: while this process lives, its calls keep their leases; when
    /// it dies, they run out within one lease.
    pub async fn keep_leases_until(&self, stop: CancellationToken) {
        let every = self.lease / 3;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let ids = self.in_flight.ids();
            if ids.is_empty() {
                continue;
            }
            if let Err(err) = self.store.renew_leases(&ids, self.lease_micros()).await {
                // The leases may run out and another replica look too: with the same
                // idempotency key, which the provider answers with the same capture.
                warn!(error = %err, in_flight = ids.len(), "could not renew the leases of calls in flight");
            }
        }
    }

    /// Looks once at every capture that is due.
    pub async fn reconcile_pass(&self, config: &ReconcileConfig) -> Result<PassReport, StoreError> {
        let (due, oldest) = self.store.open_backlog(config.max_attempts).await?;
        let metrics = crate::telemetry::metrics::metrics();
        metrics.reconciler_due.set(due);
        metrics
            .reconciler_oldest_due_seconds
            .set(oldest.map_or(0, |micros| now_micros().saturating_sub(micros) / 1_000_000));
        let min_age = i64::try_from(config.min_age.as_micros()).unwrap_or(i64::MAX);
        let due = self
            .store
            .claim_due_for_reconciliation(
                min_age,
                config.max_attempts,
                config.batch,
                self.lease_micros(),
            )
            .await?;
        let mut report = PassReport {
            webhooks_matched: self.match_kept_webhooks(config.batch).await?,
            ..PassReport::default()
        };
        // Several looks at once: one slow provider answer must not hold the whole pass (with a
        // provider taking 2 s, a pass of 100 would otherwise take 200 s).
        let mut looks = futures_util::stream::iter(due)
            .map(|due| {
                // Each look runs as a tracked task, so shutdown waits for it instead of cutting it.
                let this = self.clone();
                let interval = config.interval;
                self.tasks.spawn(async move {
                    let looked = this.look(due, EventSource::Reconciler, interval).await?;
                    Ok::<_, StoreError>(match looked {
                        Some((from, resolved)) => {
                            let resolved = this.match_waiting_webhooks(resolved).await;
                            resolved.status != from
                        }
                        None => false,
                    })
                })
            })
            .buffer_unordered(LOOKS_AT_ONCE);
        while let Some(looked) = looks.next().await {
            report.looked_at += 1;
            match looked {
                Ok(Ok(true)) => report.resolved += 1,
                Ok(Ok(false)) => {}
                Ok(Err(err)) => warn!(error = %err, "could not record a reconciled capture"),
                Err(err) => warn!(error = %err, "reconciliation task failed"),
            }
        }
        drop(looks);
        // Final captures whose rest the provider keeps held (Stax), completed by a look, a
        // webhook, or a request whose follow-up a crash cut off.
        let providers = self.connectors.needing_a_void_after_a_final_capture();
        for capture in self
            .store
            .final_captures_to_follow_up(&providers, config.batch)
            .await?
        {
            self.clone().follow_up_release(capture).await;
        }
        Ok(report)
    }

    /// Asks the provider about one claimed capture (a reconciler's pass, or a provider's hint)
    /// and records the answer: its status before and the capture after, when an answer was
    /// recorded. The look starts only while the
    /// claim's lease is still its own: a pass's later looks may start after the lease it took
    /// for them has run out and another replica has claimed the capture.
    #[tracing::instrument(skip_all, fields(
        capture_id = %due.record.id,
        provider = %due.record.command.parts().provider,
        status = %due.record.status,
        %source,
        trace_id = tracing::field::Empty,
    ))]
    pub(super) async fn look(
        &self,
        due: DueCapture,
        source: EventSource,
        interval: std::time::Duration,
    ) -> Result<Option<(CaptureStatus, CaptureRecord)>, StoreError> {
        crate::telemetry::traces::record_trace_id(&tracing::Span::current());
        let DueCapture { record, attempts } = due;
        // A request of this process is already calling the provider for it.
        let Slot::Claimed(_claim) = self.in_flight.claim(&record.id) else {
            return Ok(None);
        };
        // The claim may have run out while earlier looks of the pass ran, and gone to another
        // replica.
        if !self
            .store
            .renew_lease(&record.id, self.lease_micros())
            .await?
        {
            return Ok(None);
        }
        // Read again under the lease: a request may have settled it since it was claimed, and
        // asking the provider again could re-send it.
        let record = self.store.get_any(&record.id).await?;
        if !matches!(
            record.status,
            CaptureStatus::Processing | CaptureStatus::Pending
        ) {
            return Ok(None);
        }
        let mut later = Later {
            id: &record.id,
            attempts,
            interval,
            at_least: None,
        };
        let provider = record.command.parts().provider;
        let account = crate::domain::capture::AccountName::parse(&record.account).ok();
        let connector = match self.connectors.resolve(provider, account.as_ref()) {
            Ok((_, connector)) => connector,
            Err(err) => {
                warn!(error = %err, "the capture's provider account is no longer configured");
                self.postpone(later).await?;
                return Ok(None);
            }
        };
        if record.command.operation() == crate::domain::Operation::Release
            && self.store.captures_in_flight(&record).await? > 0
        {
            // Its void waits for the captures the ledger admitted before it.
            self.postpone(later).await?;
            return Ok(None);
        }
        let fetched = super::call_provider(
            provider,
            "lookup",
            crate::providers::look(connector.as_ref(), &record),
        )
        .await;
        let resolution = match fetched {
            Ok(outcome) if outcome.status == record.status => {
                // Still open (e.g. still PENDING): look again later.
                self.postpone(later).await?;
                return Ok(None);
            }
            Ok(outcome) => Resolution::Outcome(Box::new(outcome)),
            // A refusal of the capture itself settles a capture that never got an answer; a
            // throttle or a refused credential says nothing of the earlier attempt, and a failed
            // lookup of a capture the provider already accepted settles nothing.
            Err(ProviderError::Rejected {
                failure, rejection, ..
            }) if record.status == CaptureStatus::Processing
                && rejection.settles_earlier_attempts() =>
            {
                Resolution::Rejected(failure)
            }
            Err(err) => {
                info!(error = %err, "no definite answer yet");
                // Not sooner than a throttling provider asked.
                later.at_least = match &err {
                    ProviderError::OutcomeUnknown { retry_after, .. }
                    | ProviderError::Rejected { retry_after, .. } => *retry_after,
                };
                self.postpone(later).await?;
                return Ok(None);
            }
        };
        let from = record.status;
        let resolved = self.store.resolve(record, resolution, source).await?;
        if source == EventSource::Webhook {
            // Recording a notice's change leaves leases alone; this look's is its own to end.
            self.store.release_lease(&resolved.id).await?;
        }
        info!(%from, to = %resolved.status, "capture reconciled");
        Ok(Some((from, resolved)))
    }

    /// Backs off exponentially from the pass interval, up to an hour, and releases the lease.
    async fn postpone(&self, later: Later<'_>) -> Result<(), StoreError> {
        let attempts = u32::try_from(later.attempts).unwrap_or(0).min(16);
        let wait = later
            .interval
            .saturating_mul(1 << attempts)
            .min(MAX_BACKOFF)
            .max(later.at_least.unwrap_or_default());
        let after = now_micros() + i64::try_from(wait.as_micros()).unwrap_or(i64::MAX / 2);
        self.store.postpone_reconciliation(later.id, after).await
    }
}

/// When to look at a capture again.
struct Later<'a> {
    id: &'a str,
    attempts: i32,
    interval: std::time::Duration,
    /// The provider's `Retry-After`, when it throttled the look.
    at_least: Option<std::time::Duration>,
}
