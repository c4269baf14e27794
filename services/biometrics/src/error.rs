//! Every failure the biometrics service reports, and the one place it becomes a gRPC status.
//! A photo that fails a check is not an error: it is an answer (`accepted = false` with its
//! reason and scores), so a front end can say what to fix.

use crate::{envelope::EnvelopeError, objects::ObjectError, store::Closed};
use examreg_kit::{
    errors::{self, internal, invalid},
    work::Overloaded,
};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the first message is the header")]
    HeaderRequired,
    #[error("kind is face, document_front or document_back")]
    InvalidKind,
    #[error("document_type is id_card or passport")]
    InvalidDocumentType,
    #[error("a document photo needs the holder: a valid IIN or passport number, and a citizenship")]
    InvalidHolder,
    #[error("a passport needs its data page only")]
    DocumentBackNotNeeded,
    #[error("the consent must be accepted")]
    ConsentNotGiven,
    /// The consent lacks this field of the text consented to (version, sha256, language).
    #[error("the consent names the version, the SHA-256 and the language of the text")]
    ConsentVersionRequired(&'static str),
    #[error("state why the data is read (at most 500 characters)")]
    PurposeRequired,
    #[error("a step to redo is face, document_front, document_back or consent")]
    InvalidStep,
    #[error("the page token is not one this listing gave")]
    InvalidPageToken,
    #[error("no such capture")]
    CaptureNotFound,
    #[error("the decision is approve, retake or reject")]
    InvalidDecision,
    #[error("give the reason for the decision (at most 500 characters)")]
    ReasonRequired,
    #[error("no such review")]
    ReviewNotFound,
    #[error("the review is decided already, or a new photo superseded it")]
    ReviewDecided,
    #[error("the registration is complete: the photos and the consent are final")]
    RegistrationCompleted,
    /// No capture set: the person never took a photo, or was erased.
    #[error("no photos of this person (none taken, or the data was erased)")]
    Erased,
    #[error("the photo checks are busy")]
    Overloaded(Overloaded),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("a photo check stopped: {0}")]
    Check(#[from] tokio::task::JoinError),
    #[error("the preview could not be made: {0}")]
    Preview(image::ImageError),
}

impl From<Closed> for Error {
    fn from(closed: Closed) -> Self {
        match closed {
            Closed::Sealed => Self::RegistrationCompleted,
            Closed::Erased => Self::Erased,
        }
    }
}

/// Every reason this service answers with (besides the auth layer's), once.
pub const REASONS: &[&str] = &[
    "header_required",
    "invalid_kind",
    "invalid_document_type",
    "invalid_holder",
    "document_back_not_needed",
    "consent_not_given",
    "consent_version_required",
    "purpose_required",
    "invalid_step",
    "invalid_page_token",
    "capture_not_found",
    "invalid_decision",
    "reason_required",
    "review_not_found",
    "review_decided",
    "registration_completed",
    "account_not_found",
    "overloaded",
];

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::HeaderRequired => invalid("header_required", message, &[("header", "required")]),
            Error::InvalidKind => invalid("invalid_kind", message, &[("kind", "invalid")]),
            Error::InvalidHolder => invalid("invalid_holder", message, &[("holder", "invalid")]),
            Error::InvalidDocumentType => invalid(
                "invalid_document_type",
                message,
                &[("document_type", "invalid")],
            ),
            Error::DocumentBackNotNeeded => invalid(
                "document_back_not_needed",
                message,
                &[("kind", "document_back_not_needed")],
            ),
            Error::ConsentNotGiven => {
                invalid("consent_not_given", message, &[("accepted", "required")])
            }
            Error::ConsentVersionRequired(field) => {
                invalid("consent_version_required", message, &[(field, "required")])
            }
            Error::PurposeRequired => {
                invalid("purpose_required", message, &[("purpose", "required")])
            }
            Error::InvalidStep => invalid("invalid_step", message, &[("steps", "invalid")]),
            Error::InvalidPageToken => {
                invalid("invalid_page_token", message, &[("page_token", "invalid")])
            }
            Error::CaptureNotFound => errors::status(Code::NotFound, "capture_not_found", message),
            Error::InvalidDecision => {
                invalid("invalid_decision", message, &[("decision", "invalid")])
            }
            Error::ReasonRequired => invalid("reason_required", message, &[("reason", "required")]),
            Error::ReviewNotFound => errors::status(Code::NotFound, "review_not_found", message),
            Error::ReviewDecided => {
                errors::status(Code::FailedPrecondition, "review_decided", message)
            }
            Error::RegistrationCompleted => {
                errors::status(Code::FailedPrecondition, "registration_completed", message)
            }
            Error::Erased => errors::status(Code::NotFound, "account_not_found", message),
            Error::Overloaded(overloaded) => overloaded.status(),
            Error::Store(e) => errors::db(e),
            Error::Objects(e @ ObjectError::Unavailable(_)) => {
                errors::unavailable("object store", &e)
            }
            Error::Objects(e @ ObjectError::Missing) => internal(&e),
            Error::Envelope(e) => internal(&e),
            Error::Check(e) => internal(&e),
            Error::Preview(e) => internal(&e),
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
            Error::HeaderRequired,
            Error::InvalidKind,
            Error::InvalidDocumentType,
            Error::InvalidHolder,
            Error::DocumentBackNotNeeded,
            Error::ConsentNotGiven,
            Error::ConsentVersionRequired("sha256"),
            Error::PurposeRequired,
            Error::InvalidStep,
            Error::InvalidPageToken,
            Error::CaptureNotFound,
            Error::InvalidDecision,
            Error::ReasonRequired,
            Error::ReviewNotFound,
            Error::ReviewDecided,
            Error::RegistrationCompleted,
            Error::Erased,
            Error::Overloaded(Overloaded {
                retry_after: std::time::Duration::from_secs(1),
            }),
        ];
        let reasons: Vec<String> = errors
            .into_iter()
            .map(|e| reason_of(&Status::from(e)).reason)
            .collect();
        assert_eq!(reasons, REASONS);
        let status = Status::from(Error::Objects(ObjectError::Missing));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("object"), "{}", status.message());
    }
}
