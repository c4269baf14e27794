//! Challenges: what the service does, on domain values, without gRPC. A challenge is a code
//! mailed to an address; confirming it yields a signed, single-use proof of that address for
//! one purpose. The rules (attempts, cooldown, budgets) live in the store's scripts; the letter
//! is queued before the challenge exists, so a code is never live unless its letter is safely
//! in the mail queue.

use crate::{
    error::Error,
    letters,
    outbox::Outbox,
    store::{Budget, Code, CodeStore, Confirm, Purpose, Resend, Timing},
};
use examreg_domain::Email;
use examreg_kit::{
    auth::{PROOF_AUDIENCE, PROOF_ISSUER, ProofClaims, unix_now},
    telemetry::fingerprint,
    tokens::SigningKey,
};
use std::time::Duration;
use uuid::Uuid;

pub struct Challenges {
    pub store: CodeStore,
    pub outbox: Outbox,
    pub proof_key: SigningKey,
    pub proof_ttl: Duration,
}

/// A started or resent challenge.
pub struct Started {
    pub challenge: Uuid,
    pub timing: Timing,
}

/// A confirmed challenge: the signed proof, the address it proves and when it expires (s).
pub struct Proven {
    pub proof: String,
    pub email: String,
    pub expires_at: i64,
}

/// What an erasure removed.
pub struct Erased {
    pub challenges: u32,
    pub letters: u32,
}

impl Challenges {
    async fn spend_budgets(&self, email: &str, client_ip: &str) -> Result<(), Error> {
        match self.store.spend_budgets(email, client_ip).await? {
            Budget::Within => Ok(()),
            Budget::Over { retry_after } => Err(Error::BudgetExhausted { retry_after }),
        }
    }

    /// Mails a new code to `email` for `purpose`.
    pub async fn start(
        &self,
        email: &Email,
        purpose: Purpose,
        locale: &str,
        client_ip: &str,
    ) -> Result<Started, Error> {
        self.spend_budgets(email.as_str(), client_ip).await?;
        let challenge = Uuid::new_v4();
        let code = Code::generate();
        let letter = letters::code_letter(email.as_str(), purpose, locale, code.expose());
        self.outbox.enqueue(&letter).await?;
        let timing = self
            .store
            .create(challenge, email.as_str(), purpose, &code)
            .await?;
        tracing::info!(challenge = %fingerprint(&challenge), %email, purpose = purpose.as_str(), "challenge started");
        metrics::counter!("verification_codes_sent_total", "purpose" => purpose.as_str())
            .increment(1);
        Ok(Started { challenge, timing })
    }

    /// Mails a fresh code for a live challenge (the old one stops working), after the cooldown.
    pub async fn resend(
        &self,
        challenge: Uuid,
        locale: &str,
        client_ip: &str,
    ) -> Result<Timing, Error> {
        match self.store.resend_wait(challenge).await? {
            None => return Err(Error::ChallengeExpired),
            Some(Some(wait)) => return Err(Error::ResendTooEarly { wait }),
            Some(None) => {}
        }
        let email = self
            .store
            .email_of(challenge)
            .await?
            .ok_or(Error::ChallengeExpired)?;
        self.spend_budgets(&email, client_ip).await?;
        let code = Code::generate();
        match self.store.resend(challenge, &code).await? {
            Resend::Missing => Err(Error::ChallengeExpired),
            Resend::Early { wait } => Err(Error::ResendTooEarly { wait }),
            Resend::Ok {
                email,
                purpose,
                timing,
            } => {
                let letter = letters::code_letter(&email, purpose, locale, code.expose());
                self.outbox.enqueue(&letter).await?;
                tracing::info!(challenge = %fingerprint(&challenge), "code resent");
                metrics::counter!("verification_codes_resent_total").increment(1);
                Ok(timing)
            }
        }
    }

    /// Checks a code; the right one yields the proof and ends the challenge.
    pub async fn confirm(&self, challenge: Uuid, code: &Code) -> Result<Proven, Error> {
        match self.store.confirm(challenge, code).await? {
            Confirm::Ok { email, purpose } => {
                let now = unix_now();
                let exp = now + i64::try_from(self.proof_ttl.as_secs()).unwrap_or(1800);
                let claims = ProofClaims {
                    iss: PROOF_ISSUER.into(),
                    aud: PROOF_AUDIENCE.into(),
                    sub: email.clone(),
                    purpose: purpose.as_str().into(),
                    jti: Uuid::new_v4().to_string(),
                    iat: now,
                    exp,
                };
                tracing::info!(challenge = %fingerprint(&challenge), "code confirmed");
                metrics::counter!("verification_codes_confirmed_total").increment(1);
                Ok(Proven {
                    proof: self.proof_key.sign(&claims),
                    email,
                    expires_at: exp,
                })
            }
            Confirm::Wrong { attempts_left } => Err(Error::WrongCode { attempts_left }),
            Confirm::Burnt => Err(Error::ChallengeBurnt),
            Confirm::Missing => Err(Error::ChallengeExpired),
        }
    }

    /// Removes every challenge, budget and letter (queued or dead) of an address.
    pub async fn erase(&self, email: &Email, actor: &str) -> Result<Erased, Error> {
        let challenges = self.store.erase(email.as_str()).await?;
        let letters = self.outbox.erase(email.as_str()).await?;
        tracing::info!(
            actor,
            to = %email,
            challenges_deleted = challenges,
            letters_deleted = letters,
            "email erased"
        );
        Ok(Erased {
            challenges,
            letters,
        })
    }
}
