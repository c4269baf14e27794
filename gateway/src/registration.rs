//! `/v1/registrations`: the account made step by step before it exists (SEED.md steps 1–6):
//! citizenship and terms, the identifier, the email and its code, the password. The flow lives
//! in Redis (`flow`); identity creates the account at the last step.

use crate::{
    codes::{self, CodeBody, PasswordBody, out_of_order},
    error::{ApiError, ApiJson, ApiResult},
    extract::Client,
    flow::{Flow, Kind},
    openapi::{self, AcceptLanguage, ErrorBody, FlowId, FlowRefusals, Next, Resend, Step},
    reference,
    state::AppState,
    texts::Doc,
    upstream::Created,
};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::{DateTime, SubsecRound, Utc};
use examreg_domain::{Email, Iin, KAZAKHSTAN, PassportNumber, mask_email, mask_identifier};
use examreg_proto::{convert, identity::v1 as id, verification::v1::Purpose};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(show))
        .routes(routes!(identifier))
        .routes(routes!(email))
        .routes(routes!(resend))
        .routes(routes!(verify))
        .routes(routes!(password))
}

/// The registration flow a URL names, while its account is not made yet.
async fn open(state: &AppState, flow_id: &str) -> ApiResult<Flow> {
    let flow = state.flows.open(flow_id, Kind::Registration).await?;
    if flow.account_id.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, "flow_completed"));
    }
    Ok(flow)
}

#[derive(Deserialize, ToSchema)]
pub struct StartBody {
    /// ISO 3166-1 alpha-2 (`GET /v1/reference/citizenships`).
    #[schema(schema_with = citizenship, example = "KZ")]
    citizenship: String,
    /// The version of the user agreement shown (`GET /v1/terms/current`).
    #[serde(default)]
    #[schema(example = "2026-01", required = true)]
    terms_version: String,
    /// The `sha256` of the text shown, so the acceptance records exactly that text (and its
    /// language); without it the text in the request's language is recorded.
    #[serde(default)]
    #[schema(pattern = "^[0-9a-f]{64}$")]
    terms_sha256: Option<String>,
    /// The applicant accepted it.
    #[serde(default)]
    #[schema(schema_with = openapi::must_be_true, required = true)]
    terms_accepted: bool,
}

fn citizenship() -> utoipa::openapi::Object {
    openapi::one_of(reference::countries())
}

/// A flow just started.
#[derive(Serialize, ToSchema)]
pub struct Started {
    #[schema(format = Uuid)]
    flow_id: String,
    #[schema(value_type = Step)]
    next_step: &'static str,
    /// The flow ends then, whatever is done by then.
    #[serde(serialize_with = "crate::json::secs")]
    expires_at: DateTime<Utc>,
}

/// Start a registration: citizenship and the accepted terms.
#[utoipa::path(
    post,
    path = "/v1/registrations",
    tag = "registration",
    operation_id = "startRegistration",
    params(AcceptLanguage),
    request_body = StartBody,
    responses(
        (status = 201, description = "Flow started", body = Started),
        (status = 422, description = "`invalid_citizenship`, `terms_not_accepted`, `terms_version_outdated`", body = ErrorBody),
        (status = 429, description = "Too many requests, or new registrations paused under overload (`overloaded`); see Retry-After", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later", body = ErrorBody),
    )
)]
async fn start(
    State(state): State<AppState>,
    client: Client,
    ApiJson(body): ApiJson<StartBody>,
) -> ApiResult<(StatusCode, Json<Started>)> {
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
    let terms = state.texts.accept(
        Doc::Terms,
        &body.terms_version,
        body.terms_sha256.as_deref(),
        client.lang,
    )?;
    let mut flow = Flow::new(
        Kind::Registration,
        state.config.flow_ttl,
        &client.ip,
        &client.user_agent,
    );
    flow.citizenship = citizenship;
    flow.terms_version = terms.version;
    flow.terms_sha256 = terms.sha256;
    flow.terms_language = terms.language.to_owned();
    state.flows.begin(&flow).await?;
    metrics::counter!("registrations_started_total").increment(1);
    tracing::info!("registration started");
    Ok((
        StatusCode::CREATED,
        Json(Started {
            flow_id: flow.id.to_string(),
            next_step: flow.next_step(),
            expires_at: flow.expires_at,
        }),
    ))
}

