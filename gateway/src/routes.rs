//! The `/v1` API: registration, sessions and recovery. Each handler checks its input into
//! domain values, calls the services with the gateway's service token (or the user's own
//! token), and moves the flow forward.

use crate::{
    AppState, Client, User,
    error::{ApiError, ApiJson, ApiResult},
    flow::{Flow, Kind, Saved},
    reference, retrying, transient,
};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{delete, get, post, put},
};
use chrono::{DateTime, Utc};
use examreg_domain::{Email, Iin, KAZAKHSTAN, PassportNumber, mask_email, mask_identifier};
use examreg_proto::{
    identity::v1 as id,
    verification::v1::{self as ver, Purpose},
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

pub fn api() -> Router<AppState> {
    Router::new()
        .route("/v1/terms/current", get(reference::terms))
        .route(
            "/v1/terms/biometric-consent",
            get(reference::biometric_consent),
        )
        .route("/v1/reference/citizenships", get(reference::citizenships))
        .route("/v1/registrations", post(start))
        .route("/v1/registrations/{flow_id}", get(show))
        .route("/v1/registrations/{flow_id}/identifier", put(identifier))
        .route("/v1/registrations/{flow_id}/email", put(email))
        .route("/v1/registrations/{flow_id}/email/resend", post(resend))
        .route("/v1/registrations/{flow_id}/email/verify", post(verify))
        .route("/v1/registrations/{flow_id}/password", post(password))
        .route("/v1/sessions", post(login))
        .route("/v1/sessions/refresh", post(refresh))
        .route("/v1/sessions/current", delete(logout))
        .route("/v1/recovery", post(recovery_start))
        .route("/v1/recovery/{flow_id}/resend", post(recovery_resend))
        .route("/v1/recovery/{flow_id}/verify", post(recovery_verify))
        .route("/v1/recovery/{flow_id}/password", post(recovery_password))
        .route("/v1/reference/regions", get(crate::profile::regions))
        .route(
            "/v1/reference/contingents",
            get(crate::profile::contingents),
        )
        .route(
            "/v1/reference/institutions",
            get(crate::profile::institutions),
        )
        .route("/v1/me", get(crate::profile::cabinet))
        .route("/v1/me/profile", get(crate::profile::show))
        .route("/v1/me/profile/name", put(crate::profile::name))
        .route("/v1/me/profile/details", put(crate::profile::details))
        .route("/v1/me/profile/education", put(crate::profile::education))
        .route(
            "/v1/me/registration/complete",
            post(crate::profile::complete),
        )
        .route("/v1/me/onboarding", get(crate::me::onboarding))
        .route("/v1/admin/people/{account_id}", delete(crate::admin::erase))
        .route("/v1/me/biometrics/consent", post(crate::me::consent))
        .route("/v1/me/biometrics/{kind}", put(crate::me::upload))
        .route("/v1/me/handoff", post(crate::handoff::create))
        .route("/v1/handoff/redeem", post(crate::handoff::redeem))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn from_timestamp(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    ts.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
}

fn redis_down(e: redis::RedisError) -> ApiError {
    ApiError::unavailable(&e)
}

async fn load(state: &AppState, flow_id: &str, kind: Kind) -> ApiResult<Flow> {
    let id: Uuid = flow_id
        .parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found"))?;
    examreg_kit::telemetry::journey("flow_id", &examreg_kit::telemetry::fingerprint(&id));
    match state.flows.load(id).await.map_err(redis_down)? {
        Some(flow) if flow.kind == kind => {
            if let Some(account) = &flow.account_id {
                examreg_kit::telemetry::journey("account_id", account);
            }
            Ok(flow)
        }
        Some(_) => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found")),
        None => Err(ApiError::flow_expired()),
    }
}

async fn save(state: &AppState, flow: &mut Flow) -> ApiResult<()> {
    match state.flows.save(flow).await.map_err(redis_down)? {
        Saved::Yes => Ok(()),
        Saved::Conflict => Err(ApiError::new(StatusCode::CONFLICT, "flow_changed")),
        Saved::Expired => Err(ApiError::flow_expired()),
    }
}

fn out_of_order() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "step_out_of_order")
}

