//! Profiles in Postgres. Each write is one statement that also enforces the lock, so a write
//! racing the completion can never change a locked field.

use chrono::{DateTime, NaiveDate, Utc};
use examreg_domain::Sex;
use examreg_kit::auth::Change;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, Default)]
pub struct ProfileRow {
    pub account_id: Uuid,
    pub surname: Option<String>,
    pub given_name: Option<String>,
    pub patronymic: Option<String>,
    pub sex: Option<Sex>,
    pub birth_date: Option<NaiveDate>,
    pub region_code: Option<String>,
    pub mobile_phone: Option<String>,
    pub contingent_code: Option<String>,
    pub institution_id: Option<String>,
    pub locked_at: Option<DateTime<Utc>>,
    /// The steps a reopening asked to redo, not yet redone.
    pub redo: Vec<String>,
}

impl ProfileRow {
    /// The steps whose data is still empty or is to be redone, in the seed's order.
    pub fn missing(&self) -> Vec<&'static str> {
        let redo = |step: &str| self.redo.iter().any(|r| r == step);
        let mut missing = Vec::new();
        if self.surname.is_none() || redo("name") {
            missing.push("name");
        }
        if self.sex.is_none() || redo("details") {
            missing.push("details");
        }
        if self.contingent_code.is_none() || redo("education") {
            missing.push("education");
        }
        missing
    }
}

/// Why a write changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The registration is complete: name, birth date and sex are final.
    Locked,
    /// The person was erased.
    Erased,
}

/// Why a guarded write affected no row: the tombstone, or else the lock.
async fn refusal(pool: &PgPool, account: Uuid) -> Result<Refused, sqlx::Error> {
    let erased = sqlx::query_scalar!(
        r#"SELECT erased_at IS NOT NULL AS "erased!" FROM profiles WHERE account_id = $1"#,
        account
    )
    .fetch_optional(pool)
    .await?;
    Ok(if erased == Some(true) {
        Refused::Erased
    } else {
        Refused::Locked
    })
}

/// A guarded write that touched its row went through; one that did not was refused, and why.
async fn written_or_refused(
    pool: &PgPool,
    account: Uuid,
    written: u64,
) -> Result<Result<(), Refused>, sqlx::Error> {
    Ok(if written == 1 {
        Ok(())
    } else {
        Err(refusal(pool, account).await?)
    })
}

#[tracing::instrument(skip_all)]
pub async fn get(pool: &PgPool, account: Uuid) -> Result<Option<ProfileRow>, sqlx::Error> {
    sqlx::query_as!(
        ProfileRow,
        r#"SELECT account_id, surname, given_name, patronymic, sex AS "sex: Sex", birth_date, region_code,
                  mobile_phone, contingent_code, institution_id, locked_at, redo
           FROM profiles WHERE account_id = $1 AND erased_at IS NULL"#,
        account
    )
    .fetch_optional(pool)
    .await
}

pub struct Name<'a> {
    pub surname: &'a str,
    pub given_name: &'a str,
    pub patronymic: Option<&'a str>,
}

#[tracing::instrument(skip_all)]
pub async fn set_name(
    pool: &PgPool,
    account: Uuid,
    n: &Name<'_>,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let written = sqlx::query!(
        r#"INSERT INTO profiles (account_id, surname, given_name, patronymic) VALUES ($1, $2, $3, $4)
           ON CONFLICT (account_id) DO UPDATE SET surname = EXCLUDED.surname,
             given_name = EXCLUDED.given_name, patronymic = EXCLUDED.patronymic, updated_at = now(),
             redo = array_remove(profiles.redo, 'name')
           WHERE (profiles.locked_at IS NULL OR 'name' = ANY(profiles.redo))
             AND profiles.erased_at IS NULL"#,
        account,
        n.surname,
        n.given_name,
        n.patronymic,
    )
    .execute(pool)
    .await?
    .rows_affected();
    written_or_refused(pool, account, written).await
}

pub struct Details<'a> {
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub region_code: &'a str,
    pub mobile_phone: &'a str,
}

