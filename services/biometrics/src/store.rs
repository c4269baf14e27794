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
}

#[derive(Debug, Clone)]
pub struct CaptureRow {
    pub id: Uuid,
    pub kind: String,
    pub scores: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Makes `capture` the current one of its kind, in one transaction, and returns the object
/// key of the capture it replaced (to delete once committed).
#[tracing::instrument(skip_all)]
pub async fn replace_capture(
    pool: &PgPool,
    c: &NewCapture<'_>,
) -> Result<Option<String>, sqlx::Error> {
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
    tx.commit().await?;
    Ok(old)
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
