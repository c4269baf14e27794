//! The directories (regions, applicant categories, institutions): search, and their
//! administration by the exam center's staff, on raw values checked here, without gRPC.

use crate::{
    directory::{self, Institution, Names},
    error::Error,
};
use sqlx::PgPool;

pub struct Reference {
    pub pool: PgPool,
}

const KINDS: [&str; 3] = ["university", "college", "school"];

/// An institution as staff give it (a form or a CSV row), before it is checked.
pub struct Draft<'a> {
    pub id: &'a str,
    pub region_code: &'a str,
    pub kind: &'a str,
    pub names: [&'a str; 3],
}

/// A search as asked.
pub struct SearchInput<'a> {
    pub query: &'a str,
    pub region_code: &'a str,
    pub kind: &'a str,
    pub language: &'a str,
    pub include_archived: bool,
    pub prefer_region_code: &'a str,
    pub page_size: u32,
    pub page_token: &'a str,
}

/// A region code from the directory, normalized (`kz-71` → `KZ-71`).
pub(crate) async fn known_region(pool: &PgPool, code: &str) -> Result<String, Error> {
    let region = code.trim().to_ascii_uppercase();
    if directory::region_exists(pool, &region).await? {
        Ok(region)
    } else {
        Err(Error::UnknownRegion)
    }
}

/// Names of a directory entry: trimmed, whitespace collapsed, NFC, 2–300 characters each.
fn checked_names(names: [&str; 3]) -> Result<Names, Error> {
    let clean = |value: &str, field: &'static str| {
        let value = directory::normalize_title(value);
        if (2..=300).contains(&value.chars().count()) {
            Ok(value)
        } else {
            Err(Error::InvalidInstitutionName { field })
        }
    };
    Ok(Names {
        kk: clean(names[0], "name.kk")?,
        ru: clean(names[1], "name.ru")?,
        en: clean(names[2], "name.en")?,
    })
}

