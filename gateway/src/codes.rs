//! The steps registration and recovery share: the email code sent again and checked, and the
//! new password typed twice.

use crate::{
    error::{ApiError, ApiResult},
    extract::Client,
    flow::Flow,
    json::rfc3339,
    state::AppState,
};
use axum::{Json, http::StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// A step asked for before the one it needs.
pub fn out_of_order() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "step_out_of_order")
}

/// Sends the flow's code again and keeps when the next may be sent.
pub async fn resend(state: &AppState, client: &Client, flow: &mut Flow) -> ApiResult<Json<Value>> {
    let Some(challenge) = flow.challenge_id.clone() else {
        return Err(out_of_order());
    };
    flow.resend_available_at = state
        .verification
        .resend(&challenge, client.lang.tag(), &client.ip)
        .await?;
    state.flows.commit(flow).await?;
    Ok(Json(
        json!({"resend_available_at": flow.resend_available_at.map(rfc3339)}),
    ))
}

#[derive(Deserialize)]
pub struct CodeBody {
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

#[derive(Deserialize)]
pub struct PasswordBody {
    pub password: String,
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
