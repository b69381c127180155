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
    assert!(config.sandbox.enabled(false));
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
fn the_file_and_the_environment_are_handed_to_the_providers_unparsed(
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

[[providers.acme]]
name = "eu"
key = "eu-key"

[[providers.acme]]
name = "us"
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
    // Configuration knows no provider: each provider's tables and variables are kept for it.
    let names: Vec<Option<&str>> = config
        .providers
        .sources
        .tables("acme")
        .iter()
        .map(|t| t.get("name").and_then(|v| v.as_str()))
        .collect();
    assert_eq!(names, [Some("eu"), Some("us")]);
    assert_eq!(
        config.providers.sources.var("CAPTURE_GRPC_ADDR"),
        Some("127.0.0.1:7000")
    );
    assert!(!format!("{config:?}").contains("eu-key"));

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
fn limits_are_lowered_to_fit_the_open_file_limit() {
    let limits = Limits::default();
    let (same, lowered) = limits.fitted_to(1 << 20);
    assert_eq!(same, limits);
    assert!(lowered.is_empty());

    // A container's 1,024: 752 after the reserve and the pool, half for provider connections.
    let (fitted, lowered) = limits.fitted_to(1024);
    assert_eq!(fitted.max_captures_in_flight, 376);
    assert_eq!(fitted.max_connections, 188);
    // Webhook senders hold at most half of the HTTP port's connections.
    assert_eq!(fitted.webhook_max_receiving, 94);
    assert_eq!(lowered.len(), 3);
    let everything = 2 * fitted.max_connections
        + fitted.max_captures_in_flight
        + fitted.database_max_connections;
    assert!(everything < 1024, "{everything}");
}

#[test]
fn the_sandbox_webhooks_can_be_turned_off() {
    let config = Config::load(&env(&[("CAPTURE_SANDBOX_WEBHOOKS", "false")]));
    assert!(config.is_ok_and(|c| !c.sandbox_webhooks));
    let err = Config::load(&env(&[("CAPTURE_SANDBOX_WEBHOOKS", "maybe")])).err();
    assert_eq!(
        err.map(|e| e.setting),
        Some("CAPTURE_SANDBOX_WEBHOOKS".to_owned())
    );
    assert!(Config::load(&env(&[])).is_ok_and(|c| c.sandbox_webhooks));
}

#[test]
fn the_change_poll_is_read_in_milliseconds_and_never_zero() {
    let config = Config::load(&env(&[("CAPTURE_CHANGE_POLL_MS", "50")]));
    assert!(config.is_ok_and(|c| c.change_poll == std::time::Duration::from_millis(50)));
    let err = Config::load(&env(&[("CAPTURE_CHANGE_POLL_MS", "0")])).err();
    assert_eq!(
        err.map(|e| e.setting),
        Some("CAPTURE_CHANGE_POLL_MS".to_owned())
    );
}

#[test]
fn a_development_key_shorter_than_any_api_key_is_refused() {
    let err = Config::load(&env(&[("CAPTURE_DEV_API_KEY", "x")])).err();
    assert_eq!(
        err.map(|e| e.setting),
        Some("CAPTURE_DEV_API_KEY".to_owned())
    );
    let long = Config::load(&env(&[("CAPTURE_DEV_API_KEY", "dev_0123456789abcdef")]));
    assert!(long.is_ok_and(|c| c.dev_api_key.is_some()));
}

#[test]
fn misspelled_variables_are_named_and_provider_variables_are_not() {
    let config = Config::load(&env(&[
        ("CAPTURE_GRPC_ADR", "127.0.0.1:1"),
        ("CAPTURE_MAX_CONECTIONS", "10"),
        ("CAPTURE_PAYPAL_WEBHOOK_ID", "WH-1"),
        ("CAPTURE_LOG", "info"),
    ]));
    assert!(config.is_ok_and(|c| c.unknown_variables
        == [
            "CAPTURE_GRPC_ADR".to_owned(),
            "CAPTURE_MAX_CONECTIONS".to_owned()
        ]));
}

#[test]
fn a_log_filter_that_is_no_filter_is_refused() {
    let err = Config::load(&env(&[("CAPTURE_LOG", "nonsense===")])).err();
    assert_eq!(err.map(|e| e.setting), Some("CAPTURE_LOG".to_owned()));
}

#[test]
fn traces_are_exported_only_to_an_http_collector() {
    let config = Config::load(&env(&[]));
    assert!(config.is_ok_and(|c| c.otlp_endpoint.is_none()));
    let config = Config::load(&env(&[("CAPTURE_OTLP_ENDPOINT", "http://collector:4317")]));
    assert!(config.is_ok_and(|c| c.otlp_endpoint.as_deref() == Some("http://collector:4317")));
    for bad in [
        "collector:4317",
        "grpc://collector:4317",
        "http://",
        "https:///x",
    ] {
        let err = Config::load(&env(&[("CAPTURE_OTLP_ENDPOINT", bad)])).err();
        assert_eq!(
            err.map(|e| e.setting),
            Some("CAPTURE_OTLP_ENDPOINT".to_owned()),
            "{bad}"
        );
    }
}

#[test]
fn a_bad_value_in_the_file_is_refused_naming_its_key() {
    let dir = std::env::temp_dir().join(format!("capture-config-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("capture.toml");
    let written = std::fs::write(&path, "[providers]\nrequest_timeout_seconds = -3\n");
    assert!(written.is_ok());
    let path = path.display().to_string();
    let err = Config::load(&env(&[("CAPTURE_CONFIG", path.as_str())])).err();
    let _ = std::fs::remove_dir_all(&dir);
    let problem = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(problem.contains("request_timeout_seconds"), "{problem}");
}

/// Every setting the service reads from the environment, for the fuzzing below.
const SETTINGS: &[&str] = &[
    "CAPTURE_GRPC_ADDR",
    "CAPTURE_HTTP_ADDR",
    "CAPTURE_DATABASE_URL",
    "CAPTURE_MIGRATE_ON_START",
    "CAPTURE_LOG_FORMAT",
    "CAPTURE_LOG",
    "CAPTURE_OTLP_ENDPOINT",
    "CAPTURE_SANDBOX",
    "CAPTURE_CHANGE_POLL_MS",
    "CAPTURE_SANDBOX_WEBHOOKS",
    "CAPTURE_RECONCILE_INTERVAL_SECONDS",
    "CAPTURE_LEASE_SECONDS",
    "CAPTURE_DEV_API_KEY",
    "CAPTURE_SHUTDOWN_GRACE_SECONDS",
    "CAPTURE_PROVIDER_TIMEOUT_SECONDS",
    "CAPTURE_API_KEYS",
    "CAPTURE_MAX_CONNECTIONS",
    "CAPTURE_MAX_CAPTURES_IN_FLIGHT",
    "CAPTURE_DATABASE_MAX_CONNECTIONS",
    "CAPTURE_WEBHOOK_MAX_RECEIVING",
    "CAPTURE_PAYPAL_CLIENT_ID",
    "CAPTURE_PAYPAL_CLIENT_SECRET",
    "CAPTURE_PAYPAL_BASE_URL",
    "CAPTURE_CYBERSOURCE_SHARED_SECRET",
    "CAPTURE_STAX_API_KEY",
];

proptest::proptest! {
    /// Any values of any settings are taken or refused naming a setting; never a panic.
    #[test]
    fn any_settings_load_or_are_refused_by_name(
        values in proptest::collection::vec(
            (
                proptest::sample::select(SETTINGS),
                proptest::prop_oneof![
                    "[0-9]{0,25}",
                    "-[0-9]{1,5}",
                    "(sqlite:|postgres://|http://)[ -~]{0,30}",
                    "[a-z]{1,12}(:[0-9a-f]{64})?(,[a-z]{1,8}:[0-9a-f]{0,64}){0,2}",
                    proptest::prelude::any::<String>(),
                ],
            ),
            0..8,
        ),
    ) {
        let env: HashMap<String, String> =
            values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        if let Err(err) = Config::load(&env) {
            proptest::prop_assert!(!err.setting.is_empty());
        }
    }
}

#[test]
fn grpc_tls_and_client_certificate_identities_are_read_and_checked() -> Result<(), ConfigError> {
    let config = Config::load(&env(&[
        ("CAPTURE_GRPC_TLS_CERT", "/tls/tls.crt"),
        ("CAPTURE_GRPC_TLS_KEY", "/tls/tls.key"),
        ("CAPTURE_GRPC_TLS_CLIENT_CA", "/tls/clients-ca.crt"),
        (
            "CAPTURE_CLIENT_CERT_TENANTS",
            "orders.acme.internal=acme, billing.beta.internal=beta",
        ),
    ]))?;
    assert_eq!(
        config.grpc_tls,
        Some(GrpcTls {
            cert_file: "/tls/tls.crt".into(),
            key_file: "/tls/tls.key".into(),
            client_ca_file: Some("/tls/clients-ca.crt".into()),
        })
    );
    assert_eq!(config.client_certificates.len(), 2);
    assert_eq!(
        config.client_certificates[1].dns_name,
        "billing.beta.internal"
    );
    assert_eq!(config.client_certificates[1].tenant, "beta");

    let refused = |pairs: &[(&str, &str)]| Config::load(&env(pairs)).err().map(|e| e.setting);
    // A certificate without its key.
    assert_eq!(
        refused(&[("CAPTURE_GRPC_TLS_CERT", "/tls/tls.crt")]),
        Some("CAPTURE_GRPC_TLS_CERT".to_owned())
    );
    // Identities without the CA that signs them, or that are no DNS names.
    let tls = [
        ("CAPTURE_GRPC_TLS_CERT", "/tls/tls.crt"),
        ("CAPTURE_GRPC_TLS_KEY", "/tls/tls.key"),
    ];
    let mut without_ca = tls.to_vec();
    without_ca.push(("CAPTURE_CLIENT_CERT_TENANTS", "orders.acme.internal=acme"));
    assert_eq!(
        refused(&without_ca),
        Some("CAPTURE_CLIENT_CERT_TENANTS".to_owned())
    );
    for bad in [
        "not a name=acme",
        "orders.acme.internal=",
        "orders.acme.internal",
    ] {
        let mut pairs = tls.to_vec();
        pairs.push(("CAPTURE_GRPC_TLS_CLIENT_CA", "/tls/ca.crt"));
        pairs.push(("CAPTURE_CLIENT_CERT_TENANTS", bad));
        assert_eq!(
            refused(&pairs),
            Some("CAPTURE_CLIENT_CERT_TENANTS".to_owned()),
            "{bad}"
        );
    }
    Ok(())
}
