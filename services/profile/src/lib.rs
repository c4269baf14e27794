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
};
use sqlx::postgres::PgPoolOptions;
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;

/// Configuration, from `PROFILE_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub database_url: Secret,
    /// Identity: its keys, and the caller's own account (IIN, citizenship) for the checks.
    pub identity_url: String,
}

impl Config {
    /// Every default, listening on a free loopback port.
    pub fn defaults() -> Self {
        let mut config = Self::from_env(&mut Env::from_map(Default::default()));
        config.addr = "127.0.0.1:0".parse().expect("literal");
        config
    }

    pub fn from_env(env: &mut Env) -> Self {
        Self {
            addr: env.parse("PROFILE_ADDR", "127.0.0.1:50054".parse().expect("literal")),
            database_url: env.secret("PROFILE_DATABASE_URL").unwrap_or_else(|| {
                Secret::new("postgres://examreg:examreg@127.0.0.1:5432/examreg_profile")
            }),
            identity_url: env.string("IDENTITY_URL", "http://127.0.0.1:50051"),
        }
    }
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    service: grpc::Profiles,
    keys: Keys,
}

impl Application {
    pub async fn build(config: Config, keys: Keys) -> anyhow::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .acquire_timeout(Duration::from_secs(5))
            .connect(config.database_url.expose())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let identity =
            examreg_proto::identity::v1::identity_service_client::IdentityServiceClient::new(
                examreg_kit::grpc::channel(&config.identity_url)?,
            );
        let (listener, addr) = examreg_kit::grpc::bind(config.addr).await?;
        Ok(Self {
            listener,
            addr,
            service: grpc::Profiles {
                people: people::People {
                    pool: pool.clone(),
                    identity,
                },
                reference: reference::Reference { pool },
            },
            keys,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let routes = tonic::service::Routes::new(
            examreg_proto::profile::v1::profile_service_server::ProfileServiceServer::from_arc(
                Arc::new(self.service),
            ),
        );
        examreg_kit::grpc::serve(
            self.listener,
            routes,
            &["examreg.profile.v1.ProfileService"],
            self.keys,
            &[],
            shutdown,
        )
        .await?;
        Ok(())
    }
}
