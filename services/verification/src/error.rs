//! Every failure the verification service reports, and the one place it becomes a gRPC status:
//! a stable reason, field violations, a retry hint where waiting helps, never internal text.

use crate::{outbox::OutboxError, store::StoreError};
use examreg_kit::errors::{self, internal, invalid, rate_limited};
use std::time::Duration;
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the email is not valid: {0}")]
    InvalidEmail(examreg_domain::EmailError),
    #[error("purpose must be registration or recovery")]
    InvalidPurpose,
    #[error("the code is six digits")]
    InvalidCodeFormat,
    /// Expired, never existed, or an id that does not parse: the caller cannot tell which.
    #[error("the code has expired or the challenge does not exist; request a new code")]
    ChallengeExpired,
    #[error("wrong code; {attempts_left} attempts left")]
    WrongCode { attempts_left: u32 },
    #[error("too many wrong codes; request a new code")]
    ChallengeBurnt,
    #[error("a new code can be sent a little later")]
    ResendTooEarly { wait: Duration },
    #[error("too many codes were requested; try again later")]
    BudgetExhausted { retry_after: Duration },
    /// The client address's budget, which the caller may lift for a client it vouches for.
    #[error("too many codes were requested from this address; try again later")]
    AddressBudgetExhausted { retry_after: Duration },
    #[error("the email proof is not one this service signed for registration, or it expired")]
    InvalidProof,
    #[error("notice must be account_exists")]
    InvalidNotice,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Every reason this service answers with (besides the auth layer's), once.
pub const REASONS: &[&str] = &[
    "invalid_email",
    "invalid_purpose",
    "invalid_code_format",
    "challenge_expired",
    "invalid_code",
    "challenge_burnt",
    "resend_too_early",
    "send_budget_exhausted",
    "address_budget_exhausted",
    "invalid_email_proof",
    "invalid_notice",
];

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::InvalidEmail(why) => invalid("invalid_email", message, &[("email", why.code())]),
            Error::InvalidPurpose => invalid("invalid_purpose", message, &[("purpose", "invalid")]),
            Error::InvalidCodeFormat => invalid(
                "invalid_code_format",
                message,
                &[("code", "invalid_format")],
            ),
            Error::ChallengeExpired => errors::status(Code::NotFound, "challenge_expired", message),
            Error::WrongCode { .. } => {
                invalid("invalid_code", message, &[("code", "invalid_code")])
            }
            Error::ChallengeBurnt => {
                errors::status(Code::FailedPrecondition, "challenge_burnt", message)
            }
            Error::ResendTooEarly { wait } => rate_limited("resend_too_early", message, wait),
            Error::BudgetExhausted { retry_after } => {
                rate_limited("send_budget_exhausted", message, retry_after)
            }
            Error::AddressBudgetExhausted { retry_after } => {
                rate_limited("address_budget_exhausted", message, retry_after)
            }
            Error::InvalidProof => invalid(
                "invalid_email_proof",
                message,
                &[("email_proof", "invalid")],
            ),
            Error::InvalidNotice => invalid("invalid_notice", message, &[("notice", "invalid")]),
            Error::Store(StoreError::Redis(e)) | Error::Outbox(OutboxError::Redis(e)) => {
                errors::unavailable("redis", &e)
            }
            Error::Store(e @ StoreError::Protocol) => internal(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use examreg_kit::errors::reason_of;

    #[test]
    fn every_reason_is_listed_and_internal_failures_say_nothing() {
        let errors = [
            Error::InvalidEmail(examreg_domain::EmailError::Invalid),
            Error::InvalidPurpose,
            Error::InvalidCodeFormat,
            Error::ChallengeExpired,
            Error::WrongCode { attempts_left: 2 },
            Error::ChallengeBurnt,
            Error::ResendTooEarly {
                wait: Duration::from_secs(30),
            },
            Error::BudgetExhausted {
                retry_after: Duration::from_secs(60),
            },
            Error::AddressBudgetExhausted {
                retry_after: Duration::from_secs(60),
            },
            Error::InvalidProof,
            Error::InvalidNotice,
        ];
        let reasons: Vec<String> = errors
            .into_iter()
            .map(|e| reason_of(&Status::from(e)).reason)
            .collect();
        assert_eq!(reasons, REASONS);
        let status = Status::from(Error::Store(StoreError::Protocol));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("script"), "{}", status.message());
    }
}
