//! The profile service: the applicant's personal data and education, and the directories they
//! are chosen from. `people` and `reference` are what it does, `person` validates personal
//! data, `directory` and `store` keep the data, `error` is every failure it reports, `grpc` is
//! the API.
#![forbid(unsafe_code)]

pub mod directory;
pub mod error;
pub mod grpc;
pub mod people;
pub mod person;
pub mod reference;
pub mod store;

use examreg_kit::{
    auth::Keys,
    config::{Env, Secret},
    service::{self, Service},
};
use examreg_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    profile::v1::profile_service_server::ProfileServiceServer,
};
use std::{future::Future, net::SocketAddr, time::Duration};
use tonic::service::Routes;

/// Configuration, from `PROFILE_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// The operators' port: `/metrics` and `/healthz` over plain HTTP.
    pub ops_addr: SocketAddr,
    /// TLS: the certificate it serves, the CA bundle its calls verify (`EXAMREG_TLS_*`).
    pub tls: examreg_kit::tls::Settings,
    pub database_url: Secret,
    /// The pool's size and timeouts (`PROFILE_DATABASE_POOL_SIZE`, …).
    pub database_pool: examreg_kit::service::Pool,
    /// Identity: its keys, and the caller's own account (IIN, citizenship) for the checks.
    pub identity_url: String,
    /// Its own client at identity (`PROFILE_CLIENT_ID`, `PROFILE_CLIENT_SECRET`), for the
    /// revocation feed.
    pub client: examreg_kit::client::Credentials,
    /// The least count a statistic shows for a group (smaller ones are merged or withheld).
    pub stats_min_count: i64,
    /// How often the retention's sweep runs (once per cluster).
    pub sweep_every: Duration,
    /// How long the access log and the record of changes are kept (`None`: forever).
    pub retain_records: Option<Duration>,
}

impl Config {
    /// Every default, listening on a free loopback port.
    pub fn defaults() -> Self {
        examreg_kit::config::defaults(Self::from_env, "PROFILE_ADDR")
    }

    pub fn from_env(env: &mut Env) -> Self {
        Self {
            tls: examreg_kit::tls::Settings::from_env(env),
            ops_addr: env.parse(
                "PROFILE_OPS_ADDR",
                "127.0.0.1:9054".parse().expect("literal"),
            ),
            addr: env.parse("PROFILE_ADDR", "127.0.0.1:50054".parse().expect("literal")),
            database_pool: examreg_kit::service::Pool::from_env(env, "PROFILE", 0),
            database_url: env.secret("PROFILE_DATABASE_URL").unwrap_or_else(|| {
                Secret::new("postgres://examreg:examreg@127.0.0.1:5432/examreg_profile")
            }),
            identity_url: env.service_url("IDENTITY_URL", "http://127.0.0.1:50051"),
            client: examreg_kit::client::Credentials::from_env(env, "PROFILE", "profile"),
            stats_min_count: env.parse("PROFILE_STATS_MIN_COUNT", 5),
            sweep_every: env.seconds("PROFILE_SWEEP_INTERVAL_SECS", 3600),
            retain_records: env.days("PROFILE_RETAIN_ACCESS_LOG_DAYS", 1825),
        }
    }
}

/// The profile service's start-up.
pub struct Application;

impl Application {
    /// Connects to Postgres (applying the migrations) and binds the listener; the retention's
    /// sweep runs while it serves. Profiles themselves go with the registration (identity's
    /// rules erase it); profile deletes its records by time.
    pub async fn build(config: Config, keys: Keys) -> anyhow::Result<Service> {
        let service::Postgres { pool, .. } = service::postgres(
            &config.database_url,
            &sqlx::migrate!("./migrations"),
            config.database_pool.clone(),
        )
        .await?;
        let identity = IdentityServiceClient::new(examreg_kit::channel::lazy(
            &config.identity_url,
            &config.tls,
        )?);
        let retain = config.retain_records;
        let evidence = examreg_kit::retention::Evidence::new(
            "profile",
            vec![examreg_kit::retention::records_rule(retain)],
            examreg_kit::retention::Log::Postgres(pool.clone()),
        );
        let sweeps =
            examreg_kit::lease::Lease::new(pool.clone(), "profile.sweep", config.sweep_every);
        let profiles = grpc::Profiles {
            people: people::People {
                pool: pool.clone(),
                identity,
            },
            reference: reference::Reference { pool: pool.clone() },
            stats_min_count: config.stats_min_count.max(1),
        };
        let routes =
            Routes::new(ProfileServiceServer::new(profiles)).add_service(evidence.server());
        Ok(Service::bind(
            config.addr,
            config.ops_addr,
            routes,
            &[
                "examreg.profile.v1.ProfileService",
                examreg_kit::retention::SERVICE_NAME,
            ],
            keys,
        )
        .await?
        .tls(&config.tls)?
        .task(move |stop| sweeper(sweeps, pool, retain, stop)))
    }
}

/// Runs the retention's rule once per `PROFILE_SWEEP_INTERVAL_SECS` across the replicas.
async fn sweeper(
    lease: examreg_kit::lease::Lease,
    pool: sqlx::PgPool,
    retain: Option<Duration>,
    stop: impl Future<Output = ()>,
) {
    lease
        .run(stop, || async {
            if let Err(e) = examreg_kit::retention::sweep_records(&pool, retain).await {
                tracing::warn!(error = %e, "retention sweep failed; will retry");
            }
        })
        .await;
}
