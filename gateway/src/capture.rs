//! `/v1/me/biometrics`: the selfie and the document photos (SEED.md steps 8–9), taken on this
//! device or on the phone the applicant handed them to, and the biometric consent (step 10).

use crate::{
    error::{ApiError, ApiJson, ApiResult},
    extract::{Client, PhotoTaker, User},
    onboarding,
    openapi::{self, AcceptLanguage, ErrorBody, Next, Step},
    state::AppState,
    texts::Doc,
    upstream::Upload,
};
use axum::{
    Json,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
};
use examreg_domain::{CaptureKind, DocumentType};
use examreg_proto::{
    biometrics::v1 as bio,
    convert::{FromWire, steps_named},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(consent))
        .routes(routes!(upload))
        .routes(routes!(preview))
}

/// The preview frames' route, outside the per-address limit (an oval checks a frame or two a
/// second) with a budget per account instead, and outside the admission gate (a shed frame is
/// no reason to turn new applicants away).
pub fn frames() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(frame))
}

/// How many preview frames an account may have checked a minute: two a second for the
/// half minute an applicant might take to settle in the oval, and some.
pub const FRAMES_PER_MINUTE: u64 = 90;
/// The largest frame body (the check reads 320 × 240; a JPEG of that is ~15 KB).
const FRAME_LIMIT: usize = 256 * 1024;

/// Whether the face is placed in the oval, for the selfie's preview.
#[derive(Serialize, ToSchema)]
pub struct Placement {
    /// One face, large enough, near the centre, in good light: the photo may be taken.
    placed: bool,
    /// When not placed, the advice's code (`photo_no_face`, `photo_face_too_small`,
    /// `photo_face_off_centre`, `photo_several_faces`, `photo_too_dark`, `photo_too_bright`,
    /// …) and its message in the request's language.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
}

