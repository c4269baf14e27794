//! Moving the photo steps to a phone. Many applicants register on a computer without a
//! webcam: the page asks for a hand-off link, shows it as a QR code, and the phone that opens
//! it takes the photos while the computer's page follows the progress.
//!
//! `POST /v1/me/handoff` (the applicant's own token) has identity issue a capture token for
//! the applicant's live session — a token that lets its holder take and read the photos of
//! that account and read where the registration stands, and nothing else, for 15 minutes — and
//! parks it in Redis under the SHA-256 of a fresh random link id for `GATEWAY_HANDOFF_TTL_SECS`
//! (5 minutes). The link carries the id in its fragment (`/#handoff=…`), which browsers never
//! send to a server or in a Referer. `POST /v1/handoff/redeem` takes the id back and removes it
//! in the same Redis command (GETDEL), so a link works once: an expired or used link is 410
//! `handoff_expired`. Every service refuses a capture token outside the photo calls, and the
//! gateway answers it 403 `capture_only` on every other route.

use crate::{
    error::{ApiError, ApiJson, ApiResult},
    extract::User,
    onboarding,
    openapi::{AcceptLanguage, ErrorBody, Step},
    state::AppState,
};
use axum::{Json, extract::State, http::StatusCode};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(redeem))
}

/// A hand-off link for the phone.
#[derive(Serialize, ToSchema)]
pub struct Link {
    /// The page with the link id in its fragment, which no browser sends to a server.
    #[schema(example = "https://abiturient.example.kz/#handoff=…")]
    url: String,
    /// The link as an SVG QR code in a `data:` URL.
    qr: String,
    #[serde(serialize_with = "crate::json::secs")]
    expires_at: DateTime<Utc>,
}

/// The phone's capture token: a bearer for `PUT /v1/me/biometrics/{kind}` and
/// `GET /v1/me/onboarding` only.
#[derive(Serialize, ToSchema)]
pub struct CaptureToken {
    capture_token: String,
    /// Seconds it is good for.
    expires_in: i64,
    #[schema(value_type = Step)]
    next_step: &'static str,
}

#[derive(Serialize, Deserialize)]
struct Parked {
    capture_token: String,
    expires_in: i64,
}

fn key(state: &AppState, link_id: &str) -> String {
    let digest = Sha256::digest(link_id.as_bytes());
    format!("{}handoff:{}", state.config.key_prefix, hex::encode(digest))
}

/// The link as a QR code, an SVG in a data: URL the page can show as an image.
fn qr_data_url(link: &str) -> ApiResult<String> {
    let code = qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::internal(&e))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}

/// A single-use, short-lived link that moves the photo steps to a phone, with its QR code.
#[utoipa::path(
    post,
    path = "/v1/me/handoff",
    tag = "handoff",
    operation_id = "createHandoff",
    security(("bearer" = [])),
    params(AcceptLanguage),
    responses(
        (status = 201, description = "The link", body = Link),
        (status = 401, description = "No valid access token (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "`capture_only`: a phone cannot hand off again", body = ErrorBody),
        (status = 409, description = "`registration_completed`: the photos are final", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn create(State(state): State<AppState>, user: User) -> ApiResult<(StatusCode, Json<Link>)> {
    onboarding::ensure_open(&state, &user.token).await?;
    let issued = state.identity.issue_capture_token(&user.token).await?;
    let link_id = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let parked = serde_json::to_string(&Parked {
        capture_token: issued.capture_token,
        expires_in: issued.expires_in,
    })
    .map_err(|e| ApiError::internal(&e))?;
    let ttl = state.config.handoff_ttl;
    let _: () = redis::AsyncCommands::set_ex(
        &mut state.redis.clone(),
        key(&state, &link_id),
        parked,
        ttl.as_secs().max(1),
    )
    .await
    .map_err(|e| ApiError::unavailable(&e))?;
    let link = format!(
        "{}/#handoff={link_id}",
        state.config.public_url.trim_end_matches('/')
    );
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::minutes(5));
    metrics::counter!("gateway_handoffs_total", "event" => "created").increment(1);
    tracing::info!(account = %user.account_id, "hand-off link created");
    Ok((
        StatusCode::CREATED,
        Json(Link {
            qr: qr_data_url(&link)?,
            url: link,
            expires_at,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct RedeemBody {
    /// The link id from the fragment (`#handoff=…`).
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    handoff: String,
}

/// The phone trades a hand-off link for its capture token, once.
#[utoipa::path(
    post,
    path = "/v1/handoff/redeem",
    tag = "handoff",
    operation_id = "redeemHandoff",
    params(AcceptLanguage),
    request_body = RedeemBody,
    responses(
        (status = 200, description = "The capture token", body = CaptureToken),
        (status = 410, description = "`handoff_expired`: the link expired or was used", body = ErrorBody),
        (status = 422, description = "`invalid_handoff`", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn redeem(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RedeemBody>,
) -> ApiResult<Json<CaptureToken>> {
    let link_id = body.handoff.trim();
    if link_id.is_empty()
        || link_id.len() > 64
        || !link_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::validation(
            "invalid_handoff",
            "handoff",
            "invalid",
        ));
    }
    let parked: Option<String> = redis::cmd("GETDEL")
        .arg(key(&state, link_id))
        .query_async(&mut state.redis.clone())
        .await
        .map_err(|e| ApiError::unavailable(&e))?;
    let Some(parked) = parked else {
        metrics::counter!("gateway_handoffs_total", "event" => "refused").increment(1);
        return Err(ApiError::new(StatusCode::GONE, "handoff_expired"));
    };
    let parked: Parked = serde_json::from_str(&parked).map_err(|e| ApiError::internal(&e))?;
    // A link dies with the session that made it (its capture token carries that session).
    if let Err(status) = state.keys.authenticate(&parked.capture_token)
        && status.code() == tonic::Code::Unauthenticated
    {
        metrics::counter!("gateway_handoffs_total", "event" => "refused").increment(1);
        return Err(ApiError::new(StatusCode::GONE, "handoff_expired"));
    }
    let onboarding = onboarding::of(&state, &parked.capture_token).await?;
    metrics::counter!("gateway_handoffs_total", "event" => "redeemed").increment(1);
    Ok(Json(CaptureToken {
        capture_token: parked.capture_token,
        expires_in: parked.expires_in,
        next_step: onboarding.next_step,
    }))
}
