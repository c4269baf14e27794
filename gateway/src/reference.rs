//! `/v1/terms` and `/v1/reference`: what the screens need before anyone logs in. The gateway
//! serves the user agreement, the consent to processing biometric data and the citizenships
//! itself; the regions, contingents and institutions come from profile's directories.

use crate::{
    error::{ApiError, ApiResult},
    extract::Client,
    i18n::Lang,
    openapi::{AcceptLanguage, ErrorBody},
    state::AppState,
    texts::{Doc, Text},
};
use axum::{
    Json,
    extract::{Query, State},
};
use examreg_proto::profile::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(terms))
        .routes(routes!(biometric_consent))
        .routes(routes!(citizenships))
        .routes(routes!(regions))
        .routes(routes!(contingents))
        .routes(routes!(institutions))
}

/// A text the applicant accepts, in the caller's language, as the exam center published it.
#[derive(Serialize, ToSchema)]
pub struct Document {
    /// What a registration or consent must name to accept this text.
    #[schema(example = "2026-01")]
    version: String,
    /// The language of this text.
    #[schema(pattern = "^(kk|ru|en)$", example = "ru")]
    language: &'static str,
    title: String,
    /// Paragraphs separated by an empty line.
    text: String,
    /// The SHA-256 of the published file (lowercase hex); sent back with the acceptance, it
    /// records exactly which text was accepted.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    sha256: String,
}

impl Document {
    fn of(text: &Text) -> Self {
        Self {
            version: text.version.clone(),
            language: text.lang.tag(),
            title: text.title.clone(),
            text: text.body.clone(),
            sha256: text.sha256.clone(),
        }
    }
}

/// A code with its name in the caller's language.
#[derive(Serialize, ToSchema)]
pub struct Named {
    #[schema(example = "KZ")]
    code: String,
    #[schema(example = "Казахстан")]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct NamedList {
    items: Vec<Named>,
}

#[derive(Serialize, ToSchema)]
pub struct Contingent {
    #[schema(example = "school_graduate")]
    code: String,
    name: String,
    /// The kind of institution its education is at.
    #[schema(example = "school")]
    institution_kind: String,
}

#[derive(Serialize, ToSchema)]
pub struct ContingentList {
    items: Vec<Contingent>,
}

/// An institution of the directory.
#[derive(Serialize, ToSchema)]
pub struct Institution {
    id: String,
    name: String,
    #[schema(example = "KZ-75")]
    region_code: String,
    #[schema(example = "university")]
    kind: String,
    archived: bool,
}

/// One page of institutions.
#[derive(Serialize, ToSchema)]
pub struct InstitutionPage {
    items: Vec<Institution>,
    /// For the next page; null on the last.
    next_page_token: Option<String>,
}

/// The user agreement, localized.
#[utoipa::path(
    get,
    path = "/v1/terms/current",
    tag = "reference",
    operation_id = "getTerms",
    params(AcceptLanguage),
    responses((status = 200, description = "The agreement", body = Document))
)]
async fn terms(State(state): State<AppState>, client: Client) -> Json<Document> {
    Json(Document::of(state.texts.current(Doc::Terms, client.lang)))
}

/// The consent to processing biometric data, localized.
#[utoipa::path(
    get,
    path = "/v1/terms/biometric-consent",
    tag = "reference",
    operation_id = "getBiometricConsent",
    params(AcceptLanguage),
    responses((status = 200, description = "The consent text", body = Document))
)]
async fn biometric_consent(State(state): State<AppState>, client: Client) -> Json<Document> {
    Json(Document::of(
        state.texts.current(Doc::BiometricConsent, client.lang),
    ))
}

/// Every ISO 3166-1 alpha-2 code (officially assigned) with its names in ru, kk and en, as
/// Debian's iso-codes has them (`deploy/countries` writes the file; `deploy/test` checks it).
static COUNTRIES: std::sync::LazyLock<Vec<[&'static str; 4]>> = std::sync::LazyLock::new(|| {
    include_str!("countries.tsv")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let mut fields = line.split('\t');
            let mut next = || fields.next().expect("countries.tsv has four columns");
            [next(), next(), next(), next()]
        })
        .collect()
});

pub fn is_country(code: &str) -> bool {
    code.len() == 2 && countries().any(|c| c == code)
}

/// Every citizenship's code.
pub fn countries() -> impl Iterator<Item = &'static str> {
    COUNTRIES.iter().map(|[code, ..]| *code)
}

