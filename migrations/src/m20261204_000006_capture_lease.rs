//! `captures.lease_until`: until when someone — the request that made or resumed the capture, or
//! one replica's reconciler — is calling the provider about it. No one else looks at an open
//! capture before that time has passed, so with several replicas two never look at one capture
//! at once, nor at one whose own request is still in flight.

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
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Captures::Table)
                    .add_column(ColumnDef::new(Captures::LeaseUntil).big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Captures::Table)
                    .drop_column(Captures::LeaseUntil)
                    .to_owned(),
            )
            .await
    }
}
