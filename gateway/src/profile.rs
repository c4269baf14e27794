//! `/v1/me` and `/v1/me/profile`: the personal data and education (SEED.md steps 11–13) and
//! the cabinet, the applicant's whole record as they see it. Profile checks and keeps the
//! data; each write answers with the profile and the next step.

use crate::{
    error::{ApiError, ApiJson, ApiResult},
    extract::{Client, User},
    i18n::Lang,
    json::{non_empty, time},
    onboarding,
    reference::institution_json,
    state::AppState,
};
use axum::{
    Json, Router,
    extract::State,
    routing::{get, put},
};
use examreg_domain::{AccountStatus, CaptureKind, Iin, Sex};
use examreg_proto::{convert::FromWire, identity::v1 as id, profile::v1 as pb};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(cabinet))
        .route("/v1/me/profile", get(show))
        .route("/v1/me/profile/name", put(name))
        .route("/v1/me/profile/details", put(details))
        .route("/v1/me/profile/education", put(education))
}

fn sex_name(value: i32) -> Value {
    Sex::from_wire(value).map_or(Value::Null, |sex| json!(sex.as_str()))
}

fn profile_json(lang: Lang, p: &pb::Profile) -> Value {
    json!({
        "surname": non_empty(&p.surname),
        "given_name": non_empty(&p.given_name),
        "patronymic": non_empty(&p.patronymic),
        "sex": sex_name(p.sex),
        "birth_date": non_empty(&p.birth_date),
        "region_code": non_empty(&p.region_code),
        "mobile_phone": non_empty(&p.mobile_phone),
        "contingent_code": non_empty(&p.contingent_code),
        "institution": p.institution.as_ref().map(|i| institution_json(lang, i)),
        "locked": p.locked_at.is_some(),
        "missing": p.missing,
    })
}

/// The answer to a profile write: the profile and where the applicant goes next.
async fn written(
    state: &AppState,
    user: &User,
    lang: Lang,
    p: &pb::Profile,
) -> ApiResult<Json<Value>> {
    // The profile is the one just written: only the other two services are asked.
    let (captures, account) = tokio::try_join!(
        state.biometrics.status(&user.token),
        state.identity.account(&user.token)
    )?;
    let onboarding = onboarding::from(&captures, p, &account);
    let mut body = profile_json(lang, p);
    body["next_step"] = json!(onboarding.next_step);
    Ok(Json(body))
}

/// `GET /v1/me/profile`, with the birth date and sex the IIN encodes as `suggested` values.
async fn show(State(state): State<AppState>, user: User, client: Client) -> ApiResult<Json<Value>> {
    let (profile, account) = tokio::try_join!(
        state.profile.profile(&user.token),
        state.identity.account(&user.token)
    )?;
    let mut body = profile_json(client.lang, &profile);
    if let Some(id::account::Identifier::Iin(digits)) = &account.identifier
        && let Ok(iin) = Iin::parse(digits)
    {
        body["suggested"] = json!({
            "birth_date": iin.birth_date().format("%Y-%m-%d").to_string(),
            "sex": iin.sex().as_str(),
        });
    }
    Ok(Json(body))
}

#[derive(Deserialize)]
pub struct NameBody {
    #[serde(default)]
    surname: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    patronymic: Option<String>,
}

/// `PUT /v1/me/profile/name`.
async fn name(
    State(state): State<AppState>,
    user: User,
    client: Client,
    ApiJson(body): ApiJson<NameBody>,
) -> ApiResult<Json<Value>> {
    let message = pb::UpdateNameRequest {
        surname: body.surname,
        given_name: body.given_name,
        patronymic: body.patronymic.unwrap_or_default(),
    };
    let profile = state.profile.update_name(&user.token, message).await?;
    written(&state, &user, client.lang, &profile).await
}

#[derive(Deserialize)]
pub struct DetailsBody {
    #[serde(default)]
    sex: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    region_code: String,
    #[serde(default)]
    mobile_phone: String,
}

/// `PUT /v1/me/profile/details`.
async fn details(
    State(state): State<AppState>,
    user: User,
    client: Client,
    ApiJson(body): ApiJson<DetailsBody>,
) -> ApiResult<Json<Value>> {
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

#[derive(Deserialize)]
pub struct EducationBody {
    #[serde(default)]
    contingent_code: String,
    #[serde(default)]
    institution_id: String,
}

/// `PUT /v1/me/profile/education`.
async fn education(
    State(state): State<AppState>,
    user: User,
    client: Client,
    ApiJson(body): ApiJson<EducationBody>,
) -> ApiResult<Json<Value>> {
    let message = pb::UpdateEducationRequest {
        contingent_code: body.contingent_code,
        institution_id: body.institution_id,
    };
    let profile = state.profile.update_education(&user.token, message).await?;
    written(&state, &user, client.lang, &profile).await
}

/// `GET /v1/me`: the cabinet, gathered from the services at once. Never the images.
async fn cabinet(
    State(state): State<AppState>,
    user: User,
    client: Client,
) -> ApiResult<Json<Value>> {
    let lang = client.lang;
    let (account, captures, profile) = tokio::try_join!(
        state.identity.account(&user.token),
        state.biometrics.status(&user.token),
        state.profile.profile(&user.token),
    )?;
    let onboarding = onboarding::from(&captures, &profile, &account);
    let (iin, passport) = match &account.identifier {
        Some(id::account::Identifier::Iin(v)) => (json!(v), Value::Null),
        Some(id::account::Identifier::PassportNumber(v)) => (Value::Null, json!(v)),
        None => (Value::Null, Value::Null),
    };
    let status = AccountStatus::from_wire(account.status)
        .unwrap_or(AccountStatus::Active)
        .as_str();
    let kind_name = |kind: i32| CaptureKind::from_wire(kind).map_or("unknown", CaptureKind::as_str);
    let photos: Vec<Value> = captures
        .captures
        .iter()
        .map(|c| json!({"kind": kind_name(c.kind), "captured_at": time(c.captured_at.as_ref())}))
        .collect();
    let mut personal = profile_json(lang, &profile);
    let education = json!({
        "contingent_code": personal["contingent_code"].take(),
        "institution": personal["institution"].take(),
    });
    if let Some(fields) = personal.as_object_mut() {
        fields.remove("contingent_code");
        fields.remove("institution");
        fields.remove("missing");
    }
    Ok(Json(json!({
        "account": {
            "account_id": account.account_id,
            "citizenship": account.citizenship,
            "iin": iin,
            "passport_number": passport,
            "email": account.email,
            "email_verified": true,
            "status": status,
            "created_at": time(account.created_at.as_ref()),
            "registered_at": time(account.registered_at.as_ref()),
        },
        "profile": personal,
        "education": education,
        "verification": {
            "document_type": onboarding.document_type,
            "photos": photos,
            "consent_given": captures.consent_given,
            "submitted": captures.submitted,
        },
        "next_step": onboarding.next_step,
    })))
}
