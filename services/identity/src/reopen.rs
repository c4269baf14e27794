//! Reopening a registration for the support desk: the steps to redo go to the services that
//! own them — biometrics for the photos and the consent, profile for the personal data and
//! education — which lift their seal or lock for those steps only; then identity makes the
//! account active again, in one transaction with the audit log's entry and the feed's event.
//! Identity calls the two with a short service token it signs for itself. The owners go
//! first and every part is idempotent, so a call that fails half-way leaves the registration
//! complete (the applicant is not shown steps that cannot be done yet) and is repaired by
//! calling again.

use crate::{error::Error, grpc::Identity, store};
use examreg_kit::auth::{Claims, with_bearer};
use examreg_proto::{biometrics::v1 as bio, profile::v1 as prof};
use std::time::Duration;
use uuid::Uuid;

/// The onboarding's steps a reopening may name, in the applicant's order, and their owners.
const PHOTO_STEPS: [&str; 4] = ["face", "document_front", "document_back", "consent"];
const PROFILE_STEPS: [&str; 3] = ["name", "details", "education"];

/// The steps named, checked and in the onboarding's order; at least one.
pub fn steps_of(named: &[String]) -> Result<Vec<&'static str>, Error> {
    let named: Vec<&str> = named.iter().map(|s| s.trim()).collect();
    let known = PHOTO_STEPS.iter().chain(&PROFILE_STEPS);
    if named.is_empty() || !named.iter().all(|s| known.clone().any(|k| k == s)) {
        return Err(Error::InvalidSteps);
    }
    Ok(PHOTO_STEPS
        .iter()
        .chain(&PROFILE_STEPS)
        .copied()
        .filter(|step| named.contains(step))
        .collect())
}

/// A call to another service failed: its status, said as identity's.
fn upstream(service: &'static str) -> impl Fn(tonic::Status) -> Error {
    move |status| Error::Upstream { service, status }
}

impl Identity {
    /// A service token identity signs for its own call to biometrics or profile.
    fn own_token(&self) -> String {
        self.signing_key.sign(&Claims::service(
            "identity",
            &["support:write".to_owned()],
            Duration::from_secs(60),
        ))
    }

    /// Reopens `steps` of an account's registration; what the applicant has to do now.
    pub(crate) async fn reopen(
        &self,
        account: Uuid,
        steps: &[&'static str],
        acting: &store::Acting<'_>,
    ) -> Result<Vec<String>, Error> {
        let record = self.own_record(account).await?;
        if record.status == examreg_domain::AccountStatus::Blocked {
            return Err(Error::AccountBlocked);
        }
        let named = |owned: &[&str]| -> Vec<String> {
            steps
                .iter()
                .filter(|s| owned.contains(s))
                .map(|s| (*s).to_owned())
                .collect()
        };
        let (photos, personal) = (named(&PHOTO_STEPS), named(&PROFILE_STEPS));
        let token = self.own_token();
        let mut missing = Vec::new();
        if !photos.is_empty() {
            let request = bio::ReopenCapturesRequest {
                account_id: account.to_string(),
                steps: photos,
            };
            let answer = self
                .biometrics
                .clone()
                .reopen_captures(with_bearer(request, &token).map_err(upstream("biometrics"))?)
                .await
                .map_err(upstream("biometrics"))?;
            missing.extend(answer.into_inner().missing);
        }
        if !personal.is_empty() {
            let request = prof::ReopenProfileRequest {
                account_id: account.to_string(),
                steps: personal,
            };
            let answer = self
                .profile
                .clone()
                .reopen_profile(with_bearer(request, &token).map_err(upstream("profile"))?)
                .await
                .map_err(upstream("profile"))?;
            missing.extend(answer.into_inner().missing);
        }
        match store::reopen_registration(&self.pool, account, acting, &steps.join(",")).await? {
            None => return Err(Error::AccountNotFound),
            Some(false) => return Err(Error::AccountBlocked),
            Some(true) => {}
        }
        missing.push("complete".to_owned());
        tracing::info!(%account, actor = acting.actor, ?steps, "registration reopened");
        metrics::counter!("identity_registrations_reopened_total").increment(1);
        Ok(missing)
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
            steps_of(&named(&["education", " face ", "consent"])).unwrap(),
            ["face", "consent", "education"]
        );
        assert!(matches!(steps_of(&[]), Err(Error::InvalidSteps)));
        assert!(matches!(
            steps_of(&named(&["face", "password"])),
            Err(Error::InvalidSteps)
        ));
    }
}
