//! Background work once per cluster: two replicas asking for the same job's lease run it once
//! per period between them, never twice within one, and when one stops the other carries on.

use examreg_kit::lease::Lease;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

/// One replica's runs: when each started by the database's clock (the row's `ran_at`).
type Runs = Arc<Mutex<Vec<(usize, f64)>>>;

fn replica(
    number: usize,
    pool: sqlx::PgPool,
    every: Duration,
    runs: Runs,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let lease = Lease::new(pool.clone(), "test.job", every);
    let task = tokio::spawn(lease.run(
        async move {
            let _ = stopped.await;
        },
        move || {
            let (pool, runs) = (pool.clone(), runs.clone());
            async move {
                let ran_at: f64 = sqlx::query_scalar(
                    "SELECT extract(epoch FROM ran_at)::float8 FROM leases WHERE name = 'test.job'",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                runs.lock().unwrap().push((number, ran_at));
            }
        },
    ));
    (stop, task)
}

#[tokio::test]
async fn two_replicas_run_a_job_once_per_period_and_one_carries_on_when_the_other_stops() {
    let app = crate::common::spawn().await;
    let every = Duration::from_millis(400);
    let runs: Runs = Arc::default();
    let pool = || async { sqlx::PgPool::connect(app.database.expose()).await.unwrap() };
    let (stop_a, a) = replica(0, pool().await, every, runs.clone());
    let (_stop_b, _b) = replica(1, pool().await, every, runs.clone());
    assert_eq!(
        Lease::new(pool().await, "test.job", every).poll(),
        Duration::from_millis(100),
        "each replica asks ten times a period"
    );

    // Both ask ten times a period, for about ten periods.
    tokio::time::sleep(every * 10).await;
    let both = runs.lock().unwrap().clone();
    assert!(both.len() >= 3, "the job ran: {both:?}");
    // By the database's clock, no two runs closer than the period, whoever ran them.
    for pair in both.windows(2) {
        assert!(
            pair[1].1 - pair[0].1 >= every.as_secs_f64(),
            "two runs within one period: {both:?}"
        );
    }
    let span = both.last().unwrap().1 - both[0].1;
    assert!(
        both.len() as f64 <= span / every.as_secs_f64() + 1.0,
        "more runs than periods: {both:?}"
    );

    // Replica 0 stops; replica 1 runs every period from then on.
    stop_a.send(()).unwrap();
    a.await.unwrap();
    let before = runs.lock().unwrap().len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let after = runs.lock().unwrap()[before..].to_vec();
        if after.len() >= 3 {
            assert!(
                after.iter().all(|(replica, _)| *replica == 1),
                "the stopped replica ran: {after:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other replica did not carry on: {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The row says which replica ran last and how often the job ran in all.
    let (holder, total): (String, i64) =
        sqlx::query_as("SELECT holder, runs FROM leases WHERE name = 'test.job'")
            .fetch_one(&pool().await)
            .await
            .unwrap();
    assert!(!holder.is_empty());
    assert!(total >= i64::try_from(before + 3).unwrap());
}

#[tokio::test]
async fn the_identity_sweeper_runs_once_per_period_across_replicas() {
    let app = crate::common::spawn_with(|c| c.sweep_every = Duration::from_millis(500)).await;
    let _replica = app.replica().await;
    let pool = sqlx::PgPool::connect(app.database.expose()).await.unwrap();
    let runs = || async {
        sqlx::query_as::<_, (i64, f64)>(
            "SELECT runs, extract(epoch FROM now() - ran_at)::float8 FROM leases \
             WHERE name = 'identity.sweep'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap()
    };
    let start: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now())::float8")
        .fetch_one(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (count, _) = runs().await.expect("the sweeper ran");
    let end: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now())::float8")
        .fetch_one(&pool)
        .await
        .unwrap();
    // Two replicas, each asking every 100 ms: still at most one run per half second (plus
    // the first, at the first start, before this test's clock began).
    assert!(count >= 2, "the sweeper ran {count} times");
    assert!(
        count as f64 <= (end - start) / 0.5 + 2.0,
        "{count} runs in {:.1} s",
        end - start
    );
}
