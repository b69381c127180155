//! The webhooks emulators send, as the providers send theirs: each event is POSTed as JSON to
//! `{origin}/webhooks/{provider}` of the service named by [`super::Sandbox::send_webhooks_to`],
//! from a task of its own (a handler never waits on a delivery), and sent again after a non-2xx
//! answer or a transport error. Every attempt is recorded for tests to read.
//!
//! Checkout.com and PayPal retry failed deliveries for hours to days; the sandbox keeps the
//! pattern (a few attempts, growing pauses) but short: 3 attempts, 200 ms then 1 s apart, 5 s
//! each at most.
//!
//! Both providers also document that an event may arrive more than once and out of order.
//! `POST /sandbox/webhooks` (`{"url", "copies", "max_delay_ms"}`) sets the receiver and makes
//! that happen on purpose: each event is delivered `copies` times, each copy after a random
//! pause of up to `max_delay_ms` (the fault suite's `webhook_chaos`).

use std::collections::VecDeque;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::kit::{random_bytes, Locked};
use crate::domain::Provider;

/// The pause after each failed attempt but the last; one attempt more than pauses.
const RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(200), Duration::from_secs(1)];
/// How long one attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts kept in memory (oldest dropped first): a long-running standalone sandbox must not
/// grow without bound.
const KEPT_ATTEMPTS: usize = 1_000;

/// One delivery attempt of one event, as [`super::Sandbox::webhook_deliveries`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub provider: Provider,
    /// The provider's event type (`payment_captured`, `PAYMENT.CAPTURE.COMPLETED`).
    pub event_type: String,
    /// Where it was POSTed.
    pub url: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The receiver's HTTP status; `None` when no answer came (see `error`).
    pub status: Option<u16>,
    /// Why no answer came (connection refused, timeout).
    pub error: Option<String>,
}

/// An event ready to go: the exact body bytes (signatures are over them) and the headers that
/// go with it, besides `Content-Type: application/json`.
pub(super) struct Outgoing {
    pub(super) provider: Provider,
    pub(super) event_type: String,
    pub(super) body: Bytes,
    pub(super) headers: Vec<(&'static str, String)>,
}

/// How events are delivered: `copies` times each, each copy after a random pause of up to
/// `max_delay`.
#[derive(Debug, Clone, Copy)]
struct Chaos {
    copies: u32,
    max_delay: Duration,
}

impl Default for Chaos {
    fn default() -> Self {
        Chaos {
            copies: 1,
            max_delay: Duration::ZERO,
        }
    }
}

/// What `POST /sandbox/webhooks` takes.
#[derive(Debug, Deserialize)]
struct Delivery {
    /// The receiving service's origin.
    url: String,
    #[serde(default = "one")]
    copies: u32,
    #[serde(default)]
    max_delay_ms: u64,
}

fn one() -> u32 {
    1
}

/// Where webhooks go and what became of them, shared by every emulator (cheap to clone).
#[derive(Clone, Default)]
pub(super) struct Webhooks(Arc<Shared>);

#[derive(Default)]
struct Shared {
    /// The receiving service's origin (`http://127.0.0.1:8080`), none until it is set.
    origin: RwLock<Option<String>>,
    /// Copies of each event, and the longest pause before each (none by default).
    chaos: RwLock<Chaos>,
    attempts: Locked<VecDeque<WebhookDelivery>>,
    client: reqwest::Client,
    /// Cancelled when the sandbox stops: deliveries in flight or waiting to retry end with it.
    stop: CancellationToken,
}

impl Webhooks {
    /// Sends later events to `{origin}/webhooks/{provider}`; replaces any origin set before.
    pub(super) fn send_to(&self, origin: &str) {
        let origin = origin.trim_end_matches('/').to_owned();
        *self
            .0
            .origin
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(origin);
    }

    /// `POST /sandbox/webhooks`: sets the receiver, and how many copies of each event go to it
    /// after what pauses.
    pub(super) fn routes(&self) -> Router {
        Router::new()
            .route("/sandbox/webhooks", post(set_delivery))
            .with_state(self.clone())
    }

