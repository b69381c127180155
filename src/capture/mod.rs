//! Orchestration of one capture: idempotency and ledger (one transaction, committed as
//! `PROCESSING`), then the provider call, then the outcome (one transaction).
//!
//! The provider call runs in a task of its own, so a caller that hangs up, or a shutdown that
//! has begun, never cuts a capture between the provider's answer and its record.

mod admission;
mod ids;
mod inflight;
mod reconcile;
mod webhooks;

use std::sync::Arc;

use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn, Instrument};

use crate::domain::capture::{AccountName, RequestId};
use crate::domain::{
    CaptureCommand, CaptureRecord, CaptureStatus, FieldViolation, Operation, ProviderOutcome,
};
use crate::providers::connectors::UnknownAccount;
use crate::providers::{Connector, Connectors, ProviderError};
use crate::store::{Begin, EventSource, LedgerRefusal, NewCapture, Resolution, Store, StoreError};

pub use admission::{Admission, Admitted, Overloaded};
pub use ids::{is_capture_id, is_release_id, new_capture_id, new_id};
use inflight::{InFlight, Slot};
pub use reconcile::PassReport;
pub use webhooks::{Receipt, WebhookFailure, WebhookLimits};

/// A capture and whether it was found again rather than made.
#[derive(Debug)]
pub struct CaptureResult {
    pub record: CaptureRecord,
    /// True when the idempotency key had been seen: no provider call was made for this request.
    pub replayed: bool,
}

/// Why a capture did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Too many captures are in progress: refused before anything was written.
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    #[error(transparent)]
    UnknownAccount(#[from] UnknownAccount),
    /// The provider cannot express the request.
    #[error("the provider cannot express this request")]
    Unsupported(Vec<FieldViolation>),
    /// The idempotency key belongs to a different request.
    #[error("request_id was already used for a different request (capture {capture_id})")]
    KeyReused { capture_id: String },
    /// The authorization's ledger refuses the capture; nothing was written or sent.
    #[error("the authorization cannot take this capture: {0:?}")]
    Refused(LedgerRefusal),
    /// The provider refused, or gave no definite answer; the capture is recorded either way.
    #[error("{error}")]
    Provider {
        error: ProviderError,
        capture: Box<CaptureRecord>,
    },
    #[error("could not create a capture id: {0}")]
    Entropy(String),
    /// The store failed before the capture was recorded: nothing was sent to the provider.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The capture is recorded (`PROCESSING`) and the provider may have been called, but the
    /// store failed before its outcome was recorded or read back. The reconciler, or a retry
    /// with the same `request_id`, records it later.
    #[error("capture {capture_id}: the outcome could not be recorded: {source}")]
    Unrecorded {
        capture_id: String,
        source: StoreError,
    },
    /// The capture task ended abnormally (it panicked or the runtime is shutting down).
    #[error("the capture task did not finish: {0}")]
    Task(String),
}

/// Runs one provider operation in its own span, counted in the metrics.
async fn call_provider<T>(
    provider: crate::domain::Provider,
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> Result<T, ProviderError> {
    crate::telemetry::provider_calls::observed(
        provider,
        operation,
        call,
        |answer, _| match answer {
            Ok(_) => "ok",
            Err(err) => err.outcome_label(),
        },
    )
    .await
}

/// Whether a capture goes to the provider for the first time, or again after an attempt whose
/// answer was lost (a retry of a `PROCESSING` capture).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    First,
    Again,
}

impl Attempt {
    /// A refusal that does not speak for an earlier attempt (a throttle, a refused credential)
    /// leaves a capture sent again unknown, not failed: the first attempt may have captured.
    fn judge<T>(self, answer: Result<T, ProviderError>) -> Result<T, ProviderError> {
        match answer {
            Err(ProviderError::Rejected {
                provider,
                rejection,
                failure,
                ..
            }) if self == Attempt::Again && !rejection.settles_earlier_attempts() => {
                Err(ProviderError::unknown(
                    provider,
                    format!(
                        "the capture sent again was refused ({}: {}), which does not say whether \
                         the earlier attempt captured; it stays PROCESSING",
                        failure.code, failure.message
                    ),
                ))
            }
            other => other,
        }
    }
}

