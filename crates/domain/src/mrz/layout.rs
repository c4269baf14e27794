//! Where each field of a zone sits, and what may be written there: TD1 (an ID card) and TD3
//! (a passport), by ICAO Doc 9303.

use super::Format;

/// The codes a zone may give for a state: ISO 3166-1 alpha-3 (from Debian's `iso-codes`) and
/// ICAO's own (`D` for Germany, the British nationality classes, the United Nations, stateless
/// and refugee codes, the specimens' `UTO`). A read outside this list is unreadable: no check
/// digit covers these fields.
pub(super) const STATES: &str =
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

pub(super) fn known_state(code: &str) -> bool {
    !code.is_empty() && STATES.split_ascii_whitespace().any(|known| known == code)
}

/// What may be at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Digit,
    Alpha,
    /// Letters, digits and fillers.
    Any,
    /// `M`, `F` or `<`.
    Sex,
}

/// A field: line, first position, length, class.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    pub(super) line: usize,
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) class: Class,
}

pub(super) const fn field(line: usize, start: usize, len: usize, class: Class) -> Field {
    Field {
        line,
        start,
        len,
        class,
    }
}

/// A check digit and the fields it covers.
pub(super) struct Check {
    pub(super) at: Field,
    pub(super) covers: &'static [Field],
    /// A check digit that may be a filler when what it covers is all fillers (TD3's personal
    /// number).
    pub(super) may_be_blank: bool,
}

pub(super) struct Layout {
    pub(super) code: Field,
    pub(super) issuing: Field,
    pub(super) number: Field,
    pub(super) birth: Field,
    pub(super) sex: Field,
    pub(super) expiry: Field,
    pub(super) nationality: Field,
    pub(super) optional: &'static [Field],
    pub(super) names: Field,
    pub(super) checks: &'static [Check],
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
    pub(super) fn layout(self) -> &'static Layout {
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
