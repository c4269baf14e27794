//! What a read zone says of an account's claim: the IIN or passport number and citizenship it
//! was registered with, the birth date and sex the profile holds, and whether the document
//! is valid long enough.

use super::{Format, Zone};
use crate::{Iin, Sex};

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
