//! The biometrics service: the applicant's selfie and identity-document photos. This first
//! part holds the checks a photo must pass before it is kept (`checks`); storage, encryption,
//! records and the API follow.
#![forbid(unsafe_code)]

pub mod checks;
pub mod envelope;
pub mod objects;
pub mod store;