fn open_registration(flow: &Flow) -> ApiResult<()> {
    if flow.account_id.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, "flow_completed"));
    }
    Ok(())
}

impl AppState {
    /// A request carrying the gateway's own service token. Failing to get one is the
    /// gateway's problem, never the applicant's: it answers 503, not 401.
    pub(crate) async fn authorized<T>(&self, message: T) -> ApiResult<tonic::Request<T>> {
        self.token.request(message).await.map_err(|status| {
            ApiError::unavailable(&format_args!(
                "no service token from identity: {:?} {}",
                status.code(),
                status.message()
            ))
        })
    }
}

#[derive(Deserialize)]
pub struct StartBody {
    citizenship: String,
    #[serde(default)]
    terms_version: String,
    #[serde(default)]
    terms_accepted: bool,
}

async fn start(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<StartBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let citizenship = body.citizenship.trim().to_ascii_uppercase();
    if !reference::is_country(&citizenship) {
        return Err(ApiError::validation(
            "invalid_citizenship",
            "citizenship",
            "invalid",
        ));
    }
    if !body.terms_accepted {
        return Err(ApiError::validation(
            "terms_not_accepted",
            "terms_accepted",
            "required",
        ));
    }
    if body.terms_version != reference::TERMS_VERSION {
        return Err(ApiError::validation(
            "terms_version_outdated",
            "terms_version",
            "outdated",
        ));
    }
    let mut flow = Flow::new(
        Kind::Registration,
        state.config.flow_ttl,
        &client.ip,
        &client.user_agent,
    );
    flow.citizenship = citizenship;
    flow.terms_version = body.terms_version;
    state.flows.create(&flow).await.map_err(redis_down)?;
    metrics::counter!("registrations_started_total").increment(1);
    examreg_kit::telemetry::journey("flow_id", &examreg_kit::telemetry::fingerprint(&flow.id));
    tracing::info!("registration started");
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"flow_id": flow.id, "next_step": flow.next_step(), "expires_at": rfc3339(flow.expires_at)}),
        ),
    ))
}

async fn show(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let flow = load(&state, &flow_id, Kind::Registration).await?;
    Ok(Json(json!({
        "flow_id": flow.id,
        "next_step": flow.next_step(),
        "expires_at": rfc3339(flow.expires_at),
        "citizenship": flow.citizenship,
        "identifier_kind": if flow.iin.is_some() { Some("iin") } else if flow.passport_number.is_some() { Some("passport_number") } else { None },
        "identifier": flow.iin.as_deref().or(flow.passport_number.as_deref()).map(mask_identifier),
        "email": flow.email.as_deref().map(mask_email),
        "resend_available_at": flow.resend_available_at.map(rfc3339),
        "account_id": flow.account_id,
    })))
}

#[derive(Deserialize)]
pub struct IdentifierBody {
    iin: Option<String>,
    passport_number: Option<String>,
}

async fn identifier(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<IdentifierBody>,
) -> ApiResult<Json<Value>> {
    let mut flow = load(&state, &flow_id, Kind::Registration).await?;
    open_registration(&flow)?;
    match (
        body.iin.filter(|s| !s.trim().is_empty()),
        body.passport_number.filter(|s| !s.trim().is_empty()),
    ) {
        (Some(iin), None) => {
            let iin = Iin::parse(&iin)
                .map_err(|e| ApiError::validation("invalid_iin", "iin", e.code()))?;
            flow.iin = Some(iin.as_str().to_owned());
            flow.passport_number = None;
        }
        (None, Some(passport)) => {
            if flow.citizenship == KAZAKHSTAN {
                return Err(ApiError::validation(
                    "iin_required",
                    "passport_number",
                    "iin_required",
                ));
            }
            let passport = PassportNumber::parse(&passport).map_err(|e| {
                ApiError::validation("invalid_passport_number", "passport_number", e.code())
            })?;
            flow.passport_number = Some(passport.as_str().to_owned());
            flow.iin = None;
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "identifier_required",
                "passport_number",
                "only_one",
            ));
        }
        (None, None) => {
            let field = if flow.citizenship == KAZAKHSTAN {
                "iin"
            } else {
                "passport_number"
            };
            return Err(ApiError::validation(
                "identifier_required",
                field,
                "required",
            ));
        }
    }
    save(&state, &mut flow).await?;
    Ok(Json(json!({"next_step": flow.next_step()})))
}

