//! Provider notifications: each authenticated delivery is kept (`webhook_events`) before it is
//! acted on, so none is lost; it is then matched to the capture it names and applied, in one
//! transaction with the mark that it was. One the service cannot match yet waits, unmatched,
//! for its capture.

use std::sync::LazyLock;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::ActiveValue::{NotSet, Set};
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::captures::{EventSource, Resolution};
use super::entities::webhook_events;
use super::read;
use super::resolve::resolve_in;
use super::sql::Sql;
use super::writer::{self, Written};
use super::{now_micros, Store, StoreError};
use crate::domain::notice::{CaptureKeys, Trust, WebhookEvent};
use crate::domain::{pan, CaptureRecord, Provider};

/// A delivery about to be kept.
pub struct NewWebhook<'a> {
    pub provider: Provider,
    pub account: &'a str,
    pub trust: Trust,
    pub event: &'a WebhookEvent,
    pub body: &'a [u8],
}

/// A kept delivery.
#[derive(Debug, Clone)]
pub struct StoredWebhook {
    pub id: i64,
    pub provider: Provider,
    pub account: String,
    pub trust: Trust,
    /// The body as received, card numbers masked.
    pub body: String,
    /// The capture it was matched to, if it was.
    pub capture_id: Option<String>,
}

impl StoredWebhook {
    fn from_row(row: webhook_events::Model) -> Result<Self, StoreError> {
        let corrupt = |problem: String| StoreError::Corrupt {
            id: format!("webhook event {}", row.id),
            problem,
        };
        Ok(StoredWebhook {
            id: row.id,
            provider: Provider::parse(&row.provider)
                .ok_or_else(|| corrupt(format!("provider {:?}", row.provider)))?,
            trust: Trust::parse(&row.trust)
                .ok_or_else(|| corrupt(format!("trust {:?}", row.trust)))?,
            account: row.provider_account,
            body: row.body,
            capture_id: row.capture_id,
        })
    }
}