/// Captures payments: the orchestrator shared by every request.
#[derive(Clone)]
pub struct Captures {
    store: Store,
    connectors: Connectors,
    in_flight: InFlight,
    tasks: TaskTracker,
    admission: Admission,
    /// Set when this process kept a webhook it could not match to a capture yet.
    webhooks_waiting: Arc<std::sync::atomic::AtomicBool>,
    /// Where the passes' round of kept webhooks goes on from (a `webhook_events` id).
    webhook_sweep: Arc<std::sync::atomic::AtomicI64>,
    /// How long a lease lasts unless renewed: the request or look holding it renews it while
    /// its call runs ([`Captures::keep_leases_until`]).
    lease: std::time::Duration,
    /// The first back-off of a capture a provider's hint prompted a look at.
    hint_backoff: std::time::Duration,
    webhooks: WebhookLimits,
}

impl Captures {
    /// `max_in_flight` captures may be in progress at once; more are refused at once. `lease`
    /// is how long a lease lasts without renewal (see `store::lease`).
    pub fn new(
        store: Store,
        connectors: Connectors,
        tasks: TaskTracker,
        max_in_flight: usize,
        lease: std::time::Duration,
        hint_backoff: std::time::Duration,
    ) -> Self {
        Captures {
            store,
            connectors,
            in_flight: InFlight::default(),
            tasks,
            admission: Admission::new("captures", max_in_flight),
            webhooks_waiting: Arc::default(),
            webhook_sweep: Arc::default(),
            lease,
            hint_backoff,
            webhooks: WebhookLimits::default(),
        }
    }

