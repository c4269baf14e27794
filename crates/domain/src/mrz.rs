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

use crate::{Iin, Sex};

pub mod names;

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

/// The codes a zone may give for a state: ISO 3166-1 alpha-3 (from Debian's `iso-codes`) and
/// ICAO's own (`D` for Germany, the British nationality classes, the United Nations, stateless
/// and refugee codes, the specimens' `UTO`). A read outside this list is unreadable: no check
/// digit covers these fields.
const STATES: &str =
    "ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA
     BGD BGR BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN
     CIV CMR COD COG COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE D DEU DJI DMA DNK DOM DZA
     ECU EGY ERI ESH ESP EST ETH EUE FIN FJI FLK FRA FRO FSM GAB GBD GBN GBO GBP GBR GBS GEO
     GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY HKG HMD HND HRV HTI HUN IDN
     IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR JPN KAZ KEN KGZ KHM KIR KNA KOR KWT LAO
     LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR MCO MDA MDG MDV MEX MHL MKD MLI MLT
     MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR NPL
     NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU RKS ROU RUS
     RWA SAU SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ
     SXM SYC SYR TCA TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA UGA UKR UMI UNA
     UNK UNO URY USA UTO UZB VAT VCT VEN VGB VIR VNM VUT WLF WSM XBA XCC XCE XCO XDC XEC XES
     XIM XMP XOM XPO XXA XXB XXC XXX YEM ZAF ZMB ZWE";

fn known_state(code: &str) -> bool {
    !code.is_empty() && STATES.split_ascii_whitespace().any(|known| known == code)
}

/// What may be at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Digit,
    Alpha,
    /// Letters, digits and fillers.
    Any,
    /// `M`, `F` or `<`.
    Sex,
}

/// A field: line, first position, length, class.
#[derive(Debug, Clone, Copy)]
struct Field {
    line: usize,
    start: usize,
    len: usize,
    class: Class,
}

const fn field(line: usize, start: usize, len: usize, class: Class) -> Field {
    Field {
        line,
        start,
        len,
        class,
    }
}

/// A check digit and the fields it covers.
struct Check {
    at: Field,
    covers: &'static [Field],
    /// A check digit that may be a filler when what it covers is all fillers (TD3's personal
    /// number).
    may_be_blank: bool,
}

struct Layout {
    code: Field,
    issuing: Field,
    number: Field,
    birth: Field,
    sex: Field,
    expiry: Field,
    nationality: Field,
    optional: &'static [Field],
    names: Field,
    checks: &'static [Check],
}

mod td1 {
    use super::{Check, Class, Field, Layout, field};
    pub(super) const CODE: Field = field(0, 0, 2, Class::Alpha);
    pub(super) const ISSUING: Field = field(0, 2, 3, Class::Alpha);
    pub(super) const NUMBER: Field = field(0, 5, 9, Class::Any);
    pub(super) const NUMBER_CHECK: Field = field(0, 14, 1, Class::Digit);
    pub(super) const OPTIONAL1: Field = field(0, 15, 15, Class::Any);
    pub(super) const BIRTH: Field = field(1, 0, 6, Class::Digit);
    pub(super) const BIRTH_CHECK: Field = field(1, 6, 1, Class::Digit);
    pub(super) const SEX: Field = field(1, 7, 1, Class::Sex);
    pub(super) const EXPIRY: Field = field(1, 8, 6, Class::Digit);
    pub(super) const EXPIRY_CHECK: Field = field(1, 14, 1, Class::Digit);
    pub(super) const NATIONALITY: Field = field(1, 15, 3, Class::Alpha);
    pub(super) const OPTIONAL2: Field = field(1, 18, 11, Class::Any);
    pub(super) const COMPOSITE: Field = field(1, 29, 1, Class::Digit);
    pub(super) const NAMES: Field = field(2, 0, 30, Class::Alpha);
    pub(super) const LAYOUT: Layout = Layout {
        code: CODE,
        issuing: ISSUING,
        number: NUMBER,
        birth: BIRTH,
        sex: SEX,
        expiry: EXPIRY,
        nationality: NATIONALITY,
        optional: &[OPTIONAL1, OPTIONAL2],
        names: NAMES,
        checks: &[
            Check {
                at: NUMBER_CHECK,
                covers: &[NUMBER],
                may_be_blank: false,
            },
            Check {
                at: BIRTH_CHECK,
                covers: &[BIRTH],
                may_be_blank: false,
            },
            Check {
                at: EXPIRY_CHECK,
                covers: &[EXPIRY],
                may_be_blank: false,
            },
            Check {
                at: COMPOSITE,
                covers: &[
                    NUMBER,
                    NUMBER_CHECK,
                    OPTIONAL1,
                    BIRTH,
                    BIRTH_CHECK,
                    EXPIRY,
                    EXPIRY_CHECK,
                    OPTIONAL2,
                ],
                may_be_blank: false,
            },
        ],
    };
}

