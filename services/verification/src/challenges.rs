//! Challenges: what the service does, on domain values, without gRPC. A challenge is a code
//! mailed to an address; confirming it yields a signed, single-use proof of that address for
//! one purpose. The rules (attempts, cooldown, budgets) live in the store's scripts; the letter
//! is queued before the challenge exists, so a code is never live unless its letter is safely
//! in the mail queue.

use crate::{
    error::Error,
    letters::{Letters, Notice},
    outbox::Outbox,
    store::{Budget, Code, CodeStore, Confirm, Limit, Purpose, Resend, Timing},
};
use examreg_domain::Email;
use examreg_kit::{
    auth::{PROOF_AUDIENCE, PROOF_ISSUER, ProofClaims, unix_now},
    telemetry::fingerprint,
    tokens::{KeySet, SigningKey},
};
use std::time::Duration;
use uuid::Uuid;

pub struct Challenges {
    pub store: CodeStore,
    pub outbox: Outbox,
    pub proof_key: SigningKey,
    pub proof_ttl: Duration,
    /// How applicants reach the support desk, as notices name it.
    pub support_contact: String,
    /// The letters' templates.
    pub letters: Letters,
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
    async fn spend_budgets(&self, subject_tag: &str, client_ip: &str) -> Result<(), Error> {
        match self.store.spend_budgets(subject_tag, client_ip).await? {
            Budget::Within => Ok(()),
            Budget::Over {
                retry_after,
                of: Limit::Subject,
            } => Err(Error::BudgetExhausted { retry_after }),
            Budget::Over {
                retry_after,
                of: Limit::Address,
            } => Err(Error::AddressBudgetExhausted { retry_after }),
        }
    }

    /// Mails a new code to `to` for `purpose`, spending the budget of `subject` (what the
    /// applicant typed: the email, or a login). With no address (`None`) the challenge is a
    /// decoy: timed, capped and budgeted the same, but nothing is sent and no code confirms it.
    pub async fn start(
        &self,
        to: Option<&Email>,
        subject: &str,
        purpose: Purpose,
        locale: &str,
        client_ip: &str,
    ) -> Result<Started, Error> {
        let tag = self.store.subject_tag(subject);
        self.spend_budgets(&tag, client_ip).await?;
        let challenge = Uuid::new_v4();
        let Some(email) = to else {
            let timing = self
                .store
                .create(challenge, "", purpose, None, &tag)
                .await?;
            tracing::info!(challenge = %fingerprint(&challenge), purpose = purpose.as_str(), "decoy challenge started");
            metrics::counter!("verification_decoys_started_total", "purpose" => purpose.as_str())
                .increment(1);
            return Ok(Started { challenge, timing });
        };
        let code = Code::generate();
        let letter = self.letters.code(
            email.as_str(),
            purpose,
            locale,
            code.expose(),
            self.store.limits.code_ttl,
        );
        self.outbox.enqueue(&letter).await?;
        let timing = self
            .store
            .create(challenge, email.as_str(), purpose, Some(&code), &tag)
            .await?;
        tracing::info!(challenge = %fingerprint(&challenge), %email, purpose = purpose.as_str(), "challenge started");
        metrics::counter!("verification_codes_sent_total", "purpose" => purpose.as_str())
            .increment(1);
        Ok(Started { challenge, timing })
    }

    /// Mails a fresh code for a live challenge (the old one stops working), after the cooldown;
    /// a decoy's is renewed the same way and sent nowhere.
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
        let subject = self
            .store
            .subject_of(challenge)
            .await?
            .ok_or(Error::ChallengeExpired)?;
        self.spend_budgets(&subject.budget, client_ip).await?;
        let decoy = subject.email.is_empty();
        let code = (!decoy).then(Code::generate);
        match self.store.resend(challenge, code.as_ref()).await? {
            Resend::Missing => Err(Error::ChallengeExpired),
            Resend::Early { wait } => Err(Error::ResendTooEarly { wait }),
            Resend::Ok {
                email,
                purpose,
                timing,
            } => {
                if let Some(code) = code {
                    let letter = self.letters.code(
                        &email,
                        purpose,
                        locale,
                        code.expose(),
                        self.store.limits.code_ttl,
                    );
                    self.outbox.enqueue(&letter).await?;
                    tracing::info!(challenge = %fingerprint(&challenge), "code resent");
                    metrics::counter!("verification_codes_resent_total").increment(1);
                }
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

    /// Mails `notice` to the address `proof` names: a proof this service signed for
    /// registration, unexpired (spent or not). One notice per proof; `false` when it had one.
    pub async fn notify(&self, proof: &str, notice: Notice, locale: &str) -> Result<bool, Error> {
        let claims: ProofClaims = KeySet::from_signing_keys([&self.proof_key])
            .verify(proof, PROOF_ISSUER, PROOF_AUDIENCE)
            .map_err(|_| Error::InvalidProof)?;
        if claims.purpose != Purpose::Registration.as_str() {
            return Err(Error::InvalidProof);
        }
        let left = Duration::from_secs(u64::try_from(claims.exp - unix_now()).unwrap_or(1).max(1));
        if !self.store.mark_notice(&claims.jti, left).await? {
            return Ok(false);
        }
        let letter = self
            .letters
            .notice(&claims.sub, notice, locale, &self.support_contact);
        if let Err(e) = self.outbox.enqueue(&letter).await {
            // Not queued: the mark goes too, so the caller's retry sends it.
            self.store.unmark_notice(&claims.jti).await?;
            return Err(e.into());
        }
        tracing::info!(to = %examreg_domain::mask_email(&claims.sub), notice = ?notice, "notice queued");
        metrics::counter!("verification_notices_sent_total").increment(1);
        Ok(true)
    }

    /// Removes every challenge, budget and letter (queued or dead) of an address, and the send
    /// budget of the login.
    pub async fn erase(&self, email: &Email, login: Option<&str>) -> Result<Erased, Error> {
        let challenges = self.store.erase(email.as_str(), login).await?;
        let letters = self.outbox.erase(email.as_str()).await?;
        Ok(Erased {
            challenges,
            letters,
        })
    }
}
