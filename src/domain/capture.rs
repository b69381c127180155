//! What a caller asks for: a capture command built from validated values, so the rest of the
//! service never sees an unchecked string.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use super::money::Money;
use super::pan::{check_id_not_card_number, check_no_card_number};
use super::validation::{check_length, check_printable, quote};

/// The five providers the service captures at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Paypal,
    Checkout,
    Cybersource,
    PaymentOptions,
    Stax,
}

impl Provider {
    pub const ALL: [Provider; 5] = [
        Provider::Paypal,
        Provider::Checkout,
        Provider::Cybersource,
        Provider::PaymentOptions,
        Provider::Stax,
    ];

    /// The name stored in the database and used in configuration and URLs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Provider::Paypal => "paypal",
            Provider::Checkout => "checkout",
            Provider::Cybersource => "cybersource",
            Provider::PaymentOptions => "payment_options",
            Provider::Stax => "stax",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares a validated text newtype: `parse` enforces the rule, `as_str` reads it back.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(value)?;
                Ok(Self(value.to_owned()))
            }

            /// [`Self::parse`] of a string the caller owns, kept without a copy.
            pub fn parse_owned(value: String) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(&value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn id_like(value: &str, max: usize) -> Result<(), String> {
    check_length(value, 1, max)?;
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    {
        return Err("may contain only A-Z, a-z, 0-9, '.', '_', ':' and '-'".to_owned());
    }
    Ok(())
}

fn printable(value: &str, min: usize, max: usize) -> Result<(), String> {
    check_length(value, min, max)?;
    check_printable(value)
}

/// Free text the service stores and shows: printable, and never a card number.
fn free_text(value: &str, min: usize, max: usize) -> Result<(), String> {
    printable(value, min, max)?;
    check_no_card_number(value)
}

text_type!(
    /// The provider's id of an authorization. It goes into URL paths, hence the narrow alphabet
    /// (no separator, query or fragment) and no id of dots alone, which URL normalisation would
    /// resolve away (`.../authorizations/../capture`).
    AuthorizationId,
    |v| {
        id_like(v, 127)?;
        if !is_path_segment(v) {
            return Err("must not be '.' or '..' (or dots alone)".to_owned());
        }
        check_id_not_card_number(v)
    }
);

/// Whether an id can stand as one URL path segment: not dots alone, no separator, query or
/// fragment. Holds for every [`AuthorizationId`]; connectors check ids a provider returned.
pub fn is_path_segment(id: &str) -> bool {
    !id.is_empty() && !id.chars().all(|c| c == '.') && !id.contains(['/', '?', '#', '\\'])
}
text_type!(
    /// A provider account's configuration name.
    AccountName,
    |v| id_like(v, 64)
);
text_type!(
    /// The caller's idempotency key.
    RequestId,
    |v| {
        check_length(v, 1, 128)?;
        if !v.chars().all(|c| c.is_ascii_graphic()) {
            return Err("must be printable ASCII without spaces".to_owned());
        }
        check_id_not_card_number(v)
    }
);
text_type!(
    /// PayPal `invoice_id`: 1 to 127 characters.
    InvoiceId,
    |v| free_text(v, 1, 127)
);
text_type!(
    /// PayPal `note_to_payer`: 1 to 255 characters.
    NoteToPayer,
    |v| free_text(v, 1, 255)
);
text_type!(
    /// PayPal `soft_descriptor`: at most 22 characters.
    SoftDescriptor,
    |v| free_text(v, 1, 22)
);
text_type!(
    /// The caller's own reference.
    Reference,
    |v| free_text(v, 1, 127)
);
text_type!(
    /// PayPal fee payee email: 3 to 254 characters with an `@` inside.
    EmailAddress,
    |v| {
        printable(v, 3, 254)?;
        match v.find('@') {
            Some(at) if at > 0 && at < v.len() - 1 && !v.contains(char::is_whitespace) => Ok(()),
            _ => Err("must be an email address".to_owned()),
        }
    }
);
text_type!(
    /// PayPal merchant id: `^[2-9A-HJ-NP-Z]{13}$`.
    MerchantId,
    |v| {
        let allowed = |c: char| matches!(c, '2'..='9' | 'A'..='H' | 'J'..='N' | 'P'..='Z');
        if v.len() != 13 || !v.chars().all(allowed) {
            return Err("must be 13 characters of [2-9A-HJ-NP-Z]".to_owned());
        }
        Ok(())
    }
);

/// The caller's metadata: at most 20 entries, keys of 1 to 40 characters of `[A-Za-z0-9_.-]`,
/// values of at most 500 characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub const MAX_ENTRIES: usize = 20;
    pub const MAX_KEY_CHARS: usize = 40;
    pub const MAX_VALUE_CHARS: usize = 500;

    /// Parses the entries, naming the offending key (by a short prefix) in each error. Too
    /// many entries is one error, whatever the entries are.
    pub fn parse(
        entries: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Vec<(String, String)>> {
        let map: BTreeMap<String, String> = entries.into_iter().collect();
        if map.len() > Self::MAX_ENTRIES {
            return Err(vec![(
                String::new(),
                format!("at most {} entries, not {}", Self::MAX_ENTRIES, map.len()),
            )]);
        }
        let mut errors = Vec::new();
        for (key, value) in &map {
            let key_ok = !key.is_empty()
                && key.chars().count() <= Self::MAX_KEY_CHARS
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            let problem = if !key_ok {
                Some(format!(
                    "keys must be 1 to {} characters of [A-Za-z0-9_.-], not {}",
                    Self::MAX_KEY_CHARS,
                    quote(key)
                ))
            } else if let Err(e) = check_no_card_number(key) {
                Some(format!("key {e}"))
            } else if let Err(e) = free_text(value, 0, Self::MAX_VALUE_CHARS) {
                Some(format!("value {e}"))
            } else {
                None
            };
            if let Some(problem) = problem {
                let shown: String = key.chars().take(Self::MAX_KEY_CHARS).collect();
                errors.push((shown, problem));
            }
        }
        if errors.is_empty() {
            Ok(Metadata(map))
        } else {
            Err(errors)
        }
    }

    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn into_entries(self) -> BTreeMap<String, String> {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Who receives a platform fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeePayee {
    Email(EmailAddress),
    MerchantId(MerchantId),
}

/// A fee the platform takes from the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFee {
    pub amount: Money,
    /// `None`: the API caller's own account.
    pub payee: Option<FeePayee>,
}

/// When the payee receives the funds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisbursementMode {
    Instant,
    Delayed,
}

impl DisbursementMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            DisbursementMode::Instant => "INSTANT",
            DisbursementMode::Delayed => "DELAYED",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [DisbursementMode::Instant, DisbursementMode::Delayed]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// Rules that relate fields to each other; each names the field it blames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("{field}: currency must match amount's currency {expected}")]
    CurrencyMismatch {
        field: &'static str,
        expected: String,
    },
    #[error("amount: must not exceed authorized_amount {authorized}")]
    AmountAboveAuthorized { authorized: Money },
    #[error("platform_fees: at most one platform fee")]
    TooManyFees,
    #[error("platform_fees: a platform fee needs an explicit amount to capture")]
    FeeWithoutAmount,
}

