//! What `capture-service check-config` prints: the effective configuration as a person reads
//! it, secrets redacted, and what each provider will be served by.

use std::fmt::Write;

use super::{Config, SandboxMode};
use crate::domain::Provider;

/// A provider account as the summary names it.
pub struct AccountLine {
    pub provider: Provider,
    pub name: String,
    pub base_url: String,
}

impl Config {
    /// The configuration in a few readable lines; `accounts` are the configured provider
    /// accounts. No secret is printed: the database URL's password is redacted, API keys are
    /// named by tenant only.
    pub fn summary(&self, accounts: &[AccountLine]) -> String {
        let mut out = String::new();
        let sandbox_on = self.sandbox.enabled(!accounts.is_empty());
        let _ = writeln!(out, "gRPC               {}", self.grpc_addr);
        let _ = writeln!(out, "HTTP               {}", self.http_addr);
        let _ = writeln!(out, "database           {}", self.database_url.redacted());
        let _ = writeln!(
            out,
            "migrations         {}",
            if self.migrate_on_start {
                "applied at start"
            } else {
                "not applied at start (run `capture-service migrate`)"
            }
        );
        let _ = writeln!(
            out,
            "log                {} ({:?})",
            self.log_filter, self.log_format
        );
        let _ = writeln!(
            out,
            "traces             {}",
            match &self.otlp_endpoint {
                Some(endpoint) => format!("exported over OTLP/gRPC to {endpoint}"),
                None => "not exported (CAPTURE_OTLP_ENDPOINT unset)".to_owned(),
            }
        );
        let tls = match &self.grpc_tls {
            None => "off: plaintext gRPC (CAPTURE_GRPC_TLS_CERT unset)".to_owned(),
            Some(tls) => match &tls.client_ca_file {
                None => format!("on ({}), no client certificates", tls.cert_file),
                Some(ca) => format!("on ({}), client certificates signed by {ca}", tls.cert_file),
            },
        };
        let _ = writeln!(out, "gRPC TLS           {tls}");
        let identities: Vec<String> = (self.client_certificates.iter())
            .map(|c| format!("{} as {}", c.dns_name, c.tenant))
            .collect();
        if !identities.is_empty() {
            let _ = writeln!(out, "client certs       {}", identities.join(", "));
        }
        let tenants: Vec<&str> = self.api_keys.iter().map(|k| k.tenant.as_str()).collect();
        let keys = match (tenants.is_empty(), sandbox_on) {
            (false, _) => format!("tenants {} (digests not shown)", tenants.join(", ")),
            (true, true) => "none: the development key (tenant dev) is accepted".to_owned(),
            (true, false) if !identities.is_empty() => {
                "none: only client certificates authenticate".to_owned()
            }
            (true, false) => "none: every call will be refused".to_owned(),
        };
        let _ = writeln!(out, "API keys           {keys}");
        let mode = match self.sandbox {
            SandboxMode::Auto => "auto",
            SandboxMode::On => "on",
            SandboxMode::Off => "off",
        };
        let _ = writeln!(
            out,
            "sandbox            {mode}: {}",
            if sandbox_on {
                "on, the built-in emulator serves every provider without an account (no real money moves)"
            } else {
                "off, no provider is emulated"
            }
        );
        let _ = writeln!(out, "providers");
        for provider in Provider::ALL {
            let mine: Vec<&AccountLine> =
                accounts.iter().filter(|a| a.provider == provider).collect();
            let served = if !mine.is_empty() {
                let named: Vec<String> = mine
                    .iter()
                    .map(|a| format!("{} at {}", a.name, a.base_url))
                    .collect();
                format!("configured: {}", named.join("; "))
            } else if sandbox_on {
                "emulated by the built-in sandbox".to_owned()
            } else {
                "not configured: captures are refused (PROVIDER_NOT_CONFIGURED)".to_owned()
            };
            let _ = writeln!(out, "  {:<16} {served}", provider.as_str());
        }
        let r = &self.reconcile;
        let _ = writeln!(
            out,
            "reconciler         every {} s, unheld captures after {} s, at most {} looks; leases {} s",
            r.interval.as_secs(),
            r.min_age.as_secs(),
            r.max_attempts,
            r.lease.as_secs()
        );
        let _ = writeln!(
            out,
            "provider calls     {} s per attempt, {} retries",
            self.providers.request_timeout.as_secs(),
            self.providers.max_retries
        );
        let _ = writeln!(out, "limits");
        let mut limits = self.limits;
        for (name, value) in limits.fields_mut() {
            let _ = writeln!(out, "  {name} = {value}");
        }
        for name in &self.unknown_variables {
            let _ = writeln!(
                out,
                "warning: unknown setting {name}, ignored (a misspelling?)"
            );
        }
        out
    }
}
