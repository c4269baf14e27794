//! The changes of a registration that the services owning its data carry out: a reopening for
//! the support desk (biometrics lifts the seal of the photos and the consent, profile the lock
//! of the personal data and education, for the steps named), an erasure (biometrics, profile
//! and verification erase what they hold; then identity deletes the account) and the release
//! of a squatted identifier (the same erasure at the others; the account stays, blocked).
//!
//! Identity records a change first — its `changes` row, the audit log's entry and the feed's
//! event in one transaction — and then calls the owners with a short token naming the change
//! ([`Claims::change`]); the owners take no other caller for these calls, and record the
//! change's id beside what they did. Every owner's part is idempotent, so a change left
//! unfinished by an owner that was down is carried out again, by the next call for the account
//! or by [`Identity::finish_unfinished`], which identity runs every few seconds; until it is
//! finished the registration cannot be completed (the steps it reopens would be skipped).

use crate::{error::Error, identity::Identity, store};
use examreg_domain::Step;
use examreg_kit::auth::{Change, Claims, with_bearer};
use examreg_proto::{
    biometrics::v1 as bio,
    convert::{steps_from_wire, steps_named, steps_to_wire, steps_typed},
    profile::v1 as prof,
    verification::v1 as ver,
};
use std::time::Duration;
use uuid::Uuid;

/// The steps a request names (typed, or an older client's text forms), checked and in the
/// onboarding's order; at least one.
pub fn steps_of(typed: &[i32], text: &[String]) -> Result<Vec<Step>, Error> {
    steps_from_wire(typed, text).ok_or(Error::InvalidSteps)
}

/// A call to another service failed: its status, said as identity's.
fn upstream(service: &'static str) -> impl Fn(tonic::Status) -> Error {
    move |status| Error::Upstream { service, status }
}

/// What an erasure removed, by service.
#[derive(Debug, Default)]
pub struct Erased {
    pub account: bool,
    pub captures: u32,
    pub profile: bool,
    pub challenges: u32,
    pub letters: u32,
}

/// How long a change may stay unfinished before the retry task takes it up (a call carrying
/// it out may still be under way).
const RETRY_AFTER: Duration = Duration::from_secs(10);

impl Identity {
    /// The token for the owners' calls of a recorded change.
    fn change_token(&self, change: &store::Pending) -> String {
        self.signing_key.sign(&Claims::change(
            change.account,
            Change {
                id: change.id,
                action: change.action.at_owners(),
                steps: change.steps.clone(),
                by: change.actor.clone(),
            },
            Duration::from_secs(60),
        ))
    }

    /// Reopens `steps` of an account's registration; what the applicant has to do now. The
    /// account's unfinished changes are carried out first; when one of them is a reopening of
    /// these steps (the same call, repeated after a failure), nothing new is recorded.
    pub(crate) async fn reopen(
        &self,
        account: Uuid,
        steps: &[Step],
        acting: &store::Acting<'_>,
    ) -> Result<Vec<String>, Error> {
        let steps: Vec<&str> = steps.iter().map(|s| s.as_str()).collect();
        let mut repeated = None;
        for change in
            store::unfinished_changes(&self.pool, Some(account), Duration::ZERO, 10).await?
        {
            let missing = self.carry_out(&change).await?;
            let same = change.action == store::Action::Reopen
                && steps.iter().all(|s| change.steps.iter().any(|c| c == s));
            if same {
                repeated = Some(missing);
            }
        }
        let mut missing = match repeated {
            Some(missing) => missing,
            None => {
                let change =
                    match store::record_reopening(&self.pool, account, acting, &steps).await? {
                        store::Reopened::NotFound => return Err(Error::AccountNotFound),
                        store::Reopened::Blocked => return Err(Error::AccountBlocked),
                        store::Reopened::Recorded(change) => change,
                    };
                tracing::info!(%account, actor = acting.actor, ?steps, "registration reopened");
                metrics::counter!("identity_registrations_reopened_total").increment(1);
                self.carry_out(&change).await?
            }
        };
        missing.push("complete".to_owned());
        Ok(missing)
    }

    /// Erases an account and what every service holds of the person; what was removed. An
    /// erasure left unfinished is carried on; a repeat after it finished finds nothing.
    pub(crate) async fn erase(
        &self,
        account: Uuid,
        acting: &store::Acting<'_>,
    ) -> Result<Erased, Error> {
        let unfinished = store::unfinished_changes(&self.pool, Some(account), Duration::ZERO, 10)
            .await?
            .into_iter()
            .find(|c| c.action == store::Action::Erase);
        let change = match unfinished {
            Some(change) => change,
            None => {
                let recorded =
                    store::record_erasure(&self.pool, account, acting, self.revocation_kept())
                        .await?;
                let Some(change) = recorded else {
                    return Ok(Erased::default());
                };
                tracing::info!(%account, actor = acting.actor, "erasure recorded");
                change
            }
        };
        let erased = self.erase_at_owners(&change).await?;
        metrics::counter!("identity_accounts_erased_total").increment(1);
        tracing::info!(%account, ?erased, "account erased");
        Ok(erased)
    }

