//! Operations for the exam center's operators, on a service token of their own.
//!
//! The gateway holds no administrative power itself: it forwards the operator's token to
//! identity, which checks its own scope. So the operator's client needs `people:erase` here and
//! `accounts:delete` at identity; identity records the erasure and has every other service
//! erase its part (they take that call from identity only).

use crate::{
    error::{ApiError, ApiResult},
    extract::Operator,
    openapi::{AcceptLanguage, ErrorBody},
    state::AppState,
};
use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
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

/// Why a person is erased: what the audit log records.
#[derive(Deserialize, IntoParams)]
pub struct Why {
    /// Why the person is erased (required; at most 500 characters), e.g. the request's number.
    #[param(required = true, min_length = 1, max_length = 500, pattern = r"\S")]
    reason: Option<String>,
}

/// `DELETE /v1/admin/people/{account_id}?reason=…`: erases a person from every service and
/// reports what was removed. Identity records the erasure first (its audit log, with the
/// operator and the reason, and the feed's `erased` event) and then has each service erase its
/// part; a call that fails half-way leaves the erasure recorded, identity finishes it within
/// seconds, and a repeat carries it on. Idempotent: after it finished a repeat finds nothing.
#[utoipa::path(
    delete,
    path = "/v1/admin/people/{account_id}",
    tag = "admin",
    operation_id = "erasePerson",
    security(("bearer" = [])),
    params(
        AcceptLanguage,
        ("account_id" = String, Path, format = Uuid, description = "The person's account id"),
        Why,
        ("x-examreg-on-behalf-of" = Option<String>, Header, pattern = r"^[A-Za-z0-9._@+-]{1,64}$",
         description = "The person at the keyboard (a staff login); required with a staff client's token, and recorded as `client/person`"),
    ),
    responses(
        (status = 200, description = "What was removed", body = Erased),
        (status = 401, description = "No valid token (`unauthenticated`)", body = ErrorBody),
        (status = 403, description = "Not an operator's service token with `people:erase` (`forbidden`), or a staff client's without `x-examreg-on-behalf-of` (`on_behalf_of_required`)", body = ErrorBody),
        (status = 422, description = "`invalid_account_id`, or `reason_required` (none, or past 500 characters)", body = ErrorBody),
        (status = 503, description = "A service is down: the erasure is recorded and finishes by itself; repeat the call to see what was removed", body = ErrorBody),
    )
)]
async fn erase(
    State(state): State<AppState>,
    operator: Operator,
    Path(account_id): Path<String>,
    Query(why): Query<Why>,
) -> ApiResult<Json<Erased>> {
    if uuid::Uuid::parse_str(&account_id).is_err() {
        return Err(ApiError::validation(
            "invalid_account_id",
            "account_id",
            "invalid",
        ));
    }
    let reason = why.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.is_empty() || reason.chars().count() > 500 {
        let why = if reason.is_empty() {
            "required"
        } else {
            "too_long"
        };
        return Err(ApiError::validation("reason_required", "reason", why));
    }
    let erased = state
        .identity
        .erase(
            &operator.token,
            operator.person.as_deref(),
            &account_id,
            reason,
        )
        .await?;
    tracing::info!(
        account = account_id,
        operator = operator.client_id,
        "person erased"
    );
    Ok(Json(Erased {
        account_id,
        removed: Removed {
            identity: IdentityRemoved {
                account: erased.deleted,
            },
            biometrics: BiometricsRemoved {
                captures: erased.captures_deleted,
            },
            profile: ProfileRemoved {
                profile: erased.profile_deleted,
            },
            verification: VerificationRemoved {
                challenges: erased.challenges_deleted,
                letters: erased.letters_deleted,
            },
        },
    }))
}
