//! What identity deletes by time, run by the once-per-cluster sweep, each run recorded with its
//! evidence (see `examreg_kit::retention`):
//! - `incomplete_registration` — a registration never completed (never reopened either) with
//!   no activity (created, a login, a refresh) for the period: erased at every service, through
//!   the same recorded change as an operator's erasure (the audit log names `retention`).
//! - `exam_cycle` — once the date the operator set for the end of the exam cycle has passed,
//!   every account created before it: erased the same way.
//! - `sessions` — the rows of sessions (each login's address and browser) ended longer ago than
//!   the period.
//! - `audit_log` — entries of the audit log and finished changes older than the period.
//!
//! The runs themselves are kept: they are the proof, and hold no one's data.
//! - `feed_events` — the change feed's events older than its retention.

use crate::store::{self, Acting, StoreError};
use chrono::{DateTime, Utc};
use examreg_kit::retention::{Rule, record, subject};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

/// The periods, as configured (`None`: the rule is off).
#[derive(Debug, Clone)]
pub struct Retention {
    /// `IDENTITY_RETAIN_INCOMPLETE_DAYS` (30).
    pub incomplete: Option<Duration>,
    /// `IDENTITY_RETAIN_SESSIONS_DAYS` (30).
    pub sessions: Option<Duration>,
    /// `IDENTITY_RETAIN_AUDIT_DAYS` (1825).
    pub audit: Option<Duration>,
    /// `IDENTITY_CYCLE_ENDS_AT` (unset).
    pub cycle_end: Option<DateTime<Utc>>,
    /// `IDENTITY_FEED_RETENTION_SECS` (30 days).
    pub feed: Duration,
}

/// People erased by a rule in one run, at most.
const BATCH: i64 = 200;

impl Retention {
    /// The rules as the report shows them.
    pub fn rules(&self) -> Vec<Rule> {
        vec![
            Rule {
                name: "incomplete_registration",
                data: "registrations never completed (erased at every service)",
                period: self.incomplete,
                from: "the last activity".into(),
            },
            Rule {
                name: "exam_cycle",
                data: "every account created before the end of the exam cycle (erased at every service)",
                period: self.cycle_end.map(|_| Duration::ZERO),
                from: match self.cycle_end {
                    Some(end) => format!("the end of the exam cycle, {}", end.date_naive()).into(),
                    None => "the end of the exam cycle".into(),
                },
            },
            Rule {
                name: "sessions",
                data: "sessions (each login's address and browser)",
                period: self.sessions,
                from: "the session ended".into(),
            },
            Rule {
                name: "audit_log",
                data: "identity's audit log and its record of changes",
                period: self.audit,
                from: "the entry".into(),
            },
            Rule {
                name: "feed_events",
                data: "the change feed's events (account ids and times)",
                period: Some(self.feed),
                from: "the event".into(),
            },
        ]
    }

    /// Runs every rule once; what each deleted is recorded with it. `session_lifetime` bounds a
    /// session never logged out; `keep` is how long an ended session stays on the list of
    /// revocations.
    pub async fn sweep(
        &self,
        pool: &PgPool,
        session_lifetime: Duration,
        keep: Duration,
    ) -> Result<(), StoreError> {
        if let Some(period) = self.incomplete {
            let idle = idle_incomplete(pool, period).await?;
            let reason = format!(
                "retention: incomplete_registration, {} days after the last activity",
                period.as_secs() / 86_400
            );
            erase(pool, &idle, "incomplete_registration", &reason, keep).await?;
        }
        if let Some(end) = self.cycle_end.filter(|end| *end <= Utc::now()) {
            let before = created_before(pool, end).await?;
            let reason = format!("retention: exam_cycle ended {}", end.date_naive());
            erase(pool, &before, "exam_cycle", &reason, keep).await?;
        }
        if let Some(period) = self.sessions {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query!(
                r#"DELETE FROM sessions
                   WHERE COALESCE(revoked_at, created_at + make_interval(secs => $1))
                         < now() - make_interval(secs => $2)"#,
                session_lifetime.as_secs_f64(),
                period.as_secs_f64()
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            record(&mut tx, "sessions", deleted, &[]).await?;
            tx.commit().await?;
        }
        if let Some(period) = self.audit {
            let mut tx = pool.begin().await?;
            let secs = period.as_secs_f64();
            let deleted = sqlx::query!(
                "DELETE FROM audit_log WHERE at < now() - make_interval(secs => $1)",
                secs
            )
            .execute(&mut *tx)
            .await?
            .rows_affected()
                + sqlx::query!(
                    "DELETE FROM changes WHERE finished_at < now() - make_interval(secs => $1)",
                    secs
                )
                .execute(&mut *tx)
                .await?
                .rows_affected();
            record(&mut tx, "audit_log", deleted, &[]).await?;
            tx.commit().await?;
        }
        let events = store::sweep_events(pool, self.feed).await?;
        let mut conn = pool.acquire().await?;
        record(&mut conn, "feed_events", events, &[]).await?;
        Ok(())
    }
}

/// Registrations never completed nor reopened, and not being erased, whose last activity (the
/// account made, a login, a refresh) is older than `period`; the oldest first, a batch.
async fn idle_incomplete(pool: &PgPool, period: Duration) -> Result<Vec<Uuid>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT a.id FROM accounts a
           WHERE a.status = 'active'
             AND NOT EXISTS (SELECT 1 FROM changes c WHERE c.account_id = a.id)
             AND GREATEST(a.created_at,
                   (SELECT max(s.created_at) FROM sessions s WHERE s.account_id = a.id),
                   (SELECT max(r.issued_at) FROM refresh_tokens r
                      JOIN sessions s ON s.id = r.session_id WHERE s.account_id = a.id))
                 < now() - make_interval(secs => $1)
           ORDER BY a.created_at LIMIT $2"#,
        period.as_secs_f64(),
        BATCH
    )
    .fetch_all(pool)
    .await?)
}

/// Accounts created before `end` and not being erased; a batch.
async fn created_before(pool: &PgPool, end: DateTime<Utc>) -> Result<Vec<Uuid>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT a.id FROM accounts a
           WHERE a.created_at < $1
             AND NOT EXISTS (SELECT 1 FROM changes c
                             WHERE c.account_id = a.id AND c.action = 'erase')
           ORDER BY a.created_at LIMIT $2"#,
        end,
        BATCH
    )
    .fetch_all(pool)
    .await?)
}

/// Records the erasure of each account (carried out at the other services by identity's
/// finisher within seconds) and the run's evidence, in one transaction.
async fn erase(
    pool: &PgPool,
    accounts: &[Uuid],
    rule: &str,
    reason: &str,
    keep: Duration,
) -> Result<(), StoreError> {
    if accounts.is_empty() {
        return Ok(());
    }
    let acting = Acting {
        actor: "retention",
        reason,
    };
    let mut tx = pool.begin().await?;
    let mut erased = Vec::new();
    for account in accounts {
        if store::record_erasure_in(&mut tx, *account, &acting, keep)
            .await?
            .is_some()
        {
            erased.push(subject(*account));
        }
    }
    let count = u64::try_from(erased.len()).unwrap_or(u64::MAX);
    record(&mut tx, rule, count, &erased).await?;
    tx.commit().await?;
    Ok(())
}
