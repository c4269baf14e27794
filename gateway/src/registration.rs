//! `/v1/registrations`: the account made step by step before it exists (SEED.md steps 1–6):
//! citizenship and terms, the identifier, the email and its code, the password. The flow lives
//! in Redis (`flow`); identity creates the account at the last step.

use crate::{
    codes::{self, CodeBody, PasswordBody, out_of_order},
    error::{ApiError, ApiJson, ApiResult},
    extract::Client,
    flow::{Flow, Kind},
    json::rfc3339,
    reference,
    state::AppState,
    upstream::Created,
};
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::{get, post, put},
};
use chrono::SubsecRound;
use examreg_domain::{Email, Iin, KAZAKHSTAN, PassportNumber, mask_email, mask_identifier};
use examreg_proto::{convert, identity::v1 as id, verification::v1::Purpose};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/registrations", post(start))
        .route("/v1/registrations/{flow_id}", get(show))
        .route("/v1/registrations/{flow_id}/identifier", put(identifier))
        .route("/v1/registrations/{flow_id}/email", put(email))
        .route("/v1/registrations/{flow_id}/email/resend", post(resend))
        .route("/v1/registrations/{flow_id}/email/verify", post(verify))
        .route("/v1/registrations/{flow_id}/password", post(password))
}

/// The registration flow a URL names, while its account is not made yet.
async fn open(state: &AppState, flow_id: &str) -> ApiResult<Flow> {
    let flow = state.flows.open(flow_id, Kind::Registration).await?;
    if flow.account_id.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, "flow_completed"));
    }
    Ok(flow)
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
    state.flows.begin(&flow).await?;
    metrics::counter!("registrations_started_total").increment(1);
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
    let flow = state.flows.open(&flow_id, Kind::Registration).await?;
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
    let mut flow = open(&state, &flow_id).await?;
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
    state.flows.commit(&mut flow).await?;
    Ok(Json(json!({"next_step": flow.next_step()})))
}

#[derive(Deserialize)]
pub struct EmailBody {
    email: String,
}

async fn email(
    State(state): State<AppState>,
    client: Client,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<EmailBody>,
) -> ApiResult<Json<Value>> {
    let mut flow = open(&state, &flow_id).await?;
    if flow.iin.is_none() && flow.passport_number.is_none() {
        return Err(out_of_order());
    }
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::validation("invalid_email", "email", e.code()))?;
    let challenge = state
        .verification
        .start(&email, Purpose::Registration, client.lang.tag(), &client.ip)
        .await?;
    flow.email = Some(email.as_str().to_owned());
    flow.challenge_id = Some(challenge.id);
    flow.resend_available_at = challenge.resend_at;
    flow.email_proof = None;
    state.flows.commit(&mut flow).await?;
    Ok(Json(
        json!({"next_step": flow.next_step(), "resend_available_at": challenge.resend_at.map(rfc3339)}),
    ))
}

async fn resend(
    State(state): State<AppState>,
    client: Client,
    Path(flow_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let mut flow = open(&state, &flow_id).await?;
    codes::resend(&state, &client, &mut flow).await
}

async fn verify(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<CodeBody>,
) -> ApiResult<Json<Value>> {
    let mut flow = open(&state, &flow_id).await?;
    codes::confirm(&state, &mut flow, &body.code).await?;
    Ok(Json(json!({"next_step": flow.next_step()})))
}

async fn password(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut flow = open(&state, &flow_id).await?;
    let (Some(proof), Some(email)) = (flow.email_proof.clone(), flow.email.clone()) else {
        return Err(out_of_order());
    };
    let password = body.confirmed()?;
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
        password: password.to_owned(),
        terms: Some(id::TermsAcceptance {
            version: flow.terms_version.clone(),
            accepted_at: Some(convert::timestamp(flow.created_at.trunc_subsecs(0))),
            client_ip: flow.client_ip.clone(),
            user_agent: flow.user_agent.clone(),
        }),
    };
    let account_id = match state.identity.create_account(account).await? {
        Created::Account(id) => id,
        Created::ProofSpent(error) => {
            flow.email_proof = None;
            flow.challenge_id = None;
            state.flows.commit(&mut flow).await?;
            return Err(error);
        }
    };
    examreg_kit::telemetry::journey("account_id", &account_id);
    flow.account_id = Some(account_id.clone());
    flow.email_proof = None;
    state.flows.commit(&mut flow).await?;
    metrics::counter!("accounts_created_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(json!({"account_id": account_id, "next_step": flow.next_step()})),
    ))
}
