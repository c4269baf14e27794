//! The machine-readable zone of an identity document (ICAO Doc 9303): the three 30-character
//! lines on the back of an ID card (TD1) and the two 44-character lines at the foot of a
//! passport's data page (TD3), parsed from what the recogniser read.
//!
//! A read is accepted only when every check digit agrees: the document number's, the birth
//! date's, the expiry's, the personal number's (TD3) and the composite one over all of them.
//! Recognisers confuse letters and digits that look alike (`0`/`O`/`D`, `1`/`I`, `2`/`Z`,
//! `5`/`S`, `8`/`B`), so before the checks each position is read in its field's own alphabet
//! (a date has only digits, a country code only letters), and a field that mixes both (a
//! document number) is repaired only when exactly one of the smallest sets of look-alike
//! substitutions satisfies its check digit. Anything else is unreadable: a zone is never
//! guessed. On a Kazakh document the optional data carries the IIN, which is read as digits
//! and must pass the IIN's own checksum. Names are parsed too, but no check digit covers
//! them: they are a soft signal only (`names`).

//!
//! The module is cut by what each part knows: `layout` (where each field sits in TD1 and TD3,
//! and its alphabet), `parse` (lines into a [`Zone`], check digits and repairs), `verdict`
//! (a zone against what the account says), and, for the tests' cards and the benchmark only,
//! `printer` (a zone's lines from its fields, behind the `printer` feature).

use crate::{Iin, Sex};

mod layout;
pub mod names;
mod parse;
#[cfg(any(test, feature = "printer"))]
mod printer;
mod verdict;

pub use parse::{check_digit, clean, parse, reads_as_digit};
#[cfg(any(test, feature = "printer"))]
pub use printer::Printed;
pub use verdict::{Expected, Mismatch, Verdict, alpha3, expiry, verdict};

/// The two layouts read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// An ID card: three lines of 30.
    Td1,
    /// A passport: two lines of 44.
    Td3,
}

impl Format {
    pub fn lines(self) -> usize {
        match self {
            Self::Td1 => 3,
            Self::Td3 => 2,
        }
    }

    pub fn width(self) -> usize {
        match self {
            Self::Td1 => 30,
            Self::Td3 => 44,
        }
    }

    /// `td1` or `td3`, as stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Td1 => "td1",
            Self::Td3 => "td3",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "td1" => Some(Self::Td1),
            "td3" => Some(Self::Td3),
            _ => None,
        }
    }
}

/// What a zone says, every check digit verified. `Debug` masks what identifies the holder.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Zone {
    pub format: Format,
    /// `ID`, `I<`, `P<`… with fillers removed.
    pub document_code: String,
    /// ICAO three-letter code, `KAZ` for Kazakhstan.
    pub issuing_state: String,
    pub document_number: String,
    /// As printed, `YYMMDD` (the century is the reader's business).
    pub birth_date: String,
    pub sex: Option<Sex>,
    pub expiry_date: String,
    pub nationality: String,
    /// The optional data without fillers: both fields of a TD1, the personal number of a TD3.
    pub optional_data: String,
    pub surname: String,
    pub given_names: String,
    /// The lines as accepted.
    pub lines: Vec<String>,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("format", &self.format)
            .field("document_code", &self.document_code)
            .field("issuing_state", &self.issuing_state)
            .field(
                "document_number",
                &crate::mask_identifier(&self.document_number),
            )
            .field("expiry_date", &self.expiry_date)
            .field("nationality", &self.nationality)
            .finish_non_exhaustive()
    }
}

impl Zone {
    /// The names field as printed (`SURNAME<<GIVEN<NAMES<<<`), fillers and all.
    pub fn names_field(&self) -> &str {
        let names = self.format.layout().names;
        self.lines
            .get(names.line)
            .and_then(|line| line.get(names.start..names.start + names.len))
            .unwrap_or("")
    }

    /// The IIN a Kazakh document carries at the start of its optional data.
    pub fn iin(&self) -> Option<Iin> {
        if self.issuing_state != "KAZ" {
            return None;
        }
        let digits: String = self.optional_data.chars().take(12).collect();
        Iin::parse(&digits).ok()
    }
}

