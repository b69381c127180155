//! `authorizations`: the ledger of each provider authorization, locked while a capture starts
//! so concurrent captures cannot take more than was authorized.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider_account: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub authorization_id: String,
    /// The currency of the first capture; later captures must match.
    pub currency_code: Option<String>,
    /// The authorized amount, when a caller told us.
    pub authorized_minor: Option<i64>,
    /// Captured or in flight: what no further capture may take.
    pub held_minor: i64,
    pub capture_count: i32,
    /// The capture (final or full-amount) or the release that closed the authorization, if any.
    pub closed_by: Option<String>,
    pub update_time: i64,
    /// What was released of the authorization, once known (`None` while nothing was, or the
    /// authorized amount is unknown).
    pub released_minor: Option<i64>,
    /// How the remainder was released ([`ReleasedBy`](crate::domain::ReleasedBy)), once it was.
    pub released_by: Option<String>,
    /// The release (or final capture) that released it.
    pub release_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