    /// Replaces the default bounds on webhook deliveries.
    pub fn with_webhook_limits(mut self, webhooks: WebhookLimits) -> Self {
        self.webhooks = webhooks;
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn connectors(&self) -> &Connectors {
        &self.connectors
    }

    fn lease_micros(&self) -> i64 {
        i64::try_from(self.lease.as_micros()).unwrap_or(i64::MAX / 2)
    }

    /// Captures for `tenant`, or returns the capture an earlier identical request made.
    ///
    /// The whole capture runs as a tracked task: once its `PROCESSING` row is committed nothing
    /// may cut it short before the provider is called and the outcome recorded — not a caller
    /// that hangs up right after the commit, nor a shutdown that has begun.
    pub async fn capture(
        &self,
        tenant: &str,
        command: CaptureCommand,
    ) -> Result<CaptureResult, CaptureError> {
        self.submit(tenant, command).await
    }

    /// Releases what is left of an authorization for `tenant` (`command` is a
    /// [`CaptureCommand::release`]), or returns the release an earlier identical request made.
    /// The same durable path as a capture: recorded first, then the provider's call (or none,
    /// where the provider already released it), then the outcome.
    pub async fn release(
        &self,
        tenant: &str,
        command: CaptureCommand,
    ) -> Result<CaptureResult, CaptureError> {
        self.submit(tenant, command).await
    }

    /// Runs any operation of an authorization as a tracked task.
    async fn submit(
        &self,
        tenant: &str,
        command: CaptureCommand,
    ) -> Result<CaptureResult, CaptureError> {
        let this = self.clone();
        let tenant = tenant.to_owned();
        self.tasks
            .spawn(
                async move { this.run_capture(&tenant, command).await }
                    .instrument(tracing::Span::current()),
            )
            .await
            .map_err(|e| CaptureError::Task(e.to_string()))?
    }

    #[tracing::instrument(skip_all, fields(
        tenant = tenant,
        operation = %command.operation(),
        provider = %command.parts().provider,
        authorization_id = %command.parts().authorization_id,
        request_id = %command.parts().request_id,
        capture_id = tracing::field::Empty,
    ))]
    async fn run_capture(
        &self,
        tenant: &str,
        command: CaptureCommand,
    ) -> Result<CaptureResult, CaptureError> {
        // Until the outcome is recorded: the slot moves into the provider call's task.
        let admitted = self.admission.admit()?;
        let parts = command.parts();
        let (account, connector) = self
            .connectors
            .resolve(parts.provider, parts.account.as_ref())?;
        if command.operation() == Operation::Capture {
            let violations = connector.check(&command);
            if !violations.is_empty() {
                return Err(CaptureError::Unsupported(violations));
            }
        }
        let id = new_id(command.operation()).map_err(|e| CaptureError::Entropy(e.to_string()))?;
        tracing::Span::current().record("capture_id", id.as_str());
        // Claimed before the row is committed, so a concurrent retry that finds the row also
        // finds the call running and waits for it.
        let claim = match self.in_flight.claim(&id) {
            Slot::Claimed(claim) => claim,
            Slot::Running(_) => return Err(CaptureError::Entropy("capture id collision".into())),
        };
        let new = NewCapture {
            id: &id,
            tenant,
            account: &account,
            command: &command,
            lease_micros: self.lease_micros(),
            release_rules: connector.release_rules(),
        };
        let begun = self
            .store
            .begin_capture(&new)
            .await
            .map_err(|err| match err {
                // The commit may have landed after the bound: name the capture, so a retry (or a
                // read) finds it.
                StoreError::TimedOut(_) => CaptureError::Unrecorded {
                    capture_id: id.clone(),
                    source: err,
                },
                err => CaptureError::Store(err),
            })?;
        match begun {
            // Nothing to call: the provider already released what was left.
            Begin::Created(record) if record.status != CaptureStatus::Processing => {
                info!(capture_id = %record.id, status = %record.status, "recorded; the provider needs no call");
                Ok(CaptureResult {
                    record,
                    replayed: false,
                })
            }
            Begin::Created(record) => {
                // One INFO line a capture, at its outcome ("capture resolved"): each line
                // formats the call's whole span context, about 4 % of a capture's CPU.
                debug!(capture_id = %record.id, "recorded as PROCESSING; calling provider");
                let void_after = !connector.release_rules().final_capture_releases;
                let result = self
                    .drive(record, connector, claim, admitted, Attempt::First)
                    .await?;
                if void_after && leaves_a_rest_held(&result) {
                    self.tasks.spawn(
                        self.clone()
                            .follow_up_release(result.clone())
                            .in_current_span(),
                    );
                }
                Ok(CaptureResult {
                    record: result,
                    replayed: false,
                })
            }
            Begin::Existing(record) => {
                drop(claim);
                self.replay(record, admitted).await
            }
            Begin::KeyReused { capture_id } => Err(CaptureError::KeyReused { capture_id }),
            Begin::Refused(refusal) => Err(CaptureError::Refused(refusal)),
        }
    }

    /// An earlier request with the same key: its capture, waiting for or resuming its provider
    /// call when that has not ended.
    async fn replay(
        &self,
        record: CaptureRecord,
        admitted: Admitted,
    ) -> Result<CaptureResult, CaptureError> {
        if record.status != CaptureStatus::Processing {
            return Ok(CaptureResult {
                record,
                replayed: true,
            });
        }
        let record = match self.in_flight.claim(&record.id) {
            Slot::Running(rx) => {
                inflight::finished(rx).await;
                self.store
                    .get_any(&record.id)
                    .await
                    .map_err(|source| CaptureError::Unrecorded {
                        capture_id: record.id.clone(),
                        source,
                    })?
            }
            // Nobody is calling the provider for it now. Read it again under the claim: the call
            // that was running when it was read may have recorded its outcome since.
            Slot::Claimed(claim) => {
                let current = self.store.get_any(&record.id).await.map_err(|source| {
                    CaptureError::Unrecorded {
                        capture_id: record.id.clone(),
                        source,
                    }
                })?;
                if current.status != CaptureStatus::Processing {
                    current
                } else {
                    // An earlier call ended without an answer, or the process that made it
                    // stopped: call again with the same idempotency key, through the account
                    // it was made with (the default may have changed since).
                    let account = AccountName::parse(&current.account).ok();
                    let (_, connector) = self
                        .connectors
                        .resolve(current.command.parts().provider, account.as_ref())?;
                    let leased = self
                        .store
                        .take_lease(&current.id, self.lease_micros())
                        .await
                        .map_err(|source| CaptureError::Unrecorded {
                            capture_id: current.id.clone(),
                            source,
                        })?;
                    if !leased {
                        // Settled since it was read: that is the answer.
                        let current = self.store.get_any(&current.id).await.map_err(|source| {
                            CaptureError::Unrecorded {
                                capture_id: current.id.clone(),
                                source,
                            }
                        })?;
                        if current.status != CaptureStatus::Processing {
                            return Ok(CaptureResult {
                                record: current,
                                replayed: true,
                            });
                        }
                        // Its request (or a look at it) is calling the provider on another
                        // replica: calling again now could race it. The caller retries later.
                        return Err(CaptureError::Provider {
                            error: ProviderError::unknown(
                                current.command.parts().provider,
                                "the capture's provider call is still in flight elsewhere; retry with the same request_id",
                            ),
                            capture: Box::new(current),
                        });
                    }
                    info!(capture_id = %current.id, "resuming a PROCESSING capture");
                    self.drive(current, connector, claim, admitted, Attempt::Again)
                        .await?
                }
            }
        };
        Ok(CaptureResult {
            record,
            replayed: true,
        })
    }

    /// Calls the provider and records what it said, in a task that outlives the caller.
    async fn drive(
        &self,
        record: CaptureRecord,
        connector: Arc<dyn Connector>,
        claim: inflight::Claim,
        admitted: Admitted,
        attempt: Attempt,
    ) -> Result<CaptureRecord, CaptureError> {
        let store = self.store.clone();
        let capture_id = record.id.clone();
        let (told, heard) = tokio::sync::oneshot::channel();
        self.tasks.spawn(async move {
            // Held until the outcome is stored, or given up on: no other look at it meanwhile.
            let _claim = claim;
            let _admitted = admitted;
            let provider = record.command.parts().provider;
            let connector = connector.as_ref();
            let answer = if let Err(waiting) = captures_settled(&store, &record).await {
                Err(waiting)
            } else if attempt == Attempt::Again && !connector.resends_safely() {
                call_provider(provider, "lookup", crate::providers::look(connector, &record)).await
            } else {
                let operation = record.command.operation().as_str();
                call_provider(provider, operation, crate::providers::send(connector, &record)).await
            };
            let answer = attempt.judge(answer);
            let id = record.id.clone();
            // Kept only in case the store fails: the record to store the answer again with.
            let definite = !matches!(answer, Err(ProviderError::OutcomeUnknown { .. }));
            let kept = definite.then(|| record.clone());
            let stored = store.resolve(record, resolution_of(&answer), EventSource::Api).await;
            match (&answer, &stored) {
                (_, Err(err)) => warn!(capture_id = %id, error = %err,
                    "provider answered but the outcome could not be stored; it stays PROCESSING while storing is tried again"),
                (Ok(outcome), Ok(_)) => info!(capture_id = %id, status = %outcome.status,
                    provider_status = %outcome.provider_status, "capture resolved"),
                (Err(err), Ok(_)) => warn!(capture_id = %id, error = %err, "provider call failed"),
            }
            // The caller gets its UNAVAILABLE; the provider's definite answer is known only
            // here, and at PaymentOptions nothing could learn it again.
            let again = match (&stored, kept) {
                (Err(_), Some(record)) => Some((record, resolution_of(&answer))),
                _ => None,
            };
            let _ = told.send((answer, stored));
            if let Some((record, resolution)) = again {
                store_again(&store, record, resolution).await;
            }
        }.instrument(tracing::Span::current()));
        let (answer, stored) = heard
            .await
            .map_err(|_| CaptureError::Task("the capture's task ended without an answer".into()))?;
        let stored = stored.map_err(|source| CaptureError::Unrecorded {
            capture_id: capture_id.clone(),
            source,
        })?;
        let stored = self.match_waiting_webhooks(stored).await;
        match answer {
            Ok(_) => Ok(stored),
            // The provider's notice settled it while our call went unanswered.
            Err(ProviderError::OutcomeUnknown { .. })
                if stored.status != CaptureStatus::Processing =>
            {
                Ok(stored)
            }
            Err(error) => Err(CaptureError::Provider {
                error,
                capture: Box::new(stored),
            }),
        }
    }
}

