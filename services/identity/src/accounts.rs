//! Accounts: creation from a proven email, reading, completion, deletion, and the password
//! reset of recovery. On domain values, without gRPC.

use crate::{
    error::Error,
    identity::Identity,
    password::{self, Verified},
    store,
};
use chrono::{DateTime, Utc};
use examreg_domain::{Email, LoginKind, RegistrationEventKind};
use examreg_kit::auth::{PROOF_AUDIENCE, PROOF_ISSUER, ProofClaims};
use uuid::Uuid;

/// A checked registration: every value already valid but the proof and the password, which
/// are checked here.
pub struct NewAccount {
    pub citizenship: String,
    /// The IIN or the normalized passport number, and which of the two (`iin`, `passport`).
    pub login: String,
    pub login_kind: LoginKind,
    pub email: Email,
    pub email_proof: String,
    pub password: String,
    pub terms: Terms,
}

/// The acceptance of the terms of use: the version and where it was accepted.
pub struct Terms {
    pub version: String,
    /// The SHA-256 of the published text accepted, and its language.
    pub sha256: String,
    pub language: String,
    pub accepted_at: DateTime<Utc>,
    pub client_ip: String,
    pub user_agent: String,
}

/// How recovery names the account.
pub enum RecoveryBy {
    Login(String),
    Email(Email),
}

impl Identity {
    /// Checks an email proof's signature, audience, purpose and email.
    fn check_proof(
        &self,
        proof: &str,
        purpose: &str,
        email: Option<&Email>,
    ) -> Result<ProofClaims, Error> {
        let claims: ProofClaims = self
            .proof_keys
            .verify(proof, PROOF_ISSUER, PROOF_AUDIENCE)
            .map_err(|_| Error::InvalidEmailProof)?;
        if claims.purpose != purpose || email.is_some_and(|e| e.as_str() != claims.sub) {
            return Err(Error::InvalidEmailProof);
        }
        Ok(claims)
    }

    pub(crate) async fn create(&self, new: NewAccount) -> Result<Uuid, Error> {
        let proof = self.check_proof(&new.email_proof, "registration", Some(&new.email))?;
        password::check_policy(&new.password, &[&new.login, new.email.local_part()])
            .map_err(Error::WeakPassword)?;
        examreg_domain::check_text_acceptance(
            &new.terms.version,
            &new.terms.sha256,
            &new.terms.language,
        )
        .map_err(|field| {
            Error::TermsNotAccepted(match field {
                "sha256" => "terms_sha256",
                "language" => "terms_language",
                _ => "terms_version",
            })
        })?;
        let jti: Uuid = proof.jti.parse().map_err(|_| Error::InvalidEmailProof)?;
        let proof_expires = DateTime::from_timestamp(proof.exp, 0).unwrap_or_else(Utc::now);
        let hash = self.hasher.hash(&new.password).await?;
        let id = Uuid::now_v7();
        // The proof is consumed and the account created in one transaction. When an account
        // already holds the login or the email the proof is consumed all the same: each such
        // answer costs the asker a fresh code to a mailbox it proves, so probing which IINs
        // are registered is as slow as the code budgets.
        let mut tx = self.pool.begin().await?;
        match store::consume_proof(&mut tx, jti, proof_expires, Some(id)).await {
            Err(store::StoreError::Conflict(store::Conflict::Proof)) => {
                drop(tx);
                return self.made_before(jti, &new).await;
            }
            other => other?,
        }
        let inserted = store::insert_account(
            &mut tx,
            &store::NewAccount {
                id,
                citizenship: &new.citizenship,
                login: &new.login,
                login_kind: new.login_kind,
                email: new.email.as_str(),
                password_hash: &hash,
                terms_version: new.terms.version.trim(),
                terms_sha256: &new.terms.sha256,
                terms_language: &new.terms.language,
                terms_accepted_at: new.terms.accepted_at,
                terms_client_ip: &new.terms.client_ip,
                terms_user_agent: &new.terms.user_agent,
            },
        )
        .await;
        if let Err(store::StoreError::Conflict(store::Conflict::Taken)) = inserted {
            tx.commit().await?;
            tracing::info!(email = %new.email, "registration refused: already registered");
            metrics::counter!("identity_registrations_refused_total").increment(1);
            return Err(Error::AlreadyRegistered);
        }
        inserted?;
        store::append_event(&mut tx, id, RegistrationEventKind::AccountCreated).await?;
        tx.commit().await?;
        tracing::info!(account = %id, email = %new.email, "account created");
        metrics::counter!("identity_accounts_created_total").increment(1);
        Ok(id)
    }

    /// The same registration again (its answer was lost on the way): the account its proof
    /// made, if the login, the email and the password are the ones it was made with; else the
    /// proof is spent.
    async fn made_before(&self, jti: Uuid, new: &NewAccount) -> Result<Uuid, Error> {
        let made =
            store::account_made_with_proof(&self.pool, jti, &new.login, new.email.as_str()).await?;
        let Some(account) = made else {
            return Err(Error::InvalidEmailProof);
        };
        match self
            .hasher
            .verify(&new.password, Some(&account.password_hash))
            .await?
        {
            Verified::Yes | Verified::YesRehash => {
                tracing::info!(account = %account.id, "registration sent again: already made");
                Ok(account.id)
            }
            Verified::No => Err(Error::InvalidEmailProof),
        }
    }

    pub(crate) async fn complete(&self, account: Uuid) -> Result<DateTime<Utc>, Error> {
        match store::complete_registration(&self.pool, account).await? {
            store::Completion::Done(registered_at) => {
                tracing::info!(%account, "registration completed");
                metrics::counter!("identity_registrations_completed_total").increment(1);
                Ok(registered_at)
            }
            store::Completion::Refused => Err(Error::AccountBlocked),
            store::Completion::ChangePending => Err(Error::ChangePending),
        }
    }

