//! Operations for the exam center's operators, on a service token of their own.
//!
//! The gateway holds no administrative power itself: it forwards the operator's token to each
//! service, and each service checks its own scope. So the operator's client needs
//! `people:erase` here, and `accounts:read`, `accounts:delete`, `biometrics:admin`,
//! `profile:admin` and `verification:erase` at the services.

use crate::{
    error::{ApiError, ApiResult},
    extract::Operator,
    openapi::{AcceptLanguage, ErrorBody},
    state::AppState,
};
use axum::{
    Json,
    extract::{Path, State},
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(erase))
}

/// What an erasure removed, service by service.
#[derive(Serialize, ToSchema)]
pub struct Erased {
    #[schema(format = Uuid)]
    account_id: String,
    removed: Removed,
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    identity: IdentityRemoved,
    biometrics: BiometricsRemoved,
    profile: ProfileRemoved,
    verification: VerificationRemoved,
}

/// The account, its sessions and refresh tokens.
#[derive(Serialize, ToSchema)]
pub struct IdentityRemoved {
    account: bool,
}

/// The photos (objects and records) and the consent.
#[derive(Serialize, ToSchema)]
pub struct BiometricsRemoved {
    captures: u32,
}

#[derive(Serialize, ToSchema)]
pub struct ProfileRemoved {
    profile: bool,
}

/// Live codes and queued letters to the account's email.
#[derive(Serialize, ToSchema)]
pub struct VerificationRemoved {
    challenges: u32,
    letters: u32,
}

/// `DELETE /v1/admin/people/{account_id}`: removes a person's data from every service and
/// reports what was removed. Idempotent: a second call reports nothing left. Identity goes
/// last, so a call that fails half-way can be repeated and still finds the email.
#[utoipa::path(
    delete,
    path = "/v1/admin/people/{account_id}",
    tag = "admin",
    operation_id = "erasePerson",
    security(("bearer" = [])),
    params(
        AcceptLanguage,
        ("account_id" = String, Path, format = Uuid, description = "The person's account id"),
    ),
    responses(
        (status = 200, description = "What was removed", body = Erased),
        (status = 401, description = "No valid token (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Not an operator's service token with `people:erase` (`forbidden`)", body = ErrorBody),
        (status = 422, description = "`invalid_account_id`", body = ErrorBody),
        (status = 503, description = "A dependency is down; repeat the call", body = ErrorBody),
    )
)]
async fn erase(
    State(state): State<AppState>,
    operator: Operator,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Erased>> {
    if uuid::Uuid::parse_str(&account_id).is_err() {
        return Err(ApiError::validation(
            "invalid_account_id",
            "account_id",
            "invalid",
        ));
    }
    let token = &operator.token;
    let email = state
        .identity
        .account_by_id(
            token,
            &account_id,
            "erasure: the email whose codes and letters go too",
        )
        .await?
        .map(|account| account.email);
    let captures = state.biometrics.delete(token, &account_id).await?;
    let profile = state.profile.delete(token, &account_id).await?;
    let verification = match &email {
        Some(email) => Some(state.verification.erase_email(token, email).await?),
        None => None,
    };
    let account = state.identity.delete_account(token, &account_id).await?;
    tracing::info!(
        account = account_id,
        operator = operator.client_id,
        "person erased"
    );
    let verification = verification.unwrap_or_default();
    Ok(Json(Erased {
        account_id,
        removed: Removed {
            identity: IdentityRemoved { account },
            biometrics: BiometricsRemoved { captures },
            profile: ProfileRemoved { profile },
            verification: VerificationRemoved {
                challenges: verification.challenges_deleted,
                letters: verification.letters_deleted,
            },
        },
    }))
}