impl CommandError {
    /// The request field the rule blames.
    pub fn field(&self) -> &'static str {
        match self {
            CommandError::CurrencyMismatch { field, .. } => field,
            CommandError::AmountAboveAuthorized { .. } => "amount",
            CommandError::TooManyFees | CommandError::FeeWithoutAmount => "platform_fees",
        }
    }
}

/// Everything a capture request says, each part already valid on its own.
/// What a command asks of an authorization. Every operation has the same durable life:
/// recorded before the provider is called, called with a stable idempotency key, resolved in one
/// transaction, settled by the reconciler under a lease, audited and watched. A new operation (a
/// refund, one day) is a new variant here, handled where the compiler points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Capture (part of) the authorization.
    Capture,
    /// Release what is neither captured nor in flight, closing the authorization.
    Release,
}

impl Operation {
    pub const ALL: [Operation; 2] = [Operation::Capture, Operation::Release];

    /// The name stored in `captures.operation`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Capture => "capture",
            Operation::Release => "release",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == name)
    }

    /// The prefix of the ids the service gives this operation's records.
    pub fn id_prefix(self) -> &'static str {
        match self {
            Operation::Capture => "cap_",
            Operation::Release => "rel_",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command's fields. A release uses only the provider, account, authorization, the caller's
/// `authorized_amount` and `request_id`; [`CaptureCommand::release`] builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureParts {
    pub operation: Operation,
    pub provider: Provider,
    pub account: Option<AccountName>,
    pub authorization_id: AuthorizationId,
    /// `None`: the full authorized amount.
    pub amount: Option<Money>,
    pub authorized_amount: Option<Money>,
    pub final_capture: bool,
    pub invoice_id: Option<InvoiceId>,
    pub note_to_payer: Option<NoteToPayer>,
    pub soft_descriptor: Option<SoftDescriptor>,
    pub reference: Option<Reference>,
    pub metadata: Metadata,
    pub platform_fees: Vec<PlatformFee>,
    pub disbursement_mode: Option<DisbursementMode>,
    pub request_id: RequestId,
}

