//! The logged-in applicant's onboarding after the first login: the selfie, the document
//! photos and the consent (SEED.md steps 8–10), then the personal data (issue 4).

use crate::{
    AppState, PhotoTaker, User,
    error::{ApiError, ApiJson, ApiResult},
    reference,
};
use axum::{
    Json,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
};
use examreg_kit::auth::with_bearer;
use examreg_proto::{
    biometrics::v1::{self as bio, upload_capture_request::Part},
    identity::v1 as id,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// The onboarding steps after the first login, in the seed's order.
const STEPS: [&str; 8] = [
    "face",
    "document_front",
    "document_back",
    "consent",
    "name",
    "details",
    "education",
    "complete",
];

/// Steps with their state, and the first one not done, from what the capture set and the
/// profile lack and whether the registration is complete.
fn steps_from(
    missing: &[String],
    passport: bool,
    registered: bool,
) -> (Vec<(&'static str, bool)>, &'static str) {
    let steps: Vec<(&'static str, bool)> = STEPS
        .iter()
        .filter(|step| !(passport && **step == "document_back"))
        .map(|step| {
            let done = match *step {
                "complete" => registered,
                other => registered || !missing.iter().any(|m| m == other),
            };
            (*step, done)
        })
        .collect();
    let next = steps
        .iter()
        .find(|(_, done)| !done)
        .map_or("done", |(step, _)| step);
    (steps, next)
}

/// Steps with their state, the first one not done, and the document type: from biometrics,
/// profile and identity at once.
pub async fn onboarding_of(state: &AppState, token: &str) -> ApiResult<Onboarding> {
    let (captures, profile, account) = tokio::try_join!(
        state.captures_of(token),
        state.profile_of(token),
        state.account_of(token)
    )?;
    Ok(onboarding_from(&captures, &profile, &account))
}

/// Where the applicant stands, from what the three services answered.
pub fn onboarding_from(
    captures: &bio::GetCaptureStatusResponse,
    profile: &examreg_proto::profile::v1::Profile,
    account: &id::Account,
) -> Onboarding {
    let registered = account.status == id::AccountStatus::Registered as i32;
    let mut missing = captures.missing.clone();
    missing.extend(profile.missing.iter().cloned());
    let passport = captures.document_type == bio::DocumentType::Passport as i32;
    let (steps, next) = steps_from(&missing, passport, registered);
    Onboarding {
        steps,
        next_step: next,
        document_type: if passport { "passport" } else { "id_card" },
    }
}

pub struct Onboarding {
    pub steps: Vec<(&'static str, bool)>,
    pub next_step: &'static str,
    /// The identity document being photographed: `id_card` (front and back) or `passport`.
    pub document_type: &'static str,
}

pub async fn onboarding(
    State(state): State<AppState>,
    PhotoTaker(user): PhotoTaker,
) -> ApiResult<Json<Value>> {
    let onboarding = onboarding_of(&state, &user.token).await?;
    let steps: Vec<Value> = onboarding
        .steps
        .iter()
        .map(|(step, done)| json!({"step": step, "done": done}))
        .collect();
    Ok(Json(json!({
        "steps": steps,
        "next_step": onboarding.next_step,
        "document_type": onboarding.document_type,
    })))
}

fn kind_of(path: &str) -> Option<bio::CaptureKind> {
    match path {
        "face" => Some(bio::CaptureKind::Face),
        "document-front" => Some(bio::CaptureKind::DocumentFront),
        "document-back" => Some(bio::CaptureKind::DocumentBack),
        _ => None,
    }
}

#[derive(Deserialize)]
pub struct UploadQuery {
    /// `id_card` or `passport`, when the applicant chooses the document with this photo;
    /// absent keeps the current choice (an ID card until one is made).
    document_type: Option<String>,
}

/// `PUT /v1/me/biometrics/{kind}[?document_type=id_card|passport]` with the photo as the raw
/// body.
pub async fn upload(
    State(state): State<AppState>,
    PhotoTaker(user): PhotoTaker,
    Path(kind): Path<String>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let kind = kind_of(&kind).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found"))?;
    let chosen = query
        .map_err(|_| ApiError::validation("invalid_document_type", "document_type", "invalid"))?;
    let document_type = match chosen.0.document_type.as_deref() {
        None => bio::DocumentType::Unspecified,
        Some("id_card") => bio::DocumentType::IdCard,
        Some("passport") => bio::DocumentType::Passport,
        Some(_) => {
            return Err(ApiError::validation(
                "invalid_document_type",
                "document_type",
                "invalid",
            ));
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if content_type != "image/jpeg" && content_type != "image/png" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ));
    }
    crate::profile::ensure_open(&state, &user.token).await?;
    let bytes = axum::body::to_bytes(body, state.config.photo_limit)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"))?;
    let mut parts = vec![bio::UploadCaptureRequest {
        part: Some(Part::Header(bio::UploadHeader {
            kind: kind.into(),
            content_type,
            document_type: document_type.into(),
        })),
    }];
    parts.extend(bytes.chunks(64 * 1024).map(|c| bio::UploadCaptureRequest {
        part: Some(Part::Chunk(c.to_vec())),
    }));
    let answer = crate::retrying(|| async {
        let request = with_bearer(futures::stream::iter(parts.clone()), &user.token)?;
        Ok(state.biometrics.clone().upload_capture(request).await?)
    })
    .await?
    .into_inner();
    let checks = answer.scores.map(|s| {
        json!({
            "width": s.width, "height": s.height, "sharpness": s.sharpness, "brightness": s.brightness,
            "faces": s.faces, "face_share": s.face_share, "face_offset": s.face_offset,
            "glare": s.glare,
        })
    });
    if !answer.accepted {
        metrics::counter!("captures_refused_total", "reason" => answer.reason.clone()).increment(1);
        let mut error =
            ApiError::validation(&format!("photo_{}", answer.reason), "photo", &answer.reason);
        if answer.reason == "too_large" {
            error = ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
        }
        error.extra = Some(json!({"checks": checks}));
        return Err(error);
    }
    let next = onboarding_of(&state, &user.token).await?.next_step;
    Ok(Json(
        json!({"capture_id": answer.capture_id, "accepted": true, "checks": checks, "next_step": next}),
    ))
}

#[derive(Deserialize)]
pub struct ConsentBody {
    consent_version: String,
    #[serde(default)]
    accepted: bool,
}

/// `POST /v1/me/biometrics/consent`.
pub async fn consent(
    State(state): State<AppState>,
    user: User,
    client: crate::Client,
    ApiJson(body): ApiJson<ConsentBody>,
) -> ApiResult<Json<Value>> {
    if !body.accepted {
        return Err(ApiError::validation(
            "consent_not_given",
            "accepted",
            "required",
        ));
    }
    if body.consent_version != reference::BIOMETRIC_CONSENT_VERSION {
        return Err(ApiError::validation(
            "consent_version_outdated",
            "consent_version",
            "outdated",
        ));
    }
    crate::profile::ensure_open(&state, &user.token).await?;
    let message = bio::RecordConsentRequest {
        version: body.consent_version,
        accepted: true,
        client_ip: client.ip,
        user_agent: client.user_agent,
    };
    crate::retrying(|| async {
        let request = with_bearer(message.clone(), &user.token)?;
        Ok(state.biometrics.clone().record_consent(request).await?)
    })
    .await?;
    let next = onboarding_of(&state, &user.token).await?.next_step;
    Ok(Json(json!({"next_step": next})))
}
