//! The identity service: accounts, credentials, sessions, login throttling, password reset,
//! service clients and the keys that sign every token of the suite. `accounts` and
//! `sessions` are what it does, `record` is what services read of it (audited), `feed` is the
//! change feed of registrations, `revocations` tells every verifier which sessions ended,
//! `throttle` bounds login guesses, `password` hashes and judges passwords, `store` keeps the
//! data, `error` is every failure it reports, `grpc` is the API.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod changes;
mod channel;
pub mod error;
pub mod feed;
pub mod grpc;
pub mod identity;
pub mod password;
pub mod record;
pub mod retention;
pub mod revocations;
pub mod sessions;
pub mod store;
pub mod streams;
pub mod throttle;

use examreg_kit::{
    auth::Keys,
    config::{Env, Secret},
    service::{self, Service},
    tokens::{KeySet, SigningKey},
};
use examreg_proto::{
    biometrics::v1::biometrics_service_client::BiometricsServiceClient,
    identity::v1::identity_service_server::IdentityServiceServer,
    profile::v1::profile_service_client::ProfileServiceClient,
    verification::v1::verification_service_client::VerificationServiceClient,
};
use std::{future::Future, net::SocketAddr, time::Duration};
use tonic::service::Routes;

/// A service client allowed to obtain service tokens.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ServiceClient {
    pub id: String,
    /// Hex SHA-256 of the client's secret (secrets are long and random, so a fast hash is
    /// enough, and config never holds the secret itself).
    pub secret_sha256: String,
    pub scopes: Vec<String>,
    /// A staff client (the support desk's, the reviewers', the officer's tools): its tokens
    /// say so, and every call with them must name the person it is made for
    /// (`x-examreg-on-behalf-of`); the audit logs record `client/person`.
    #[serde(default)]
    pub staff: bool,
}

/// Login throttling, from config.
#[derive(Debug, Clone)]
pub struct Throttle {
    /// Failed logins per login identifier before a lockout.
    pub login_budget: i32,
    /// Failed logins per client IP before a lockout (schools share one address: keep it high).
    pub ip_budget: i32,
    /// The window the failures are counted in.
    pub window: Duration,
    /// First lockout; each further one doubles, up to `lockout_max`.
    pub lockout_base: Duration,
    pub lockout_max: Duration,
}

/// Configuration, from `IDENTITY_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// The operators' port: `/metrics` and `/healthz` over plain HTTP.
    pub ops_addr: SocketAddr,
    /// TLS: the certificate it serves, the CA bundle its calls verify (`EXAMREG_TLS_*`).
    pub tls: examreg_kit::tls::Settings,
    pub database_url: Secret,
    /// The pool's size and timeouts (`IDENTITY_DATABASE_POOL_SIZE`, …).
    pub database_pool: examreg_kit::service::Pool,
    /// The key that signs every token (the first of `IDENTITY_SIGNING_KEY`'s PEM blocks).
    pub signing_key: Option<SigningKey>,
    /// Keys published beside it and still accepted, for a rotation: the next key before it
    /// signs, or the last one while its tokens live (the rest of the blocks).
    pub published_keys: Vec<SigningKey>,
    /// Public keys of verification that sign email proofs.
    pub proof_keys: KeySet,
    pub service_clients: Vec<ServiceClient>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long after its first use a refresh token may be presented again and get a fresh
    /// pair of the same session instead of ending it (0: never). Two requests that find the
    /// access token expired together both refresh with the same token.
    pub refresh_grace: Duration,
    /// How long a session lasts from its login, however often it is refreshed.
    pub session_lifetime: Duration,
    pub service_token_ttl: Duration,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub hash_concurrency: usize,
    /// Hashes waiting for a turn before more are refused (RESOURCE_EXHAUSTED, retry hint).
    pub hash_queue: usize,
    pub throttle: Throttle,
    /// How long the change feed keeps its events.
    pub feed_retention: Duration,
    /// What is deleted by time, and when (the feed's retention is `feed_retention`).
    pub retain_incomplete: Option<Duration>,
    pub retain_sessions: Option<Duration>,
    pub retain_audit: Option<Duration>,
    /// When the exam cycle ends: every account created before it is erased once it passed.
    pub cycle_end: Option<chrono::DateTime<chrono::Utc>>,
    /// How often the sweeper runs (once per cluster, whatever the replicas).
    pub sweep_every: Duration,
    /// Streams (`WatchRevocations`, `WatchRegistrations`) one replica serves at once, in all.
    pub streams_max: usize,
    /// … and of one service client.
    pub streams_per_client: usize,
    /// Where biometrics, profile and verification answer, for the changes of a registration
    /// they carry out (reopening, erasure).
    pub biometrics_url: String,
    pub profile_url: String,
    pub verification_url: String,
}