/// Where a registration stands, personal data masked.
#[derive(Serialize, ToSchema)]
pub struct Registration {
    #[schema(format = Uuid)]
    flow_id: String,
    #[schema(value_type = Step)]
    next_step: &'static str,
    #[serde(serialize_with = "crate::json::secs")]
    expires_at: DateTime<Utc>,
    #[schema(example = "KZ")]
    citizenship: String,
    /// `iin` or `passport_number`, once given.
    #[schema(pattern = "^(iin|passport_number)$")]
    identifier_kind: Option<&'static str>,
    /// Masked.
    #[schema(example = "79******2728")]
    identifier: Option<String>,
    /// Masked.
    #[schema(example = "a***@mail.kz")]
    email: Option<String>,
    #[serde(serialize_with = "crate::json::secs_or_null")]
    resend_available_at: Option<DateTime<Utc>>,
    /// Once the account is made.
    #[schema(format = Uuid)]
    account_id: Option<String>,
}

/// Resume: where a registration stands.
#[utoipa::path(
    get,
    path = "/v1/registrations/{flow_id}",
    tag = "registration",
    operation_id = "getRegistration",
    params(AcceptLanguage, FlowId),
    responses((status = 200, description = "The flow", body = Registration), FlowRefusals)
)]
async fn show(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
) -> ApiResult<Json<Registration>> {
    let flow = state.flows.open(&flow_id, Kind::Registration).await?;
    let identifier_kind = if flow.iin.is_some() {
        Some("iin")
    } else if flow.passport_number.is_some() {
        Some("passport_number")
    } else {
        None
    };
    Ok(Json(Registration {
        flow_id: flow.id.to_string(),
        next_step: flow.next_step(),
        expires_at: flow.expires_at,
        identifier_kind,
        identifier: flow
            .iin
            .as_deref()
            .or(flow.passport_number.as_deref())
            .map(mask_identifier),
        email: flow.email.as_deref().map(mask_email),
        resend_available_at: flow.resend_available_at,
        account_id: flow.account_id.clone(),
        citizenship: flow.citizenship,
    }))
}

/// One of the two: the IIN (citizens of Kazakhstan must give it), or a non-resident's
/// passport number; a blank one counts as absent.
#[derive(Deserialize)]
pub struct IdentifierBody {
    iin: Option<String>,
    passport_number: Option<String>,
}

impl utoipa::PartialSchema for IdentifierBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ObjectBuilder, Type};
        let iin = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("12 digits with a valid check digit"))
            .pattern(Some("^[0-9]{12}$"))
            .examples(["791028302728"])
            .build();
        let passport = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Letters and digits, 5–20 once spaces and dashes are taken out",
            ))
            .pattern(Some(r"\S"))
            .max_length(Some(40))
            .examples(["N12345678"])
            .build();
        openapi::exactly_one(("iin", iin), ("passport_number", passport))
    }
}

impl utoipa::ToSchema for IdentifierBody {}