    /// Carries out the changes left unfinished (an owner was down) for a while; how many it
    /// finished. Run every few seconds by every replica: an owner's part is idempotent.
    pub async fn finish_unfinished(&self) -> Result<usize, Error> {
        let mut finished = 0;
        for change in store::unfinished_changes(&self.pool, None, RETRY_AFTER, 100).await? {
            match self.carry_out(&change).await {
                Ok(_) => finished += 1,
                Err(e) => {
                    tracing::warn!(account = %change.account, change = %change.id, error = %e,
                        "a recorded change is still not carried out; will retry");
                }
            }
        }
        Ok(finished)
    }

    /// Has the owners carry out a recorded change and marks it finished; what a reopened
    /// registration lacks now at the owners (nothing for an erasure).
    pub(crate) async fn carry_out(&self, change: &store::Pending) -> Result<Vec<String>, Error> {
        let missing = match change.action {
            store::Action::Reopen => {
                let missing = self.reopen_at_owners(change).await?;
                store::finish_change(&self.pool, change.id).await?;
                missing
            }
            store::Action::Erase | store::Action::Release => {
                self.erase_at_owners(change).await?;
                Vec::new()
            }
        };
        tracing::info!(account = %change.account, change = %change.id,
            action = change.action.as_str(), "recorded change carried out");
        Ok(missing)
    }

    /// Biometrics and profile lift their seal or lock for the steps they own; what the
    /// registration lacks now at them.
    async fn reopen_at_owners(&self, change: &store::Pending) -> Result<Vec<String>, Error> {
        let steps = Step::list(&change.steps).unwrap_or_default();
        let named = |biometric: bool| {
            steps_to_wire(
                steps
                    .iter()
                    .copied()
                    .filter(|s| s.is_biometric() == biometric),
            )
        };
        let (photos, personal) = (named(true), named(false));
        let token = self.change_token(change);
        let account_id = change.account.to_string();
        let mut missing = Vec::new();
        if !photos.is_empty() {
            // Both forms: a biometrics replica built before the typed field reads the text.
            let request = bio::ReopenCapturesRequest {
                account_id: account_id.clone(),
                onboarding_steps: steps_typed(&photos),
                steps: photos,
            };
            let answer = self
                .biometrics
                .clone()
                .reopen_captures(with_bearer(request, &token).map_err(upstream("biometrics"))?)
                .await
                .map_err(upstream("biometrics"))?
                .into_inner();
            missing.extend(steps_named(&answer.missing_steps, &answer.missing));
        }
        if !personal.is_empty() {
            let request = prof::ReopenProfileRequest {
                account_id,
                onboarding_steps: steps_typed(&personal),
                steps: personal,
            };
            let answer = self
                .profile
                .clone()
                .reopen_profile(with_bearer(request, &token).map_err(upstream("profile"))?)
                .await
                .map_err(upstream("profile"))?
                .into_inner();
            missing.extend(steps_named(&answer.missing_steps, &answer.missing));
        }
        Ok(missing)
    }

    /// Biometrics, profile and verification erase what they hold of the person; then the
    /// account goes (for a release it stays), with the change marked finished.
    async fn erase_at_owners(&self, change: &store::Pending) -> Result<Erased, Error> {
        let token = self.change_token(change);
        let account_id = change.account.to_string();
        let record = self.own_record(change.account).await;
        let request = bio::DeleteBiometricDataRequest {
            account_id: account_id.clone(),
        };
        let captures = self
            .biometrics
            .clone()
            .delete_biometric_data(with_bearer(request, &token).map_err(upstream("biometrics"))?)
            .await
            .map_err(upstream("biometrics"))?
            .into_inner()
            .captures_deleted;
        let request = prof::DeleteProfileRequest {
            account_id: account_id.clone(),
        };
        let profile = self
            .profile
            .clone()
            .delete_profile(with_bearer(request, &token).map_err(upstream("profile"))?)
            .await
            .map_err(upstream("profile"))?
            .into_inner()
            .deleted;
        let mut erased = Erased {
            account: true,
            captures,
            profile,
            ..Erased::default()
        };
        match record {
            Ok(record) => {
                let request = ver::EraseEmailRequest {
                    email: record.email,
                    account_id,
                    login: record.login,
                };
                let answer = self
                    .verification
                    .clone()
                    .erase_email(with_bearer(request, &token).map_err(upstream("verification"))?)
                    .await
                    .map_err(upstream("verification"))?
                    .into_inner();
                erased.challenges = answer.challenges_deleted;
                erased.letters = answer.letters_deleted;
            }
            Err(Error::AccountNotFound) => erased.account = false,
            Err(e) => return Err(e),
        }
        if change.action == store::Action::Release {
            store::finish_change(&self.pool, change.id).await?;
        } else {
            store::finish_erasure(&self.pool, change, crate::throttle::login_key).await?;
        }
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_checked_and_put_in_the_onboardings_order() {
        let named =
            |steps: &[&str]| -> Vec<String> { steps.iter().map(|s| s.to_string()).collect() };
        assert_eq!(
            steps_of(&[], &named(&["education", " face ", "consent"])).unwrap(),
            [Step::Face, Step::Consent, Step::Education]
        );
        assert!(matches!(steps_of(&[], &[]), Err(Error::InvalidSteps)));
        assert!(matches!(
            steps_of(&[], &named(&["face", "password"])),
            Err(Error::InvalidSteps)
        ));
    }
}
