//! Operations for the exam center's operators, on a service token of their own.
//!
//! The gateway holds no administrative power itself: it forwards the operator's token to each
//! service, and each service checks its own scope. So the operator's client needs
//! `people:erase` here, and `accounts:read`, `accounts:delete`, `biometrics:admin`,
//! `profile:admin` and `verification:erase` at the services.

use crate::{
    error::{ApiError, ApiResult},
    extract::Operator,
    state::AppState,
};
use axum::{
    Json, Router,
    extract::{Path, State},
    routing::delete,
};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/people/{account_id}", delete(erase))
}

/// `DELETE /v1/admin/people/{account_id}`: removes a person's data from every service and
/// reports what was removed. Idempotent: a second call reports nothing left. Identity goes
/// last, so a call that fails half-way can be repeated and still finds the email.
async fn erase(
    State(state): State<AppState>,
    operator: Operator,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Value>> {
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
        .account_by_id(token, &account_id)
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
    Ok(Json(json!({
        "account_id": account_id,
        "removed": {
            "identity": {"account": account},
            "biometrics": {"captures": captures},
            "profile": {"profile": profile},
            "verification": {
                "challenges": verification.challenges_deleted,
                "letters": verification.letters_deleted,
            },
        },
    })))
}
