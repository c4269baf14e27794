//! The closed sets of values the suite stores and sends: each is one enum with its text form
//! written once. The text form is what Postgres stores (a `text` column with a `CHECK` listing
//! the same words), what the public JSON says and what logs show; the gRPC enums convert to and
//! from these in `examreg_proto::convert`.

/// Declares an enum whose variants each have one text form, with `as_str`, `parse`, `ALL`,
/// serde under the text form and (feature `sqlx`) a `sqlx::Type` over a `text` column.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(type_name = "text"))]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $text)]
                #[cfg_attr(feature = "sqlx", sqlx(rename = $text))]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &[Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// The value of a text form; `None` for anything else (no case folding).
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// Where an account stands.
    pub enum AccountStatus {
        /// Created: may log in and go on with the registration.
        Active = "active",
        /// The registration is complete.
        Registered = "registered",
        /// Blocked by staff: no login, no refresh.
        Blocked = "blocked",
    }
}

text_enum! {
    /// A change of a registration, as the change feed tells it.
    pub enum RegistrationEventKind {
        AccountCreated = "created",
        RegistrationCompleted = "completed",
        /// Support reopened steps: the applicant redoes them and completes again.
        RegistrationReopened = "reopened",
        AccountBlocked = "blocked",
        AccountUnblocked = "unblocked",
        /// The person's data was erased from the suite.
        AccountErased = "erased",
        /// The account's identifier was freed for its real holder.
        IdentifierReleased = "released",
    }
}

text_enum! {
    /// What the support desk did to an account, as the operator log records it.
    pub enum SupportAction {
        Block = "block",
        Unblock = "unblock",
        UnlockLogin = "unlock_login",
        Reopen = "reopen",
        ReleaseIdentifier = "release_identifier",
        Erase = "erase",
    }
}

text_enum! {
    /// What an account's login is: an IIN, or a non-resident's passport number.
    pub enum LoginKind {
        Iin = "iin",
        Passport = "passport",
    }
}

text_enum! {
    /// The identity document an applicant photographs.
    pub enum DocumentType {
        /// Kazakh ID card: front and back.
        IdCard = "id_card",
        /// Passport: the data page only.
        Passport = "passport",
    }
}

text_enum! {
    /// What a photo shows; it decides the size and the face rules.
    pub enum CaptureKind {
        Face = "face",
        DocumentFront = "document_front",
        DocumentBack = "document_back",
    }
}

text_enum! {
    /// Sex as the IIN encodes it and the profile records it.
    pub enum Sex {
        Male = "male",
        Female = "female",
    }
}

text_enum! {
    /// A step of the onboarding after the first login, in the applicant's order: the photos
    /// and the consent (biometrics' steps), then the personal data (profile's). What a
    /// reopening names, what the services list as missing or to redo, what the gateway's
    /// onboarding and the pages show (with `complete` after them).
    pub enum Step {
        Face = "face",
        DocumentFront = "document_front",
        DocumentBack = "document_back",
        Consent = "consent",
        Name = "name",
        Details = "details",
        Education = "education",
    }
}

impl Step {
    /// Whether biometrics owns the step (a photo or the consent); profile owns the others.
    pub fn is_biometric(self) -> bool {
        matches!(
            self,
            Self::Face | Self::DocumentFront | Self::DocumentBack | Self::Consent
        )
    }

    /// The photo the step takes, if it takes one.
    pub fn capture(self) -> Option<CaptureKind> {
        match self {
            Self::Face => Some(CaptureKind::Face),
            Self::DocumentFront => Some(CaptureKind::DocumentFront),
            Self::DocumentBack => Some(CaptureKind::DocumentBack),
            Self::Consent | Self::Name | Self::Details | Self::Education => None,
        }
    }

    /// The steps `named` (text forms, spaces around them ignored) in the applicant's order,
    /// each once; `None` when none is named or one is not a step.
    pub fn list(named: &[impl AsRef<str>]) -> Option<Vec<Self>> {
        let parsed: Vec<Self> = named
            .iter()
            .map(|n| Self::parse(n.as_ref().trim()))
            .collect::<Option<_>>()?;
        if parsed.is_empty() {
            return None;
        }
        Some(
            Self::ALL
                .iter()
                .copied()
                .filter(|s| parsed.contains(s))
                .collect(),
        )
    }
}

impl DocumentType {
    /// The step whose photo bears the machine-readable zone: a card's back, a passport's
    /// data page.
    pub fn zone_step(self) -> Step {
        match self {
            Self::IdCard => Step::DocumentBack,
            Self::Passport => Step::DocumentFront,
        }
    }
}

impl DocumentType {
    /// The photos this document needs, in the order the applicant takes them.
    pub fn captures(self) -> &'static [CaptureKind] {
        match self {
            Self::IdCard => &[
                CaptureKind::Face,
                CaptureKind::DocumentFront,
                CaptureKind::DocumentBack,
            ],
            Self::Passport => &[CaptureKind::Face, CaptureKind::DocumentFront],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_listed_once_in_the_applicants_order_and_unknown_ones_refused() {
        assert_eq!(
            Step::list(&["education", " face ", "consent", "face"]),
            Some(vec![Step::Face, Step::Consent, Step::Education])
        );
        assert_eq!(Step::list(&[] as &[&str]), None);
        assert_eq!(Step::list(&["face", "password"]), None);
        // The photo steps are the capture kinds, with the same text forms.
        for &kind in CaptureKind::ALL {
            assert_eq!(
                Step::parse(kind.as_str()).and_then(Step::capture),
                Some(kind)
            );
        }
        let biometric: Vec<&str> = Step::ALL
            .iter()
            .filter(|s| s.is_biometric())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            biometric,
            ["face", "document_front", "document_back", "consent"]
        );
    }

    fn round_trips<T: Copy + PartialEq + std::fmt::Debug>(
        all: &[T],
        as_str: fn(T) -> &'static str,
        parse: fn(&str) -> Option<T>,
    ) {
        for &value in all {
            assert_eq!(parse(as_str(value)), Some(value));
        }
    }

    #[test]
    fn every_text_form_parses_back() {
        round_trips(
            AccountStatus::ALL,
            AccountStatus::as_str,
            AccountStatus::parse,
        );
        round_trips(LoginKind::ALL, LoginKind::as_str, LoginKind::parse);
        round_trips(DocumentType::ALL, DocumentType::as_str, DocumentType::parse);
        round_trips(CaptureKind::ALL, CaptureKind::as_str, CaptureKind::parse);
        round_trips(Sex::ALL, Sex::as_str, Sex::parse);
    }

    #[test]
    fn serde_uses_the_text_form_and_refuses_others() {
        assert_eq!(
            serde_json::to_string(&DocumentType::IdCard).unwrap(),
            "\"id_card\""
        );
        assert_eq!(
            serde_json::from_str::<CaptureKind>("\"document_back\"").unwrap(),
            CaptureKind::DocumentBack
        );
        assert!(serde_json::from_str::<Sex>("\"MALE\"").is_err());
        assert_eq!(AccountStatus::parse("Active"), None);
    }

    #[test]
    fn a_passport_needs_no_back() {
        assert!(
            !DocumentType::Passport
                .captures()
                .contains(&CaptureKind::DocumentBack)
        );
        assert_eq!(DocumentType::IdCard.captures().len(), 3);
    }
}
