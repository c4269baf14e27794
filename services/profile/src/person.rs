//! Validation of personal data at the edge: names, birth date and sex against the IIN,
//! mobile phone numbers. After this module, code handles only valid values.

use chrono::{Datelike, NaiveDate};
use examreg_domain::{Iin, Sex};
use phonenumber::{Mode, Type, country::Id, metadata::DATABASE};
use unicode_normalization::UnicodeNormalization;

/// The longest name part, in characters.
pub const NAME_MAX: usize = 100;

/// Why a value is refused; `field` and `code` go into the error's field violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub field: &'static str,
    pub reason: &'static str,
}

const fn invalid(code: &'static str, field: &'static str, reason: &'static str) -> Invalid {
    Invalid {
        code,
        field,
        reason,
    }
}

/// A letter of the Russian or Kazakh Cyrillic alphabet, or of the Latin script (with the
/// diacritics of Latin-1 and Latin Extended-A, as in Kazakh Latin, Turkish or German names).
fn is_name_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || matches!(c, 'А'..='я' | 'Ё' | 'ё')
        || matches!(
            c,
            'Ә' | 'ә'
                | 'Ғ'
                | 'ғ'
                | 'Қ'
                | 'қ'
                | 'Ң'
                | 'ң'
                | 'Ө'
                | 'ө'
                | 'Ұ'
                | 'ұ'
                | 'Ү'
                | 'ү'
                | 'Һ'
                | 'һ'
                | 'І'
                | 'і'
        )
        || (matches!(c, '\u{C0}'..='\u{17F}') && c != '×' && c != '÷')
}

/// One part of a name: trimmed, inner whitespace collapsed to one space, NFC; letters with
/// single hyphens, apostrophes or spaces between them.
pub fn name_part(input: &str, field: &'static str) -> Result<String, Invalid> {
    // The bound holds for the value as given too, spaces included, as the API documents it.
    if input.chars().count() > NAME_MAX {
        return Err(invalid("name_too_long", field, "too_long"));
    }
    let collapsed = input.split_whitespace().collect::<Vec<_>>().join(" ");
    // Typographic apostrophes and the modifier letter people paste become one apostrophe.
    let value: String = collapsed
        .nfc()
        .map(|c| match c {
            '’' | 'ʼ' | '`' | '‘' => '\'',
            '‐' | '‑' | '–' => '-',
            other => other,
        })
        .collect();
    if value.is_empty() {
        return Err(invalid("name_required", field, "required"));
    }
    if value.chars().count() > NAME_MAX {
        return Err(invalid("name_too_long", field, "too_long"));
    }
    let chars: Vec<char> = value.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if is_name_letter(c) {
            continue;
        }
        let separator = matches!(c, '-' | '\'' | ' ');
        let between_letters = i > 0
            && i + 1 < chars.len()
            && is_name_letter(chars[i - 1])
            && is_name_letter(chars[i + 1]);
        if !separator || !between_letters {
            return Err(invalid(
                "name_invalid_characters",
                field,
                "invalid_characters",
            ));
        }
    }
    Ok(value)
}

/// Whether an applicant born on `birth` is between 14 and 100 years old on `today`.
pub fn check_age(birth: NaiveDate, today: NaiveDate) -> Result<(), Invalid> {
    let mut age = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    if birth > today || !(14..=100).contains(&age) {
        return Err(invalid(
            "birth_date_out_of_range",
            "birth_date",
            "out_of_range",
        ));
    }
    Ok(())
}

/// Birth date and sex against what the IIN encodes.
pub fn check_against_iin(iin: &Iin, birth: NaiveDate, sex: Sex) -> Result<(), Invalid> {
    if iin.birth_date() != birth {
        return Err(invalid(
            "birth_date_mismatch_iin",
            "birth_date",
            "mismatch_iin",
        ));
    }
    if iin.sex() != sex {
        return Err(invalid("sex_mismatch_iin", "sex", "mismatch_iin"));
    }
    Ok(())
}

/// A mobile number as people type it, in E.164. Numbers without a country code are read as
/// Kazakhstan numbers (`8 701 …` is the trunk prefix, as people dial at home). A citizen of
/// Kazakhstan gives a Kazakhstan mobile: +7 shares its country code with Russia, so the
/// Kazakhstan ranges (700–708, 747, 771–778) are checked explicitly as well.
pub fn mobile_phone(input: &str, kazakhstan_citizen: bool) -> Result<String, Invalid> {
    const FIELD: &str = "mobile_phone";
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(invalid("phone_required", FIELD, "required"));
    }
    // Only what people write in a phone number; the library would skip other text.
    if trimmed.len() > 32
        || !trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '(' | ')' | '-' | '.'))
    {
        return Err(invalid("phone_invalid", FIELD, "invalid"));
    }
    let number = phonenumber::parse(Some(Id::KZ), trimmed)
        .map_err(|_| invalid("phone_invalid", FIELD, "invalid"))?;
    if !number.is_valid() {
        return Err(invalid("phone_invalid", FIELD, "invalid"));
    }
    let e164 = number.format().mode(Mode::E164).to_string();
    let kazakhstan_mobile = number.code().value() == 7
        && number.country().id() == Some(Id::KZ)
        && is_kazakhstan_mobile_range(&e164);
    if kazakhstan_citizen {
        if !kazakhstan_mobile {
            return Err(invalid("phone_not_kz_mobile", FIELD, "not_kz_mobile"));
        }
        return Ok(e164);
    }
    let mobile = kazakhstan_mobile
        || matches!(
            number.number_type(&DATABASE),
            Type::Mobile | Type::FixedLineOrMobile
        );
    if !mobile {
        return Err(invalid("phone_not_mobile", FIELD, "not_mobile"));
    }
    Ok(e164)
}