/// Where a name sorts in its language's alphabet (Kazakh's letters in their places, Ё after
/// Е), so the list reads in the order the applicant knows.
fn alphabetical(lang: Lang, name: &str) -> Vec<u32> {
    const RU: &str = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя";
    const KK: &str = "аәбвгғдеёжзийкқлмнңоөпрстуұүфхһцчшщъыіьэюя";
    let alphabet = match lang {
        Lang::Ru => RU,
        Lang::Kk => KK,
        Lang::En => "",
    };
    name.to_lowercase()
        .chars()
        .map(|c| {
            alphabet
                .chars()
                .position(|a| a == c)
                .map_or(0x1_0000 + u32::from(c), |i| {
                    u32::try_from(i).unwrap_or(0) + 0x100
                })
        })
        .collect()
}

/// The countries most applicants come from, Kazakhstan first, in this order at the top of the
/// list and under the short names people use (iso-codes has "Российская Федерация").
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

/// Every citizenship (ISO 3166-1 alpha-2), named in the caller's language: Kazakhstan first,
/// then the countries most applicants come from, then every other in alphabetical order.
#[utoipa::path(
    get,
    path = "/v1/reference/citizenships",
    tag = "reference",
    operation_id = "listCitizenships",
    params(AcceptLanguage),
    responses((status = 200, description = "The list", body = NamedList))
)]
async fn citizenships(client: Client) -> Json<NamedList> {
    Json(NamedList {
        items: citizenship_list(client.lang),
    })
}

/// A citizenship's name in `lang` (the code itself for one not in the list).
pub fn country_name(lang: Lang, code: &str) -> String {
    NAMED
        .iter()
        .find(|(named, ..)| *named == code)
        .map(|(_, ru, kk, en)| lang.pick(ru, kk, en))
        .or_else(|| {
            COUNTRIES
                .iter()
                .find(|[c, ..]| *c == code)
                .map(|[_, ru, kk, en]| lang.pick(ru, kk, en))
        })
        .unwrap_or(code)
        .to_owned()
}

fn citizenship_list(lang: Lang) -> Vec<Named> {
    let mut items: Vec<Named> = NAMED
        .iter()
        .map(|(code, ru, kk, en)| Named {
            code: (*code).to_owned(),
            name: lang.pick(ru, kk, en).to_owned(),
        })
        .collect();
    let mut rest: Vec<Named> = COUNTRIES
        .iter()
        .filter(|[code, ..]| !NAMED.iter().any(|(named, ..)| named == code))
        .map(|[code, ru, kk, en]| Named {
            code: (*code).to_owned(),
            name: lang.pick(ru, kk, en).to_owned(),
        })
        .collect();
    rest.sort_by_cached_key(|named| alphabetical(lang, &named.name));
    items.extend(rest);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_countries() {
        assert_eq!(countries().count(), 249);
        assert!(is_country("KZ") && is_country("UZ"));
        assert!(!is_country("XX") && !is_country("kz") && !is_country("KAZ"));
        assert!(NAMED.iter().all(|(code, ..)| is_country(code)));
    }

    #[test]
    fn every_citizenship_is_named_in_each_language_kazakhstan_first() {
        for lang in [Lang::Ru, Lang::Kk, Lang::En] {
            let list = citizenship_list(lang);
            assert_eq!(list.len(), 249);
            assert_eq!(list[0].code, "KZ");
            for named in &list {
                assert!(
                    !named.name.is_empty() && named.name != named.code,
                    "{lang:?}: {} unnamed",
                    named.code
                );
            }
            let france = list.iter().find(|n| n.code == "FR").unwrap();
            assert_eq!(france.name, lang.pick("Франция", "Франция", "France"));
        }
        // Past the frequent ones, alphabetical in the language's own order: Kazakh's Ә
        // right after А, not after Я.
        let kk = citizenship_list(Lang::Kk);
        let rest = &kk[NAMED.len()..];
        let first_after_a = rest.iter().position(|n| !n.name.starts_with('А')).unwrap();
        assert!(
            rest[first_after_a].name.starts_with('Ә') || rest[first_after_a].name.starts_with('Б')
        );
        let ru = citizenship_list(Lang::Ru);
        let names: Vec<&str> = ru[NAMED.len()..].iter().map(|n| n.name.as_str()).collect();
        assert!(names.first().unwrap().starts_with('А'), "{names:?}");
        assert!(names.last().unwrap().starts_with('Я'), "{names:?}");
    }
}

