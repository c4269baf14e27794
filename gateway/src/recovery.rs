//! `/v1/recovery`: a forgotten password ("Забыли пароль?"). The answers are the same whether
//! or not the login or email belongs to an account: for an unknown one verification runs a
//! decoy challenge, timed, capped and budgeted by the same rules as a real one and mailed to
//! nobody, so the door tells nobody who is registered. The gateway keeps no code rules.

use crate::{
    codes::{self, CodeBody, PasswordBody, out_of_order},
    error::{ApiError, ApiJson, ApiResult},
    extract::Client,
    flow::{Flow, Kind},
    openapi::{AcceptLanguage, ErrorBody, FlowId, FlowRefusals, Next, Resend, Step},
    state::AppState,
};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use examreg_domain::{Email, normalize_login};
use examreg_proto::identity::v1 as id;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(resend))
        .routes(routes!(verify))
        .routes(routes!(password))
}

/// The recovery flow a URL names, while its password is not reset yet.
async fn open(state: &AppState, flow_id: &str) -> ApiResult<Flow> {
    let flow = state.flows.open(flow_id, Kind::Recovery).await?;
    if flow.finished {
        return Err(ApiError::new(StatusCode::CONFLICT, "flow_completed"));
    }
    Ok(flow)
}

/// Longer than any IIN or passport number, with room for what people paste around them.
const LOGIN_MAX: usize = 64;

/// One of the two: the login (IIN or passport number) or the account's email; a blank one
/// counts as absent.
#[derive(Deserialize)]
pub struct RecoveryBody {
    login: Option<String>,
    email: Option<String>,
}

impl utoipa::PartialSchema for RecoveryBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, Type};
        let login = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("IIN or passport number"))
            .pattern(Some(r"\S"))
            .max_length(Some(LOGIN_MAX))
            .examples(["791028302728"])
            .build();
        crate::openapi::exactly_one(("login", login), ("email", crate::openapi::email()))
    }
}

impl utoipa::ToSchema for RecoveryBody {}

/// A recovery flow just started: a code is on its way if the login or email belongs to an
/// account, and the answer is the same either way.
#[derive(Serialize, ToSchema)]
pub struct RecoveryStarted {
    #[schema(format = Uuid)]
    flow_id: String,
    #[schema(value_type = Step)]
    next_step: &'static str,
    #[serde(serialize_with = "crate::json::secs")]
    expires_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::json::secs_or_null")]
    resend_available_at: Option<DateTime<Utc>>,
}

/// Start a password recovery with the login or the email.
#[utoipa::path(
    post,
    path = "/v1/recovery",
    tag = "recovery",
    operation_id = "startRecovery",
    params(AcceptLanguage),
    request_body = RecoveryBody,
    responses(
        (status = 201, description = "Flow started (for any login or email)", body = RecoveryStarted),
        (status = 422, description = "`identifier_required`, `invalid_email`, `validation_failed` (a login over 64 characters)", body = ErrorBody),
        (status = 429, description = "Too many requests, or new recoveries paused under overload (`overloaded`); see Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn start(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<RecoveryBody>,
) -> ApiResult<(StatusCode, Json<RecoveryStarted>)> {
    // The budget is counted against what was typed, normalized, so a known and an unknown
    // login cost the same and two spellings of one cost as one.
    let (by, subject) = match (
        body.login.filter(|s| !s.trim().is_empty()),
        body.email.filter(|s| !s.trim().is_empty()),
    ) {
        (Some(login), None) if login.chars().count() > LOGIN_MAX => {
            return Err(ApiError::validation(
                "validation_failed",
                "login",
                "too_long",
            ));
        }
        (Some(login), None) => {
            let subject = normalize_login(&login).unwrap_or_else(|| login.trim().to_owned());
            (id::lookup_recovery_request::By::Login(login), subject)
        }
        (None, Some(email)) => {
            let email = Email::parse(&email)
                .map_err(|e| ApiError::validation("invalid_email", "email", e.code()))?;
            let subject = email.as_str().to_owned();
            (
                id::lookup_recovery_request::By::Email(subject.clone()),
                subject,
            )
        }
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::validation(
                "identifier_required",
                "login",
                "required",
            ));
        }
    };
    let email = match state.identity.recovery_email(by).await? {
        Some(email) => Some(Email::parse(&email).map_err(|e| ApiError::internal(&e))?),
        None => None,
    };
    let challenge = state
        .verification
        .start_recovery(
            email.as_ref(),
            &subject,
            client.lang.tag(),
            &client.budget_key(),
        )
        .await?;
    let mut flow = Flow::new(
        Kind::Recovery,
        state.config.flow_ttl,
        &client.ip,
        &client.user_agent,
    );
    flow.email = email.map(|e| e.as_str().to_owned());
    flow.challenge_id = Some(challenge.id);
    flow.resend_available_at = challenge.resend_at;
    state.flows.begin(&flow).await?;
    Ok((
        StatusCode::CREATED,
        Json(RecoveryStarted {
            flow_id: flow.id.to_string(),
            next_step: flow.next_step(),
            expires_at: flow.expires_at,
            resend_available_at: flow.resend_available_at,
        }),
    ))
}

/// Send a new code once the cooldown has passed.
#[utoipa::path(
    post,
    path = "/v1/recovery/{flow_id}/resend",
    tag = "recovery",
    operation_id = "resendRecoveryCode",
    params(AcceptLanguage, FlowId),
    responses((status = 200, description = "Code sent", body = Resend), FlowRefusals)
)]
async fn resend(
    State(state): State<AppState>,
    client: Client,
    Path(flow_id): Path<String>,
) -> ApiResult<Json<Resend>> {
    let mut flow = open(&state, &flow_id).await?;
    codes::resend(&state, &client, &mut flow).await
}

/// Check the code from the letter.
#[utoipa::path(
    post,
    path = "/v1/recovery/{flow_id}/verify",
    tag = "recovery",
    operation_id = "verifyRecoveryCode",
    params(AcceptLanguage, FlowId),
    request_body = CodeBody,
    responses((status = 200, description = "Email proven", body = Next), FlowRefusals)
)]
async fn verify(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<Json<Next>> {
    let mut flow = open(&state, &flow_id).await?;
    codes::confirm(&state, &mut flow, &body.code).await?;
    Ok(Json(Next {
        next_step: flow.next_step(),
    }))
}

/// Set the new password; every session of the account ends.
#[utoipa::path(
    post,
    path = "/v1/recovery/{flow_id}/password",
    tag = "recovery",
    operation_id = "setRecoveryPassword",
    params(AcceptLanguage, FlowId),
    request_body = PasswordBody,
    responses((status = 204, description = "Password replaced"), FlowRefusals)
)]
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
    flow.forget_person();
    state.flows.commit(&mut flow).await?;
    Ok(StatusCode::NO_CONTENT)
}
