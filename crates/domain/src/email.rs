//! Email addresses as applicants type them. Stored and compared in lower case: mailbox
//! providers treat the local part case-insensitively in practice, and two accounts that differ
//! only in case would be one person locked out by another.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("not a valid email address")]
    Invalid,
    #[error("the email address is too long")]
    TooLong,
}

impl EmailError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Invalid => "invalid_email",
            Self::TooLong => "too_long",
        }
    }
}

/// A syntactically valid, normalized (trimmed, lower-case) email address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels.last().is_some_and(|tld| {
            tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
                || tld.starts_with("xn--")
        })
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let text = input.trim().to_ascii_lowercase();
        if text.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = text.rsplit_once('@').ok_or(EmailError::Invalid)?;
        if valid_local(local) && valid_domain(domain) {
            Ok(Self(text))
        } else {
            Err(EmailError::Invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`, for the password policy.
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map_or("", |(local, _)| local)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", crate::mask_email(&self.0))
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::mask_email(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_case_and_whitespace() {
        let email = Email::parse("  Aigerim.Nurlanovna@Mail.KZ ").unwrap();
        assert_eq!(email.as_str(), "aigerim.nurlanovna@mail.kz");
        assert_eq!(email.local_part(), "aigerim.nurlanovna");
        assert_eq!(format!("{email:?}"), "Email(a***@mail.kz)");
    }

    #[test]
    fn rejects_what_cannot_receive_mail() {
        for bad in [
            "",
            "plain",
            "@mail.kz",
            "a@",
            "a@kz",
            "a@@mail.kz",
            "a b@mail.kz",
            "a@mail..kz",
            ".a@mail.kz",
            "a.@mail.kz",
            "a@-mail.kz",
            "a@mail.k",
            "a\n@mail.kz",
            "a@mail.kz\u{0}",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Email::parse("a@xn--80ao21a.xn--80ao21a").is_ok());
        assert_eq!(
            Email::parse(&format!("{}@mail.kz", "a".repeat(250))),
            Err(EmailError::TooLong)
        );
    }

    proptest! {
        #[test]
        fn parse_is_idempotent(s in "[a-zA-Z0-9._%+-]{1,20}@[a-z0-9-]{1,10}\\.[a-z]{2,5}") {
            if let Ok(email) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(email.as_str()).unwrap(), email);
            }
        }
    }
}
