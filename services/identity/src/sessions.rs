//! Sessions: logging in (with the failure budgets per login and per address, and growing
//! lockouts), refreshing and ending sessions, and the service and capture tokens. On domain
//! values, without gRPC.

use crate::{
    error::Error,
    grpc::Identity,
    password::Verified,
    store::{self, AccountRow, Spend},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use examreg_domain::PassportNumber;
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
    pub ip: &'a str,
    pub user_agent: &'a str,
}

pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Key of a login identifier's failure budget (hashed: unknown logins are arbitrary input).
pub(crate) fn login_key(login: &str) -> String {
    format!("login:{}", hex::encode(sha256(login.as_bytes())))
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// The login identifier as typed: an IIN when it is 12 digits, else a passport number.
pub(crate) fn normalize_login(input: &str) -> Option<String> {
    let trimmed = input.trim();
    if trimmed.len() == 12 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Some(trimmed.to_owned());
    }
    PassportNumber::parse(trimmed)
        .ok()
        .map(|p| p.as_str().to_owned())
}

impl Identity {
    async fn issue_pair(
        &self,
        conn: &mut sqlx::PgConnection,
        account: Uuid,
        session: Uuid,
    ) -> Result<Tokens, Error> {
        let refresh: [u8; 32] = rand::random();
        let refresh_token = URL_SAFE_NO_PAD.encode(refresh);
        let refresh_expires_at = Utc::now() + self.refresh_ttl;
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

    async fn locked(&self, key: &str) -> Error {
        let secs = store::throttle_locked_for(&self.pool, key)
            .await
            .unwrap_or(1.0);
        Error::TooManyAttempts {
            wait: Duration::from_secs_f64(secs.max(1.0)),
        }
    }

    /// Gives back the slots reserved for a guess that was never made.
    async fn give_back(&self, login_key: &str, ip: Option<&str>) -> Result<(), Error> {
        store::throttle_succeed(&self.pool, login_key, false).await?;
        if let Some(ip) = ip {
            store::throttle_succeed(&self.pool, ip, false).await?;
        }
        Ok(())
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
        let t = &self.throttle;
        let login_key = login_key(&login);
        let ip_key = (!client.ip.is_empty()).then(|| ip_key(client.ip));
        let window = t.window.as_secs_f64();
        if store::throttle_reserve(&self.pool, &login_key, t.login_budget, window)
            .await?
            .is_none()
        {
            metrics::counter!("identity_logins_total", "outcome" => "locked").increment(1);
            return Err(self.locked(&login_key).await);
        }
        if let Some(ip_key) = &ip_key
            && store::throttle_reserve(&self.pool, ip_key, t.ip_budget, window)
                .await?
                .is_none()
        {
            // The login slot was not used for a guess: give it back.
            self.give_back(&login_key, None).await?;
            metrics::counter!("identity_logins_total", "outcome" => "locked").increment(1);
            return Err(self.locked(ip_key).await);
        }
        let account = store::account_by_login(&self.pool, &login).await?;
        let verified = match self
            .hasher
            .verify(password, account.as_ref().map(|a| a.password_hash.as_str()))
            .await
        {
            Ok(verified) => verified,
            Err(e) => {
                // Nothing was guessed (the hash never ran, e.g. refused as overloaded): give
                // the reserved slots back.
                self.give_back(&login_key, ip_key.as_deref()).await?;
                return Err(e.into());
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
                    store::throttle_fail(&self.pool, &login_key, t.login_budget, base, max).await?
                {
                    tracing::warn!(secs, "login identifier locked after failed logins");
                    metrics::counter!("identity_lockouts_total").increment(1);
                }
                if let Some(ip_key) = &ip_key {
                    store::throttle_fail(&self.pool, ip_key, t.ip_budget, base, max).await?;
                }
                metrics::counter!("identity_logins_total", "outcome" => "failed").increment(1);
                return Err(Error::InvalidCredentials);
            }
        };
        store::throttle_succeed(&self.pool, &login_key, true).await?;
        if let Some(ip_key) = &ip_key {
            store::throttle_succeed(&self.pool, ip_key, false).await?;
        }
        if verified == Verified::YesRehash {
            let fresh = self.hasher.hash(password).await?;
            store::rehash_password(&self.pool, account.id, &account.password_hash, &fresh).await?;
            tracing::info!(account = %account.id, "password rehashed with current parameters");
        }
        let session = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        store::insert_session(&mut tx, session, account.id, client.ip, client.user_agent).await?;
        let tokens = self.issue_pair(&mut tx, account.id, session).await?;
        tx.commit().await?;
        tracing::info!(account = %account.id, %session, "logged in");
        metrics::counter!("identity_logins_total", "outcome" => "success").increment(1);
        Ok((tokens, account))
    }

    /// Spends a refresh token for a new pair; a spent one coming back ends its session.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let hash = sha256(refresh_token.trim().as_bytes());
        let mut tx = self.pool.begin().await?;
        match store::spend_refresh(&mut tx, &hash).await? {
            Spend::Spent { session, account } => {
                let tokens = self.issue_pair(&mut tx, account, session).await?;
                tx.commit().await?;
                Ok(tokens)
            }
            Spend::Reused { session } => {
                // A spent token came back: someone holds a copy. Kill the whole family.
                store::revoke_session(&mut tx, session, "refresh_token_reused").await?;
                tx.commit().await?;
                tracing::warn!(%session, "spent refresh token reused; session revoked");
                Err(Error::RefreshTokenReused)
            }
            Spend::Invalid => Err(Error::InvalidRefreshToken),
        }
    }

    pub(crate) async fn logout(&self, account: Uuid, session: Uuid) -> Result<(), Error> {
        let mut conn = self.pool.acquire().await?;
        store::revoke_session(&mut conn, session, "logout").await?;
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
        let token = self.signing_key.sign(&Claims::service(
            &client.id,
            &client.scopes,
            self.service_token_ttl,
        ));
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
