//! Lines as the recogniser read them into a [`Zone`]: each position read in its field's own
//! alphabet, mixed fields repaired only when one smallest substitution satisfies the check
//! digit, every check digit and the IIN's checksum verified.

use super::{
    Format, Unreadable, Zone,
    layout::{Check, Class, Field, Layout, known_state},
};
use crate::Sex;

/// The value of a character under ICAO's check digit: digits are themselves, letters 10–35,
/// the filler 0.
fn value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'A'..=b'Z' => Some(u32::from(c - b'A') + 10),
        b'<' => Some(0),
        _ => None,
    }
}

/// The check digit of `chars` (weights 7, 3, 1 repeating, modulo 10).
pub fn check_digit(chars: impl IntoIterator<Item = u8>) -> Option<u8> {
    let mut sum = 0u32;
    for (i, c) in chars.into_iter().enumerate() {
        sum += value(c)? * [7, 3, 1][i % 3];
    }
    u8::try_from(sum % 10).ok().map(|d| b'0' + d)
}

/// Whether `c` read where a digit must stand is taken for one (a digit, or a letter that the
/// repair reads as its look-alike digit); a reader insists on a digit anywhere else.
pub fn reads_as_digit(c: u8) -> bool {
    as_digit(c).is_ascii_digit()
}

/// What a recogniser reads for a character that is a digit here.
fn as_digit(c: u8) -> u8 {
    match c {
        b'O' | b'Q' | b'D' | b'U' => b'0',
        b'I' | b'L' | b'J' => b'1',
        b'Z' => b'2',
        b'S' => b'5',
        b'G' => b'6',
        b'T' => b'7',
        b'B' => b'8',
        b'A' => b'4',
        other => other,
    }
}

/// What a recogniser reads for a character that is a letter here.
fn as_letter(c: u8) -> u8 {
    match c {
        b'0' => b'O',
        b'1' => b'I',
        b'2' => b'Z',
        b'4' => b'A',
        b'5' => b'S',
        b'6' => b'G',
        b'7' => b'T',
        b'8' => b'B',
        other => other,
    }
}

/// The look-alikes a character in a mixed field may have been.
fn alternatives(c: u8) -> &'static [u8] {
    match c {
        b'0' => b"OD",
        b'O' => b"0D",
        b'D' => b"0O",
        b'Q' => b"0O",
        b'1' => b"I",
        b'I' => b"1",
        b'L' => b"1",
        b'2' => b"Z",
        b'Z' => b"2",
        b'5' => b"S",
        b'S' => b"5",
        b'6' => b"G",
        b'G' => b"6",
        b'8' => b"B",
        b'B' => b"8",
        _ => b"",
    }
}

/// The characters a recogniser may give for the filler `<`, and other lookalikes of the zone's
/// alphabet, mapped to it; everything else outside the alphabet is dropped.
pub fn clean(read: &str) -> String {
    read.chars()
        .filter_map(|c| match c {
            'A'..='Z' | '0'..='9' | '<' => Some(c),
            'a'..='z' => Some(c.to_ascii_uppercase()),
            '«' | '‹' | '〈' | '《' | 'く' | '(' | '[' | '{' | '≤' | '＜' => Some('<'),
            'К' => Some('K'),
            _ => None,
        })
        .collect()
}

/// A line brought to `width` by lengthening or shortening its longest run of fillers (a
/// recogniser may merge or split the chevrons of a long run), if it is off by a few.
fn fit(line: &str, width: usize) -> Option<Vec<u8>> {
    let mut bytes = line.as_bytes().to_vec();
    if bytes.len() == width {
        return Some(bytes);
    }
    let off = bytes.len().abs_diff(width);
    if off > 4 {
        return None;
    }
    let (mut start, mut best, mut run) = (0, 0, 0);
    for (i, &c) in bytes.iter().enumerate() {
        run = if c == b'<' { run + 1 } else { 0 };
        if run > best {
            best = run;
            start = i + 1 - run;
        }
    }
    if best == 0 {
        return None;
    }
    if bytes.len() > width {
        if best <= off {
            return None;
        }
        bytes.drain(start..start + off);
    } else {
        bytes.splice(start..start, std::iter::repeat_n(b'<', off));
    }
    Some(bytes)
}

