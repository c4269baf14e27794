//! The second half of the journey (SEED.md steps 11–14): name, details, education, the
//! directories they come from, completion, and the applicant's cabinet.

use crate::{
    AppState, Client, User,
    error::{ApiError, ApiJson, ApiResult},
    i18n::Lang,
    retrying,
};
use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
};
use examreg_domain::Iin;
use examreg_kit::auth::with_bearer;
use examreg_proto::{
    biometrics::v1 as bio,
    identity::v1 as id,
    profile::v1::{self as pb},
};
use serde::Deserialize;
use serde_json::{Value, json};

fn pick(lang: Lang, name: Option<&pb::LocalizedName>) -> String {
    name.map(|n| lang.pick_owned(&n.ru, &n.kk, &n.en))
        .unwrap_or_default()
}

fn time(t: Option<&prost_types::Timestamp>) -> Value {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map_or(Value::Null, |t| json!(t.to_rfc3339()))
}

fn institution_json(lang: Lang, i: &pb::Institution) -> Value {
    json!({
        "id": i.id,
        "name": pick(lang, i.name.as_ref()),
        "region_code": i.region_code,
        "kind": i.kind,
        "archived": i.archived,
    })
}

fn sex_name(value: i32) -> Value {
    match pb::Sex::try_from(value) {
        Ok(pb::Sex::Male) => json!("male"),
        Ok(pb::Sex::Female) => json!("female"),
        Ok(pb::Sex::Unspecified) | Err(_) => Value::Null,
    }
}

fn non_empty(value: &str) -> Value {
    if value.is_empty() {
        Value::Null
    } else {
        json!(value)
    }
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

impl AppState {
    pub(crate) async fn profile_of(&self, token: &str) -> ApiResult<pb::Profile> {
        let answer = retrying(|| async {
            let request = with_bearer(pb::GetProfileRequest::default(), token)?;
            Ok(self.profile.clone().get_profile(request).await?)
        })
        .await?;
        answer
            .into_inner()
            .profile
            .ok_or_else(|| ApiError::internal(&"profile answered without a profile"))
    }

    pub(crate) async fn account_of(&self, token: &str) -> ApiResult<id::Account> {
        let answer = retrying(|| async {
            let request = with_bearer(id::GetAccountRequest::default(), token)?;
            Ok(self.identity.clone().get_account(request).await?)
        })
        .await?;
        answer
            .into_inner()
            .account
            .ok_or_else(|| ApiError::internal(&"identity answered without an account"))
    }

    pub(crate) async fn captures_of(
        &self,
        token: &str,
    ) -> ApiResult<bio::GetCaptureStatusResponse> {
        let answer = retrying(|| async {
            let request = with_bearer(bio::GetCaptureStatusRequest::default(), token)?;
            Ok(self.biometrics.clone().get_capture_status(request).await?)
        })
        .await?;
        Ok(answer.into_inner())
    }
}

/// Photos and consent may be redone until the registration is complete, not after.
pub(crate) async fn ensure_open(state: &AppState, token: &str) -> ApiResult<()> {
    let account = state.account_of(token).await?;
    if account.status == id::AccountStatus::Registered as i32 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "registration_completed",
        ));
    }
    Ok(())
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
        state.captures_of(&user.token),
        state.account_of(&user.token)
    )?;
    let onboarding = crate::me::onboarding_from(&captures, p, &account);
    let mut body = profile_json(lang, p);
    body["next_step"] = json!(onboarding.next_step);
    Ok(Json(body))
}

