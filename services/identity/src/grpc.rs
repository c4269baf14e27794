//! gRPC handlers of identity, thin: who calls, the request into domain values, the call into
//! the service layer (`accounts`, `sessions`), the answer back. Every failure becomes a status
//! in `error.rs`.

use crate::{
    accounts::{NewAccount, RecoveryBy, Terms},
    error::Error,
    feed::Watch,
    identity::Identity,
    record::{FindBy, Reader, identifier_subject},
    sessions::{CAPTURE_TTL, Client, Tokens},
    store::{Acting, AuditOf, Filter, Record},
};
use chrono::Utc;
use examreg_domain::{AccountStatus, Email, Iin, KAZAKHSTAN, LoginKind, PassportNumber};
use examreg_kit::{
    auth::{Caller, account_id_field, caller},
    record::{after_id, note, page_size},
    tokens::jwks_json,
};
use examreg_proto::{
    convert::{FromWire, datetime, steps_typed, timestamp},
    identity::v1::{self as pb, identity_service_server::IdentityService},
};
use std::{sync::Arc, time::Duration};
use tonic::{Request, Response, Status};

/// The gRPC face of [`Identity`]: each handler reads who calls and the request, calls the
/// service, and answers.
pub struct Api {
    pub identity: Arc<Identity>,
}

fn email_of(text: &str) -> Result<Email, Error> {
    Email::parse(text).map_err(Error::InvalidEmail)
}

fn pair_pb(tokens: Tokens, access_ttl: Duration) -> pb::TokenPair {
    pb::TokenPair {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_in: i64::try_from(access_ttl.as_secs()).unwrap_or(900),
        refresh_expires_at: Some(timestamp(tokens.refresh_expires_at)),
    }
}

fn account_pb(row: Record) -> pb::Account {
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
        identifier_released: row.released,
        terms: Some(pb::TermsAcceptance {
            version: row.terms_version,
            sha256: row.terms_sha256.unwrap_or_default(),
            language: row.terms_language.unwrap_or_default(),
            accepted_at: Some(timestamp(row.terms_accepted_at)),
            client_ip: row.terms_client_ip,
            user_agent: row.terms_user_agent,
        }),
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
            sha256: terms.sha256,
            language: terms.language,
            accepted_at: datetime(terms.accepted_at.as_ref()).unwrap_or_else(Utc::now),
            client_ip: terms.client_ip,
            user_agent: terms.user_agent,
        },
    })
}

/// The reason a support action gives, for the audit log.
fn reason_field(value: &str) -> Result<&str, Error> {
    note(value).map_err(|too_long| Error::ReasonRequired { too_long })
}

/// The purpose a service's read of personal data gives, for the audit log.
fn purpose_field(value: &str) -> Result<&str, Error> {
    note(value).map_err(|too_long| Error::PurposeRequired { too_long })
}

/// The support action's actor and reason, from a request's caller (holding `support:write`)
/// and its reason field.
fn acting<'a>(caller: &'a Caller, reason: &'a str) -> Result<Acting<'a>, Status> {
    Ok(Acting {
        actor: caller.require_scope("support:write")?,
        reason: reason_field(reason)?,
    })
}

/// An identifier as the records keep it: an IIN or a passport number as a login is
/// normalized, anything else (an email) in lower case.
fn normalized(identifier: &str) -> String {
    examreg_domain::normalize_login(identifier).unwrap_or_else(|| identifier.trim().to_lowercase())
}

/// What `FindAccount` looks for, checked.
fn find_by(by: Option<pb::find_account_request::By>) -> Result<FindBy, Error> {
    use pb::find_account_request::By;
    match by {
        Some(By::Iin(text)) => {
            let iin = Iin::parse(&text).map_err(Error::InvalidIin)?;
            Ok(FindBy::Login(iin.as_str().to_owned(), LoginKind::Iin))
        }
        Some(By::PassportNumber(text)) => {
            let passport = PassportNumber::parse(&text).map_err(Error::InvalidPassportNumber)?;
            Ok(FindBy::Login(
                passport.as_str().to_owned(),
                LoginKind::Passport,
            ))
        }
        Some(By::Email(text)) => Ok(FindBy::Email(email_of(&text)?)),
        None => Err(Error::IdentifierRequired),
    }
}

