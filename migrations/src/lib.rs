//! Schema migrations of capture-service, one set for SQLite and PostgreSQL.
//!
//! Money is stored as integer minor units (`BIGINT`) beside its ISO 4217 code, never as a
//! floating-point column; timestamps as integer microseconds since the Unix epoch (UTC), so
//! ordering and keyset pagination behave identically on both databases.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_tables;
mod m20261123_000002_reconciliation;
mod m20261204_000003_capture_sequence;
mod m20261204_000004_event_source;
mod m20261204_000005_webhook_events;
mod m20261204_000006_capture_lease;
mod m20261206_000007_operations;

/// Runs at `serve` and by `capture-service migrate`.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_tables::Migration),
            Box::new(m20261123_000002_reconciliation::Migration),
            Box::new(m20261204_000003_capture_sequence::Migration),
            Box::new(m20261204_000004_event_source::Migration),
            Box::new(m20261204_000005_webhook_events::Migration),
            Box::new(m20261204_000006_capture_lease::Migration),
            Box::new(m20261206_000007_operations::Migration),
        ]
    }
}
