//! Logging, shared by `main` and tests: `tracing` to stdout as text or JSON, filtered by
//! `CAPTURE_LOG` (an `EnvFilter` directive such as `info,capture_service=debug`). Which call
//! failures are worth a line ([`calls`]), storms logged as episodes ([`episodes`]), metrics,
//! and the optional OTLP trace export ([`traces`]).

pub mod calls;
pub mod episodes;
pub mod grpc_metrics;
pub mod metrics;
pub mod provider_calls;
pub mod traces;

use std::sync::LazyLock;

use tracing_subscriber::EnvFilter;

use episodes::Episodes;

/// Calls refused at once because a limit was reached (`RESOURCE_EXHAUSTED`, webhook 503s).
pub fn shed() -> &'static Episodes {
    static SHED: LazyLock<Episodes> = LazyLock::new(|| Episodes::new("calls shed"));
    &SHED
}

/// Webhook deliveries answered 503 because the provider's verification did not answer.
pub fn verifier_unavailable() -> &'static Episodes {
    static VERIFIER: LazyLock<Episodes> =
        LazyLock::new(|| Episodes::new("webhook verification unavailable"));
    &VERIFIER
}

/// Calls answered `UNAVAILABLE` because the database could not be used.
pub fn store_unavailable() -> &'static Episodes {
    static STORE: LazyLock<Episodes> = LazyLock::new(|| Episodes::new("database unavailable"));
    &STORE
}

use crate::config::LogFormat;

/// Installs the global subscriber: logs filtered by `filter`, and, when `otlp_endpoint` is
/// set, this crate's spans exported there (their own filter: the log filter does not thin
/// traces). A second call (as in tests) installs nothing.
pub fn init(
    format: LogFormat,
    filter: &str,
    otlp_endpoint: Option<&str>,
) -> anyhow::Result<Option<traces::Traces>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;

    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal: a file or a pipe gets plain text.
    let logs = tracing_subscriber::fmt::layer()
        .with_target(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let logs = match format {
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
        LogFormat::Text => logs.boxed(),
    }
    .with_filter(filter);
    let traces = otlp_endpoint.map(traces::Traces::start).transpose()?;
    let export = traces.as_ref().map(|t| t.layer().with_filter(traced()));
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(export)
        .try_init();
    Ok(traces)
}

/// What is exported: this crate's INFO spans (the API's calls, webhooks, captures, reconciler
/// looks) and events (as span events), and its DEBUG spans (store operations, provider calls)
/// only inside one of those: a probe's or a background query's span starts no trace. DEBUG
/// spans cost nothing while export is off.
fn traced<S>() -> impl tracing_subscriber::layer::Filter<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_subscriber::filter::dynamic_filter_fn(|meta, cx| {
        if !meta.target().starts_with("capture_service") {
            return false;
        }
        if *meta.level() <= tracing::Level::INFO {
            return true;
        }
        *meta.level() == tracing::Level::DEBUG && meta.is_span() && cx.lookup_current().is_some()
    })
}
