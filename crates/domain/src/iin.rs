//! The IIN (ЖСН / ИИН), Kazakhstan's 12-digit individual identification number:
//! `YYMMDD C NNNN K`. C gives the century and the sex (1/2 = 1800s, 3/4 = 1900s, 5/6 = 2000s;
//! odd male, even female); K is a check digit computed with up to two weight passes. A number
//! whose both passes give 10 is never issued.

use crate::Sex;
use chrono::{Datelike, NaiveDate};
use std::fmt;

/// Why a string is not an IIN. `code()` is the stable reason sent to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IinError {
    #[error("an IIN is exactly 12 digits")]
    Format,
    #[error("the 7th digit of an IIN must be 1 to 6")]
    CenturyDigit,
    #[error("the first six digits of an IIN are not a real birth date")]
    BirthDate,
    #[error("an IIN with both check passes giving 10 is never issued")]
    NeverIssued,
    #[error("the check digit of the IIN does not match")]
    Checksum,
}

impl IinError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Format => "invalid_format",
            Self::CenturyDigit => "invalid_century_digit",
            Self::BirthDate => "invalid_birth_date",
            Self::NeverIssued => "never_issued",
            Self::Checksum => "invalid_checksum",
        }
    }
}

/// A structurally valid IIN. Its `Debug` and `Display` are masked; `as_str` gives the digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Iin {
    digits: [u8; 12],
    text: String,
    birth_date: NaiveDate,
    sex: Sex,
}

const FIRST_WEIGHTS: [u32; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const SECOND_WEIGHTS: [u32; 11] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];

/// The check digit for the first 11 digits, or `None` when both passes give 10.
fn check_digit(first11: &[u8]) -> Option<u8> {
    let pass = |weights: &[u32; 11]| -> u32 {
        first11
            .iter()
            .zip(weights)
            .map(|(d, w)| u32::from(*d) * w)
            .sum::<u32>()
            % 11
    };
    let first = pass(&FIRST_WEIGHTS);
    if first != 10 {
        return u8::try_from(first).ok();
    }
    let second = pass(&SECOND_WEIGHTS);
    if second != 10 {
        return u8::try_from(second).ok();
    }
    None
}

impl Iin {
    /// Parses an IIN, accepting surrounding whitespace and nothing else. A birth date in the
    /// future (relative to `today`) is refused: such a number has not been issued.
    pub fn parse_at(input: &str, today: NaiveDate) -> Result<Self, IinError> {
        let text = input.trim();
        if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IinError::Format);
        }
        let mut digits = [0u8; 12];
        for (slot, byte) in digits.iter_mut().zip(text.bytes()) {
            *slot = byte - b'0';
        }
        let (century, sex) = match digits[6] {
            1 => (1800, Sex::Male),
            2 => (1800, Sex::Female),
            3 => (1900, Sex::Male),
            4 => (1900, Sex::Female),
            5 => (2000, Sex::Male),
            6 => (2000, Sex::Female),
            _ => return Err(IinError::CenturyDigit),
        };
        let two = |i: usize| i32::from(digits[i]) * 10 + i32::from(digits[i + 1]);
        let year = century + two(0);
        let month = u32::try_from(two(2)).map_err(|_| IinError::BirthDate)?;
        let day = u32::try_from(two(4)).map_err(|_| IinError::BirthDate)?;
        let birth_date = NaiveDate::from_ymd_opt(year, month, day).ok_or(IinError::BirthDate)?;
        if birth_date > today {
            return Err(IinError::BirthDate);
        }
        match check_digit(&digits[..11]) {
            None => Err(IinError::NeverIssued),
            Some(k) if k == digits[11] => Ok(Self {
                digits,
                text: text.to_owned(),
                birth_date,
                sex,
            }),
            Some(_) => Err(IinError::Checksum),
        }
    }

    /// Parses against today's date (UTC).
    pub fn parse(input: &str) -> Result<Self, IinError> {
        Self::parse_at(input, chrono::Utc::now().date_naive())
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    pub fn sex(&self) -> Sex {
        self.sex
    }

    /// The serial part (digits 8–11), handy to build test numbers.
    pub fn serial(&self) -> u16 {
        self.digits[7..11]
            .iter()
            .fold(0u16, |acc, d| acc * 10 + u16::from(*d))
    }

    /// Builds the IIN for a birth date, sex and serial, or `None` when that combination would
    /// never be issued. Used by tests and tools that need valid numbers.
    pub fn compose(birth_date: NaiveDate, sex: Sex, serial: u16) -> Option<Self> {
        let year = birth_date.year();
        let century_digit = match (year / 100, sex) {
            (18, Sex::Male) => 1,
            (18, Sex::Female) => 2,
            (19, Sex::Male) => 3,
            (19, Sex::Female) => 4,
            (20, Sex::Male) => 5,
            (20, Sex::Female) => 6,
            _ => return None,
        };
        if serial > 9999 {
            return None;
        }
        let first11 = format!(
            "{:02}{:02}{:02}{century_digit}{serial:04}",
            year % 100,
            birth_date.month(),
            birth_date.day()
        );
        let digits: Vec<u8> = first11.bytes().map(|b| b - b'0').collect();
        let k = check_digit(&digits)?;
        Self::parse_at(&format!("{first11}{k}"), birth_date).ok()
    }
}

impl fmt::Debug for Iin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iin({})", crate::mask_identifier(&self.text))
    }
}

