//! `captures.lease_until`: until when someone — the request that made or resumed the capture, or
//! one replica's reconciler — is calling the provider about it. No one else looks at an open
//! capture before that time has passed, so with several replicas two never look at one capture
//! at once, nor at one whose own request is still in flight. `captures.lease_owner` names the
//! process that holds it: a lease only keeps *other* processes away (within one process, its
//! in-flight table does), so a request whose answer could not be recorded does not lock its
//! own process's retry out until the lease runs out.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000006_capture_lease"
    }
}

#[derive(DeriveIden)]
enum Captures {
    Table,
    LeaseUntil,
    LeaseOwner,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Captures::Table)
                    .add_column(ColumnDef::new(Captures::LeaseUntil).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Captures::Table)
                    .add_column(ColumnDef::new(Captures::LeaseOwner).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Captures::LeaseUntil, Captures::LeaseOwner] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Captures::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
