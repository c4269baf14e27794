//! The directories the applicant chooses from: regions, applicant categories, institutions.

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub kk: String,
    pub ru: String,
    pub en: String,
}

impl Names {
    pub fn new(kk: String, ru: String, en: String) -> Self {
        Self { kk, ru, en }
    }
}

#[derive(Debug, Clone)]
pub struct Region {
    pub code: String,
    pub names: Names,
}

#[derive(Debug, Clone)]
pub struct Contingent {
    pub code: String,
    pub names: Names,
    pub institution_kind: String,
}

#[derive(Debug, Clone)]
pub struct Institution {
    pub id: String,
    pub region_code: String,
    pub kind: String,
    pub names: Names,
    pub archived: bool,
}

/// Folds text for searching: NFC, lower case (Kazakh letters included, whatever the
/// database's locale), ё as е (Russian writes both).
pub fn fold(text: &str) -> String {
    text.nfc()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ё' { 'е' } else { c })
        .collect()
}

/// A directory name as stored: trimmed, inner whitespace collapsed, NFC.
pub fn normalize_title(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .nfc()
        .collect()
}

pub fn search_key(names: &Names) -> String {
    fold(&format!("{} {} {}", names.kk, names.ru, names.en))
}

/// Escapes LIKE's wildcards so a query matches literally.
fn like_pattern(query: &str) -> String {
    let mut pattern = String::from("%");
    for c in fold(query.trim()).chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[tracing::instrument(skip_all)]
pub async fn regions(pool: &PgPool) -> Result<Vec<Region>, sqlx::Error> {
    let rows =
        sqlx::query!("SELECT code, name_kk, name_ru, name_en FROM regions ORDER BY position")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|r| Region {
            code: r.code,
            names: Names::new(r.name_kk, r.name_ru, r.name_en),
        })
        .collect())
}

#[tracing::instrument(skip_all)]
pub async fn contingents(
    pool: &PgPool,
    include_empty: bool,
) -> Result<Vec<Contingent>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT code, name_kk, name_ru, name_en, institution_kind FROM contingents c
           WHERE $1 OR EXISTS (SELECT 1 FROM institutions i
                               WHERE i.kind = c.institution_kind AND i.archived_at IS NULL)
           ORDER BY position"#,
        include_empty
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Contingent {
            code: r.code,
            names: Names::new(r.name_kk, r.name_ru, r.name_en),
            institution_kind: r.institution_kind,
        })
        .collect())
}

pub struct Search<'a> {
    pub query: &'a str,
    pub region_code: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub language: &'a str,
    pub include_archived: bool,
    /// This region's institutions come first.
    pub prefer_region_code: Option<&'a str>,
    pub offset: i64,
    pub limit: i64,
}

/// One page of institutions matching `search`, ordered by the name in the requested language
/// (ICU root collation, so Kazakh letters sort next to their base letters), then by id.
#[tracing::instrument(skip_all)]
pub async fn search(pool: &PgPool, s: &Search<'_>) -> Result<Vec<Institution>, sqlx::Error> {
    let rows = sqlx::query_as!(
        InstitutionRow,
        r#"SELECT id, region_code, kind, name_kk, name_ru, name_en, archived_at IS NOT NULL AS "archived!"
           FROM institutions
           WHERE search LIKE $1
             AND ($2::text IS NULL OR region_code = $2)
             AND ($3::text IS NULL OR kind = $3)
             AND ($4 OR archived_at IS NULL)
           ORDER BY CASE WHEN region_code = $8 THEN 0 ELSE 1 END,
                    CASE $5 WHEN 'kk' THEN name_kk WHEN 'en' THEN name_en ELSE name_ru END
                    COLLATE "und-x-icu", id
           OFFSET $6 LIMIT $7"#,
        like_pattern(s.query),
        s.region_code,
        s.kind,
        s.include_archived,
        s.language,
        s.offset,
        s.limit,
        s.prefer_region_code,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Institution::from).collect())
}

