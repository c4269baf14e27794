//! Every failure identity reports, and the one place it becomes a gRPC status.

use crate::{
    password::{HashError, PolicyError},
    store::{Conflict, StoreError},
};
use examreg_domain::{EmailError, IinError, PassportError};
use examreg_kit::errors::{self, internal, invalid, rate_limited};
use std::time::Duration;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("citizenship is an ISO 3166-1 alpha-2 code")]
    InvalidCitizenship,
    #[error("{0}")]
    InvalidIin(IinError),
    #[error("citizens of Kazakhstan register with their IIN")]
    IinRequired,
    #[error("{0}")]
    InvalidPassportNumber(PassportError),
    #[error("an IIN or a passport number is required")]
    IdentifierRequired,
    #[error("{0}")]
    InvalidEmail(EmailError),
    #[error("the email proof is invalid, expired or already used; confirm the email again")]
    InvalidEmailProof,
    #[error("{0}")]
    WeakPassword(PolicyError),
    /// The acceptance lacks this field of the text accepted (`terms_version`,
    /// `terms_sha256`, `terms_language`).
    #[error(
        "the terms must be accepted: name the version, the SHA-256 and the language of the text"
    )]
    TermsNotAccepted(&'static str),
    /// One answer for a taken login and a taken email, so it tells nobody which is registered.
    #[error("an account with this IIN, passport number or email already exists")]
    AlreadyRegistered,
    #[error("wrong login or password")]
    InvalidCredentials,
    #[error("too many failed logins; try again later")]
    TooManyAttempts { wait: Duration },
    /// The client's address (or pass) spent its failed-login budget: not a lockout of the
    /// login, a request for a proof of work at the gateway.
    #[error("too many failed logins from this network; prove the work to go on")]
    AddressBudgetExhausted { wait: Duration },
    #[error("this refresh token was already used; the session is closed, log in again")]
    RefreshTokenReused,
    #[error("the refresh token is invalid or expired; log in again")]
    InvalidRefreshToken,
    #[error("no such account")]
    AccountNotFound,
    #[error("this account cannot complete a registration")]
    AccountBlocked,
    #[error("a login or an email is required")]
    LoginRequired,
    #[error("unknown client or wrong secret")]
    InvalidClient,
    /// A support action without a reason (or one past 500 characters).
    #[error("a reason of at most 500 characters is required")]
    ReasonRequired { too_long: bool },
    /// A read of personal data by a service without a purpose (or one past 500 characters).
    #[error("a purpose of at most 500 characters is required")]
    PurposeRequired { too_long: bool },
    #[error("this account's identifier was released to its holder; it stays blocked")]
    IdentifierReleased,
    #[error(
        "the steps to redo are one or more of face, document_front, document_back, consent, name, details, education"
    )]
    InvalidSteps,
    /// Another service refused or failed a call identity made for a reopening.
    #[error("{service}: {}", status.message())]
    Upstream {
        service: &'static str,
        status: tonic::Status,
    },
    /// A change of the registration recorded by the support desk is still being carried out
    /// by the services that own its data.
    #[error("this registration is being changed by the support desk; try again in a few seconds")]
    ChangePending,
    #[error("a status filter is not an account status")]
    InvalidStatus,
    #[error("the page token is not one this listing gave")]
    InvalidPageToken,
    #[error("the cursor is not one this feed gave")]
    InvalidCursor,
    /// Events after the cursor were removed by the feed's retention.
    #[error(
        "the events after this cursor are no longer kept; read the accounts again with ListAccounts and follow from its feed_cursor"
    )]
    CursorExpired,
    /// A client (or all of them) holds as many streams as this replica serves.
    #[error("too many streams are open; try again later")]
    TooManyStreams,
    /// A hand-off asked for a session that was logged out.
    #[error("the session has ended; log in again")]
    SessionEnded,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(Conflict::Taken) => Self::AlreadyRegistered,
            StoreError::Conflict(Conflict::Proof) => Self::InvalidEmailProof,
            StoreError::Db(e) => Self::Db(e),
        }
    }
}

