//! gRPC handlers, thin: who calls, the request into the service layer's inputs ([`People`] for
//! the applicant's profile, [`Reference`] for the directories), the answer back. Every failure
//! becomes a status in `error.rs`.

use crate::{
    directory::{Institution, Names},
    people::{DetailsInput, Lock, People, Profile},
    reference::{Draft, Reference, SearchInput},
};
use crate::{error::Error, store};
use examreg_domain::Sex;
use examreg_kit::{
    auth::{Caller, ChangeAction, account_id_field, bearer_of, caller},
    record::{after_id, cut, note, page_size},
};
use examreg_proto::{
    convert::{
        FromWire, datetime, steps_from_wire, steps_named, steps_to_wire, steps_typed, timestamp,
    },
    profile::v1::{self as pb, profile_service_server::ProfileService},
};
use tonic::{Request, Response, Status};

pub struct Profiles {
    pub people: People,
    pub reference: Reference,
    /// The least count a statistic shows for a group (`PROFILE_STATS_MIN_COUNT`).
    pub stats_min_count: i64,
}

/// Groups of fewer than `min` registrations merged under the key "" (in front), or withheld
/// when even together they are fewer: whether any were.
fn suppress(counts: Vec<(String, i64)>, min: i64) -> (Vec<(String, i64)>, bool) {
    let (mut shown, small): (Vec<_>, Vec<_>) = counts.into_iter().partition(|(_, n)| *n >= min);
    if small.is_empty() {
        return (shown, false);
    }
    let rest: i64 = small.iter().map(|(_, n)| n).sum();
    if rest >= min {
        shown.insert(0, (String::new(), rest));
    }
    (shown, true)
}

fn names_pb(n: &Names) -> pb::LocalizedName {
    pb::LocalizedName {
        kk: n.kk.clone(),
        ru: n.ru.clone(),
        en: n.en.clone(),
    }
}

fn institution_pb(i: &Institution) -> pb::Institution {
    pb::Institution {
        id: i.id.clone(),
        region_code: i.region_code.clone(),
        kind: i.kind.clone(),
        name: Some(names_pb(&i.names)),
        archived: i.archived,
    }
}

fn profile_pb(p: Profile) -> pb::Profile {
    let row = p.row;
    pb::Profile {
        account_id: row.account_id.to_string(),
        missing_steps: steps_typed(&row.missing()),
        missing: row.missing().into_iter().map(str::to_owned).collect(),
        surname: row.surname.unwrap_or_default(),
        given_name: row.given_name.unwrap_or_default(),
        patronymic: row.patronymic.unwrap_or_default(),
        sex: row.sex.map_or(pb::Sex::Unspecified, pb::Sex::from).into(),
        birth_date: row
            .birth_date
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        region_code: row.region_code.unwrap_or_default(),
        mobile_phone: row.mobile_phone.unwrap_or_default(),
        contingent_code: row.contingent_code.unwrap_or_default(),
        institution: p.institution.as_ref().map(institution_pb),
        locked_at: row.locked_at.map(timestamp),
        redo_steps: steps_typed(&row.redo),
        redo: row.redo,
    }
}

/// Why a service reads personal data, for the access log: not blank, at most 500 characters.
fn purpose_field(value: &str) -> Result<&str, Error> {
    note(value).map_err(|_| Error::PurposeRequired)
}

/// The steps a reopening names, checked: at least one, each profile's (name, details, education); in the
/// onboarding's order.
fn steps_field(typed: &[i32], text: &[String]) -> Result<Vec<String>, Error> {
    match steps_from_wire(typed, text) {
        Some(steps) if steps.iter().all(|s| !s.is_biometric()) => Ok(steps_to_wire(steps)),
        Some(_) | None => Err(Error::InvalidStep),
    }
}

fn names_of(name: Option<&pb::LocalizedName>) -> [&str; 3] {
    name.map_or(["", "", ""], |n| [&n.kk, &n.ru, &n.en])
}

