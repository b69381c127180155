//! `capture-service [serve|migrate|check-config|hash-key KEY]`.

use anyhow::Context;
use capture_service::app::App;
use capture_service::config::Config;
use capture_service::providers::load_accounts;
use capture_service::store::Store;
use capture_service::{api, telemetry};

const USAGE: &str = "usage: capture-service [serve|migrate|check-config|hash-key <api key>]
  serve         serve gRPC and HTTP (default)
  migrate       apply database migrations and exit
  check-config  load and validate the configuration, print it (secrets redacted) and exit
  hash-key KEY  print the SHA-256 digest to put in CAPTURE_API_KEYS for KEY (16+ characters)
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
            let store = Store::connect(&config.database_url).await?;
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
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => anyhow::bail!("unknown command {other:?}\n{USAGE}"),
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
