//! What configuration hands the providers: each provider's `[[providers.<name>]]` tables from
//! the file, and the `CAPTURE_*` variables. Configuration knows no provider; each provider's
//! account type reads its own (see `providers::account`).

use std::collections::BTreeMap;
use std::fmt;

/// The providers' raw settings. `Debug` shows names only: the values hold secrets.
#[derive(Clone, Default, PartialEq)]
pub struct ProviderSources {
    tables: BTreeMap<String, Vec<toml::Table>>,
    vars: BTreeMap<String, String>,
}

impl ProviderSources {
    /// The `[[providers.<provider>]]` tables, in file order.
    pub fn tables(&self, provider: &str) -> &[toml::Table] {
        self.tables
            .get(provider)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The providers the file has tables for.
    pub fn table_names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// A `CAPTURE_*` variable, if set and not empty.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Sets a variable (the environment's, or one a test or the sandbox supplies).
    pub fn set_var(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    pub(super) fn set_tables(&mut self, provider: String, tables: Vec<toml::Table>) {
        self.tables.insert(provider, tables);
    }

    /// Sources holding only `vars`.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        ProviderSources {
            tables: BTreeMap::new(),
            vars: vars.into_iter().collect(),
        }
    }
}

impl fmt::Debug for ProviderSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSources")
            .field(
                "tables",
                &self
                    .tables
                    .iter()
                    .map(|(name, tables)| (name, tables.len()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}