mod td3 {
    use super::{Check, Class, Field, Layout, field};
    pub(super) const CODE: Field = field(0, 0, 2, Class::Alpha);
    pub(super) const ISSUING: Field = field(0, 2, 3, Class::Alpha);
    pub(super) const NAMES: Field = field(0, 5, 39, Class::Alpha);
    pub(super) const NUMBER: Field = field(1, 0, 9, Class::Any);
    pub(super) const NUMBER_CHECK: Field = field(1, 9, 1, Class::Digit);
    pub(super) const NATIONALITY: Field = field(1, 10, 3, Class::Alpha);
    pub(super) const BIRTH: Field = field(1, 13, 6, Class::Digit);
    pub(super) const BIRTH_CHECK: Field = field(1, 19, 1, Class::Digit);
    pub(super) const SEX: Field = field(1, 20, 1, Class::Sex);
    pub(super) const EXPIRY: Field = field(1, 21, 6, Class::Digit);
    pub(super) const EXPIRY_CHECK: Field = field(1, 27, 1, Class::Digit);
    pub(super) const PERSONAL: Field = field(1, 28, 14, Class::Any);
    pub(super) const PERSONAL_CHECK: Field = field(1, 42, 1, Class::Digit);
    pub(super) const COMPOSITE: Field = field(1, 43, 1, Class::Digit);
    pub(super) const LAYOUT: Layout = Layout {
        code: CODE,
        issuing: ISSUING,
        number: NUMBER,
        birth: BIRTH,
        sex: SEX,
        expiry: EXPIRY,
        nationality: NATIONALITY,
        optional: &[PERSONAL],
        names: NAMES,
        checks: &[
            Check {
                at: NUMBER_CHECK,
                covers: &[NUMBER],
                may_be_blank: false,
            },
            Check {
                at: BIRTH_CHECK,
                covers: &[BIRTH],
                may_be_blank: false,
            },
            Check {
                at: EXPIRY_CHECK,
                covers: &[EXPIRY],
                may_be_blank: false,
            },
            Check {
                at: PERSONAL_CHECK,
                covers: &[PERSONAL],
                may_be_blank: true,
            },
            Check {
                at: COMPOSITE,
                covers: &[
                    NUMBER,
                    NUMBER_CHECK,
                    BIRTH,
                    BIRTH_CHECK,
                    EXPIRY,
                    EXPIRY_CHECK,
                    PERSONAL,
                    PERSONAL_CHECK,
                ],
                may_be_blank: false,
            },
        ],
    };
}

impl Format {
    fn layout(self) -> &'static Layout {
        match self {
            Self::Td1 => &td1::LAYOUT,
            Self::Td3 => &td3::LAYOUT,
        }
    }

    /// Whether position `pos` of line `line` holds a digit and never anything else: a date or
    /// a check digit, each of them checked (a reader may insist on a digit there).
    pub fn digit_at(self, line: usize, pos: usize) -> bool {
        let layout = self.layout();
        [layout.birth, layout.expiry]
            .into_iter()
            .chain(
                layout
                    .checks
                    .iter()
                    .filter(|check| !check.may_be_blank)
                    .map(|check| check.at),
            )
            .any(|f| {
                f.class == Class::Digit
                    && f.line == line
                    && (f.start..f.start + f.len).contains(&pos)
            })
    }
}

