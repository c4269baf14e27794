//! gRPC handlers of the profile service.

use crate::{
    directory::{self, Institution, Names},
    person::{self, Invalid},
    store::{self, ProfileRow},
};
use chrono::{NaiveDate, Utc};
use examreg_domain::{Iin, KAZAKHSTAN, Sex};
use examreg_kit::{
    auth::{account_id_field, bearer_of, caller, with_bearer},
    errors::{self, db, invalid},
};
use examreg_proto::{
    identity::v1::{self as id, identity_service_client::IdentityServiceClient},
    profile::v1::{self as pb, profile_service_server::ProfileService},
};
use sqlx::PgPool;
use tonic::{Code, Request, Response, Status, transport::Channel};
use uuid::Uuid;

pub struct Profiles {
    pub pool: PgPool,
    pub identity: IdentityServiceClient<Channel>,
}

fn refused(e: Invalid) -> Status {
    invalid(e.code, e.code.replace('_', " "), &[(e.field, e.reason)])
}

fn locked(field: &str) -> Status {
    invalid(
        "profile_locked",
        "the registration is complete: name, birth date and sex no longer change",
        &[(field, "locked")],
    )
}

fn refused_write(refused: store::Refused, field: &str) -> Status {
    match refused {
        store::Refused::Locked => locked(field),
        store::Refused::Erased => errors::status(
            tonic::Code::NotFound,
            "account_not_found",
            "the person's data was erased",
        ),
    }
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

fn sex_of(value: i32) -> Option<Sex> {
    match pb::Sex::try_from(value) {
        Ok(pb::Sex::Male) => Some(Sex::Male),
        Ok(pb::Sex::Female) => Some(Sex::Female),
        Ok(pb::Sex::Unspecified) | Err(_) => None,
    }
}

const KINDS: [&str; 3] = ["university", "college", "school"];

/// Names of a directory entry: trimmed, whitespace collapsed, NFC, 2–300 characters each.
fn checked_names(name: Option<pb::LocalizedName>) -> Result<Names, Status> {
    let name = name.unwrap_or_default();
    let clean = |value: &str, field: &'static str| {
        let value = directory::normalize_title(value);
        if (2..=300).contains(&value.chars().count()) {
            Ok(value)
        } else {
            Err(invalid(
                "invalid_institution_name",
                "each name is 2–300 characters",
                &[(field, "invalid")],
            ))
        }
    };
    Ok(Names {
        kk: clean(&name.kk, "name.kk")?,
        ru: clean(&name.ru, "name.ru")?,
        en: clean(&name.en, "name.en")?,
    })
}

fn not_found(id: &str) -> Status {
    errors::status(
        Code::NotFound,
        "institution_not_found",
        format!("no institution {id}"),
    )
}

impl Profiles {
    async fn profile_pb(&self, row: ProfileRow) -> Result<pb::Profile, Status> {
        let institution = match &row.institution_id {
            Some(id) => directory::institution(&self.pool, id)
                .await
                .map_err(db)?
                .map(|i| institution_pb(&i)),
            None => None,
        };
        Ok(pb::Profile {
            account_id: row.account_id.to_string(),
            missing: row.missing().into_iter().map(str::to_owned).collect(),
            surname: row.surname.unwrap_or_default(),
            given_name: row.given_name.unwrap_or_default(),
            patronymic: row.patronymic.unwrap_or_default(),
            sex: match row.sex.as_deref() {
                Some("male") => pb::Sex::Male,
                Some("female") => pb::Sex::Female,
                _ => pb::Sex::Unspecified,
            }
            .into(),
            birth_date: row
                .birth_date
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            region_code: row.region_code.unwrap_or_default(),
            mobile_phone: row.mobile_phone.unwrap_or_default(),
            contingent_code: row.contingent_code.unwrap_or_default(),
            institution,
            locked_at: row.locked_at.map(|t| prost_types::Timestamp {
                seconds: t.timestamp(),
                nanos: 0,
            }),
        })
    }

    async fn current(&self, account: Uuid) -> Result<pb::Profile, Status> {
        let row = store::get(&self.pool, account)
            .await
            .map_err(db)?
            .unwrap_or(ProfileRow {
                account_id: account,
                ..ProfileRow::default()
            });
        self.profile_pb(row).await
    }

