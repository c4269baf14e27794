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
    AccountStatus, CaptureKind, DocumentType, LoginKind, RegistrationEventKind, Sex, SupportAction,
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
