//! `/v1/recovery`: a forgotten password (SEED.md "Забыли пароль?"). The answers are the same
//! whether or not the login or email belongs to an account: for an unknown one the flow is a
//! decoy that behaves like a real one, so the door tells nobody who is registered.

use crate::{
    codes::{self, CodeBody, PasswordBody, out_of_order},
    error::{ApiError, ApiJson, ApiResult},
    extract::Client,
    flow::{Flow, Kind},
    json::rfc3339,
    state::AppState,
};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::post,
};
use chrono::Utc;
use examreg_domain::Email;
use examreg_proto::{identity::v1 as id, verification::v1::Purpose};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/recovery", post(start))
        .route("/v1/recovery/{flow_id}/resend", post(resend))
        .route("/v1/recovery/{flow_id}/verify", post(verify))
        .route("/v1/recovery/{flow_id}/password", post(password))
}

/// The recovery flow a URL names, while its password is not reset yet.
async fn open(state: &AppState, flow_id: &str) -> ApiResult<Flow> {
    let flow = state.flows.open(flow_id, Kind::Recovery).await?;
    if flow.finished {
        return Err(ApiError::new(StatusCode::CONFLICT, "flow_completed"));
    }
    Ok(flow)
}

#[derive(Deserialize)]
pub struct RecoveryBody {
    login: Option<String>,
    email: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<RecoveryBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let by = match (
        body.login.filter(|s| !s.trim().is_empty()),
        body.email.filter(|s| !s.trim().is_empty()),
    ) {
        (Some(login), None) => id::lookup_recovery_request::By::Login(login),
        (None, Some(email)) => {
            let email = Email::parse(&email)
                .map_err(|e| ApiError::validation("invalid_email", "email", e.code()))?;
            id::lookup_recovery_request::By::Email(email.as_str().to_owned())
        }
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::validation(
                "identifier_required",
                "login",
                "required",
            ));
        }
    };
    let mut flow = Flow::new(
        Kind::Recovery,
        state.config.flow_ttl,
        &client.ip,
        &client.user_agent,
    );
    match state.identity.recovery_email(by).await? {
        Some(email) => {
            let email = Email::parse(&email).map_err(|e| ApiError::internal(&e))?;
            let sent = state
                .verification
                .start(&email, Purpose::Recovery, client.lang.tag(), &client.ip)
                .await;
            match sent {
                Ok(challenge) => {
                    flow.email = Some(email.as_str().to_owned());
                    flow.challenge_id = Some(challenge.id);
                    flow.resend_available_at = challenge.resend_at;
                }
                // Over a budget: answer as for any other login, so the answer tells nothing.
                Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
                    tracing::warn!("recovery code not sent: budget exhausted");
                }
                Err(e) => return Err(e),
            }
        }
        None => tracing::info!("recovery for an unknown login; answering as usual"),
    }
    if flow.resend_available_at.is_none() {
        flow.resend_available_at = Some(Utc::now() + chrono::Duration::seconds(60));
    }
    state.flows.begin(&flow).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"flow_id": flow.id, "next_step": flow.next_step(), "expires_at": rfc3339(flow.expires_at), "resend_available_at": flow.resend_available_at.map(rfc3339)}),
        ),
    ))
}

async fn resend(
    State(state): State<AppState>,
    client: Client,
    Path(flow_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut flow = state.flows.open(&flow_id, Kind::Recovery).await?;
    if flow.challenge_id.is_some() {
        return codes::resend(&state, &client, &mut flow).await;
    }
    // A decoy flow keeps the same cooldown as a real one.
    let now = Utc::now();
    if let Some(at) = flow.resend_available_at.filter(|at| *at > now) {
        let wait = (at - now).to_std().unwrap_or_default();
        return Err(
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "resend_too_early").retry_after(wait),
        );
    }
    flow.resend_available_at = Some(now + chrono::Duration::seconds(60));
    flow.decoy_attempts = 0;
    state.flows.commit(&mut flow).await?;
    Ok(Json(
        json!({"resend_available_at": flow.resend_available_at.map(rfc3339)}),
    ))
}

async fn verify(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<Json<Value>> {
    let mut flow = open(&state, &flow_id).await?;
    if flow.challenge_id.is_some() {
        codes::confirm(&state, &mut flow, &body.code).await?;
        return Ok(Json(json!({"next_step": flow.next_step()})));
    }
    // No account behind this flow: behave as a real challenge whose code is never guessed.
    let code = body.code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::validation(
            "invalid_code_format",
            "code",
            "invalid_format",
        ));
    }
    if flow.decoy_attempts >= 5 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_attempts_exhausted",
        ));
    }
    flow.decoy_attempts += 1;
    state.flows.commit(&mut flow).await?;
    if flow.decoy_attempts >= 5 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_attempts_exhausted",
        ));
    }
    Err(ApiError::validation("invalid_code", "code", "invalid_code"))
}

async fn password(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    let mut flow = open(&state, &flow_id).await?;
    let Some(proof) = flow.email_proof.clone() else {
        return Err(out_of_order());
    };
    let password = body.confirmed()?;
    state.identity.reset_password(&proof, password).await?;
    flow.finished = true;
    flow.email_proof = None;
    state.flows.commit(&mut flow).await?;
    Ok(StatusCode::NO_CONTENT)
}
