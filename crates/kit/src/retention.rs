//! Retention: what a service deletes by time, and the evidence that it did. A service names its
//! [`Rule`]s (a kind of data and the period after which it goes), runs them in its once-per-
//! cluster sweep, and records every run that deleted something in its [`Log`] — the rule, the
//! time, how many, and for a rule that deletes people's data the [`subject`] hash of each
//! account id — in the transaction of the deletion where the store allows. The log is what
//! `RetentionService.ListRetentionRuns` answers (scope `audit:read`), which every service
//! serves beside its own; `examreg-ctl retention report` reads it from all of them.

use crate::{
    auth::caller,
    errors,
    record::{MAX_PAGE, cut, page_size},
};
use examreg_proto::{
    convert::timestamp,
    retention::v1::{
        self as pb,
        retention_service_server::{RetentionService, RetentionServiceServer},
    },
};
use std::{borrow::Cow, sync::Arc, time::Duration};
use tonic::{Request, Response, Status};

/// A kind of data a service deletes by time.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable name, e.g. `incomplete_registration`.
    pub name: &'static str,
    /// What goes, for people.
    pub data: &'static str,
    /// How long it is kept; `None` when the operator turned the rule off.
    pub period: Option<Duration>,
    /// What the period counts from, e.g. "the last activity".
    pub from: Cow<'static, str>,
}

impl Rule {
    /// The period as the report says it: "30 days after the last activity", or "off".
    pub fn period_text(&self) -> String {
        match self.period {
            None => "off".to_owned(),
            Some(period) => format!("{} after {}", span(period), self.from),
        }
    }
}

/// A period in the largest whole unit that says it exactly.
fn span(period: Duration) -> String {
    let secs = period.as_secs();
    let (n, unit) = match secs {
        s if s >= 86_400 && s % 86_400 == 0 => (s / 86_400, "day"),
        s if s >= 3_600 && s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s >= 60 && s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub use crate::record::subject;

/// One run of a rule that deleted something.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub rule: String,
    pub ran_at: chrono::DateTime<chrono::Utc>,
    pub deleted: i64,
    pub subjects: Vec<String>,
}

/// A `retention_runs` row: id, rule, ran_at, deleted, subjects.
#[cfg(feature = "postgres")]
type RunRow = (i64, String, chrono::DateTime<chrono::Utc>, i64, Vec<String>);

/// Where a service keeps its runs: a `retention_runs` table in its Postgres
/// (`id bigserial, rule text, ran_at timestamptz, deleted bigint, subjects text[]`), or a Redis
/// stream for a service without one.
#[derive(Clone)]
pub enum Log {
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "redis")]
    Redis {
        redis: crate::redis::Redis,
        key: String,
    },
}

/// Records a run in the transaction that deleted (nothing when it deleted nothing), and counts
/// and logs it.
#[cfg(feature = "postgres")]
pub async fn record(
    conn: &mut sqlx::PgConnection,
    rule: &str,
    deleted: u64,
    subjects: &[String],
) -> Result<(), sqlx::Error> {
    if deleted == 0 {
        return Ok(());
    }
    sqlx::query("INSERT INTO retention_runs (rule, deleted, subjects) VALUES ($1, $2, $3)")
        .bind(rule)
        .bind(i64::try_from(deleted).unwrap_or(i64::MAX))
        .bind(subjects)
        .execute(conn)
        .await?;
    counted(rule, deleted);
    Ok(())
}

/// The rule biometrics and profile share for their records: the access log (`read_at`) and
/// the record of the changes identity asked for (`at`). The runs themselves are kept: they are
/// the proof, and hold no one's data.
pub fn records_rule(period: Option<Duration>) -> Rule {
    Rule {
        name: "access_log",
        data: "the access log and the record of changes identity asked for",
        period,
        from: "the entry".into(),
    }
}

