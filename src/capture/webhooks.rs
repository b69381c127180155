//! Provider notifications: the connector decides whether a delivery is genuine (or only a
//! hint) and reads it; the store keeps it before anything is acted on; then it is matched to
//! the capture it names and applied. Statuses only move forward, so repeated and out-of-order
//! deliveries change nothing they should not. An event whose capture is not known yet (it may
//! come before our own commit of the provider's answer) waits, kept, until the capture shows
//! up: right after this process records an answer, and at every reconciliation pass.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::{Admission, Admitted, Captures, Overloaded};
use crate::domain::capture::AccountName;
use crate::domain::notice::{Trust, WebhookChange, WebhookEvent};
use crate::domain::{CaptureRecord, CaptureStatus, Provider};
use crate::providers::connectors::UnknownAccount;
use crate::providers::webhook::{Delivery, Screened, WebhookError};
use crate::providers::Connector;
use crate::store::{EventSource, NewWebhook, Resolution, StoreError, StoredWebhook};

/// What became of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    /// Its capture took the change; now in this status.
    Applied(CaptureStatus),
    /// Its capture is already where the event would put it, or further along.
    Unchanged(CaptureStatus),
    /// Kept until its capture is known.
    Kept,
    /// This event had been received and matched before.
    Duplicate,
    /// Genuine, but about no capture's status.
    Ignored,
}

impl Receipt {
    pub fn as_str(self) -> &'static str {
        match self {
            Receipt::Applied(_) => "applied",
            Receipt::Unchanged(_) => "unchanged",
            Receipt::Kept => "kept",
            Receipt::Duplicate => "duplicate",
            Receipt::Ignored => "ignored",
        }
    }
}