fn draft_of(given: &pb::Institution) -> Draft<'_> {
    Draft {
        id: &given.id,
        region_code: &given.region_code,
        kind: &given.kind,
        names: names_of(given.name.as_ref()),
    }
}

#[tonic::async_trait]
impl ProfileService for Profiles {
    #[tracing::instrument(skip_all)]
    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Result<Response<pb::GetProfileResponse>, Status> {
        let who = caller(&request)?;
        let req = request.get_ref();
        let profile = match who {
            Caller::Service { .. } | Caller::Change { .. } => {
                let actor = who.require_scope("profile:read")?;
                let purpose = purpose_field(&req.purpose)?;
                let account = account_id_field(&req.account_id)?;
                self.people.current_for(account, actor, purpose).await?
            }
            Caller::User { .. } | Caller::Capture { .. } => {
                let account = who.account_for_capture("profile:read", &req.account_id)?;
                self.people.current(account).await?
            }
        };
        Ok(Response::new(pb::GetProfileResponse {
            profile: Some(profile_pb(profile)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_name(
        &self,
        request: Request<pb::UpdateNameRequest>,
    ) -> Result<Response<pb::UpdateNameResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let req = request.into_inner();
        let profile = self
            .people
            .set_name(account, &req.surname, &req.given_name, &req.patronymic)
            .await?;
        Ok(Response::new(pb::UpdateNameResponse {
            profile: Some(profile_pb(profile)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_details(
        &self,
        request: Request<pb::UpdateDetailsRequest>,
    ) -> Result<Response<pb::UpdateDetailsResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let token = bearer_of(&request)
            .ok_or_else(|| Status::unauthenticated("no token"))?
            .to_owned();
        let req = request.into_inner();
        let given = DetailsInput {
            sex: Sex::from_wire(req.sex),
            birth_date: &req.birth_date,
            region_code: &req.region_code,
            mobile_phone: &req.mobile_phone,
        };
        let profile = self.people.set_details(account, &token, &given).await?;
        Ok(Response::new(pb::UpdateDetailsResponse {
            profile: Some(profile_pb(profile)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_education(
        &self,
        request: Request<pb::UpdateEducationRequest>,
    ) -> Result<Response<pb::UpdateEducationResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let req = request.into_inner();
        let profile = self
            .people
            .set_education(account, &req.contingent_code, &req.institution_id)
            .await?;
        Ok(Response::new(pb::UpdateEducationResponse {
            profile: Some(profile_pb(profile)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn lock_profile(
        &self,
        request: Request<pb::LockProfileRequest>,
    ) -> Result<Response<pb::LockProfileResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        Ok(Response::new(match self.people.lock(account).await? {
            Lock::Locked => pb::LockProfileResponse {
                locked: true,
                missing: Vec::new(),
                missing_steps: Vec::new(),
            },
            Lock::Missing(missing) => pb::LockProfileResponse {
                locked: false,
                missing_steps: steps_typed(&missing),
                missing: missing.into_iter().map(str::to_owned).collect(),
            },
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_profile(
        &self,
        request: Request<pb::DeleteProfileRequest>,
    ) -> Result<Response<pb::DeleteProfileResponse>, Status> {
        let who = caller(&request)?;
        let (account, change) =
            who.require_change(ChangeAction::Erase, &request.get_ref().account_id, &[])?;
        let deleted = self.people.delete(account, change).await?;
        Ok(Response::new(pb::DeleteProfileResponse { deleted }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_regions(
        &self,
        request: Request<pb::ListRegionsRequest>,
    ) -> Result<Response<pb::ListRegionsResponse>, Status> {
        caller(&request)?;
        let regions = self.reference.regions().await?;
        Ok(Response::new(pb::ListRegionsResponse {
            regions: regions
                .iter()
                .map(|r| pb::Region {
                    code: r.code.clone(),
                    name: Some(names_pb(&r.names)),
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_contingents(
        &self,
        request: Request<pb::ListContingentsRequest>,
    ) -> Result<Response<pb::ListContingentsResponse>, Status> {
        caller(&request)?;
        let include_empty = request.get_ref().include_empty;
        let contingents = self.reference.contingents(include_empty).await?;
        Ok(Response::new(pb::ListContingentsResponse {
            contingents: contingents
                .iter()
                .map(|c| pb::Contingent {
                    code: c.code.clone(),
                    name: Some(names_pb(&c.names)),
                    institution_kind: c.institution_kind.clone(),
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn search_institutions(
        &self,
        request: Request<pb::SearchInstitutionsRequest>,
    ) -> Result<Response<pb::SearchInstitutionsResponse>, Status> {
        caller(&request)?;
        let req = request.into_inner();
        let (found, next) = self
            .reference
            .search(&SearchInput {
                query: &req.query,
                region_code: &req.region_code,
                kind: &req.kind,
                language: &req.language,
                include_archived: req.include_archived,
                prefer_region_code: &req.prefer_region_code,
                page_size: req.page_size,
                page_token: &req.page_token,
            })
            .await?;
        Ok(Response::new(pb::SearchInstitutionsResponse {
            institutions: found.iter().map(institution_pb).collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn add_institution(
        &self,
        request: Request<pb::AddInstitutionRequest>,
    ) -> Result<Response<pb::AddInstitutionResponse>, Status> {
        let actor = caller(&request)?
            .require_scope("directory:admin")?
            .to_owned();
        let given = request.into_inner().institution.unwrap_or_default();
        let institution = self.reference.add(&draft_of(&given), &actor).await?;
        Ok(Response::new(pb::AddInstitutionResponse {
            institution: Some(institution_pb(&institution)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn rename_institution(
        &self,
        request: Request<pb::RenameInstitutionRequest>,
    ) -> Result<Response<pb::RenameInstitutionResponse>, Status> {
        let actor = caller(&request)?
            .require_scope("directory:admin")?
            .to_owned();
        let req = request.into_inner();
        let institution = self
            .reference
            .rename(&req.id, names_of(req.name.as_ref()), &actor)
            .await?;
        Ok(Response::new(pb::RenameInstitutionResponse {
            institution: Some(institution_pb(&institution)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn archive_institution(
        &self,
        request: Request<pb::ArchiveInstitutionRequest>,
    ) -> Result<Response<pb::ArchiveInstitutionResponse>, Status> {
        let actor = caller(&request)?
            .require_scope("directory:admin")?
            .to_owned();
        let id = request.into_inner().id;
        let institution = self.reference.archive(&id, &actor).await?;
        Ok(Response::new(pb::ArchiveInstitutionResponse {
            institution: Some(institution_pb(&institution)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn import_institutions(
        &self,
        request: Request<pb::ImportInstitutionsRequest>,
    ) -> Result<Response<pb::ImportInstitutionsResponse>, Status> {
        let actor = caller(&request)?
            .require_scope("directory:admin")?
            .to_owned();
        let csv = request.into_inner().csv;
        let (added, updated) = self.reference.import(&csv, &actor).await?;
        Ok(Response::new(pb::ImportInstitutionsResponse {
            added,
            updated,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reopen_profile(
        &self,
        request: Request<pb::ReopenProfileRequest>,
    ) -> Result<Response<pb::ReopenProfileResponse>, Status> {
        let req = request.get_ref();
        let who = caller(&request)?;
        let named = steps_named(&req.onboarding_steps, &req.steps);
        let (account, change) =
            who.require_change(ChangeAction::Reopen, &req.account_id, &named)?;
        let steps = steps_field(&req.onboarding_steps, &req.steps)?;
        let missing = self.people.reopen(account, &steps, change).await?;
        Ok(Response::new(pb::ReopenProfileResponse {
            missing_steps: steps_typed(&missing),
            missing: missing.into_iter().map(str::to_owned).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_access_log(
        &self,
        request: Request<pb::ListAccessLogRequest>,
    ) -> Result<Response<pb::ListAccessLogResponse>, Status> {
        let reader = caller(&request)?.require_scope("audit:read")?;
        let req = request.get_ref();
        let account = account_id_field(&req.account_id)?;
        let after = after_id(&req.page_token).ok_or(Error::InvalidPageToken)?;
        let limit = page_size(req.page_size);
        // The read of the log is itself recorded, in its transaction.
        let mut tx = self.people.pool.begin().await.map_err(Error::from)?;
        let rows = store::access_entries(&mut tx, account, after, limit + 1)
            .await
            .map_err(Error::from)?;
        store::log_read(&mut tx, account, reader, "the access log (ListAccessLog)")
            .await
            .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        let (entries, next) = cut(rows, limit, |e| e.id);
        Ok(Response::new(pb::ListAccessLogResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::AccessLogEntry {
                    at: Some(timestamp(e.read_at)),
                    actor: e.actor,
                    what: "profile".into(),
                    purpose: e.purpose,
                })
                .collect(),
            next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn count_registrations(
        &self,
        request: Request<pb::CountRegistrationsRequest>,
    ) -> Result<Response<pb::CountRegistrationsResponse>, Status> {
        caller(&request)?.require_scope("stats:read")?;
        let req = request.get_ref();
        let grouping = match pb::RegistrationGrouping::try_from(req.group_by) {
            Ok(pb::RegistrationGrouping::Day) => store::Grouping::Day,
            Ok(pb::RegistrationGrouping::Region) => store::Grouping::Region,
            Ok(pb::RegistrationGrouping::Category) => store::Grouping::Category,
            Ok(pb::RegistrationGrouping::Institution) => store::Grouping::Institution,
            Ok(pb::RegistrationGrouping::Unspecified) | Err(_) => {
                return Err(Error::InvalidGrouping.into());
            }
        };
        let time_zone = match req.time_zone.trim() {
            "" => "Asia/Almaty",
            name => name,
        };
        let pool = &self.people.pool;
        if !store::time_zone_known(pool, time_zone)
            .await
            .map_err(Error::from)?
        {
            return Err(Error::InvalidTimeZone.into());
        }
        let counted = store::count_registrations(
            pool,
            grouping,
            datetime(req.completed_from.as_ref()),
            datetime(req.completed_before.as_ref()),
            time_zone,
        )
        .await
        .map_err(Error::from)?;
        let (shown, suppressed) = suppress(counted.counts, self.stats_min_count);
        Ok(Response::new(pb::CountRegistrationsResponse {
            total: shown.iter().map(|(_, n)| n).sum(),
            counts: shown
                .into_iter()
                .map(|(key, count)| pb::RegistrationCount { key, count })
                .collect(),
            counted_from: counted.from.map(timestamp),
            counted_before: Some(timestamp(counted.before)),
            suppressed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::suppress;

    #[test]
    fn small_groups_are_merged_or_withheld_never_shown() {
        let counts = |list: &[(&str, i64)]| -> Vec<(String, i64)> {
            list.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
        };
        assert_eq!(
            suppress(counts(&[("a", 9), ("b", 5)]), 5),
            (counts(&[("a", 9), ("b", 5)]), false)
        );
        // Three small ones make five together: shown merged, none by name.
        assert_eq!(
            suppress(counts(&[("a", 9), ("b", 1), ("c", 2), ("d", 2)]), 5),
            (counts(&[("", 5), ("a", 9)]), true)
        );
        // One person alone: withheld, and the total will not count them either.
        assert_eq!(suppress(counts(&[("kaznu", 1)]), 5), (counts(&[]), true));
    }
}