/// Once locked, only the region and the phone may change (unless the step was reopened): the
/// write goes through only if sex and birth date stay what they are.
#[tracing::instrument(skip_all)]
pub async fn set_details(
    pool: &PgPool,
    account: Uuid,
    d: &Details<'_>,
) -> Result<Result<(), Refused>, sqlx::Error> {
    let written = sqlx::query!(
        r#"INSERT INTO profiles (account_id, sex, birth_date, region_code, mobile_phone)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (account_id) DO UPDATE SET sex = EXCLUDED.sex,
             birth_date = EXCLUDED.birth_date, region_code = EXCLUDED.region_code,
             mobile_phone = EXCLUDED.mobile_phone, updated_at = now(),
             redo = array_remove(profiles.redo, 'details')
           WHERE profiles.erased_at IS NULL AND (profiles.locked_at IS NULL
              OR 'details' = ANY(profiles.redo)
              OR (profiles.sex = EXCLUDED.sex AND profiles.birth_date = EXCLUDED.birth_date))"#,
        account,
        d.sex as Sex,
        d.birth_date,
        d.region_code,
        d.mobile_phone,
    )
    .execute(pool)
    .await?
    .rows_affected();
    written_or_refused(pool, account, written).await
}

/// Sets the education. The institution must be active at this moment: the check and the write
/// are one statement, so an archive racing the choice cannot slip through (`Ok(false)` then).
#[tracing::instrument(skip_all)]
pub async fn set_education(
    pool: &PgPool,
    account: Uuid,
    contingent: &str,
    institution: &str,
) -> Result<Result<bool, Refused>, sqlx::Error> {
    let written = sqlx::query!(
        r#"INSERT INTO profiles (account_id, contingent_code, institution_id)
           SELECT $1, $2, id FROM institutions WHERE id = $3 AND archived_at IS NULL
           ON CONFLICT (account_id) DO UPDATE SET contingent_code = EXCLUDED.contingent_code,
             institution_id = EXCLUDED.institution_id, updated_at = now(),
             redo = array_remove(profiles.redo, 'education')
           WHERE profiles.erased_at IS NULL"#,
        account,
        contingent,
        institution,
    )
    .execute(pool)
    .await?
    .rows_affected();
    if written == 1 {
        return Ok(Ok(true));
    }
    Ok(match refusal(pool, account).await? {
        Refused::Erased => Err(Refused::Erased),
        Refused::Locked => Ok(false),
    })
}

/// Locks a complete profile with nothing to redo (idempotent: a reopened profile keeps the time
/// of its first lock); None when something is still missing.
#[tracing::instrument(skip_all)]
pub async fn lock(pool: &PgPool, account: Uuid) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"UPDATE profiles SET locked_at = COALESCE(locked_at, now())
           WHERE account_id = $1 AND surname IS NOT NULL AND sex IS NOT NULL
             AND contingent_code IS NOT NULL AND cardinality(redo) = 0
           RETURNING locked_at AS "locked_at!""#,
        account
    )
    .fetch_optional(pool)
    .await
}

/// Empties the profile and leaves the row as a tombstone, so nothing written later creates
/// the person again, with the erasure recorded; whether there was anything to erase.
#[tracing::instrument(skip_all)]
pub async fn delete(pool: &PgPool, account: Uuid, change: &Change) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let deleted = sqlx::query_scalar!(
        r#"WITH before AS (
             SELECT 1 FROM profiles WHERE account_id = $1 AND erased_at IS NULL
           )
           INSERT INTO profiles (account_id, erased_at) VALUES ($1, now())
           ON CONFLICT (account_id) DO UPDATE SET surname = NULL, given_name = NULL,
             patronymic = NULL, sex = NULL, birth_date = NULL, region_code = NULL,
             mobile_phone = NULL, contingent_code = NULL, institution_id = NULL,
             locked_at = NULL, redo = '{}', erased_at = COALESCE(profiles.erased_at, now()),
             updated_at = now()
           RETURNING EXISTS (SELECT 1 FROM before) AS "deleted!""#,
        account
    )
    .fetch_one(&mut *tx)
    .await?;
    examreg_kit::record::record_change(&mut tx, account, change).await?;
    tx.commit().await?;
    Ok(deleted)
}

