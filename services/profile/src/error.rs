//! Every failure the profile service reports, and the one place it becomes a gRPC status.

use crate::person::Invalid;
use examreg_kit::errors::{self, internal, invalid};
use tonic::{Code, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A personal value refused by its rule (`person`): its code, field and why.
    #[error("{}", .0.code.replace('_', " "))]
    Invalid(Invalid),
    #[error("sex is male or female")]
    SexRequired,
    #[error("birth_date is YYYY-MM-DD")]
    InvalidBirthDate,
    #[error("region_code is an ISO 3166-2:KZ code from the directory")]
    UnknownRegion,
    #[error("contingent_code is a code from the directory")]
    UnknownContingent,
    #[error("institution_id is an id from the directory")]
    UnknownInstitution,
    #[error("this institution can no longer be chosen")]
    InstitutionArchived,
    #[error("this category studied at a {wanted}, not a {given}")]
    InstitutionKindMismatch { wanted: String, given: String },
    #[error("the registration is complete: name, birth date and sex no longer change")]
    Locked { field: &'static str },
    #[error("the person's data was erased")]
    Erased,
    #[error("the query is at most 100 characters")]
    QueryTooLong,
    #[error("page_size is 1–100")]
    InvalidPageSize,
    #[error("page_token comes from a previous page")]
    InvalidPageToken,
    #[error("kind is university, college or school")]
    InvalidKind,
    #[error("each name is 2–300 characters")]
    InvalidInstitutionName { field: &'static str },
    #[error("id is 2–64 of a–z, 0–9, _ and -")]
    InvalidInstitutionId,
    #[error("no institution {0}")]
    InstitutionNotFound(String),
    #[error("the id {0} is taken")]
    InstitutionExists(String),
    #[error("line {line}: {why}")]
    InvalidCsv { line: usize, why: String },
    #[error("state why the profile is read (at most 500 characters)")]
    PurposeRequired,
    #[error("a step to redo is name, details or education")]
    InvalidStep,
    #[error("this person has no profile")]
    ProfileNotFound,
    #[error("group_by is day, region, category or institution")]
    InvalidGrouping,
    #[error("time_zone is an IANA time zone name such as Asia/Almaty")]
    InvalidTimeZone,
    /// Identity's answer to reading the caller's account, passed on (unavailable as such).
    #[error("identity: {}", .0.message())]
    Identity(Status),
    #[error("{0}")]
    Inconsistent(&'static str),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Every reason this service answers with (besides the auth layer's and identity's), once.
pub const REASONS: &[&str] = &[
    "name_required",
    "name_too_long",
    "name_invalid_characters",
    "birth_date_out_of_range",
    "birth_date_mismatch_iin",
    "sex_mismatch_iin",
    "phone_required",
    "phone_invalid",
    "phone_not_kz_mobile",
    "phone_not_mobile",
    "sex_required",
    "invalid_birth_date",
    "unknown_region",
    "unknown_contingent",
    "unknown_institution",
    "institution_archived",
    "institution_kind_mismatch",
    "profile_locked",
    "account_not_found",
    "query_too_long",
    "invalid_page_size",
    "invalid_page_token",
    "invalid_kind",
    "invalid_institution_name",
    "invalid_institution_id",
    "institution_not_found",
    "institution_exists",
    "invalid_csv",
    "purpose_required",
    "invalid_step",
    "profile_not_found",
    "invalid_grouping",
    "invalid_time_zone",
];

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Invalid(e) => invalid(e.code, message, &[(e.field, e.reason)]),
            Error::SexRequired => invalid("sex_required", message, &[("sex", "required")]),
            Error::InvalidBirthDate => {
                invalid("invalid_birth_date", message, &[("birth_date", "invalid")])
            }
            Error::UnknownRegion => {
                invalid("unknown_region", message, &[("region_code", "unknown")])
            }
            Error::UnknownContingent => invalid(
                "unknown_contingent",
                message,
                &[("contingent_code", "unknown")],
            ),
            Error::UnknownInstitution => invalid(
                "unknown_institution",
                message,
                &[("institution_id", "unknown")],
            ),
            Error::InstitutionArchived => invalid(
                "institution_archived",
                message,
                &[("institution_id", "archived")],
            ),
            Error::InstitutionKindMismatch { .. } => invalid(
                "institution_kind_mismatch",
                message,
                &[("institution_id", "kind_mismatch")],
            ),
            Error::Locked { field } => invalid("profile_locked", message, &[(field, "locked")]),
            Error::Erased => errors::status(Code::NotFound, "account_not_found", message),
            Error::QueryTooLong => invalid("query_too_long", message, &[("query", "too_long")]),
            Error::InvalidPageSize => {
                invalid("invalid_page_size", message, &[("page_size", "invalid")])
            }
            Error::InvalidPageToken => {
                invalid("invalid_page_token", message, &[("page_token", "invalid")])
            }
            Error::InvalidKind => invalid("invalid_kind", message, &[("kind", "invalid")]),
            Error::InvalidInstitutionName { field } => {
                invalid("invalid_institution_name", message, &[(field, "invalid")])
            }
            Error::InvalidInstitutionId => {
                invalid("invalid_institution_id", message, &[("id", "invalid")])
            }
            Error::InstitutionNotFound(_) => {
                errors::status(Code::NotFound, "institution_not_found", message)
            }
            Error::InstitutionExists(_) => {
                errors::status(Code::AlreadyExists, "institution_exists", message)
            }
            Error::InvalidCsv { line, .. } => {
                invalid("invalid_csv", message, &[("csv", &format!("line_{line}"))])
            }
            Error::PurposeRequired => {
                invalid("purpose_required", message, &[("purpose", "required")])
            }
            Error::InvalidStep => invalid("invalid_step", message, &[("steps", "invalid")]),
            Error::ProfileNotFound => errors::status(Code::NotFound, "profile_not_found", message),
            Error::InvalidGrouping => {
                invalid("invalid_grouping", message, &[("group_by", "invalid")])
            }
            Error::InvalidTimeZone => {
                invalid("invalid_time_zone", message, &[("time_zone", "invalid")])
            }
            Error::Identity(status) => errors::upstream("identity", status),
            e @ Error::Inconsistent(_) => internal(&e),
            Error::Store(e) => errors::db(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use examreg_kit::errors::reason_of;

    #[test]
    fn the_reasons_listed_are_the_ones_answered() {
        let person = |code| {
            Error::Invalid(Invalid {
                code,
                field: "f",
                reason: "r",
            })
        };
        let errors = [
            person("name_required"),
            person("name_too_long"),
            person("name_invalid_characters"),
            person("birth_date_out_of_range"),
            person("birth_date_mismatch_iin"),
            person("sex_mismatch_iin"),
            person("phone_required"),
            person("phone_invalid"),
            person("phone_not_kz_mobile"),
            person("phone_not_mobile"),
            Error::SexRequired,
            Error::InvalidBirthDate,
            Error::UnknownRegion,
            Error::UnknownContingent,
            Error::UnknownInstitution,
            Error::InstitutionArchived,
            Error::InstitutionKindMismatch {
                wanted: "university".into(),
                given: "school".into(),
            },
            Error::Locked { field: "surname" },
            Error::Erased,
            Error::QueryTooLong,
            Error::InvalidPageSize,
            Error::InvalidPageToken,
            Error::InvalidKind,
            Error::InvalidInstitutionName { field: "name.kk" },
            Error::InvalidInstitutionId,
            Error::InstitutionNotFound("x".into()),
            Error::InstitutionExists("x".into()),
            Error::InvalidCsv {
                line: 2,
                why: "x".into(),
            },
            Error::PurposeRequired,
            Error::InvalidStep,
            Error::ProfileNotFound,
            Error::InvalidGrouping,
            Error::InvalidTimeZone,
        ];
        let reasons: Vec<String> = errors
            .into_iter()
            .map(|e| reason_of(&Status::from(e)).reason)
            .collect();
        assert_eq!(reasons, REASONS);
        let status = Status::from(Error::Inconsistent("identity answered without an account"));
        assert_eq!(status.code(), Code::Internal);
        assert!(
            !status.message().contains("identity"),
            "{}",
            status.message()
        );
    }
}