fn apply_class(lines: &mut [Vec<u8>], f: Field) {
    for c in &mut lines[f.line][f.start..f.start + f.len] {
        *c = match f.class {
            Class::Digit => as_digit(*c),
            Class::Alpha => as_letter(*c),
            Class::Sex => match *c {
                b'H' => b'M',
                b'E' | b'P' => b'F',
                other => other,
            },
            Class::Any => *c,
        };
    }
}

fn slice(lines: &[Vec<u8>], f: Field) -> &[u8] {
    &lines[f.line][f.start..f.start + f.len]
}

fn agrees(lines: &[Vec<u8>], check: &Check) -> bool {
    let at = slice(lines, check.at)[0];
    let covered = check
        .covers
        .iter()
        .flat_map(|f| slice(lines, *f).iter().copied());
    if check.may_be_blank
        && at == b'<'
        && check
            .covers
            .iter()
            .all(|f| slice(lines, *f).iter().all(|&c| c == b'<'))
    {
        return true;
    }
    check_digit(covered) == Some(at)
}

/// Makes `check` agree by substituting look-alikes in the mixed positions it covers (those of
/// a mixed field that no national format fixed), trying one substitution, then two; a repair
/// is taken only if it is the only one of its size.
fn repair(lines: &mut [Vec<u8>], mixed: &[Vec<bool>], check: &Check) -> Result<(), Unreadable> {
    if agrees(lines, check) {
        return Ok(());
    }
    let line = check.at.line;
    let positions: Vec<(usize, usize)> = check
        .covers
        .iter()
        .flat_map(|f| (f.start..f.start + f.len).map(move |i| (f.line, i)))
        .filter(|&(l, i)| mixed[l][i] && !alternatives(lines[l][i]).is_empty())
        .collect();
    for size in 1..=2usize {
        let mut found: Option<Vec<Vec<u8>>> = None;
        let mut count = 0;
        let mut try_candidate = |candidate: Vec<Vec<u8>>| {
            if agrees(&candidate, check) {
                count += 1;
                found = Some(candidate);
            }
        };
        for (a, &(la, ia)) in positions.iter().enumerate() {
            for &alt_a in alternatives(lines[la][ia]) {
                let mut one = lines.to_vec();
                one[la][ia] = alt_a;
                if size == 1 {
                    try_candidate(one);
                    continue;
                }
                for &(lb, ib) in &positions[a + 1..] {
                    for &alt_b in alternatives(lines[lb][ib]) {
                        let mut two = one.clone();
                        two[lb][ib] = alt_b;
                        try_candidate(two);
                    }
                }
            }
        }
        match (count, found) {
            (1, Some(repaired)) => {
                lines.clone_from_slice(&repaired);
                return Ok(());
            }
            (0, _) => {}
            _ => return Err(Unreadable::Ambiguous(line + 1)),
        }
    }
    Err(Unreadable::CheckDigit(line + 1))
}

fn text(lines: &[Vec<u8>], f: Field) -> String {
    String::from_utf8_lossy(slice(lines, f))
        .trim_end_matches('<')
        .replace('<', " ")
        .trim()
        .to_string()
}

fn valid_date(yymmdd: &str) -> bool {
    let digits: Vec<u32> = yymmdd.chars().filter_map(|c| c.to_digit(10)).collect();
    digits.len() == 6
        && (1..=12).contains(&(digits[2] * 10 + digits[3]))
        && (1..=31).contains(&(digits[4] * 10 + digits[5]))
}

/// Parses lines read off a document as a zone of `format`, with the repairs described above.
pub fn parse(format: Format, read: &[String]) -> Result<Zone, Unreadable> {
    let layout = format.layout();
    let mut lines = fitted(format, read)?;
    read_in_class(&mut lines, layout);
    let mixed = mixed_positions(format, layout, &mut lines);
    for check in layout.checks {
        repair(&mut lines, &mixed, check)?;
    }
    verified(fields(format, layout, &lines))
}

/// The lines read, cleaned and fitted to the format's width.
fn fitted(format: Format, read: &[String]) -> Result<Vec<Vec<u8>>, Unreadable> {
    if read.len() != format.lines() {
        return Err(Unreadable::Lines {
            expected: format.lines(),
            read: read.len(),
        });
    }
    read.iter()
        .enumerate()
        .map(|(i, line)| fit(&clean(line), format.width()).ok_or(Unreadable::Length(i + 1)))
        .collect()
}