/// A directory name in the caller's language.
pub fn pick(lang: Lang, name: Option<&pb::LocalizedName>) -> String {
    name.map(|n| lang.pick_owned(&n.ru, &n.kk, &n.en))
        .unwrap_or_default()
}

impl Institution {
    pub fn of(lang: Lang, i: &pb::Institution) -> Self {
        Self {
            id: i.id.clone(),
            name: pick(lang, i.name.as_ref()),
            region_code: i.region_code.clone(),
            kind: i.kind.clone(),
            archived: i.archived,
        }
    }
}

/// The regions of Kazakhstan (ISO 3166-2:KZ), named in the caller's language.
#[utoipa::path(
    get,
    path = "/v1/reference/regions",
    tag = "reference",
    operation_id = "listRegions",
    params(AcceptLanguage),
    responses(
        (status = 200, description = "The list", body = NamedList),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn regions(State(state): State<AppState>, client: Client) -> ApiResult<Json<NamedList>> {
    let regions = state.profile.regions().await?;
    let items = regions
        .iter()
        .map(|r| Named {
            code: r.code.clone(),
            name: pick(client.lang, r.name.as_ref()),
        })
        .collect();
    Ok(Json(NamedList { items }))
}

/// Who the applicant is as a learner (school graduate, college graduate, …), named in the
/// caller's language, with the kind of institution each studies at: only the categories with
/// at least one institution of their kind to choose.
#[utoipa::path(
    get,
    path = "/v1/reference/contingents",
    tag = "reference",
    operation_id = "listContingents",
    params(AcceptLanguage),
    responses(
        (status = 200, description = "The list", body = ContingentList),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn contingents(
    State(state): State<AppState>,
    client: Client,
) -> ApiResult<Json<ContingentList>> {
    let contingents = state.profile.contingents(false).await?;
    let items = contingents
        .iter()
        .map(|c| Contingent {
            code: c.code.clone(),
            name: pick(client.lang, c.name.as_ref()),
            institution_kind: c.institution_kind.clone(),
        })
        .collect();
    Ok(Json(ContingentList { items }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstitutionQuery {
    /// Any part of the name in kk, ru or en (case-insensitive), up to 100 characters.
    #[serde(default)]
    #[param(max_length = 100)]
    query: String,
    /// Only this region's institutions.
    #[serde(default)]
    #[param(example = "KZ-75")]
    region_code: String,
    /// This region's institutions first (the applicant's), then the others.
    #[serde(default)]
    #[param(example = "KZ-75")]
    prefer_region_code: String,
    /// `university`, `college` or `school`.
    #[serde(default)]
    #[param(pattern = "^(university|college|school)?$")]
    kind: String,
    /// 1–100, 20 when absent.
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<u32>,
    /// `next_page_token` of the previous page (empty for the first page).
    #[serde(default)]
    #[param(pattern = "^[0-9]{0,6}$")]
    page_token: String,
}

/// Institutions whose name in kk, ru or en contains the query, by region and kind, ordered by
/// the name in the caller's language, paged.
#[utoipa::path(
    get,
    path = "/v1/reference/institutions",
    tag = "reference",
    operation_id = "searchInstitutions",
    params(AcceptLanguage, InstitutionQuery),
    responses(
        (status = 200, description = "One page", body = InstitutionPage),
        (status = 422, description = "`query_too_long`, `invalid_page_size`, `invalid_page_token`, `invalid_kind`", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn institutions(
    State(state): State<AppState>,
    client: Client,
    query: Result<Query<InstitutionQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<InstitutionPage>> {
    let Query(q) =
        query.map_err(|_| ApiError::validation("invalid_page_size", "page_size", "invalid"))?;
    let search = pb::SearchInstitutionsRequest {
        query: q.query,
        region_code: q.region_code,
        prefer_region_code: q.prefer_region_code,
        kind: q.kind,
        // Profile reads 0 as "the default"; here absent is the default and 0 is refused.
        page_size: match q.page_size {
            None => 20,
            Some(n @ 1..=100) => n,
            Some(_) => {
                return Err(ApiError::validation(
                    "invalid_page_size",
                    "page_size",
                    "invalid",
                ));
            }
        },
        page_token: q.page_token,
        language: client.lang.tag().to_owned(),
        include_archived: false,
    };
    let found = state.profile.search_institutions(search).await?;
    let items = found
        .institutions
        .iter()
        .map(|i| Institution::of(client.lang, i))
        .collect();
    Ok(Json(InstitutionPage {
        items,
        next_page_token: Some(found.next_page_token).filter(|t| !t.is_empty()),
    }))
}