impl fmt::Display for Iin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::mask_identifier(&self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn accepts_known_valid_numbers_with_their_birth_date_and_sex() {
        let male = Iin::parse_at("791028302728", today()).unwrap();
        assert_eq!(
            male.birth_date(),
            NaiveDate::from_ymd_opt(1979, 10, 28).unwrap()
        );
        assert_eq!(male.sex(), Sex::Male);
        let female = Iin::parse_at(" 061211600012 ", today()).unwrap();
        assert_eq!(
            female.birth_date(),
            NaiveDate::from_ymd_opt(2006, 12, 11).unwrap()
        );
        assert_eq!(female.sex(), Sex::Female);
        assert_eq!(female.as_str(), "061211600012");
    }

    #[test]
    fn rejects_a_wrong_check_digit() {
        assert_eq!(
            Iin::parse_at("791028302729", today()),
            Err(IinError::Checksum)
        );
    }

    #[test]
    fn rejects_bad_shapes_dates_and_century_digits() {
        assert_eq!(Iin::parse_at("79102830272", today()), Err(IinError::Format));
        assert_eq!(
            Iin::parse_at("7910283027a8", today()),
            Err(IinError::Format)
        );
        assert_eq!(
            Iin::parse_at("791028 02728", today()),
            Err(IinError::Format)
        );
        assert_eq!(
            Iin::parse_at("791328302728", today()),
            Err(IinError::BirthDate)
        );
        assert_eq!(
            Iin::parse_at("790230302728", today()),
            Err(IinError::BirthDate)
        );
        assert_eq!(
            Iin::parse_at("791028002728", today()),
            Err(IinError::CenturyDigit)
        );
        assert_eq!(
            Iin::parse_at("791028702728", today()),
            Err(IinError::CenturyDigit)
        );
        // 2030 is in the future.
        let future = (1..100)
            .find_map(|serial| {
                Iin::compose(
                    NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
                    Sex::Male,
                    serial,
                )
            })
            .unwrap();
        assert_eq!(
            Iin::parse_at(future.as_str(), today()),
            Err(IinError::BirthDate)
        );
    }

    #[test]
    fn uses_the_second_weight_pass_when_the_first_gives_ten() {
        // Find a number whose first pass gives 10 but second does not, and check we accept it
        // with the second pass's digit and refuse it with 0 (what a first-pass-only check gives).
        let birth = NaiveDate::from_ymd_opt(2001, 5, 17).unwrap();
        let mut found = false;
        for serial in 0..10_000u16 {
            let first11 = format!("010517{}{serial:04}", 5);
            let digits: Vec<u8> = first11.bytes().map(|b| b - b'0').collect();
            let first: u32 = digits
                .iter()
                .zip(FIRST_WEIGHTS)
                .map(|(d, w)| u32::from(*d) * w)
                .sum::<u32>()
                % 11;
            let second: u32 = digits
                .iter()
                .zip(SECOND_WEIGHTS)
                .map(|(d, w)| u32::from(*d) * w)
                .sum::<u32>()
                % 11;
            if first == 10 && second != 10 {
                let iin = Iin::parse_at(&format!("{first11}{second}"), today()).unwrap();
                assert_eq!(iin.birth_date(), birth);
                assert_eq!(iin.serial(), serial);
                let wrong = if second == 0 { 1 } else { 0 };
                assert_eq!(
                    Iin::parse_at(&format!("{first11}{wrong}"), today()),
                    Err(IinError::Checksum)
                );
                found = true;
                break;
            }
        }
        assert!(found, "no second-pass number in the range");
    }

    #[test]
    fn never_issues_a_number_whose_both_passes_give_ten() {
        let mut found = false;
        for serial in 0..10_000u16 {
            let first11 = format!("9901013{serial:04}");
            let digits: Vec<u8> = first11.bytes().map(|b| b - b'0').collect();
            if check_digit(&digits).is_none() {
                for k in 0..10 {
                    assert_eq!(
                        Iin::parse_at(&format!("{first11}{k}"), today()),
                        Err(IinError::NeverIssued)
                    );
                }
                found = true;
                break;
            }
        }
        assert!(found, "no never-issued number in the range");
    }

    #[test]
    fn debug_and_display_are_masked() {
        let iin = Iin::parse_at("791028302728", today()).unwrap();
        assert_eq!(format!("{iin:?}"), "Iin(79********28)");
        assert!(!format!("{iin}").contains("1028302"));
    }

    proptest! {
        #[test]
        fn composed_numbers_round_trip(days in 0i64..60_000, male in any::<bool>(), serial in 0u16..10_000) {
            let birth = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Days::new(days as u64);
            prop_assume!(birth <= today());
            let sex = if male { Sex::Male } else { Sex::Female };
            if let Some(iin) = Iin::compose(birth, sex, serial) {
                let parsed = Iin::parse_at(iin.as_str(), today()).unwrap();
                prop_assert_eq!(parsed.birth_date(), birth);
                prop_assert_eq!(parsed.sex(), sex);
                // Any other last digit is refused.
                let text = iin.as_str();
                let k = text.as_bytes()[11] - b'0';
                let other = format!("{}{}", &text[..11], (k + 1) % 10);
                prop_assert!(Iin::parse_at(&other, today()).is_err());
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = Iin::parse_at(&s, today());
        }
    }
}