/// Why a delivery was not taken.
#[derive(Debug, thiserror::Error)]
pub enum WebhookFailure {
    #[error(transparent)]
    UnknownAccount(#[from] UnknownAccount),
    #[error(transparent)]
    Refused(#[from] WebhookError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This provider's deliveries already fill their slots: the provider delivers again.
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
}

/// Bounds on webhook deliveries: slots per provider, and how long a provider's verification
/// call may take.
#[derive(Clone)]
pub struct WebhookLimits {
    slots: Arc<[Admission; Provider::ALL.len()]>,
    verify_timeout: Duration,
}

impl WebhookLimits {
    /// `per_provider` deliveries of each provider at once; `verify_timeout` for each
    /// verification call.
    pub fn new(per_provider: usize, verify_timeout: Duration) -> Self {
        WebhookLimits {
            slots: Arc::new(
                Provider::ALL.map(|_| Admission::new("webhook deliveries", per_provider)),
            ),
            verify_timeout,
        }
    }

    fn admit(&self, provider: Provider) -> Result<Admitted, Overloaded> {
        let index = Provider::ALL
            .iter()
            .position(|p| *p == provider)
            .unwrap_or_default();
        self.slots[index].admit()
    }
}

impl Default for WebhookLimits {
    fn default() -> Self {
        WebhookLimits::new(64, Duration::from_secs(5))
    }
}

/// How long a kept event waits for its capture before the passes stop looking for it.
const MATCH_WINDOW_MICROS: i64 = 7 * 24 * 3600 * 1_000_000;

impl Captures {
    /// Takes one delivery to `/webhooks/{provider}[/{account}]`.
    #[tracing::instrument(skip_all, fields(provider = %provider, event_id = tracing::field::Empty))]
    pub async fn receive_webhook(
        &self,
        provider: Provider,
        account: Option<&str>,
        delivery: Delivery<'_>,
    ) -> Result<Receipt, WebhookFailure> {
        let account = account
            .map(|name| {
                AccountName::parse(name).map_err(|_| UnknownAccount::NoSuchAccount {
                    provider,
                    name: name.chars().take(64).collect(),
                })
            })
            .transpose()?;
        let (account, connector) = self.connectors.resolve(provider, account.as_ref())?;
        // Cheap refusals first: a forged or malformed delivery never holds a slot.
        let screened = connector.screen_webhook(delivery)?;
        // Then one of this provider's slots, so that one provider's hang or flood cannot take
        // the deliveries of the others.
        let _admitted = self.webhooks.admit(provider)?;
        let trust = match screened {
            Screened::Trusted(trust) => trust,
            Screened::AskProvider => {
                let deadline = self.webhooks.verify_timeout;
                let verify = async {
                    tokio::time::timeout(deadline, connector.verify_webhook(delivery))
                        .await
                        .unwrap_or_else(|_| {
                            Err(WebhookError::VerifierUnavailable(format!(
                                "the provider's verification did not answer within {deadline:?}"
                            )))
                        })
                };
                crate::telemetry::provider_calls::observed(
                    provider,
                    "verify_webhook",
                    verify,
                    |verified, took| match verified {
                        Ok(_) => "ok",
                        Err(_) if took >= deadline => "timeout",
                        Err(err) => err.outcome_label(),
                    },
                )
                .await?
            }
        };
        let event = connector.read_webhook(delivery.body, trust)?;
        tracing::Span::current().record("event_id", event.event_id.as_str());
        if trust == Trust::Signed && event.change.is_none() {
            return Ok(Receipt::Ignored);
        }
        // A hint proves nothing and is not kept: it prompts no more than a look at the capture
        // it names, if it names one of this account's.
        if trust == Trust::Hint {
            return match self
                .store
                .capture_named_by(provider, &account, &event.keys)
                .await?
            {
                Some(record) => self.look_for_hint(record).await,
                None => Ok(Receipt::Ignored),
            };
        }
        let (kept, new) = self
            .store
            .keep_webhook(&NewWebhook {
                provider,
                account: &account,
                trust,
                event: &event,
                body: delivery.body,
            })
            .await?;
        if kept.capture_id.is_some() {
            return Ok(Receipt::Duplicate);
        }
        let event_type = event.event_type.clone();
        // What is settled is what was kept: a repeat of an event still waiting is read from
        // the first delivery, not from the repeat.
        let event = if new {
            event
        } else {
            connector.read_webhook(kept.body.as_bytes(), kept.trust)?
        };
        let receipt = self.settle(&kept, event).await?;
        if receipt == Receipt::Kept {
            self.webhooks_waiting.store(true, Ordering::Relaxed);
        }
        info!(%event_type, receipt = receipt.as_str(), "webhook received");
        Ok(receipt)
    }

    /// A hint's capture, looked up at the provider through the reconciler's own look: under the
    /// capture's lease (never while its request or another look is calling the provider), and
    /// only when the reconciler's back-off would look now, so hints make no more provider calls
    /// than the passes would.
    async fn look_for_hint(&self, record: CaptureRecord) -> Result<Receipt, WebhookFailure> {
        let before = record.status;
        let Some(due) = self
            .store
            .claim_for_look(&record.id, self.lease_micros())
            .await?
        else {
            return Ok(Receipt::Unchanged(before));
        };
        Ok(
            match self
                .look(due, EventSource::Webhook, self.hint_backoff)
                .await?
            {
                Some((from, after)) if after.status != from => Receipt::Applied(after.status),
                Some((_, after)) => Receipt::Unchanged(after.status),
                None => Receipt::Unchanged(before),
            },
        )
    }

    /// Matches a kept (signed) event to its capture and applies it; [`Receipt::Kept`] while no
    /// capture answers to its ids.
    async fn settle(
        &self,
        kept: &StoredWebhook,
        event: WebhookEvent,
    ) -> Result<Receipt, StoreError> {
        let Some(record) = self
            .store
            .capture_named_by(kept.provider, &kept.account, &event.keys)
            .await?
        else {
            return Ok(Receipt::Kept);
        };
        let before = record.status;
        let resolution = match (kept.trust, event.change) {
            // An event that restates the capture's status changes nothing.
            (Trust::Signed, Some(change)) => {
                Some(resolution_of(change, &record)).filter(|r| r.status() != Some(record.status))
            }
            (Trust::Signed, None) => None,
            // Hints are not kept (see `receive_webhook`).
            (Trust::Hint, _) => None,
        };
        let after = self
            .store
            .apply_webhook(kept.id, record, resolution)
            .await?;
        Ok(if after.status != before {
            info!(capture_id = %after.id, from = %before, to = %after.status, "capture moved by a webhook");
            Receipt::Applied(after.status)
        } else {
            Receipt::Unchanged(after.status)
        })
    }

    /// Applies kept events that name `record`, now that it has the ids they use; the capture
    /// as stored afterwards. Only after this process kept an event it could not match: other
    /// replicas' are found by the passes.
    pub(super) async fn match_waiting_webhooks(&self, record: CaptureRecord) -> CaptureRecord {
        if !self.webhooks_waiting.load(Ordering::Relaxed) {
            return record;
        }
        let waiting = match self.store.unmatched_webhooks_of(&record).await {
            Ok(waiting) => waiting,
            Err(err) => {
                warn!(capture_id = %record.id, error = %err, "could not look for waiting webhooks");
                return record;
            }
        };
        let mut matched = false;
        for kept in waiting {
            matched |= self.settle_kept(kept).await;
        }
        if !matched {
            return record;
        }
        match self.store.get_any(&record.id).await {
            Ok(current) => current,
            Err(_) => record,
        }
    }

    /// Tries the next `limit` kept events still waiting for their capture (a reconciliation
    /// pass); how many found theirs. Successive passes go round all of them, so events that
    /// will never match (a capture another system made at the same provider account) cannot
    /// keep newer ones from their turn.
    pub(super) async fn match_kept_webhooks(&self, limit: u64) -> Result<usize, StoreError> {
        let since = crate::store::now_micros() - MATCH_WINDOW_MICROS;
        let after = self.webhook_sweep.load(Ordering::Relaxed);
        let waiting = self.store.unmatched_webhooks(since, after, limit).await?;
        let next = match waiting.last() {
            Some(last) if waiting.len() as u64 == limit => last.id,
            // The end of the round: the next pass starts from the first again.
            _ => 0,
        };
        self.webhook_sweep.store(next, Ordering::Relaxed);
        if waiting.is_empty() && after == 0 {
            self.webhooks_waiting.store(false, Ordering::Relaxed);
        }
        let mut matched = 0;
        for kept in waiting {
            if self.settle_kept(kept).await {
                matched += 1;
            }
        }
        Ok(matched)
    }

    /// Reads a kept event again through its connector and settles it; true when it found its
    /// capture.
    async fn settle_kept(&self, kept: StoredWebhook) -> bool {
        let connector: Arc<dyn Connector> = match AccountName::parse(&kept.account)
            .ok()
            .and_then(|name| self.connectors.resolve(kept.provider, Some(&name)).ok())
        {
            Some((_, connector)) => connector,
            None => return false,
        };
        let event = match connector.read_webhook(kept.body.as_bytes(), kept.trust) {
            Ok(event) => event,
            Err(err) => {
                warn!(webhook = kept.id, error = %err, "a kept webhook can no longer be read");
                return false;
            }
        };
        match self.settle(&kept, event).await {
            Ok(Receipt::Kept) => false,
            Ok(_) => true,
            Err(err) => {
                warn!(webhook = kept.id, error = %err, "could not apply a kept webhook");
                false
            }
        }
    }
}

/// What a signed event's change makes of `record`. A refund makes it `REFUNDED` once the
/// refunded total reaches what was captured, `PARTIALLY_REFUNDED` before.
fn resolution_of(change: WebhookChange, record: &CaptureRecord) -> Resolution {
    match change {
        WebhookChange::Outcome(outcome) => Resolution::Outcome(outcome),
        WebhookChange::Refunded { total } => {
            let captured = record.captured_amount.or(record.command.parts().amount);
            let whole = captured.is_some_and(|captured| {
                captured.currency() == total.currency()
                    && total.minor_units() >= captured.minor_units()
            });
            Resolution::Refunded {
                status: if whole {
                    CaptureStatus::Refunded
                } else {
                    CaptureStatus::PartiallyRefunded
                },
                total,
            }
        }
    }
}