struct InstitutionRow {
    id: String,
    region_code: String,
    kind: String,
    name_kk: String,
    name_ru: String,
    name_en: String,
    archived: bool,
}

impl From<InstitutionRow> for Institution {
    fn from(r: InstitutionRow) -> Self {
        Self {
            id: r.id,
            region_code: r.region_code,
            kind: r.kind,
            names: Names::new(r.name_kk, r.name_ru, r.name_en),
            archived: r.archived,
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn institution(pool: &PgPool, id: &str) -> Result<Option<Institution>, sqlx::Error> {
    let row = sqlx::query_as!(
        InstitutionRow,
        r#"SELECT id, region_code, kind, name_kk, name_ru, name_en, archived_at IS NOT NULL AS "archived!"
           FROM institutions WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(Institution::from))
}

#[tracing::instrument(skip_all)]
pub async fn region_exists(pool: &PgPool, code: &str) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query_scalar!("SELECT 1 AS one FROM regions WHERE code = $1", code)
            .fetch_optional(pool)
            .await?
            .is_some(),
    )
}

#[tracing::instrument(skip_all)]
pub async fn contingent(pool: &PgPool, code: &str) -> Result<Option<Contingent>, sqlx::Error> {
    Ok(contingents(pool, true)
        .await?
        .into_iter()
        .find(|c| c.code == code))
}

/// Whether the row was added (true) or an existing one updated (false).
pub async fn upsert(
    tx: &mut Transaction<'_, Postgres>,
    i: &Institution,
) -> Result<bool, sqlx::Error> {
    let added = sqlx::query_scalar!(
        r#"INSERT INTO institutions (id, region_code, kind, name_kk, name_ru, name_en, search)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (id) DO UPDATE SET region_code = EXCLUDED.region_code, kind = EXCLUDED.kind,
             name_kk = EXCLUDED.name_kk, name_ru = EXCLUDED.name_ru, name_en = EXCLUDED.name_en,
             search = EXCLUDED.search, updated_at = now()
           RETURNING (xmax = 0) AS "added!""#,
        i.id,
        i.region_code,
        i.kind,
        i.names.kk,
        i.names.ru,
        i.names.en,
        search_key(&i.names),
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(added)
}

/// Inserts a new institution; false when the id is taken.
#[tracing::instrument(skip_all)]
pub async fn add(conn: &mut PgConnection, i: &Institution) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        r#"INSERT INTO institutions (id, region_code, kind, name_kk, name_ru, name_en, search)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING"#,
        i.id,
        i.region_code,
        i.kind,
        i.names.kk,
        i.names.ru,
        i.names.en,
        search_key(&i.names),
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

#[tracing::instrument(skip_all)]
pub async fn rename(conn: &mut PgConnection, id: &str, names: &Names) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        r#"UPDATE institutions SET name_kk = $2, name_ru = $3, name_en = $4, search = $5,
             updated_at = now() WHERE id = $1"#,
        id,
        names.kk,
        names.ru,
        names.en,
        search_key(names),
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

#[tracing::instrument(skip_all)]
pub async fn archive(conn: &mut PgConnection, id: &str) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        r#"UPDATE institutions SET archived_at = COALESCE(archived_at, now()), updated_at = now()
           WHERE id = $1"#,
        id,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Records a change of the directory by an operator, in its transaction: who, what
/// (`add`, `rename`, `archive`, `import`), which institution (none for an import) and what
/// else says it (an import's counts).
#[tracing::instrument(skip_all)]
pub async fn log_change(
    conn: &mut PgConnection,
    actor: &str,
    action: &str,
    institution: Option<&str>,
    detail: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO directory_log (actor, action, institution_id, detail)
           VALUES ($1, $2, $3, $4)"#,
        actor,
        action,
        institution,
        detail
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_handles_kazakh_letters_and_yo() {
        assert_eq!(fold("ӘЛ-ФАРАБИ Қазақ"), "әл-фараби қазақ");
        assert_eq!(fold("Гумилёв"), "гумилев");
        assert_eq!(like_pattern(" 100%_ "), "%100\\%\\_%");
    }
}
