//! Who is asking: the client (address, agent, language), the applicant behind a bearer
//! token, the phone that took over the photos, the operator. Each is an axum extractor whose
//! rejection is the API's error.

use crate::{config::Config, error::ApiError, i18n, state::AppState};
use axum::{
    extract::ConnectInfo,
    http::{HeaderMap, StatusCode, header},
};
use examreg_kit::auth::Caller;
use std::net::SocketAddr;

/// The client as the gateway sees it, for budgets and audit.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: String,
    pub user_agent: String,
    pub lang: i18n::Lang,
}

impl Client {
    pub fn from_parts(config: &Config, headers: &HeaderMap, peer: Option<SocketAddr>) -> Self {
        let forwarded = config
            .trust_forwarded_for
            .then(|| headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok());
        let ip = forwarded.unwrap_or_else(|| peer.map(|p| p.ip().to_string()).unwrap_or_default());
        let user_agent: String = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        let lang = i18n::Lang::from_header(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        Self {
            ip,
            user_agent,
            lang,
        }
    }
}

impl axum::extract::FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(Self::from_parts(&state.config, &parts.headers, peer))
    }
}

/// An end user authenticated by their bearer access token, verified locally.
#[derive(Debug, Clone)]
pub struct User {
    pub account_id: uuid::Uuid,
    pub token: String,
}

/// The request's bearer token, or 401.
pub(crate) fn bearer(parts: &http::request::Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated"))
}

impl axum::extract::FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        authenticate(parts, state, false)
    }
}

/// A caller of the photo steps (`PUT /v1/me/biometrics/{kind}`, `GET /v1/me/onboarding`): the
/// applicant, or the phone they handed the photos to (a capture token).
pub struct PhotoTaker(pub User);

impl axum::extract::FromRequestParts<AppState> for PhotoTaker {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        authenticate(parts, state, true).map(Self)
    }
}

fn authenticate(
    parts: &http::request::Parts,
    state: &AppState,
    capture_allowed: bool,
) -> Result<User, ApiError> {
    let token = bearer(parts)?;
    match state.keys.authenticate(token) {
        Ok(Caller::User { account_id, .. }) => {
            examreg_kit::telemetry::journey("account_id", &account_id);
            Ok(User {
                account_id,
                token: token.to_owned(),
            })
        }
        Ok(Caller::Capture { account_id, .. }) if capture_allowed => {
            examreg_kit::telemetry::journey("account_id", &account_id);
            Ok(User {
                account_id,
                token: token.to_owned(),
            })
        }
        Ok(Caller::Capture { .. }) => Err(ApiError::new(StatusCode::FORBIDDEN, "capture_only")),
        // The list of ended sessions is not current: the token may be good, so not a 401.
        Err(status) if status.code() == tonic::Code::Unavailable => {
            Err(ApiError::unavailable(&status.message()))
        }
        Ok(Caller::Service { .. }) | Err(_) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated"))
        }
    }
}

/// An operator authenticated by a service token carrying `people:erase`.
pub struct Operator {
    pub client_id: String,
    pub token: String,
}

impl axum::extract::FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let caller = state
            .keys
            .authenticate(token)
            .map_err(|_| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated"))?;
        match caller {
            Caller::Service { .. } => {
                let client_id = caller
                    .require_scope("people:erase")
                    .map_err(|_| ApiError::new(StatusCode::FORBIDDEN, "forbidden"))?
                    .to_owned();
                Ok(Self {
                    client_id,
                    token: token.to_owned(),
                })
            }
            Caller::User { .. } | Caller::Capture { .. } => {
                Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden"))
            }
        }
    }
}
