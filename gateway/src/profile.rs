//! `/v1/me` and `/v1/me/profile`: the personal data and education (SEED.md steps 11–13) and
//! the cabinet, the applicant's whole record as they see it. Profile checks and keeps the
//! data; each write answers with the profile and the next step.

use crate::{
    error::{ApiError, ApiJson, ApiResult},
    extract::{Client, User},
    i18n::Lang,
    json::time,
    onboarding,
    openapi::{AcceptLanguage, ErrorBody, Step},
    reference::Institution,
    state::AppState,
};
use axum::{Json, extract::State};
use examreg_domain::{AccountStatus, CaptureKind, DocumentType, Iin, Sex};
use examreg_proto::{
    convert::{FromWire, steps_named},
    identity::v1 as id,
    profile::v1 as pb,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(cabinet))
        .routes(routes!(show))
        .routes(routes!(name))
        .routes(routes!(details))
        .routes(routes!(education))
}

/// A proto string field: empty is absent.
fn given(value: &str) -> Option<String> {
    Some(value.to_owned()).filter(|v| !v.is_empty())
}

/// The applicant's personal data; null where not given yet.
#[derive(Serialize, ToSchema)]
pub struct Personal {
    surname: Option<String>,
    given_name: Option<String>,
    patronymic: Option<String>,
    #[schema(pattern = "^(male|female)$")]
    sex: Option<&'static str>,
    #[schema(format = Date, example = "2007-03-15")]
    birth_date: Option<String>,
    #[schema(example = "KZ-75")]
    region_code: Option<String>,
    /// E.164.
    #[schema(example = "+77011234567")]
    mobile_phone: Option<String>,
    /// After completion: name, birth date and sex no longer change.
    locked: bool,
}

impl Personal {
    fn of(p: &pb::Profile) -> Self {
        Self {
            surname: given(&p.surname),
            given_name: given(&p.given_name),
            patronymic: given(&p.patronymic),
            sex: Sex::from_wire(p.sex).map(Sex::as_str),
            birth_date: given(&p.birth_date),
            region_code: given(&p.region_code),
            mobile_phone: given(&p.mobile_phone),
            locked: p.locked_at.is_some(),
        }
    }
}

/// The applicant's education.
#[derive(Serialize, ToSchema)]
pub struct Education {
    #[schema(example = "school_graduate")]
    contingent_code: Option<String>,
    institution: Option<Institution>,
}

impl Education {
    fn of(lang: Lang, p: &pb::Profile) -> Self {
        Self {
            contingent_code: given(&p.contingent_code),
            institution: p.institution.as_ref().map(|i| Institution::of(lang, i)),
        }
    }
}

/// What the IIN encodes, offered as the birth date and sex to confirm.
#[derive(Serialize, ToSchema)]
pub struct Suggested {
    #[schema(format = Date)]
    birth_date: String,
    #[schema(pattern = "^(male|female)$")]
    sex: &'static str,
}

/// The profile: personal data and education, what is still missing, and (in answers to
/// writes) the next step or (in `GET`) the IIN's suggestions.
#[derive(Serialize, ToSchema)]
pub struct Profile {
    #[serde(flatten)]
    personal: Personal,
    #[serde(flatten)]
    education: Education,
    /// Of `name`, `details`, `education`.
    missing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Step>)]
    next_step: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suggested: Option<Suggested>,
}

impl Profile {
    fn of(lang: Lang, p: &pb::Profile) -> Self {
        Self {
            personal: Personal::of(p),
            education: Education::of(lang, p),
            missing: steps_named(&p.missing_steps, &p.missing),
            next_step: None,
            suggested: None,
        }
    }
}