/// A frame of the camera's preview on the selfie step (SEED.md step 8: the oval turns green
/// when the face is placed): checked with the selfie's own thresholds on the same detector,
/// kept nowhere. The page sends one at a time, at most two a second, and takes the photo 3
/// seconds after the face is placed. Shed first when the photo checks are busy (429
/// `overloaded`: the page falls back to its button).
#[utoipa::path(
    post,
    path = "/v1/me/biometrics/face/frame",
    tag = "capture",
    operation_id = "checkFrame",
    security(("bearer" = [])),
    params(AcceptLanguage),
    request_body(content((PhotoBytes = "image/jpeg")), description = "The frame: a JPEG, 320 × 240 (at most 640 a side, 256 KiB)"),
    responses(
        (status = 200, description = "Whether the face is placed", body = Placement),
        (status = 401, description = "No valid access or capture token (`unauthenticated`)", body = ErrorBody),
        (status = 413, description = "Larger than 256 KiB (`body_too_large`)", body = ErrorBody),
        (status = 415, description = "Not image/jpeg (`unsupported_media_type`)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over 90 frames a minute for the account; `overloaded`: the photo checks are busy. See Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn frame(
    State(state): State<AppState>,
    PhotoTaker(user): PhotoTaker,
    client: Client,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Placement>> {
    if media_type(&headers) != "image/jpeg" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let used = crate::middleware::count(&state, &format!("frames:{}", user.account_id), now / 60)
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    if used > FRAMES_PER_MINUTE {
        let wait = u64::try_from(60 - now.rem_euclid(60)).unwrap_or(60);
        return Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
            .retry_after(std::time::Duration::from_secs(wait)));
    }
    let (frame, _held) = state
        .bodies
        .read(body, FRAME_LIMIT, crate::bodies::declared(&headers))
        .await?;
    let answer = state.biometrics.check_frame(&user.token, frame).await?;
    let code = if answer.placed {
        None
    } else {
        // A frame refused for a reason a biometrics of before did not type is unreadable.
        refusal_code(answer.refusal).or(Some("photo_undecodable"))
    };
    let message = code.map(|code| crate::i18n::message(code, client.lang));
    Ok(Json(Placement {
        placed: answer.placed,
        code,
        message,
    }))
}

/// The request's media type without its parameters, lower case (empty when absent).
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// How large the cabinet's previews are (the longer side, in pixels).
pub const PREVIEW_SIDE: u32 = 320;

/// A preview of one of the applicant's own photos (JPEG, at most 320 pixels on its longer
/// side), for the cabinet. Biometrics logs the read in the applicant's access log.
#[utoipa::path(
    get,
    path = "/v1/me/biometrics/{kind}/preview",
    tag = "capture",
    operation_id = "previewPhoto",
    security(("bearer" = [])),
    params(AcceptLanguage, KindPath),
    responses(
        (status = 200, description = "The preview", content_type = "image/jpeg", body = PhotoBytes),
        (status = 401, description = "No valid access token (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "A capture token cannot read photos here (`capture_only`)", body = ErrorBody),
        (status = 404, description = "No such photo taken (`not_found`)", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn preview(
    State(state): State<AppState>,
    user: User,
    Path(kind): Path<String>,
) -> ApiResult<axum::response::Response> {
    let kind = kind_of(&kind).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found"))?;
    let status = state.biometrics.status(&user.token).await?;
    let capture = status
        .captures
        .iter()
        .find(|c| CaptureKind::from_wire(c.kind) == Some(kind))
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found"))?;
    let jpeg = state
        .biometrics
        .preview(&user.token, &capture.capture_id, PREVIEW_SIDE)
        .await?;
    let headers = [
        (header::CONTENT_TYPE, "image/jpeg"),
        // A person's photo: kept by no cache, shared or not.
        (header::CACHE_CONTROL, "no-store"),
    ];
    Ok(axum::response::IntoResponse::into_response((headers, jpeg)))
}

/// The measurements behind a photo's acceptance or refusal, from biometrics' scores.
#[derive(Serialize, ToSchema)]
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

impl From<&bio::CaptureScores> for Checks {
    fn from(s: &bio::CaptureScores) -> Self {
        Self {
            width: s.width,
            height: s.height,
            sharpness: s.sharpness,
            brightness: s.brightness,
            faces: s.faces,
            face_share: s.face_share,
            face_offset: s.face_offset,
            glare: s.glare,
        }
    }
}

/// The public code of a refused photo or frame, in one place: `photo_<reason>`, or
/// `body_too_large` for one past the limit; `None` when it was not refused.
fn refusal_code(refusal: i32) -> Option<&'static str> {
    use bio::PhotoRefusal as R;
    match R::try_from(refusal).unwrap_or(R::Undecodable) {
        R::Unspecified => None,
        R::TooLarge => Some("body_too_large"),
        R::UnsupportedType => Some("photo_unsupported_type"),
        R::Undecodable => Some("photo_undecodable"),
        R::TooSmall => Some("photo_too_small"),
        R::Blurred => Some("photo_blurred"),
        R::TooDark => Some("photo_too_dark"),
        R::TooBright => Some("photo_too_bright"),
        R::NoFace => Some("photo_no_face"),
        R::SeveralFaces => Some("photo_several_faces"),
        R::FaceTooSmall => Some("photo_face_too_small"),
        R::FaceOffCentre => Some("photo_face_off_centre"),
    }
}

/// A photo kept.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    #[schema(format = Uuid)]
    capture_id: String,
    accepted: bool,
    checks: Option<Checks>,
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

/// Upload the selfie (`face`) or a document side (`document-front`, `document-back`) as the
/// raw body; again is a retake.
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
    let content_type = media_type(&headers);
    if content_type != "image/jpeg" && content_type != "image/png" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ));
    }
    // Whether the registration is still open is biometrics' to say: it refuses a sealed set
    // before it reads the photo, and again in the transaction that would keep it.
    // Held until the answer: the photo's bytes live until biometrics has them.
    let (photo, _held) = state
        .bodies
        .read(
            body,
            state.config.photo_limit,
            crate::bodies::declared(&headers),
        )
        .await?;
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
    let checks = answer.scores.as_ref().map(Checks::from);
    if !answer.accepted {
        metrics::counter!("captures_refused_total", "reason" => answer.reason.clone()).increment(1);
        let code = refusal_code(answer.refusal).unwrap_or("photo_undecodable");
        let mut error = if code == "body_too_large" {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code)
        } else {
            ApiError::validation(code, "photo", code.trim_start_matches("photo_"))
        };
        error.extra = Some(json!({"checks": checks}));
        return Err(error);
    }
    let next = onboarding::after_capture(
        &state,
        &user.token,
        &steps_named(&answer.missing_steps, &answer.missing),
    )
    .await?;
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
    #[serde(default)]
    #[schema(example = "2026-01", required = true)]
    consent_version: String,
    /// The `sha256` of the text shown, so the consent records exactly that text (and its
    /// language); without it the text in the request's language is recorded.
    #[serde(default)]
    #[schema(pattern = "^[0-9a-f]{64}$")]
    consent_sha256: Option<String>,
    /// The applicant consented.
    #[serde(default)]
    #[schema(schema_with = openapi::must_be_true, required = true)]
    accepted: bool,
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
    let text = state.texts.accept(
        Doc::BiometricConsent,
        &body.consent_version,
        body.consent_sha256.as_deref(),
        client.lang,
    )?;
    let consent = bio::RecordConsentRequest {
        version: text.version,
        sha256: text.sha256,
        language: text.language.to_owned(),
        accepted: true,
        client_ip: client.ip,
        user_agent: client.user_agent,
    };
    let recorded = state
        .biometrics
        .record_consent(&user.token, consent)
        .await?;
    let next = onboarding::after_capture(
        &state,
        &user.token,
        &steps_named(&recorded.missing_steps, &recorded.missing),
    )
    .await?;
    Ok(Json(Next { next_step: next }))
}
