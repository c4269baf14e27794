//! Reference data the gateway serves itself: the user agreement, the consent to processing
//! biometric data, and the citizenships.

use crate::Client;
use axum::Json;
use serde_json::{Value, json};

/// The version of the user agreement a registration must accept.
pub const TERMS_VERSION: &str = "2026-01";
/// The version of the consent to processing biometric data.
pub const BIOMETRIC_CONSENT_VERSION: &str = "2026-01";

pub async fn terms(client: Client) -> Json<Value> {
    let (title, text) = match client.lang {
        crate::i18n::Lang::Ru => (
            "Пользовательское соглашение",
            "Настоящее соглашение регулирует использование информационной системы оценивания (ИСО). \
             Регистрируясь, вы подтверждаете, что указываете достоверные данные о себе, используете \
             систему только для регистрации на тестирование и даёте согласие на сбор и обработку \
             ваших персональных данных в соответствии с Законом Республики Казахстан «О персональных \
             данных и их защите» для целей организации тестирования. Данные хранятся на территории \
             Республики Казахстан и удаляются по достижении цели обработки.",
        ),
        crate::i18n::Lang::Kk => (
            "Пайдаланушы келісімі",
            "Осы келісім бағалаудың ақпараттық жүйесін (БАЖ) пайдалануды реттейді. Тіркелу арқылы сіз \
             өзіңіз туралы дұрыс деректерді көрсететініңізді, жүйені тек тестілеуге тіркелу үшін \
             пайдаланатыныңызды және дербес деректеріңізді Қазақстан Республикасының «Дербес деректер \
             және оларды қорғау туралы» Заңына сәйкес тестілеуді ұйымдастыру мақсатында жинауға және \
             өңдеуге келісім беретініңізді растайсыз. Деректер Қазақстан Республикасының аумағында \
             сақталады және өңдеу мақсатына қол жеткізілгенде жойылады.",
        ),
        crate::i18n::Lang::En => (
            "User agreement",
            "This agreement governs the use of the assessment information system (ISO). By registering \
             you confirm that the data you give about yourself is true, that you use the system only to \
             register for testing, and that you consent to the collection and processing of your \
             personal data under the Law of the Republic of Kazakhstan \"On personal data and its \
             protection\" for the purpose of organizing the testing. The data is stored in the Republic \
             of Kazakhstan and deleted once the purpose of processing is met.",
        ),
    };
    Json(json!({"version": TERMS_VERSION, "title": title, "text": text}))
}

pub async fn biometric_consent(client: Client) -> Json<Value> {
    let (title, text) = match client.lang {
        crate::i18n::Lang::Ru => (
            "Согласие на обработку биометрических данных",
            "Я даю согласие на сбор и обработку моих биометрических данных (фотография лица и \
             фотографии документа, удостоверяющего личность) для подтверждения моей личности при \
             регистрации и проведении тестирования. Доступ к изображениям ограничен и журналируется; \
             данные удаляются по достижении цели обработки. Если мне нет 18 лет, согласие дано моим \
             законным представителем.",
        ),
        crate::i18n::Lang::Kk => (
            "Биометриялық деректерді өңдеуге келісім",
            "Мен тіркелу және тестілеу кезінде жеке басымды растау үшін биометриялық деректерімді \
             (бет-әлпет фотосы және жеке басты куәландыратын құжаттың фотолары) жинауға және өңдеуге \
             келісім беремін. Суреттерге қолжетімділік шектеулі және журналға жазылады; деректер өңдеу \
             мақсатына қол жеткізілгенде жойылады. Егер маған 18 жас толмаса, келісімді заңды өкілім \
             берді.",
        ),
        crate::i18n::Lang::En => (
            "Consent to processing biometric data",
            "I consent to the collection and processing of my biometric data (a photograph of my face \
             and photographs of my identity document) to confirm my identity at registration and at \
             the testing. Access to the images is restricted and logged; the data is deleted once the \
             purpose is met. If I am under 18, this consent is given by my legal representative.",
        ),
    };
    Json(json!({"version": BIOMETRIC_CONSENT_VERSION, "title": title, "text": text}))
}

/// Every ISO 3166-1 alpha-2 code (officially assigned).
const ISO_CODES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT \
MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG \
UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

pub fn is_country(code: &str) -> bool {
    code.len() == 2 && ISO_CODES.split_whitespace().any(|c| c == code)
}

/// Citizenships with names in ru, kk, en: Kazakhstan first, then the countries most applicants
/// come from. Any other ISO code is accepted too and listed under its code.
const NAMED: &[(&str, &str, &str, &str)] = &[
    ("KZ", "Казахстан", "Қазақстан", "Kazakhstan"),
    ("RU", "Россия", "Ресей", "Russia"),
    ("UZ", "Узбекистан", "Өзбекстан", "Uzbekistan"),
    ("KG", "Кыргызстан", "Қырғызстан", "Kyrgyzstan"),
    ("TJ", "Таджикистан", "Тәжікстан", "Tajikistan"),
    ("TM", "Туркменистан", "Түрікменстан", "Turkmenistan"),
    ("CN", "Китай", "Қытай", "China"),
    ("MN", "Монголия", "Моңғолия", "Mongolia"),
    ("AF", "Афганистан", "Ауғанстан", "Afghanistan"),
    ("AZ", "Азербайджан", "Әзербайжан", "Azerbaijan"),
    ("AM", "Армения", "Армения", "Armenia"),
    ("GE", "Грузия", "Грузия", "Georgia"),
    ("BY", "Беларусь", "Беларусь", "Belarus"),
    ("UA", "Украина", "Украина", "Ukraine"),
    ("MD", "Молдова", "Молдова", "Moldova"),
    ("TR", "Турция", "Түркия", "Türkiye"),
    ("IR", "Иран", "Иран", "Iran"),
    ("IN", "Индия", "Үндістан", "India"),
    ("PK", "Пакистан", "Пәкістан", "Pakistan"),
    (
        "KR",
        "Республика Корея",
        "Корея Республикасы",
        "Republic of Korea",
    ),
    ("JP", "Япония", "Жапония", "Japan"),
    ("DE", "Германия", "Германия", "Germany"),
    ("US", "США", "АҚШ", "United States"),
    ("GB", "Великобритания", "Ұлыбритания", "United Kingdom"),
];

pub async fn citizenships(client: Client) -> Json<Value> {
    let mut items: Vec<Value> = NAMED
        .iter()
        .map(|(code, ru, kk, en)| json!({"code": code, "name": client.lang.pick(ru, kk, en)}))
        .collect();
    items.extend(
        ISO_CODES
            .split_whitespace()
            .filter(|code| !NAMED.iter().any(|(named, ..)| named == code))
            .map(|code| json!({"code": code, "name": code})),
    );
    Json(json!({"items": items}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_countries() {
        assert_eq!(ISO_CODES.split_whitespace().count(), 249);
        assert!(is_country("KZ") && is_country("UZ"));
        assert!(!is_country("XX") && !is_country("kz") && !is_country("KAZ"));
        assert!(NAMED.iter().all(|(code, ..)| is_country(code)));
    }
}
