//! `/v1/terms` and `/v1/reference`: what the screens need before anyone logs in. The gateway
//! serves the user agreement, the consent to processing biometric data and the citizenships
//! itself; the regions, contingents and institutions come from profile's directories.

use crate::{
    error::{ApiError, ApiResult},
    extract::Client,
    i18n::Lang,
    json::non_empty,
    state::AppState,
};
use axum::{
    Json, Router,
    extract::{Query, State},
    routing::get,
};
use examreg_proto::profile::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/terms/current", get(terms))
        .route("/v1/terms/biometric-consent", get(biometric_consent))
        .route("/v1/reference/citizenships", get(citizenships))
        .route("/v1/reference/regions", get(regions))
        .route("/v1/reference/contingents", get(contingents))
        .route("/v1/reference/institutions", get(institutions))
}

/// The version of the user agreement a registration must accept.
pub const TERMS_VERSION: &str = "2026-01";
/// The version of the consent to processing biometric data.
pub const BIOMETRIC_CONSENT_VERSION: &str = "2026-01";

async fn terms(client: Client) -> Json<Value> {
    let (title, text) = match client.lang {
        Lang::Ru => (
            "Пользовательское соглашение",
            "Настоящее соглашение регулирует использование информационной системы оценивания (ИСО). \
             Регистрируясь, вы подтверждаете, что указываете достоверные данные о себе, используете \
             систему только для регистрации на тестирование и даёте согласие на сбор и обработку \
             ваших персональных данных в соответствии с Законом Республики Казахстан «О персональных \
             данных и их защите» для целей организации тестирования. Данные хранятся на территории \
             Республики Казахстан и удаляются по достижении цели обработки.",
        ),
        Lang::Kk => (
            "Пайдаланушы келісімі",
            "Осы келісім бағалаудың ақпараттық жүйесін (БАЖ) пайдалануды реттейді. Тіркелу арқылы сіз \
             өзіңіз туралы дұрыс деректерді көрсететініңізді, жүйені тек тестілеуге тіркелу үшін \
             пайдаланатыныңызды және дербес деректеріңізді Қазақстан Республикасының «Дербес деректер \
             және оларды қорғау туралы» Заңына сәйкес тестілеуді ұйымдастыру мақсатында жинауға және \
             өңдеуге келісім беретініңізді растайсыз. Деректер Қазақстан Республикасының аумағында \
             сақталады және өңдеу мақсатына қол жеткізілгенде жойылады.",
        ),
        Lang::En => (
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

async fn biometric_consent(client: Client) -> Json<Value> {
    let (title, text) = match client.lang {
        Lang::Ru => (
            "Согласие на обработку биометрических данных",
            "Я даю согласие на сбор и обработку моих биометрических данных (фотография лица и \
             фотографии документа, удостоверяющего личность) для подтверждения моей личности при \
             регистрации и проведении тестирования. Доступ к изображениям ограничен и журналируется; \
             данные удаляются по достижении цели обработки. Если мне нет 18 лет, согласие дано моим \
             законным представителем.",
        ),
        Lang::Kk => (
            "Биометриялық деректерді өңдеуге келісім",
            "Мен тіркелу және тестілеу кезінде жеке басымды растау үшін биометриялық деректерімді \
             (бет-әлпет фотосы және жеке басты куәландыратын құжаттың фотолары) жинауға және өңдеуге \
             келісім беремін. Суреттерге қолжетімділік шектеулі және журналға жазылады; деректер өңдеу \
             мақсатына қол жеткізілгенде жойылады. Егер маған 18 жас толмаса, келісімді заңды өкілім \
             берді.",
        ),
        Lang::En => (
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

async fn citizenships(client: Client) -> Json<Value> {
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

/// A directory name in the caller's language.
pub fn pick(lang: Lang, name: Option<&pb::LocalizedName>) -> String {
    name.map(|n| lang.pick_owned(&n.ru, &n.kk, &n.en))
        .unwrap_or_default()
}

pub fn institution_json(lang: Lang, i: &pb::Institution) -> Value {
    json!({
        "id": i.id,
        "name": pick(lang, i.name.as_ref()),
        "region_code": i.region_code,
        "kind": i.kind,
        "archived": i.archived,
    })
}

/// `GET /v1/reference/regions`.
async fn regions(State(state): State<AppState>, client: Client) -> ApiResult<Json<Value>> {
    let regions = state.profile.regions().await?;
    let items: Vec<Value> = regions
        .iter()
        .map(|r| json!({"code": r.code, "name": pick(client.lang, r.name.as_ref())}))
        .collect();
    Ok(Json(json!({"items": items})))
}

/// `GET /v1/reference/contingents`.
async fn contingents(State(state): State<AppState>, client: Client) -> ApiResult<Json<Value>> {
    let contingents = state.profile.contingents().await?;
    let items: Vec<Value> = contingents
        .iter()
        .map(|c| {
            json!({
                "code": c.code,
                "name": pick(client.lang, c.name.as_ref()),
                "institution_kind": c.institution_kind,
            })
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

#[derive(Deserialize)]
pub struct InstitutionQuery {
    #[serde(default)]
    query: String,
    #[serde(default)]
    region_code: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: String,
}

/// `GET /v1/reference/institutions?query=&region_code=&kind=&page_size=&page_token=`.
async fn institutions(
    State(state): State<AppState>,
    client: Client,
    query: Result<Query<InstitutionQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(q) =
        query.map_err(|_| ApiError::validation("invalid_page_size", "page_size", "invalid"))?;
    let search = pb::SearchInstitutionsRequest {
        query: q.query,
        region_code: q.region_code,
        kind: q.kind,
        page_size: q.page_size.unwrap_or(20),
        page_token: q.page_token,
        language: client.lang.tag().to_owned(),
        include_archived: false,
    };
    let found = state.profile.search_institutions(search).await?;
    let items: Vec<Value> = found
        .institutions
        .iter()
        .map(|i| institution_json(client.lang, i))
        .collect();
    Ok(Json(json!({
        "items": items,
        "next_page_token": non_empty(&found.next_page_token),
    })))
}
