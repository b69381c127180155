//! `webhook_events`: provider notifications as received, and the capture each was matched to.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub provider: String,
    pub provider_account: String,
    /// The provider's id of the event (a delivery repeated carries the same).
    pub event_id: String,
    pub event_type: String,
    /// `signed` or `hint`.
    pub trust: String,
    pub provider_capture_id: Option<String>,
    pub authorization_id: Option<String>,
    pub reference: Option<String>,
    /// The body as received, card numbers masked.
    pub body: String,
    pub receive_time: i64,
    /// The capture it was matched to; `None` while no capture of ours answers to its ids.
    pub capture_id: Option<String>,
    pub match_time: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