/// `ListAccounts`' filters and where its page begins, checked.
fn list_query(
    req: &pb::ListAccountsRequest,
) -> Result<(Vec<AccountStatus>, Option<uuid::Uuid>), Error> {
    let statuses = req
        .statuses
        .iter()
        .map(|&s| AccountStatus::from_wire(s).ok_or(Error::InvalidStatus))
        .collect::<Result<Vec<_>, _>>()?;
    let after = match req.page_token.trim() {
        "" => None,
        token => Some(token.parse().map_err(|_| Error::InvalidPageToken)?),
    };
    Ok((statuses, after))
}

#[tonic::async_trait]
impl IdentityService for Api {
    #[tracing::instrument(skip_all)]
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        caller(&request)?.require_scope("accounts:create")?;
        let id = self
            .identity
            .create(new_account(request.into_inner())?)
            .await?;
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
            budget_key: if req.client_budget_key.is_empty() {
                &req.client_ip
            } else {
                &req.client_budget_key
            },
            user_agent: &req.user_agent,
        };
        let (tokens, account) = self
            .identity
            .login(&req.login, &req.password, &client)
            .await?;
        Ok(Response::new(pb::LoginResponse {
            tokens: Some(pair_pb(tokens, self.identity.access_ttl)),
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
        let tokens = self
            .identity
            .refresh(&request.into_inner().refresh_token)
            .await?;
        Ok(Response::new(pb::RefreshSessionResponse {
            tokens: Some(pair_pb(tokens, self.identity.access_ttl)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let (account, session) = caller(&request)?.require_user()?;
        self.identity.logout(account, session).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let who = caller(&request)?;
        let req = request.get_ref();
        let record = match who {
            Caller::Service { .. } | Caller::Change { .. } => {
                let reader = Reader {
                    actor: who.require_scope("accounts:read")?,
                    purpose: purpose_field(&req.purpose)?,
                };
                self.identity
                    .record_for(account_id_field(&req.account_id)?, &reader)
                    .await?
            }
            // A phone after a hand-off reads whether the registration is still open.
            Caller::User { .. } | Caller::Capture { .. } => {
                let id = who.account_for_capture("accounts:read", &req.account_id)?;
                self.identity.own_record(id).await?
            }
        };
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(account_pb(record)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn find_account(
        &self,
        request: Request<pb::FindAccountRequest>,
    ) -> Result<Response<pb::FindAccountResponse>, Status> {
        let who = caller(&request)?;
        let actor = who.require_scope("accounts:lookup")?;
        let req = request.get_ref();
        let reader = Reader {
            actor,
            purpose: purpose_field(&req.purpose)?,
        };
        let by = find_by(req.by.clone())?;
        Ok(Response::new(pb::FindAccountResponse {
            account: Some(account_pb(self.identity.find(&by, &reader).await?)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let who = caller(&request)?;
        let actor = who.require_scope("registrations:read")?;
        let req = request.get_ref();
        let reader = Reader {
            actor,
            purpose: purpose_field(&req.purpose)?,
        };
        let (statuses, after) = list_query(req)?;
        let filter = Filter {
            statuses: &statuses,
            registered_from: datetime(req.registered_from.as_ref()),
            registered_before: datetime(req.registered_before.as_ref()),
        };
        let page = self
            .identity
            .list(&filter, after, page_size(req.page_size), &reader)
            .await?;
        Ok(Response::new(pb::ListAccountsResponse {
            next_page_token: page.next.map(|id| id.to_string()).unwrap_or_default(),
            feed_cursor: page.feed_cursor.to_string(),
            accounts: page.accounts.into_iter().map(account_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_access_log(
        &self,
        request: Request<pb::ListAccessLogRequest>,
    ) -> Result<Response<pb::ListAccessLogResponse>, Status> {
        let reader = caller(&request)?.require_scope("audit:read")?;
        let req = request.get_ref();
        let of = match req.identifier.trim() {
            "" => AuditOf::Account(account_id_field(&req.account_id)?),
            identifier => AuditOf::Identifier(identifier_subject(&normalized(identifier))),
        };
        let after = after_id(&req.page_token).ok_or(Error::InvalidPageToken)?;
        let (entries, next) = self
            .identity
            .audit_log(&of, after, page_size(req.page_size), reader)
            .await?;
        Ok(Response::new(pb::ListAccessLogResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::AccessLogEntry {
                    at: Some(timestamp(e.at)),
                    actor: e.actor,
                    kind: e.kind,
                    what: e.what,
                    note: e.note,
                    account_id: e.account_id.map(|id| id.to_string()).unwrap_or_default(),
                })
                .collect(),
            next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let actor = caller(&request)?.require_scope("audit:read")?;
        let req = request.get_ref();
        let purpose = purpose_field(&req.purpose)?;
        let account = account_id_field(&req.account_id)?;
        let rows = crate::store::sessions_of(&self.identity.pool, account, actor, purpose)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: rows
                .into_iter()
                .map(|s| pb::SessionRecord {
                    session_id: s.id.to_string(),
                    created_at: Some(timestamp(s.created_at)),
                    revoked_at: s.revoked_at.map(timestamp),
                    revoked_reason: s.revoked_reason.unwrap_or_default(),
                    client_ip: s.client_ip,
                    user_agent: s.user_agent,
                })
                .collect(),
        }))
    }

    type WatchRegistrationsStream = Watch;

    async fn watch_registrations(
        &self,
        request: Request<pb::WatchRegistrationsRequest>,
    ) -> Result<Response<Self::WatchRegistrationsStream>, Status> {
        let client = caller(&request)?
            .require_scope("registrations:read")?
            .to_owned();
        let cursor = crate::feed::parse_cursor(&request.get_ref().cursor)?;
        let permit = self.identity.streams.admit(&client)?;
        Ok(Response::new(
            self.identity.feed.watch(cursor, permit).await?,
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn complete_registration(
        &self,
        request: Request<pb::CompleteRegistrationRequest>,
    ) -> Result<Response<pb::CompleteRegistrationResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let registered_at = self.identity.complete(account).await?;
        Ok(Response::new(pb::CompleteRegistrationResponse {
            registered_at: Some(timestamp(registered_at)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        let who = caller(&request)?;
        let req = request.get_ref();
        let acting = Acting {
            actor: who.require_scope("accounts:delete")?,
            reason: reason_field(&req.reason)?,
        };
        let account = account_id_field(&req.account_id)?;
        let erased = self.identity.erase(account, &acting).await?;
        Ok(Response::new(pb::DeleteAccountResponse {
            deleted: erased.account,
            captures_deleted: erased.captures,
            profile_deleted: erased.profile,
            challenges_deleted: erased.challenges,
            letters_deleted: erased.letters,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn block_account(
        &self,
        request: Request<pb::BlockAccountRequest>,
    ) -> Result<Response<pb::BlockAccountResponse>, Status> {
        let req = request.get_ref();
        let acting = acting(caller(&request)?, &req.reason)?;
        let account = account_id_field(&req.account_id)?;
        let ended = self.identity.block(account, &acting).await?;
        Ok(Response::new(pb::BlockAccountResponse {
            revoked_sessions: i64::try_from(ended).unwrap_or(i64::MAX),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn unblock_account(
        &self,
        request: Request<pb::UnblockAccountRequest>,
    ) -> Result<Response<pb::UnblockAccountResponse>, Status> {
        let req = request.get_ref();
        let acting = acting(caller(&request)?, &req.reason)?;
        let account = account_id_field(&req.account_id)?;
        self.identity.unblock(account, &acting).await?;
        Ok(Response::new(pb::UnblockAccountResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn unlock_login(
        &self,
        request: Request<pb::UnlockLoginRequest>,
    ) -> Result<Response<pb::UnlockLoginResponse>, Status> {
        let req = request.get_ref();
        let acting = acting(caller(&request)?, &req.reason)?;
        let account = account_id_field(&req.account_id)?;
        let was_locked = self.identity.unlock_login(account, &acting).await?;
        Ok(Response::new(pb::UnlockLoginResponse { was_locked }))
    }

    #[tracing::instrument(skip_all)]
    async fn release_identifier(
        &self,
        request: Request<pb::ReleaseIdentifierRequest>,
    ) -> Result<Response<pb::ReleaseIdentifierResponse>, Status> {
        let req = request.get_ref();
        let acting = acting(caller(&request)?, &req.reason)?;
        let account = account_id_field(&req.account_id)?;
        let ended = self.identity.release_identifier(account, &acting).await?;
        Ok(Response::new(pb::ReleaseIdentifierResponse {
            revoked_sessions: i64::try_from(ended).unwrap_or(i64::MAX),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reopen_registration(
        &self,
        request: Request<pb::ReopenRegistrationRequest>,
    ) -> Result<Response<pb::ReopenRegistrationResponse>, Status> {
        let req = request.get_ref();
        let acting = acting(caller(&request)?, &req.reason)?;
        let account = account_id_field(&req.account_id)?;
        let steps = crate::changes::steps_of(&req.onboarding_steps, &req.steps)?;
        let missing = self.identity.reopen(account, &steps, &acting).await?;
        Ok(Response::new(pb::ReopenRegistrationResponse {
            missing_steps: steps_typed(&missing),
            missing,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn lookup_recovery(
        &self,
        request: Request<pb::LookupRecoveryRequest>,
    ) -> Result<Response<pb::LookupRecoveryResponse>, Status> {
        let actor = caller(&request)?
            .require_scope("accounts:recover")?
            .to_owned();
        let by = match request.into_inner().by {
            Some(pb::lookup_recovery_request::By::Login(login)) => RecoveryBy::Login(login),
            Some(pb::lookup_recovery_request::By::Email(email)) => {
                RecoveryBy::Email(email_of(&email)?)
            }
            None => return Err(Error::LoginRequired.into()),
        };
        Ok(Response::new(pb::LookupRecoveryResponse {
            email: self.identity.recovery_email(by, &actor).await?,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        caller(&request)?.require_scope("accounts:recover")?;
        let req = request.into_inner();
        let (account, revoked) = self
            .identity
            .reset_password(&req.recovery_proof, &req.new_password)
            .await?;
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
        let (token, scopes) = self
            .identity
            .service_token(&req.client_id, &req.client_secret)?;
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token: token,
            expires_in: i64::try_from(self.identity.service_token_ttl.as_secs()).unwrap_or(900),
            scopes,
        }))
    }

    type WatchRevocationsStream = crate::revocations::Watch;

    async fn watch_revocations(
        &self,
        request: Request<pb::WatchRevocationsRequest>,
    ) -> Result<Response<Self::WatchRevocationsStream>, Status> {
        let client = caller(&request)?.require_scope("revocations:watch")?;
        let permit = self.identity.streams.admit(client)?;
        Ok(Response::new(self.identity.revocations.watch(permit)))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: jwks_json(
                std::iter::once(&self.identity.signing_key).chain(&self.identity.published_keys),
            ),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_capture_token(
        &self,
        request: Request<pb::IssueCaptureTokenRequest>,
    ) -> Result<Response<pb::IssueCaptureTokenResponse>, Status> {
        let (account, session) = caller(&request)?.require_user()?;
        let token = self.identity.capture_token(account, session).await?;
        Ok(Response::new(pb::IssueCaptureTokenResponse {
            capture_token: token,
            expires_in: i64::try_from(CAPTURE_TTL.as_secs()).unwrap_or(900),
        }))
    }
}
