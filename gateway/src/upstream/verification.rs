//! Verification as the gateway calls it: the email codes.

use super::{As, Calls};
use crate::error::ApiResult;
use chrono::{DateTime, Utc};
use examreg_domain::Email;
use examreg_proto::{
    convert,
    verification::v1::{
        self as ver, Purpose, verification_service_client::VerificationServiceClient,
    },
};
use tonic::transport::Channel;

#[derive(Clone)]
pub struct Verification {
    client: VerificationServiceClient<Channel>,
    channel: Channel,
    calls: Calls,
}

/// A code on its way: the challenge that checks it, and when another may be sent.
pub struct Challenge {
    pub id: String,
    pub resend_at: Option<DateTime<Utc>>,
}

impl Verification {
    pub(crate) fn new(channel: Channel, calls: Calls) -> Self {
        Self {
            client: VerificationServiceClient::new(channel.clone()),
            channel,
            calls,
        }
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Sends a code to `email` in the language `locale`.
    pub async fn start(
        &self,
        email: &Email,
        purpose: Purpose,
        locale: &str,
        ip: &str,
    ) -> ApiResult<Challenge> {
        self.start_challenge(ver::StartChallengeRequest {
            email: email.as_str().to_owned(),
            purpose: purpose.into(),
            locale: locale.to_owned(),
            client_ip: ip.to_owned(),
            ..Default::default()
        })
        .await
    }

    /// Starts a recovery challenge whose budget is `subject`'s (what the applicant typed): a
    /// code to `to`, or, with no account behind the subject (`None`), a decoy that verification
    /// times, caps and budgets the same and never mails.
    pub async fn start_recovery(
        &self,
        to: Option<&Email>,
        subject: &str,
        locale: &str,
        ip: &str,
    ) -> ApiResult<Challenge> {
        self.start_challenge(ver::StartChallengeRequest {
            email: to.map(|e| e.as_str().to_owned()).unwrap_or_default(),
            purpose: Purpose::Recovery.into(),
            locale: locale.to_owned(),
            client_ip: ip.to_owned(),
            decoy: to.is_none(),
            budget_subject: subject.to_owned(),
        })
        .await
    }

    async fn start_challenge(&self, message: ver::StartChallengeRequest) -> ApiResult<Challenge> {
        let answer = call!(self, As::Gateway, message => start_challenge).await?;
        metrics::counter!("verification_codes_requested_total").increment(1);
        Ok(Challenge {
            id: answer.challenge_id,
            resend_at: convert::datetime(answer.resend_available_at.as_ref()),
        })
    }

    /// Sends the challenge's code again; when another may be sent.
    pub async fn resend(
        &self,
        challenge: &str,
        locale: &str,
        ip: &str,
    ) -> ApiResult<Option<DateTime<Utc>>> {
        let message = ver::ResendChallengeRequest {
            challenge_id: challenge.to_owned(),
            locale: locale.to_owned(),
            client_ip: ip.to_owned(),
        };
        let answer = call!(self, As::Gateway, message => resend_challenge).await?;
        Ok(convert::datetime(answer.resend_available_at.as_ref()))
    }

    /// Checks a code; the email proof it earns.
    pub async fn confirm(&self, challenge: &str, code: &str) -> ApiResult<String> {
        let message = ver::ConfirmChallengeRequest {
            challenge_id: challenge.to_owned(),
            code: code.to_owned(),
        };
        let answer = call!(self, As::Gateway, message => confirm_challenge).await?;
        Ok(answer.proof)
    }

    /// Mails the address `proof` names that an account already holds the IIN, passport number
    /// or email it tried to register with (once per proof).
    pub async fn notify_account_exists(&self, proof: &str, locale: &str) -> ApiResult<()> {
        let message = ver::SendNoticeRequest {
            email_proof: proof.to_owned(),
            notice: ver::Notice::AccountExists.into(),
            locale: locale.to_owned(),
        };
        call!(self, As::Gateway, message => send_notice).await?;
        Ok(())
    }
}
