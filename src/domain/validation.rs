//! Field-level validation results and the small text rules the value types share.

/// One bad field of a request: the proto field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Collects violations while a request is parsed, so every bad field is reported at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Keeps the value if it parsed, records the violation under `field` if it did not.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(err) => {
                self.add(field, err.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }
}

/// Checks a length in characters (not bytes) against an inclusive range.
pub fn check_length(value: &str, min: usize, max: usize) -> Result<(), String> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(if min == max {
            format!("must be {min} characters long")
        } else {
            format!("must be {min} to {max} characters long, not {len}")
        });
    }
    Ok(())
}

/// Refuses control characters, which no provider field accepts.
pub fn check_printable(value: &str) -> Result<(), String> {
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(())
}

/// How many characters of a caller's value an error message quotes.
pub const QUOTE_CHARS: usize = 24;

/// A caller's value as an error message quotes it: debug-escaped and cut to a short prefix, so
/// an error never echoes unbounded input.
pub fn quote(value: &str) -> String {
    let mut chars = value.chars();
    let prefix: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.next().is_some() {
        format!("{prefix:?}… ({} bytes)", value.len())
    } else {
        format!("{prefix:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_short_whatever_the_input() {
        assert_eq!(quote("USD"), "\"USD\"");
        let long = "A".repeat(4 << 20);
        let quoted = quote(&long);
        assert!(quoted.len() < 64, "{quoted}");
        assert!(quoted.ends_with("(4194304 bytes)"), "{quoted}");
        assert_eq!(quote("a\0b"), "\"a\\0b\"");
    }
}
