//! The applicant's profile: what the service does with names, details and education, on raw
//! values checked here into what the store keeps, without gRPC. Birth date and sex are checked
//! against the IIN identity holds (read with the applicant's own token); each write enforces
//! the lock at completion and the tombstone of an erasure in the statement itself.

use crate::{
    directory::{self, Institution},
    error::Error,
    person,
    store::{self, ProfileRow, Refused},
};
use chrono::{NaiveDate, Utc};
use examreg_domain::{Iin, KAZAKHSTAN, Sex};
use examreg_kit::auth::{Change, with_bearer};
use examreg_proto::identity::v1::{self as id, identity_service_client::IdentityServiceClient};
use sqlx::PgPool;
use tonic::transport::Channel;
use uuid::Uuid;

pub struct People {
    pub pool: PgPool,
    pub identity: IdentityServiceClient<Channel>,
}

/// A profile as it stands, with its institution resolved.
pub struct Profile {
    pub row: ProfileRow,
    pub institution: Option<Institution>,
}

/// What locking came to.
pub enum Lock {
    Locked,
    /// Not locked: these steps are still empty.
    Missing(Vec<&'static str>),
}

/// The details as the applicant gave them.
pub struct DetailsInput<'a> {
    pub sex: Option<Sex>,
    pub birth_date: &'a str,
    pub region_code: &'a str,
    pub mobile_phone: &'a str,
}

fn refused(refused: Refused, field: &'static str) -> Error {
    match refused {
        Refused::Locked => Error::Locked { field },
        Refused::Erased => Error::Erased,
    }
}

impl People {
    pub async fn current(&self, account: Uuid) -> Result<Profile, Error> {
        let row = store::get(&self.pool, account)
            .await?
            .unwrap_or(ProfileRow {
                account_id: account,
                ..ProfileRow::default()
            });
        let institution = match &row.institution_id {
            Some(id) => directory::institution(&self.pool, id).await?,
            None => None,
        };
        Ok(Profile { row, institution })
    }

    /// A person's profile read by a service, once the read is on record (who, why).
    pub async fn current_for(
        &self,
        account: Uuid,
        actor: &str,
        purpose: &str,
    ) -> Result<Profile, Error> {
        let profile = self.current(account).await?;
        let mut conn = self.pool.acquire().await?;
        store::log_read(&mut conn, account, actor, purpose).await?;
        Ok(profile)
    }

    /// Puts steps of a person's profile on its list to redo (a reopening by the support
    /// desk); what the profile lacks now.
    pub async fn reopen(
        &self,
        account: Uuid,
        steps: &[String],
        change: &Change,
    ) -> Result<Vec<&'static str>, Error> {
        if !store::reopen(&self.pool, account, steps, change).await? {
            return Err(Error::ProfileNotFound);
        }
        tracing::info!(%account, change = %change.id, by = change.by, ?steps, "profile reopened");
        Ok(self.current(account).await?.row.missing())
    }

    /// The caller's own account from identity, read with the caller's own token.
    async fn account(&self, token: &str) -> Result<id::Account, Error> {
        let request =
            with_bearer(id::GetAccountRequest::default(), token).map_err(Error::Identity)?;
        self.identity
            .clone()
            .get_account(request)
            .await
            .map_err(Error::Identity)?
            .into_inner()
            .account
            .ok_or(Error::Inconsistent("identity answered without an account"))
    }

    pub async fn set_name(
        &self,
        account: Uuid,
        surname: &str,
        given_name: &str,
        patronymic: &str,
    ) -> Result<Profile, Error> {
        let surname = person::name_part(surname, "surname").map_err(Error::Invalid)?;
        let given_name = person::name_part(given_name, "given_name").map_err(Error::Invalid)?;
        let patronymic = if patronymic.trim().is_empty() {
            None
        } else {
            Some(person::name_part(patronymic, "patronymic").map_err(Error::Invalid)?)
        };
        let name = store::Name {
            surname: &surname,
            given_name: &given_name,
            patronymic: patronymic.as_deref(),
        };
        store::set_name(&self.pool, account, &name)
            .await?
            .map_err(|r| refused(r, "surname"))?;
        self.current(account).await
    }

    /// `token` is the applicant's own: identity tells it the citizenship and the IIN.
    pub async fn set_details(
        &self,
        account: Uuid,
        token: &str,
        given: &DetailsInput<'_>,
    ) -> Result<Profile, Error> {
        let sex = given.sex.ok_or(Error::SexRequired)?;
        let birth_date = NaiveDate::parse_from_str(given.birth_date.trim(), "%Y-%m-%d")
            .map_err(|_| Error::InvalidBirthDate)?;
        person::check_age(birth_date, Utc::now().date_naive()).map_err(Error::Invalid)?;
        let region = crate::reference::known_region(&self.pool, given.region_code).await?;
        let holder = self.account(token).await?;
        let citizen = holder.citizenship == KAZAKHSTAN;
        let phone = person::mobile_phone(given.mobile_phone, citizen).map_err(Error::Invalid)?;
        if let Some(id::account::Identifier::Iin(digits)) = &holder.identifier {
            let iin = Iin::parse(digits)
                .map_err(|_| Error::Inconsistent("identity holds an IIN that does not parse"))?;
            person::check_against_iin(&iin, birth_date, sex).map_err(Error::Invalid)?;
        }
        let details = store::Details {
            sex,
            birth_date,
            region_code: &region,
            mobile_phone: &phone,
        };
        store::set_details(&self.pool, account, &details)
            .await?
            .map_err(|r| refused(r, "birth_date"))?;
        self.current(account).await
    }

    /// The category and an active institution of the kind the category studied at.
    pub async fn set_education(
        &self,
        account: Uuid,
        contingent: &str,
        institution: &str,
    ) -> Result<Profile, Error> {
        let contingent = directory::contingent(&self.pool, contingent.trim())
            .await?
            .ok_or(Error::UnknownContingent)?;
        let institution = directory::institution(&self.pool, institution.trim())
            .await?
            .ok_or(Error::UnknownInstitution)?;
        if institution.archived {
            return Err(Error::InstitutionArchived);
        }
        if institution.kind != contingent.institution_kind {
            return Err(Error::InstitutionKindMismatch {
                wanted: contingent.institution_kind,
                given: institution.kind,
            });
        }
        let written = store::set_education(&self.pool, account, &contingent.code, &institution.id)
            .await?
            .map_err(|r| refused(r, "institution_id"))?;
        if !written {
            // Archived between the read and the write.
            return Err(Error::InstitutionArchived);
        }
        self.current(account).await
    }

    /// Locks a complete profile (idempotent).
    pub async fn lock(&self, account: Uuid) -> Result<Lock, Error> {
        if store::lock(&self.pool, account).await?.is_some() {
            return Ok(Lock::Locked);
        }
        Ok(Lock::Missing(self.current(account).await?.row.missing()))
    }

    /// Erases the profile (a tombstone stays); whether there was anything to erase.
    pub async fn delete(&self, account: Uuid, change: &Change) -> Result<bool, Error> {
        let deleted = store::delete(&self.pool, account, change).await?;
        tracing::info!(%account, change = %change.id, by = change.by, deleted, "profile deleted");
        Ok(deleted)
    }
}
