//! Operations for the exam center's operators, on a service token of their own.
//!
//! The gateway holds no administrative power itself: it forwards the operator's token to each
//! service, and each service checks its own scope. So the operator's client needs
//! `people:erase` here, and `accounts:read`, `accounts:delete`, `biometrics:admin`,
//! `profile:admin` and `verification:erase` at the services.

use crate::{
    AppState,
    error::{ApiError, ApiResult},
};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use examreg_kit::auth::{Caller, with_bearer};
use examreg_proto::{
    biometrics::v1 as bio, identity::v1 as id, profile::v1 as pb, verification::v1 as ver,
};
use serde_json::{Value, json};
use tonic::Code;

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
        let token = crate::bearer(parts)?;
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

/// `DELETE /v1/admin/people/{account_id}`: removes a person's data from every service and
/// reports what was removed. Idempotent: a second call reports nothing left. Identity goes
/// last, so a call that fails half-way can be repeated and still finds the email.
pub async fn erase(
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
    let account = state
        .identity
        .clone()
        .get_account(with_bearer(
            id::GetAccountRequest {
                account_id: account_id.clone(),
            },
            token,
        )?)
        .await;
    let email = match account {
        Ok(answer) => answer.into_inner().account.map(|a| a.email),
        Err(status) if status.code() == Code::NotFound => None,
        Err(status) => return Err(status.into()),
    };
    let biometrics = state
        .biometrics
        .clone()
        .delete_biometric_data(with_bearer(
            bio::DeleteBiometricDataRequest {
                account_id: account_id.clone(),
            },
            token,
        )?)
        .await?
        .into_inner();
    let profile = state
        .profile
        .clone()
        .delete_profile(with_bearer(
            pb::DeleteProfileRequest {
                account_id: account_id.clone(),
            },
            token,
        )?)
        .await?
        .into_inner();
    let verification = match &email {
        Some(email) => Some(
            state
                .verification
                .clone()
                .erase_email(with_bearer(
                    ver::EraseEmailRequest {
                        email: email.clone(),
                    },
                    token,
                )?)
                .await?
                .into_inner(),
        ),
        None => None,
    };
    let identity = state
        .identity
        .clone()
        .delete_account(with_bearer(
            id::DeleteAccountRequest {
                account_id: account_id.clone(),
            },
            token,
        )?)
        .await?
        .into_inner();
    tracing::info!(
        account = account_id,
        operator = operator.client_id,
        "person erased"
    );
    let verification = verification.unwrap_or_default();
    Ok(Json(json!({
        "account_id": account_id,
        "removed": {
            "identity": {"account": identity.deleted},
            "biometrics": {"captures": biometrics.captures_deleted},
            "profile": {"profile": profile.deleted},
            "verification": {
                "challenges": verification.challenges_deleted,
                "letters": verification.letters_deleted,
            },
        },
    })))
}
