//! Capture records, consents, capture sets and the access log in Postgres.

use crate::{
    document::{Check, Claim, Decision, Standing, zone_of},
    reviews,
};

pub mod checks;
use chrono::{DateTime, Utc};
use examreg_domain::{CaptureKind, DocumentType};
use examreg_kit::auth::Change;
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
    /// Who the account says the holder is (with a document photo), for the document check.
    pub holder: Option<&'a examreg_domain::mrz::Expected>,
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
/// says whether the set may still change: for `step` (a capture kind or "consent"), or for a
/// change of the whole set when `None`. A sealed set takes only the steps a reopening asked to
/// redo; `Ok(true)` says the set is sealed and the step reopened. Every write to a set goes
/// through here first, so the seal and the erasure are checked by the transaction that would
/// write.
async fn open_set(
    tx: &mut PgConnection,
    account: Uuid,
    step: Option<&str>,
) -> Result<Result<bool, Closed>, sqlx::Error> {
    sqlx::query!(
        "INSERT INTO capture_sets (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING",
        account
    )
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query!(
        "SELECT sealed_at, erased_at, redo FROM capture_sets WHERE account_id = $1 FOR UPDATE",
        account
    )
    .fetch_one(&mut *tx)
    .await?;
    let reopened = step.is_some_and(|step| row.redo.iter().any(|r| r == step));
    Ok(match (row.erased_at, row.sealed_at) {
        (Some(_), _) => Err(Closed::Erased),
        (None, Some(_)) if !reopened => Err(Closed::Sealed),
        (None, Some(_)) => Ok(true),
        (None, None) => Ok(false),
    })
}

