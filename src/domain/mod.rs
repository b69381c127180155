//! The domain: money, capture commands, statuses and outcomes. No I/O, no proto types.

pub mod authorization;
pub mod capture;
pub mod money;
pub mod notice;
pub mod outcome;
pub mod pan;
pub mod record;
pub mod release;
pub mod status;
pub mod validation;

pub use capture::{CaptureCommand, CaptureParts, Operation, Provider};
pub use money::{Currency, Money, MoneyError};
pub use outcome::ProviderOutcome;
pub use record::CaptureRecord;
pub use release::{ReleaseMechanism, ReleaseRules, ReleasedBy};
pub use status::{CaptureStatus, StatusReason};
pub use validation::{FieldViolation, Violations};