/// Puts steps of a profile on its list to redo (a reopening), with the change recorded;
/// `false` when the profile was erased. A person without a profile has nothing to reopen (the
/// steps are missing already): the change is recorded all the same.
#[tracing::instrument(skip_all)]
pub async fn reopen(
    pool: &PgPool,
    account: Uuid,
    steps: &[String],
    change: &Change,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let erased = sqlx::query_scalar!(
        r#"SELECT erased_at IS NOT NULL AS "erased!" FROM profiles WHERE account_id = $1 FOR UPDATE"#,
        account
    )
    .fetch_optional(&mut *tx)
    .await?;
    if erased == Some(true) {
        return Ok(false);
    }
    sqlx::query!(
        r#"UPDATE profiles SET updated_at = now(),
             redo = ARRAY(SELECT DISTINCT s FROM unnest(redo || $2::text[]) AS s ORDER BY s)
           WHERE account_id = $1"#,
        account,
        steps
    )
    .execute(&mut *tx)
    .await?;
    examreg_kit::record::record_change(&mut tx, account, change).await?;
    tx.commit().await?;
    Ok(true)
}

/// Records that a service read a person's profile, and why.
#[tracing::instrument(skip_all)]
pub async fn log_read(
    conn: &mut PgConnection,
    account: Uuid,
    actor: &str,
    purpose: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO access_log (account_id, actor, purpose) VALUES ($1, $2, $3)",
        account,
        actor,
        purpose
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct AccessRow {
    pub id: i64,
    pub actor: String,
    pub purpose: String,
    pub read_at: DateTime<Utc>,
}

/// Up to `limit` entries of an account's access log after `after` (an entry id), oldest first.
#[tracing::instrument(skip_all)]
pub async fn access_entries(
    conn: &mut PgConnection,
    account: Uuid,
    after: i64,
    limit: i64,
) -> Result<Vec<AccessRow>, sqlx::Error> {
    sqlx::query_as!(
        AccessRow,
        r#"SELECT id, actor, purpose, read_at FROM access_log
           WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"#,
        account,
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

/// What the statistics group completed registrations by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// The day of completion in the time zone given.
    Day,
    Region,
    Category,
    Institution,
}

/// What a count covered: whole days in the time zone asked, today excluded.
pub struct Counted {
    /// Per group, in order of the key.
    pub counts: Vec<(String, i64)>,
    /// The window counted: the start of the day `from` falls in (none: from the first), and
    /// the start of the day `before` falls in, or of today when that is earlier (or `before` is
    /// none).
    pub from: Option<DateTime<Utc>>,
    pub before: DateTime<Utc>,
}

/// Completed registrations (locked profiles with nothing to redo) completed in the window,
/// counted per group, groups in order of their key. The window is cut to whole days in
/// `time_zone` and ends before today: a count never moves within a day, so two counts taken
/// moments apart cannot tell one person's completion from the others'.
#[tracing::instrument(skip_all)]
pub async fn count_registrations(
    pool: &PgPool,
    grouping: Grouping,
    from: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    time_zone: &str,
) -> Result<Counted, sqlx::Error> {
    let by = match grouping {
        Grouping::Day => "day",
        Grouping::Region => "region",
        Grouping::Category => "category",
        Grouping::Institution => "institution",
    };
    let window = sqlx::query!(
        r#"SELECT date_trunc('day', $1::timestamptz AT TIME ZONE $3) AT TIME ZONE $3 AS "from",
                  LEAST(date_trunc('day', COALESCE($2::timestamptz, now()) AT TIME ZONE $3),
                        date_trunc('day', now() AT TIME ZONE $3)) AT TIME ZONE $3 AS "before!""#,
        from,
        before,
        time_zone
    )
    .fetch_one(pool)
    .await?;
    let rows = sqlx::query!(
        r#"SELECT CASE $1
                    WHEN 'day' THEN to_char(locked_at AT TIME ZONE $4, 'YYYY-MM-DD')
                    WHEN 'region' THEN region_code
                    WHEN 'category' THEN contingent_code
                    ELSE institution_id END AS "key!",
                  count(*) AS "count!"
           FROM profiles
           WHERE locked_at IS NOT NULL AND cardinality(redo) = 0 AND erased_at IS NULL
             AND ($2::timestamptz IS NULL OR locked_at >= $2)
             AND locked_at < $3
           GROUP BY 1 ORDER BY 1"#,
        by,
        window.from,
        window.before,
        time_zone
    )
    .fetch_all(pool)
    .await?;
    Ok(Counted {
        counts: rows.into_iter().map(|r| (r.key, r.count)).collect(),
        from: window.from,
        before: window.before,
    })
}

/// Whether Postgres knows this time zone name.
#[tracing::instrument(skip_all)]
pub async fn time_zone_known(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1) AS "known!""#,
        name
    )
    .fetch_one(pool)
    .await
}
