//! The document check's terms: which photo bears a zone, where a check stands, what a person
//! decided, what the profile claims of the holder and what all that means for completing the
//! registration. No SQL here: the queue's rows are `store::checks`, the reading is `worker`,
//! the people's part is `reviews`.

use examreg_domain::{
    CaptureKind, DocumentType,
    mrz::{Format, Mismatch, Verdict, Zone},
};

/// The format of the zone the capture `kind` bears in a set of `document_type`, if any.
pub fn zone_of(document_type: DocumentType, kind: CaptureKind) -> Option<Format> {
    match (document_type, kind) {
        (DocumentType::IdCard, CaptureKind::DocumentBack) => Some(Format::Td1),
        (DocumentType::Passport, CaptureKind::DocumentFront) => Some(Format::Td3),
        (DocumentType::IdCard, CaptureKind::Face | CaptureKind::DocumentFront)
        | (DocumentType::Passport, CaptureKind::Face | CaptureKind::DocumentBack) => None,
    }
}

/// Where an account's document check stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Waiting for a worker or being read.
    Pending,
    /// Read, with what it says of the account's claim.
    Read(Box<Zone>, Verdict),
    /// Found no zone or could not read it (a stable code): the applicant retakes the photo.
    Unreadable(String),
    /// The reading itself kept failing: a person looks.
    Failed(String),
}

/// A person's decision on a check: `approve`, `retake` or `reject`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub decision: String,
    pub reason: String,
}

/// What the profile says of the holder (the applicant confirmed it), compared with the zone
/// when the set is sealed: a passport's holder typed them, so only the zone can vouch.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    pub birth_date: Option<chrono::NaiveDate>,
    pub sex: Option<examreg_domain::Sex>,
    /// Compared after transliteration, for the reviewer only.
    pub names: Option<ClaimedNames>,
    /// Only compare and record the names: never seal, never open a review.
    pub compare_only: bool,
}

/// The profile's names as typed (`Debug` prints none of them).
#[derive(Clone, Default)]
pub struct ClaimedNames {
    pub surname: String,
    pub given_name: String,
    pub patronymic: String,
}

impl std::fmt::Debug for ClaimedNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimedNames(..)")
    }
}

impl Claim {
    /// What of the claim the zone disagrees with.
    pub fn mismatches(&self, zone: &Zone) -> Vec<Mismatch> {
        let mut out = Vec::new();
        if let Some(birth) = self.birth_date
            && zone.birth_date != birth.format("%y%m%d").to_string()
        {
            out.push(Mismatch::BirthDate);
        }
        if let (Some(claimed), Some(printed)) = (self.sex, zone.sex)
            && claimed != printed
        {
            out.push(Mismatch::Sex);
        }
        out
    }
}

/// What an account's document check means for completing its registration (the rule in
/// docs/internal-api.md, "The document check and its reviews").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The zone was read and agrees with the account, or a person approved the document.
    Passed,
    /// The applicant photographs the document again: the zone was not read, the document has
    /// expired, a person asked for it, or the photo came before there were checks.
    Retake,
    /// Waits: for the reading, or for a person (the data did not agree, the reading kept
    /// failing, or a person rejected the document and the support desk has to help).
    Held,
}

/// The standing of an account's check (`None`: its zone-bearing photo has none). A set
/// sealed before there were checks keeps its seal.
pub fn standing(check: Option<&(Check, Option<Decision>)>, sealed: bool) -> Standing {
    let Some((check, decision)) = check else {
        return if sealed {
            Standing::Passed
        } else {
            Standing::Retake
        };
    };
    match (decision.as_ref().map(|d| d.decision.as_str()), check) {
        // A person's decision outranks what the reading said.
        (Some("approve"), _) => Standing::Passed,
        (Some("retake"), _) => Standing::Retake,
        (Some(_), _) => Standing::Held,
        (None, Check::Read(_, Verdict::Verified)) => Standing::Passed,
        (None, Check::Read(_, Verdict::Expired) | Check::Unreadable(_)) => Standing::Retake,
        (None, Check::Read(_, Verdict::Review(_)) | Check::Pending | Check::Failed(_)) => {
            Standing::Held
        }
    }
}
