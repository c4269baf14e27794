//! Identity as the gateway calls it: accounts, sessions, recovery, capture tokens.

use super::{As, Calls};
use crate::error::{ApiError, ApiResult};
use examreg_proto::identity::v1::{self as id, identity_service_client::IdentityServiceClient};
use tonic::{Code, transport::Channel};

#[derive(Clone)]
pub struct Identity {
    client: IdentityServiceClient<Channel>,
    channel: Channel,
    calls: Calls,
}

/// What asking for an account came to.
pub enum Created {
    /// The account, by id.
    Account(String),
    /// The email proof expired or was used: the email must be confirmed again. The error is
    /// the one to answer with.
    ProofSpent(ApiError),
    /// An account already holds the IIN, passport number or email (identity does not say
    /// which); the proof was spent on the answer. The error is the one to answer with.
    AlreadyRegistered(ApiError),
}

impl Identity {
    pub(crate) fn new(channel: Channel, calls: Calls) -> Self {
        Self {
            client: IdentityServiceClient::new(channel.clone()),
            channel,
            calls,
        }
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    pub async fn create_account(&self, account: id::CreateAccountRequest) -> ApiResult<Created> {
        let answer = call_or_refused!(self, As::Gateway, account => create_account).await?;
        match answer {
            Ok(created) => Ok(Created::Account(created.account_id)),
            Err(status) => {
                let error = ApiError::from(status);
                match error.code.as_str() {
                    "invalid_email_proof" => Ok(Created::ProofSpent(error)),
                    "already_registered" => Ok(Created::AlreadyRegistered(error)),
                    _ => Err(error),
                }
            }
        }
    }

    /// A login of `client`: its failed-login budget at identity is its [`Client::budget_key`]
    /// (past it, `address_budget_exhausted`, which the gateway answers with a proof of work).
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        client: &crate::extract::Client,
    ) -> ApiResult<id::LoginResponse> {
        let message = id::LoginRequest {
            login: login.to_owned(),
            password: password.to_owned(),
            client_ip: client.ip.clone(),
            client_budget_key: client.budget_key(),
            user_agent: client.user_agent.clone(),
        };
        call!(self, As::Gateway, message => login).await
    }

    /// Never retried: a refresh token presented twice revokes its whole session.
    pub async fn refresh(&self, refresh_token: String) -> ApiResult<Option<id::TokenPair>> {
        let message = id::RefreshSessionRequest { refresh_token };
        let answer = call_once!(self, As::Gateway, message => refresh_session).await?;
        Ok(answer.tokens)
    }

    /// Ends the session of the access token `token`.
    pub async fn logout(&self, token: &str) -> ApiResult<()> {
        call!(self, As::Bearer(token), id::LogoutRequest {} => logout).await?;
        Ok(())
    }

    /// The email to send a recovery code to; `None` when no account matches.
    pub async fn recovery_email(
        &self,
        by: id::lookup_recovery_request::By,
    ) -> ApiResult<Option<String>> {
        let message = id::LookupRecoveryRequest { by: Some(by) };
        let answer = call_or_refused!(self, As::Gateway, message => lookup_recovery).await?;
        match answer {
            Ok(found) => Ok(Some(found.email)),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    pub async fn reset_password(&self, recovery_proof: &str, new_password: &str) -> ApiResult<()> {
        let message = id::ResetPasswordRequest {
            recovery_proof: recovery_proof.to_owned(),
            new_password: new_password.to_owned(),
        };
        call!(self, As::Gateway, message => reset_password).await?;
        Ok(())
    }

    /// The account of the applicant whose token this is.
    pub async fn account(&self, token: &str) -> ApiResult<id::Account> {
        let message = id::GetAccountRequest::default();
        call!(self, As::Bearer(token), message => get_account)
            .await?
            .account
            .ok_or_else(|| ApiError::internal(&"identity answered without an account"))
    }

    /// An account by id, for an operator, read for `purpose` (identity's access log records
    /// it); `None` when there is none.
    pub async fn account_by_id(
        &self,
        operator: &str,
        account_id: &str,
        purpose: &str,
    ) -> ApiResult<Option<id::Account>> {
        let message = id::GetAccountRequest {
            account_id: account_id.to_owned(),
            purpose: purpose.to_owned(),
        };
        let answer = call_or_refused!(self, As::Bearer(operator), message => get_account).await?;
        match answer {
            Ok(found) => Ok(found.account),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status.into()),
        }
    }

    pub async fn complete_registration(
        &self,
        token: &str,
    ) -> ApiResult<id::CompleteRegistrationResponse> {
        let message = id::CompleteRegistrationRequest {};
        call!(self, As::Bearer(token), message => complete_registration).await
    }

    pub async fn issue_capture_token(
        &self,
        token: &str,
    ) -> ApiResult<id::IssueCaptureTokenResponse> {
        let message = id::IssueCaptureTokenRequest {};
        call!(self, As::Bearer(token), message => issue_capture_token).await
    }

    /// Erases a person for an operator, at every service; what was removed.
    pub async fn erase(
        &self,
        operator: &str,
        person: Option<&str>,
        account_id: &str,
        reason: &str,
    ) -> ApiResult<id::DeleteAccountResponse> {
        let message = id::DeleteAccountRequest {
            account_id: account_id.to_owned(),
            reason: reason.to_owned(),
        };
        call!(self, As::Operator(operator, person), message => delete_account).await
    }
}
