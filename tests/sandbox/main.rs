//! Sandbox tests: each emulator driven over real HTTP as its provider's API is, and the real
//! connectors against it. One module per provider.

#[path = "../common/mod.rs"]
mod common;

mod checkout;
mod cybersource;
mod holds;
mod payment_options;
mod paypal;
mod receiver;
mod stax;
