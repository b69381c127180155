//! `seller_receivable_breakdowns`: what the seller receives, as the provider reported it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "seller_receivable_breakdowns")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub capture_id: String,
    pub gross_currency: Option<String>,
    pub gross_minor: Option<i64>,
    pub provider_fee_currency: Option<String>,
    pub provider_fee_minor: Option<i64>,
    pub provider_fee_receivable_currency: Option<String>,
    pub provider_fee_receivable_minor: Option<i64>,
    pub net_currency: Option<String>,
    pub net_minor: Option<i64>,
    pub receivable_currency: Option<String>,
    pub receivable_minor: Option<i64>,
    pub exchange_source_currency: Option<String>,
    pub exchange_target_currency: Option<String>,
    /// The provider's decimal string, verbatim.
    pub exchange_rate: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
