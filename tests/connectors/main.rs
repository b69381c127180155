//! Connector tests: each connector against a scripted mock provider, asserting the exact wire
//! request (method, path, every header, the body) and the mapping of each documented answer.
//! One module per provider.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod checkout;
mod cybersource;
mod payment_options;
mod paypal;
mod stax;
