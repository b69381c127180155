//! sea-orm entities: data only; queries live beside them in `store`.

pub mod authorizations;
pub mod capture_events;
pub mod captures;
pub mod platform_fees;
pub mod seller_receivable_breakdowns;
pub mod webhook_events;
