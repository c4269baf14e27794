//! The document check queue's rows (`migrations/0004_document_checks.sql`): queued in the
//! transaction that makes a zone-bearing photo current, claimed by `worker` with `SKIP LOCKED`,
//! finished with what the reading said.

use crate::{
    document::{Check, ClaimedNames, Decision, zone_of},
    reviews,
};
use examreg_domain::{
    DocumentType,
    mrz::{Expected, Mismatch, Verdict, Zone},
};
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// How long a claimed check is left to its worker before another may take it.
const LEASE: Duration = Duration::from_secs(120);

/// Called in the transaction that makes `capture` current: a zone-bearing photo (re)queues the
/// account's check; another photo that replaced the one a check read ends that check.
pub async fn enqueue(
    tx: &mut PgConnection,
    c: &crate::store::NewCapture<'_>,
    holder: Option<&Expected>,
) -> Result<(), sqlx::Error> {
    let (account, capture, kind) = (c.account_id, c.id, c.kind);
    let document_type = sqlx::query_scalar!(
        r#"SELECT document_type AS "document_type: DocumentType" FROM capture_sets WHERE account_id = $1"#,
        account
    )
    .fetch_one(&mut *tx)
    .await?;
    match zone_of(document_type, kind) {
        Some(format) => {
            sqlx::query!(
                r#"INSERT INTO document_checks (account_id, capture_id, format, expected_iin,
                     expected_passport_number, expected_citizenship)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (account_id) DO UPDATE SET capture_id = EXCLUDED.capture_id,
                     format = EXCLUDED.format, state = 'pending', attempts = 0, not_before = now(),
                     zone = NULL, error = NULL, read_ms = NULL, queued_at = now(), read_at = NULL,
                     expected_iin = EXCLUDED.expected_iin,
                     expected_passport_number = EXCLUDED.expected_passport_number,
                     expected_citizenship = EXCLUDED.expected_citizenship,
                     outcome = NULL, mismatches = '{}', decision = NULL, decision_reason = NULL,
                     claimed_names = NULL, names_agree = NULL"#,
                account,
                capture,
                format.as_str(),
                holder
                    .and_then(|h| h.iin.as_ref())
                    .map(|i| i.as_str().to_owned()),
                holder.and_then(|h| h.passport_number.clone()),
                holder.and_then(|h| h.citizenship.clone()),
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                r#"UPDATE document_reviews SET decision = 'superseded', decided_by = 'biometrics',
                     decided_at = now(), reason = 'a new photo of the document'
                   WHERE account_id = $1 AND decision IS NULL"#,
                account
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!("SELECT pg_notify('document_checks', '')")
                .execute(&mut *tx)
                .await?;
        }
        None => {
            sqlx::query!("DELETE FROM document_checks WHERE capture_id = $1", capture)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Records the profile's names beside the zone's (printed as a zone would print them, and
/// whether they agree), in the seal's transaction. A soft signal: nothing is held for it.
pub async fn record_names(
    tx: &mut PgConnection,
    account: Uuid,
    zone: &Zone,
    names: &ClaimedNames,
) -> Result<(), sqlx::Error> {
    use examreg_domain::mrz::names;
    let (surname, given) = names::claimed(&names.surname, &names.given_name);
    let agree = names::agree(
        zone.names_field(),
        &names.surname,
        &names.given_name,
        &names.patronymic,
    );
    sqlx::query!(
        "UPDATE document_checks SET claimed_names = $2, names_agree = $3 WHERE account_id = $1",
        account,
        format!("{surname}<<{given}").replace(' ', "<"),
        agree
    )
    .execute(&mut *tx)
    .await?;
    metrics::counter!("biometrics_document_names_compared_total", "agree" => agree.to_string())
        .increment(1);
    Ok(())
}

/// The check of the account's current zone-bearing photo, if it has one, and the decision on
/// its review, if any.
pub async fn check_of(
    db: impl sqlx::PgExecutor<'_>,
    account: Uuid,
) -> Result<Option<(Check, Option<Decision>)>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT state, zone, error, outcome, mismatches, decision, decision_reason
         FROM document_checks WHERE account_id = $1",
        account
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| {
        let decision = row.decision.clone().map(|decision| Decision {
            decision,
            reason: row.decision_reason.clone().unwrap_or_default(),
        });
        (
            check_from(
                row.state.as_str(),
                row.zone,
                row.error,
                row.outcome,
                &row.mismatches,
            ),
            decision,
        )
    }))
}

fn check_from(
    state: &str,
    zone: Option<serde_json::Value>,
    error: Option<String>,
    outcome: Option<String>,
    mismatches: &[String],
) -> Check {
    match state {
        "read" => match zone.and_then(|z| serde_json::from_value::<Zone>(z).ok()) {
            Some(zone) => {
                let verdict = match outcome.as_deref() {
                    Some("verified") => Verdict::Verified,
                    Some("expired") => Verdict::Expired,
                    Some(_) | None => Verdict::Review(
                        mismatches
                            .iter()
                            .filter_map(|m| serde_json::from_value(serde_json::json!(m)).ok())
                            .collect(),
                    ),
                };
                Check::Read(Box::new(zone), verdict)
            }
            None => Check::Failed("zone_unparsable".into()),
        },
        "unreadable" => Check::Unreadable(error.unwrap_or_default()),
        "failed" => Check::Failed(error.unwrap_or_default()),
        _ => Check::Pending,
    }
}

/// A check a worker has claimed: what to read and what the account says it should say.
pub struct Claimed {
    pub account_id: Uuid,
    pub capture_id: Uuid,
    pub format: String,
    pub attempts: i32,
    expected_iin: Option<String>,
    expected_passport_number: Option<String>,
    expected_citizenship: Option<String>,
}

impl Claimed {
    pub fn expected(&self) -> Expected {
        Expected {
            iin: self
                .expected_iin
                .as_deref()
                .and_then(|i| examreg_domain::Iin::parse(i).ok()),
            passport_number: self.expected_passport_number.clone(),
            citizenship: self.expected_citizenship.clone(),
            birth_date: None,
            sex: None,
        }
    }
}

/// Takes the oldest pending check that no worker holds.
pub async fn claim(pool: &PgPool) -> Result<Option<Claimed>, sqlx::Error> {
    sqlx::query_as!(
        Claimed,
        r#"UPDATE document_checks SET attempts = attempts + 1,
             not_before = now() + make_interval(secs => $1)
           WHERE account_id = (
             SELECT account_id FROM document_checks
             WHERE state = 'pending' AND not_before <= now()
             ORDER BY not_before LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING account_id, capture_id, format, attempts, expected_iin,
             expected_passport_number, expected_citizenship"#,
        LEASE.as_secs_f64()
    )
    .fetch_optional(pool)
    .await
}

/// Records what the reading came to, unless the photo was replaced meanwhile (the new one's
/// check is pending and is read next).
pub async fn finish(
    pool: &PgPool,
    claimed: &Claimed,
    state: &str,
    read: Option<(&Zone, &Verdict)>,
    error: Option<&str>,
    read_ms: Option<i32>,
) -> Result<(), sqlx::Error> {
    let (outcome, mismatches): (Option<&str>, Vec<String>) = match read.map(|(_, v)| v) {
        Some(Verdict::Verified) => (Some("verified"), Vec::new()),
        Some(Verdict::Expired) => (Some("expired"), Vec::new()),
        Some(Verdict::Review(m)) => (
            Some("review"),
            m.iter().map(|m: &Mismatch| m.code().to_owned()).collect(),
        ),
        None => (None, Vec::new()),
    };
    let mut tx = pool.begin().await?;
    let current = sqlx::query!(
        r#"UPDATE document_checks SET state = $3, zone = $4, error = $5, read_ms = $6, read_at = now(),
             outcome = $7, mismatches = $8
           WHERE account_id = $1 AND capture_id = $2"#,
        claimed.account_id,
        claimed.capture_id,
        state,
        read.map(|(z, _)| serde_json::to_value(z).unwrap_or_default()),
        error,
        read_ms,
        outcome,
        &mismatches
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    // A disagreement, or a reading that kept failing, waits for a person.
    if current && (outcome == Some("review") || state == "failed") {
        reviews::open_review(&mut tx, claimed.account_id, claimed.capture_id, &mismatches).await?;
    }
    tx.commit().await
}

/// Puts a check whose reading failed for a passing reason back in the queue, after a pause
/// that grows with each attempt.
pub async fn retry_later(pool: &PgPool, claimed: &Claimed) -> Result<(), sqlx::Error> {
    let pause = 2f64.powi(claimed.attempts.min(8)) * 5.0;
    sqlx::query!(
        r#"UPDATE document_checks SET not_before = now() + make_interval(secs => $3)
           WHERE account_id = $1 AND capture_id = $2"#,
        claimed.account_id,
        claimed.capture_id,
        pause
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Hands claimed checks back to the queue (the attempt is not counted).
pub async fn release(pool: &PgPool, accounts: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE document_checks SET not_before = now(), attempts = GREATEST(attempts - 1, 0)
         WHERE account_id = ANY($1) AND state = 'pending'",
        accounts
    )
    .execute(pool)
    .await?;
    sqlx::query!("SELECT pg_notify('document_checks', '')")
        .execute(pool)
        .await?;
    Ok(())
}

/// The queue's depth and its oldest check's age in seconds (the cluster's queue: the same from
/// every replica).
pub async fn queue_depth(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "pending!",
             COALESCE(EXTRACT(EPOCH FROM now() - min(queued_at)), 0)::float8 AS "oldest!"
           FROM document_checks WHERE state = 'pending'"#
    )
    .fetch_one(pool)
    .await?;
    Ok((row.pending, row.oldest))
}
