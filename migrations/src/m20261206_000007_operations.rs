//! Operations beside captures, and what is released of an authorization.
//!
//! `captures.operation`: a row is a capture or a release of an authorization's remainder; both
//! share the durable path (recorded before the call, resolved in one transaction, settled by the
//! reconciler under a lease, audited, watched). Rows written before are captures.
//! `captures.refunded_minor`: the refunded total a provider's notice reported, in the captured
//! currency. `authorizations.released_minor` / `released_by` / `release_id`: what was released of
//! the authorization, how (`VOID_CALL`, `PROVIDER_AUTOMATIC`, `FINAL_CAPTURE`), and by which
//! release or capture.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000007_operations"
    }
}

#[derive(DeriveIden)]
enum Captures {
    Table,
    Operation,
    RefundedMinor,
}

#[derive(DeriveIden)]
enum Authorizations {
    Table,
    ReleasedMinor,
    ReleasedBy,
    ReleaseId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let columns = [
            (
                Captures::Table.into_iden(),
                ColumnDef::new(Captures::Operation)
                    .text()
                    .not_null()
                    .default("capture")
                    .to_owned(),
            ),
            (
                Captures::Table.into_iden(),
                ColumnDef::new(Captures::RefundedMinor)
                    .big_integer()
                    .null()
                    .to_owned(),
            ),
            (
                Authorizations::Table.into_iden(),
                ColumnDef::new(Authorizations::ReleasedMinor)
                    .big_integer()
                    .null()
                    .to_owned(),
            ),
            (
                Authorizations::Table.into_iden(),
                ColumnDef::new(Authorizations::ReleasedBy)
                    .text()
                    .null()
                    .to_owned(),
            ),
            (
                Authorizations::Table.into_iden(),
                ColumnDef::new(Authorizations::ReleaseId)
                    .text()
                    .null()
                    .to_owned(),
            ),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            (Captures::Table.into_iden(), Captures::Operation.into_iden()),
            (
                Captures::Table.into_iden(),
                Captures::RefundedMinor.into_iden(),
            ),
            (
                Authorizations::Table.into_iden(),
                Authorizations::ReleasedMinor.into_iden(),
            ),
            (
                Authorizations::Table.into_iden(),
                Authorizations::ReleasedBy.into_iden(),
            ),
            (
                Authorizations::Table.into_iden(),
                Authorizations::ReleaseId.into_iden(),
            ),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
