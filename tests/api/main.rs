//! Black-box gRPC tests of the service under hostile and broken conditions: silent
//! connections, database outages, overload, oversized and impossible input, card numbers in
//! free text. Each starts the app like `main` does and calls it as a client would.

#[path = "../common/mod.rs"]
mod common;

mod admission;
mod card_numbers;
mod connections;
mod database_outage;
mod input_bounds;
