//! Sessions: logging in (within the failure budgets of `throttle`), refreshing and ending
//! sessions, and the service and capture tokens. On domain values, without gRPC.

use crate::{
    error::Error,
    identity::Identity,
    password::Verified,
    store::{self, AccountRow, Spend},
    throttle::Attempt,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use examreg_domain::{AccountStatus, normalize_login};
use examreg_kit::auth::Claims;
use sha2::{Digest, Sha256};
use std::time::Duration;
use uuid::Uuid;

/// How long a phone may take photos after a hand-off.
pub const CAPTURE_TTL: Duration = Duration::from_secs(15 * 60);

/// A new access token and the refresh token that renews it.
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

/// Where a login comes from, for the per-address budget and the session record.
pub struct Client<'a> {
    /// Recorded with the session.
    pub ip: &'a str,
    /// Who the per-address failure budget counts against (the address, its network, or a
    /// proof-of-work pass); empty: none.
    pub budget_key: &'a str,
    pub user_agent: &'a str,
}

pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

impl Identity {
    /// A new pair for a session that began at `began`: the refresh token never outlives the
    /// session's lifetime.
    async fn issue_pair(
        &self,
        conn: &mut sqlx::PgConnection,
        account: Uuid,
        session: Uuid,
        began: DateTime<Utc>,
    ) -> Result<Tokens, Error> {
        let refresh: [u8; 32] = rand::random();
        let refresh_token = URL_SAFE_NO_PAD.encode(refresh);
        let refresh_expires_at = (Utc::now() + self.refresh_ttl).min(began + self.session_lifetime);
        store::insert_refresh(
            conn,
            &sha256(refresh_token.as_bytes()),
            session,
            refresh_expires_at,
        )
        .await?;
        let access_token =
            self.signing_key
                .sign(&Claims::access(account, session, self.access_ttl));
        Ok(Tokens {
            access_token,
            refresh_token,
            refresh_expires_at,
        })
    }

    /// Checks a login and a password against both failure budgets; a success opens a session.
    pub(crate) async fn login(
        &self,
        login: &str,
        password: &str,
        client: &Client<'_>,
    ) -> Result<(Tokens, AccountRow), Error> {
        if password.is_empty() || password.chars().count() > 128 {
            return Err(Error::InvalidCredentials);
        }
        let login = normalize_login(login).ok_or(Error::InvalidCredentials)?;
        let attempt =
            Attempt::reserve(&self.pool, &self.throttle, &login, client.budget_key).await?;
        let account = store::account_by_login(&self.pool, &login).await?;
        let verified = match self
            .hasher
            .verify(password, account.as_ref().map(|a| a.password_hash.as_str()))
            .await
        {
            Ok(verified) => verified,
            Err(e) => {
                // Nothing was guessed (the hash never ran, e.g. refused as overloaded).
                attempt.abandon().await?;
                return Err(e.into());
            }
        };
        let account = match (account, verified) {
            (Some(account), Verified::Yes | Verified::YesRehash)
                if account.status != AccountStatus::Blocked =>
            {
                account
            }
            (Some(_) | None, Verified::Yes | Verified::YesRehash | Verified::No) => {
                attempt.failed().await?;
                metrics::counter!("identity_logins_total", "outcome" => "failed").increment(1);
                return Err(Error::InvalidCredentials);
            }
        };
        attempt.succeeded().await?;
        if verified == Verified::YesRehash {
            let fresh = self.hasher.hash(password).await?;
            store::rehash_password(&self.pool, account.id, &account.password_hash, &fresh).await?;
            tracing::info!(account = %account.id, "password rehashed with current parameters");
        }
        let session = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        store::insert_session(&mut tx, session, account.id, client.ip, client.user_agent).await?;
        let tokens = self
            .issue_pair(&mut tx, account.id, session, Utc::now())
            .await?;
        tx.commit().await?;
        tracing::info!(account = %account.id, %session, "logged in");
        metrics::counter!("identity_logins_total", "outcome" => "success").increment(1);
        Ok((tokens, account))
    }

    /// Spends a refresh token for a new pair; a spent one coming back ends its session, unless
    /// it comes back within the grace (`IDENTITY_REFRESH_REUSE_GRACE_SECS`): then it gets a
    /// fresh pair of the same session, as the first use did.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let hash = sha256(refresh_token.trim().as_bytes());
        let mut tx = self.pool.begin().await?;
        match store::spend_refresh(&mut tx, &hash, self.session_lifetime, self.refresh_grace)
            .await?
        {
            Spend::Spent {
                session,
                account,
                began,
            } => {
                let tokens = self.issue_pair(&mut tx, account, session, began).await?;
                tx.commit().await?;
                Ok(tokens)
            }
            Spend::Reused { session } => {
                // A spent token came back: someone holds a copy. Kill the whole family.
                store::revoke_session(
                    &mut tx,
                    session,
                    "refresh_token_reused",
                    self.revocation_kept(),
                )
                .await?;
                tx.commit().await?;
                tracing::warn!(%session, "spent refresh token reused; session revoked");
                Err(Error::RefreshTokenReused)
            }
            Spend::Invalid => Err(Error::InvalidRefreshToken),
        }
    }

    pub(crate) async fn logout(&self, account: Uuid, session: Uuid) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        store::revoke_session(&mut conn, session, "logout", self.revocation_kept()).await?;
        tracing::info!(%account, %session, "logged out");
        Ok(())
    }

    /// A service token for a configured client; its scopes.
    pub(crate) fn service_token(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<(String, Vec<String>), Error> {
        let offered = sha256(secret.as_bytes());
        // Compare every client in constant time per byte, so timing tells nothing about ids.
        let client = self.clients.iter().find(|c| {
            let expected = hex::decode(&c.secret_sha256).unwrap_or_default();
            let same_secret = expected.len() == offered.len()
                && expected
                    .iter()
                    .zip(&offered)
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0;
            same_secret && c.id == client_id
        });
        let Some(client) = client else {
            tracing::warn!(client = %client_id, "service token refused");
            return Err(Error::InvalidClient);
        };
        let token = self.signing_key.sign(&Claims {
            staff: client.staff,
            ..Claims::service(&client.id, &client.scopes, self.service_token_ttl)
        });
        Ok((token, client.scopes.clone()))
    }

    /// A token for a phone to take this account's photos.
    pub(crate) async fn capture_token(
        &self,
        account: Uuid,
        session: Uuid,
    ) -> Result<String, Error> {
        // An access token is checked without a lookup; a hand-off is rarer and longer-lived,
        // so it asks whether the session was logged out.
        if !store::session_is_live(&self.pool, session).await? {
            return Err(Error::SessionEnded);
        }
        let token = self
            .signing_key
            .sign(&Claims::capture(account, session, CAPTURE_TTL));
        tracing::info!(%account, "capture token issued");
        Ok(token)
    }
}

/// What a revocation keeps beyond a token's expiry and leeway: the clocks of identity's pods
/// and of Postgres differ by milliseconds, and a refresh that read the session just before it
/// ended signs its token a moment after.
pub const CLOCK_MARGIN: Duration = Duration::from_secs(5);

impl Identity {
    /// How long an ended session's tokens are refused: until the last token it may have issued
    /// (the longer of an access and a capture token, signed at the latest as it ended) is past
    /// its expiry and the verifiers' leeway, with [`CLOCK_MARGIN`] to spare.
    pub(crate) fn revocation_kept(&self) -> Duration {
        self.access_ttl.max(CAPTURE_TTL) + examreg_kit::tokens::LEEWAY + CLOCK_MARGIN
    }
}
