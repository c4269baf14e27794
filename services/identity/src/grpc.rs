//! gRPC handlers of identity, thin: who calls, the request into domain values, the call into
//! the service layer (`accounts`, `sessions`), the answer back. Every failure becomes a status
//! in `error.rs`.

use crate::{
    ServiceClient, Throttle,
    accounts::{NewAccount, RecoveryBy, Terms},
    error::Error,
    password::Hasher,
    sessions::{CAPTURE_TTL, Client, Tokens},
    store::AccountRow,
};
use chrono::Utc;
use examreg_domain::{Email, Iin, KAZAKHSTAN, LoginKind, PassportNumber};
use examreg_kit::{
    auth::{account_id_field, caller},
    tokens::{KeySet, SigningKey, jwks_json},
};
use examreg_proto::{
    convert::{datetime, timestamp},
    identity::v1::{self as pb, identity_service_server::IdentityService},
};
use sqlx::PgPool;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub struct Identity {
    pub pool: PgPool,
    pub hasher: Hasher,
    pub signing_key: SigningKey,
    pub published_keys: Vec<SigningKey>,
    pub proof_keys: KeySet,
    pub clients: Vec<ServiceClient>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub session_lifetime: Duration,
    pub service_token_ttl: Duration,
    pub throttle: Throttle,
    pub revocations: crate::revocations::Feed,
}

fn email_of(text: &str) -> Result<Email, Error> {
    Email::parse(text).map_err(Error::InvalidEmail)
}

impl Identity {
    /// The longest any token of a session may live: how long an ended session's tokens are
    /// refused.
    pub(crate) fn longest_token(&self) -> Duration {
        self.access_ttl.max(CAPTURE_TTL)
    }

    fn pair_pb(&self, tokens: Tokens) -> pb::TokenPair {
        pb::TokenPair {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_in: i64::try_from(self.access_ttl.as_secs()).unwrap_or(900),
            refresh_expires_at: Some(timestamp(tokens.refresh_expires_at)),
        }
    }
}

fn account_pb(row: AccountRow) -> pb::Account {
    let identifier = match row.login_kind {
        LoginKind::Iin => pb::account::Identifier::Iin(row.login),
        LoginKind::Passport => pb::account::Identifier::PassportNumber(row.login),
    };
    pb::Account {
        account_id: row.id.to_string(),
        citizenship: row.citizenship,
        identifier: Some(identifier),
        email: row.email,
        status: pb::AccountStatus::from(row.status).into(),
        created_at: Some(timestamp(row.created_at)),
        registered_at: row.registered_at.map(timestamp),
    }
}

/// A registration request into a checked one (the proof and the password are checked by
/// `accounts`).
fn new_account(req: pb::CreateAccountRequest) -> Result<NewAccount, Error> {
    let citizenship = req.citizenship.trim().to_ascii_uppercase();
    if citizenship.len() != 2 || !citizenship.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::InvalidCitizenship);
    }
    let (login, login_kind) = match req.identifier {
        Some(pb::create_account_request::Identifier::Iin(text)) => {
            let iin = Iin::parse(&text).map_err(Error::InvalidIin)?;
            (iin.as_str().to_owned(), LoginKind::Iin)
        }
        Some(pb::create_account_request::Identifier::PassportNumber(text)) => {
            if citizenship == KAZAKHSTAN {
                return Err(Error::IinRequired);
            }
            let passport = PassportNumber::parse(&text).map_err(Error::InvalidPassportNumber)?;
            (passport.as_str().to_owned(), LoginKind::Passport)
        }
        None => return Err(Error::IdentifierRequired),
    };
    let email = email_of(&req.email)?;
    let terms = req.terms.unwrap_or_default();
    Ok(NewAccount {
        citizenship,
        login,
        login_kind,
        email,
        email_proof: req.email_proof,
        password: req.password,
        terms: Terms {
            version: terms.version,
            accepted_at: datetime(terms.accepted_at.as_ref()).unwrap_or_else(Utc::now),
            client_ip: terms.client_ip,
            user_agent: terms.user_agent,
        },
    })
}

/// The reason a support action gives, for the operator log: not blank, at most 500 characters.
fn reason_field(value: &str) -> Result<&str, Error> {
    let reason = value.trim();
    match reason.chars().count() {
        0 => Err(Error::ReasonRequired { too_long: false }),
        1..=500 => Ok(reason),
        _ => Err(Error::ReasonRequired { too_long: true }),
    }
}