/// The refusals every profile call may answer with.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum Refusals {
    /// No valid access token (`unauthenticated`).
    #[response(status = 401)]
    Unauthenticated(#[to_schema] ErrorBody),
    /// A capture token reaches the photos only (`capture_only`).
    #[response(status = 403)]
    CaptureOnly(#[to_schema] ErrorBody),
    /// A dependency is down; retry later.
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

/// The answer to a profile write: the profile and where the applicant goes next.
async fn written(
    state: &AppState,
    user: &User,
    lang: Lang,
    p: &pb::Profile,
) -> ApiResult<Json<Profile>> {
    // The profile is the one just written: biometrics is asked, identity only if the photos
    // are sealed.
    let captures = state.biometrics.status(&user.token).await?;
    let account = onboarding::account_if_sealed(state, &user.token, &captures).await?;
    let onboarding = onboarding::from(&captures, p, account.as_ref());
    Ok(Json(Profile {
        next_step: Some(onboarding.next_step),
        ..Profile::of(lang, p)
    }))
}

/// The applicant's personal data and education, with the birth date and sex the IIN encodes
/// as suggestions.
#[utoipa::path(
    get,
    path = "/v1/me/profile",
    tag = "profile",
    operation_id = "getProfile",
    security(("bearer" = [])),
    params(AcceptLanguage),
    responses((status = 200, description = "The profile", body = Profile), Refusals)
)]
async fn show(
    State(state): State<AppState>,
    user: User,
    client: Client,
) -> ApiResult<Json<Profile>> {
    let (profile, account) = tokio::try_join!(
        state.profile.profile(&user.token),
        state.identity.account(&user.token)
    )?;
    let mut body = Profile::of(client.lang, &profile);
    if let Some(id::account::Identifier::Iin(digits)) = &account.identifier
        && let Ok(iin) = Iin::parse(digits)
    {
        body.suggested = Some(Suggested {
            birth_date: iin.birth_date().format("%Y-%m-%d").to_string(),
            sex: iin.sex().as_str(),
        });
    }
    Ok(Json(body))
}

/// «Фамилия», «Имя», «Отчество»: letters of the Kazakh/Russian Cyrillic and Latin alphabets,
/// inner hyphens, apostrophes and spaces, up to 100 characters each.
#[derive(Deserialize, ToSchema)]
pub struct NameBody {
    #[serde(default)]
    #[schema(schema_with = name_part, required = true, example = "Сейтқали")]
    surname: String,
    #[serde(default)]
    #[schema(schema_with = name_part, required = true, example = "Әйгерім")]
    given_name: String,
    /// Optional.
    #[serde(default)]
    #[schema(schema_with = optional_name_part)]
    patronymic: Option<String>,
}

/// What profile takes as a part of a name (`person::name_part`): letters of the Kazakh/Russian
/// Cyrillic and Latin alphabets (with Latin-1 and Latin Extended-A diacritics), one hyphen,
/// apostrophe (typographic ones too) or run of spaces between two letters, spaces around.
const NAME_PART: &str = concat!(
    r"\s*[A-Za-zА-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІіÀ-ÖØ-öø-ſ]+",
    r"(?:(?:[-'’ʼ`‘‐‑–]|\s+)[A-Za-zА-яЁёӘәҒғҚқҢңӨөҰұҮүҺһІіÀ-ÖØ-öø-ſ]+)*\s*"
);

fn name_part() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(format!("^{NAME_PART}$")))
        .max_length(Some(100))
        .build()
}

/// A patronymic: a name part, blank or absent for none.
fn optional_name_part() -> utoipa::openapi::Object {
    use utoipa::openapi::{Type, schema::SchemaType};
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(format!(r"^(?:{NAME_PART}|\s*)$")))
        .max_length(Some(100))
        .build()
}

/// Step 11: the name.
#[utoipa::path(
    put,
    path = "/v1/me/profile/name",
    tag = "profile",
    operation_id = "setName",
    security(("bearer" = [])),
    params(AcceptLanguage),
    request_body = NameBody,
    responses(
        (status = 200, description = "Saved; the profile with next_step", body = Profile),
        (status = 422, description = "`name_required`, `name_invalid_characters`, `name_too_long`, `profile_locked`", body = ErrorBody),
        Refusals
    )
)]
async fn name(
    State(state): State<AppState>,
    user: User,
    client: Client,
    ApiJson(body): ApiJson<NameBody>,
) -> ApiResult<Json<Profile>> {
    let message = pb::UpdateNameRequest {
        surname: body.surname,
        given_name: body.given_name,
        patronymic: body.patronymic.unwrap_or_default(),
    };
    let profile = state.profile.update_name(&user.token, message).await?;
    written(&state, &user, client.lang, &profile).await
}

#[derive(Deserialize, ToSchema)]
pub struct DetailsBody {
    #[serde(default)]
    #[schema(pattern = "^(male|female)$")]
    sex: String,
    /// Within 14–100 years ago; for a citizen, the date the IIN encodes.
    #[serde(default)]
    #[schema(format = Date, example = "2007-03-15")]
    birth_date: String,
    #[serde(default)]
    #[schema(example = "KZ-75")]
    region_code: String,
    /// Any spelling of a mobile number; citizens' must be a Kazakh mobile (+7 700–708, 747,
    /// 771–778).
    #[serde(default)]
    #[schema(example = "+7 701 123 45 67", max_length = 32)]
    mobile_phone: String,
}

