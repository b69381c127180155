//! `webhook_events`: every authenticated provider notification, kept as received (card numbers
//! masked) with the ids it names, and which capture it was matched to. A notification for a
//! capture the service does not know yet (it may arrive before our own commit of the answer)
//! waits here, unmatched, until the capture appears. Unique (provider, account, event_id): a repeated
//! delivery is recognized.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000005_webhook_events"
    }
}

#[derive(DeriveIden)]
enum WebhookEvents {
    Table,
    Id,
    Provider,
    ProviderAccount,
    EventId,
    EventType,
    /// `signed` (verified; its body is trusted) or `hint` (only a reason to look).
    Trust,
    ProviderCaptureId,
    AuthorizationId,
    Reference,
    Body,
    ReceiveTime,
    CaptureId,
    MatchTime,
}

#[derive(DeriveIden)]
enum Captures {
    Table,
    Provider,
    ProviderAccount,
    ProviderCaptureId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |c: WebhookEvents| ColumnDef::new(c).text().not_null().to_owned();
        let text_null = |c: WebhookEvents| ColumnDef::new(c).text().null().to_owned();
        manager
            .create_table(
                Table::create()
                    .table(WebhookEvents::Table)
                    .col(
                        ColumnDef::new(WebhookEvents::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(text(WebhookEvents::Provider))
                    .col(text(WebhookEvents::ProviderAccount))
                    .col(text(WebhookEvents::EventId))
                    .col(text(WebhookEvents::EventType))
                    .col(text(WebhookEvents::Trust))
                    .col(text_null(WebhookEvents::ProviderCaptureId))
                    .col(text_null(WebhookEvents::AuthorizationId))
                    .col(text_null(WebhookEvents::Reference))
                    .col(text(WebhookEvents::Body))
                    .col(
                        ColumnDef::new(WebhookEvents::ReceiveTime)
                            .big_integer()
                            .not_null(),
                    )
                    .col(text_null(WebhookEvents::CaptureId))
                    .col(
                        ColumnDef::new(WebhookEvents::MatchTime)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_events_provider_event_id")
                    .table(WebhookEvents::Table)
                    .col(WebhookEvents::Provider)
                    .col(WebhookEvents::ProviderAccount)
                    .col(WebhookEvents::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Unmatched events are looked up by the ids a capture gets.
        for (name, column) in [
            ("webhook_events_capture", WebhookEvents::ProviderCaptureId),
            (
                "webhook_events_authorization",
                WebhookEvents::AuthorizationId,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(WebhookEvents::Table)
                        .col(WebhookEvents::Provider)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        // The passes go round the events still waiting for their capture.
        manager
            .create_index(
                Index::create()
                    .name("webhook_events_waiting")
                    .table(WebhookEvents::Table)
                    .col(WebhookEvents::CaptureId)
                    .col(WebhookEvents::Id)
                    .to_owned(),
            )
            .await?;
        // Events name captures by the provider's id.
        manager
            .create_index(
                Index::create()
                    .name("captures_provider_capture_id")
                    .table(Captures::Table)
                    .col(Captures::Provider)
                    .col(Captures::ProviderAccount)
                    .col(Captures::ProviderCaptureId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("captures_provider_capture_id")
                    .table(Captures::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookEvents::Table).to_owned())
            .await
    }
}