/// The identifier: the IIN, or a non-resident's passport number.
#[utoipa::path(
    put,
    path = "/v1/registrations/{flow_id}/identifier",
    tag = "registration",
    operation_id = "setRegistrationIdentifier",
    params(AcceptLanguage, FlowId),
    request_body = IdentifierBody,
    responses((status = 200, description = "Next step", body = Next), FlowRefusals)
)]
async fn identifier(
    State(state): State<AppState>,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<IdentifierBody>,
) -> ApiResult<Json<Next>> {
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
    Ok(Json(Next {
        next_step: flow.next_step(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct EmailBody {
    #[schema(schema_with = openapi::email)]
    email: String,
}

/// A code was sent: the next step, and when another may be sent.
#[derive(Serialize, ToSchema)]
pub struct CodeSent {
    #[schema(value_type = Step)]
    next_step: &'static str,
    #[serde(serialize_with = "crate::json::secs_or_null")]
    resend_available_at: Option<DateTime<Utc>>,
}

/// The email: a 6-digit code is sent to it.
#[utoipa::path(
    put,
    path = "/v1/registrations/{flow_id}/email",
    tag = "registration",
    operation_id = "setRegistrationEmail",
    params(AcceptLanguage, FlowId),
    request_body = EmailBody,
    responses((status = 200, description = "Code sent", body = CodeSent), FlowRefusals)
)]
async fn email(
    State(state): State<AppState>,
    client: Client,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<EmailBody>,
) -> ApiResult<Json<CodeSent>> {
    let mut flow = open(&state, &flow_id).await?;
    if flow.iin.is_none() && flow.passport_number.is_none() {
        return Err(out_of_order());
    }
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::validation("invalid_email", "email", e.code()))?;
    let challenge = state
        .verification
        .start(
            &email,
            Purpose::Registration,
            client.lang.tag(),
            &client.budget_key(),
        )
        .await?;
    flow.email = Some(email.as_str().to_owned());
    flow.challenge_id = Some(challenge.id);
    flow.resend_available_at = challenge.resend_at;
    flow.email_proof = None;
    state.flows.commit(&mut flow).await?;
    Ok(Json(CodeSent {
        next_step: flow.next_step(),
        resend_available_at: challenge.resend_at,
    }))
}

/// Send a new code once the cooldown has passed.
#[utoipa::path(
    post,
    path = "/v1/registrations/{flow_id}/email/resend",
    tag = "registration",
    operation_id = "resendRegistrationCode",
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
    path = "/v1/registrations/{flow_id}/email/verify",
    tag = "registration",
    operation_id = "verifyRegistrationEmail",
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

/// The email proof is gone: the flow goes back to the email step for a fresh code.
async fn back_to_email(state: &AppState, flow: &mut Flow) -> ApiResult<()> {
    flow.email_proof = None;
    flow.challenge_id = None;
    state.flows.commit(flow).await
}

/// The account just made.
#[derive(Serialize, ToSchema)]
pub struct AccountCreated {
    #[schema(format = Uuid)]
    account_id: String,
    #[schema(value_type = Step)]
    next_step: &'static str,
}

/// Set the password: identity makes the account.
#[utoipa::path(
    post,
    path = "/v1/registrations/{flow_id}/password",
    tag = "registration",
    operation_id = "setRegistrationPassword",
    params(AcceptLanguage, FlowId),
    request_body = PasswordBody,
    responses(
        (status = 201, description = "Account created", body = AccountCreated),
        FlowRefusals
    )
)]
async fn password(
    State(state): State<AppState>,
    client: Client,
    Path(flow_id): Path<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> ApiResult<(StatusCode, Json<AccountCreated>)> {
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
        email_proof: proof.clone(),
        password: password.to_owned(),
        terms: Some(id::TermsAcceptance {
            version: flow.terms_version.clone(),
            sha256: flow.terms_sha256.clone(),
            language: flow.terms_language.clone(),
            accepted_at: Some(convert::timestamp(flow.created_at.trunc_subsecs(0))),
            client_ip: flow.client_ip.clone(),
            user_agent: flow.user_agent.clone(),
        }),
    };
    let account_id = match state.identity.create_account(account).await? {
        Created::Account(id) => id,
        Created::ProofSpent(error) => {
            back_to_email(&state, &mut flow).await?;
            return Err(error);
        }
        Created::AlreadyRegistered(error) => {
            back_to_email(&state, &mut flow).await?;
            // The letter tells the proven address how to recover the account or reach the
            // support desk. The answer says the same, so a letter that fails to queue is
            // logged rather than turned into an error the applicant cannot act on.
            if let Err(e) = state
                .verification
                .notify_account_exists(&proof, client.lang.tag())
                .await
            {
                tracing::warn!(code = e.code, "the account-exists letter was not queued");
                metrics::counter!("account_exists_letters_failed_total").increment(1);
            }
            return Err(error);
        }
    };
    examreg_kit::telemetry::journey("account_id", &account_id);
    flow.account_id = Some(account_id.clone());
    flow.forget_person();
    state.flows.commit(&mut flow).await?;
    metrics::counter!("accounts_created_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(AccountCreated {
            account_id,
            next_step: flow.next_step(),
        }),
    ))
}