impl Store {
    /// Keeps a delivery: the kept event, and whether this delivery is the one kept (a delivery
    /// of an event already kept for this account returns the first).
    pub async fn keep_webhook(
        &self,
        new: &NewWebhook<'_>,
    ) -> Result<(StoredWebhook, bool), StoreError> {
        let mut body = String::from_utf8_lossy(new.body).into_owned();
        if pan::contains_card_number(&body) {
            body = pan::mask_card_numbers(&body).into_owned();
        }
        let keys = &new.event.keys;
        let row = webhook_events::ActiveModel {
            id: NotSet,
            provider: Set(new.provider.as_str().to_owned()),
            provider_account: Set(new.account.to_owned()),
            event_id: Set(new.event.event_id.clone()),
            event_type: Set(new.event.event_type.clone()),
            trust: Set(new.trust.as_str().to_owned()),
            provider_capture_id: Set(keys.provider_capture_id.clone()),
            authorization_id: Set(keys.authorization_id.clone()),
            reference: Set(keys.reference.clone()),
            body: Set(body),
            receive_time: Set(now_micros()),
            capture_id: Set(None),
            match_time: Set(None),
        };
        let inserted = {
            let _turn = self.write_turn().await?;
            webhook_events::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([
                        webhook_events::Column::Provider,
                        webhook_events::Column::ProviderAccount,
                        webhook_events::Column::EventId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await?
        };
        let kept = webhook_events::Entity::find()
            .filter(webhook_events::Column::Provider.eq(new.provider.as_str()))
            .filter(webhook_events::Column::ProviderAccount.eq(new.account))
            .filter(webhook_events::Column::EventId.eq(new.event.event_id.as_str()))
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::Missing(format!("webhook event {}", new.event.event_id)))?;
        Ok((StoredWebhook::from_row(kept)?, inserted == 1))
    }

    /// The capture of `account` at `provider` an event names: by the provider's capture id;
    /// else by the authorization and a reference we sent (our id or the caller's), when exactly
    /// one capture without another provider id carries it; else (a hint) by any id it names.
    pub async fn capture_named_by(
        &self,
        provider: Provider,
        account: &str,
        keys: &CaptureKeys,
    ) -> Result<Option<CaptureRecord>, StoreError> {
        static BY_PROVIDER_ID: LazyLock<Sql> = LazyLock::new(|| {
            read::select_where(
                "c.provider = $1 AND c.provider_account = $2 AND c.provider_capture_id = $3 \
                 AND c.operation = 'capture'",
            )
        });
        static BY_REFERENCE: LazyLock<Sql> = LazyLock::new(|| {
            read::select_where(
                "c.provider = $1 AND c.provider_account = $2 AND c.authorization_id = $3 \
                 AND (c.id = $4 OR c.reference = $5) AND c.operation = 'capture'",
            )
        });
        let scope = || -> Vec<sea_orm::Value> { vec![provider.as_str().into(), account.into()] };
        let by_id = |id: &str| {
            let mut values = scope();
            values.push(id.into());
            read::joined_one(&self.db, &BY_PROVIDER_ID, values)
        };
        if let Some(id) = &keys.provider_capture_id {
            if let Some(found) = by_id(id).await? {
                return found.into_record().map(Some);
            }
        }
        if let (Some(authorization), Some(reference)) = (&keys.authorization_id, &keys.reference) {
            let mut values = scope();
            values.extend([
                authorization.as_str().into(),
                reference.as_str().into(),
                reference.as_str().into(),
            ]);
            let mut found: Vec<_> = read::joined(&self.db, &BY_REFERENCE, values)
                .await?
                .into_iter()
                .filter(|c| {
                    c.row.provider_capture_id.is_none()
                        || c.row.provider_capture_id == keys.provider_capture_id
                })
                .collect();
            if found.len() == 1 {
                return found.pop().map(read::Joined::into_record).transpose();
            }
        }
        // A hint's ids may be the provider's or ours (a reference the provider echoes).
        static BY_OWN_ID: LazyLock<Sql> = LazyLock::new(|| {
            read::select_where(
                "c.provider = $1 AND c.provider_account = $2 AND c.id = $3 \
                 AND c.operation = 'capture'",
            )
        });
        for id in &keys.candidates {
            let mut values = scope();
            values.push(id.as_str().into());
            let found = match by_id(id).await? {
                Some(found) => Some(found),
                None => read::joined_one(&self.db, &BY_OWN_ID, values).await?,
            };
            if let Some(found) = found {
                return found.into_record().map(Some);
            }
        }
        Ok(None)
    }

    /// Applies what a kept event says to its capture and marks the event matched, in one
    /// transaction. Statuses only move forward: an event that would move the capture back
    /// changes nothing but the mark. The capture as stored afterwards.
    pub async fn apply_webhook(
        &self,
        webhook_id: i64,
        record: CaptureRecord,
        resolution: Option<Resolution>,
    ) -> Result<CaptureRecord, StoreError> {
        let id = record.id.clone();
        let capture_id = id.clone();
        let before = record.status;
        let applied = self
            .write(
                "record webhook",
                writer::work(move |txn| {
                    Box::pin(async move {
                        let written = match resolution {
                            Some(resolution) => {
                                resolve_in(txn, record, resolution, EventSource::Webhook).await?
                            }
                            None => Written::Discard(None),
                        };
                        mark_matched(txn, webhook_id, &capture_id).await?;
                        // The mark is written whether or not the capture changed.
                        Ok(Written::Commit(match written {
                            Written::Commit(applied) | Written::Discard(applied) => applied,
                        }))
                    })
                }),
            )
            .await?;
        match applied {
            Some(record) => {
                super::resolve::count_change(before, &record, EventSource::Webhook);
                Ok(record)
            }
            None => self.get_any(&id).await,
        }
    }

    /// Kept events not matched to a capture yet, received after `since`, with an id above
    /// `after`, in order.
    pub async fn unmatched_webhooks(
        &self,
        since: i64,
        after: i64,
        limit: u64,
    ) -> Result<Vec<StoredWebhook>, StoreError> {
        webhook_events::Entity::find()
            .filter(webhook_events::Column::CaptureId.is_null())
            .filter(webhook_events::Column::ReceiveTime.gte(since))
            .filter(webhook_events::Column::Id.gt(after))
            .order_by_asc(webhook_events::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(StoredWebhook::from_row)
            .collect()
    }

    /// Kept events not matched yet that name `capture` by the ids it has now.
    pub async fn unmatched_webhooks_of(
        &self,
        capture: &CaptureRecord,
    ) -> Result<Vec<StoredWebhook>, StoreError> {
        let provider = capture.command.parts().provider;
        let mut names = sea_orm::Condition::any().add(
            sea_orm::Condition::all()
                .add(
                    webhook_events::Column::AuthorizationId.eq(capture
                        .command
                        .parts()
                        .authorization_id
                        .as_str()),
                )
                .add(webhook_events::Column::Reference.eq(capture.id.as_str())),
        );
        if let Some(reference) = &capture.command.parts().reference {
            names = names.add(
                sea_orm::Condition::all()
                    .add(
                        webhook_events::Column::AuthorizationId.eq(capture
                            .command
                            .parts()
                            .authorization_id
                            .as_str()),
                    )
                    .add(webhook_events::Column::Reference.eq(reference.as_str())),
            );
        }
        if let Some(id) = &capture.provider_capture_id {
            names = names.add(webhook_events::Column::ProviderCaptureId.eq(id.as_str()));
        }
        webhook_events::Entity::find()
            .filter(webhook_events::Column::CaptureId.is_null())
            .filter(webhook_events::Column::Provider.eq(provider.as_str()))
            .filter(webhook_events::Column::ProviderAccount.eq(capture.account.as_str()))
            .filter(names)
            .order_by_asc(webhook_events::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(StoredWebhook::from_row)
            .collect()
    }
}

async fn mark_matched(
    txn: &DatabaseTransaction,
    webhook_id: i64,
    capture_id: &str,
) -> Result<(), StoreError> {
    webhook_events::Entity::update_many()
        .col_expr(webhook_events::Column::CaptureId, Expr::value(capture_id))
        .col_expr(webhook_events::Column::MatchTime, Expr::value(now_micros()))
        .filter(webhook_events::Column::Id.eq(webhook_id))
        .filter(webhook_events::Column::CaptureId.is_null())
        .exec(txn)
        .await?;
    Ok(())
}
