//! Bookkeeping for the reconciler: when to look at an open capture again, and how often it has.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_reconciliation"
    }
}

#[derive(DeriveIden)]
enum Captures {
    Table,
    ReconcileAfter,
    ReconcileAttempts,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Captures::Table)
                    .add_column(
                        ColumnDef::new(Captures::ReconcileAfter)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Captures::Table)
                    .add_column(
                        ColumnDef::new(Captures::ReconcileAttempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Captures::ReconcileAfter, Captures::ReconcileAttempts] {
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
