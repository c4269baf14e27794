//! Capture records, consents, capture sets and the access log in Postgres.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub struct NewCapture<'a> {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: &'a str,
    pub object_key: &'a str,
    pub master_key_id: &'a str,
    pub sha256: &'a [u8],
    pub size_bytes: i32,
    pub width: i32,
    pub height: i32,
    pub scores: serde_json::Value,
    /// The document the applicant chose with this upload, if they chose one.
    pub document_type: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct CaptureRow {
    pub id: Uuid,
    pub kind: String,
    pub scores: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Makes `capture` the current one of its kind, in one transaction, and returns the object
/// keys no longer needed (to delete once committed): the capture it replaced, and the back of
/// an ID card when the applicant switched to a passport (biometric data is kept only while it
/// serves its purpose).
#[tracing::instrument(skip_all)]
pub async fn replace_capture(
    pool: &PgPool,
    c: &NewCapture<'_>,
) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let old = sqlx::query_scalar!(
        "SELECT object_key FROM captures WHERE account_id = $1 AND kind = $2 FOR UPDATE",
        c.account_id,
        c.kind
    )
    .fetch_optional(&mut *tx)
    .await?;
    sqlx::query!(
        r#"INSERT INTO captures (id, account_id, kind, object_key, master_key_id, sha256, size_bytes, width, height, scores)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (account_id, kind) DO UPDATE SET
             id = EXCLUDED.id, object_key = EXCLUDED.object_key, master_key_id = EXCLUDED.master_key_id,
             sha256 = EXCLUDED.sha256, size_bytes = EXCLUDED.size_bytes, width = EXCLUDED.width,
             height = EXCLUDED.height, scores = EXCLUDED.scores, created_at = now()"#,
        c.id,
        c.account_id,
        c.kind,
        c.object_key,
        c.master_key_id,
        c.sha256,
        c.size_bytes,
        c.width,
        c.height,
        c.scores,
    )
    .execute(&mut *tx)
    .await?;
    if let Some(document_type) = c.document_type {
        sqlx::query!(
            r#"INSERT INTO capture_sets (account_id, document_type) VALUES ($1, $2)
               ON CONFLICT (account_id) DO UPDATE SET document_type = EXCLUDED.document_type"#,
            c.account_id,
            document_type
        )
        .execute(&mut *tx)
        .await?;
    }
    let mut unneeded: Vec<String> = old.into_iter().collect();
    if c.document_type == Some("passport") {
        unneeded.extend(
            sqlx::query_scalar!(
                "DELETE FROM captures WHERE account_id = $1 AND kind = 'document_back' RETURNING object_key",
                c.account_id
            )
            .fetch_all(&mut *tx)
            .await?,
        );
    }
    tx.commit().await?;
    Ok(unneeded)
}

#[tracing::instrument(skip_all)]
pub async fn captures_of(pool: &PgPool, account: Uuid) -> Result<Vec<CaptureRow>, sqlx::Error> {
    sqlx::query_as!(
        CaptureRow,
        "SELECT id, kind, scores, created_at FROM captures WHERE account_id = $1 ORDER BY kind",
        account
    )
    .fetch_all(pool)
    .await
}

/// Which of `keys` no capture references (the sweeper deletes those objects).
#[tracing::instrument(skip_all)]
pub async fn unreferenced(pool: &PgPool, keys: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT k AS "k!" FROM unnest($1::text[]) AS k
           WHERE NOT EXISTS (SELECT 1 FROM captures WHERE object_key = k)"#,
        keys
    )
    .fetch_all(pool)
    .await
}

/// The set's document type and whether it was submitted.
#[tracing::instrument(skip_all)]
pub async fn capture_set(pool: &PgPool, account: Uuid) -> Result<(String, bool), sqlx::Error> {
    let row = sqlx::query!(
        "SELECT document_type, submitted_at FROM capture_sets WHERE account_id = $1",
        account
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or_else(
        || ("id_card".to_owned(), false),
        |r| (r.document_type, r.submitted_at.is_some()),
    ))
}

/// Records whether the set is complete: the first time it is, `submitted_at` is set; a set
/// that lost a required photo (the applicant switched from a passport to an ID card) is
/// submitted no longer.
#[tracing::instrument(skip_all)]
pub async fn set_submitted(
    pool: &PgPool,
    account: Uuid,
    complete: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO capture_sets (account_id, submitted_at) VALUES ($1, CASE WHEN $2 THEN now() END)
           ON CONFLICT (account_id) DO UPDATE SET submitted_at =
             CASE WHEN $2 THEN COALESCE(capture_sets.submitted_at, now()) END"#,
        account,
        complete
    )
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn record_consent(
    pool: &PgPool,
    account: Uuid,
    version: &str,
    ip: &str,
    agent: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO consents (account_id, version, client_ip, user_agent) VALUES ($1, $2, $3, $4)
           ON CONFLICT (account_id) DO UPDATE SET version = EXCLUDED.version, accepted_at = now(),
             client_ip = EXCLUDED.client_ip, user_agent = EXCLUDED.user_agent"#,
        account,
        version,
        ip,
        agent
    )
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn consent_of(pool: &PgPool, account: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT version FROM consents WHERE account_id = $1",
        account
    )
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone)]
pub struct StoredCapture {
    pub account_id: Uuid,
    pub kind: String,
    pub object_key: String,
}

#[tracing::instrument(skip_all)]
pub async fn capture_by_id(pool: &PgPool, id: Uuid) -> Result<Option<StoredCapture>, sqlx::Error> {
    sqlx::query_as!(
        StoredCapture,
        "SELECT account_id, kind, object_key FROM captures WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await
}

#[tracing::instrument(skip_all)]
pub async fn log_access(
    pool: &PgPool,
    capture: Uuid,
    account: Uuid,
    actor: &str,
    purpose: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO access_log (capture_id, account_id, actor, purpose) VALUES ($1, $2, $3, $4)",
        capture,
        account,
        actor,
        purpose
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes an account's captures, consent and set in one transaction; returns the object keys
/// to delete. The access log stays: it records who read the data while it existed.
#[tracing::instrument(skip_all)]
pub async fn delete_account(pool: &PgPool, account: Uuid) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let keys = sqlx::query_scalar!(
        "DELETE FROM captures WHERE account_id = $1 RETURNING object_key",
        account
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM consents WHERE account_id = $1", account)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("DELETE FROM capture_sets WHERE account_id = $1", account)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(keys)
}