#[derive(Deserialize)]
pub struct EmailBody {
    email: String,
}

async fn send_code(
    state: &AppState,
    client: &Client,
    email: &Email,
    purpose: Purpose,
) -> ApiResult<(String, Option<DateTime<Utc>>)> {
    let answer = retrying(|| async {
        let request = state
            .authorized(ver::StartChallengeRequest {
                email: email.as_str().to_owned(),
                purpose: purpose.into(),
                locale: client.lang.tag().to_owned(),
                client_ip: client.ip.clone(),
            })
            .await?;
        Ok(state.verification.clone().start_challenge(request).await?)
    })
    .await?
    .into_inner();
    metrics::counter!("verification_codes_requested_total").increment(1);
    Ok((
        answer.challenge_id,
        from_timestamp(answer.resend_available_at.as_ref()),
    ))
}

async fn email(
    State(state): State<AppState>,
    client: Client,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<EmailBody>,
) -> ApiResult<Json<Value>> {
    let mut flow = load(&state, &flow_id, Kind::Registration).await?;
    open_registration(&flow)?;
    if flow.iin.is_none() && flow.passport_number.is_none() {
        return Err(out_of_order());
    }
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::validation("invalid_email", "email", e.code()))?;
    let (challenge, resend_at) = send_code(&state, &client, &email, Purpose::Registration).await?;
    flow.email = Some(email.as_str().to_owned());
    flow.challenge_id = Some(challenge);
    flow.resend_available_at = resend_at;
    flow.email_proof = None;
    save(&state, &mut flow).await?;
    Ok(Json(
        json!({"next_step": flow.next_step(), "resend_available_at": resend_at.map(rfc3339)}),
    ))
}

async fn resend_code(state: &AppState, client: &Client, flow: &mut Flow) -> ApiResult<Json<Value>> {
    let Some(challenge) = flow.challenge_id.clone() else {
        return Err(out_of_order());
    };
    let answer = retrying(|| async {
        let request = state
            .authorized(ver::ResendChallengeRequest {
                challenge_id: challenge.clone(),
                locale: client.lang.tag().to_owned(),
                client_ip: client.ip.clone(),
            })
            .await?;
        Ok(state.verification.clone().resend_challenge(request).await?)
    })
    .await?
    .into_inner();
    flow.resend_available_at = from_timestamp(answer.resend_available_at.as_ref());
    save(state, flow).await?;
    Ok(Json(
        json!({"resend_available_at": flow.resend_available_at.map(rfc3339)}),
    ))
}

