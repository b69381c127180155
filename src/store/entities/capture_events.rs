//! `capture_events`: the audit trail; every change of a capture adds a row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "capture_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub capture_id: String,
    /// `CREATED`, `PROVIDER_OUTCOME`, `PROVIDER_REJECTED`, `OUTCOME_UNKNOWN`.
    pub kind: String,
    /// The capture's status after the event.
    pub status: String,
    /// JSON with the event's particulars (no secrets, no card numbers).
    pub detail: String,
    pub create_time: i64,
    /// Who made the change: [`EventSource`](crate::store::EventSource) (`api`, `reconciler`).
    pub source: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