impl Config {
    /// Every default, listening on a free loopback port, without secrets: for tests and tools,
    /// which set the secrets they need.
    pub fn defaults() -> Self {
        examreg_kit::config::defaults(Self::from_env, "IDENTITY_ADDR")
    }

    pub fn from_env(env: &mut Env) -> Self {
        let proof_pem = env.required_secret("IDENTITY_PROOF_PUBLIC_KEY");
        let proof_keys = if proof_pem.expose().is_empty() {
            KeySet::default()
        } else {
            KeySet::from_public_pems(proof_pem.expose()).unwrap_or_else(|e| {
                env.invalid("IDENTITY_PROOF_PUBLIC_KEY", e.to_string());
                KeySet::default()
            })
        };
        let clients_json = env
            .secret("IDENTITY_SERVICE_CLIENTS")
            .unwrap_or_else(|| Secret::new("[]"));
        let service_clients: Vec<ServiceClient> = serde_json::from_str(clients_json.expose())
            .unwrap_or_else(|e| {
                env.invalid(
                    "IDENTITY_SERVICE_CLIENTS",
                    format!("not a JSON list of {{id, secret_sha256, scopes}}: {e}"),
                );
                Vec::new()
            });
        if service_clients
            .iter()
            .any(|c| c.id.is_empty() || c.id.contains('/'))
        {
            env.invalid(
                "IDENTITY_SERVICE_CLIENTS",
                "a client id is not empty and has no '/' (the logs write client/person)",
            );
        }
        if service_clients
            .iter()
            .any(|c| c.secret_sha256.len() != 64 || hex::decode(&c.secret_sha256).is_err())
        {
            env.invalid(
                "IDENTITY_SERVICE_CLIENTS",
                "secret_sha256 must be 64 hex digits",
            );
        }
        let signing_keys = examreg_kit::tokens::signing_keys_from_env(env, "IDENTITY_SIGNING_KEY");
        let argon2_memory_kib = env.parse("IDENTITY_ARGON2_MEMORY_KIB", 19_456);
        let argon2_iterations = env.parse("IDENTITY_ARGON2_ITERATIONS", 2);
        if argon2_memory_kib < 19_456 || argon2_iterations < 2 {
            env.invalid(
                "IDENTITY_ARGON2_MEMORY_KIB",
                "argon2id below OWASP's minimum (19456 KiB, 2 iterations)",
            );
        }
        let refresh_grace = env.seconds("IDENTITY_REFRESH_REUSE_GRACE_SECS", 30);
        if refresh_grace > Duration::from_secs(60) {
            env.invalid(
                "IDENTITY_REFRESH_REUSE_GRACE_SECS",
                "at most 60: a reuse later than a minute is a copied token's, not a race's",
            );
        }
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        let cycle_end = match env.string("IDENTITY_CYCLE_ENDS_AT", "").trim() {
            "" => None,
            date => match chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                Ok(day) => day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
                Err(_) => {
                    env.invalid(
                        "IDENTITY_CYCLE_ENDS_AT",
                        "a date, YYYY-MM-DD (UTC midnight)",
                    );
                    None
                }
            },
        };
        Self {
            tls: examreg_kit::tls::Settings::from_env(env),
            ops_addr: env.parse(
                "IDENTITY_OPS_ADDR",
                "127.0.0.1:9051".parse().expect("literal"),
            ),
            addr: env.parse("IDENTITY_ADDR", "127.0.0.1:50051".parse().expect("literal")),
            database_pool: examreg_kit::service::Pool::from_env(env, "IDENTITY", 2),
            database_url: env.secret("IDENTITY_DATABASE_URL").unwrap_or_else(|| {
                Secret::new("postgres://examreg:examreg@127.0.0.1:5432/examreg_identity")
            }),
            signing_key: signing_keys.first().cloned(),
            published_keys: signing_keys.iter().skip(1).cloned().collect(),
            proof_keys,
            service_clients,
            access_ttl: env.seconds("IDENTITY_ACCESS_TTL_SECS", 900),
            refresh_ttl: env.seconds("IDENTITY_REFRESH_TTL_SECS", 30 * 24 * 3600),
            refresh_grace,
            session_lifetime: env.seconds("IDENTITY_SESSION_LIFETIME_SECS", 30 * 24 * 3600),
            service_token_ttl: env.seconds("IDENTITY_SERVICE_TOKEN_TTL_SECS", 900),
            argon2_memory_kib,
            argon2_iterations,
            argon2_parallelism: env.parse("IDENTITY_ARGON2_PARALLELISM", 1),
            hash_concurrency: env.parse("IDENTITY_HASH_CONCURRENCY", cpus),
            hash_queue: env.parse("IDENTITY_HASH_QUEUE", cpus * 32),
            throttle: Throttle {
                login_budget: env.parse("IDENTITY_LOGIN_FAILURE_BUDGET", 5),
                ip_budget: env.parse("IDENTITY_IP_FAILURE_BUDGET", 100),
                window: env.seconds("IDENTITY_LOGIN_WINDOW_SECS", 900),
                lockout_base: env.seconds("IDENTITY_LOCKOUT_BASE_SECS", 60),
                lockout_max: env.seconds("IDENTITY_LOCKOUT_MAX_SECS", 3600),
            },
            feed_retention: env.seconds("IDENTITY_FEED_RETENTION_SECS", 30 * 24 * 3600),
            retain_incomplete: env.days("IDENTITY_RETAIN_INCOMPLETE_DAYS", 30),
            retain_sessions: env.days("IDENTITY_RETAIN_SESSIONS_DAYS", 30),
            retain_audit: env.days("IDENTITY_RETAIN_AUDIT_DAYS", 1825),
            cycle_end,
            sweep_every: env.seconds("IDENTITY_SWEEP_INTERVAL_SECS", 3600),
            streams_max: env.parse("IDENTITY_STREAMS_MAX", 512),
            streams_per_client: env.parse("IDENTITY_STREAMS_PER_CLIENT", 64),
            biometrics_url: env.service_url("BIOMETRICS_URL", "http://127.0.0.1:50053"),
            profile_url: env.service_url("PROFILE_URL", "http://127.0.0.1:50054"),
            verification_url: env.service_url("VERIFICATION_URL", "http://127.0.0.1:50052"),
        }
    }
}