/// Every field of one alphabet (codes, dates, sex, names, check digits) read in it.
fn read_in_class(lines: &mut [Vec<u8>], layout: &Layout) {
    for f in [
        layout.code,
        layout.issuing,
        layout.birth,
        layout.sex,
        layout.expiry,
        layout.nationality,
        layout.names,
    ] {
        apply_class(lines, f);
    }
    for check in layout.checks {
        apply_class(lines, check.at);
    }
}

/// The positions where a letter and a digit are both possible (the number and the optional
/// data), less those a Kazakh document prints in one alphabet, which are read in it here.
fn mixed_positions(format: Format, layout: &Layout, lines: &mut [Vec<u8>]) -> Vec<Vec<bool>> {
    let mut mixed: Vec<Vec<bool>> = lines.iter().map(|l| vec![false; l.len()]).collect();
    for f in layout.optional.iter().chain([&layout.number]) {
        for flag in &mut mixed[f.line][f.start..f.start + f.len] {
            *flag = true;
        }
    }
    if text(lines, layout.issuing) != "KAZ" {
        return mixed;
    }
    let mut fix = |lines: &mut [Vec<u8>], f: Field| {
        apply_class(lines, f);
        for flag in &mut mixed[f.line][f.start..f.start + f.len] {
            *flag = false;
        }
    };
    // Kazakhstan's formats: the optional data begins with the IIN (twelve digits); an ID
    // card's number is nine digits, a passport's a letter and eight digits.
    let iin = Field {
        len: 12,
        class: Class::Digit,
        ..layout.optional[0]
    };
    if slice(lines, iin).iter().all(|&c| c != b'<') {
        fix(lines, iin);
    }
    let number = layout.number;
    match format {
        Format::Td1 if text(lines, layout.code) == "ID" => fix(
            lines,
            Field {
                class: Class::Digit,
                ..number
            },
        ),
        Format::Td3 => {
            fix(
                lines,
                Field {
                    len: 1,
                    class: Class::Alpha,
                    ..number
                },
            );
            fix(
                lines,
                Field {
                    start: number.start + 1,
                    len: 8,
                    class: Class::Digit,
                    ..number
                },
            );
        }
        Format::Td1 => {}
    }
    mixed
}

/// The zone's fields, from its lines.
fn fields(format: Format, layout: &Layout, lines: &[Vec<u8>]) -> Zone {
    let names = String::from_utf8_lossy(slice(lines, layout.names)).into_owned();
    let (surname, given) = names.split_once("<<").unwrap_or((names.as_str(), ""));
    let words = |s: &str| {
        s.split('<')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    Zone {
        format,
        document_code: text(lines, layout.code),
        issuing_state: text(lines, layout.issuing),
        document_number: text(lines, layout.number),
        birth_date: text(lines, layout.birth),
        sex: match slice(lines, layout.sex)[0] {
            b'M' => Some(Sex::Male),
            b'F' => Some(Sex::Female),
            _ => None,
        },
        expiry_date: text(lines, layout.expiry),
        nationality: text(lines, layout.nationality),
        optional_data: layout
            .optional
            .iter()
            .map(|f| text(lines, *f))
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        surname: words(surname),
        given_names: words(given),
        lines: lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect(),
    }
}

/// The zone, if its dates are dates, its states are states and a Kazakh IIN passes its own
/// checksum: no check digit covers the states, and a date's may agree with nonsense.
fn verified(zone: Zone) -> Result<Zone, Unreadable> {
    if !valid_date(&zone.birth_date) || !valid_date(&zone.expiry_date) {
        return Err(Unreadable::Date);
    }
    if !known_state(&zone.issuing_state) || !known_state(&zone.nationality) {
        return Err(Unreadable::State);
    }
    if zone.issuing_state == "KAZ"
        && zone.optional_data.len() >= 12
        && zone.optional_data.as_bytes()[..12]
            .iter()
            .all(u8::is_ascii_digit)
        && zone.iin().is_none()
    {
        return Err(Unreadable::Iin);
    }
    Ok(zone)
}