/// Takes a redone step off the set's list (nothing when it was not on it).
async fn redone(tx: &mut PgConnection, account: Uuid, step: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE capture_sets SET redo = array_remove(redo, $2) WHERE account_id = $1",
        account,
        step
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
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
    let reopened = match open_set(&mut tx, c.account_id, Some(c.kind.as_str())).await? {
        Ok(reopened) => reopened,
        Err(closed) => return Ok(Err(closed)),
    };
    // A reopened set changes its document only with the photo of the document's front.
    let switch = c
        .document_type
        .filter(|_| !reopened || c.kind == CaptureKind::DocumentFront);
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
    redone(&mut tx, c.account_id, c.kind.as_str()).await?;
    if let Some(document_type) = switch {
        // In a reopened set, a switch to an ID card puts its back on the list to redo, and a
        // switch to a passport takes it off (a passport has none).
        sqlx::query!(
            r#"UPDATE capture_sets SET document_type = $2,
                 redo = CASE WHEN sealed_at IS NULL OR document_type = $2 THEN redo
                             WHEN $2 = 'id_card' THEN array_append(array_remove(redo, 'document_back'), 'document_back')
                             ELSE array_remove(redo, 'document_back') END
               WHERE account_id = $1"#,
            c.account_id,
            document_type as DocumentType
        )
        .execute(&mut *tx)
        .await?;
    }
    checks::enqueue(&mut tx, c, c.holder).await?;
    let mut unneeded: Vec<String> = old.into_iter().collect();
    if switch == Some(DocumentType::Passport) {
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetState {
    pub document_type: DocumentType,
    pub submitted: bool,
    /// Sealed or erased: no write goes through (but of the steps to redo, when sealed).
    pub closed: Option<Closed>,
    /// The steps a reopening asked to redo.
    pub redo: Vec<String>,
    pub sealed_at: Option<DateTime<Utc>>,
}

/// The set's document type, whether it was submitted and whether it is closed; a set nobody
/// wrote yet is an open ID-card set.
#[tracing::instrument(skip_all)]
pub async fn capture_set(pool: &PgPool, account: Uuid) -> Result<SetState, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT document_type AS "document_type: DocumentType", submitted_at, sealed_at, erased_at,
                  redo
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
            redo: Vec::new(),
            sealed_at: None,
        },
        |r| SetState {
            document_type: r.document_type,
            submitted: r.submitted_at.is_some(),
            closed: match (r.erased_at, r.sealed_at) {
                (Some(_), _) => Some(Closed::Erased),
                (None, Some(_)) => Some(Closed::Sealed),
                (None, None) => None,
            },
            redo: r.redo,
            sealed_at: r.sealed_at,
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

/// A consent as the applicant gave it: the text's version, SHA-256 and language, and where.
pub struct NewConsent<'a> {
    pub version: &'a str,
    pub sha256: &'a str,
    pub language: &'a str,
    pub client_ip: &'a str,
    pub user_agent: &'a str,
}

/// Records the consent; refused, recording nothing, once the set is sealed or erased.
#[tracing::instrument(skip_all)]
pub async fn record_consent(
    pool: &PgPool,
    account: Uuid,
    consent: &NewConsent<'_>,
) -> Result<Result<(), Closed>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if let Err(closed) = open_set(&mut tx, account, Some("consent")).await? {
        return Ok(Err(closed));
    }
    redone(&mut tx, account, "consent").await?;
    sqlx::query!(
        r#"INSERT INTO consents (account_id, version, sha256, language, client_ip, user_agent)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (account_id) DO UPDATE SET version = EXCLUDED.version, accepted_at = now(),
             sha256 = EXCLUDED.sha256, language = EXCLUDED.language,
             client_ip = EXCLUDED.client_ip, user_agent = EXCLUDED.user_agent"#,
        account,
        consent.version,
        consent.sha256,
        consent.language,
        consent.client_ip,
        consent.user_agent
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
    /// Not sealed: the document check holds it (waiting for the reading or for a person).
    Held((Check, Option<Decision>)),
    Erased,
}

/// What a set lacks, in the order the applicant does it: what it does not have, what a
/// reopening asked to redo, and the zone-bearing photo when its check asks for a retake.
pub fn missing_of(
    captures: &[CaptureRow],
    document_type: DocumentType,
    consent: bool,
    redo: &[String],
    document: Standing,
) -> Vec<&'static str> {
    let to_redo = |step: &str| redo.iter().any(|r| r == step);
    let retake =
        |kind: CaptureKind| document == Standing::Retake && zone_of(document_type, kind).is_some();
    let mut missing: Vec<&'static str> = document_type
        .captures()
        .iter()
        .filter(|&&kind| {
            !captures.iter().any(|c| c.kind == kind) || to_redo(kind.as_str()) || retake(kind)
        })
        .map(|kind| kind.as_str())
        .collect();
    if !consent || to_redo("consent") {
        missing.push("consent");
    }
    missing
}