/// Whether `record` is a completed final capture of part of its authorization: where the
/// provider does not release the rest by itself, the service voids it.
fn leaves_a_rest_held(record: &CaptureRecord) -> bool {
    record.command.operation() == Operation::Capture
        && record.status == CaptureStatus::Completed
        && record.command.closes_authorization()
        && record.command.parts().amount.is_some()
}

impl Captures {
    /// Voids what a final capture left held where the provider does not release it by itself
    /// (Stax): a release through the same durable path, its `request_id` made from the capture's
    /// id so that it is made once, whoever starts it (the capture's own request, or the
    /// reconciler's pass on any replica).
    ///
    /// Boxed: a release is itself submitted, and the compiler cannot see through the cycle.
    pub(super) fn follow_up_release(
        self,
        capture: CaptureRecord,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            let parts = capture.command.parts();
            let Ok(request_id) = RequestId::parse(&format!("release-after-{}", capture.id)) else {
                return;
            };
            let command = CaptureCommand::release(
                parts.provider,
                AccountName::parse(&capture.account).ok(),
                parts.authorization_id.clone(),
                None,
                request_id,
            );
            match self.submit(&capture.tenant, command).await {
                Ok(result) => info!(capture_id = %capture.id, release_id = %result.record.id,
                    status = %result.record.status, "released what the final capture left"),
                Err(err) => warn!(capture_id = %capture.id, error = %err,
                    "could not release what the final capture left; the reconciler tries again"),
            }
        })
    }
}