/// Checks a draft against the rules and the known regions.
fn checked(draft: &Draft<'_>, regions: &[String]) -> Result<Institution, Error> {
    let id = draft.id.trim().to_ascii_lowercase();
    let id_ok = (2..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !id_ok {
        return Err(Error::InvalidInstitutionId);
    }
    let region = draft.region_code.trim().to_ascii_uppercase();
    if !regions.contains(&region) {
        return Err(Error::UnknownRegion);
    }
    let kind = draft.kind.trim();
    if !KINDS.contains(&kind) {
        return Err(Error::InvalidKind);
    }
    Ok(Institution {
        id,
        region_code: region,
        kind: kind.to_owned(),
        names: checked_names(draft.names)?,
        archived: false,
    })
}

impl Reference {
    pub async fn regions(&self) -> Result<Vec<directory::Region>, Error> {
        Ok(directory::regions(&self.pool).await?)
    }

    pub async fn contingents(
        &self,
        include_empty: bool,
    ) -> Result<Vec<directory::Contingent>, Error> {
        Ok(directory::contingents(&self.pool, include_empty).await?)
    }

    async fn region_codes(&self) -> Result<Vec<String>, Error> {
        Ok(self.regions().await?.into_iter().map(|r| r.code).collect())
    }

    /// A page of institutions and the token of the next page, if there is one.
    pub async fn search(
        &self,
        s: &SearchInput<'_>,
    ) -> Result<(Vec<Institution>, Option<String>), Error> {
        if s.query.chars().count() > 100 {
            return Err(Error::QueryTooLong);
        }
        let limit = match s.page_size {
            0 => 20,
            n @ 1..=100 => i64::from(n),
            _ => return Err(Error::InvalidPageSize),
        };
        let offset: i64 = if s.page_token.is_empty() {
            0
        } else {
            s.page_token
                .parse()
                .ok()
                .filter(|n| (0..1_000_000).contains(n))
                .ok_or(Error::InvalidPageToken)?
        };
        let kind = s.kind.trim();
        if !kind.is_empty() && !KINDS.contains(&kind) {
            return Err(Error::InvalidKind);
        }
        let region = s.region_code.trim().to_ascii_uppercase();
        let preferred = s.prefer_region_code.trim().to_ascii_uppercase();
        let mut found = directory::search(
            &self.pool,
            &directory::Search {
                query: s.query,
                region_code: (!region.is_empty()).then_some(region.as_str()),
                kind: (!kind.is_empty()).then_some(kind),
                language: s.language,
                include_archived: s.include_archived,
                prefer_region_code: (!preferred.is_empty()).then_some(preferred.as_str()),
                offset,
                limit: limit + 1,
            },
        )
        .await?;
        let page = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = found.len() > page;
        found.truncate(page);
        Ok((found, more.then(|| (offset + limit).to_string())))
    }

    pub async fn add(&self, draft: &Draft<'_>, actor: &str) -> Result<Institution, Error> {
        let institution = checked(draft, &self.region_codes().await?)?;
        let mut tx = self.pool.begin().await?;
        if !directory::add(&mut tx, &institution).await? {
            return Err(Error::InstitutionExists(institution.id));
        }
        directory::log_change(&mut tx, actor, "add", Some(&institution.id), "").await?;
        tx.commit().await?;
        tracing::info!(id = institution.id, actor, "institution added");
        Ok(institution)
    }

    pub async fn rename(
        &self,
        id: &str,
        names: [&str; 3],
        actor: &str,
    ) -> Result<Institution, Error> {
        let names = checked_names(names)?;
        let mut tx = self.pool.begin().await?;
        if !directory::rename(&mut tx, id, &names).await? {
            return Err(Error::InstitutionNotFound(id.to_owned()));
        }
        directory::log_change(&mut tx, actor, "rename", Some(id), "").await?;
        tx.commit().await?;
        tracing::info!(id, actor, "institution renamed");
        self.institution(id).await
    }

    pub async fn archive(&self, id: &str, actor: &str) -> Result<Institution, Error> {
        let mut tx = self.pool.begin().await?;
        if !directory::archive(&mut tx, id).await? {
            return Err(Error::InstitutionNotFound(id.to_owned()));
        }
        directory::log_change(&mut tx, actor, "archive", Some(id), "").await?;
        tx.commit().await?;
        tracing::info!(id, actor, "institution archived");
        self.institution(id).await
    }

    async fn institution(&self, id: &str) -> Result<Institution, Error> {
        directory::institution(&self.pool, id)
            .await?
            .ok_or_else(|| Error::InstitutionNotFound(id.to_owned()))
    }

    /// Adds or updates every institution of a CSV (`id,region_code,kind,name_kk,name_ru,
    /// name_en`) in one transaction, or none: a bad line names itself. The regions are read
    /// once, not per row. Returns (added, updated).
    pub async fn import(&self, csv: &str, actor: &str) -> Result<(u32, u32), Error> {
        let bad_line = |line: usize, why: String| Error::InvalidCsv { line, why };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(csv.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| bad_line(1, e.to_string()))?
            .iter()
            .map(str::to_owned)
            .collect();
        if header != ["id", "region_code", "kind", "name_kk", "name_ru", "name_en"] {
            return Err(bad_line(
                1,
                "the header is id,region_code,kind,name_kk,name_ru,name_en".into(),
            ));
        }
        let regions = self.region_codes().await?;
        let mut rows = Vec::new();
        for (n, record) in reader.records().enumerate() {
            let line = n + 2;
            let record = record.map_err(|e| bad_line(line, e.to_string()))?;
            let field = |i: usize| record.get(i).unwrap_or_default();
            let draft = Draft {
                id: field(0),
                region_code: field(1),
                kind: field(2),
                names: [field(3), field(4), field(5)],
            };
            rows.push(checked(&draft, &regions).map_err(|e| bad_line(line, e.to_string()))?);
        }
        if rows.len() > 10_000 {
            return Err(bad_line(
                rows.len() + 1,
                "at most 10000 rows per import".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let (mut added, mut updated) = (0u32, 0u32);
        for row in &rows {
            if directory::upsert(&mut tx, row).await? {
                added += 1;
            } else {
                updated += 1;
            }
        }
        let detail = format!("added {added}, updated {updated}");
        directory::log_change(&mut tx, actor, "import", None, &detail).await?;
        tx.commit().await?;
        tracing::info!(added, updated, actor, "institutions imported");
        Ok((added, updated))
    }
}