async fn resend(
    State(state): State<AppState>,
    client: Client,
    Path(flow_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut flow = load(&state, &flow_id, Kind::Registration).await?;
    open_registration(&flow)?;
    resend_code(&state, &client, &mut flow).await
}

#[derive(Deserialize)]
pub struct CodeBody {
    code: String,
}

async fn confirm_code(state: &AppState, flow: &mut Flow, code: &str) -> ApiResult<()> {
    let Some(challenge) = flow.challenge_id.clone() else {
        return Err(out_of_order());
    };
    let answer = retrying(|| async {
        let request = state
            .authorized(ver::ConfirmChallengeRequest {
                challenge_id: challenge.clone(),
                code: code.to_owned(),
            })
            .await?;
        Ok(state
            .verification
            .clone()
            .confirm_challenge(request)
            .await?)
    })
    .await?
    .into_inner();
    flow.email_proof = Some(answer.proof);
    save(state, flow).await
}

async fn verify(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<Json<Value>> {
    let mut flow = load(&state, &flow_id, Kind::Registration).await?;
    open_registration(&flow)?;
    confirm_code(&state, &mut flow, &body.code).await?;
    Ok(Json(json!({"next_step": flow.next_step()})))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    password: String,
    password_confirmation: String,
}

fn check_confirmation(body: &PasswordBody) -> ApiResult<()> {
    if body.password != body.password_confirmation {
        return Err(ApiError::validation(
            "password_mismatch",
            "password_confirmation",
            "mismatch",
        ));
    }
    Ok(())
}

async fn password(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut flow = load(&state, &flow_id, Kind::Registration).await?;
    open_registration(&flow)?;
    let (Some(proof), Some(email)) = (flow.email_proof.clone(), flow.email.clone()) else {
        return Err(out_of_order());
    };
    check_confirmation(&body)?;
    let identifier = match (&flow.iin, &flow.passport_number) {
        (Some(iin), _) => id::create_account_request::Identifier::Iin(iin.clone()),
        (None, Some(passport)) => {
            id::create_account_request::Identifier::PassportNumber(passport.clone())
        }
        (None, None) => return Err(out_of_order()),
    };
    let account = id::CreateAccountRequest {
        citizenship: flow.citizenship.clone(),
        identifier: Some(identifier),
        email,
        email_proof: proof,
        password: body.password,
        terms: Some(id::TermsAcceptance {
            version: flow.terms_version.clone(),
            accepted_at: Some(prost_types::Timestamp {
                seconds: flow.created_at.timestamp(),
                nanos: 0,
            }),
            client_ip: flow.client_ip.clone(),
            user_agent: flow.user_agent.clone(),
        }),
    };
    let outcome = retrying(|| async {
        let request = state.authorized(account.clone()).await?;
        transient(state.identity.clone().create_account(request).await)
    })
    .await?;
    let created = match outcome {
        Ok(answer) => answer.into_inner(),
        Err(status) => {
            let error = ApiError::from(status);
            if error.code == "invalid_email_proof" {
                // The proof expired or was used: the email must be confirmed again.
                flow.email_proof = None;
                flow.challenge_id = None;
                save(&state, &mut flow).await?;
            }
            return Err(error);
        }
    };
    flow.account_id = Some(created.account_id.clone());
    examreg_kit::telemetry::journey("account_id", &created.account_id);
    flow.email_proof = None;
    save(&state, &mut flow).await?;
    metrics::counter!("accounts_created_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(json!({"account_id": created.account_id, "next_step": flow.next_step()})),
    ))
}

#[derive(Deserialize)]
pub struct LoginBody {
    login: String,
    password: String,
}

fn token_json(tokens: Option<id::TokenPair>) -> ApiResult<Value> {
    let tokens = tokens.ok_or_else(|| ApiError::internal(&"identity returned no tokens"))?;
    Ok(json!({
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
    }))
}

async fn login(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let answer = retrying(|| async {
        let request = state
            .authorized(id::LoginRequest {
                login: body.login.clone(),
                password: body.password.clone(),
                client_ip: client.ip.clone(),
                user_agent: client.user_agent.clone(),
            })
            .await?;
        Ok(state.identity.clone().login(request).await?)
    })
    .await?
    .into_inner();
    let mut out = token_json(answer.tokens)?;
    // Where the applicant stands: identity verification first, then the personal data.
    let next = if answer.status == id::AccountStatus::Registered as i32 {
        "done"
    } else {
        let token = out["access_token"].as_str().unwrap_or_default().to_owned();
        match crate::me::onboarding_of(&state, &token).await {
            Ok(onboarding) => onboarding.next_step,
            // The login itself succeeded; GET /v1/me/onboarding answers again later.
            Err(e) => {
                tracing::warn!(code = e.code, "onboarding state unavailable at login");
                "face"
            }
        }
    };
    out["next_step"] = json!(next);
    examreg_kit::telemetry::journey("account_id", &answer.account_id);
    out["account_id"] = json!(answer.account_id);
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<Value>> {
    let request = state
        .authorized(id::RefreshSessionRequest {
            refresh_token: body.refresh_token,
        })
        .await?;
    let answer = state
        .identity
        .clone()
        .refresh_session(request)
        .await?
        .into_inner();
    Ok(Json(token_json(answer.tokens)?))
}

async fn logout(State(state): State<AppState>, user: User) -> ApiResult<StatusCode> {
    retrying(|| async {
        let request = examreg_kit::auth::with_bearer(id::LogoutRequest {}, &user.token)?;
        Ok(state.identity.clone().logout(request).await?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct RecoveryBody {
    login: Option<String>,
    email: Option<String>,
}

async fn recovery_start(
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
    let lookup = id::LookupRecoveryRequest { by: Some(by) };
    let outcome = retrying(|| async {
        let request = state.authorized(lookup.clone()).await?;
        transient(state.identity.clone().lookup_recovery(request).await)
    })
    .await?;
    match outcome {
        Ok(found) => {
            let email =
                Email::parse(&found.into_inner().email).map_err(|e| ApiError::internal(&e))?;
            match send_code(&state, &client, &email, Purpose::Recovery).await {
                Ok((challenge, resend_at)) => {
                    flow.email = Some(email.as_str().to_owned());
                    flow.challenge_id = Some(challenge);
                    flow.resend_available_at = resend_at;
                }
                // Over a budget: answer as for any other login, so the answer tells nothing.
                Err(e) if e.status == StatusCode::TOO_MANY_REQUESTS => {
                    tracing::warn!("recovery code not sent: budget exhausted");
                }
                Err(e) => return Err(e),
            }
        }
        Err(status) if status.code() == tonic::Code::NotFound => {
            tracing::info!("recovery for an unknown login; answering as usual");
        }
        Err(status) => return Err(status.into()),
    }
    if flow.resend_available_at.is_none() {
        flow.resend_available_at = Some(Utc::now() + chrono::Duration::seconds(60));
    }
    state.flows.create(&flow).await.map_err(redis_down)?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"flow_id": flow.id, "next_step": flow.next_step(), "expires_at": rfc3339(flow.expires_at), "resend_available_at": flow.resend_available_at.map(rfc3339)}),
        ),
    ))
}

async fn recovery_resend(
    State(state): State<AppState>,
    client: Client,
    Path(flow_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut flow = load(&state, &flow_id, Kind::Recovery).await?;
    if flow.challenge_id.is_some() {
        return resend_code(&state, &client, &mut flow).await;
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
    save(&state, &mut flow).await?;
    Ok(Json(
        json!({"resend_available_at": flow.resend_available_at.map(rfc3339)}),
    ))
}

async fn recovery_verify(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<Json<Value>> {
    let mut flow = load(&state, &flow_id, Kind::Recovery).await?;
    if flow.finished {
        return Err(ApiError::new(StatusCode::CONFLICT, "flow_completed"));
    }
    if flow.challenge_id.is_some() {
        confirm_code(&state, &mut flow, &body.code).await?;
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
    save(&state, &mut flow).await?;
    if flow.decoy_attempts >= 5 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_attempts_exhausted",
        ));
    }
    Err(ApiError::validation("invalid_code", "code", "invalid_code"))
}

async fn recovery_password(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<StatusCode> {
    let mut flow = load(&state, &flow_id, Kind::Recovery).await?;
    if flow.finished {
        return Err(ApiError::new(StatusCode::CONFLICT, "flow_completed"));
    }
    let Some(proof) = flow.email_proof.clone() else {
        return Err(out_of_order());
    };
    check_confirmation(&body)?;
    retrying(|| async {
        let request = state
            .authorized(id::ResetPasswordRequest {
                recovery_proof: proof.clone(),
                new_password: body.password.clone(),
            })
            .await?;
        Ok(state.identity.clone().reset_password(request).await?)
    })
    .await?;
    flow.finished = true;
    flow.email_proof = None;
    save(&state, &mut flow).await?;
    Ok(StatusCode::NO_CONTENT)
}
