//! The five tables: captures, their breakdowns, platform fees, audit events, and the
//! per-authorization ledger.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_create_tables"
    }
}

#[derive(DeriveIden)]
enum Captures {
    Table,
    Id,
    Tenant,
    RequestId,
    RequestFingerprint,
    Provider,
    ProviderAccount,
    AuthorizationId,
    CurrencyCode,
    AmountMinor,
    AuthorizedAmountMinor,
    ReservedMinor,
    FinalCapture,
    InvoiceId,
    NoteToPayer,
    SoftDescriptor,
    Reference,
    Metadata,
    DisbursementMode,
    Status,
    StatusReason,
    ProviderReason,
    ProviderCaptureId,
    ProviderStatus,
    CapturedCurrencyCode,
    CapturedAmountMinor,
    NetworkReference,
    SellerProtection,
    ProcessorResponse,
    ErrorCode,
    ErrorMessage,
    ErrorDebugId,
    ErrorHttpStatus,
    ProviderResponse,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum SellerReceivableBreakdowns {
    Table,
    CaptureId,
    GrossCurrency,
    GrossMinor,
    ProviderFeeCurrency,
    ProviderFeeMinor,
    ProviderFeeReceivableCurrency,
    ProviderFeeReceivableMinor,
    NetCurrency,
    NetMinor,
    ReceivableCurrency,
    ReceivableMinor,
    ExchangeSourceCurrency,
    ExchangeTargetCurrency,
    ExchangeRate,
}

#[derive(DeriveIden)]
enum PlatformFees {
    Table,
    Id,
    CaptureId,
    Source,
    CurrencyCode,
    AmountMinor,
    PayeeEmail,
    PayeeMerchantId,
}

#[derive(DeriveIden)]
enum CaptureEvents {
    Table,
    Id,
    CaptureId,
    Kind,
    Status,
    Detail,
    CreateTime,
}

#[derive(DeriveIden)]
enum Authorizations {
    Table,
    Provider,
    ProviderAccount,
    AuthorizationId,
    CurrencyCode,
    AuthorizedMinor,
    HeldMinor,
    CaptureCount,
    ClosedBy,
    UpdateTime,
}

fn text(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().not_null().to_owned()
}

fn text_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).text().null().to_owned()
}

fn bigint(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().to_owned()
}