/// Step 12: sex, birth date, region, mobile phone.
#[utoipa::path(
    put,
    path = "/v1/me/profile/details",
    tag = "profile",
    operation_id = "setDetails",
    security(("bearer" = [])),
    params(AcceptLanguage),
    request_body = DetailsBody,
    responses(
        (status = 200, description = "Saved; the profile with next_step", body = Profile),
        (status = 422, description = "`sex_required`, `invalid_birth_date`, `birth_date_out_of_range`, `birth_date_mismatch_iin`, `sex_mismatch_iin`, `unknown_region`, `phone_required`, `phone_invalid`, `phone_not_kz_mobile`, `phone_not_mobile`, `profile_locked`", body = ErrorBody),
        Refusals
    )
)]
async fn details(
    State(state): State<AppState>,
    user: User,
    client: Client,
    ApiJson(body): ApiJson<DetailsBody>,
) -> ApiResult<Json<Profile>> {
    let sex = match (body.sex.as_str(), Sex::parse(&body.sex)) {
        (_, Some(sex)) => pb::Sex::from(sex),
        ("", None) => pb::Sex::Unspecified,
        (_, None) => return Err(ApiError::validation("sex_required", "sex", "invalid")),
    };
    let message = pb::UpdateDetailsRequest {
        sex: sex.into(),
        birth_date: body.birth_date,
        region_code: body.region_code,
        mobile_phone: body.mobile_phone,
    };
    let profile = state.profile.update_details(&user.token, message).await?;
    written(&state, &user, client.lang, &profile).await
}

/// «Контингент» and «Место образования».
#[derive(Deserialize, ToSchema)]
pub struct EducationBody {
    /// From `GET /v1/reference/contingents`.
    #[serde(default)]
    #[schema(example = "school_graduate")]
    contingent_code: String,
    /// From `GET /v1/reference/institutions`, of the contingent's kind.
    #[serde(default)]
    institution_id: String,
}

/// Step 13: the education.
#[utoipa::path(
    put,
    path = "/v1/me/profile/education",
    tag = "profile",
    operation_id = "setEducation",
    security(("bearer" = [])),
    params(AcceptLanguage),
    request_body = EducationBody,
    responses(
        (status = 200, description = "Saved; the profile with next_step", body = Profile),
        (status = 422, description = "`unknown_contingent`, `unknown_institution`, `institution_archived`, `institution_kind_mismatch`", body = ErrorBody),
        Refusals
    )
)]
async fn education(
    State(state): State<AppState>,
    user: User,
    client: Client,
    ApiJson(body): ApiJson<EducationBody>,
) -> ApiResult<Json<Profile>> {
    let message = pb::UpdateEducationRequest {
        contingent_code: body.contingent_code,
        institution_id: body.institution_id,
    };
    let profile = state.profile.update_education(&user.token, message).await?;
    written(&state, &user, client.lang, &profile).await
}

/// The account as the cabinet shows it.
#[derive(Serialize, ToSchema)]
pub struct Account {
    #[schema(format = Uuid)]
    account_id: String,
    #[schema(example = "KZ")]
    citizenship: String,
    iin: Option<String>,
    passport_number: Option<String>,
    #[schema(format = Email)]
    email: String,
    /// Always true: an account exists only once its email was proven.
    email_verified: bool,
    #[schema(pattern = "^(active|registered|blocked)$")]
    status: &'static str,
    #[schema(value_type = Option<String>, format = DateTime)]
    created_at: Value,
    #[schema(value_type = Option<String>, format = DateTime)]
    registered_at: Value,
    /// The citizenship's name in the caller's language.
    #[schema(example = "Казахстан")]
    citizenship_name: String,
    /// The user agreement as accepted.
    terms: Option<Acceptance>,
}

/// A text accepted: its version, when, and in which language it was shown.
#[derive(Serialize, ToSchema)]
pub struct Acceptance {
    #[schema(example = "2026-01")]
    version: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    accepted_at: Value,
    /// Unknown (null) for an acceptance older than the texts' hashes.
    #[schema(pattern = "^(kk|ru|en)$")]
    language: Option<String>,
}

/// A photo kept: what it shows, when it was taken, and where its preview is read.
#[derive(Serialize, ToSchema)]
pub struct Photo {
    #[schema(pattern = "^(face|document_front|document_back)$")]
    kind: &'static str,
    #[schema(value_type = Option<String>, format = DateTime)]
    captured_at: Value,
    /// `GET` it with the access token for a small JPEG (each read is logged).
    #[schema(example = "/v1/me/biometrics/face/preview")]
    preview: String,
}