/// How long a release's call waits for captures of its authorization still in flight, before
/// it is left to a retry or the reconciler.
const CAPTURES_IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Before a release is sent: waits until no capture of its authorization is `PROCESSING`, so a
/// void never overtakes a capture the ledger admitted before the release (the provider would
/// refuse it as voided, and the release would have left its amount held). An error when some
/// still are after [`CAPTURES_IN_FLIGHT_WAIT`]: the release stays `PROCESSING`, not sent.
async fn captures_settled(store: &Store, record: &CaptureRecord) -> Result<(), ProviderError> {
    if record.command.operation() != Operation::Release {
        return Ok(());
    }
    let provider = record.command.parts().provider;
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(10);
    loop {
        let in_flight = store.captures_in_flight(record).await.map_err(|err| {
            ProviderError::unknown(
                provider,
                format!("not sent: captures in flight unknown ({err})"),
            )
        })?;
        if in_flight == 0 {
            return Ok(());
        }
        if started.elapsed() >= CAPTURES_IN_FLIGHT_WAIT {
            return Err(ProviderError::unknown(
                provider,
                format!(
                    "not sent yet: {in_flight} capture(s) of the authorization are still in \
                     flight; the release is sent once they are settled"
                ),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(500));
    }
}

/// What a provider call's answer records.
fn resolution_of(answer: &Result<ProviderOutcome, ProviderError>) -> Resolution {
    match answer {
        Ok(outcome) => Resolution::Outcome(Box::new(outcome.clone())),
        Err(ProviderError::Rejected { failure, .. }) => Resolution::Rejected(failure.clone()),
        Err(ProviderError::OutcomeUnknown {
            detail,
            retry_after,
            ..
        }) => Resolution::Unknown {
            detail: detail.clone(),
            not_before: *retry_after,
        },
    }
}

/// How long an outcome the database could not take is offered to it again: longer than the
/// outages a fleet rides out (a failover, a blip), bounded so a task cannot live on for good.
const STORE_AGAIN_FOR: std::time::Duration = std::time::Duration::from_secs(600);

/// Stores a provider's definite answer that the database refused, again and again with a
/// growing pause (0.2 s to 5 s), until it takes it or [`STORE_AGAIN_FOR`] has passed. The
/// capture's claim is held meanwhile and its lease renewed, so no look starts on it here or on
/// another replica; storing is idempotent (a capture no longer `PROCESSING` is left as it is).
async fn store_again(store: &Store, record: CaptureRecord, resolution: Resolution) {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(200);
    while started.elapsed() < STORE_AGAIN_FOR {
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
        match store
            .resolve(record.clone(), resolution.clone(), EventSource::Api)
            .await
        {
            Ok(stored) => {
                info!(capture_id = %stored.id, status = %stored.status,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "the provider's answer is stored now that the database is back");
                return;
            }
            Err(err) => {
                tracing::debug!(capture_id = %record.id, error = %err, "storing the outcome again failed")
            }
        }
    }
    warn!(capture_id = %record.id, "gave up storing the provider's answer; the capture stays PROCESSING for the reconciler");
}