fn bigint_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).big_integer().null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Captures::Table)
                    .col(text(Captures::Id).primary_key())
                    .col(text(Captures::Tenant))
                    .col(text(Captures::RequestId))
                    .col(text(Captures::RequestFingerprint))
                    .col(text(Captures::Provider))
                    .col(text(Captures::ProviderAccount))
                    .col(text(Captures::AuthorizationId))
                    .col(text_null(Captures::CurrencyCode))
                    .col(bigint_null(Captures::AmountMinor))
                    .col(bigint_null(Captures::AuthorizedAmountMinor))
                    .col(bigint(Captures::ReservedMinor))
                    .col(ColumnDef::new(Captures::FinalCapture).boolean().not_null())
                    .col(text_null(Captures::InvoiceId))
                    .col(text_null(Captures::NoteToPayer))
                    .col(text_null(Captures::SoftDescriptor))
                    .col(text_null(Captures::Reference))
                    .col(text(Captures::Metadata))
                    .col(text_null(Captures::DisbursementMode))
                    .col(text(Captures::Status))
                    .col(text_null(Captures::StatusReason))
                    .col(text_null(Captures::ProviderReason))
                    .col(text_null(Captures::ProviderCaptureId))
                    .col(text_null(Captures::ProviderStatus))
                    .col(text_null(Captures::CapturedCurrencyCode))
                    .col(bigint_null(Captures::CapturedAmountMinor))
                    .col(text_null(Captures::NetworkReference))
                    .col(text_null(Captures::SellerProtection))
                    .col(text_null(Captures::ProcessorResponse))
                    .col(text_null(Captures::ErrorCode))
                    .col(text_null(Captures::ErrorMessage))
                    .col(text_null(Captures::ErrorDebugId))
                    .col(ColumnDef::new(Captures::ErrorHttpStatus).integer().null())
                    .col(text_null(Captures::ProviderResponse))
                    .col(bigint(Captures::CreateTime))
                    .col(bigint(Captures::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("captures_tenant_request_id")
                    .table(Captures::Table)
                    .col(Captures::Tenant)
                    .col(Captures::RequestId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("captures_tenant_create_time_id")
                    .table(Captures::Table)
                    .col(Captures::Tenant)
                    .col(Captures::CreateTime)
                    .col(Captures::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("captures_authorization")
                    .table(Captures::Table)
                    .col(Captures::Provider)
                    .col(Captures::ProviderAccount)
                    .col(Captures::AuthorizationId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("captures_status_update_time")
                    .table(Captures::Table)
                    .col(Captures::Status)
                    .col(Captures::UpdateTime)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SellerReceivableBreakdowns::Table)
                    .col(text(SellerReceivableBreakdowns::CaptureId).primary_key())
                    .col(text_null(SellerReceivableBreakdowns::GrossCurrency))
                    .col(bigint_null(SellerReceivableBreakdowns::GrossMinor))
                    .col(text_null(SellerReceivableBreakdowns::ProviderFeeCurrency))
                    .col(bigint_null(SellerReceivableBreakdowns::ProviderFeeMinor))
                    .col(text_null(
                        SellerReceivableBreakdowns::ProviderFeeReceivableCurrency,
                    ))
                    .col(bigint_null(
                        SellerReceivableBreakdowns::ProviderFeeReceivableMinor,
                    ))
                    .col(text_null(SellerReceivableBreakdowns::NetCurrency))
                    .col(bigint_null(SellerReceivableBreakdowns::NetMinor))
                    .col(text_null(SellerReceivableBreakdowns::ReceivableCurrency))
                    .col(bigint_null(SellerReceivableBreakdowns::ReceivableMinor))
                    .col(text_null(
                        SellerReceivableBreakdowns::ExchangeSourceCurrency,
                    ))
                    .col(text_null(
                        SellerReceivableBreakdowns::ExchangeTargetCurrency,
                    ))
                    .col(text_null(SellerReceivableBreakdowns::ExchangeRate))
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                SellerReceivableBreakdowns::Table,
                                SellerReceivableBreakdowns::CaptureId,
                            )
                            .to(Captures::Table, Captures::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PlatformFees::Table)
                    .col(
                        ColumnDef::new(PlatformFees::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(text(PlatformFees::CaptureId))
                    .col(text(PlatformFees::Source))
                    .col(text(PlatformFees::CurrencyCode))
                    .col(bigint(PlatformFees::AmountMinor))
                    .col(text_null(PlatformFees::PayeeEmail))
                    .col(text_null(PlatformFees::PayeeMerchantId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PlatformFees::Table, PlatformFees::CaptureId)
                            .to(Captures::Table, Captures::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("platform_fees_capture_id")
                    .table(PlatformFees::Table)
                    .col(PlatformFees::CaptureId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CaptureEvents::Table)
                    .col(
                        ColumnDef::new(CaptureEvents::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(text(CaptureEvents::CaptureId))
                    .col(text(CaptureEvents::Kind))
                    .col(text(CaptureEvents::Status))
                    .col(text(CaptureEvents::Detail))
                    .col(bigint(CaptureEvents::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CaptureEvents::Table, CaptureEvents::CaptureId)
                            .to(Captures::Table, Captures::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("capture_events_capture_id")
                    .table(CaptureEvents::Table)
                    .col(CaptureEvents::CaptureId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Authorizations::Table)
                    .col(text(Authorizations::Provider))
                    .col(text(Authorizations::ProviderAccount))
                    .col(text(Authorizations::AuthorizationId))
                    .col(text_null(Authorizations::CurrencyCode))
                    .col(bigint_null(Authorizations::AuthorizedMinor))
                    .col(bigint(Authorizations::HeldMinor))
                    .col(
                        ColumnDef::new(Authorizations::CaptureCount)
                            .integer()
                            .not_null(),
                    )
                    .col(text_null(Authorizations::ClosedBy))
                    .col(bigint(Authorizations::UpdateTime))
                    .primary_key(
                        Index::create()
                            .col(Authorizations::Provider)
                            .col(Authorizations::ProviderAccount)
                            .col(Authorizations::AuthorizationId),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Authorizations::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(CaptureEvents::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PlatformFees::Table).to_owned())
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(SellerReceivableBreakdowns::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Captures::Table).to_owned())
            .await?;
        Ok(())
    }
}
