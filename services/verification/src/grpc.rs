//! gRPC handlers, thin: who calls (the scope), the request into domain values, the call into
//! [`Challenges`], the answer back. Every failure becomes a status in `error.rs`.

use crate::{
    challenges::Challenges,
    error::Error,
    letters::Notice,
    store::{Code, Purpose},
};
use examreg_domain::Email;
use examreg_kit::auth::{ChangeAction, caller};
use examreg_proto::{
    convert::timestamp_ms,
    verification::v1::{self as pb, verification_service_server::VerificationService},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub struct Verification {
    pub challenges: Challenges,
}

fn email_of(text: &str) -> Result<Email, Error> {
    Email::parse(text).map_err(Error::InvalidEmail)
}

fn purpose_of(value: i32) -> Result<Purpose, Error> {
    match pb::Purpose::try_from(value) {
        Ok(pb::Purpose::Registration) => Ok(Purpose::Registration),
        Ok(pb::Purpose::Recovery) => Ok(Purpose::Recovery),
        Ok(pb::Purpose::Unspecified) | Err(_) => Err(Error::InvalidPurpose),
    }
}

/// An id that does not parse cannot name a live challenge: answered as an expired one.
fn challenge_of(text: &str) -> Result<Uuid, Error> {
    text.parse().map_err(|_| Error::ChallengeExpired)
}

#[tonic::async_trait]
impl VerificationService for Verification {
    #[tracing::instrument(skip_all)]
    async fn erase_email(
        &self,
        request: Request<pb::EraseEmailRequest>,
    ) -> Result<Response<pb::EraseEmailResponse>, Status> {
        let who = caller(&request)?;
        let req = request.get_ref();
        let (account, change) = who.require_change(ChangeAction::Erase, &req.account_id, &[])?;
        let email = email_of(&req.email)?;
        let login = Some(req.login.trim()).filter(|l| !l.is_empty());
        let erased = self.challenges.erase(&email, login).await?;
        tracing::info!(%account, change = %change.id, by = change.by,
            challenges_deleted = erased.challenges, letters_deleted = erased.letters,
            "email erased");
        Ok(Response::new(pb::EraseEmailResponse {
            challenges_deleted: erased.challenges,
            letters_deleted: erased.letters,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn start_challenge(
        &self,
        request: Request<pb::StartChallengeRequest>,
    ) -> Result<Response<pb::StartChallengeResponse>, Status> {
        caller(&request)?.require_scope("verification:send")?;
        let req = request.into_inner();
        let purpose = purpose_of(req.purpose)?;
        // The budget is the given subject's, else the email's; a decoy needs no address when
        // it has a subject, a real challenge always does.
        let subject = req.budget_subject.trim();
        let email = if req.decoy && !subject.is_empty() {
            None
        } else {
            Some(email_of(&req.email)?)
        };
        let subject = match &email {
            Some(email) if subject.is_empty() => email.as_str(),
            _ => subject,
        };
        let to = email.as_ref().filter(|_| !req.decoy);
        let started = self
            .challenges
            .start(to, subject, purpose, &req.locale, &req.client_ip)
            .await?;
        Ok(Response::new(pb::StartChallengeResponse {
            challenge_id: started.challenge.to_string(),
            expires_at: Some(timestamp_ms(started.timing.expires_at_ms)),
            resend_available_at: Some(timestamp_ms(started.timing.resend_at_ms)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn resend_challenge(
        &self,
        request: Request<pb::ResendChallengeRequest>,
    ) -> Result<Response<pb::ResendChallengeResponse>, Status> {
        caller(&request)?.require_scope("verification:send")?;
        let req = request.into_inner();
        let challenge = challenge_of(&req.challenge_id)?;
        let timing = self
            .challenges
            .resend(challenge, &req.locale, &req.client_ip)
            .await?;
        Ok(Response::new(pb::ResendChallengeResponse {
            expires_at: Some(timestamp_ms(timing.expires_at_ms)),
            resend_available_at: Some(timestamp_ms(timing.resend_at_ms)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn send_notice(
        &self,
        request: Request<pb::SendNoticeRequest>,
    ) -> Result<Response<pb::SendNoticeResponse>, Status> {
        caller(&request)?.require_scope("verification:send")?;
        let req = request.into_inner();
        let notice = match pb::Notice::try_from(req.notice) {
            Ok(pb::Notice::AccountExists) => Notice::AccountExists,
            Ok(pb::Notice::Unspecified) | Err(_) => return Err(Error::InvalidNotice.into()),
        };
        let sent = self
            .challenges
            .notify(&req.email_proof, notice, &req.locale)
            .await?;
        Ok(Response::new(pb::SendNoticeResponse { sent }))
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_challenge(
        &self,
        request: Request<pb::ConfirmChallengeRequest>,
    ) -> Result<Response<pb::ConfirmChallengeResponse>, Status> {
        caller(&request)?.require_scope("verification:confirm")?;
        let req = request.into_inner();
        let challenge = challenge_of(&req.challenge_id)?;
        let code = Code::parse(&req.code).ok_or(Error::InvalidCodeFormat)?;
        let proven = self.challenges.confirm(challenge, &code).await?;
        Ok(Response::new(pb::ConfirmChallengeResponse {
            proof: proven.proof,
            email: proven.email,
            proof_expires_at: Some(timestamp_ms(proven.expires_at * 1000)),
        }))
    }
}