/// Every reason identity answers with (besides the auth layer's), once.
pub const REASONS: &[&str] = &[
    "invalid_citizenship",
    "invalid_iin",
    "iin_required",
    "invalid_passport_number",
    "identifier_required",
    "invalid_email",
    "invalid_email_proof",
    "weak_password",
    "terms_not_accepted",
    "already_registered",
    "invalid_credentials",
    "too_many_attempts",
    "address_budget_exhausted",
    "refresh_token_reused",
    "invalid_refresh_token",
    "account_not_found",
    "account_blocked",
    "login_required",
    "invalid_client",
    "reason_required",
    "purpose_required",
    "identifier_released",
    "invalid_steps",
    "change_pending",
    "invalid_status",
    "invalid_page_token",
    "invalid_cursor",
    "cursor_expired",
    "too_many_streams",
];

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::InvalidCitizenship => invalid(
                "invalid_citizenship",
                message,
                &[("citizenship", "invalid")],
            ),
            Error::InvalidIin(e) => invalid("invalid_iin", message, &[("iin", e.code())]),
            Error::IinRequired => invalid(
                "iin_required",
                message,
                &[("passport_number", "iin_required")],
            ),
            Error::InvalidPassportNumber(e) => invalid(
                "invalid_passport_number",
                message,
                &[("passport_number", e.code())],
            ),
            Error::IdentifierRequired => {
                invalid("identifier_required", message, &[("iin", "required")])
            }
            Error::InvalidEmail(e) => invalid("invalid_email", message, &[("email", e.code())]),
            Error::InvalidEmailProof => invalid(
                "invalid_email_proof",
                message,
                &[("email_proof", "invalid")],
            ),
            Error::WeakPassword(e) => invalid("weak_password", message, &[("password", e.code())]),
            Error::TermsNotAccepted(field) => {
                invalid("terms_not_accepted", message, &[(field, "required")])
            }
            Error::AlreadyRegistered => {
                errors::status(Code::AlreadyExists, "already_registered", message)
            }
            Error::InvalidCredentials => {
                errors::status(Code::Unauthenticated, "invalid_credentials", message)
            }
            Error::TooManyAttempts { wait } => rate_limited("too_many_attempts", message, wait),
            Error::AddressBudgetExhausted { wait } => {
                rate_limited("address_budget_exhausted", message, wait)
            }
            Error::RefreshTokenReused => {
                errors::status(Code::Unauthenticated, "refresh_token_reused", message)
            }
            Error::InvalidRefreshToken => {
                errors::status(Code::Unauthenticated, "invalid_refresh_token", message)
            }
            Error::AccountNotFound => errors::status(Code::NotFound, "account_not_found", message),
            Error::AccountBlocked => {
                errors::status(Code::FailedPrecondition, "account_blocked", message)
            }
            Error::LoginRequired => invalid("login_required", message, &[("login", "required")]),
            Error::InvalidClient => {
                errors::status(Code::Unauthenticated, "invalid_client", message)
            }
            Error::ReasonRequired { too_long } => invalid(
                "reason_required",
                message,
                &[("reason", if too_long { "too_long" } else { "required" })],
            ),
            Error::PurposeRequired { too_long } => invalid(
                "purpose_required",
                message,
                &[("purpose", if too_long { "too_long" } else { "required" })],
            ),
            Error::IdentifierReleased => {
                errors::status(Code::FailedPrecondition, "identifier_released", message)
            }
            Error::InvalidSteps => invalid("invalid_steps", message, &[("steps", "invalid")]),
            Error::Upstream { service, status } => errors::upstream(service, status),
            Error::ChangePending => {
                errors::retry_later("change_pending", message, Duration::from_secs(2))
            }
            Error::InvalidStatus => invalid("invalid_status", message, &[("statuses", "invalid")]),
            Error::InvalidPageToken => {
                invalid("invalid_page_token", message, &[("page_token", "invalid")])
            }
            Error::InvalidCursor => invalid("invalid_cursor", message, &[("cursor", "invalid")]),
            Error::CursorExpired => {
                errors::status(Code::FailedPrecondition, "cursor_expired", message)
            }
            Error::TooManyStreams => {
                rate_limited("too_many_streams", message, Duration::from_secs(5))
            }
            Error::SessionEnded => Status::unauthenticated(message),
            Error::Hash(HashError::Overloaded(overloaded)) => overloaded.status(),
            Error::Hash(e @ (HashError::Argon2(_) | HashError::Join(_))) => internal(&e),
            Error::Db(e) => errors::db(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use examreg_kit::errors::reason_of;

    #[test]
    fn the_reasons_listed_are_the_ones_answered() {
        let errors = [
            Error::InvalidCitizenship,
            Error::InvalidIin(IinError::Checksum),
            Error::IinRequired,
            Error::InvalidPassportNumber(PassportError::Invalid),
            Error::IdentifierRequired,
            Error::InvalidEmail(EmailError::Invalid),
            Error::InvalidEmailProof,
            Error::WeakPassword(PolicyError::TooShort),
            Error::TermsNotAccepted("terms_sha256"),
            Error::AlreadyRegistered,
            Error::InvalidCredentials,
            Error::TooManyAttempts {
                wait: Duration::from_secs(60),
            },
            Error::AddressBudgetExhausted {
                wait: Duration::from_secs(60),
            },
            Error::RefreshTokenReused,
            Error::InvalidRefreshToken,
            Error::AccountNotFound,
            Error::AccountBlocked,
            Error::LoginRequired,
            Error::InvalidClient,
            Error::ReasonRequired { too_long: false },
            Error::PurposeRequired { too_long: false },
            Error::IdentifierReleased,
            Error::InvalidSteps,
            Error::ChangePending,
            Error::InvalidStatus,
            Error::InvalidPageToken,
            Error::InvalidCursor,
            Error::CursorExpired,
            Error::TooManyStreams,
        ];
        let reasons: Vec<String> = errors
            .into_iter()
            .map(|e| reason_of(&Status::from(e)).reason)
            .collect();
        assert_eq!(reasons, REASONS);
        let status = Status::from(Error::Hash(HashError::Argon2("bad params".into())));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("params"), "{}", status.message());
    }
}
