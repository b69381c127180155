//! Hand-written statements, made once per backend: the store's hot statements are written
//! with `$1`, `$2`… placeholders and kept as PostgreSQL and SQLite write them, so no call
//! builds SQL (sea-orm's query builder formats every statement anew).

use sea_orm::{DbBackend, Statement};

/// One statement as each backend writes it, made once.
pub(crate) struct Sql {
    postgres: String,
    sqlite: String,
    /// How many values it binds.
    placeholders: usize,
}

impl Sql {
    /// `sql` with `$1`, `$2`… placeholders. Each is used once, in order, so SQLite's
    /// positional `?` binds the same values.
    pub fn new(sql: String) -> Sql {
        let sqlite = positional_placeholders(&sql);
        Sql {
            placeholders: sqlite.matches('?').count(),
            sqlite,
            postgres: sql,
        }
    }

    pub fn statement(&self, backend: DbBackend, values: Vec<sea_orm::Value>) -> Statement {
        // A value missing binds NULL on SQLite and matches nothing, silently: every test
        // that runs a statement checks its count.
        debug_assert_eq!(
            values.len(),
            self.placeholders,
            "values for {}",
            self.postgres
        );
        let sql = match backend {
            DbBackend::Postgres => &self.postgres,
            _ => &self.sqlite,
        };
        Statement::from_sql_and_values(backend, sql.as_str(), values)
    }
}

fn positional_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// `sql` (with `$1`, `$2`… placeholders) as `backend` writes it, for a statement whose text
/// differs from call to call (a list page's filters) or that runs once (the benchmark's
/// ceilings); a statement run often as it is is a static [`Sql`].
pub fn statement(backend: DbBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    Sql::new(sql.to_owned()).statement(backend, values)
}