/// Seals a complete set (idempotent): under the set's lock, so what is checked complete is
/// what stays; an upload racing it either committed before (and is part of what is sealed)
/// or waits and is refused.
#[tracing::instrument(skip_all)]
pub async fn seal(pool: &PgPool, account: Uuid, claim: Claim) -> Result<Seal, sqlx::Error> {
    let mut tx = pool.begin().await?;
    match open_set(&mut tx, account, None).await? {
        Err(Closed::Erased) => return Ok(Seal::Erased),
        Err(Closed::Sealed) | Ok(_) => {}
    }
    let captures = sqlx::query_as!(
        CaptureRow,
        r#"SELECT id, kind AS "kind: CaptureKind", scores, created_at FROM captures WHERE account_id = $1 ORDER BY kind"#,
        account
    )
    .fetch_all(&mut *tx)
    .await?;
    let set = sqlx::query!(
        r#"SELECT document_type AS "document_type: DocumentType", redo, sealed_at FROM capture_sets WHERE account_id = $1"#,
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
    let check = checks::check_of(&mut *tx, account).await?;
    let document = crate::document::standing(check.as_ref(), set.sealed_at.is_some());
    let missing = missing_of(&captures, set.document_type, consent, &set.redo, document);
    if !missing.is_empty() {
        return Ok(Seal::Incomplete(missing));
    }
    // The names beside the zone's, for whoever reviews the document, whatever comes next.
    if let (Some(names), Some((Check::Read(zone, _), _))) = (&claim.names, &check) {
        checks::record_names(&mut tx, account, zone, names).await?;
    }
    if claim.compare_only {
        tx.commit().await?;
        return Ok(match check {
            Some(check) => Seal::Held(check),
            None => Seal::Incomplete(Vec::new()),
        });
    }
    match (document, check) {
        (Standing::Held, Some(check)) => {
            tx.commit().await?;
            return Ok(Seal::Held(check));
        }
        // Verified by the reading alone: the profile's birth date and sex must agree too.
        (Standing::Passed, Some((Check::Read(zone, _), None))) => {
            let mismatches = claim.mismatches(&zone);
            if !mismatches.is_empty() {
                let held = reviews::hold_for_review(&mut tx, account, *zone, mismatches).await?;
                tx.commit().await?;
                return Ok(Seal::Held(held));
            }
        }
        (Standing::Passed | Standing::Retake | Standing::Held, _) => {}
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
pub async fn consent_of(pool: &PgPool, account: Uuid) -> Result<Option<Consent>, sqlx::Error> {
    sqlx::query_as!(
        Consent,
        "SELECT version, accepted_at, sha256, language FROM consents WHERE account_id = $1",
        account
    )
    .fetch_optional(pool)
    .await
}

/// The consent as given.
#[derive(Debug, Clone)]
pub struct Consent {
    pub version: String,
    pub accepted_at: DateTime<Utc>,
    /// Unknown for a consent given before the texts' hashes were kept.
    pub sha256: Option<String>,
    pub language: Option<String>,
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

/// Records a read in the access log: of an image (`capture`), or of the set's status.
#[tracing::instrument(skip_all)]
pub async fn log_access(
    conn: &mut PgConnection,
    capture: Option<Uuid>,
    account: Uuid,
    actor: &str,
    purpose: &str,
) -> Result<(), sqlx::Error> {
    let what = if capture.is_some() { "image" } else { "status" };
    sqlx::query!(
        "INSERT INTO access_log (capture_id, account_id, actor, purpose, what) VALUES ($1, $2, $3, $4, $5)",
        capture,
        account,
        actor,
        purpose,
        what
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct AccessRow {
    pub id: i64,
    pub capture_id: Option<Uuid>,
    pub actor: String,
    pub what: String,
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
        r#"SELECT id, capture_id, actor, what, purpose, read_at FROM access_log
           WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"#,
        account,
        after,
        limit
    )
    .fetch_all(conn)
    .await
}

/// Records that `actor` read `what` of these people (the review queue, the access log), for
/// `purpose`.
pub async fn log_reads(
    conn: &mut PgConnection,
    accounts: &[Uuid],
    actor: &str,
    what: &str,
    purpose: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO access_log (account_id, actor, what, purpose)
           SELECT id, $2, $3, $4 FROM unnest($1::uuid[]) AS id"#,
        accounts,
        actor,
        what,
        purpose
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts steps of a set on its list to redo and takes the set's submission back, with the
/// change recorded; `false` when the set was erased. A person without a set has nothing to
/// reopen (the steps are missing already): the change is recorded all the same.
pub async fn reopen(
    pool: &PgPool,
    account: Uuid,
    steps: &[String],
    change: &Change,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let erased = sqlx::query_scalar!(
        "SELECT erased_at IS NOT NULL AS \"erased!\" FROM capture_sets WHERE account_id = $1 FOR UPDATE",
        account
    )
    .fetch_optional(&mut *tx)
    .await?;
    if erased == Some(true) {
        return Ok(false);
    }
    sqlx::query!(
        r#"UPDATE capture_sets SET submitted_at = NULL,
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

/// Deletes an account's captures, consent and document check in one transaction, leaves its
/// set as a tombstone (nothing but the id and the time), so no later write creates the person
/// again, and its reviews as tombstones (closed, without their reasons);
/// returns the object keys to delete. The tombstone is written first: it takes the set's lock,
/// so an upload in flight either committed before (and is deleted here) or is refused. The
/// access log stays: it records who read the data while it existed; the change is recorded.
#[tracing::instrument(skip_all)]
pub async fn delete_account(
    pool: &PgPool,
    account: Uuid,
    change: &Change,
) -> Result<Vec<String>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"INSERT INTO capture_sets (account_id, erased_at) VALUES ($1, now())
           ON CONFLICT (account_id) DO UPDATE SET erased_at = COALESCE(capture_sets.erased_at, now()),
             document_type = 'id_card', submitted_at = NULL, sealed_at = NULL, redo = '{}'"#,
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
    // The document check (its zone: names, birth date, document number) goes with its
    // photo; reviews stay as tombstones, out of the queue.
    sqlx::query!("DELETE FROM document_checks WHERE account_id = $1", account)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        r#"UPDATE document_reviews SET reason = NULL,
             decision = COALESCE(decision, 'erased'), decided_by = COALESCE(decided_by, 'erasure'),
             decided_at = COALESCE(decided_at, now())
           WHERE account_id = $1"#,
        account
    )
    .execute(&mut *tx)
    .await?;
    examreg_kit::record::record_change(&mut tx, account, change).await?;
    tx.commit().await?;
    Ok(keys)
}

/// A photo's record, as a subject access request shows it.
pub struct StoredRow {
    pub id: Uuid,
    pub kind: CaptureKind,
    pub sha256: Vec<u8>,
    pub size_bytes: i32,
    pub width: i32,
    pub height: i32,
    pub created_at: DateTime<Utc>,
}

/// The consent as given: when and from where.
pub struct ConsentRow {
    pub version: String,
    pub accepted_at: DateTime<Utc>,
    pub client_ip: String,
    pub user_agent: String,
}

/// A change identity asked biometrics to carry out.
pub struct ChangeRow {
    pub id: Uuid,
    pub action: String,
    pub steps: Vec<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Everything biometrics keeps of a person besides the images and the status.
pub struct PersonData {
    pub captures: Vec<StoredRow>,
    pub consent: Option<ConsentRow>,
    pub zone: Option<serde_json::Value>,
    pub reviews: Vec<reviews::ReviewRow>,
    pub changes: Vec<ChangeRow>,
    pub erased_at: Option<DateTime<Utc>>,
}

/// What biometrics keeps of a person, for a subject access request, read in one transaction
/// with the read's record in the access log.
#[tracing::instrument(skip_all)]
pub async fn person_data(
    pool: &PgPool,
    account: Uuid,
    actor: &str,
    purpose: &str,
) -> Result<PersonData, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let captures = sqlx::query_as!(
        StoredRow,
        r#"SELECT id, kind AS "kind: CaptureKind", sha256, size_bytes, width, height, created_at
           FROM captures WHERE account_id = $1 ORDER BY created_at"#,
        account
    )
    .fetch_all(&mut *tx)
    .await?;
    let consent = sqlx::query_as!(
        ConsentRow,
        "SELECT version, accepted_at, client_ip, user_agent FROM consents WHERE account_id = $1",
        account
    )
    .fetch_optional(&mut *tx)
    .await?;
    let zone = sqlx::query_scalar!(
        "SELECT zone FROM document_checks WHERE account_id = $1",
        account
    )
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    let reviews = sqlx::query_as!(
        reviews::ReviewRow,
        r#"SELECT id, account_id, capture_id, mismatches, opened_at, decision, reason, decided_by,
             decided_at
           FROM document_reviews WHERE account_id = $1 ORDER BY id"#,
        account
    )
    .fetch_all(&mut *tx)
    .await?;
    let changes = sqlx::query_as!(
        ChangeRow,
        "SELECT id, action, steps, actor, at FROM changes WHERE account_id = $1 ORDER BY at",
        account
    )
    .fetch_all(&mut *tx)
    .await?;
    let erased_at = sqlx::query_scalar!(
        "SELECT erased_at FROM capture_sets WHERE account_id = $1",
        account
    )
    .fetch_optional(&mut *tx)
    .await?
    .flatten();
    log_reads(&mut tx, &[account], actor, "export", purpose).await?;
    tx.commit().await?;
    Ok(PersonData {
        captures,
        consent,
        zone,
        reviews,
        changes,
        erased_at,
    })
}
