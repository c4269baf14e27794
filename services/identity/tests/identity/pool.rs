//! The pool as configured: its size, how long a call waits for a connection, how long a
//! statement may run. A table locked by someone else (an operator's long transaction) makes
//! the calls fail `unavailable` within the timeouts, not hang, and changes nothing.

use examreg_kit::{config::Secret, service::Pool};
use examreg_proto::identity::v1 as pb;
use examreg_testkit as tk;
use sqlx::Connection;
use std::time::{Duration, Instant};
use tonic::Code;

/// A support desk's read of an account that does not exist: one query on the pool.
fn read_unknown_account(
    app: &crate::common::TestApp,
) -> impl Future<Output = Result<tonic::Response<pb::GetAccountResponse>, tonic::Status>> + use<> {
    let token = tk::service_token(&app.key, "support-desk", &["accounts:read"]);
    let mut client = app.client.clone();
    let request = examreg_kit::auth::with_bearer(
        pb::GetAccountRequest {
            account_id: uuid::Uuid::now_v7().to_string(),
            purpose: "pool test".into(),
        },
        &token,
    )
    .unwrap();
    async move { client.get_account(request).await }
}

/// Identity with a pool of `size` for its calls (`application_name=calls`) and its two
/// listeners on a direct URL (`application_name=sessions`): two URLs to the same database,
/// told apart in `pg_stat_activity`.
async fn with_named_pools(size: u32) -> crate::common::TestApp {
    crate::common::spawn_with(|config| {
        let url = config.database_url.expose().to_owned();
        let join = if url.contains('?') { '&' } else { '?' };
        config.database_url = Secret::new(format!("{url}{join}application_name=calls"));
        config.database_pool = Pool {
            size,
            direct_url: Some(Secret::new(format!("{url}{join}application_name=sessions"))),
            held: 2,
            ..Pool::default()
        };
    })
    .await
}

#[tokio::test]
async fn a_locked_table_fails_calls_within_the_timeouts_and_the_pool_keeps_its_size() {
    let app = crate::common::spawn_with(|config| {
        // The two listeners hold two of the three: one is left for calls.
        config.database_pool = Pool {
            size: 3,
            acquire_timeout: Duration::from_millis(300),
            statement_timeout: Duration::from_millis(500),
            ..Pool::default()
        };
    })
    .await;
    let read = || read_unknown_account(&app);
    assert_eq!(read().await.unwrap_err().code(), Code::NotFound);

    let mut lock = sqlx::PgConnection::connect(app.database.expose())
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut lock).await.unwrap();
    sqlx::query("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        .execute(&mut lock)
        .await
        .unwrap();
    // One call takes the connection and waits on the lock until the statement timeout; the
    // other waits for the connection until the acquire timeout. Both are told `unavailable`.
    let started = Instant::now();
    let (first, second) = tokio::join!(read(), read());
    let elapsed = started.elapsed();
    for answer in [first, second] {
        let status = answer.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    // The service never held more than its pool.
    let connections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
           AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut lock)
    .await
    .unwrap();
    assert!(connections <= 3, "{connections} connections");
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    // The lock gone, the same call is answered again.
    assert_eq!(read().await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn the_listeners_and_the_migrations_use_the_direct_url_and_the_calls_the_pool() {
    // The pooled URL stands for PgBouncer in transaction mode, the direct one for Postgres.
    let app = with_named_pools(1).await;
    // A pool of one serves the calls: the listeners hold none of it.
    assert_eq!(
        read_unknown_account(&app).await.unwrap_err().code(),
        Code::NotFound
    );
    // The database's own URL (without the application name the test gave the pool).
    let base = app.database.expose().split('?').next().unwrap().to_owned();
    let database = base.rsplit('/').next().unwrap().to_owned();
    let mut watcher = sqlx::PgConnection::connect(&base).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listening: Vec<(String, String)> = sqlx::query_as(
            "SELECT application_name, query FROM pg_stat_activity \
             WHERE datname = $1 AND query LIKE 'LISTEN%'",
        )
        .bind(&database)
        .fetch_all(&mut watcher)
        .await
        .unwrap();
        if listening.len() == 2 {
            assert!(
                listening.iter().all(|(name, _)| name == "sessions"),
                "{listening:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the listeners: {listening:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'calls'",
    )
    .bind(&database)
    .fetch_one(&mut watcher)
    .await
    .unwrap();
    assert_eq!(calls, 1, "the pool of one");
}

#[tokio::test]
async fn a_connection_dropped_while_idle_is_replaced_before_a_call_uses_it() {
    // The calls' pool apart from the listeners', so that only the calls' connections drop.
    let app = with_named_pools(4).await;
    let read = || read_unknown_account(&app);
    // Several calls at once: several connections in the pool.
    let (a, b, c) = tokio::join!(read(), read(), read());
    for answer in [a, b, c] {
        assert_eq!(answer.unwrap_err().code(), Code::NotFound);
    }
    // Postgres drops every connection of the calls' pool while it is idle (a restart, a
    // failover, a firewall's timeout would too).
    let base = app.database.expose().split('?').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'calls'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(
        !dropped.is_empty() && dropped.iter().all(|d| *d),
        "{dropped:?}"
    );
    // Idle for longer than the pool hands a connection out unchecked: each one is pinged,
    // found dead and replaced, and no call sees it.
    tokio::time::sleep(examreg_kit::service::PING_IF_IDLE_FOR + Duration::from_secs(1)).await;
    let (a, b, c) = tokio::join!(read(), read(), read());
    for answer in [a, b, c] {
        assert_eq!(answer.unwrap_err().code(), Code::NotFound);
    }
}

#[tokio::test]
async fn postgres_is_reached_over_verified_tls_and_another_ca_is_refused() {
    let url = tk::database_url("postgres");
    assert!(url.contains("sslmode=verify-full"), "the tests' URL: {url}");
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let (ssl,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(ssl, "the connection is encrypted");
    // Trusting the system's public CAs only, the stack's certificate is refused.
    let (server, options) = url.split_once('?').unwrap();
    let untrusted = options
        .split('&')
        .map(|option| match option.split_once('=') {
            Some(("sslrootcert", _)) => "sslrootcert=/etc/ssl/certs/ca-certificates.crt",
            _ => option,
        })
        .collect::<Vec<_>>()
        .join("&");
    let refused = sqlx::PgConnection::connect(&format!("{server}?{untrusted}")).await;
    assert!(
        refused.is_err(),
        "a server the CA bundle does not vouch for"
    );
}
