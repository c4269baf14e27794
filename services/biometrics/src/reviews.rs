//! The review queue: the checks a person decides (the data did not agree with the zone, or the
//! reading kept failing), opened in the transaction that finds the disagreement, listed and
//! decided by the document reviewers' clients.

use crate::document::{Check, Decision};
use examreg_domain::mrz::{Mismatch, Verdict, Zone};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Turns a verified check into one for a person to review (the profile disagrees with the
/// zone), in the seal's transaction; the check as it now stands.
pub async fn hold_for_review(
    tx: &mut PgConnection,
    account: Uuid,
    zone: Zone,
    mismatches: Vec<Mismatch>,
) -> Result<(Check, Option<Decision>), sqlx::Error> {
    let codes: Vec<String> = mismatches.iter().map(|m| m.code().to_owned()).collect();
    let capture = sqlx::query_scalar!(
        "UPDATE document_checks SET outcome = 'review', mismatches = $2
         WHERE account_id = $1 RETURNING capture_id",
        account,
        &codes
    )
    .fetch_one(&mut *tx)
    .await?;
    open_review(tx, account, capture, &codes).await?;
    Ok((
        Check::Read(Box::new(zone), Verdict::Review(mismatches)),
        None,
    ))
}

/// Opens a review of `capture` (once: an open one stays).
pub async fn open_review(
    tx: &mut PgConnection,
    account: Uuid,
    capture: Uuid,
    mismatches: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO document_reviews (account_id, capture_id, mismatches) VALUES ($1, $2, $3)
           ON CONFLICT (account_id) WHERE decision IS NULL DO NOTHING"#,
        account,
        capture,
        mismatches
    )
    .execute(&mut *tx)
    .await?;
    metrics::counter!("biometrics_document_reviews_opened_total").increment(1);
    Ok(())
}

/// A review of a document check.
#[derive(Debug, Clone)]
pub struct ReviewRow {
    pub id: i64,
    pub account_id: Uuid,
    pub capture_id: Uuid,
    pub mismatches: Vec<String>,
    pub opened_at: chrono::DateTime<chrono::Utc>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Reviews after `after`, oldest first; open ones only unless `decided`.
pub async fn list(
    conn: &mut sqlx::PgConnection,
    decided: bool,
    after: i64,
    limit: i64,
) -> Result<Vec<ReviewRow>, sqlx::Error> {
    sqlx::query_as!(
        ReviewRow,
        r#"SELECT id, account_id, capture_id, mismatches, opened_at, decision, reason, decided_by,
             decided_at
           FROM document_reviews WHERE id > $1 AND ($2 OR decision IS NULL)
           ORDER BY id LIMIT $3"#,
        after,
        decided,
        limit
    )
    .fetch_all(conn)
    .await
}

/// What GetReview shows: the review, the zone read, and the profile's names beside it once
/// recorded (`SURNAME<<GIVEN` as a zone would print them, and whether they agree).
pub struct Reviewed {
    pub row: ReviewRow,
    pub zone: Option<Zone>,
    pub names: Option<(String, bool)>,
}

/// One review, and the zone its check read if that photo is still current.
pub async fn review(pool: &PgPool, id: i64) -> Result<Option<Reviewed>, sqlx::Error> {
    let Some(row) = sqlx::query_as!(
        ReviewRow,
        r#"SELECT id, account_id, capture_id, mismatches, opened_at, decision, reason, decided_by,
             decided_at
           FROM document_reviews WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let check = sqlx::query!(
        "SELECT zone, claimed_names, names_agree FROM document_checks WHERE capture_id = $1",
        row.capture_id
    )
    .fetch_optional(pool)
    .await?;
    let (zone, names) = match check {
        Some(check) => (
            check.zone.and_then(|z| serde_json::from_value(z).ok()),
            check.claimed_names.zip(check.names_agree),
        ),
        None => (None, None),
    };
    Ok(Some(Reviewed { row, zone, names }))
}

/// What deciding a review came to.
pub enum Decided {
    Done(ReviewRow),
    NotFound,
    /// Decided before, or superseded by a new photo.
    AlreadyDecided,
}

/// Decides an open review and, if its photo is still the current one, the check the applicant
/// sees, in one transaction.
pub async fn decide(
    pool: &PgPool,
    id: i64,
    decision: &str,
    reason: &str,
    actor: &str,
) -> Result<Decided, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(open) = sqlx::query!(
        "SELECT capture_id, decision FROM document_reviews WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Decided::NotFound);
    };
    if open.decision.is_some() {
        return Ok(Decided::AlreadyDecided);
    }
    let row = sqlx::query_as!(
        ReviewRow,
        r#"UPDATE document_reviews SET decision = $2, reason = $3, decided_by = $4, decided_at = now()
           WHERE id = $1
           RETURNING id, account_id, capture_id, mismatches, opened_at, decision, reason,
             decided_by, decided_at"#,
        id,
        decision,
        reason,
        actor
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE document_checks SET decision = $2, decision_reason = $3 WHERE capture_id = $1",
        open.capture_id,
        decision,
        reason
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("biometrics_document_reviews_decided_total", "decision" => decision.to_owned())
        .increment(1);
    Ok(Decided::Done(row))
}

/// Deletes the reviews decided longer ago than `period`, with the retention's evidence.
#[tracing::instrument(skip_all)]
pub async fn sweep(pool: &PgPool, period: std::time::Duration) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let deleted = sqlx::query!(
        "DELETE FROM document_reviews WHERE decided_at < now() - make_interval(secs => $1)",
        period.as_secs_f64()
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    examreg_kit::retention::record(&mut tx, "reviews", deleted, &[]).await?;
    tx.commit().await
}

/// How many reviews are open and the oldest one's age in seconds (the cluster's queue: the
/// same from every replica).
pub async fn open_depth(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "open!",
             COALESCE(EXTRACT(EPOCH FROM now() - min(opened_at)), 0)::float8 AS "oldest!"
           FROM document_reviews WHERE decision IS NULL"#
    )
    .fetch_one(pool)
    .await?;
    Ok((row.open, row.oldest))
}
