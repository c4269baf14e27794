//! Capture records, consents, capture sets and the access log in Postgres.

use chrono::{DateTime, Utc};
use examreg_domain::{CaptureKind, DocumentType};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub struct NewCapture<'a> {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: CaptureKind,
    pub object_key: &'a str,
    pub master_key_id: &'a str,
    pub sha256: &'a [u8],
    pub size_bytes: i32,
    pub width: i32,
    pub height: i32,
    pub scores: serde_json::Value,
    /// The document the applicant chose with this upload, if they chose one.
    pub document_type: Option<DocumentType>,
}

#[derive(Debug, Clone)]
pub struct CaptureRow {
    pub id: Uuid,
    pub kind: CaptureKind,
    pub scores: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Why a write to a capture set was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The registration is complete: the set is final.
    Sealed,
    /// The person was erased.
    Erased,
}

/// Takes the set's row lock for the transaction (making the row if it is the first write) and
/// says whether the set may still change. Every write to a set goes through here first, so
/// the seal and the erasure are checked by the transaction that would write.
async fn open_set(tx: &mut PgConnection, account: Uuid) -> Result<Result<(), Closed>, sqlx::Error> {
    sqlx::query!(
        "INSERT INTO capture_sets (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING",
        account
    )
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query!(
        "SELECT sealed_at, erased_at FROM capture_sets WHERE account_id = $1 FOR UPDATE",
        account
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(match (row.erased_at, row.sealed_at) {
        (Some(_), _) => Err(Closed::Erased),
        (None, Some(_)) => Err(Closed::Sealed),
        (None, None) => Ok(()),
    })
}

/// Makes `capture` the current one of its kind, in one transaction, and returns the object
/// keys no longer needed (to delete once committed): the capture it replaced, and the back of
/// an ID card when the applicant switched to a passport (biometric data is kept only while it
/// serves its purpose). Refused, recording nothing, once the set is sealed or erased.
#[tracing::instrument(skip_all)]
pub async fn replace_capture(
    pool: &PgPool,
    c: &NewCapture<'_>,
) -> Result<Result<Vec<String>, Closed>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if let Err(closed) = open_set(&mut tx, c.account_id).await? {
        return Ok(Err(closed));
    }
    let old = sqlx::query_scalar!(
        "SELECT object_key FROM captures WHERE account_id = $1 AND kind = $2 FOR UPDATE",
        c.account_id,
        c.kind as CaptureKind
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
        c.kind as CaptureKind,
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
            document_type as DocumentType
        )
        .execute(&mut *tx)
        .await?;
    }
    let mut unneeded: Vec<String> = old.into_iter().collect();
    if c.document_type == Some(DocumentType::Passport) {
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
    Ok(Ok(unneeded))
}