/// `GET /v1/me/profile`, with the birth date and sex the IIN encodes as `suggested` values.
pub async fn show(
    State(state): State<AppState>,
    user: User,
    client: Client,
) -> ApiResult<Json<Value>> {
    let (profile, account) =
        tokio::try_join!(state.profile_of(&user.token), state.account_of(&user.token))?;
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
pub async fn name(
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
    let answer = retrying(|| async {
        let request = with_bearer(message.clone(), &user.token)?;
        Ok(state.profile.clone().update_name(request).await?)
    })
    .await?
    .into_inner();
    let profile = answer.profile.unwrap_or_default();
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
pub async fn details(
    State(state): State<AppState>,
    user: User,
    client: Client,
    ApiJson(body): ApiJson<DetailsBody>,
) -> ApiResult<Json<Value>> {
    let sex = match body.sex.as_str() {
        "male" => pb::Sex::Male,
        "female" => pb::Sex::Female,
        "" => pb::Sex::Unspecified,
        _ => return Err(ApiError::validation("sex_required", "sex", "invalid")),
    };
    let message = pb::UpdateDetailsRequest {
        sex: sex.into(),
        birth_date: body.birth_date,
        region_code: body.region_code,
        mobile_phone: body.mobile_phone,
    };
    let answer = retrying(|| async {
        let request = with_bearer(message.clone(), &user.token)?;
        Ok(state.profile.clone().update_details(request).await?)
    })
    .await?
    .into_inner();
    let profile = answer.profile.unwrap_or_default();
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
pub async fn education(
    State(state): State<AppState>,
    user: User,
    client: Client,
    ApiJson(body): ApiJson<EducationBody>,
) -> ApiResult<Json<Value>> {
    let message = pb::UpdateEducationRequest {
        contingent_code: body.contingent_code,
        institution_id: body.institution_id,
    };
    let answer = retrying(|| async {
        let request = with_bearer(message.clone(), &user.token)?;
        Ok(state.profile.clone().update_education(request).await?)
    })
    .await?
    .into_inner();
    let profile = answer.profile.unwrap_or_default();
    written(&state, &user, client.lang, &profile).await
}

fn incomplete(missing: Vec<String>) -> ApiError {
    let mut error = ApiError::new(StatusCode::CONFLICT, "registration_incomplete");
    error.extra = Some(json!({"missing": missing}));
    error
}

/// `POST /v1/me/registration/complete`: every service confirms its part, the profile locks,
/// biometrics seals the photos and consent, then identity marks the account registered.
/// Calling it again answers the same.
pub async fn complete(State(state): State<AppState>, user: User) -> ApiResult<Json<Value>> {
    let (account, captures, profile) = tokio::try_join!(
        state.account_of(&user.token),
        state.captures_of(&user.token),
        state.profile_of(&user.token),
    )?;
    if account.status == id::AccountStatus::Registered as i32 {
        return Ok(Json(
            json!({"status": "registered", "registered_at": time(account.registered_at.as_ref())}),
        ));
    }
    // The account exists only once its email was proven (identity consumes the proof when it
    // creates the account), so the email needs no separate check here.
    let missing: Vec<String> = captures
        .missing
        .iter()
        .chain(&profile.missing)
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(incomplete(missing));
    }
    // Locked first: from here on the name, birth date and sex are what was confirmed. If
    // identity fails next, the applicant retries; the lock is idempotent.
    let lock = retrying(|| async {
        let request = with_bearer(pb::LockProfileRequest {}, &user.token)?;
        Ok(state.profile.clone().lock_profile(request).await?)
    })
    .await?
    .into_inner();
    if !lock.locked {
        return Err(incomplete(lock.missing));
    }
    // Then the photos and the consent, sealed by biometrics under the set's own lock: an
    // upload still arriving now is refused there, whatever was checked above.
    let seal = retrying(|| async {
        let request = with_bearer(bio::SealCapturesRequest {}, &user.token)?;
        Ok(state.biometrics.clone().seal_captures(request).await?)
    })
    .await?
    .into_inner();
    if !seal.sealed {
        return Err(incomplete(seal.missing));
    }
    let done = retrying(|| async {
        let request = with_bearer(id::CompleteRegistrationRequest {}, &user.token)?;
        Ok(state
            .identity
            .clone()
            .complete_registration(request)
            .await?)
    })
    .await?
    .into_inner();
    metrics::counter!("registrations_completed_total").increment(1);
    Ok(Json(
        json!({"status": "registered", "registered_at": time(done.registered_at.as_ref())}),
    ))
}

/// `GET /v1/me`: the cabinet, gathered from the services at once. Never the images.
pub async fn cabinet(
    State(state): State<AppState>,
    user: User,
    client: Client,
) -> ApiResult<Json<Value>> {
    let lang = client.lang;
    let (account, captures, profile) = tokio::try_join!(
        state.account_of(&user.token),
        state.captures_of(&user.token),
        state.profile_of(&user.token),
    )?;
    let onboarding = crate::me::onboarding_from(&captures, &profile, &account);
    let (iin, passport) = match &account.identifier {
        Some(id::account::Identifier::Iin(v)) => (json!(v), Value::Null),
        Some(id::account::Identifier::PassportNumber(v)) => (Value::Null, json!(v)),
        None => (Value::Null, Value::Null),
    };
    let status = match id::AccountStatus::try_from(account.status) {
        Ok(id::AccountStatus::Registered) => "registered",
        Ok(id::AccountStatus::Blocked) => "blocked",
        Ok(id::AccountStatus::Active | id::AccountStatus::Unspecified) | Err(_) => "active",
    };
    let kind_name = |kind: i32| match bio::CaptureKind::try_from(kind) {
        Ok(bio::CaptureKind::Face) => "face",
        Ok(bio::CaptureKind::DocumentFront) => "document_front",
        Ok(bio::CaptureKind::DocumentBack) => "document_back",
        Ok(bio::CaptureKind::Unspecified) | Err(_) => "unknown",
    };
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

/// `GET /v1/reference/regions`.
pub async fn regions(State(state): State<AppState>, client: Client) -> ApiResult<Json<Value>> {
    let regions = retrying(|| async {
        let request = state.authorized(pb::ListRegionsRequest {}).await?;
        Ok(state.profile.clone().list_regions(request).await?)
    })
    .await?
    .into_inner()
    .regions;
    let items: Vec<Value> = regions
        .iter()
        .map(|r| json!({"code": r.code, "name": pick(client.lang, r.name.as_ref())}))
        .collect();
    Ok(Json(json!({"items": items})))
}

/// `GET /v1/reference/contingents`.
pub async fn contingents(State(state): State<AppState>, client: Client) -> ApiResult<Json<Value>> {
    let contingents = retrying(|| async {
        let request = state.authorized(pb::ListContingentsRequest {}).await?;
        Ok(state.profile.clone().list_contingents(request).await?)
    })
    .await?
    .into_inner()
    .contingents;
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
pub async fn institutions(
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
    let found = retrying(|| async {
        let request = state.authorized(search.clone()).await?;
        Ok(state.profile.clone().search_institutions(request).await?)
    })
    .await?
    .into_inner();
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