/// Why the lines are not a zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("expected {expected} lines, read {read}")]
    Lines { expected: usize, read: usize },
    #[error("line {0} has the wrong length")]
    Length(usize),
    #[error("a check digit disagrees with line {0}")]
    CheckDigit(usize),
    #[error("more than one repair satisfies the check digit of line {0}")]
    Ambiguous(usize),
    #[error("a date is not a date")]
    Date,
    #[error("the IIN's checksum fails")]
    Iin,
    #[error("a state's code is not one")]
    State,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn digits_are_insisted_on_only_where_every_zone_has_one() {
        let td1 = Format::Td1;
        // Line 2: the birth date and its check, the expiry and its check, the composite.
        let line2: Vec<usize> = (0..30).filter(|&p| td1.digit_at(1, p)).collect();
        assert_eq!(line2, [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 29]);
        // Line 1: the number's check digit only; the names' line: none.
        let line1: Vec<usize> = (0..30).filter(|&p| td1.digit_at(0, p)).collect();
        assert_eq!(line1, [14]);
        assert!((0..30).all(|p| !td1.digit_at(2, p)));
        // A passport's personal-number check may be a filler; its composite may not.
        assert!(!Format::Td3.digit_at(1, 42) && Format::Td3.digit_at(1, 43));
    }

    #[test]
    fn a_kazakh_documents_digit_runs_are_its_iin_and_number() {
        assert_eq!(Format::Td1.kazakh_digits(0), [15..27, 5..14]);
        assert!(Format::Td1.kazakh_digits(1).is_empty() && Format::Td1.kazakh_digits(2).is_empty());
        assert_eq!(Format::Td3.kazakh_digits(1), [28..40, 1..9]);
        assert!(Format::Td3.kazakh_digits(0).is_empty());
        // They are where a printed Kazakh card has its IIN and number.
        let printed = kazakh();
        assert!(printed[0][15..27].starts_with("070314") && &printed[0][5..14] == "045123456");
    }

    #[test]
    fn icao_specimens() {
        // ICAO Doc 9303 part 5 and part 4 specimens.
        let td1 = parse(
            Format::Td1,
            &lines(&[
                "I<UTOD231458907<<<<<<<<<<<<<<<",
                "7408122F1204159UTO<<<<<<<<<<<6",
                "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
            ]),
        )
        .unwrap();
        assert_eq!(td1.document_number, "D23145890");
        assert_eq!(td1.birth_date, "740812");
        assert_eq!(td1.sex, Some(Sex::Female));
        assert_eq!(td1.expiry_date, "120415");
        assert_eq!(td1.surname, "ERIKSSON");
        assert_eq!(td1.given_names, "ANNA MARIA");
        let td3 = parse(
            Format::Td3,
            &lines(&[
                "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
                "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
            ]),
        )
        .unwrap();
        assert_eq!(td3.document_number, "L898902C3");
        assert_eq!(td3.optional_data, "ZE184226B");
        assert_eq!(td3.nationality, "UTO");
    }

    fn kazakh() -> Vec<String> {
        let iin = Iin::compose(
            chrono::NaiveDate::from_ymd_opt(2007, 3, 14).unwrap(),
            Sex::Female,
            4321,
        )
        .unwrap();
        Printed {
            format: Format::Td1,
            document_code: "ID",
            issuing_state: "KAZ",
            document_number: "045123456",
            birth_date: "070314",
            sex: Some(Sex::Female),
            expiry_date: "320101",
            nationality: "KAZ",
            optional_data: iin.as_str(),
            surname: "ABDRAKHMANOVA",
            given_names: "AIGERIM",
        }
        .lines()
    }

    #[test]
    fn a_printed_kazakh_card_parses_with_its_iin() {
        let printed = kazakh();
        assert!(printed.iter().all(|l| l.len() == 30), "{printed:?}");
        let zone = parse(Format::Td1, &printed).unwrap();
        assert_eq!(zone.iin().unwrap().birth_date().to_string(), "2007-03-14");
        assert_eq!(zone.lines, printed);
        assert_eq!(zone.surname, "ABDRAKHMANOVA");
    }

    #[test]
    fn look_alikes_are_repaired_under_the_check_digits() {
        let printed = kazakh();
        // A date with an O and an I, the IIN with a Z, the nationality with a 0.
        let mut misread = printed.clone();
        misread[1] = misread[1].replacen("07", "O7", 1).replacen('1', "I", 1);
        misread[0] = misread[0].replacen("KAZ0", "KAZO", 1);
        let iin_start = 15;
        let mut line0: Vec<char> = misread[0].chars().collect();
        if line0[iin_start + 3] == '2' {
            line0[iin_start + 3] = 'Z';
        }
        misread[0] = line0.into_iter().collect();
        let zone = parse(Format::Td1, &misread).unwrap();
        assert_eq!(zone.lines, printed);
    }

    #[test]
    fn merged_or_split_fillers_are_refitted() {
        let printed = kazakh();
        let mut misread = printed.clone();
        misread[1] = misread[1].replacen("<<<<", "<<", 1);
        misread[2] = format!("{}<<", misread[2]);
        assert_eq!(parse(Format::Td1, &misread).unwrap().lines, printed);
    }

    #[test]
    fn a_wrong_digit_is_unreadable_never_guessed() {
        let printed = kazakh();
        let mut misread = printed.clone();
        // 3 read as 8 in the birth date: the check digit catches it, nothing repairs it.
        misread[1] = misread[1].replacen("0703", "0708", 1);
        assert!(parse(Format::Td1, &misread).is_err());
        // A digit of the document number changed: the number's check digit refuses.
        let mut misread = printed.clone();
        misread[0] = misread[0].replacen("045", "046", 1);
        assert!(parse(Format::Td1, &misread).is_err());
        // Too short to fit.
        assert_eq!(
            parse(Format::Td1, &lines(&["IDKAZ", &printed[1], &printed[2]])),
            Err(Unreadable::Length(1))
        );
        assert!(matches!(
            parse(Format::Td1, &printed[..2]),
            Err(Unreadable::Lines { .. })
        ));
    }

    #[test]
    fn a_passport_with_an_empty_personal_number() {
        let printed = Printed {
            format: Format::Td3,
            document_code: "P",
            issuing_state: "RUS",
            document_number: "751234567",
            birth_date: "060521",
            sex: Some(Sex::Male),
            expiry_date: "310909",
            nationality: "RUS",
            optional_data: "",
            surname: "IVANOV",
            given_names: "PETR",
        }
        .lines();
        assert!(printed.iter().all(|l| l.len() == 44), "{printed:?}");
        let zone = parse(Format::Td3, &printed).unwrap();
        assert_eq!(zone.document_number, "751234567");
        assert_eq!(zone.document_code, "P");
        assert_eq!(zone.given_names, "PETR");
    }

    #[test]
    fn the_verdict_compares_the_claim() {
        let zone = parse(Format::Td1, &kazakh()).unwrap();
        let iin = zone.iin().unwrap();
        let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let claim = Expected {
            iin: Some(iin.clone()),
            ..Expected::default()
        };
        assert_eq!(verdict(&zone, &claim, today), Verdict::Verified);
        let after = chrono::NaiveDate::from_ymd_opt(2032, 1, 2).unwrap();
        assert_eq!(verdict(&zone, &claim, after), Verdict::Expired);
        let other = Iin::compose(iin.birth_date(), iin.sex(), (iin.serial() + 1) % 10000)
            .or_else(|| Iin::compose(iin.birth_date(), iin.sex(), (iin.serial() + 2) % 10000))
            .unwrap();
        let claim = Expected {
            iin: Some(other),
            ..Expected::default()
        };
        assert_eq!(
            verdict(&zone, &claim, today),
            Verdict::Review(vec![Mismatch::Iin])
        );
        let passport = parse(
            Format::Td3,
            &lines(&[
                "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
                "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
            ]),
        )
        .unwrap();
        let claim = Expected {
            passport_number: Some("L898902C3".into()),
            birth_date: chrono::NaiveDate::from_ymd_opt(1974, 8, 13),
            sex: Some(Sex::Female),
            citizenship: Some("KZ".into()),
            ..Expected::default()
        };
        assert_eq!(
            verdict(&passport, &claim, today),
            Verdict::Review(vec![Mismatch::IssuingState, Mismatch::BirthDate])
        );
        assert_eq!(alpha3("kz"), Some("KAZ"));
        assert_eq!(alpha3("XX"), None);
    }
}
