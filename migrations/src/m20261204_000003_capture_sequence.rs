//! Each capture's place among the captures of its authorization (1 for the first): Cybersource's
//! `captureSequenceNumber`, kept so that a re-sent capture carries the number it was first sent
//! with. Captures recorded before this column existed count as first ones.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000003_capture_sequence"
    }
}

#[derive(DeriveIden)]
enum Captures {
    Table,
    CaptureSequence,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Captures::Table)
                    .add_column(
                        ColumnDef::new(Captures::CaptureSequence)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Captures::Table)
                    .drop_column(Captures::CaptureSequence)
                    .to_owned(),
            )
            .await
    }
}
