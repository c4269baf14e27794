//! gRPC handlers of identity: requests become domain values at the edge, then the store and
//! the hasher do the work; every error carries a stable reason code.

use crate::{
    ServiceClient, Throttle,
    password::{self, Hasher, Verified},
    store::{self, Conflict, Spend, StoreError},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use examreg_domain::{Email, Iin, KAZAKHSTAN, PassportNumber};
use examreg_kit::{
    auth::{Claims, PROOF_AUDIENCE, PROOF_ISSUER, ProofClaims, account_id_field, caller},
    errors::{self, internal, invalid, rate_limited},
    tokens::{KeySet, SigningKey, jwks_json},
};
use examreg_proto::identity::v1::{self as pb, identity_service_server::IdentityService};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::time::Duration;
use tonic::{Code, Request, Response, Status};
use uuid::Uuid;

pub struct Identity {
    pub pool: PgPool,
    pub hasher: Hasher,
    pub signing_key: SigningKey,
    pub proof_keys: KeySet,
    pub clients: Vec<ServiceClient>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub service_token_ttl: Duration,
    pub throttle: Throttle,
}

fn store_error(e: StoreError) -> Status {
    match e {
        StoreError::Conflict(Conflict::Login) => errors::status(
            Code::AlreadyExists,
            "identifier_taken",
            "an account with this IIN or passport number already exists",
        ),
        StoreError::Conflict(Conflict::Email) => errors::status(
            Code::AlreadyExists,
            "email_taken",
            "an account with this email already exists",
        ),
        StoreError::Conflict(Conflict::Proof) => invalid_proof(),
        StoreError::Db(e) => errors::db(e),
    }
}

fn hash_error(e: password::HashError) -> Status {
    match e {
        password::HashError::Overloaded(overloaded) => overloaded.status(),
        e @ (password::HashError::Argon2(_) | password::HashError::Join(_)) => internal(&e),
    }
}

fn invalid_proof() -> Status {
    invalid(
        "invalid_email_proof",
        "the email proof is invalid, expired or already used; confirm the email again",
        &[("email_proof", "invalid")],
    )
}

fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Key of a login identifier's failure budget (hashed: unknown logins are arbitrary input).
fn login_key(login: &str) -> String {
    format!("login:{}", hex::encode(sha256(login.as_bytes())))
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

fn status_name(status: &str) -> pb::AccountStatus {
    match status {
        "active" => pb::AccountStatus::Active,
        "registered" => pb::AccountStatus::Registered,
        "blocked" => pb::AccountStatus::Blocked,
        _ => pb::AccountStatus::Unspecified,
    }
}

/// The login identifier as typed: an IIN when it is 12 digits, else a passport number.
fn normalize_login(input: &str) -> Option<String> {
    let trimmed = input.trim();
    if trimmed.len() == 12 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Some(trimmed.to_owned());
    }
    PassportNumber::parse(trimmed)
        .ok()
        .map(|p| p.as_str().to_owned())
}

impl Identity {
    /// Checks an email proof's signature, audience, purpose and email.
    fn check_proof(
        &self,
        proof: &str,
        purpose: &str,
        email: Option<&Email>,
    ) -> Result<ProofClaims, Status> {
        let claims: ProofClaims = self
            .proof_keys
            .verify(proof, PROOF_ISSUER, PROOF_AUDIENCE)
            .map_err(|_| invalid_proof())?;
        if claims.purpose != purpose || email.is_some_and(|e| e.as_str() != claims.sub) {
            return Err(invalid_proof());
        }
        Ok(claims)
    }

    async fn issue_pair(
        &self,
        conn: &mut sqlx::PgConnection,
        account: Uuid,
        session: Uuid,
    ) -> Result<pb::TokenPair, Status> {
        let refresh: [u8; 32] = rand::random();
        let refresh_token = URL_SAFE_NO_PAD.encode(refresh);
        let refresh_expires = Utc::now() + self.refresh_ttl;
        store::insert_refresh(
            conn,
            &sha256(refresh_token.as_bytes()),
            session,
            refresh_expires,
        )
        .await
        .map_err(store_error)?;
        let access = self
            .signing_key
            .sign(&Claims::access(account, session, self.access_ttl));
        Ok(pb::TokenPair {
            access_token: access,
            refresh_token,
            expires_in: i64::try_from(self.access_ttl.as_secs()).unwrap_or(900),
            refresh_expires_at: Some(timestamp(refresh_expires)),
        })
    }

    async fn locked(&self, key: &str) -> Status {
        let secs = store::throttle_locked_for(&self.pool, key)
            .await
            .unwrap_or(1.0);
        too_many_attempts(Duration::from_secs_f64(secs.max(1.0)))
    }
}

fn too_many_attempts(wait: Duration) -> Status {
    rate_limited(
        "too_many_attempts",
        "too many failed logins; try again later",
        wait,
    )
}

fn invalid_credentials() -> Status {
    errors::status(
        Code::Unauthenticated,
        "invalid_credentials",
        "wrong login or password",
    )
}

fn parse_time(ts: Option<&prost_types::Timestamp>) -> DateTime<Utc> {
    ts.and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .unwrap_or_else(Utc::now)
}

#[tonic::async_trait]
impl IdentityService for Identity {
    #[tracing::instrument(skip_all)]
    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        caller(&request)?.require_scope("accounts:create")?;
        let req = request.into_inner();
        let citizenship = req.citizenship.trim().to_ascii_uppercase();
        if citizenship.len() != 2 || !citizenship.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                "invalid_citizenship",
                "citizenship is an ISO 3166-1 alpha-2 code",
                &[("citizenship", "invalid")],
            ));
        }
        let (login, kind) = match req.identifier {
            Some(pb::create_account_request::Identifier::Iin(text)) => {
                let iin = Iin::parse(&text)
                    .map_err(|e| invalid("invalid_iin", e.to_string(), &[("iin", e.code())]))?;
                (iin.as_str().to_owned(), "iin")
            }
            Some(pb::create_account_request::Identifier::PassportNumber(text)) => {
                if citizenship == KAZAKHSTAN {
                    return Err(invalid(
                        "iin_required",
                        "citizens of Kazakhstan register with their IIN",
                        &[("passport_number", "iin_required")],
                    ));
                }
                let passport = PassportNumber::parse(&text).map_err(|e| {
                    invalid(
                        "invalid_passport_number",
                        e.to_string(),
                        &[("passport_number", e.code())],
                    )
                })?;
                (passport.as_str().to_owned(), "passport")
            }
            None => {
                return Err(invalid(
                    "identifier_required",
                    "an IIN or a passport number is required",
                    &[("iin", "required")],
                ));
            }
        };
        let email = Email::parse(&req.email)
            .map_err(|e| invalid("invalid_email", e.to_string(), &[("email", e.code())]))?;
        let proof = self.check_proof(&req.email_proof, "registration", Some(&email))?;
        password::check_policy(&req.password, &[&login, email.local_part()])
            .map_err(|e| invalid("weak_password", e.to_string(), &[("password", e.code())]))?;
        let terms = req.terms.unwrap_or_default();
        if terms.version.trim().is_empty() {
            return Err(invalid(
                "terms_not_accepted",
                "the terms must be accepted",
                &[("terms_version", "required")],
            ));
        }
        let jti: Uuid = proof.jti.parse().map_err(|_| invalid_proof())?;
        let proof_expires = DateTime::from_timestamp(proof.exp, 0).unwrap_or_else(Utc::now);
        let hash = self.hasher.hash(&req.password).await.map_err(hash_error)?;
        let id = Uuid::now_v7();
        // The proof is consumed and the account created in one transaction: either both
        // happen, or neither (a duplicate IIN leaves the proof usable for nothing else anyway).
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e.into()))?;
        store::consume_proof(&mut tx, jti, proof_expires)
            .await
            .map_err(store_error)?;
        store::insert_account(
            &mut tx,
            &store::NewAccount {
                id,
                citizenship: &citizenship,
                login: &login,
                login_kind: kind,
                email: email.as_str(),
                password_hash: &hash,
                terms_version: terms.version.trim(),
                terms_accepted_at: parse_time(terms.accepted_at.as_ref()),
                terms_client_ip: &terms.client_ip,
                terms_user_agent: &terms.user_agent,
            },
        )
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(|e| store_error(e.into()))?;
        tracing::info!(account = %id, %email, "account created");
        metrics::counter!("identity_accounts_created_total").increment(1);
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
        if req.password.is_empty() || req.password.chars().count() > 128 {
            return Err(invalid_credentials());
        }
        let Some(login) = normalize_login(&req.login) else {
            return Err(invalid_credentials());
        };
        let t = &self.throttle;
        let login_key = login_key(&login);
        let ip_key = ip_key(&req.client_ip);
        let window = t.window.as_secs_f64();
        if store::throttle_reserve(&self.pool, &login_key, t.login_budget, window)
            .await
            .map_err(store_error)?
            .is_none()
        {
            metrics::counter!("identity_logins_total", "outcome" => "locked").increment(1);
            return Err(self.locked(&login_key).await);
        }
        if !req.client_ip.is_empty()
            && store::throttle_reserve(&self.pool, &ip_key, t.ip_budget, window)
                .await
                .map_err(store_error)?
                .is_none()
        {
            // The login slot was not used for a guess: give it back.
            store::throttle_succeed(&self.pool, &login_key, false)
                .await
                .map_err(store_error)?;
            metrics::counter!("identity_logins_total", "outcome" => "locked").increment(1);
            return Err(self.locked(&ip_key).await);
        }
        let account = store::account_by_login(&self.pool, &login)
            .await
            .map_err(store_error)?;
        let verified = match self
            .hasher
            .verify(
                &req.password,
                account.as_ref().map(|a| a.password_hash.as_str()),
            )
            .await
        {
            Ok(verified) => verified,
            Err(e) => {
                // Nothing was guessed (the hash never ran, e.g. refused as overloaded): give
                // the reserved slots back.
                store::throttle_succeed(&self.pool, &login_key, false)
                    .await
                    .map_err(store_error)?;
                if !req.client_ip.is_empty() {
                    store::throttle_succeed(&self.pool, &ip_key, false)
                        .await
                        .map_err(store_error)?;
                }
                return Err(hash_error(e));
            }
        };
        let account = match (account, verified) {
            (Some(account), Verified::Yes | Verified::YesRehash) if account.status != "blocked" => {
                account
            }
            (Some(_) | None, Verified::Yes | Verified::YesRehash | Verified::No) => {
                let base = t.lockout_base.as_secs_f64();
                let max = t.lockout_max.as_secs_f64();
                if let Some(secs) =
                    store::throttle_fail(&self.pool, &login_key, t.login_budget, base, max)
                        .await
                        .map_err(store_error)?
                {
                    tracing::warn!(secs, "login identifier locked after failed logins");
                    metrics::counter!("identity_lockouts_total").increment(1);
                }
                if !req.client_ip.is_empty() {
                    store::throttle_fail(&self.pool, &ip_key, t.ip_budget, base, max)
                        .await
                        .map_err(store_error)?;
                }
                metrics::counter!("identity_logins_total", "outcome" => "failed").increment(1);
                return Err(invalid_credentials());
            }
        };
        store::throttle_succeed(&self.pool, &login_key, true)
            .await
            .map_err(store_error)?;
        if !req.client_ip.is_empty() {
            store::throttle_succeed(&self.pool, &ip_key, false)
                .await
                .map_err(store_error)?;
        }
        if verified == Verified::YesRehash {
            let fresh = self.hasher.hash(&req.password).await.map_err(hash_error)?;
            store::rehash_password(&self.pool, account.id, &account.password_hash, &fresh)
                .await
                .map_err(store_error)?;
            tracing::info!(account = %account.id, "password rehashed with current parameters");
        }
        let session = Uuid::now_v7();
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e.into()))?;
        store::insert_session(
            &mut tx,
            session,
            account.id,
            &req.client_ip,
            &req.user_agent,
        )
        .await
        .map_err(store_error)?;
        let tokens = self.issue_pair(&mut tx, account.id, session).await?;
        tx.commit().await.map_err(|e| store_error(e.into()))?;
        tracing::info!(account = %account.id, %session, "logged in");
        metrics::counter!("identity_logins_total", "outcome" => "success").increment(1);
        Ok(Response::new(pb::LoginResponse {
            tokens: Some(tokens),
            account_id: account.id.to_string(),
            status: status_name(&account.status).into(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<Response<pb::RefreshSessionResponse>, Status> {
        caller(&request)?.require_scope("sessions:create")?;
        let token = request.into_inner().refresh_token;
        let hash = sha256(token.trim().as_bytes());
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e.into()))?;
        match store::spend_refresh(&mut tx, &hash)
            .await
            .map_err(store_error)?
        {
            Spend::Spent { session, account } => {
                let tokens = self.issue_pair(&mut tx, account, session).await?;
                tx.commit().await.map_err(|e| store_error(e.into()))?;
                Ok(Response::new(pb::RefreshSessionResponse {
                    tokens: Some(tokens),
                }))
            }
            Spend::Reused { session } => {
                // A spent token came back: someone holds a copy. Kill the whole family.
                store::revoke_session(&mut tx, session, "refresh_token_reused")
                    .await
                    .map_err(store_error)?;
                tx.commit().await.map_err(|e| store_error(e.into()))?;
                tracing::warn!(%session, "spent refresh token reused; session revoked");
                Err(errors::status(
                    Code::Unauthenticated,
                    "refresh_token_reused",
                    "this refresh token was already used; the session is closed, log in again",
                ))
            }
            Spend::Invalid => Err(errors::status(
                Code::Unauthenticated,
                "invalid_refresh_token",
                "the refresh token is invalid or expired; log in again",
            )),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let (account, session) = caller(&request)?.require_user()?;
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| store_error(e.into()))?;
        store::revoke_session(&mut conn, session, "logout")
            .await
            .map_err(store_error)?;
        tracing::info!(%account, %session, "logged out");
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
        let row = store::account_by_id(&self.pool, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                errors::status(Code::NotFound, "account_not_found", "no such account")
            })?;
        let identifier = if row.login_kind == "iin" {
            pb::account::Identifier::Iin(row.login)
        } else {
            pb::account::Identifier::PassportNumber(row.login)
        };
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(pb::Account {
                account_id: row.id.to_string(),
                citizenship: row.citizenship,
                identifier: Some(identifier),
                email: row.email,
                status: status_name(&row.status).into(),
                created_at: Some(timestamp(row.created_at)),
                registered_at: row.registered_at.map(timestamp),
            }),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn complete_registration(
        &self,
        request: Request<pb::CompleteRegistrationRequest>,
    ) -> Result<Response<pb::CompleteRegistrationResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let registered_at = store::complete_registration(&self.pool, account)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                errors::status(
                    Code::FailedPrecondition,
                    "account_blocked",
                    "this account cannot complete a registration",
                )
            })?;
        tracing::info!(%account, "registration completed");
        metrics::counter!("identity_registrations_completed_total").increment(1);
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
        let account: Uuid = account_id_field(&request.get_ref().account_id)?;
        let email = store::delete_account(&self.pool, account)
            .await
            .map_err(store_error)?;
        tracing::info!(%account, actor, deleted = email.is_some(), "account deleted");
        Ok(Response::new(pb::DeleteAccountResponse {
            deleted: email.is_some(),
            email: email.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn lookup_recovery(
        &self,
        request: Request<pb::LookupRecoveryRequest>,
    ) -> Result<Response<pb::LookupRecoveryResponse>, Status> {
        caller(&request)?.require_scope("accounts:recover")?;
        let not_found = || errors::status(Code::NotFound, "account_not_found", "no such account");
        let row = match request.into_inner().by {
            Some(pb::lookup_recovery_request::By::Login(login)) => {
                let login = normalize_login(&login).ok_or_else(not_found)?;
                store::account_by_login(&self.pool, &login)
                    .await
                    .map_err(store_error)?
            }
            Some(pb::lookup_recovery_request::By::Email(email)) => {
                let email = Email::parse(&email)
                    .map_err(|e| invalid("invalid_email", e.to_string(), &[("email", e.code())]))?;
                let mut conn = self
                    .pool
                    .acquire()
                    .await
                    .map_err(|e| store_error(e.into()))?;
                store::account_by_email(&mut conn, email.as_str())
                    .await
                    .map_err(store_error)?
            }
            None => {
                return Err(invalid(
                    "login_required",
                    "a login or an email is required",
                    &[("login", "required")],
                ));
            }
        };
        let row = row.ok_or_else(not_found)?;
        Ok(Response::new(pb::LookupRecoveryResponse {
            email: row.email,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        caller(&request)?.require_scope("accounts:recover")?;
        let req = request.into_inner();
        let proof = self.check_proof(&req.recovery_proof, "recovery", None)?;
        let jti: Uuid = proof.jti.parse().map_err(|_| invalid_proof())?;
        let proof_expires = DateTime::from_timestamp(proof.exp, 0).unwrap_or_else(Utc::now);
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| store_error(e.into()))?;
        let account = store::account_by_email(&mut conn, &proof.sub)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                errors::status(
                    Code::NotFound,
                    "account_not_found",
                    "no account has this email",
                )
            })?;
        drop(conn);
        let local = proof.sub.split('@').next().unwrap_or("");
        password::check_policy(&req.new_password, &[&account.login, local])
            .map_err(|e| invalid("weak_password", e.to_string(), &[("password", e.code())]))?;
        let hash = self
            .hasher
            .hash(&req.new_password)
            .await
            .map_err(hash_error)?;
        let mut tx = self.pool.begin().await.map_err(|e| store_error(e.into()))?;
        store::consume_proof(&mut tx, jti, proof_expires)
            .await
            .map_err(store_error)?;
        store::set_password_hash(&mut tx, account.id, &hash)
            .await
            .map_err(store_error)?;
        let revoked = store::revoke_all_sessions(&mut tx, account.id, "password_reset")
            .await
            .map_err(store_error)?;
        store::throttle_clear(&mut tx, &login_key(&account.login))
            .await
            .map_err(store_error)?;
        tx.commit().await.map_err(|e| store_error(e.into()))?;
        tracing::info!(account = %account.id, revoked, "password reset");
        Ok(Response::new(pb::ResetPasswordResponse {
            account_id: account.id.to_string(),
            revoked_sessions: i64::try_from(revoked).unwrap_or(i64::MAX),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> Result<Response<pb::IssueServiceTokenResponse>, Status> {
        let req = request.into_inner();
        let offered = sha256(req.client_secret.as_bytes());
        // Compare every client in constant time per byte, so timing tells nothing about ids.
        let client = self.clients.iter().find(|c| {
            let expected = hex::decode(&c.secret_sha256).unwrap_or_default();
            let same_secret = expected.len() == offered.len()
                && expected
                    .iter()
                    .zip(&offered)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0;
            same_secret && c.id == req.client_id
        });
        let Some(client) = client else {
            tracing::warn!(client = %req.client_id, "service token refused");
            return Err(errors::status(
                Code::Unauthenticated,
                "invalid_client",
                "unknown client or wrong secret",
            ));
        };
        let token = self.signing_key.sign(&Claims::service(
            &client.id,
            &client.scopes,
            self.service_token_ttl,
        ));
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token: token,
            expires_in: i64::try_from(self.service_token_ttl.as_secs()).unwrap_or(900),
            scopes: client.scopes.clone(),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: jwks_json([&self.signing_key]),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn issue_capture_token(
        &self,
        request: Request<pb::IssueCaptureTokenRequest>,
    ) -> Result<Response<pb::IssueCaptureTokenResponse>, Status> {
        let (account, session) = caller(&request)?.require_user()?;
        // An access token is checked without a lookup; a hand-off is rarer and longer-lived,
        // so it asks whether the session was logged out.
        if !store::session_is_live(&self.pool, session)
            .await
            .map_err(store_error)?
        {
            return Err(Status::unauthenticated(
                "the session has ended; log in again",
            ));
        }
        let token = self
            .signing_key
            .sign(&Claims::capture(account, session, CAPTURE_TTL));
        tracing::info!(%account, "capture token issued");
        Ok(Response::new(pb::IssueCaptureTokenResponse {
            capture_token: token,
            expires_in: i64::try_from(CAPTURE_TTL.as_secs()).unwrap_or(900),
        }))
    }
}

/// How long a phone may take photos after a hand-off.
const CAPTURE_TTL: Duration = Duration::from_secs(15 * 60);