/// +7 700–708, 747, 771–778 followed by seven digits.
fn is_kazakhstan_mobile_range(e164: &str) -> bool {
    let Some(national) = e164.strip_prefix("+7") else {
        return false;
    };
    national.len() == 10
        && match &national[..3] {
            "747" => true,
            prefix => {
                let n: u16 = prefix.parse().unwrap_or(0);
                (700..=708).contains(&n) || (771..=778).contains(&n)
            }
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_and_checked() {
        assert_eq!(name_part("  Әбілқасым  ", "surname").unwrap(), "Әбілқасым");
        assert_eq!(
            name_part("Мария   Анна", "given_name").unwrap(),
            "Мария Анна"
        );
        assert_eq!(
            name_part("Жұмабай-Қызы", "surname").unwrap(),
            "Жұмабай-Қызы"
        );
        assert_eq!(name_part("O’Neil", "surname").unwrap(), "O'Neil");
        assert_eq!(name_part("Müller", "surname").unwrap(), "Müller");
        // A decomposed й (и + combining breve) is stored composed.
        assert_eq!(name_part("Сергеи\u{306}", "surname").unwrap(), "Сергей");
        for bad in [
            "",
            "   ",
            "-Иван",
            "Иван-",
            "Ив--ан",
            "Иван1",
            "Robert'); DROP",
            "Иван 😀",
        ] {
            assert!(name_part(bad, "surname").is_err(), "{bad:?}");
        }
        assert_eq!(
            name_part(&"а".repeat(101), "surname").unwrap_err().code,
            "name_too_long"
        );
        assert!(name_part(&"а".repeat(100), "surname").is_ok());
        // As given, spaces included: what the API documents as the longest value.
        assert_eq!(
            name_part(&format!("А{}", " ".repeat(100)), "patronymic")
                .unwrap_err()
                .code,
            "name_too_long"
        );
    }

    #[test]
    fn age_is_between_14_and_100() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).unwrap();
        let ok = |y, m, d| check_age(NaiveDate::from_ymd_opt(y, m, d).unwrap(), today);
        assert!(ok(2012, 11, 25).is_ok());
        assert!(ok(2012, 11, 26).is_err());
        assert!(ok(1926, 11, 26).is_ok());
        assert!(ok(1925, 11, 24).is_err());
        assert!(ok(2030, 1, 1).is_err());
    }

    #[test]
    fn every_usual_spelling_of_a_kazakhstan_mobile_is_the_same_number() {
        for typed in [
            "8 701 777 77 77",
            "+7 (701) 777-77-77",
            "87017777777",
            "+77017777777",
            "7 701 777 7777",
            "8(701)777-77-77",
        ] {
            assert_eq!(
                mobile_phone(typed, true).unwrap(),
                "+77017777777",
                "{typed}"
            );
        }
        assert_eq!(
            mobile_phone("+7 747 123 45 67", true).unwrap(),
            "+77471234567"
        );
        assert_eq!(
            mobile_phone("+7 778 123 45 67", true).unwrap(),
            "+77781234567"
        );
    }

    #[test]
    fn a_citizen_needs_a_kazakhstan_mobile() {
        // Russian mobile (+7 9xx) and an Almaty landline (+7 727).
        assert_eq!(
            mobile_phone("+7 916 123 45 67", true).unwrap_err().code,
            "phone_not_kz_mobile"
        );
        assert_eq!(
            mobile_phone("+7 727 250 50 50", true).unwrap_err().code,
            "phone_not_kz_mobile"
        );
        // A foreign applicant may give theirs.
        assert_eq!(
            mobile_phone("+7 916 123 45 67", false).unwrap(),
            "+79161234567"
        );
        assert_eq!(
            mobile_phone("+998 90 123 45 67", false).unwrap(),
            "+998901234567"
        );
        assert_eq!(
            mobile_phone("+7 727 250 50 50", false).unwrap_err().code,
            "phone_not_mobile"
        );
        for bad in ["", "12", "+7 701 777", "call me", "+7 701 777 77 77 77"] {
            assert!(mobile_phone(bad, true).is_err(), "{bad:?}");
        }
    }
}
