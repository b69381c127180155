//! `capture-service [serve|migrate|check-config|hash-key KEY]`.

use anyhow::Context;
use capture_service::app::App;
use capture_service::config::Config;
use capture_service::providers::load_accounts;
use capture_service::store::{PoolSettings, Store};
use capture_service::{api, telemetry};

/// mimalloc: per-thread free lists instead of glibc's arenas, whose consolidation of freed
/// chunks and locking took a quarter of a list page's CPU (every row value is a small
/// allocation, copied once by the driver and again into the record).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str =
    "usage: capture-service [serve|migrate|check-config|hash-key <api key>|sandbox [--addr ADDR] [--latency-ms N] [--webhook-url URL]]
  serve         serve gRPC and HTTP (default)
  migrate       apply database migrations and exit
  check-config  load and validate the configuration, print it (secrets redacted) and exit
  hash-key KEY  print the SHA-256 digest to put in CAPTURE_API_KEYS for KEY (16+ characters)
  sandbox       serve only the emulated providers (default 127.0.0.1:8090, or --addr, or
                CAPTURE_SANDBOX_ADDR) and print the CAPTURE_* variables a service needs to use them;
                --latency-ms holds every provider answer back that long (load tests);
                --webhook-url (or CAPTURE_SANDBOX_WEBHOOK_URL) is the service that receives the
                emulators' webhooks at URL/webhooks/{provider}
configuration: CAPTURE_* environment variables and the optional CAPTURE_CONFIG file (see README)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("serve");
    if command == "hash-key" {
        let key = args.get(1).context(USAGE)?;
        println!("{}", api::auth::key_digest_hex(key)?);
        return Ok(());
    }
    let config = Config::from_env()?;
    telemetry::init(config.log_format, &config.log_filter);
    match command {
        "serve" => {
            let app = App::build(config).await?;
            if let Some(key) = app.generated_dev_api_key() {
                // Sandbox only: the key moves no real money and is new at every start.
                println!("development API key (tenant dev): {key}");
            }
            app.run(shutdown_signal()).await
        }
        "migrate" => {
            // Migrations may take long: no statement bound.
            let pool = PoolSettings {
                statement_timeout: None,
                ..PoolSettings::default()
            };
            let store = Store::connect_with(&config.database_url, pool).await?;
            store.migrate().await?;
            println!("migrations applied to {}", config.database_url.redacted());
            Ok(())
        }
        "check-config" => {
            let accounts = load_accounts(&config.providers.sources)?;
            println!("{config:#?}");
            println!("provider accounts: {accounts:#?}");
            Ok(())
        }
        #[cfg(feature = "sandbox")]
        "sandbox" => sandbox::run(&args[1..]).await,
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// `capture-service sandbox`: the emulators as a process of their own.
#[cfg(feature = "sandbox")]
mod sandbox {
    use std::net::SocketAddr;
    use std::time::Duration;

    use anyhow::Context;
    use capture_service::sandbox::Sandbox;

    const DEFAULT_ADDR: &str = "127.0.0.1:8090";

    const USAGE: &str =
        "usage: capture-service sandbox [--addr ADDR] [--latency-ms N] [--webhook-url URL]
  --addr ADDR        where to listen (default 127.0.0.1:8090, or CAPTURE_SANDBOX_ADDR)
  --latency-ms N     hold every provider answer back N ms (load tests)
  --webhook-url URL  send Checkout.com's and PayPal's webhooks to URL/webhooks/{provider}, e.g.
                     http://127.0.0.1:8080 (or CAPTURE_SANDBOX_WEBHOOK_URL; default: none sent)";

    pub async fn run(args: &[String]) -> anyhow::Result<()> {
        let mut addr =
            std::env::var("CAPTURE_SANDBOX_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.into());
        let mut latency_ms = 0u64;
        let mut webhook_url = std::env::var("CAPTURE_SANDBOX_WEBHOOK_URL")
            .ok()
            .filter(|url| !url.is_empty());
        let mut rest = args.iter();
        while let Some(flag) = rest.next() {
            let value = rest.next().context(USAGE)?;
            match flag.as_str() {
                "--addr" => addr = value.clone(),
                "--webhook-url" => webhook_url = Some(value.clone()),
                "--latency-ms" => {
                    latency_ms = value
                        .parse()
                        .with_context(|| format!("--latency-ms {value:?}: not a number\n{USAGE}"))?
                }
                _ => anyhow::bail!(USAGE),
            }
        }
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("{addr:?} is not an address such as {DEFAULT_ADDR}"))?;
        let latency = Duration::from_millis(latency_ms);
        if let Some(url) = &webhook_url {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "--webhook-url {url:?}: not an http(s) URL such as http://127.0.0.1:8080\n{USAGE}"
            );
        }
        let sandbox = Sandbox::start_with_latency(addr, latency)
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
