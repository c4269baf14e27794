//! `/v1/me/biometrics`: the selfie and the document photos (SEED.md steps 8–9), taken on this
//! device or on the phone the applicant handed them to, and the biometric consent (step 10).

use crate::{
    error::{ApiError, ApiJson, ApiResult},
    extract::{Client, PhotoTaker, User},
    onboarding, reference,
    state::AppState,
    upstream::Upload,
};
use axum::{
    Json, Router,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    routing::{post, put},
};
use examreg_domain::{CaptureKind, DocumentType};
use examreg_proto::biometrics::v1 as bio;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me/biometrics/consent", post(consent))
        .route("/v1/me/biometrics/{kind}", put(upload))
}

/// The photo a URL names (`face`, `document-front`, `document-back`).
fn kind_of(path: &str) -> Option<CaptureKind> {
    CaptureKind::ALL
        .iter()
        .copied()
        .find(|kind| kind.as_str().replace('_', "-") == path)
}

#[derive(Deserialize)]
pub struct UploadQuery {
    /// `id_card` or `passport`, when the applicant chooses the document with this photo;
    /// absent keeps the current choice (an ID card until one is made).
    document_type: Option<String>,
}

/// `PUT /v1/me/biometrics/{kind}[?document_type=id_card|passport]` with the photo as the raw
/// body.
async fn upload(
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
    let document_type = match chosen.0.document_type.as_deref().map(DocumentType::parse) {
        None => bio::DocumentType::Unspecified,
        Some(Some(chosen)) => bio::DocumentType::from(chosen),
        Some(None) => {
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
    // Whether the registration is still open is biometrics' to say: it refuses a sealed set
    // before it reads the photo, and again in the transaction that would keep it.
    let photo = axum::body::to_bytes(body, state.config.photo_limit)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"))?;
    let upload = Upload {
        kind: kind.into(),
        content_type,
        document_type,
        photo,
    };
    let answer = state.biometrics.upload(&user.token, upload).await?;
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
    let next = onboarding::after_capture(&state, &user.token, &answer.missing).await?;
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
async fn consent(
    State(state): State<AppState>,
    user: User,
    client: Client,
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
    let consent = bio::RecordConsentRequest {
        version: body.consent_version,
        accepted: true,
        client_ip: client.ip,
        user_agent: client.user_agent,
    };
    let recorded = state
        .biometrics
        .record_consent(&user.token, consent)
        .await?;
    let next = onboarding::after_capture(&state, &user.token, &recorded.missing).await?;
    Ok(Json(json!({"next_step": next})))
}