    fn origin(&self) -> Option<String> {
        self.0
            .origin
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every attempt so far, oldest first.
    pub(super) fn deliveries(&self) -> Vec<WebhookDelivery> {
        self.0.attempts.lock().iter().cloned().collect()
    }

    /// Ends deliveries in flight and retries still to come.
    pub(super) fn stop(&self) {
        self.0.stop.cancel();
    }

    /// Delivers `event` from a task of its own; returns at once. Without a receiver (or outside
    /// a Tokio runtime) the event is dropped, with a debug log.
    pub(super) fn send(&self, event: Outgoing) {
        let Some(origin) = self.origin() else {
            tracing::debug!(
                provider = event.provider.as_str(),
                event_type = %event.event_type,
                "sandbox webhook not sent: no receiver set (Sandbox::send_webhooks_to)"
            );
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(event_type = %event.event_type, "sandbox webhook not sent: no runtime");
            return;
        };
        let url = format!("{origin}/webhooks/{}", event.provider.as_str());
        let chaos = *self.0.chaos.read().unwrap_or_else(PoisonError::into_inner);
        let event = Arc::new(event);
        for _ in 0..chaos.copies {
            let pause = random_pause(chaos.max_delay);
            let (shared, url, event) = (Arc::clone(&self.0), url.clone(), Arc::clone(&event));
            runtime.spawn(async move {
                let stop = shared.stop.clone();
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = async {
                        tokio::time::sleep(pause).await;
                        deliver(&shared, &url, &event).await;
                    } => {}
                }
            });
        }
    }
}

/// A pause of up to `max`, at random.
fn random_pause(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let mut bytes = [0u8; 8];
    random_bytes(&mut bytes);
    let millis = u64::from_le_bytes(bytes) % (max.as_millis() as u64 + 1);
    Duration::from_millis(millis)
}

async fn set_delivery(
    State(webhooks): State<Webhooks>,
    Json(delivery): Json<Delivery>,
) -> StatusCode {
    if delivery.copies == 0 || delivery.copies > 10 {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    webhooks.send_to(&delivery.url);
    *webhooks
        .0
        .chaos
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Chaos {
        copies: delivery.copies,
        max_delay: Duration::from_millis(delivery.max_delay_ms),
    };
    StatusCode::NO_CONTENT
}

/// Attempts `event` until the receiver answers 2xx or the attempts run out.
async fn deliver(shared: &Shared, url: &str, event: &Outgoing) {
    let mut pauses = RETRY_PAUSES.iter();
    let mut attempt = 1;
    loop {
        let mut request = shared
            .client
            .post(url)
            .timeout(ATTEMPT_TIMEOUT)
            .header(header::CONTENT_TYPE, "application/json")
            .body(event.body.clone());
        for (name, value) in &event.headers {
            request = request.header(*name, value);
        }
        let (status, error) = match request.send().await {
            Ok(response) => (Some(response.status().as_u16()), None),
            Err(err) => (None, Some(err.to_string())),
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        tracing::debug!(%url, event_type = %event.event_type, attempt, ?status, ?error, "sandbox webhook attempt");
        record(
            shared,
            WebhookDelivery {
                provider: event.provider,
                event_type: event.event_type.clone(),
                url: url.to_owned(),
                attempt,
                status,
                error,
            },
        );
        if delivered {
            return;
        }
        let Some(pause) = pauses.next() else {
            tracing::warn!(%url, event_type = %event.event_type, attempt, "sandbox webhook given up");
            return;
        };
        tokio::time::sleep(*pause).await;
        attempt += 1;
    }
}

fn record(shared: &Shared, delivery: WebhookDelivery) {
    let mut attempts = shared.attempts.lock();
    if attempts.len() == KEPT_ATTEMPTS {
        attempts.pop_front();
    }
    attempts.push_back(delivery);
}
