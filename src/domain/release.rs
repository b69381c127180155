//! How what is left of an authorization is released.

use std::fmt;

/// How the uncaptured remainder of an authorization was (or is to be) released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleasedBy {
    /// The service called the provider's void or reversal.
    VoidCall,
    /// The provider released it by itself (PaymentOptions after a lesser capture); no call.
    ProviderAutomatic,
    /// A final capture released it at the provider (PayPal `final_capture`, Checkout.com
    /// `capture_type: Final`, Cybersource `isFinal`).
    FinalCapture,
}

impl ReleasedBy {
    pub const ALL: [ReleasedBy; 3] = [
        ReleasedBy::VoidCall,
        ReleasedBy::ProviderAutomatic,
        ReleasedBy::FinalCapture,
    ];

    /// The name stored in `authorizations.released_by`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleasedBy::VoidCall => "VOID_CALL",
            ReleasedBy::ProviderAutomatic => "PROVIDER_AUTOMATIC",
            ReleasedBy::FinalCapture => "FINAL_CAPTURE",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for ReleasedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a provider does to release an authorization's remainder, in one situation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseMechanism {
    /// A call to the provider (a void or an authorization reversal).
    Call,
    /// Nothing to call: the provider already released it.
    Automatic,
    /// The provider documents no way; the reason is shown to the caller.
    Unsupported(&'static str),
}

/// How a provider releases the remainder, as its documentation says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseRules {
    /// With no capture made yet.
    pub before_capture: ReleaseMechanism,
    /// After one or more partial captures that did not close the authorization.
    pub after_partial_capture: ReleaseMechanism,
    /// Whether a final capture releases the rest at the provider by itself.
    pub final_capture_releases: bool,
}

impl ReleaseRules {
    /// No release allowed: what a command that is not a release is recorded with.
    pub const NONE: ReleaseRules = ReleaseRules {
        before_capture: ReleaseMechanism::Unsupported("no release rules were given"),
        after_partial_capture: ReleaseMechanism::Unsupported("no release rules were given"),
        final_capture_releases: false,
    };

    /// The mechanism for an authorization with `captures` live captures (made or in flight).
    pub fn mechanism(&self, captures: u32) -> ReleaseMechanism {
        if captures == 0 {
            self.before_capture
        } else {
            self.after_partial_capture
        }
    }
}