#[tonic::async_trait]
impl IdentityService for Identity {
    #[tracing::instrument(skip_all)]
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        caller(&request)?.require_scope("accounts:create")?;
        let id = self.create(new_account(request.into_inner())?).await?;
        Ok(Response::new(pb::CreateAccountResponse {
            account_id: id.to_string(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        caller(&request)?.require_scope("sessions:create")?;
        let req = request.into_inner();
        let client = Client {
            ip: &req.client_ip,
            user_agent: &req.user_agent,
        };
        let (tokens, account) = Identity::login(self, &req.login, &req.password, &client).await?;
        Ok(Response::new(pb::LoginResponse {
            tokens: Some(self.pair_pb(tokens)),
            account_id: account.id.to_string(),
            status: pb::AccountStatus::from(account.status).into(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<Response<pb::RefreshSessionResponse>, Status> {
        caller(&request)?.require_scope("sessions:create")?;
        let tokens = self.refresh(&request.into_inner().refresh_token).await?;
        Ok(Response::new(pb::RefreshSessionResponse {
            tokens: Some(self.pair_pb(tokens)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let (account, session) = caller(&request)?.require_user()?;
        Identity::logout(self, account, session).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        // A phone after a hand-off reads whether the registration is still open.
        let id = caller(&request)?
            .account_for_capture("accounts:read", &request.get_ref().account_id)?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(account_pb(self.account(id).await?)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn complete_registration(
        &self,
        request: Request<pb::CompleteRegistrationRequest>,
    ) -> Result<Response<pb::CompleteRegistrationResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let registered_at = self.complete(account).await?;
        Ok(Response::new(pb::CompleteRegistrationResponse {
            registered_at: Some(timestamp(registered_at)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        let actor = caller(&request)?
            .require_scope("accounts:delete")?
            .to_owned();
        let account = account_id_field(&request.get_ref().account_id)?;
        let email = self.delete(account, &actor).await?;
        Ok(Response::new(pb::DeleteAccountResponse {
            deleted: email.is_some(),
            email: email.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn block_account(
        &self,
        request: Request<pb::BlockAccountRequest>,
    ) -> Result<Response<pb::BlockAccountResponse>, Status> {
        let actor = caller(&request)?.require_scope("support:write")?.to_owned();
        let req = request.into_inner();
        let account = account_id_field(&req.account_id)?;
        let reason = reason_field(&req.reason)?;
        let ended = self.block(account, &actor, reason).await?;
        Ok(Response::new(pb::BlockAccountResponse {
            revoked_sessions: i64::try_from(ended).unwrap_or(i64::MAX),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn unblock_account(
        &self,
        request: Request<pb::UnblockAccountRequest>,
    ) -> Result<Response<pb::UnblockAccountResponse>, Status> {
        let actor = caller(&request)?.require_scope("support:write")?.to_owned();
        let req = request.into_inner();
        let account = account_id_field(&req.account_id)?;
        let reason = reason_field(&req.reason)?;
        self.unblock(account, &actor, reason).await?;
        Ok(Response::new(pb::UnblockAccountResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn lookup_recovery(
        &self,
        request: Request<pb::LookupRecoveryRequest>,
    ) -> Result<Response<pb::LookupRecoveryResponse>, Status> {
        caller(&request)?.require_scope("accounts:recover")?;
        let by = match request.into_inner().by {
            Some(pb::lookup_recovery_request::By::Login(login)) => RecoveryBy::Login(login),
            Some(pb::lookup_recovery_request::By::Email(email)) => {
                RecoveryBy::Email(email_of(&email)?)
            }
            None => return Err(Error::LoginRequired.into()),
        };
        Ok(Response::new(pb::LookupRecoveryResponse {
            email: self.recovery_email(by).await?,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        caller(&request)?.require_scope("accounts:recover")?;
        let req = request.into_inner();
        let (account, revoked) =
            Identity::reset_password(self, &req.recovery_proof, &req.new_password).await?;
        Ok(Response::new(pb::ResetPasswordResponse {
            account_id: account.to_string(),
            revoked_sessions: i64::try_from(revoked).unwrap_or(i64::MAX),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> Result<Response<pb::IssueServiceTokenResponse>, Status> {
        let req = request.into_inner();
        let (token, scopes) = self.service_token(&req.client_id, &req.client_secret)?;
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token: token,
            expires_in: i64::try_from(self.service_token_ttl.as_secs()).unwrap_or(900),
            scopes,
        }))
    }

    type WatchRevocationsStream = crate::revocations::Watch;

    async fn watch_revocations(
        &self,
        _request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        Ok(Response::new(self.revocations.watch()))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: jwks_json(std::iter::once(&self.signing_key).chain(&self.published_keys)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_capture_token(
        &self,
        request: Request<pb::IssueCaptureTokenRequest>,
    ) -> Result<Response<pb::IssueCaptureTokenResponse>, Status> {
        let (account, session) = caller(&request)?.require_user()?;
        let token = self.capture_token(account, session).await?;
        Ok(Response::new(pb::IssueCaptureTokenResponse {
            capture_token: token,
            expires_in: i64::try_from(CAPTURE_TTL.as_secs()).unwrap_or(900),
        }))
    }
}