impl Format {
    /// The runs of line `line` that a Kazakh document (issuing state `KAZ`) prints in digits
    /// whenever it prints them at all: the IIN at the start of the optional data, an ID card's
    /// nine-digit number, and a passport number's eight digits after its letter. Each is covered
    /// by a check digit (the IIN also by its own), so a reader may insist on a digit in a cell
    /// of a run whose other cells it read as characters, never where the run may be fillers.
    pub fn kazakh_digits(self, line: usize) -> Vec<std::ops::Range<usize>> {
        let layout = self.layout();
        // Both formats print the number and the optional data's first part on one line.
        let (optional, number) = (layout.optional[0], layout.number);
        if line != optional.line || line != number.line {
            return Vec::new();
        }
        let iin = optional.start..optional.start + 12;
        match self {
            Self::Td1 => vec![iin, number.start..number.start + number.len],
            Self::Td3 => vec![iin, number.start + 1..number.start + number.len],
        }
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
    if read.len() != format.lines() {
        return Err(Unreadable::Lines {
            expected: format.lines(),
            read: read.len(),
        });
    }
    let mut lines = read
        .iter()
        .enumerate()
        .map(|(i, line)| fit(&clean(line), format.width()).ok_or(Unreadable::Length(i + 1)))
        .collect::<Result<Vec<_>, _>>()?;
    let layout = format.layout();
    for f in [
        layout.code,
        layout.issuing,
        layout.birth,
        layout.sex,
        layout.expiry,
        layout.nationality,
        layout.names,
    ] {
        apply_class(&mut lines, f);
    }
    for check in layout.checks {
        apply_class(&mut lines, check.at);
    }
    let issuing = text(&lines, layout.issuing);
    let code = text(&lines, layout.code);
    // Positions where a letter and a digit are both possible.
    let mut mixed: Vec<Vec<bool>> = lines.iter().map(|l| vec![false; l.len()]).collect();
    for f in layout.optional.iter().chain([&layout.number]) {
        for flag in &mut mixed[f.line][f.start..f.start + f.len] {
            *flag = true;
        }
    }
    let mut fix = |lines: &mut Vec<Vec<u8>>, f: Field| {
        apply_class(lines, f);
        for flag in &mut mixed[f.line][f.start..f.start + f.len] {
            *flag = false;
        }
    };
    if issuing == "KAZ" {
        // Kazakhstan's formats: the optional data begins with the IIN (twelve digits); an ID
        // card's number is nine digits, a passport's a letter and eight digits.
        let iin = Field {
            len: 12,
            class: Class::Digit,
            ..layout.optional[0]
        };
        if slice(&lines, iin).iter().all(|&c| c != b'<') {
            fix(&mut lines, iin);
        }
        let number = layout.number;
        match format {
            Format::Td1 if code == "ID" => fix(
                &mut lines,
                Field {
                    class: Class::Digit,
                    ..number
                },
            ),
            Format::Td3 => {
                fix(
                    &mut lines,
                    Field {
                        len: 1,
                        class: Class::Alpha,
                        ..number
                    },
                );
                fix(
                    &mut lines,
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
    }
    for check in layout.checks {
        repair(&mut lines, &mixed, check)?;
    }
    let zone = Zone {
        format,
        document_code: code,
        issuing_state: issuing,
        document_number: text(&lines, layout.number),
        birth_date: text(&lines, layout.birth),
        sex: match slice(&lines, layout.sex)[0] {
            b'M' => Some(Sex::Male),
            b'F' => Some(Sex::Female),
            _ => None,
        },
        expiry_date: text(&lines, layout.expiry),
        nationality: text(&lines, layout.nationality),
        optional_data: layout
            .optional
            .iter()
            .map(|f| text(&lines, *f))
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        surname: String::new(),
        given_names: String::new(),
        lines: lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect(),
    };
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
    let names = String::from_utf8_lossy(slice(&lines, layout.names)).into_owned();
    let (surname, given) = names.split_once("<<").unwrap_or((names.as_str(), ""));
    let words = |s: &str| {
        s.split('<')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    Ok(Zone {
        surname: words(surname),
        given_names: words(given),
        ..zone
    })
}

/// ISO 3166-1 alpha-2 codes (as accounts store citizenship) with their alpha-3 (as zones print
/// them), from Debian's `iso-codes`: `KZKAZ` is Kazakhstan.
const ALPHA2_TO_3: &str =
    "ADAND AEARE AFAFG AGATG AIAIA ALALB AMARM AOAGO AQATA ARARG ASASM ATAUT AUAUS AWABW
     AXALA AZAZE BABIH BBBRB BDBGD BEBEL BFBFA BGBGR BHBHR BIBDI BJBEN BLBLM BMBMU BNBRN
     BOBOL BQBES BRBRA BSBHS BTBTN BVBVT BWBWA BYBLR BZBLZ CACAN CCCCK CDCOD CFCAF CGCOG
     CHCHE CICIV CKCOK CLCHL CMCMR CNCHN COCOL CRCRI CUCUB CVCPV CWCUW CXCXR CYCYP CZCZE
     DEDEU DJDJI DKDNK DMDMA DODOM DZDZA ECECU EEEST EGEGY EHESH ERERI ESESP ETETH FIFIN
     FJFJI FKFLK FMFSM FOFRO FRFRA GAGAB GBGBR GDGRD GEGEO GFGUF GGGGY GHGHA GIGIB GLGRL
     GMGMB GNGIN GPGLP GQGNQ GRGRC GSSGS GTGTM GUGUM GWGNB GYGUY HKHKG HMHMD HNHND HRHRV
     HTHTI HUHUN IDIDN IEIRL ILISR IMIMN ININD IOIOT IQIRQ IRIRN ISISL ITITA JEJEY JMJAM
     JOJOR JPJPN KEKEN KGKGZ KHKHM KIKIR KMCOM KNKNA KPPRK KRKOR KWKWT KYCYM KZKAZ LALAO
     LBLBN LCLCA LILIE LKLKA LRLBR LSLSO LTLTU LULUX LVLVA LYLBY MAMAR MCMCO MDMDA MEMNE
     MFMAF MGMDG MHMHL MKMKD MLMLI MMMMR MNMNG MOMAC MPMNP MQMTQ MRMRT MSMSR MTMLT MUMUS
     MVMDV MWMWI MXMEX MYMYS MZMOZ NANAM NCNCL NENER NFNFK NGNGA NINIC NLNLD NONOR NPNPL
     NRNRU NUNIU NZNZL OMOMN PAPAN PEPER PFPYF PGPNG PHPHL PKPAK PLPOL PMSPM PNPCN PRPRI
     PSPSE PTPRT PWPLW PYPRY QAQAT REREU ROROU RSSRB RURUS RWRWA SASAU SBSLB SCSYC SDSDN
     SESWE SGSGP SHSHN SISVN SJSJM SKSVK SLSLE SMSMR SNSEN SOSOM SRSUR SSSSD STSTP SVSLV
     SXSXM SYSYR SZSWZ TCTCA TDTCD TFATF TGTGO THTHA TJTJK TKTKL TLTLS TMTKM TNTUN TOTON
     TRTUR TTTTO TVTUV TWTWN TZTZA UAUKR UGUGA UMUMI USUSA UYURY UZUZB VAVAT VCVCT VEVEN
     VGVGB VIVIR VNVNM VUVUT WFWLF WSWSM YEYEM YTMYT ZAZAF ZMZMB ZWZWE";

/// The three-letter code a zone prints for the state with this two-letter code (`DEU` prints
/// as `D`).
pub fn alpha3(alpha2: &str) -> Option<&'static str> {
    let alpha2 = alpha2.to_ascii_uppercase();
    ALPHA2_TO_3
        .split_ascii_whitespace()
        .find(|pair| pair.get(..2) == Some(alpha2.as_str()))
        .map(|pair| &pair[2..])
}

/// What the account and the profile say of the holder, to compare with a zone.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The account's IIN (an ID-card holder's login).
    pub iin: Option<Iin>,
    /// The account's passport number (a passport holder's login).
    pub passport_number: Option<String>,
    /// The citizenship chosen, ISO 3166-1 alpha-2.
    pub citizenship: Option<String>,
    /// From the profile, once entered (an IIN holder's come from the IIN).
    pub birth_date: Option<chrono::NaiveDate>,
    pub sex: Option<Sex>,
}

/// Why a document is held for a person to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mismatch {
    /// The zone's IIN is another than the account's.
    Iin,
    /// An ID card's zone carries no IIN.
    NoIin,
    /// The passport's number is another than the account's.
    DocumentNumber,
    BirthDate,
    Sex,
    /// The issuing state is not the citizenship chosen (or an ID card not Kazakh).
    IssuingState,
}

impl Mismatch {
    pub fn code(self) -> &'static str {
        match self {
            Self::Iin => "iin",
            Self::NoIin => "no_iin",
            Self::DocumentNumber => "document_number",
            Self::BirthDate => "birth_date",
            Self::Sex => "sex",
            Self::IssuingState => "issuing_state",
        }
    }
}

/// What a read zone says of the applicant's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Everything that can be compared agrees.
    Verified,
    /// The document expires before `valid_until` (the exam session): another is needed.
    Expired,
    /// Something disagrees; recognition can be wrong, so a person decides.
    Review(Vec<Mismatch>),
}

