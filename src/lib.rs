//! capture-service: captures payments authorized earlier at PayPal, Checkout.com, Cybersource,
//! PaymentOptions and Stax behind one gRPC API, and keeps every capture.
//!
//! Layout (dependencies point inward, to `domain`):
//! - [`api`]: the gRPC edge — authentication, proto ⇄ domain conversion (once), error mapping.
//! - [`http`]: the HTTP port — health, readiness, the sandbox's helper endpoints.
//! - [`net`]: the listening sockets — connection limits, keepalive, first-bytes deadlines.
//! - [`capture`]: orchestration — idempotency, the authorization ledger, the provider call.
//! - [`providers`]: the `Connector` trait and one folder per provider.
//! - [`store`]: sea-orm entities and the queries on them.
//! - `sandbox` (cargo feature `sandbox`, on by default): the emulator of the providers' HTTP
//!   APIs, built in or standalone (`capture-service sandbox`); it imports nothing from
//!   `providers`.
//! - [`domain`]: money, commands, statuses, outcomes — no I/O.
//! - [`config`], [`telemetry`], [`app`]: configuration, logging, and the server built from both.

pub mod api;
pub mod app;
pub mod capture;
pub mod config;
pub mod domain;
pub mod http;
pub mod net;
pub mod providers;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod store;
pub mod telemetry;

/// Generated from `proto/capture/v1`.
pub mod proto {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("capture.v1");

    /// The descriptor set served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("capture_descriptor");
}
