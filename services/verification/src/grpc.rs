//! gRPC handlers: turn requests into domain values, call the store and the outbox, map results.

use crate::{
    letters,
    outbox::Outbox,
    store::{Budget, Code, CodeStore, Confirm, Purpose, Resend, Timing},
};
use examreg_domain::Email;
use examreg_kit::{
    auth::{PROOF_AUDIENCE, PROOF_ISSUER, ProofClaims, caller, unix_now},
    errors::{self, internal, invalid, rate_limited},
    tokens::SigningKey,
};
use examreg_proto::verification::v1::{
    self as pb, verification_service_server::VerificationService,
};
use std::time::Duration;
use tonic::{Code as GrpcCode, Request, Response, Status};
use uuid::Uuid;

pub struct Verification {
    pub store: CodeStore,
    pub outbox: Outbox,
    pub proof_key: SigningKey,
    pub proof_ttl: Duration,
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

fn purpose_of(value: i32) -> Result<Purpose, Status> {
    match pb::Purpose::try_from(value) {
        Ok(pb::Purpose::Registration) => Ok(Purpose::Registration),
        Ok(pb::Purpose::Recovery) => Ok(Purpose::Recovery),
        Ok(pb::Purpose::Unspecified) | Err(_) => Err(invalid(
            "invalid_purpose",
            "purpose must be registration or recovery",
            &[("purpose", "invalid")],
        )),
    }
}

fn challenge_id(text: &str) -> Result<Uuid, Status> {
    // An unparseable id cannot name a live challenge: answer as for an expired one.
    text.parse().map_err(|_| challenge_expired())
}

fn challenge_expired() -> Status {
    errors::status(
        GrpcCode::NotFound,
        "challenge_expired",
        "the code has expired or the challenge does not exist; request a new code",
    )
}

fn store_error(e: crate::store::StoreError) -> Status {
    match e {
        crate::store::StoreError::Redis(e) => errors::unavailable("redis", &e),
        crate::store::StoreError::Protocol => internal(&e),
    }
}

fn over_budget(which: &str, retry_after: Duration) -> Status {
    rate_limited(
        which,
        "too many codes were requested; try again later",
        retry_after,
    )
}

impl Verification {
    async fn spend_budgets(&self, email: &str, ip: &str) -> Result<(), Status> {
        match self
            .store
            .spend_budgets(email, ip)
            .await
            .map_err(store_error)?
        {
            Budget::Within => Ok(()),
            Budget::Over { retry_after } => Err(over_budget("send_budget_exhausted", retry_after)),
        }
    }
}

#[tonic::async_trait]
impl VerificationService for Verification {
    #[tracing::instrument(skip_all)]
    async fn erase_email(
        &self,
        request: Request<pb::EraseEmailRequest>,
    ) -> Result<Response<pb::EraseEmailResponse>, Status> {
        let actor = caller(&request)?
            .require_scope("verification:erase")?
            .to_owned();
        let email = Email::parse(&request.into_inner().email).map_err(|e| {
            invalid(
                "invalid_email",
                "the email is not valid",
                &[("email", e.code())],
            )
        })?;
        let challenges_deleted = self
            .store
            .erase(email.as_str())
            .await
            .map_err(store_error)?;
        let letters_deleted = self
            .outbox
            .erase(email.as_str())
            .await
            .map_err(|crate::outbox::OutboxError::Redis(e)| errors::unavailable("redis", &e))?;
        tracing::info!(
            actor,
            to = %examreg_domain::mask_email(email.as_str()),
            challenges_deleted,
            letters_deleted,
            "email erased"
        );
        Ok(Response::new(pb::EraseEmailResponse {
            challenges_deleted,
            letters_deleted,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn start_challenge(
        &self,
        request: Request<pb::StartChallengeRequest>,
    ) -> Result<Response<pb::StartChallengeResponse>, Status> {
        caller(&request)?.require_scope("verification:send")?;
        let req = request.into_inner();
        let email = Email::parse(&req.email)
            .map_err(|e| invalid("invalid_email", e.to_string(), &[("email", e.code())]))?;
        let purpose = purpose_of(req.purpose)?;
        self.spend_budgets(email.as_str(), &req.client_ip).await?;
        let challenge = Uuid::new_v4();
        let code = Code::generate();
        // The letter is queued before the challenge exists: a code is never live unless its
        // letter is safely in the outbox.
        let letter = letters::code_letter(email.as_str(), purpose, &req.locale, code.expose());
        self.outbox.enqueue(&letter).await.map_err(|e| match e {
            crate::outbox::OutboxError::Redis(e) => errors::unavailable("redis", &e),
        })?;
        let Timing {
            resend_at_ms,
            expires_at_ms,
        } = self
            .store
            .create(challenge, email.as_str(), purpose, &code)
            .await
            .map_err(store_error)?;
        tracing::info!(challenge = %examreg_kit::telemetry::fingerprint(&challenge), %email, purpose = purpose.as_str(), "challenge started");
        metrics::counter!("verification_codes_sent_total", "purpose" => purpose.as_str())
            .increment(1);
        Ok(Response::new(pb::StartChallengeResponse {
            challenge_id: challenge.to_string(),
            expires_at: Some(timestamp(expires_at_ms)),
            resend_available_at: Some(timestamp(resend_at_ms)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn resend_challenge(
        &self,
        request: Request<pb::ResendChallengeRequest>,
    ) -> Result<Response<pb::ResendChallengeResponse>, Status> {
        caller(&request)?.require_scope("verification:send")?;
        let req = request.into_inner();
        let challenge = challenge_id(&req.challenge_id)?;
        match self
            .store
            .resend_wait(challenge)
            .await
            .map_err(store_error)?
        {
            None => return Err(challenge_expired()),
            Some(Some(wait)) => return Err(resend_too_early(wait)),
            Some(None) => {}
        }
        let email = self.store_email(challenge).await?;
        self.spend_budgets(&email, &req.client_ip).await?;
        let code = Code::generate();
        match self
            .store
            .resend(challenge, &code)
            .await
            .map_err(store_error)?
        {
            Resend::Missing => Err(challenge_expired()),
            Resend::Early { wait } => Err(resend_too_early(wait)),
            Resend::Ok {
                email,
                purpose,
                timing,
            } => {
                let letter = letters::code_letter(&email, purpose, &req.locale, code.expose());
                self.outbox.enqueue(&letter).await.map_err(|e| match e {
                    crate::outbox::OutboxError::Redis(e) => errors::unavailable("redis", &e),
                })?;
                tracing::info!(challenge = %examreg_kit::telemetry::fingerprint(&challenge), "code resent");
                metrics::counter!("verification_codes_resent_total").increment(1);
                Ok(Response::new(pb::ResendChallengeResponse {
                    expires_at: Some(timestamp(timing.expires_at_ms)),
                    resend_available_at: Some(timestamp(timing.resend_at_ms)),
                }))
            }
        }
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_challenge(
        &self,
        request: Request<pb::ConfirmChallengeRequest>,
    ) -> Result<Response<pb::ConfirmChallengeResponse>, Status> {
        caller(&request)?.require_scope("verification:confirm")?;
        let req = request.into_inner();
        let challenge = challenge_id(&req.challenge_id)?;
        let code = Code::parse(&req.code).ok_or_else(|| {
            invalid(
                "invalid_code_format",
                "the code is six digits",
                &[("code", "invalid_format")],
            )
        })?;
        match self
            .store
            .confirm(challenge, &code)
            .await
            .map_err(store_error)?
        {
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
                tracing::info!(challenge = %examreg_kit::telemetry::fingerprint(&challenge), "code confirmed");
                metrics::counter!("verification_codes_confirmed_total").increment(1);
                Ok(Response::new(pb::ConfirmChallengeResponse {
                    proof: self.proof_key.sign(&claims),
                    email,
                    proof_expires_at: Some(timestamp(exp * 1000)),
                }))
            }
            Confirm::Wrong { attempts_left } => Err(invalid(
                "invalid_code",
                format!("wrong code; {attempts_left} attempts left"),
                &[("code", "invalid_code")],
            )),
            Confirm::Burnt => Err(errors::status(
                GrpcCode::FailedPrecondition,
                "challenge_burnt",
                "too many wrong codes; request a new code",
            )),
            Confirm::Missing => Err(challenge_expired()),
        }
    }
}

fn resend_too_early(wait: Duration) -> Status {
    rate_limited(
        "resend_too_early",
        "a new code can be sent a little later",
        wait,
    )
}

impl Verification {
    async fn store_email(&self, challenge: Uuid) -> Result<String, Status> {
        self.store
            .email_of(challenge)
            .await
            .map_err(store_error)?
            .ok_or_else(challenge_expired)
    }
}