/// The expiry as a date (a document's expiry is this century).
pub fn expiry(zone: &Zone) -> Option<chrono::NaiveDate> {
    let d: Vec<u32> = zone
        .expiry_date
        .chars()
        .filter_map(|c| c.to_digit(10))
        .collect();
    if d.len() != 6 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(
        2000 + (d[0] * 10 + d[1]) as i32,
        d[2] * 10 + d[3],
        d[4] * 10 + d[5],
    )
}

/// Compares a zone with the claim: identifier, birth date, sex and issuing state must agree
/// (anything missing on the claim's side is not compared), and the document must be valid on
/// `valid_until`. A mismatch outranks the expiry (a person looks at it either way).
pub fn verdict(zone: &Zone, expected: &Expected, valid_until: chrono::NaiveDate) -> Verdict {
    let mut mismatches = Vec::new();
    let birth = expected
        .birth_date
        .or_else(|| expected.iin.as_ref().map(Iin::birth_date))
        .map(|d| d.format("%y%m%d").to_string());
    let sex = expected.sex.or_else(|| expected.iin.as_ref().map(Iin::sex));
    match zone.format {
        Format::Td1 => {
            if zone.issuing_state != "KAZ" {
                mismatches.push(Mismatch::IssuingState);
            }
            match (zone.iin(), &expected.iin) {
                (Some(read), Some(claimed)) if read.as_str() != claimed.as_str() => {
                    mismatches.push(Mismatch::Iin)
                }
                (None, Some(_)) => mismatches.push(Mismatch::NoIin),
                (Some(_) | None, Some(_) | None) => {}
            }
        }
        Format::Td3 => {
            if let Some(claimed) = &expected.passport_number
                && !claimed.eq_ignore_ascii_case(&zone.document_number)
            {
                mismatches.push(Mismatch::DocumentNumber);
            }
            if let Some(state) = expected.citizenship.as_deref().and_then(alpha3)
                && state.trim_end_matches('<') != zone.issuing_state
            {
                mismatches.push(Mismatch::IssuingState);
            }
        }
    }
    if birth.is_some_and(|b| b != zone.birth_date) {
        mismatches.push(Mismatch::BirthDate);
    }
    if let (Some(claimed), Some(read)) = (sex, zone.sex)
        && claimed != read
    {
        mismatches.push(Mismatch::Sex);
    }
    if !mismatches.is_empty() {
        return Verdict::Review(mismatches);
    }
    match expiry(zone) {
        Some(date) if date >= valid_until => Verdict::Verified,
        Some(_) | None => Verdict::Expired,
    }
}

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
