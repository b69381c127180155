//! Exact money: an ISO 4217 currency and a `Decimal` with no more decimals than the currency's
//! minor unit allows. Stored as integer minor units; converted to each provider's unit at the
//! connector edge.

use std::fmt;
use std::sync::LazyLock;

use rust_decimal::Decimal;

use super::validation::quote;

/// An active ISO 4217 currency and its minor-unit exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
}

/// Active ISO 4217 codes whose minor unit is not two decimals. Each list is sorted, for the
/// reader (a test checks the order); [`Currency::from_code`] searches them all as one table.
const EXPONENT_0: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
const EXPONENT_3: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
const EXPONENT_4: &[&str] = &["CLF", "UYW"];
/// Active ISO 4217 codes with two decimals.
const EXPONENT_2: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHE", "CHF", "CHW", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR", "KPW",
    "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT",
    "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK",
    "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR",
    "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP",
    "SZL", "THB", "TJS", "TMT", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "USN", "UYU",
    "UZS", "VED", "VES", "WST", "XCD", "XCG", "YER", "ZAR", "ZMW", "ZWG",
];

/// A three-letter code as one integer (its bytes, big-endian); `None` for any other length.
fn currency_key(code: &str) -> Option<u32> {
    match code.as_bytes() {
        &[a, b, c] => Some(u32::from_be_bytes([0, a, b, c])),
        _ => None,
    }
}

impl Currency {
    /// Looks up an ISO 4217 alphabetic code (upper case). Every stored amount is read back
    /// through this (a page of 100 records, some 700 times), so the codes are searched as
    /// integers, in one table made once.
    pub fn from_code(code: &str) -> Option<Self> {
        static BY_KEY: LazyLock<Vec<(u32, Currency)>> = LazyLock::new(|| {
            let mut all: Vec<(u32, Currency)> = [
                (EXPONENT_0, 0),
                (EXPONENT_2, 2),
                (EXPONENT_3, 3),
                (EXPONENT_4, 4),
            ]
            .iter()
            .flat_map(|(codes, exponent)| {
                codes.iter().filter_map(|&code| {
                    Some((
                        currency_key(code)?,
                        Currency {
                            code,
                            exponent: *exponent,
                        },
                    ))
                })
            })
            .collect();
            all.sort_unstable_by_key(|(key, _)| *key);
            all
        });
        let key = currency_key(code)?;
        let at = BY_KEY.binary_search_by_key(&key, |(k, _)| *k).ok()?;
        Some(BY_KEY[at].1)
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Number of decimals of the minor unit (JPY 0, USD 2, TND 3).
    pub fn exponent(&self) -> u32 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// Why a money value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown ISO 4217 currency code {}", quote(.0))]
    UnknownCurrency(String),
    #[error("{} is not a decimal number such as 10.99 (digits, then optionally '.' and digits; no sign, exponent or leading zeros)", quote(.0))]
    NotADecimal(String),
    #[error("{currency} allows at most {exponent} decimal places")]
    TooManyDecimals { currency: Currency, exponent: u32 },
    #[error("must be greater than zero")]
    NotPositive,
    #[error("is too large: at most {} minor units", MAX_MINOR_UNITS)]
    TooLarge,
}

/// The largest amount, in minor units, the service takes or records: 15 digits, so that the
/// ledger's sums of thousands of captures stay far inside `i64` (the ledger's arithmetic is
/// checked all the same).
pub const MAX_MINOR_UNITS: i64 = 999_999_999_999_999;

/// An exact, positive-or-zero amount in a currency, with at most the currency's decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    currency: Currency,
    /// Amount in minor units (cents for USD, yen for JPY, millimes for TND).
    minor_units: i64,
}

impl Money {
    /// Parses a caller's money: a known currency and a positive decimal string in major units.
    pub fn parse_positive(currency_code: &str, value: &str) -> Result<Self, MoneyError> {
        let money = Self::parse(currency_code, value)?;
        if money.minor_units <= 0 {
            return Err(MoneyError::NotPositive);
        }
        Ok(money)
    }

