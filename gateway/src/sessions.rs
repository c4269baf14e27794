//! `/v1/sessions`: logging in (SEED.md step 7), refreshing the tokens, logging out.

use crate::{
    error::{ApiError, ApiJson, ApiResult},
    extract::{Client, User},
    onboarding,
    openapi::{AcceptLanguage, ErrorBody, Step},
    state::AppState,
};
use axum::{Json, extract::State, http::StatusCode};
use examreg_domain::AccountStatus;
use examreg_proto::{convert::FromWire, identity::v1 as id};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
}

/// A token pair: the access token for `Authorization: Bearer`, and the refresh token that
/// trades for the next pair once.
#[derive(Serialize, ToSchema)]
pub struct Tokens {
    access_token: String,
    refresh_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds the access token is good for.
    #[schema(example = 900)]
    expires_in: i64,
}

fn tokens_of(tokens: Option<id::TokenPair>) -> ApiResult<Tokens> {
    let tokens = tokens.ok_or_else(|| ApiError::internal(&"identity returned no tokens"))?;
    Ok(Tokens {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        token_type: "Bearer",
        expires_in: tokens.expires_in,
    })
}

/// The tokens, the account and where the applicant goes next.
#[derive(Serialize, ToSchema)]
pub struct Session {
    #[serde(flatten)]
    tokens: Tokens,
    #[schema(value_type = Step)]
    next_step: &'static str,
    #[schema(format = Uuid)]
    account_id: String,
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    /// The IIN, or a non-resident's passport number.
    #[schema(example = "900101300123", max_length = 64)]
    login: String,
    #[schema(format = Password, max_length = 256)]
    password: String,
}

/// Log in with the IIN or passport number and the password.
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "sessions",
    operation_id = "login",
    params(AcceptLanguage),
    request_body = LoginBody,
    responses(
        (status = 201, description = "Logged in", body = Session),
        (status = 401, description = "Wrong login or password (`invalid_credentials`)", body = ErrorBody),
        (status = 409, description = "The account is blocked (`account_blocked`)", body = ErrorBody),
        (status = 422, description = "Validation failed; `fields` names the fields", body = ErrorBody),
        (status = 429, description = "Too many attempts (`too_many_attempts`, `rate_limited`); see Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn login(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let answer = state
        .identity
        .login(&body.login, &body.password, &client)
        .await?;
    let access_token = answer
        .tokens
        .as_ref()
        .map(|t| t.access_token.clone())
        .unwrap_or_default();
    let tokens = tokens_of(answer.tokens)?;
    // Where the applicant stands: identity verification first, then the personal data.
    let next = if AccountStatus::from_wire(answer.status) == Some(AccountStatus::Registered) {
        "done"
    } else {
        match onboarding::of(&state, &access_token).await {
            Ok(onboarding) => onboarding.next_step,
            // The login itself succeeded; GET /v1/me/onboarding answers again later.
            Err(e) => {
                tracing::warn!(code = e.code, "onboarding state unavailable at login");
                "face"
            }
        }
    };
    examreg_kit::telemetry::journey("account_id", &answer.account_id);
    Ok((
        StatusCode::CREATED,
        Json(Session {
            tokens,
            next_step: next,
            account_id: answer.account_id,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Trade a refresh token for a new pair; the old one is spent (presented again, it revokes
/// the whole session).
#[utoipa::path(
    post,
    path = "/v1/sessions/refresh",
    tag = "sessions",
    operation_id = "refreshSession",
    params(AcceptLanguage),
    request_body = RefreshBody,
    responses(
        (status = 200, description = "The new pair", body = Tokens),
        (status = 401, description = "Invalid, expired or reused refresh token (`invalid_refresh_token`, `refresh_token_reused`)", body = ErrorBody),
        (status = 422, description = "Validation failed; `fields` names the fields", body = ErrorBody),
        (status = 429, description = "Too many requests; see Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<Tokens>> {
    let tokens = state.identity.refresh(body.refresh_token).await?;
    Ok(Json(tokens_of(tokens)?))
}

/// Log out: the session and every token of it end.
#[utoipa::path(
    delete,
    path = "/v1/sessions/current",
    tag = "sessions",
    operation_id = "logout",
    security(("bearer" = [])),
    params(AcceptLanguage),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "No valid access token (`unauthenticated`)", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn logout(State(state): State<AppState>, user: User) -> ApiResult<StatusCode> {
    state.identity.logout(&user.token).await?;
    Ok(StatusCode::NO_CONTENT)
}
