//! Names as a zone prints them, and whether a zone's names are the profile's. The profile holds
//! names in Kazakh or Russian Cyrillic or in Latin; a zone prints them in the 26 Latin letters
//! by ICAO Doc 9303 part 3's transliteration (section 6: Cyrillic in table B, Latin letters
//! with marks in table A), with the Kazakh letters as Kazakhstan's documents print them
//! (Ә A, Ғ G, Қ K, Ң N, Ө O, Ұ U, Ү U, Һ H, І I). Holders' spellings vary (an older passport's
//! `YU` for Ю, `H` for Х, a name spelt as its holder asked), so agreement is a signal for the
//! person who reviews a document, never a reason to hold one.

/// Latin Extended-A (U+0100–U+017F), each letter's base letter; `*` for the two that are two
/// letters (Ĳ, Œ).
const EXTENDED_A: &str = "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi**JjKkkLlLlLlLlLlNnNnNnnNnOoOoOo**RrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs";

/// One upper-case letter as the zone prints it: ICAO's spelling, or with `plain` the base
/// letter alone for the Latin letters that ICAO spells with two (Ä AE or A: states differ).
/// `None` for a character a zone leaves out.
fn letter(c: char, plain: bool) -> Option<&'static str> {
    let latin = |s: &'static str, base: &'static str| Some(if plain { base } else { s });
    match c {
        'A'..='Z' => {
            const AZ: [&str; 26] = [
                "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P",
                "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z",
            ];
            Some(AZ[(c as u8 - b'A') as usize])
        }
        // Cyrillic (ICAO table B), Russian and the other letters the profile takes.
        'А' | 'Ә' => Some("A"),
        'Б' => Some("B"),
        'В' => Some("V"),
        'Г' | 'Ғ' | 'Ґ' => Some("G"),
        'Д' => Some("D"),
        'Е' | 'Ё' | 'Э' => Some("E"),
        'Ж' => Some("ZH"),
        'З' => Some("Z"),
        'И' | 'Й' | 'І' | 'Ї' => Some("I"),
        'К' | 'Қ' => Some("K"),
        'Л' => Some("L"),
        'М' => Some("M"),
        'Н' | 'Ң' => Some("N"),
        'О' | 'Ө' => Some("O"),
        'П' => Some("P"),
        'Р' => Some("R"),
        'С' => Some("S"),
        'Т' => Some("T"),
        'У' | 'Ұ' | 'Ү' | 'Ў' => Some("U"),
        'Ф' => Some("F"),
        'Х' => Some("KH"),
        'Һ' => Some("H"),
        'Ц' => Some("TS"),
        'Ч' => Some("CH"),
        'Ш' => Some("SH"),
        'Щ' => Some("SHCH"),
        'Ъ' | 'Є' => Some("IE"),
        'Ы' => Some("Y"),
        'Ю' => Some("IU"),
        'Я' => Some("IA"),
        // Latin with marks (ICAO table A): the two-letter spellings, then the base letters.
        'Ä' | 'Æ' => latin("AE", "A"),
        'Å' => latin("AA", "A"),
        'Ö' | 'Ø' => latin("OE", "O"),
        'Ü' => latin("UE", "U"),
        'ß' => Some("SS"),
        'Þ' => Some("TH"),
        'Ð' => Some("D"),
        'À'..='Ö' | 'Ø'..='Þ' => {
            const LATIN1: &str = "AAAAAAACEEEEIIIIDNOOOOO*OUUUUYT";
            let i = c as usize - 'À' as usize;
            LATIN1.get(i..=i).filter(|s| *s != "*")
        }
        'Ĳ' => Some("IJ"),
        'Œ' => Some("OE"),
        'Ā'..='ſ' => {
            let i = c as usize - 'Ā' as usize;
            let base = EXTENDED_A.get(i..=i)?;
            // The table's lower-case entries stand for letters with no upper case of their own.
            match base {
                "k" => Some("K"),
                "n" => Some("N"),
                "s" => Some("S"),
                other => {
                    const AZ: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
                    let upper = other.to_ascii_uppercase();
                    AZ.find(upper.as_str()).map(|j| &AZ[j..=j])
                }
            }
        }
        _ => None,
    }
}

/// A part of a name as a zone prints it: its words in Latin letters, separated by single
/// spaces (a hyphen or a space between words is a filler there; an apostrophe is left out).
pub fn printed(name: &str, plain: bool) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for c in name.chars().flat_map(char::to_uppercase) {
        if c.is_whitespace() || matches!(c, '-' | '‐' | '‑' | '–') {
            gap = !out.is_empty();
            continue;
        }
        if let Some(latin) = letter(c, plain) {
            if gap {
                out.push(' ');
                gap = false;
            }
            out.push_str(latin);
        }
    }
    out
}

/// A names field as a document prints it for these names: surname, `<<`, given names,
/// fillers for spaces (without the fillers that pad it to its length).
fn field(surname: &str, given: &str) -> String {
    format!("{}<<{}", surname, given).replace(' ', "<")
}

