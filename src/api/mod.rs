//! The gRPC edge: authentication, proto ⇄ domain conversion, handlers, error mapping.

pub mod auth;
pub mod authorization;
pub mod codec;
pub mod convert;
pub mod error;
#[cfg(test)]
mod fuzz;
mod page_token;
pub mod service;
pub mod watch;

pub use auth::{ApiKeys, Callers, CertificateTenants, Tenant};
pub use service::{CaptureApi, WatchLimits};