    /// Parses a decimal string in major units, exactly `0|[1-9][0-9]*` optionally followed by
    /// `.` and one or more digits (`10.99`, `0.5`, `1000`). No sign, exponent, leading zeros or
    /// bare `.`: `1.`, `.5` and `00001.00` are refused. Zero is allowed here.
    pub fn parse(currency_code: &str, value: &str) -> Result<Self, MoneyError> {
        let currency = Currency::from_code(currency_code)
            .ok_or_else(|| MoneyError::UnknownCurrency(currency_code.to_owned()))?;
        if !is_plain_decimal(value) {
            return Err(MoneyError::NotADecimal(value.to_owned()));
        }
        // Counted on the text: `Decimal` would round a fraction longer than 28 digits.
        let decimals = value
            .split_once('.')
            .map_or(0, |(_, fraction)| fraction.trim_end_matches('0').len());
        if decimals > currency.exponent as usize {
            return Err(MoneyError::TooManyDecimals {
                currency,
                exponent: currency.exponent,
            });
        }
        // Trailing zeros of the fraction change nothing, and could exceed Decimal's scale.
        let significant = match value.contains('.') {
            true => value.trim_end_matches('0').trim_end_matches('.'),
            false => value,
        };
        let amount = Decimal::from_str_exact(significant)
            .map_err(|_| MoneyError::NotADecimal(value.to_owned()))?;
        Self::from_decimal(currency, amount)
    }

    /// An exact decimal amount in major units; refused if it has more decimals than the currency.
    pub fn from_decimal(currency: Currency, amount: Decimal) -> Result<Self, MoneyError> {
        let normalized = amount.normalize();
        if normalized.scale() > currency.exponent {
            return Err(MoneyError::TooManyDecimals {
                currency,
                exponent: currency.exponent,
            });
        }
        let scaled = normalized
            .checked_mul(Decimal::from(10_i64.pow(currency.exponent)))
            .ok_or(MoneyError::TooLarge)?;
        let minor_units = i64::try_from(scaled).map_err(|_| MoneyError::TooLarge)?;
        if minor_units > MAX_MINOR_UNITS {
            return Err(MoneyError::TooLarge);
        }
        Ok(Money {
            currency,
            minor_units,
        })
    }

    /// An amount in minor units, as stored and as Checkout.com and PaymentOptions send it.
    pub fn from_minor_units(currency: Currency, minor_units: i64) -> Self {
        Money {
            currency,
            minor_units,
        }
    }

