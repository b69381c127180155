//! `capture-service [serve|migrate|check-config|hash-key|sandbox]`: the command line (clap),
//! `--help` on each command, `--version` with the git revision.

use anyhow::Context;
use capture_service::app::{self, App};
use capture_service::config::{AccountLine, Config};
use capture_service::providers::load_accounts;
use capture_service::store::{PoolSettings, Store};
use capture_service::{api, telemetry};
use clap::{Parser, Subcommand};

/// mimalloc: per-thread free lists instead of glibc's arenas, whose consolidation of freed
/// chunks and locking took a quarter of a list page's CPU (every row value is a small
/// allocation, copied once by the driver and again into the record).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `--version`: the crate's version and the git revision it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CAPTURE_GIT_REVISION"),
    ")"
);

/// Captures payments authorized at PayPal, Checkout.com, Cybersource, PaymentOptions and Stax
/// behind one gRPC API.
///
/// Configuration: CAPTURE_* environment variables and the optional CAPTURE_CONFIG file (see
/// README).
#[derive(Debug, Parser)]
#[command(name = "capture-service", version = VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC and HTTP (the default)
    Serve,
    /// Apply database migrations and exit
    Migrate,
    /// Load and validate the configuration, print what it makes of it (secrets redacted) and
    /// exit
    CheckConfig,
    /// Print the SHA-256 digest to put in CAPTURE_API_KEYS for an API key (16+ characters),
    /// read from standard input, so that it stays out of shell history and `ps`
    HashKey {
        /// The key itself; prefer standard input (`capture-service hash-key < key.txt`)
        key: Option<String>,
    },
    /// Serve only the emulated providers and print the CAPTURE_* variables a service needs to
    /// use them
    #[cfg(feature = "sandbox")]
    Sandbox(sandbox::Options),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("Failed to start the async runtime")?;
    runtime.block_on(run(cli.command.unwrap_or(Command::Serve)))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::HashKey { key } => {
            let key = match key {
                Some(key) => key,
                None => read_key()?,
            };
            println!("{}", api::auth::key_digest_hex(&key)?);
            return Ok(());
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox(options) => return sandbox::run(options).await,
        _ => {}
    }
    let config = Config::from_env()?;
    match command {
        Command::Serve => {
            let traces = telemetry::init(
                config.log_format,
                &config.log_filter,
                config.otlp_endpoint.as_deref(),
            )
            .context("Failed to start the OTLP trace export")?;
            let app = App::build(config).await?;
            if let Some(key) = app.generated_dev_api_key() {
                // Sandbox only: the key moves no real money and is new at every start.
                println!("development API key (tenant dev): {key}");
            }
            let served = app.run(shutdown_signal()).await;
            if let Some(traces) = traces {
                traces.shutdown();
            }
            served
        }
        Command::Migrate => {
            telemetry::init(config.log_format, &config.log_filter, None)?;
            // Migrations may take long: no statement bound.
            let pool = PoolSettings {
                statement_timeout: None,
                ..PoolSettings::default()
            };
            let store = Store::connect_with(&config.database_url, pool)
                .await
                .map_err(|err| app::database_error(&config.database_url, &err))?;
            store
                .migrate()
                .await
                .map_err(|err| app::database_error(&config.database_url, &err))?;
            println!("migrations applied to {}", config.database_url.redacted());
            Ok(())
        }
        Command::CheckConfig => {
            telemetry::init(config.log_format, &config.log_filter, None)?;
            let accounts: Vec<AccountLine> = load_accounts(&config.providers.sources)?
                .iter()
                .map(|a| AccountLine {
                    provider: a.provider(),
                    name: a.name().to_owned(),
                    base_url: a.base_url().to_owned(),
                })
                .collect();
            print!("{}", config.summary(&accounts));
            Ok(())
        }
        Command::HashKey { .. } => Ok(()),
        #[cfg(feature = "sandbox")]
        Command::Sandbox(_) => Ok(()),
    }
}

/// The API key from standard input: its first line, without the line's end.
fn read_key() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("Failed to read the key from standard input")?;
    let key = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !key.is_empty(),
        "no key on standard input: `capture-service hash-key < key.txt`, or pipe it in"
    );
    Ok(key)
}

/// `capture-service sandbox`: the emulators as a process of their own.
#[cfg(feature = "sandbox")]
mod sandbox {
    use std::net::SocketAddr;
    use std::time::Duration;

    use anyhow::Context;
    use capture_service::sandbox::{Sandbox, Secrets};

    /// Where the sandbox listens, how slowly it answers, and where its webhooks go.
    #[derive(Debug, clap::Args)]
    pub struct Options {
        /// Where to listen
        #[arg(long, env = "CAPTURE_SANDBOX_ADDR", default_value = "127.0.0.1:8090")]
        addr: SocketAddr,
        /// Hold every provider answer back this many milliseconds (load tests)
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Send Checkout.com's and PayPal's webhooks to URL/webhooks/{provider}, e.g.
        /// http://127.0.0.1:8080 (default: none are sent)
        #[arg(long, env = "CAPTURE_SANDBOX_WEBHOOK_URL", value_parser = http_url)]
        webhook_url: Option<String>,
        /// Derive the emulated accounts' credentials from this seed instead of making new ones
        /// at each start, so services configured once keep working across restarts
        #[arg(long, env = "CAPTURE_SANDBOX_CREDENTIALS_SEED", hide_env_values = true)]
        credentials_seed: Option<String>,
    }

    fn http_url(url: &str) -> Result<String, String> {
        if url.starts_with("http://") || url.starts_with("https://") {
            Ok(url.to_owned())
        } else {
            Err("not an http(s) URL such as http://127.0.0.1:8080".to_owned())
        }
    }

    pub async fn run(options: Options) -> anyhow::Result<()> {
        let Options {
            addr,
            latency_ms,
            webhook_url,
            credentials_seed,
        } = options;
        let latency = Duration::from_millis(latency_ms);
        let secrets = credentials_seed
            .as_deref()
            .map(Secrets::seeded)
            .unwrap_or_default();
        let sandbox = Sandbox::start_with(addr, latency, &secrets)
            .await
            .with_context(|| format!("Failed to start the sandbox on {addr}"))?;
        if let Some(url) = &webhook_url {
            sandbox.send_webhooks_to(url);
        }
        println!("# capture-service sandbox: emulated providers, no real money moves.");
        println!(
            "# New authorizations: POST {}/sandbox/{{provider}}/authorizations",
            sandbox.origin()
        );
        match &webhook_url {
            Some(url) => println!(
                "# Webhooks go to {}/webhooks/{{provider}}",
                url.trim_end_matches('/')
            ),
            None => println!("# No webhooks are sent (--webhook-url URL to send them)"),
        }
        println!("# A service captures here with these variables:");
        for (name, value) in sandbox.service_env() {
            println!("export {name}={value}");
        }
        println!("export CAPTURE_SANDBOX=off");
        super::shutdown_signal().await;
        sandbox.shutdown().await;
        Ok(())
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight captures");
}