#[tracing::instrument(skip_all)]
pub async fn captures_of(pool: &PgPool, account: Uuid) -> Result<Vec<CaptureRow>, sqlx::Error> {
    sqlx::query_as!(
        CaptureRow,
        r#"SELECT id, kind AS "kind: CaptureKind", scores, created_at FROM captures WHERE account_id = $1 ORDER BY kind"#,
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

/// Where a capture set stands, as read outside a write (a write checks again under the lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetState {
    pub document_type: DocumentType,
    pub submitted: bool,
    /// Sealed or erased: no write goes through.
    pub closed: Option<Closed>,
}

/// The set's document type, whether it was submitted and whether it is closed; a set nobody
/// wrote yet is an open ID-card set.
#[tracing::instrument(skip_all)]
pub async fn capture_set(pool: &PgPool, account: Uuid) -> Result<SetState, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT document_type AS "document_type: DocumentType", submitted_at, sealed_at, erased_at
           FROM capture_sets WHERE account_id = $1"#,
        account
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or(
        SetState {
            document_type: DocumentType::IdCard,
            submitted: false,
            closed: None,
        },
        |r| SetState {
            document_type: r.document_type,
            submitted: r.submitted_at.is_some(),
            closed: match (r.erased_at, r.sealed_at) {
                (Some(_), _) => Some(Closed::Erased),
                (None, Some(_)) => Some(Closed::Sealed),
                (None, None) => None,
            },
        },
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

/// Records the consent; refused, recording nothing, once the set is sealed or erased.
#[tracing::instrument(skip_all)]
pub async fn record_consent(
    pool: &PgPool,
    account: Uuid,
    version: &str,
    ip: &str,
    agent: &str,
) -> Result<Result<(), Closed>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if let Err(closed) = open_set(&mut tx, account).await? {
        return Ok(Err(closed));
    }
    sqlx::query!(
        r#"INSERT INTO consents (account_id, version, client_ip, user_agent) VALUES ($1, $2, $3, $4)
           ON CONFLICT (account_id) DO UPDATE SET version = EXCLUDED.version, accepted_at = now(),
             client_ip = EXCLUDED.client_ip, user_agent = EXCLUDED.user_agent"#,
        account,
        version,
        ip,
        agent
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// What sealing a set came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seal {
    /// Sealed now or before, at this time.
    Sealed(DateTime<Utc>),
    /// Not sealed: these are still missing.
    Incomplete(Vec<&'static str>),
    Erased,
}

/// What a set lacks, in the order the applicant does it.
pub fn missing_of(
    captures: &[CaptureRow],
    document_type: DocumentType,
    consent: bool,
) -> Vec<&'static str> {
    let mut missing: Vec<&'static str> = document_type
        .captures()
        .iter()
        .filter(|&&kind| !captures.iter().any(|c| c.kind == kind))
        .map(|kind| kind.as_str())
        .collect();
    if !consent {
        missing.push("consent");
    }
    missing
}

/// Seals a complete set (idempotent): under the set's lock, so what is checked complete is
/// what stays; an upload racing it either committed before (and is part of what is sealed)
/// or waits and is refused.
#[tracing::instrument(skip_all)]
pub async fn seal(pool: &PgPool, account: Uuid) -> Result<Seal, sqlx::Error> {
    let mut tx = pool.begin().await?;
    match open_set(&mut tx, account).await? {
        Err(Closed::Erased) => return Ok(Seal::Erased),
        Err(Closed::Sealed) | Ok(()) => {}
    }
    let captures = sqlx::query_as!(
        CaptureRow,
        r#"SELECT id, kind AS "kind: CaptureKind", scores, created_at FROM captures WHERE account_id = $1 ORDER BY kind"#,
        account
    )
    .fetch_all(&mut *tx)
    .await?;
    let document_type = sqlx::query_scalar!(
        r#"SELECT document_type AS "document_type: DocumentType" FROM capture_sets WHERE account_id = $1"#,
        account
    )
    .fetch_one(&mut *tx)
    .await?;
    let consent = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM consents WHERE account_id = $1) AS "consent!""#,
        account
    )
    .fetch_one(&mut *tx)
    .await?;
    let missing = missing_of(&captures, document_type, consent);
    if !missing.is_empty() {
        return Ok(Seal::Incomplete(missing));
    }
    let sealed_at = sqlx::query_scalar!(
        r#"UPDATE capture_sets SET sealed_at = COALESCE(sealed_at, now()),
             submitted_at = COALESCE(submitted_at, now())
           WHERE account_id = $1 RETURNING sealed_at AS "sealed_at!""#,
        account
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Seal::Sealed(sealed_at))
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
    pub kind: CaptureKind,
    pub object_key: String,
}

#[tracing::instrument(skip_all)]
pub async fn capture_by_id(pool: &PgPool, id: Uuid) -> Result<Option<StoredCapture>, sqlx::Error> {
    sqlx::query_as!(
        StoredCapture,
        r#"SELECT account_id, kind AS "kind: CaptureKind", object_key FROM captures WHERE id = $1"#,
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

/// Deletes an account's captures and consent in one transaction and leaves its set as a
/// tombstone (nothing but the id and the time), so no later write creates the person again;
/// returns the object keys to delete. The tombstone is written first: it takes the set's lock,
/// so an upload in flight either committed before (and is deleted here) or is refused. The
/// access log stays: it records who read the data while it existed.
#[tracing::instrument(skip_all)]
pub async fn delete_account(pool: &PgPool, account: Uuid) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"INSERT INTO capture_sets (account_id, erased_at) VALUES ($1, now())
           ON CONFLICT (account_id) DO UPDATE SET erased_at = COALESCE(capture_sets.erased_at, now()),
             document_type = 'id_card', submitted_at = NULL, sealed_at = NULL"#,
        account
    )
    .execute(&mut *tx)
    .await?;
    let keys = sqlx::query_scalar!(
        "DELETE FROM captures WHERE account_id = $1 RETURNING object_key",
        account
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!("DELETE FROM consents WHERE account_id = $1", account)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(keys)
}