    /// Blocks an account, ending its sessions; how many ended.
    pub(crate) async fn block(
        &self,
        account: Uuid,
        acting: &store::Acting<'_>,
    ) -> Result<u64, Error> {
        let ended = store::block_account(&self.pool, account, acting, self.revocation_kept())
            .await?
            .ok_or(Error::AccountNotFound)?;
        tracing::info!(%account, actor = acting.actor, sessions_ended = ended, "account blocked");
        metrics::counter!("identity_accounts_blocked_total").increment(1);
        Ok(ended)
    }

    /// Lifts the block of an account.
    pub(crate) async fn unblock(
        &self,
        account: Uuid,
        acting: &store::Acting<'_>,
    ) -> Result<(), Error> {
        match store::unblock_account(&self.pool, account, acting).await? {
            store::Unblock::Done => {}
            store::Unblock::NotFound => return Err(Error::AccountNotFound),
            store::Unblock::Released => return Err(Error::IdentifierReleased),
        }
        tracing::info!(%account, actor = acting.actor, "account unblocked");
        Ok(())
    }

    /// Forgets the failed logins of an account's login; whether it was locked.
    pub(crate) async fn unlock_login(
        &self,
        account: Uuid,
        acting: &store::Acting<'_>,
    ) -> Result<bool, Error> {
        let was_locked =
            store::unlock_login(&self.pool, account, acting, crate::throttle::login_key)
                .await?
                .ok_or(Error::AccountNotFound)?;
        tracing::info!(%account, actor = acting.actor, was_locked, "login unlocked");
        Ok(was_locked)
    }

    /// Releases an account's identifier for its real holder; how many sessions ended. The
    /// squatter's photos, profile, codes and letters are erased at the other services (a
    /// recorded change, carried out by identity within seconds if a service is down now); the
    /// account stays, blocked, as the record of the release.
    pub(crate) async fn release_identifier(
        &self,
        account: Uuid,
        acting: &store::Acting<'_>,
    ) -> Result<u64, Error> {
        let (ended, change) = store::release_login(
            &self.pool,
            account,
            acting,
            self.revocation_kept(),
            crate::throttle::login_key,
        )
        .await?
        .ok_or(Error::AccountNotFound)?;
        tracing::info!(%account, actor = acting.actor, sessions_ended = ended, "identifier released");
        metrics::counter!("identity_identifiers_released_total").increment(1);
        // The release holds whatever the other services answer: an erasure they cannot do now
        // is recorded, and identity carries it out within seconds.
        if let Some(change) = change
            && let Err(e) = self.carry_out(&change).await
        {
            tracing::warn!(%account, error = %e, "the squatter's data will be erased on retry");
        }
        Ok(ended)
    }

    /// The email a recovery code goes to, for the applicant who asked through `actor` (the
    /// gateway); the lookup is recorded in the audit log, found or not.
    pub(crate) async fn recovery_email(
        &self,
        by: RecoveryBy,
        actor: &str,
    ) -> Result<String, Error> {
        let (row, looked_up) = match by {
            RecoveryBy::Login(login) => match examreg_domain::normalize_login(&login) {
                Some(login) => (store::account_by_login(&self.pool, &login).await?, login),
                None => (None, login.trim().to_owned()),
            },
            RecoveryBy::Email(email) => {
                let mut conn = self.pool.acquire().await?;
                let row = store::account_by_email(&mut conn, email.as_str()).await?;
                (row, email.as_str().to_owned())
            }
        };
        let mut conn = self.pool.acquire().await?;
        store::log_lookup(
            &mut conn,
            row.as_ref().map(|r| r.id),
            actor,
            "recovery_email",
            "a recovery the applicant asked for",
            &crate::record::identifier_subject(&looked_up),
        )
        .await?;
        Ok(row.ok_or(Error::AccountNotFound)?.email)
    }

    /// Sets a new password from a recovery proof, ends every session and clears the login's
    /// failures; the account and how many sessions ended.
    pub(crate) async fn reset_password(
        &self,
        recovery_proof: &str,
        new_password: &str,
    ) -> Result<(Uuid, u64), Error> {
        let proof = self.check_proof(recovery_proof, "recovery", None)?;
        let jti: Uuid = proof.jti.parse().map_err(|_| Error::InvalidEmailProof)?;
        let proof_expires = DateTime::from_timestamp(proof.exp, 0).unwrap_or_else(Utc::now);
        let mut conn = self.pool.acquire().await?;
        let account = store::account_by_email(&mut conn, &proof.sub)
            .await?
            .ok_or(Error::AccountNotFound)?;
        drop(conn);
        let local = proof.sub.split('@').next().unwrap_or("");
        password::check_policy(new_password, &[&account.login, local])
            .map_err(Error::WeakPassword)?;
        let hash = self.hasher.hash(new_password).await?;
        let mut tx = self.pool.begin().await?;
        store::consume_proof(&mut tx, jti, proof_expires, None).await?;
        store::set_password_hash(&mut tx, account.id, &hash).await?;
        let revoked = store::revoke_all_sessions(
            &mut tx,
            account.id,
            "password_reset",
            self.revocation_kept(),
        )
        .await?;
        store::throttle_clear(&mut tx, &crate::throttle::login_key(&account.login)).await?;
        tx.commit().await?;
        tracing::info!(account = %account.id, revoked, "password reset");
        Ok((account.id, revoked))
    }
}
