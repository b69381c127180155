//! The normalized capture status and its reasons, modelled on PayPal's (the richest of the five
//! providers). Each connector maps its provider's statuses onto these.

use std::fmt;

/// Where a capture stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureStatus {
    /// Recorded; the provider's outcome is not known yet.
    Processing,
    Pending,
    Completed,
    Declined,
    Failed,
    PartiallyRefunded,
    Refunded,
}

impl CaptureStatus {
    pub const ALL: [CaptureStatus; 7] = [
        CaptureStatus::Processing,
        CaptureStatus::Pending,
        CaptureStatus::Completed,
        CaptureStatus::Declined,
        CaptureStatus::Failed,
        CaptureStatus::PartiallyRefunded,
        CaptureStatus::Refunded,
    ];

    /// The name stored in the database.
    pub fn as_str(&self) -> &'static str {
        match self {
            CaptureStatus::Processing => "PROCESSING",
            CaptureStatus::Pending => "PENDING",
            CaptureStatus::Completed => "COMPLETED",
            CaptureStatus::Declined => "DECLINED",
            CaptureStatus::Failed => "FAILED",
            CaptureStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            CaptureStatus::Refunded => "REFUNDED",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the money counts against the authorization: captured, about to be, or possibly.
    /// Declined and failed captures release what they had reserved.
    pub fn holds_funds(&self) -> bool {
        match self {
            CaptureStatus::Processing
            | CaptureStatus::Pending
            | CaptureStatus::Completed
            | CaptureStatus::PartiallyRefunded
            | CaptureStatus::Refunded => true,
            CaptureStatus::Declined | CaptureStatus::Failed => false,
        }
    }

    /// Whether a capture in this status may take `next`. Statuses only move forward, along
    /// PROCESSING → PENDING → COMPLETED | DECLINED | FAILED, and COMPLETED → PARTIALLY_REFUNDED
    /// → REFUNDED, so a late or repeated notice never moves a capture back (a `PENDING` after
    /// `COMPLETED` changes nothing; a `REFUNDED` after `COMPLETED` applies). `PENDING` and
    /// `PARTIALLY_REFUNDED` may be stated again, with newer particulars; DECLINED, FAILED and
    /// REFUNDED are final.
    pub fn may_become(&self, next: CaptureStatus) -> bool {
        use CaptureStatus::*;
        match (*self, next) {
            (Declined | Failed | Refunded, _) => false,
            (_, Processing) => false,
            (Processing, _) => true,
            (Pending, Declined | Failed) => true,
            (Completed | PartiallyRefunded, Declined | Failed) => false,
            (from, to) => {
                from.rank() < to.rank()
                    || (from == to && matches!(from, Pending | PartiallyRefunded))
            }
        }
    }

    /// Position along the forward order (DECLINED and FAILED share COMPLETED's).
    fn rank(&self) -> u8 {
        match self {
            CaptureStatus::Processing => 0,
            CaptureStatus::Pending => 1,
            CaptureStatus::Completed | CaptureStatus::Declined | CaptureStatus::Failed => 2,
            CaptureStatus::PartiallyRefunded => 3,
            CaptureStatus::Refunded => 4,
        }
    }
}

impl fmt::Display for CaptureStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a capture has its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusReason {
    BuyerComplaint,
    Chargeback,
    Echeck,
    InternationalWithdrawal,
    Other,
    PendingReview,
    ReceivingPreferenceMandatesManualAction,
    Refunded,
    TransactionApprovedAwaitingFunding,
    Unilateral,
    VerificationRequired,
    DeclinedByRiskFraudFilters,
    /// Ours: the provider confirms the outcome later.
    AwaitingProviderConfirmation,
    /// Ours: the call ended without a definite answer.
    ProviderOutcomeUnknown,
    /// Ours: the provider refused the request.
    ProviderRejected,
}

impl StatusReason {
    pub const ALL: [StatusReason; 15] = [
        StatusReason::BuyerComplaint,
        StatusReason::Chargeback,
        StatusReason::Echeck,
        StatusReason::InternationalWithdrawal,
        StatusReason::Other,
        StatusReason::PendingReview,
        StatusReason::ReceivingPreferenceMandatesManualAction,
        StatusReason::Refunded,
        StatusReason::TransactionApprovedAwaitingFunding,
        StatusReason::Unilateral,
        StatusReason::VerificationRequired,
        StatusReason::DeclinedByRiskFraudFilters,
        StatusReason::AwaitingProviderConfirmation,
        StatusReason::ProviderOutcomeUnknown,
        StatusReason::ProviderRejected,
    ];

    /// The name stored in the database (PayPal's spelling for PayPal's reasons).
    pub fn as_str(&self) -> &'static str {
        match self {
            StatusReason::BuyerComplaint => "BUYER_COMPLAINT",
            StatusReason::Chargeback => "CHARGEBACK",
            StatusReason::Echeck => "ECHECK",
            StatusReason::InternationalWithdrawal => "INTERNATIONAL_WITHDRAWAL",
            StatusReason::Other => "OTHER",
            StatusReason::PendingReview => "PENDING_REVIEW",
            StatusReason::ReceivingPreferenceMandatesManualAction => {
                "RECEIVING_PREFERENCE_MANDATES_MANUAL_ACTION"
            }
            StatusReason::Refunded => "REFUNDED",
            StatusReason::TransactionApprovedAwaitingFunding => {
                "TRANSACTION_APPROVED_AWAITING_FUNDING"
            }
            StatusReason::Unilateral => "UNILATERAL",
            StatusReason::VerificationRequired => "VERIFICATION_REQUIRED",
            StatusReason::DeclinedByRiskFraudFilters => "DECLINED_BY_RISK_FRAUD_FILTERS",
            StatusReason::AwaitingProviderConfirmation => "AWAITING_PROVIDER_CONFIRMATION",
            StatusReason::ProviderOutcomeUnknown => "PROVIDER_OUTCOME_UNKNOWN",
            StatusReason::ProviderRejected => "PROVIDER_REJECTED",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for status in CaptureStatus::ALL {
            assert_eq!(CaptureStatus::parse(status.as_str()), Some(status));
        }
        for reason in StatusReason::ALL {
            assert_eq!(StatusReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(CaptureStatus::parse("completed"), None);
    }

    #[test]
    fn statuses_only_move_forward() {
        use CaptureStatus::*;
        let allowed = [
            (Processing, Pending),
            (Processing, Completed),
            (Processing, Declined),
            (Processing, Failed),
            (Processing, PartiallyRefunded),
            (Processing, Refunded),
            (Pending, Pending),
            (Pending, Completed),
            (Pending, Declined),
            (Pending, Failed),
            (Pending, PartiallyRefunded),
            (Pending, Refunded),
            (Completed, PartiallyRefunded),
            (Completed, Refunded),
            (PartiallyRefunded, PartiallyRefunded),
            (PartiallyRefunded, Refunded),
        ];
        for from in CaptureStatus::ALL {
            for to in CaptureStatus::ALL {
                assert_eq!(
                    from.may_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }
}