/// RPCs that need no token: the token endpoints themselves. (`WatchRevocations` needs a
/// service token with `revocations:watch`: a stream costs a task and a query, so only our own
/// verifiers may hold one.)
pub const PUBLIC_PATHS: &[&str] = &[
    "/examreg.identity.v1.IdentityService/IssueServiceToken",
    "/examreg.identity.v1.IdentityService/GetJwks",
];

/// The identity service's start-up.
pub struct Application;

impl Application {
    /// Connects to Postgres (applying the migrations), prepares the hasher and binds the
    /// listener; the sweeper runs while it serves. It checks tokens with its own keys.
    pub async fn build(config: Config) -> anyhow::Result<Service> {
        let service::Postgres { pool, sessions } = service::postgres(
            &config.database_url,
            &sqlx::migrate!("./migrations"),
            config.database_pool.clone(),
        )
        .await?;
        let signing_key = config
            .signing_key
            .clone()
            .ok_or_else(|| anyhow::anyhow!("IDENTITY_SIGNING_KEY is required"))?;
        let hasher = password::Hasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            config.hash_concurrency,
            config.hash_queue,
        )?;
        let keys = Keys::new(KeySet::from_signing_keys(
            std::iter::once(&signing_key).chain(&config.published_keys),
        ));
        let window = config.throttle.window;
        let retention = retention::Retention {
            incomplete: config.retain_incomplete,
            sessions: config.retain_sessions,
            audit: config.retain_audit,
            cycle_end: config.cycle_end,
            feed: config.feed_retention,
        };
        let evidence = examreg_kit::retention::Evidence::new(
            "identity",
            retention.rules(),
            examreg_kit::retention::Log::Postgres(pool.clone()),
        );
        let sweeps =
            examreg_kit::lease::Lease::new(pool.clone(), "identity.sweep", config.sweep_every);
        let draining = examreg_kit::tasks::Trigger::default();
        let feed = revocations::Feed::new(pool.clone(), draining.clone());
        let registrations = feed::Feed::new(pool.clone(), draining.clone());
        let identity = identity::Identity {
            pool: pool.clone(),
            hasher,
            signing_key,
            published_keys: config.published_keys,
            proof_keys: config.proof_keys,
            clients: config.service_clients,
            access_ttl: config.access_ttl,
            refresh_ttl: config.refresh_ttl,
            refresh_grace: config.refresh_grace,
            session_lifetime: config.session_lifetime,
            service_token_ttl: config.service_token_ttl,
            throttle: config.throttle,
            revocations: feed.clone(),
            feed: registrations.clone(),
            streams: streams::Streams::new(config.streams_max, config.streams_per_client),
            biometrics: BiometricsServiceClient::new(examreg_kit::channel::lazy(
                &config.biometrics_url,
                &config.tls,
            )?),
            profile: ProfileServiceClient::new(examreg_kit::channel::lazy(
                &config.profile_url,
                &config.tls,
            )?),
            verification: VerificationServiceClient::new(examreg_kit::channel::lazy(
                &config.verification_url,
                &config.tls,
            )?),
        };
        let identity = std::sync::Arc::new(identity);
        let routes = Routes::new(IdentityServiceServer::new(grpc::Api {
            identity: identity.clone(),
        }))
        .add_service(evidence.server());
        let names = &[
            "examreg.identity.v1.IdentityService",
            examreg_kit::retention::SERVICE_NAME,
        ];
        Ok(
            Service::bind(config.addr, config.ops_addr, routes, names, keys.clone())
                .await?
                .tls(&config.tls)?
                .public(PUBLIC_PATHS)
                .draining(draining)
                .task({
                    let sessions = sessions.clone();
                    move |stop| revocations::listen(feed, sessions, keys, stop)
                })
                .task({
                    let registrations = registrations.clone();
                    move |stop| feed::listen(registrations, sessions, stop)
                })
                .task(move |stop| feed::poll_head(registrations, stop))
                .task({
                    let identity = identity.clone();
                    move |stop| sweeper(sweeps, identity, window, retention, stop)
                })
                .task(move |stop| finisher(identity, stop)),
        )
    }
}