    /// The caller's own account from identity, read with the caller's own token.
    async fn account<T>(&self, request: &Request<T>) -> Result<id::Account, Status> {
        let token = bearer_of(request).ok_or_else(|| Status::unauthenticated("no token"))?;
        let answer = self
            .identity
            .clone()
            .get_account(with_bearer(id::GetAccountRequest::default(), token)?)
            .await
            .map_err(|e| {
                if matches!(
                    e.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
                ) {
                    errors::unavailable("identity", &e)
                } else {
                    e
                }
            })?;
        answer
            .into_inner()
            .account
            .ok_or_else(|| Status::internal("identity answered without an account"))
    }
}

#[tonic::async_trait]
impl ProfileService for Profiles {
    #[tracing::instrument(skip_all)]
    async fn get_profile(
        &self,
        request: Request<pb::GetProfileRequest>,
    ) -> Result<Response<pb::GetProfileResponse>, Status> {
        let account =
            caller(&request)?.account_for_capture("profile:read", &request.get_ref().account_id)?;
        Ok(Response::new(pb::GetProfileResponse {
            profile: Some(self.current(account).await?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_name(
        &self,
        request: Request<pb::UpdateNameRequest>,
    ) -> Result<Response<pb::UpdateNameResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let req = request.into_inner();
        let surname = person::name_part(&req.surname, "surname").map_err(refused)?;
        let given_name = person::name_part(&req.given_name, "given_name").map_err(refused)?;
        let patronymic = if req.patronymic.trim().is_empty() {
            None
        } else {
            Some(person::name_part(&req.patronymic, "patronymic").map_err(refused)?)
        };
        store::set_name(
            &self.pool,
            account,
            &store::Name {
                surname: &surname,
                given_name: &given_name,
                patronymic: patronymic.as_deref(),
            },
        )
        .await
        .map_err(db)?
        .map_err(|r| refused_write(r, "surname"))?;
        Ok(Response::new(pb::UpdateNameResponse {
            profile: Some(self.current(account).await?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_details(
        &self,
        request: Request<pb::UpdateDetailsRequest>,
    ) -> Result<Response<pb::UpdateDetailsResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let req = request.get_ref();
        let sex = sex_of(req.sex).ok_or_else(|| {
            invalid(
                "sex_required",
                "sex is male or female",
                &[("sex", "required")],
            )
        })?;
        let birth_date =
            NaiveDate::parse_from_str(req.birth_date.trim(), "%Y-%m-%d").map_err(|_| {
                invalid(
                    "invalid_birth_date",
                    "birth_date is YYYY-MM-DD",
                    &[("birth_date", "invalid")],
                )
            })?;
        person::check_age(birth_date, Utc::now().date_naive()).map_err(refused)?;
        let region = self.known_region(&req.region_code).await?;
        let account_row = self.account(&request).await?;
        let citizen = account_row.citizenship == KAZAKHSTAN;
        let phone = person::mobile_phone(&req.mobile_phone, citizen).map_err(refused)?;
        if let Some(id::account::Identifier::Iin(digits)) = &account_row.identifier {
            let iin = Iin::parse(digits).map_err(|e| errors::internal(&e))?;
            person::check_against_iin(&iin, birth_date, sex).map_err(refused)?;
        }
        store::set_details(
            &self.pool,
            account,
            &store::Details {
                sex: sex.as_str(),
                birth_date,
                region_code: &region,
                mobile_phone: &phone,
            },
        )
        .await
        .map_err(db)?
        .map_err(|r| refused_write(r, "birth_date"))?;
        Ok(Response::new(pb::UpdateDetailsResponse {
            profile: Some(self.current(account).await?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn update_education(
        &self,
        request: Request<pb::UpdateEducationRequest>,
    ) -> Result<Response<pb::UpdateEducationResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let req = request.into_inner();
        let contingent = directory::contingent(&self.pool, req.contingent_code.trim())
            .await
            .map_err(db)?
            .ok_or_else(|| {
                invalid(
                    "unknown_contingent",
                    "contingent_code is a code from the directory",
                    &[("contingent_code", "unknown")],
                )
            })?;
        let unknown = || {
            invalid(
                "unknown_institution",
                "institution_id is an id from the directory",
                &[("institution_id", "unknown")],
            )
        };
        let institution = directory::institution(&self.pool, req.institution_id.trim())
            .await
            .map_err(db)?
            .ok_or_else(unknown)?;
        let archived = || {
            invalid(
                "institution_archived",
                "this institution can no longer be chosen",
                &[("institution_id", "archived")],
            )
        };
        if institution.archived {
            return Err(archived());
        }
        if institution.kind != contingent.institution_kind {
            return Err(invalid(
                "institution_kind_mismatch",
                format!(
                    "this category studied at a {}, not a {}",
                    contingent.institution_kind, institution.kind
                ),
                &[("institution_id", "kind_mismatch")],
            ));
        }
        if !store::set_education(&self.pool, account, &contingent.code, &institution.id)
            .await
            .map_err(db)?
            .map_err(|r| refused_write(r, "institution_id"))?
        {
            // Archived between the read and the write.
            return Err(archived());
        }
        Ok(Response::new(pb::UpdateEducationResponse {
            profile: Some(self.current(account).await?),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn lock_profile(
        &self,
        request: Request<pb::LockProfileRequest>,
    ) -> Result<Response<pb::LockProfileResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        if store::lock(&self.pool, account)
            .await
            .map_err(db)?
            .is_some()
        {
            return Ok(Response::new(pb::LockProfileResponse {
                locked: true,
                missing: Vec::new(),
            }));
        }
        Ok(Response::new(pb::LockProfileResponse {
            locked: false,
            missing: self.current(account).await?.missing,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_profile(
        &self,
        request: Request<pb::DeleteProfileRequest>,
    ) -> Result<Response<pb::DeleteProfileResponse>, Status> {
        let actor = caller(&request)?.require_scope("profile:admin")?.to_owned();
        let account: Uuid = account_id_field(&request.get_ref().account_id)?;
        let deleted = store::delete(&self.pool, account).await.map_err(db)?;
        tracing::info!(%account, actor, deleted, "profile deleted");
        Ok(Response::new(pb::DeleteProfileResponse { deleted }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_regions(
        &self,
        request: Request<pb::ListRegionsRequest>,
    ) -> Result<Response<pb::ListRegionsResponse>, Status> {
        caller(&request)?;
        let regions = directory::regions(&self.pool).await.map_err(db)?;
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
        let contingents = directory::contingents(&self.pool).await.map_err(db)?;
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
        if req.query.chars().count() > 100 {
            return Err(invalid(
                "query_too_long",
                "the query is at most 100 characters",
                &[("query", "too_long")],
            ));
        }
        let limit = match req.page_size {
            0 => 20,
            n @ 1..=100 => i64::from(n),
            _ => {
                return Err(invalid(
                    "invalid_page_size",
                    "page_size is 1–100",
                    &[("page_size", "invalid")],
                ));
            }
        };
        let offset: i64 = if req.page_token.is_empty() {
            0
        } else {
            req.page_token
                .parse()
                .ok()
                .filter(|n| (0..1_000_000).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "invalid_page_token",
                        "page_token comes from a previous page",
                        &[("page_token", "invalid")],
                    )
                })?
        };
        let kind = req.kind.trim();
        if !kind.is_empty() && !KINDS.contains(&kind) {
            return Err(invalid(
                "invalid_kind",
                "kind is university, college or school",
                &[("kind", "invalid")],
            ));
        }
        let region = req.region_code.trim().to_ascii_uppercase();
        let mut found = directory::search(
            &self.pool,
            &directory::Search {
                query: &req.query,
                region_code: (!region.is_empty()).then_some(region.as_str()),
                kind: (!kind.is_empty()).then_some(kind),
                language: &req.language,
                include_archived: req.include_archived,
                offset,
                limit: limit + 1,
            },
        )
        .await
        .map_err(db)?;
        let more = found.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(Response::new(pb::SearchInstitutionsResponse {
            institutions: found.iter().map(institution_pb).collect(),
            next_page_token: if more {
                (offset + limit).to_string()
            } else {
                String::new()
            },
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
        let institution = self.checked_institution(given).await?;
        if !directory::add(&self.pool, &institution).await.map_err(db)? {
            return Err(errors::status(
                Code::AlreadyExists,
                "institution_exists",
                format!("the id {} is taken", institution.id),
            ));
        }
        tracing::info!(id = institution.id, actor, "institution added");
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
        let names = checked_names(req.name)?;
        if !directory::rename(&self.pool, &req.id, &names)
            .await
            .map_err(db)?
        {
            return Err(not_found(&req.id));
        }
        tracing::info!(id = req.id, actor, "institution renamed");
        let institution = directory::institution(&self.pool, &req.id)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found(&req.id))?;
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
        if !directory::archive(&self.pool, &id).await.map_err(db)? {
            return Err(not_found(&id));
        }
        tracing::info!(id, actor, "institution archived");
        let institution = directory::institution(&self.pool, &id)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found(&id))?;
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
        let bad_line = |line: usize, why: &str| {
            invalid(
                "invalid_csv",
                format!("line {line}: {why}"),
                &[("csv", &format!("line_{line}"))],
            )
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(csv.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| bad_line(1, &e.to_string()))?
            .iter()
            .map(str::to_owned)
            .collect();
        if header != ["id", "region_code", "kind", "name_kk", "name_ru", "name_en"] {
            return Err(bad_line(
                1,
                "the header is id,region_code,kind,name_kk,name_ru,name_en",
            ));
        }
        let mut rows = Vec::new();
        for (n, record) in reader.records().enumerate() {
            let line = n + 2;
            let record = record.map_err(|e| bad_line(line, &e.to_string()))?;
            let field = |i: usize| record.get(i).unwrap_or_default().to_owned();
            let given = pb::Institution {
                id: field(0),
                region_code: field(1),
                kind: field(2),
                name: Some(pb::LocalizedName {
                    kk: field(3),
                    ru: field(4),
                    en: field(5),
                }),
                archived: false,
            };
            let institution = self
                .checked_institution(given)
                .await
                .map_err(|e| bad_line(line, e.message()))?;
            rows.push(institution);
        }
        if rows.len() > 10_000 {
            return Err(bad_line(rows.len() + 1, "at most 10000 rows per import"));
        }
        let mut tx = self.pool.begin().await.map_err(db)?;
        let (mut added, mut updated) = (0u32, 0u32);
        for row in &rows {
            if directory::upsert(&mut tx, row).await.map_err(db)? {
                added += 1;
            } else {
                updated += 1;
            }
        }
        tx.commit().await.map_err(db)?;
        tracing::info!(added, updated, actor, "institutions imported");
        Ok(Response::new(pb::ImportInstitutionsResponse {
            added,
            updated,
        }))
    }
}

impl Profiles {
    /// A region code from the directory, normalized (`kz-71` → `KZ-71`).
    async fn known_region(&self, code: &str) -> Result<String, Status> {
        let region = code.trim().to_ascii_uppercase();
        if directory::region_exists(&self.pool, &region)
            .await
            .map_err(db)?
        {
            Ok(region)
        } else {
            Err(invalid(
                "unknown_region",
                "region_code is an ISO 3166-2:KZ code from the directory",
                &[("region_code", "unknown")],
            ))
        }
    }

    async fn checked_institution(&self, given: pb::Institution) -> Result<Institution, Status> {
        let id = given.id.trim().to_ascii_lowercase();
        let id_ok = (2..=64).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !id_ok {
            return Err(invalid(
                "invalid_institution_id",
                "id is 2–64 of a–z, 0–9, _ and -",
                &[("id", "invalid")],
            ));
        }
        let region = self.known_region(&given.region_code).await?;
        let kind = given.kind.trim();
        if !KINDS.contains(&kind) {
            return Err(invalid(
                "invalid_kind",
                "kind is university, college or school",
                &[("kind", "invalid")],
            ));
        }
        Ok(Institution {
            id,
            region_code: region,
            kind: kind.to_owned(),
            names: checked_names(given.name)?,
            archived: false,
        })
    }
}
