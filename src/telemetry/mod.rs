//! Logging, shared by `main` and tests: `tracing` to stdout as text or JSON, filtered by
//! `CAPTURE_LOG` (an `EnvFilter` directive such as `info,capture_service=debug`). Which call
//! failures are worth a line ([`calls`]), and storms logged as episodes ([`episodes`]).

pub mod calls;
pub mod episodes;
pub mod grpc_metrics;
pub mod metrics;

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

/// Installs the global subscriber; a second call (as in tests) is a no-op.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        // Colour only on a terminal: a file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