/// A capture request whose parts are valid together. Only [`CaptureCommand::new`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureCommand(CaptureParts);

impl CaptureCommand {
    /// Checks the rules between fields; every broken rule is reported.
    pub fn new(parts: CaptureParts) -> Result<Self, Vec<CommandError>> {
        let mut errors = Vec::new();
        if let (Some(amount), Some(authorized)) = (parts.amount, parts.authorized_amount) {
            if authorized.currency() != amount.currency() {
                errors.push(CommandError::CurrencyMismatch {
                    field: "authorized_amount",
                    expected: amount.currency().to_string(),
                });
            } else if amount.minor_units() > authorized.minor_units() {
                errors.push(CommandError::AmountAboveAuthorized { authorized });
            }
        }
        if parts.platform_fees.len() > 1 {
            errors.push(CommandError::TooManyFees);
        }
        match parts.amount {
            Some(amount)
                if parts
                    .platform_fees
                    .iter()
                    .any(|fee| fee.amount.currency() != amount.currency()) =>
            {
                errors.push(CommandError::CurrencyMismatch {
                    field: "platform_fees",
                    expected: amount.currency().to_string(),
                });
            }
            None if !parts.platform_fees.is_empty() => errors.push(CommandError::FeeWithoutAmount),
            _ => {}
        }
        if errors.is_empty() {
            Ok(CaptureCommand(parts))
        } else {
            Err(errors)
        }
    }

    pub fn into_parts(self) -> CaptureParts {
        self.0
    }

    pub fn parts(&self) -> &CaptureParts {
        &self.0
    }

    /// The same capture, naming the account it was resolved to (as a stored record does).
    pub fn with_account(mut self, account: AccountName) -> Self {
        self.0.account = Some(account);
        self
    }

    /// Whether this capture closes the authorization: flagged final, or the full amount.
    /// A release of what is left of `authorization_id`. `authorized_amount`, when the caller
    /// knows it, binds the ledger like a capture's (and is what Cybersource reverses).
    pub fn release(
        provider: Provider,
        account: Option<AccountName>,
        authorization_id: AuthorizationId,
        authorized_amount: Option<Money>,
        request_id: RequestId,
    ) -> Self {
        CaptureCommand(CaptureParts {
            operation: Operation::Release,
            provider,
            account,
            authorization_id,
            amount: None,
            authorized_amount,
            final_capture: true,
            invoice_id: None,
            note_to_payer: None,
            soft_descriptor: None,
            reference: None,
            metadata: Metadata::default(),
            platform_fees: Vec::new(),
            disbursement_mode: None,
            request_id,
        })
    }

