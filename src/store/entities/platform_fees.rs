//! `platform_fees`: fees asked for in the request and fees the provider reported taking.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "platform_fees")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub capture_id: String,
    /// `REQUESTED` or `REPORTED`.
    pub source: String,
    pub currency_code: String,
    pub amount_minor: i64,
    pub payee_email: Option<String>,
    pub payee_merchant_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
