//! `/v1/me/biometrics`: the selfie and the document photos (SEED.md steps 8–9), taken on this
//! device or on the phone the applicant handed them to, and the biometric consent (step 10).

use crate::{
    error::{ApiError, ApiJson, ApiResult},
    extract::{Client, PhotoTaker, User},
    onboarding,
    openapi::{self, AcceptLanguage, ErrorBody, Next, Step},
    reference,
    state::AppState,
    upstream::Upload,
};
use axum::{
    Json,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
};
use examreg_domain::{CaptureKind, DocumentType};
use examreg_proto::biometrics::v1 as bio;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(consent))
        .routes(routes!(upload))
}

/// The measurements behind a photo's acceptance or refusal: biometrics' scores, served as
/// they come (this type is their shape in the document).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Checks {
    width: u32,
    height: u32,
    /// Variance of the Laplacian: low is blurred.
    sharpness: f64,
    /// Mean luminance, 0–255.
    brightness: f64,
    faces: u32,
    /// Share of the frame the face takes.
    face_share: Option<f64>,
    /// How far the face is from the centre, as a share of the frame.
    face_offset: Option<f64>,
    /// Share of a document photo's pixels burnt to white.
    glare: Option<f64>,
}

/// A photo kept.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    #[schema(format = Uuid)]
    capture_id: String,
    accepted: bool,
    #[schema(value_type = Option<Checks>)]
    checks: Option<bio::CaptureScores>,
    #[schema(value_type = Step)]
    next_step: &'static str,
}

/// A photo's bytes, as the request body.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
struct PhotoBytes(Vec<u8>);

/// The photo a path names.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct KindPath {
    /// `face`, `document-front` or `document-back`.
    #[param(pattern = "^(face|document-front|document-back)$")]
    kind: String,
}

/// The photo a URL names (`face`, `document-front`, `document-back`).
fn kind_of(path: &str) -> Option<CaptureKind> {
    CaptureKind::ALL
        .iter()
        .copied()
        .find(|kind| kind.as_str().replace('_', "-") == path)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// `id_card` (front and back) or `passport` (its data page, uploaded as document-front,
    /// only), when the applicant chooses the document with this photo; absent keeps the
    /// current choice (an ID card until one is made). Choosing a passport discards an
    /// uploaded ID-card back.
    #[param(pattern = "^(id_card|passport)$")]
    document_type: Option<String>,
}

/// Upload the selfie (`face`) or a document side (`document-front`, `document-back`) as the
/// raw body; again is a retake.
/// The account's identifier and citizenship, as biometrics' document check wants them.
fn holder_of(account: &examreg_proto::identity::v1::Account) -> bio::Holder {
    use examreg_proto::identity::v1::account::Identifier;
    bio::Holder {
        identifier: account
            .identifier
            .as_ref()
            .map(|identifier| match identifier {
                Identifier::Iin(iin) => bio::holder::Identifier::Iin(iin.clone()),
                Identifier::PassportNumber(number) => {
                    bio::holder::Identifier::PassportNumber(number.clone())
                }
            }),
        citizenship: account.citizenship.clone(),
    }
}

#[utoipa::path(
    put,
    path = "/v1/me/biometrics/{kind}",
    tag = "capture",
    operation_id = "uploadPhoto",
    security(("bearer" = [])),
    params(AcceptLanguage, KindPath, UploadQuery),
    request_body(
        content((PhotoBytes = "image/jpeg"), (PhotoBytes = "image/png")),
        description = "The photo, JPEG or PNG"
    ),
    responses(
        (status = 200, description = "Accepted", body = Accepted),
        (status = 401, description = "No valid access or capture token (`unauthenticated`)", body = ErrorBody),
        (status = 404, description = "No such photo (`not_found`)", body = ErrorBody),
        (status = 409, description = "`registration_completed`: the photos are final", body = ErrorBody),
        (status = 413, description = "Larger than the limit (`body_too_large`)", body = ErrorBody),
        (status = 415, description = "Not image/jpeg or image/png (`unsupported_media_type`)", body = ErrorBody),
        (status = 422, description = "A check failed: `photo_<reason>` (blurred, too_dark, too_bright, no_face, several_faces, face_too_small, face_off_centre, too_small, undecodable, unsupported_type), with `fields.photo` and `checks`; `invalid_document_type`; `document_back_not_needed` for a back side of a passport", body = ErrorBody),
        (status = 429, description = "Photo checks are saturated (`overloaded`); see Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn upload(
    State(state): State<AppState>,
    PhotoTaker(user): PhotoTaker,
    Path(kind): Path<String>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Accepted>> {
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
    // A document photo goes with who the account says its holder is (identity answers for
    // the applicant's own token), for the document check.
    let holder = match kind {
        CaptureKind::Face => None,
        CaptureKind::DocumentFront | CaptureKind::DocumentBack => {
            Some(holder_of(&state.identity.account(&user.token).await?))
        }
    };
    let upload = Upload {
        kind: kind.into(),
        content_type,
        document_type,
        holder,
        photo,
    };
    let answer = state.biometrics.upload(&user.token, upload).await?;
    let checks = answer.scores;
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
    Ok(Json(Accepted {
        capture_id: answer.capture_id,
        accepted: true,
        checks,
        next_step: next,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ConsentBody {
    /// The version of the text shown (`GET /v1/terms/biometric-consent`).
    #[schema(schema_with = consent_version)]
    consent_version: String,
    /// The applicant consented.
    #[serde(default)]
    #[schema(schema_with = openapi::must_be_true, required = true)]
    accepted: bool,
}

fn consent_version() -> utoipa::openapi::Object {
    openapi::one_of([reference::BIOMETRIC_CONSENT_VERSION])
}

/// Consent to processing biometric data.
#[utoipa::path(
    post,
    path = "/v1/me/biometrics/consent",
    tag = "capture",
    operation_id = "recordConsent",
    security(("bearer" = [])),
    params(AcceptLanguage),
    request_body = ConsentBody,
    responses(
        (status = 200, description = "Recorded", body = Next),
        (status = 401, description = "No valid access token (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "A capture token cannot consent (`capture_only`)", body = ErrorBody),
        (status = 409, description = "`registration_completed`: the consent is final", body = ErrorBody),
        (status = 422, description = "`consent_not_given`, `consent_version_outdated`", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn consent(
    State(state): State<AppState>,
    user: User,
    client: Client,
    ApiJson(body): ApiJson<ConsentBody>,
) -> ApiResult<Json<Next>> {
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
    Ok(Json(Next { next_step: next }))
}
