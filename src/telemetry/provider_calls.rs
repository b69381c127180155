//! One provider operation observed: a span of its own (a child of the call or look that made
//! it) with provider, operation and outcome, and the provider-call metrics.

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

use crate::domain::Provider;

/// Runs `call` as `operation` at `provider`; `outcome` names how it ended (from the metrics'
/// fixed set: ok, refused, unknown, timeout, error), given its result and how long it took.
pub async fn observed<R>(
    provider: Provider,
    operation: &'static str,
    call: impl Future<Output = R>,
    outcome: impl FnOnce(&R, Duration) -> &'static str,
) -> R {
    let span = tracing::debug_span!(
        "provider call",
        provider = provider.as_str(),
        operation,
        outcome = tracing::field::Empty,
        otel.kind = "client",
    );
    let started = tokio::time::Instant::now();
    let result = call.instrument(span.clone()).await;
    let took = started.elapsed();
    let outcome = outcome(&result, took);
    span.record("outcome", outcome);
    super::metrics::metrics().provider_call(provider.as_str(), operation, outcome, took);
    result
}
