//! A zone's lines from its fields, as a document prints them: for the tests' cards and the
//! benchmark's (the `printer` feature), never for reading.

use super::{Format, check_digit};
use crate::Sex;

/// The lines of a zone with these fields, as a document prints them (for the tests' cards and
/// the benchmark's).
#[derive(Debug, Clone)]
pub struct Printed<'a> {
    pub format: Format,
    pub document_code: &'a str,
    pub issuing_state: &'a str,
    pub document_number: &'a str,
    pub birth_date: &'a str,
    pub sex: Option<Sex>,
    pub expiry_date: &'a str,
    pub nationality: &'a str,
    pub optional_data: &'a str,
    pub surname: &'a str,
    pub given_names: &'a str,
}

fn padded(s: &str, len: usize) -> String {
    let mut out: String = s.replace(' ', "<").chars().take(len).collect();
    while out.len() < len {
        out.push('<');
    }
    out
}

impl Printed<'_> {
    pub fn lines(&self) -> Vec<String> {
        let digit = |s: &str| char::from(check_digit(s.bytes()).unwrap_or(b'<'));
        let sex = match self.sex {
            Some(Sex::Male) => 'M',
            Some(Sex::Female) => 'F',
            None => '<',
        };
        let names = |len| {
            padded(
                &format!(
                    "{}<<{}",
                    self.surname.replace(' ', "<"),
                    self.given_names.replace(' ', "<")
                ),
                len,
            )
        };
        let number = padded(self.document_number, 9);
        let birth = padded(self.birth_date, 6);
        let expiry = padded(self.expiry_date, 6);
        match self.format {
            Format::Td1 => {
                let optional = padded(self.optional_data, 15);
                let line1 = format!(
                    "{}{}{number}{}{optional}",
                    padded(self.document_code, 2),
                    padded(self.issuing_state, 3),
                    digit(&number)
                );
                let line2 = format!(
                    "{birth}{}{sex}{expiry}{}{}{}",
                    digit(&birth),
                    digit(&expiry),
                    padded(self.nationality, 3),
                    "<".repeat(11)
                );
                let composite = digit(&format!("{}{}{}", &line1[5..30], &line2[0..7], {
                    format!("{}{}", &line2[8..15], &line2[18..29])
                }));
                vec![line1, format!("{line2}{composite}"), names(30)]
            }
            Format::Td3 => {
                let personal = padded(self.optional_data, 14);
                let personal_check = if self.optional_data.is_empty() {
                    '<'
                } else {
                    digit(&personal)
                };
                let line1 = format!(
                    "{}{}{}",
                    padded(self.document_code, 2),
                    padded(self.issuing_state, 3),
                    names(39)
                );
                let line2 = format!(
                    "{number}{}{}{birth}{}{sex}{expiry}{}{personal}{personal_check}",
                    digit(&number),
                    padded(self.nationality, 3),
                    digit(&birth),
                    digit(&expiry)
                );
                let composite = digit(&format!("{}{}{}", &line2[0..10], &line2[13..20], {
                    line2[21..43].to_string()
                }));
                vec![line1, format!("{line2}{composite}")]
            }
        }
    }
}
