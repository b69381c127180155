//! Black-box gRPC tests: the app started as `main` starts it, called as a client would, on
//! SQLite and PostgreSQL. One module per provider, the reconciler, and the service under
//! hostile and broken conditions (silent connections, database outages, overload, oversized
//! and impossible input, card numbers in free text).

#[path = "../common/mod.rs"]
mod common;

mod admission;
mod card_numbers;
mod connections;
mod database_outage;
mod input_bounds;
mod isolation;
mod mtls;
mod reconciliation;
mod releases;
mod replicas;
mod resent;
mod sandbox_book;

mod checkout;
mod cybersource;
mod payment_options;
mod paypal;
mod stax;
mod watch;
mod webhook_limits;
mod webhooks;
mod write_paths;