/// What varies between holders' spellings of one Cyrillic name: `Y` or `I` (Й, Ы), `KH` or
/// `H` (Х), `J` or `I`. Both sides are folded before they are compared.
fn fold(field: &str) -> String {
    field.replace("KH", "H").replace(['Y', 'J'], "I")
}

/// The profile's names as a zone would print them (ICAO spelling): `(surname, given names)`.
pub fn claimed(surname: &str, given_name: &str) -> (String, String) {
    (printed(surname, false), printed(given_name, false))
}

/// Whether the names in a zone's names field (`zone_field`, as printed: `SURNAME<<GIVEN<<<`)
/// are the profile's, in either of the spellings a zone uses and with or without the
/// patronymic after the given name.
pub fn agree(zone_field: &str, surname: &str, given_name: &str, patronymic: &str) -> bool {
    // A field filled to its end may have cut the names there.
    let cut = !zone_field.ends_with('<');
    let zone = fold(zone_field.trim_end_matches('<'));
    [false, true].into_iter().any(|plain| {
        let surname = printed(surname, plain);
        let given = printed(given_name, plain);
        let with_patronymic = format!("{given} {}", printed(patronymic, plain));
        [given.clone(), with_patronymic].iter().any(|given| {
            let claimed = fold(&field(&surname, given.trim_end()));
            claimed == zone || (cut && claimed.starts_with(&zone))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_cover_their_blocks() {
        assert_eq!(EXTENDED_A.chars().count(), 128);
        // Every letter the profile takes prints as something.
        for c in ('А'..='я').chain("ЁёӘәҒғҚқҢңӨөҰұҮүҺһІі".chars()) {
            assert!(
                !printed(&c.to_string(), false).is_empty() || "ЬьЪъ".contains(c),
                "{c}"
            );
        }
        for c in ('À'..='ÿ').chain('Ā'..='ſ') {
            if c != '×' && c != '÷' {
                assert!(!printed(&c.to_string(), false).is_empty(), "{c}");
            }
        }
        assert!(printed("×÷", false).is_empty());
    }

    #[test]
    fn kazakh_russian_and_latin_names_print_as_icao_spells_them() {
        assert_eq!(printed("Абдрахманова", false), "ABDRAKHMANOVA");
        assert_eq!(printed("Әйгерім", false), "AIGERIM");
        assert_eq!(printed("Сейтқали", false), "SEITKALI");
        assert_eq!(printed("Ғалымжан", false), "GALYMZHAN");
        assert_eq!(printed("Өмірзақ", false), "OMIRZAK");
        assert_eq!(printed("Щукин", false), "SHCHUKIN");
        assert_eq!(printed("Юлия", false), "IULIIA");
        assert_eq!(printed("Пётр", false), "PETR");
        assert_eq!(printed("Подъячев", false), "PODIEIACHEV");
        assert_eq!(printed("Мельникова", false), "MELNIKOVA");
        assert_eq!(printed("Анна-Мария", false), "ANNA MARIIA");
        assert_eq!(printed("  Müller ", false), "MUELLER");
        assert_eq!(printed("Müller", true), "MULLER");
        assert_eq!(printed("O’Neil", false), "ONEIL");
        assert_eq!(printed("Łukasz Žák", false), "LUKASZ ZAK");
    }

    #[test]
    fn a_zones_names_agree_with_the_profiles_in_the_spellings_holders_have() {
        let field = |s: &str| format!("{s:<<30}");
        let zone = field("ABDRAKHMANOVA<<AIGERIM");
        assert!(agree(&zone, "Абдрахманова", "Айгерим", ""));
        assert!(agree(&zone, "АБДРАХМАНОВА", "Әйгерім", "Нұрланқызы"));
        // An older passport's spelling: Y for Й, H for Х.
        assert!(agree(
            &field("ABDRAHMANOVA<<AYGERIM"),
            "Абдрахманова",
            "Айгерим",
            ""
        ));
        // The patronymic, when the document prints it after the given name.
        assert!(agree(
            &field("IVANOV<<PETR<SERGEEVICH"),
            "Иванов",
            "Пётр",
            "Сергеевич"
        ));
        // A German passport's Ü as UE, or as U.
        assert!(agree(&field("MUELLER<<JOHANN"), "Müller", "Johann", ""));
        assert!(agree(&field("MULLER<<JOHANN"), "Müller", "Johann", ""));
        // Cut at the field's end, as the card prints a long name.
        let long = "ABDRAKHMANOVA<<AIGERIM<NURLANKYZ";
        assert!(agree(&long[..30], "Абдрахманова", "Айгерим Нурланкызы", ""));
        // Another person's names do not.
        assert!(!agree(&zone, "Абдрахманов", "Айгерим", ""));
        assert!(!agree(&zone, "Сейтқали", "Әйгерім", ""));
        assert!(!agree(&field("IVANOV<<PETR"), "Петров", "Иван", ""));
        assert_eq!(
            claimed("Иванов", "Пётр"),
            ("IVANOV".to_owned(), "PETR".to_owned())
        );
    }
}
