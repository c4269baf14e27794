//! Background work that runs once per cluster, not once per replica.
//!
//! A periodic job (a sweeper) has a row in its service's `leases` table saying when it last
//! ran: the replica that moves `ran_at` to now, which it may only once the period has passed
//! since, runs the job; every other replica finds the period not over and skips. The period
//! is the asking replica's own, so a shorter one configured takes effect at once. Each replica asks every [`Lease::poll`] (a tenth of the period, at most a
//! minute), so the job runs once per period (never twice within one, by the database's
//! clock) however many replicas there are, and a replica that stops leaves it to the next
//! one that asks. A replica that dies during a run has still moved the row: the job waits for
//! the next period, which the jobs allow (each is idempotent and catches up).
//!
//! The row is one statement, no session state and no advisory lock, so it works unchanged
//! behind PgBouncer in transaction mode. The table (every service that has a sweeper creates
//! it in a migration):
//!
//! ```sql
//! CREATE TABLE leases (
//!     name   text PRIMARY KEY,
//!     ran_at timestamptz NOT NULL,
//!     holder text NOT NULL,
//!     runs   bigint NOT NULL DEFAULT 1
//! );
//! ```

use sqlx::PgPool;
use std::time::Duration;

/// One periodic job's lease.
#[derive(Debug, Clone)]
pub struct Lease {
    pool: PgPool,
    name: &'static str,
    every: Duration,
    holder: String,
}

impl Lease {
    /// The lease `name` (one per job) on `every`. The row names its last holder by this
    /// replica's host name (the pod's, on Kubernetes) and a random tag of this process's lease.
    pub fn new(pool: PgPool, name: &'static str, every: Duration) -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Self {
            pool,
            name,
            every,
            holder: format!("{host}/{}", &tag[..8]),
        }
    }

    /// The name this replica writes in the row when it runs the job.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How often a replica asks.
    pub fn poll(&self) -> Duration {
        (self.every / 10).clamp(Duration::from_millis(100), Duration::from_secs(60))
    }

    /// True when this replica takes the job's next run: the period since the last run by any
    /// replica has passed, and the row now says this replica ran it.
    pub async fn claim(&self) -> Result<bool, sqlx::Error> {
        let claimed: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, ran_at, holder) VALUES ($1, now(), $3) \
             ON CONFLICT (name) DO UPDATE \
                 SET ran_at = now(), holder = EXCLUDED.holder, runs = leases.runs + 1 \
                 WHERE leases.ran_at <= now() - make_interval(secs => $2) \
             RETURNING runs",
        )
        .bind(self.name)
        .bind(self.every.as_secs_f64())
        .bind(&self.holder)
        .fetch_optional(&self.pool)
        .await?;
        Ok(claimed.is_some())
    }

    /// Runs `task` whenever this replica claims the lease, until `stop` resolves (a run in
    /// progress finishes first). A failed claim (the database away) is logged and asked again
    /// at the next poll.
    pub async fn run<F, Fut>(self, stop: impl Future<Output = ()>, mut task: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        tokio::pin!(stop);
        loop {
            match self.claim().await {
                Ok(true) => {
                    metrics::counter!("background_runs_total", "job" => self.name).increment(1);
                    task().await;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(job = self.name, error = %e, "lease not claimed; will ask again");
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(self.poll()) => {}
            }
        }
    }
}
