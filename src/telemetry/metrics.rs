//! Prometheus metrics, served as OpenMetrics text on `GET /metrics` (HTTP port).
//!
//! One registry per process ([`metrics`]), recorded where each thing happens: gRPC calls in one
//! tower layer ([`super::grpc_metrics`]), provider calls where the orchestrator makes them,
//! status changes where the store commits them, webhooks where they are answered. Every label
//! takes its value from a closed set (a provider, a status, a method of the API, an outcome):
//! never an id, an amount or a caller's string, so no label can grow without bound.
//!
//! `prometheus-client` (the Prometheus project's own Rust client): typed label sets, no global
//! default registry, OpenMetrics text, and a handful of small dependencies.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::domain::{CaptureStatus, Provider};

/// `grpc_type`, `grpc_service`, `grpc_method` (the gRPC ecosystem's names).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcCall {
    pub grpc_type: &'static str,
    pub grpc_service: &'static str,
    pub grpc_method: &'static str,
}

/// A [`GrpcCall`] and its answer's code (`OK`, `INVALID_ARGUMENT`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcHandled {
    pub grpc_type: &'static str,
    pub grpc_service: &'static str,
    pub grpc_method: &'static str,
    pub grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderCall {
    pub provider: &'static str,
    /// `capture`, `lookup`, `verify_webhook`.
    pub operation: &'static str,
    /// `ok`, `refused`, `unknown`, `timeout`, `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderOperation {
    pub provider: &'static str,
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusChange {
    pub provider: &'static str,
    pub status: &'static str,
    /// `api`, `webhook`, `reconciler`.
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Webhook {
    /// A provider's name, or `unknown` for a path that names none.
    pub provider: &'static str,
    /// `applied`, `unchanged`, `kept`, `duplicate`, `ignored`, `bad_signature`, `malformed`,
    /// `too_large`, `too_slow`, `overloaded`, `unavailable`, `not_found`, `error`.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// An admission limit's kind: `captures`, `reads`, `watches`, `webhook deliveries`, …
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolState {
    /// `in_use`, `idle`, `max`.
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildInfo {
    pub version: &'static str,
    pub revision: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// How a provider operation ended.
const OUTCOMES: [&str; 5] = ["ok", "refused", "unknown", "timeout", "error"];
/// Who recorded a status change.
const SOURCES: [&str; 3] = ["api", "webhook", "reconciler"];
/// How a webhook delivery was answered.
const WEBHOOK_RESULTS: [&str; 13] = [
    "applied",
    "unchanged",
    "kept",
    "duplicate",
    "ignored",
    "bad_signature",
    "malformed",
    "too_large",
    "too_slow",
    "overloaded",
    "unavailable",
    "not_found",
    "error",
];

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    pub grpc_started: Family<GrpcCall, Counter>,
    pub grpc_handled: Family<GrpcHandled, Counter>,
    pub grpc_handling_seconds: HistogramFamily<GrpcCall>,
    pub provider_calls: Family<ProviderCall, Counter>,
    pub provider_call_seconds: HistogramFamily<ProviderOperation>,
    pub status_changes: Family<StatusChange, Counter>,
    pub webhooks: Family<Webhook, Counter>,
    pub reconciler_due: Gauge,
    pub reconciler_oldest_due_seconds: Gauge,
    pub in_flight: Family<Kind, Gauge>,
    pub shed: Family<Kind, Counter>,
    pub db_pool_connections: Family<PoolState, Gauge>,
    pub store_unavailable: Counter,
}

/// Latencies from 1 ms to about 33 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let grpc_started = Family::<GrpcCall, Counter>::default();
        registry.register(
            "grpc_server_started",
            "gRPC calls started on the server",
            grpc_started.clone(),
        );
        let grpc_handled = Family::<GrpcHandled, Counter>::default();
        registry.register(
            "grpc_server_handled",
            "gRPC calls completed on the server, by code",
            grpc_handled.clone(),
        );
        let grpc_handling_seconds: HistogramFamily<GrpcCall> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "grpc_server_handling_seconds",
            "Time from a call's start to its last byte (a stream's whole life)",
            grpc_handling_seconds.clone(),
        );
        let provider_calls = Family::<ProviderCall, Counter>::default();
        registry.register(
            "capture_provider_calls",
            "Calls to providers, by operation and outcome",
            provider_calls.clone(),
        );
        let provider_call_seconds: HistogramFamily<ProviderOperation> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "capture_provider_call_seconds",
            "Time a provider operation took, retries included",
            provider_call_seconds.clone(),
        );
        let status_changes = Family::<StatusChange, Counter>::default();
        registry.register(
            "capture_status_changes",
            "Capture status changes recorded, by new status and source",
            status_changes.clone(),
        );
        let webhooks = Family::<Webhook, Counter>::default();
        registry.register(
            "capture_webhooks",
            "Webhook deliveries, by result",
            webhooks.clone(),
        );
        let reconciler_due = Gauge::default();
        registry.register(
            "capture_reconciler_due",
            "Captures whose outcome is open (PROCESSING, PENDING) and not given up on, at the last pass",
            reconciler_due.clone(),
        );
        let reconciler_oldest_due_seconds = Gauge::default();
        registry.register(
            "capture_reconciler_oldest_due_seconds",
            "Age of the oldest of those captures since its last change, at the last pass",
            reconciler_oldest_due_seconds.clone(),
        );
        let in_flight = Family::<Kind, Gauge>::default();
        registry.register(
            "capture_in_flight",
            "Calls in progress under each admission limit (watches: open WatchCaptures streams)",
            in_flight.clone(),
        );
        let shed = Family::<Kind, Counter>::default();
        registry.register(
            "capture_shed",
            "Calls refused at once because their admission limit was reached",
            shed.clone(),
        );
        let db_pool_connections = Family::<PoolState, Gauge>::default();
        registry.register(
            "capture_db_pool_connections",
            "Database pool connections: in use, idle, and the pool's maximum",
            db_pool_connections.clone(),
        );
        let store_unavailable = Counter::default();
        registry.register(
            "capture_store_unavailable",
            "Store operations that failed because the database could not be used",
            store_unavailable.clone(),
        );
        let build_info = Family::<BuildInfo, Gauge>::default();
        registry.register(
            "capture_build_info",
            "The running build: its version and git revision",
            build_info.clone(),
        );
        // Every counter of a closed label set exported from the start, at zero: a rate over a
        // series that appears only with its first event misses that event, and an alert on a
        // series that does not exist yet can never fire.
        for provider in Provider::ALL.map(|p| p.as_str()) {
            for (operation, outcome) in ["capture", "release", "lookup", "verify_webhook"]
                .into_iter()
                .flat_map(|o| OUTCOMES.map(|outcome| (o, outcome)))
            {
                let _ = provider_calls.get_or_create(&ProviderCall {
                    provider,
                    operation,
                    outcome,
                });
            }
            for (status, source) in CaptureStatus::ALL
                .into_iter()
                .flat_map(|s| SOURCES.map(|source| (s.as_str(), source)))
            {
                let _ = status_changes.get_or_create(&StatusChange {
                    provider,
                    status,
                    source,
                });
            }
            for result in WEBHOOK_RESULTS {
                let _ = webhooks.get_or_create(&Webhook { provider, result });
            }
        }
        build_info
            .get_or_create(&BuildInfo {
                version: env!("CARGO_PKG_VERSION"),
                revision: env!("CAPTURE_GIT_REVISION"),
            })
            .set(1);
        Metrics {
            registry,
            grpc_started,
            grpc_handled,
            grpc_handling_seconds,
            provider_calls,
            provider_call_seconds,
            status_changes,
            webhooks,
            reconciler_due,
            reconciler_oldest_due_seconds,
            in_flight,
            shed,
            db_pool_connections,
            store_unavailable,
        }
    }

    /// Everything, as OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Counts one provider operation that took `took`.
    pub fn provider_call(
        &self,
        provider: &'static str,
        operation: &'static str,
        outcome: &'static str,
        took: Duration,
    ) {
        self.provider_calls
            .get_or_create(&ProviderCall {
                provider,
                operation,
                outcome,
            })
            .inc();
        self.provider_call_seconds
            .get_or_create(&ProviderOperation {
                provider,
                operation,
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one recorded status change.
    pub fn status_change(
        &self,
        provider: &'static str,
        status: &'static str,
        source: &'static str,
    ) {
        self.status_changes
            .get_or_create(&StatusChange {
                provider,
                status,
                source,
            })
            .inc();
    }

    /// Counts one webhook delivery's answer.
    pub fn webhook(&self, provider: &'static str, result: &'static str) {
        self.webhooks
            .get_or_create(&Webhook { provider, result })
            .inc();
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}
