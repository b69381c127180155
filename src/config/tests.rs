//! Configuration tests.

use std::collections::HashMap;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_serve_locally_on_sqlite_with_the_sandbox() -> Result<(), ConfigError> {
    let config = Config::load(&env(&[]))?;
    assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:50051");
    assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
    assert!(config.database_url.starts_with("sqlite:"));
    assert!(config.sandbox_enabled());
    Ok(())
}

#[test]
fn the_database_password_never_prints() -> Result<(), ConfigError> {
    let config = Config::load(&env(&[(
        "CAPTURE_DATABASE_URL",
        "postgres://capture:hunter2@db:5432/capture",
    )]))?;
    assert_eq!(
        &*config.database_url,
        "postgres://capture:hunter2@db:5432/capture"
    );
    assert!(!format!("{config:?}").contains("hunter2"));
    assert!(format!("{config:?}").contains("postgres://…@db:5432/capture"));
    Ok(())
}

#[test]
fn the_file_holds_several_accounts_and_the_environment_wins(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("capture.toml");
    std::fs::write(
        &path,
        r#"
grpc_addr = "0.0.0.0:6000"
sandbox = "off"
reconcile_interval_seconds = 5

[[api_keys]]
tenant = "shop"
sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"

[providers]
max_retries = 4

[[providers.paypal]]
name = "eu"
base_url = "https://api-m.paypal.com"
client_id = "eu-client"
client_secret = "eu-secret"

[[providers.paypal]]
name = "us"
client_id = "us-client"
client_secret = "us-secret"

[[providers.stax]]
name = "default"
api_key = "stax-key"
"#,
    )?;
    let path = path.to_string_lossy().into_owned();
    let config = Config::load(&env(&[
        ("CAPTURE_CONFIG", path.as_str()),
        ("CAPTURE_GRPC_ADDR", "127.0.0.1:7000"),
    ]))?;
    assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:7000");
    assert_eq!(config.sandbox, SandboxMode::Off);
    assert_eq!(config.reconcile.interval, Duration::from_secs(5));
    assert_eq!(config.providers.max_retries, 4);
    assert_eq!(config.api_keys.len(), 1);
    let names: Vec<&str> = config
        .providers
        .paypal
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["eu", "us"]);
    assert_eq!(
        config.providers.paypal[1].base_url,
        PaypalAccount::SANDBOX_BASE_URL
    );
    assert_eq!(config.providers.stax[0].api_key.expose(), "stax-key");

    std::fs::write(&path, "unknown_setting = 1\n")?;
    let err = Config::load(&env(&[("CAPTURE_CONFIG", path.as_str())])).err();
    assert_eq!(err.map(|e| e.setting), Some("CAPTURE_CONFIG".to_owned()));
    Ok(())
}

#[test]
fn a_bad_setting_is_named() {
    let err = Config::load(&env(&[("CAPTURE_GRPC_ADDR", "nowhere")])).err();
    assert_eq!(err.map(|e| e.setting), Some("CAPTURE_GRPC_ADDR".to_owned()));
    let err = Config::load(&env(&[("CAPTURE_API_KEYS", "team:abc")])).err();
    assert_eq!(err.map(|e| e.setting), Some("CAPTURE_API_KEYS".to_owned()));
    let err = Config::load(&env(&[("CAPTURE_SANDBOX", "maybe")])).err();
    assert_eq!(err.map(|e| e.setting), Some("CAPTURE_SANDBOX".to_owned()));
}

#[test]
fn paypal_credentials_turn_the_automatic_sandbox_off_and_never_print() -> Result<(), ConfigError> {
    let config = Config::load(&env(&[
        ("CAPTURE_PAYPAL_CLIENT_ID", "client"),
        ("CAPTURE_PAYPAL_CLIENT_SECRET", "hunter2"),
    ]))?;
    assert!(!config.sandbox_enabled());
    assert_eq!(config.providers.paypal[0].name, "default");
    assert!(!format!("{config:?}").contains("hunter2"));
    Ok(())
}

#[test]
fn limits_are_lowered_to_fit_the_open_file_limit() {
    let limits = Limits::default();
    let (same, lowered) = limits.fitted_to(1 << 20);
    assert_eq!(same, limits);
    assert!(lowered.is_empty());

    // A container's 1,024: 752 after the reserve and the pool, half for provider connections.
    let (fitted, lowered) = limits.fitted_to(1024);
    assert_eq!(fitted.max_captures_in_flight, 376);
    assert_eq!(fitted.max_connections, 188);
    assert_eq!(lowered.len(), 2);
    let everything = 2 * fitted.max_connections
        + fitted.max_captures_in_flight
        + fitted.database_max_connections;
    assert!(everything < 1024, "{everything}");
}
