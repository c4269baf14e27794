//! The steps registration and recovery share: the email code sent again and checked, and the
//! new password typed twice.

use crate::{
    error::{ApiError, ApiResult},
    extract::Client,
    flow::Flow,
    openapi::Resend,
    state::AppState,
};
use axum::{Json, http::StatusCode};
use serde::Deserialize;
use utoipa::ToSchema;

/// A step asked for before the one it needs.
pub fn out_of_order() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "step_out_of_order")
}

/// Sends the flow's code again and keeps when the next may be sent.
pub async fn resend(state: &AppState, client: &Client, flow: &mut Flow) -> ApiResult<Json<Resend>> {
    let Some(challenge) = flow.challenge_id.clone() else {
        return Err(out_of_order());
    };
    flow.resend_available_at = state
        .verification
        .resend(&challenge, client.lang.tag(), &client.budget_key())
        .await?;
    state.flows.commit(flow).await?;
    Ok(Json(Resend {
        resend_available_at: flow.resend_available_at,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CodeBody {
    /// The 6 digits from the letter.
    #[schema(pattern = "^[0-9]{6}$", example = "482915")]
    pub code: String,
}

/// Checks the code; the flow keeps the email proof it earns.
pub async fn confirm(state: &AppState, flow: &mut Flow, code: &str) -> ApiResult<()> {
    let Some(challenge) = flow.challenge_id.clone() else {
        return Err(out_of_order());
    };
    flow.email_proof = Some(state.verification.confirm(&challenge, code).await?);
    state.flows.commit(flow).await
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    /// At least 8 characters, not a common password, not the IIN or the email.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    pub password: String,
    /// The same again.
    #[schema(format = Password)]
    pub password_confirmation: String,
}

impl PasswordBody {
    /// The password, once it was typed the same twice.
    pub fn confirmed(&self) -> ApiResult<&str> {
        if self.password != self.password_confirmation {
            return Err(ApiError::validation(
                "password_mismatch",
                "password_confirmation",
                "mismatch",
            ));
        }
        Ok(&self.password)
    }
}
