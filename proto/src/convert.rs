//! Conversions between the wire and the domain, in one place: timestamps, and each gRPC enum
//! to and from its domain state. A proto enum's `UNSPECIFIED` (or a number this build does not
//! know) has no domain value: `from_wire` gives `None` and the caller decides what that means.

use crate::{
    biometrics::v1 as bio, identity::v1 as id, onboarding::v1 as onb, profile::v1 as prof,
};
use chrono::{DateTime, Utc};
use examreg_domain::{AccountStatus, CaptureKind, DocumentType, RegistrationEventKind, Sex, Step};
use prost_types::Timestamp;

/// A time on the wire.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A time given in milliseconds since the epoch (what Redis' clock gives), on the wire.
pub fn timestamp_ms(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// A time off the wire; `None` when absent or out of range.
pub fn datetime(at: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    at.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
}

/// A domain state read from a proto enum field (an `i32` in prost's messages).
pub trait FromWire: Sized {
    fn from_wire(value: i32) -> Option<Self>;
}

/// Pairs a domain enum with its proto enum, variant by variant, both ways.
macro_rules! wire_enum {
    ($domain:ident <=> $proto:path { $($variant:ident),+ $(,)? }) => {
        impl From<$domain> for $proto {
            fn from(value: $domain) -> Self {
                match value {
                    $($domain::$variant => <$proto>::$variant,)+
                }
            }
        }

        impl TryFrom<$proto> for $domain {
            type Error = $proto;

            fn try_from(value: $proto) -> Result<Self, $proto> {
                match value {
                    $(<$proto>::$variant => Ok($domain::$variant),)+
                    #[allow(unreachable_patterns)]
                    other => Err(other),
                }
            }
        }

        impl FromWire for $domain {
            fn from_wire(value: i32) -> Option<Self> {
                <$proto>::try_from(value).ok()?.try_into().ok()
            }
        }
    };
}

wire_enum!(AccountStatus <=> id::AccountStatus { Active, Registered, Blocked });
wire_enum!(RegistrationEventKind <=> id::RegistrationEventKind {
    AccountCreated,
    RegistrationCompleted,
    RegistrationReopened,
    AccountBlocked,
    AccountUnblocked,
    AccountErased,
    IdentifierReleased,
});
wire_enum!(CaptureKind <=> bio::CaptureKind { Face, DocumentFront, DocumentBack });
wire_enum!(DocumentType <=> bio::DocumentType { IdCard, Passport });
wire_enum!(Sex <=> prof::Sex { Male, Female });
wire_enum!(Step <=> onb::Step {
    Face,
    DocumentFront,
    DocumentBack,
    Consent,
    Name,
    Details,
    Education,
});

/// The steps a request names, in the applicant's order: its typed field, or (empty: a client
/// built before it) the text forms. `None` when none is named, one is not a step, or a typed
/// value is one this build does not know. Every service reads a reopening's steps with this.
pub fn steps_from_wire(typed: &[i32], text: &[String]) -> Option<Vec<Step>> {
    if typed.is_empty() {
        return Step::list(text);
    }
    let steps: Vec<&str> = typed
        .iter()
        .map(|&v| Step::from_wire(v).map(Step::as_str))
        .collect::<Option<_>>()?;
    Step::list(&steps)
}

/// The text forms of the steps a message names: from its typed field when every value there
/// is one this build knows, else from the text forms (a peer built before the typed field, or
/// one that knows a step this build does not: the text names it too).
pub fn steps_named(typed: &[i32], text: &[String]) -> Vec<String> {
    let known: Option<Vec<String>> = typed
        .iter()
        .map(|&v| Step::from_wire(v).map(|s| s.as_str().to_owned()))
        .collect();
    match known {
        Some(steps) if !steps.is_empty() => steps,
        Some(_) | None => text.to_vec(),
    }
}

/// Steps as the wire's text forms (the `repeated string` fields).
pub fn steps_to_wire(steps: impl IntoIterator<Item = Step>) -> Vec<String> {
    steps.into_iter().map(|s| s.as_str().to_owned()).collect()
}

/// The typed twin of a list of text forms (what is not a step, such as `complete`, has none).
pub fn steps_typed(text: &[impl AsRef<str>]) -> Vec<i32> {
    text.iter()
        .filter_map(|t| Step::parse(t.as_ref()))
        .map(|s| onb::Step::from(s) as i32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_to_the_nanosecond() {
        let at = DateTime::from_timestamp(1_790_000_000, 123_456_789).unwrap();
        assert_eq!(datetime(Some(&timestamp(at))), Some(at));
        assert_eq!(datetime(None), None);
        let broken = Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(datetime(Some(&broken)), None);
        let before_epoch = timestamp_ms(-1);
        assert_eq!(
            (before_epoch.seconds, before_epoch.nanos),
            (-1, 999_000_000)
        );
        assert_eq!(
            datetime(Some(&timestamp_ms(1_790_000_000_123))),
            DateTime::from_timestamp_millis(1_790_000_000_123)
        );
    }

    #[test]
    fn steps_are_read_typed_or_from_an_older_peers_text() {
        let text = |s: &[&str]| -> Vec<String> { s.iter().map(|s| s.to_string()).collect() };
        let typed = steps_typed(&["consent", "face", "complete"]);
        assert_eq!(typed, [onb::Step::Consent as i32, onb::Step::Face as i32]);
        // Typed wins; the text is read when there is none (an older client).
        assert_eq!(
            steps_from_wire(&typed, &text(&["education"])),
            Some(vec![Step::Face, Step::Consent])
        );
        assert_eq!(
            steps_from_wire(&[], &text(&["education", "face"])),
            Some(vec![Step::Face, Step::Education])
        );
        assert_eq!(steps_from_wire(&[], &[]), None);
        assert_eq!(steps_from_wire(&[0], &[]), None);
        assert_eq!(steps_from_wire(&[99], &text(&["face"])), None);
        // A reader takes the typed list, or the text when the typed one is empty or names a
        // step it does not know (a newer peer's).
        assert_eq!(steps_named(&typed, &text(&["x"])), ["consent", "face"]);
        assert_eq!(steps_named(&[], &text(&["face"])), ["face"]);
        assert_eq!(
            steps_named(&[99], &text(&["selfie_video"])),
            ["selfie_video"]
        );
    }

    #[test]
    fn every_state_round_trips_and_unspecified_has_none() {
        for &kind in CaptureKind::ALL {
            assert_eq!(
                CaptureKind::from_wire(bio::CaptureKind::from(kind).into()),
                Some(kind)
            );
        }
        for &status in AccountStatus::ALL {
            assert_eq!(
                AccountStatus::from_wire(id::AccountStatus::from(status).into()),
                Some(status)
            );
        }
        for &kind in RegistrationEventKind::ALL {
            assert_eq!(
                RegistrationEventKind::from_wire(id::RegistrationEventKind::from(kind).into()),
                Some(kind)
            );
        }
        for &document in DocumentType::ALL {
            assert_eq!(
                DocumentType::from_wire(bio::DocumentType::from(document).into()),
                Some(document)
            );
        }
        for &sex in Sex::ALL {
            assert_eq!(Sex::from_wire(prof::Sex::from(sex).into()), Some(sex));
        }
        for &step in Step::ALL {
            assert_eq!(Step::from_wire(onb::Step::from(step).into()), Some(step));
        }
        assert_eq!(Sex::from_wire(0), None);
        assert_eq!(CaptureKind::from_wire(99), None);
        assert_eq!(
            AccountStatus::try_from(id::AccountStatus::Unspecified),
            Err(id::AccountStatus::Unspecified)
        );
    }
}