    /// An amount in minor units read from outside (a provider's answer): `None` when negative
    /// or above [`MAX_MINOR_UNITS`].
    pub fn checked_from_minor_units(currency: Currency, minor_units: i64) -> Option<Self> {
        (0..=MAX_MINOR_UNITS)
            .contains(&minor_units)
            .then_some(Money {
                currency,
                minor_units,
            })
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn minor_units(&self) -> i64 {
        self.minor_units
    }

    /// The exact amount in major units.
    pub fn amount(&self) -> Decimal {
        Decimal::new(self.minor_units, self.currency.exponent)
    }

    /// Major units with exactly the currency's decimals: `10.99`, `1000` (JPY), `1.230` (TND).
    pub fn to_major_string(&self) -> String {
        self.amount().to_string()
    }
}

/// `0|[1-9][0-9]*` then optionally `.` and digits, at most 32 characters (PayPal's limit).
fn is_plain_decimal(value: &str) -> bool {
    let (integer, fraction) = match value.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (value, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    value.len() <= 32
        && digits(integer)
        && (integer == "0" || !integer.starts_with('0'))
        && fraction.is_none_or(digits)
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_major_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(code: &str, value: &str) -> Result<Money, MoneyError> {
        Money::parse_positive(code, value)
    }

    #[test]
    fn currency_lists_are_sorted_and_disjoint() {
        let lists = [EXPONENT_0, EXPONENT_2, EXPONENT_3, EXPONENT_4];
        for list in lists {
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
        let all: std::collections::BTreeSet<&str> = lists.concat().into_iter().collect();
        assert_eq!(all.len(), lists.iter().map(|l| l.len()).sum::<usize>());
        assert_eq!(Currency::from_code("USD").map(|c| c.exponent()), Some(2));
        assert_eq!(Currency::from_code("ZWG").map(|c| c.exponent()), Some(2));
        assert_eq!(Currency::from_code("AED").map(|c| c.exponent()), Some(2));
        assert_eq!(Currency::from_code("JPY").map(|c| c.exponent()), Some(0));
        assert_eq!(Currency::from_code("usd"), None);
        for (list, exponent) in [
            (EXPONENT_0, 0),
            (EXPONENT_2, 2),
            (EXPONENT_3, 3),
            (EXPONENT_4, 4),
        ] {
            for code in list {
                let found = Currency::from_code(code);
                assert_eq!(
                    found.map(|c| (c.code(), c.exponent())),
                    Some((*code, exponent))
                );
            }
        }
        for unknown in ["", "US", "USDX", "XXX", "ABC", "\u{e9}UR"] {
            assert_eq!(Currency::from_code(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn amounts_convert_to_minor_units_by_currency_exponent() -> Result<(), MoneyError> {
        assert_eq!(money("USD", "0.01")?.minor_units(), 1);
        assert_eq!(
            money("USD", "99999999999.99")?.minor_units(),
            9_999_999_999_999
        );
        assert_eq!(money("JPY", "1")?.minor_units(), 1);
        assert_eq!(money("TND", "123.456")?.minor_units(), 123_456);
        assert_eq!(money("USD", "10.50")?.minor_units(), 1050);
        assert_eq!(money("USD", "10.500")?.minor_units(), 1050);
        Ok(())
    }

    #[test]
    fn major_strings_carry_exactly_the_currency_decimals() -> Result<(), MoneyError> {
        assert_eq!(money("USD", "10.5")?.to_major_string(), "10.50");
        assert_eq!(money("JPY", "1000")?.to_major_string(), "1000");
        assert_eq!(money("TND", "1.23")?.to_major_string(), "1.230");
        assert_eq!(
            money("USD", "99999999999.99")?.to_major_string(),
            "99999999999.99"
        );
        Ok(())
    }

    #[test]
    fn more_decimals_than_the_currency_allows_are_refused() {
        assert!(matches!(
            money("JPY", "1.5"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            money("USD", "0.001"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        assert!(matches!(
            money("TND", "0.0001"),
            Err(MoneyError::TooManyDecimals { .. })
        ));
        // Longer than Decimal's 28 digits of scale: refused, never rounded to a cent.
        for long in [
            "0.009999999999999999999999999999",
            "1.00000000000000000000000000001",
        ] {
            assert!(
                matches!(money("USD", long), Err(MoneyError::TooManyDecimals { .. })),
                "{long}"
            );
        }
        assert_eq!(
            money("USD", "1.00000000000000000000000000000").map(|m| m.minor_units()),
            Ok(100)
        );
    }

    #[test]
    fn malformed_unknown_and_non_positive_values_are_refused() {
        for bad in [
            "", "-1", "1e3", "1.2.3", ".", "+1", " 1", "1,00", "NaN", "1.", ".5", "00001.00", "01",
            "1.-5", "1\u{0}1",
        ] {
            assert!(
                matches!(money("USD", bad), Err(MoneyError::NotADecimal(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            money("XXX", "1"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(
            money("usd", "1"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert_eq!(money("USD", "0"), Err(MoneyError::NotPositive));
        assert_eq!(money("USD", "0.00"), Err(MoneyError::NotPositive));
        assert_eq!(
            money("USD", "99999999999999999999"),
            Err(MoneyError::TooLarge)
        );
    }

    #[test]
    fn amounts_are_bounded_so_ledger_sums_cannot_overflow() -> Result<(), MoneyError> {
        assert_eq!(
            money("USD", "9999999999999.99")?.minor_units(),
            MAX_MINOR_UNITS
        );
        // 2^63 - 1 cents, which once overflowed the ledger's sum.
        assert_eq!(
            money("USD", "92233720368547758.07"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(money("JPY", "1000000000000000"), Err(MoneyError::TooLarge));
        assert_eq!(Money::parse("USD", "0")?.minor_units(), 0);
        assert_eq!(money("USD", "0.50")?.minor_units(), 50);
        Ok(())
    }

    #[test]
    fn errors_quote_only_a_short_prefix_of_the_input() {
        let huge = "X".repeat(4 << 20);
        for err in [money(&huge, "1"), money("USD", &huge)] {
            let message = err.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(!message.is_empty() && message.len() < 200, "{message}");
        }
    }
}
