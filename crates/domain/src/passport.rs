//! Passport numbers of non-residents. Formats differ by country, so the rule is deliberately
//! broad: 5–20 Latin letters and digits with at least one digit, after removing the spaces and
//! hyphens people type and upper-casing (so `n 1234-5678` and `N12345678` are one passport).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PassportError {
    #[error("a passport number is 5 to 20 Latin letters and digits")]
    Invalid,
}

impl PassportError {
    pub fn code(self) -> &'static str {
        "invalid_passport_number"
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PassportNumber(String);

impl PassportNumber {
    pub fn parse(input: &str) -> Result<Self, PassportError> {
        let text: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let ok = (5..=20).contains(&text.len())
            && text
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && text.chars().any(|c| c.is_ascii_digit());
        if ok {
            Ok(Self(text))
        } else {
            Err(PassportError::Invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PassportNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PassportNumber({})", crate::mask_identifier(&self.0))
    }
}

impl fmt::Display for PassportNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::mask_identifier(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_what_people_type() {
        assert_eq!(
            PassportNumber::parse(" n 1234-5678 ").unwrap().as_str(),
            "N12345678"
        );
        assert_eq!(
            PassportNumber::parse("AB1234567").unwrap().as_str(),
            "AB1234567"
        );
    }

    #[test]
    fn rejects_non_passports() {
        for bad in [
            "",
            "1234",
            "ABCDEFG",
            "N1234567№",
            "Н1234567",
            &"1".repeat(21),
        ] {
            assert!(PassportNumber::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