/// Removes expired proofs, old refresh tokens and stale throttle rows, and runs the retention's
/// rules, once per `IDENTITY_SWEEP_INTERVAL_SECS` across the replicas (the lease; the deletes
/// are idempotent, so a run repeated after a crash does no harm).
async fn sweeper(
    lease: examreg_kit::lease::Lease,
    identity: std::sync::Arc<identity::Identity>,
    window: Duration,
    retention: retention::Retention,
    stop: impl Future<Output = ()>,
) {
    lease
        .run(stop, || async {
            let pool = &identity.pool;
            match store::sweep(pool, window.as_secs_f64()).await {
                Ok(swept) => tracing::info!(?swept, "swept expired rows"),
                Err(e) => tracing::warn!(error = %e, "sweep failed; will retry"),
            }
            let kept = identity.revocation_kept();
            if let Err(e) = retention.sweep(pool, identity.session_lifetime, kept).await {
                tracing::warn!(error = %e, "retention sweep failed; will retry");
            }
        })
        .await;
}

/// Carries out, every few seconds, the changes of registrations left unfinished because an
/// owner was down (see [`changes`]).
async fn finisher(identity: std::sync::Arc<identity::Identity>, stop: impl Future<Output = ()>) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = every.tick() => match identity.finish_unfinished().await {
                Ok(0) => {}
                Ok(finished) => tracing::info!(finished, "unfinished changes carried out"),
                Err(e) => tracing::warn!(error = %e, "unfinished changes not read; will retry"),
            },
        }
    }
}