/// Runs [`records_rule`]: deletes those records older than `period`, with the evidence.
#[cfg(feature = "postgres")]
pub async fn sweep_records(
    pool: &sqlx::PgPool,
    period: Option<Duration>,
) -> Result<(), sqlx::Error> {
    let Some(period) = period else {
        return Ok(());
    };
    let secs = period.as_secs_f64();
    let mut tx = pool.begin().await?;
    let mut deleted = 0;
    for statement in [
        "DELETE FROM access_log WHERE read_at < now() - make_interval(secs => $1)",
        "DELETE FROM changes WHERE at < now() - make_interval(secs => $1)",
    ] {
        deleted += sqlx::query(statement)
            .bind(secs)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    record(&mut tx, "access_log", deleted, &[]).await?;
    tx.commit().await
}

fn counted(rule: &str, deleted: u64) {
    tracing::info!(rule, deleted, "retention deleted");
    metrics::counter!("retention_deleted_total", "rule" => rule.to_owned()).increment(deleted);
}

impl Log {
    /// Records a run whose deletion is already done (a store without transactions).
    #[cfg(feature = "redis")]
    async fn record_done(&self, rule: &str, deleted: u64) -> Result<(), Status> {
        if deleted == 0 {
            return Ok(());
        }
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(errors::db)?;
                record(&mut conn, rule, deleted, &[])
                    .await
                    .map_err(errors::db)?;
            }
            Self::Redis { redis, key } => {
                let mut redis = redis.clone();
                let _: String = redis::cmd("XADD")
                    .arg(key)
                    .arg("*")
                    .arg("rule")
                    .arg(rule)
                    .arg("deleted")
                    .arg(deleted)
                    .query_async(&mut redis)
                    .await
                    .map_err(|e| errors::unavailable("redis", &e))?;
                counted(rule, deleted);
            }
        }
        Ok(())
    }

    /// A page of runs, newest first, after the run `after` (none: from the newest).
    async fn page(&self, after: &str, limit: i64) -> Result<(Vec<Run>, Option<String>), Status> {
        let invalid = || {
            errors::invalid(
                "invalid_page_token",
                "the page token is not one this listing gave",
                &[("page_token", "invalid")],
            )
        };
        match self {
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => {
                let before = match after.trim() {
                    "" => i64::MAX,
                    token => token.parse().map_err(|_| invalid())?,
                };
                let rows: Vec<RunRow> = sqlx::query_as(
                    "SELECT id, rule, ran_at, deleted, subjects FROM retention_runs
                         WHERE id < $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(before)
                .bind(limit + 1)
                .fetch_all(pool)
                .await
                .map_err(errors::db)?;
                let runs = rows
                    .into_iter()
                    .map(|(id, rule, ran_at, deleted, subjects)| Run {
                        id: id.to_string(),
                        rule,
                        ran_at,
                        deleted,
                        subjects,
                    })
                    .collect();
                Ok(cut(runs, limit, |r: &Run| r.id.clone()))
            }
            #[cfg(feature = "redis")]
            Self::Redis { redis, key } => {
                let end = match after.trim() {
                    "" => "+".to_owned(),
                    token if token.split('-').count() == 2 => format!("({token}"),
                    _ => return Err(invalid()),
                };
                let mut redis = redis.clone();
                let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
                    .arg(key)
                    .arg(&end)
                    .arg("-")
                    .arg("COUNT")
                    .arg(limit + 1)
                    .query_async(&mut redis)
                    .await
                    .map_err(|_| invalid())?;
                let runs = reply
                    .ids
                    .into_iter()
                    .map(|entry| {
                        let millis = entry
                            .id
                            .split('-')
                            .next()
                            .and_then(|ms| ms.parse().ok())
                            .unwrap_or(0);
                        Run {
                            rule: entry.get("rule").unwrap_or_default(),
                            deleted: entry.get("deleted").unwrap_or_default(),
                            ran_at: chrono::DateTime::from_timestamp_millis(millis)
                                .unwrap_or_default(),
                            subjects: Vec::new(),
                            id: entry.id,
                        }
                    })
                    .collect();
                Ok(cut(runs, limit, |r: &Run| r.id.clone()))
            }
        }
    }
}

/// The `RetentionService` of one service: its rules and its log.
#[derive(Clone)]
pub struct Evidence {
    service: &'static str,
    rules: Arc<[Rule]>,
    log: Log,
}

impl Evidence {
    pub fn new(service: &'static str, rules: Vec<Rule>, log: Log) -> Self {
        Self {
            service,
            rules: rules.into(),
            log,
        }
    }

    /// The gRPC service, to add to a service's routes.
    pub fn server(self) -> RetentionServiceServer<Self> {
        RetentionServiceServer::new(self)
    }

    /// Records a run whose deletion is already done (a store without transactions: Redis).
    #[cfg(feature = "redis")]
    pub async fn record_done(&self, rule: &str, deleted: u64) -> Result<(), Status> {
        self.log.record_done(rule, deleted).await
    }
}

/// The gRPC name of the retention service, for health and reflection.
pub const SERVICE_NAME: &str = "examreg.retention.v1.RetentionService";

#[tonic::async_trait]
impl RetentionService for Evidence {
    async fn list_retention_runs(
        &self,
        request: Request<pb::ListRetentionRunsRequest>,
    ) -> Result<Response<pb::ListRetentionRunsResponse>, Status> {
        caller(&request)?.require_scope("audit:read")?;
        let req = request.get_ref();
        let limit = page_size(req.page_size).min(MAX_PAGE);
        let (runs, next) = self.log.page(&req.page_token, limit).await?;
        Ok(Response::new(pb::ListRetentionRunsResponse {
            service: self.service.to_owned(),
            rules: self
                .rules
                .iter()
                .map(|rule| pb::RetentionRule {
                    name: rule.name.to_owned(),
                    data: rule.data.to_owned(),
                    period: rule.period_text(),
                })
                .collect(),
            runs: runs
                .into_iter()
                .map(|run| pb::RetentionRun {
                    run_id: run.id,
                    rule: run.rule,
                    ran_at: Some(timestamp(run.ran_at)),
                    deleted: run.deleted,
                    subjects: run.subjects,
                })
                .collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_in_the_largest_exact_unit() {
        let rule = |secs| Rule {
            name: "r",
            data: "d",
            period: Some(Duration::from_secs(secs)),
            from: "the last activity".into(),
        };
        assert_eq!(
            rule(30 * 86_400).period_text(),
            "30 days after the last activity"
        );
        assert_eq!(rule(86_400).period_text(), "1 day after the last activity");
        assert_eq!(rule(7_200).period_text(), "2 hours after the last activity");
        assert_eq!(rule(90).period_text(), "90 seconds after the last activity");
        let off = Rule {
            period: None,
            ..rule(1)
        };
        assert_eq!(off.period_text(), "off");
        assert_eq!(subject(uuid::Uuid::nil()).len(), 64);
    }
}
