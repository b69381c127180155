//! Provider accounts from configuration: each provider reads its own `[[providers.<name>]]`
//! tables and `CAPTURE_<NAME>_*` variables through the registry table.

use std::collections::HashMap;
use std::sync::Arc;

use capture_service::config::{Config, SandboxMode};
use capture_service::domain::Provider;
use capture_service::providers::{load_accounts, paypal, Account, PROVIDERS};

fn config(file: &str, vars: &[(&str, &str)]) -> Result<Config, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("capture.toml");
    std::fs::write(&path, file)?;
    let mut env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.insert("CAPTURE_CONFIG".into(), path.to_string_lossy().into_owned());
    Ok(Config::load(&env)?)
}

fn accounts_of(accounts: &[Arc<dyn Account>], provider: Provider) -> Vec<(&str, &str)> {
    accounts
        .iter()
        .filter(|a| a.provider() == provider)
        .map(|a| (a.name(), a.base_url()))
        .collect()
}

#[test]
fn the_file_holds_several_accounts_and_the_environment_wins(
) -> Result<(), Box<dyn std::error::Error>> {
    let config = config(
        r#"
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
        &[
            ("CAPTURE_STAX_API_KEY", "env-stax-key"),
            ("CAPTURE_STAX_BASE_URL", "http://127.0.0.1:9"),
        ],
    )?;
    let accounts = load_accounts(&config.providers.sources)?;
    assert_eq!(
        accounts_of(&accounts, Provider::Paypal),
        [
            ("eu", "https://api-m.paypal.com"),
            ("us", paypal::PaypalAccount::SANDBOX_BASE_URL)
        ]
    );
    // The environment's account replaces the file's of the same name.
    assert_eq!(
        accounts_of(&accounts, Provider::Stax),
        [("default", "http://127.0.0.1:9")]
    );
    let printed = format!("{accounts:?}");
    assert!(!printed.contains("eu-secret") && !printed.contains("stax-key"));
    Ok(())
}

#[test]
fn credentials_in_the_environment_turn_the_automatic_sandbox_off_and_never_print(
) -> Result<(), Box<dyn std::error::Error>> {
    let config = config(
        "",
        &[
            ("CAPTURE_PAYPAL_CLIENT_ID", "client"),
            ("CAPTURE_PAYPAL_CLIENT_SECRET", "hunter2"),
        ],
    )?;
    let accounts = load_accounts(&config.providers.sources)?;
    assert_eq!(accounts_of(&accounts, Provider::Paypal)[0].0, "default");
    assert!(!SandboxMode::Auto.enabled(!accounts.is_empty()));
    assert!(!format!("{accounts:?} {config:?}").contains("hunter2"));
    Ok(())
}

#[test]
fn bad_accounts_are_named() -> Result<(), Box<dyn std::error::Error>> {
    let setting =
        |file: &str, vars: &[(&str, &str)]| -> Result<String, Box<dyn std::error::Error>> {
            let config = config(file, vars)?;
            Ok(load_accounts(&config.providers.sources)
                .err()
                .map(|e| e.setting)
                .unwrap_or_default())
        };
    assert_eq!(
        setting("[[providers.acme]]\nname = \"x\"\n", &[])?,
        "providers.acme"
    );
    assert_eq!(
        setting("", &[("CAPTURE_PAYPAL_CLIENT_ID", "id")])?,
        "CAPTURE_PAYPAL_CLIENT_SECRET"
    );
    assert_eq!(
        setting(
            "",
            &[
                ("CAPTURE_CYBERSOURCE_MERCHANT_ID", "m"),
                ("CAPTURE_CYBERSOURCE_KEY_ID", "k"),
                ("CAPTURE_CYBERSOURCE_SHARED_SECRET", "not base64!"),
            ]
        )?,
        "providers.cybersource.shared_secret"
    );
    assert_eq!(
        setting(
            "[[providers.stax]]\nname = \"a\"\napi_key = \"k\"\nbase_url = \"ftp://x\"\n",
            &[]
        )?,
        "providers.stax.base_url"
    );
    assert_eq!(
        setting("[[providers.stax]]\nname = \"a\"\napi_key = \"k\"\n[[providers.stax]]\nname = \"a\"\napi_key = \"k\"\n", &[])?,
        "providers.stax.name"
    );
    Ok(())
}

#[test]
fn every_provider_is_registered_once() {
    for provider in Provider::ALL {
        assert_eq!(
            PROVIDERS.iter().filter(|r| r.provider == provider).count(),
            1,
            "{provider}"
        );
    }
}

#[test]
fn cybersources_search_grace_comes_from_its_variable_and_defaults_to_ten_minutes(
) -> Result<(), Box<dyn std::error::Error>> {
    use capture_service::providers::account::from_variables;
    use capture_service::providers::cybersource::CybersourceAccount;
    let vars = [
        ("CAPTURE_CYBERSOURCE_MERCHANT_ID", "m"),
        ("CAPTURE_CYBERSOURCE_KEY_ID", "k"),
        ("CAPTURE_CYBERSOURCE_SHARED_SECRET", "c2VjcmV0"),
    ];
    let default = from_variables::<CybersourceAccount>(&config("", &vars)?.providers.sources)?;
    assert_eq!(default.search_grace_seconds, 600);
    let set = [
        &vars[..],
        &[("CAPTURE_CYBERSOURCE_SEARCH_GRACE_SECONDS", "30")],
    ]
    .concat();
    let set = from_variables::<CybersourceAccount>(&config("", &set)?.providers.sources)?;
    assert_eq!(set.search_grace_seconds, 30);
    let bad = [
        &vars[..],
        &[("CAPTURE_CYBERSOURCE_SEARCH_GRACE_SECONDS", "soon")],
    ]
    .concat();
    let refused = from_variables::<CybersourceAccount>(&config("", &bad)?.providers.sources);
    assert_eq!(
        refused.err().map(|e| e.setting),
        Some("CAPTURE_CYBERSOURCE_SEARCH_GRACE_SECONDS".to_owned())
    );
    Ok(())
}