    /// The same command with the authorized amount the ledger knows filled in.
    pub fn with_authorized_amount(mut self, authorized: Money) -> Self {
        self.0.authorized_amount = Some(authorized);
        self
    }

    pub fn operation(&self) -> Operation {
        self.0.operation
    }

    /// Whether, once recorded, this command closes the authorization to further captures: a
    /// final or full-amount capture, or a release.
    pub fn closes_authorization(&self) -> bool {
        self.0.operation == Operation::Release || self.0.final_capture || self.0.amount.is_none()
    }

    /// A digest of everything the request says, to tell a retry of the same request from a
    /// different request that reuses its idempotency key.
    pub fn fingerprint(&self) -> String {
        let p = &self.0;
        let money = |m: &Option<Money>| m.map(|m| m.to_string()).unwrap_or_default();
        let text = |t: Option<&str>| t.unwrap_or_default().to_owned();
        let fees: Vec<String> = p
            .platform_fees
            .iter()
            .map(|f| {
                let payee = match &f.payee {
                    Some(FeePayee::Email(e)) => format!("email:{e}"),
                    Some(FeePayee::MerchantId(m)) => format!("merchant:{m}"),
                    None => String::new(),
                };
                format!("{}|{payee}", f.amount)
            })
            .collect();
        let canonical = serde_json::json!([
            p.provider.as_str(),
            text(p.account.as_ref().map(AccountName::as_str)),
            p.authorization_id.as_str(),
            money(&p.amount),
            money(&p.authorized_amount),
            p.final_capture,
            text(p.invoice_id.as_ref().map(InvoiceId::as_str)),
            text(p.note_to_payer.as_ref().map(NoteToPayer::as_str)),
            text(p.soft_descriptor.as_ref().map(SoftDescriptor::as_str)),
            text(p.reference.as_ref().map(Reference::as_str)),
            p.metadata.entries(),
            fees,
            p.disbursement_mode.map(|m| m.as_str()).unwrap_or_default(),
        ]);
        // A capture's canonical form is unchanged since the first release, so the fingerprints
        // stored before operations existed still match; any other operation is named in it.
        let canonical = match p.operation {
            Operation::Capture => canonical,
            other => serde_json::json!([other.as_str(), canonical]),
        };
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// A PayPal capture of USD 10.00 on a USD 100.00 authorization, for unit tests to vary.
#[cfg(test)]
pub(crate) fn sample_parts() -> Option<CaptureParts> {
    let usd = |value| Money::parse_positive("USD", value).ok();
    Some(CaptureParts {
        operation: Operation::Capture,
        provider: Provider::Paypal,
        account: None,
        authorization_id: AuthorizationId::parse("0VF52814937998046").ok()?,
        amount: usd("10.00"),
        authorized_amount: usd("100.00"),
        final_capture: false,
        invoice_id: None,
        note_to_payer: None,
        soft_descriptor: None,
        reference: None,
        metadata: Metadata::default(),
        platform_fees: vec![],
        disbursement_mode: None,
        request_id: RequestId::parse("req-1").ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(value: &str) -> Option<Money> {
        Money::parse_positive("USD", value).ok()
    }

    fn parts() -> Option<CaptureParts> {
        sample_parts()
    }

    #[test]
    fn text_rules_follow_paypal_limits() {
        assert!(InvoiceId::parse(&"x".repeat(127)).is_ok());
        assert!(InvoiceId::parse(&"x".repeat(128)).is_err());
        assert!(InvoiceId::parse("").is_err());
        assert!(SoftDescriptor::parse(&"x".repeat(23)).is_err());
        assert!(NoteToPayer::parse(&"é".repeat(255)).is_ok());
        assert!(MerchantId::parse("2ABCDEFGHJKLM").is_ok());
        assert!(MerchantId::parse("1ABCDEFGHJKLM").is_err());
        assert!(MerchantId::parse("2ABCDEFGHIKLM").is_err());
        assert!(EmailAddress::parse("a@b").is_ok());
        assert!(EmailAddress::parse("ab@").is_err());
        assert!(AuthorizationId::parse("../admin").is_err());
        assert!(AuthorizationId::parse(".").is_err());
        assert!(AuthorizationId::parse("..").is_err());
        assert!(AuthorizationId::parse("...").is_err());
        assert!(AuthorizationId::parse("a.b").is_ok());
        assert!(RequestId::parse("has space").is_err());
    }

    #[test]
    fn metadata_is_bounded() {
        let many = (0..21).map(|i| (format!("k{i}"), "v".to_owned()));
        assert!(Metadata::parse(many).is_err());
        let bad_key = Metadata::parse([("bad key".to_owned(), "v".to_owned())]);
        assert_eq!(
            bad_key.err().map(|e| e[0].0.clone()),
            Some("bad key".to_owned())
        );
        assert!(Metadata::parse([("k".to_owned(), "v".repeat(501))]).is_err());
        assert!(Metadata::parse([("order.id".to_owned(), "42".to_owned())]).is_ok());
    }

    #[test]
    fn metadata_errors_stay_small_however_many_bad_keys() {
        let many = (0..10_000).map(|i| (format!("bad key {i}"), "v".to_owned()));
        let errors = Metadata::parse(many).err().unwrap_or_default();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let long_key = Metadata::parse([("k".repeat(100_000), "v".to_owned())]);
        let errors = long_key.err().unwrap_or_default();
        assert!(errors[0].0.len() <= Metadata::MAX_KEY_CHARS);
        assert!(errors[0].1.len() < 200, "{}", errors[0].1);
    }

    #[test]
    fn free_text_fields_refuse_card_numbers() {
        let pan = "4111 1111 1111 1111";
        assert!(NoteToPayer::parse(&format!("paid with {pan}")).is_err());
        assert!(Reference::parse("4111111111111111").is_err());
        assert!(InvoiceId::parse("INV-4111111111111111").is_err());
        assert!(SoftDescriptor::parse("4111111111111111").is_err());
        assert!(Metadata::parse([("card".to_owned(), pan.to_owned())]).is_err());
        assert!(Metadata::parse([("k4111111111111111".to_owned(), "v".to_owned())]).is_err());
        // Numbers that are not card numbers stay welcome.
        assert!(InvoiceId::parse("INV-2026-000123456789").is_ok());
        assert!(InvoiceId::parse("INV 2026 11 23 0042").is_ok());
        assert!(Reference::parse("4111111111111112").is_ok());
    }

    #[test]
    fn cross_field_rules_are_enforced() {
        let Some(mut p) = parts() else {
            panic!("fixture")
        };
        p.amount = usd("100.01");
        assert_eq!(
            CaptureCommand::new(p.clone()).err().map(|e| e[0].field()),
            Some("amount")
        );
        p.amount = usd("1.00");
        p.authorized_amount = Money::parse_positive("EUR", "100").ok();
        assert_eq!(
            CaptureCommand::new(p).err().map(|e| e[0].field()),
            Some("authorized_amount")
        );
    }

    #[test]
    fn fingerprint_changes_with_any_field() {
        let Some(p) = parts() else { panic!("fixture") };
        let a = CaptureCommand::new(p.clone()).map(|c| c.fingerprint());
        let same = CaptureCommand::new(p.clone()).map(|c| c.fingerprint());
        let mut other = p;
        other.amount = usd("10.01");
        let b = CaptureCommand::new(other).map(|c| c.fingerprint());
        assert_eq!(a, same);
        assert_ne!(a, b);
    }
}
