//! Domain types shared by examreg services. Each is made only by `parse`, so code past the edge
//! handles valid values only; `Debug` of anything personal prints a masked form, so a stray
//! `?value` in a log line never leaks an IIN or an email.
#![forbid(unsafe_code)]

mod email;
mod iin;
mod mask;
pub mod mrz;
mod passport;
mod states;

pub use email::{Email, EmailError};
pub use iin::{Iin, IinError};
pub use mask::{mask_email, mask_emails_in, mask_identifier};
pub use passport::{PassportError, PassportNumber};
pub use states::{
    AccountStatus, CaptureKind, DocumentType, LoginKind, RegistrationEventKind, Sex, Step,
    SupportAction,
};

/// ISO 3166-1 alpha-2 code of Kazakhstan.
pub const KAZAKHSTAN: &str = "KZ";

/// A login as typed, the way accounts store it: an IIN when it is 12 digits, else a passport
/// number; `None` when it is neither. Two spellings of one login give the same answer.
pub fn normalize_login(input: &str) -> Option<String> {
    let trimmed = input.trim();
    if trimmed.len() == 12 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Some(trimmed.to_owned());
    }
    PassportNumber::parse(trimmed)
        .ok()
        .map(|p| p.as_str().to_owned())
}

/// An acceptance of a published text (the user agreement, the biometric consent): its version,
/// the SHA-256 of the file shown (lowercase hex) and its language (kk, ru, en). `Err` names
/// the first field that is missing or malformed.
pub fn check_text_acceptance(
    version: &str,
    sha256: &str,
    language: &str,
) -> Result<(), &'static str> {
    if version.trim().is_empty() {
        return Err("version");
    }
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("sha256");
    }
    if !matches!(language, "kk" | "ru" | "en") {
        return Err("language");
    }
    Ok(())
}

#[cfg(test)]
mod acceptance_tests {
    use super::check_text_acceptance;

    #[test]
    fn an_acceptance_names_a_version_a_hash_and_a_language() {
        let hash = "45777c14d90fa79dc6ce71ceb6f81cced62c929c472199547cfd939a54e954c6";
        assert_eq!(check_text_acceptance("2026-01", hash, "kk"), Ok(()));
        assert_eq!(check_text_acceptance(" ", hash, "kk"), Err("version"));
        assert_eq!(check_text_acceptance("2026-01", "", "ru"), Err("sha256"));
        let upper = hash.to_ascii_uppercase();
        assert_eq!(
            check_text_acceptance("2026-01", &upper, "ru"),
            Err("sha256")
        );
        assert_eq!(
            check_text_acceptance("2026-01", &hash[1..], "ru"),
            Err("sha256")
        );
        assert_eq!(
            check_text_acceptance("2026-01", hash, "de"),
            Err("language")
        );
    }
}
