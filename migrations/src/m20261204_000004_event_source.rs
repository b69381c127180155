//! Who made each change of a capture: `api` (a caller's request) or `reconciler` (the service's
//! own look at the provider); provider notifications will add `webhook`. Rows from before this
//! column were not told apart: they read as `api`.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000004_event_source"
    }
}

#[derive(DeriveIden)]
enum CaptureEvents {
    Table,
    Source,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CaptureEvents::Table)
                    .add_column(
                        ColumnDef::new(CaptureEvents::Source)
                            .string()
                            .not_null()
                            .default("api"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CaptureEvents::Table)
                    .drop_column(CaptureEvents::Source)
                    .to_owned(),
            )
            .await
    }
}