/// Where the identity verification stands.
#[derive(Serialize, ToSchema)]
pub struct Verification {
    #[schema(value_type = String, pattern = "^(id_card|passport)$")]
    document_type: DocumentType,
    photos: Vec<Photo>,
    consent_given: bool,
    /// The consent to processing biometric data as given.
    consent: Option<Acceptance>,
    /// Every photo and the consent are there.
    submitted: bool,
}

/// The personal data with the region named.
#[derive(Serialize, ToSchema)]
pub struct CabinetPersonal {
    #[serde(flatten)]
    personal: Personal,
    /// The region's name in the caller's language.
    region_name: Option<String>,
}

/// The education with the category named.
#[derive(Serialize, ToSchema)]
pub struct CabinetEducation {
    #[serde(flatten)]
    education: Education,
    /// The category's name in the caller's language.
    contingent_name: Option<String>,
}

/// The cabinet («Личный кабинет»).
#[derive(Serialize, ToSchema)]
pub struct Cabinet {
    account: Account,
    profile: CabinetPersonal,
    education: CabinetEducation,
    verification: Verification,
    #[schema(value_type = Step)]
    next_step: &'static str,
}

/// The cabinet («Личный кабинет»): account, profile, education and verification status, the
/// names of what was chosen in the caller's language and the acceptances with their dates,
/// gathered from the services at once; never the images (each photo names its preview).
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "profile",
    operation_id = "getCabinet",
    security(("bearer" = [])),
    params(AcceptLanguage),
    responses((status = 200, description = "The cabinet", body = Cabinet), Refusals)
)]
async fn cabinet(
    State(state): State<AppState>,
    user: User,
    client: Client,
) -> ApiResult<Json<Cabinet>> {
    let (account, captures, profile, regions, contingents) = tokio::try_join!(
        state.identity.account(&user.token),
        state.biometrics.status(&user.token),
        state.profile.profile(&user.token),
        state.profile.regions(),
        state.profile.contingents(true),
    )?;
    let region_name = regions
        .iter()
        .find(|r| r.code == profile.region_code)
        .map(|r| crate::reference::pick(client.lang, r.name.as_ref()));
    let contingent_name = contingents
        .iter()
        .find(|c| c.code == profile.contingent_code)
        .map(|c| crate::reference::pick(client.lang, c.name.as_ref()));
    let citizenship_name = crate::reference::country_name(client.lang, &account.citizenship);
    let terms = account.terms.as_ref().map(|t| Acceptance {
        version: t.version.clone(),
        accepted_at: time(t.accepted_at.as_ref()),
        language: given(&t.language),
    });
    let consent = captures.consent_given.then(|| Acceptance {
        version: captures.consent_version.clone(),
        accepted_at: time(captures.consent_accepted_at.as_ref()),
        language: given(&captures.consent_language),
    });
    let onboarding = onboarding::from(&captures, &profile, Some(&account));
    let (iin, passport_number) = match &account.identifier {
        Some(id::account::Identifier::Iin(v)) => (Some(v.clone()), None),
        Some(id::account::Identifier::PassportNumber(v)) => (None, Some(v.clone())),
        None => (None, None),
    };
    let photos = captures
        .captures
        .iter()
        .map(|c| {
            let kind = CaptureKind::from_wire(c.kind).map_or("unknown", CaptureKind::as_str);
            Photo {
                kind,
                captured_at: time(c.captured_at.as_ref()),
                preview: format!("/v1/me/biometrics/{}/preview", kind.replace('_', "-")),
            }
        })
        .collect();
    Ok(Json(Cabinet {
        account: Account {
            status: AccountStatus::from_wire(account.status)
                .unwrap_or(AccountStatus::Active)
                .as_str(),
            created_at: time(account.created_at.as_ref()),
            registered_at: time(account.registered_at.as_ref()),
            account_id: account.account_id,
            citizenship: account.citizenship,
            iin,
            passport_number,
            email: account.email,
            email_verified: true,
            citizenship_name,
            terms,
        },
        profile: CabinetPersonal {
            personal: Personal::of(&profile),
            region_name,
        },
        education: CabinetEducation {
            education: Education::of(client.lang, &profile),
            contingent_name,
        },
        verification: Verification {
            document_type: onboarding.document_type,
            photos,
            consent_given: captures.consent_given,
            consent,
            submitted: captures.submitted,
        },
        next_step: onboarding.next_step,
    }))
}
