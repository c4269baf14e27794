//! The biometrics service: the applicant's selfie and identity-document photos. `captures`
//! is what it does, `checks` decides whether a photo is usable, `envelope` encrypts it,
//! `objects` stores it in S3, `store` keeps the records, `error` is every failure it reports,
//! `grpc` is the API.
#![forbid(unsafe_code)]

pub mod captures;
pub mod checks;
pub mod document;
pub mod envelope;
pub mod error;
pub mod grpc;
pub mod objects;
pub mod ocr;
pub mod reviews;
pub mod store;
pub mod worker;

use examreg_kit::{
    auth::Keys,
    config::{Env, Secret},
    service::{self, Service},
};
use examreg_proto::biometrics::v1::biometrics_service_server::BiometricsServiceServer;
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tonic::service::Routes;

/// Configuration, from `BIOMETRICS_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// The operators' port: `/metrics` and `/healthz` over plain HTTP.
    pub ops_addr: SocketAddr,
    /// TLS: the certificate it serves, the CA bundle its calls verify (`EXAMREG_TLS_*`).
    pub tls: examreg_kit::tls::Settings,
    pub database_url: Secret,
    /// The pool's size and timeouts (`BIOMETRICS_DATABASE_POOL_SIZE`, …).
    pub database_pool: examreg_kit::service::Pool,
    pub s3: objects::S3Config,
    /// `id:hex64,…`, the first current (see `envelope`).
    pub master_keys: Option<envelope::MasterKeys>,
    pub thresholds: checks::Thresholds,
    /// Photos checked at once, and waiting for a turn before more are refused.
    pub check_concurrency: usize,
    pub check_queue: usize,
    /// Photos read at once (downloads and previews), and waiting for a turn.
    pub read_concurrency: usize,
    pub read_queue: usize,
    pub identity_url: String,
    /// Its own client at identity (`BIOMETRICS_CLIENT_ID`, `BIOMETRICS_CLIENT_SECRET`), for the
    /// revocation feed.
    pub client: examreg_kit::client::Credentials,
    /// The document check's reader and its workers.
    pub documents: worker::Settings,
    /// How often the sweeper runs (once per cluster, whatever the replicas).
    pub sweep_every: Duration,
    /// How long decided reviews are kept (`None`: forever).
    pub retain_reviews: Option<Duration>,
    /// How long the access log and the record of changes are kept.
    pub retain_records: Option<Duration>,
}

impl Config {
    /// Every default, listening on a free loopback port, without secrets.
    pub fn defaults() -> Self {
        examreg_kit::config::defaults(Self::from_env, "BIOMETRICS_ADDR")
    }

    pub fn from_env(env: &mut Env) -> Self {
        let master = env.required_secret("BIOMETRICS_MASTER_KEYS");
        let master_keys = if master.expose().is_empty() {
            None
        } else {
            envelope::MasterKeys::parse(master.expose())
                .map_err(|e| env.invalid("BIOMETRICS_MASTER_KEYS", e.to_string()))
                .ok()
        };
        let defaults = checks::Thresholds::default();
        let thresholds = checks::Thresholds {
            max_bytes: env.parse("BIOMETRICS_MAX_BYTES", defaults.max_bytes),
            max_decoded_bytes: env
                .parse("BIOMETRICS_MAX_DECODED_BYTES", defaults.max_decoded_bytes),
            min_sharpness: env.parse("BIOMETRICS_MIN_SHARPNESS", defaults.min_sharpness),
            min_document_sharpness: env.parse(
                "BIOMETRICS_MIN_DOCUMENT_SHARPNESS",
                defaults.min_document_sharpness,
            ),
            max_document_brightness: env.parse(
                "BIOMETRICS_MAX_DOCUMENT_BRIGHTNESS",
                defaults.max_document_brightness,
            ),
            max_document_glare: env
                .parse("BIOMETRICS_MAX_DOCUMENT_GLARE", defaults.max_document_glare),
            min_document_face_share: env.parse(
                "BIOMETRICS_MIN_DOCUMENT_FACE_SHARE",
                defaults.min_document_face_share,
            ),
            min_brightness: env.parse("BIOMETRICS_MIN_BRIGHTNESS", defaults.min_brightness),
            max_brightness: env.parse("BIOMETRICS_MAX_BRIGHTNESS", defaults.max_brightness),
            min_face_share: env.parse("BIOMETRICS_MIN_FACE_SHARE", defaults.min_face_share),
            ..defaults
        };
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            tls: examreg_kit::tls::Settings::from_env(env),
            ops_addr: env.parse(
                "BIOMETRICS_OPS_ADDR",
                "127.0.0.1:9053".parse().expect("literal"),
            ),
            addr: env.parse(
                "BIOMETRICS_ADDR",
                "127.0.0.1:50053".parse().expect("literal"),
            ),
            database_pool: examreg_kit::service::Pool::from_env(env, "BIOMETRICS", 1),
            sweep_every: env.seconds("BIOMETRICS_SWEEP_INTERVAL_SECS", 600),
            retain_reviews: env.days("BIOMETRICS_RETAIN_REVIEWS_DAYS", 365),
            retain_records: env.days("BIOMETRICS_RETAIN_ACCESS_LOG_DAYS", 1825),
            database_url: env.secret("BIOMETRICS_DATABASE_URL").unwrap_or_else(|| {
                Secret::new("postgres://examreg:examreg@127.0.0.1:5432/examreg_biometrics")
            }),
            s3: objects::S3Config {
                endpoint: env.string("BIOMETRICS_S3_ENDPOINT", "http://127.0.0.1:3900"),
                region: env.string("BIOMETRICS_S3_REGION", "garage"),
                bucket: env.string("BIOMETRICS_S3_BUCKET", "examreg-biometrics"),
                prefix: env.string("BIOMETRICS_S3_PREFIX", "captures/"),
                access_key_id: env
                    .secret("BIOMETRICS_S3_ACCESS_KEY_ID")
                    .map(|id| id.expose().to_owned())
                    .unwrap_or_default(),
                secret_access_key: env
                    .secret("BIOMETRICS_S3_SECRET_ACCESS_KEY")
                    .unwrap_or_else(|| Secret::new("")),
            },
            master_keys,
            thresholds,
            check_concurrency: env.parse("BIOMETRICS_CHECK_CONCURRENCY", cpus),
            check_queue: env.parse("BIOMETRICS_CHECK_QUEUE", cpus * 8),
            read_concurrency: env.parse("BIOMETRICS_READ_CONCURRENCY", cpus),
            read_queue: env.parse("BIOMETRICS_READ_QUEUE", cpus * 16),
            identity_url: env.service_url("IDENTITY_URL", "http://127.0.0.1:50051"),
            client: examreg_kit::client::Credentials::from_env(env, "BIOMETRICS", "biometrics"),
            documents: worker::Settings {
                model: env
                    .string(
                        "BIOMETRICS_MRZ_MODEL",
                        "/usr/share/examreg/ppocrv4-rec.onnx",
                    )
                    .into(),
                workers: env.parse("BIOMETRICS_MRZ_WORKERS", cpus),
                valid_until: {
                    env.required_in_production("BIOMETRICS_DOCUMENTS_VALID_UNTIL");
                    let raw = env.string("BIOMETRICS_DOCUMENTS_VALID_UNTIL", "");
                    if raw.is_empty() {
                        None
                    } else {
                        raw.parse::<chrono::NaiveDate>()
                            .map_err(|e| {
                                env.invalid("BIOMETRICS_DOCUMENTS_VALID_UNTIL", e.to_string())
                            })
                            .ok()
                    }
                },
            },
        }
    }
}

/// The biometrics service's start-up.
pub struct Application;

impl Application {
    /// Connects to Postgres (applying the migrations), prepares the photo checks and binds the
    /// listener; the sweeper runs while it serves.
    pub async fn build(config: Config, keys: Keys) -> anyhow::Result<Service> {
        let service::Postgres { pool, sessions } = service::postgres(
            &config.database_url,
            &sqlx::migrate!("./migrations"),
            config.database_pool.clone(),
        )
        .await?;
        let sweeps =
            examreg_kit::lease::Lease::new(pool.clone(), "biometrics.sweep", config.sweep_every);
        let retention = Retention {
            reviews: config.retain_reviews,
            records: config.retain_records,
        };
        let evidence = examreg_kit::retention::Evidence::new(
            "biometrics",
            retention.rules(),
            examreg_kit::retention::Log::Postgres(pool.clone()),
        );
        let captures = Arc::new(captures::Captures {
            pool,
            objects: objects::Objects::new(&config.s3),
            keys: config
                .master_keys
                .ok_or_else(|| anyhow::anyhow!("BIOMETRICS_MASTER_KEYS is required"))?,
            thresholds: Arc::new(config.thresholds),
            gate: examreg_kit::work::Gate::new(
                "photo_checks",
                config.check_concurrency,
                config.check_queue,
                Duration::from_secs(1),
            ),
            reads: examreg_kit::work::Gate::new(
                "photo_reads",
                config.read_concurrency,
                config.read_queue,
                Duration::from_secs(1),
            ),
        });
        let routes = Routes::new(
            BiometricsServiceServer::new(grpc::Biometrics {
                captures: captures.clone(),
            })
            .max_decoding_message_size(4 * 1024 * 1024),
        )
        .add_service(evidence.server());
        let names = &[
            "examreg.biometrics.v1.BiometricsService",
            examreg_kit::retention::SERVICE_NAME,
        ];
        let readers = captures.clone();
        Ok(
            Service::bind(config.addr, config.ops_addr, routes, names, keys)
                .await?
                .tls(&config.tls)?
                .task(|stop| sweeper(sweeps, captures, retention, stop))
                .task(|stop| worker::run(readers, sessions, config.documents, stop)),
        )
    }
}

/// What biometrics deletes by time: decided reviews (`reviews`), and its records
/// (`access_log`). Photos, consents and document checks go with the registration (identity's
/// rules erase it).
struct Retention {
    reviews: Option<Duration>,
    records: Option<Duration>,
}

impl Retention {
    fn rules(&self) -> Vec<examreg_kit::retention::Rule> {
        vec![
            examreg_kit::retention::Rule {
                name: "reviews",
                data: "document reviews once decided (the fields that disagreed, the decision, its reason)",
                period: self.reviews,
                from: "the decision".into(),
            },
            examreg_kit::retention::records_rule(self.records),
        ]
    }

    async fn sweep(&self, pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
        if let Some(period) = self.reviews {
            reviews::sweep(pool, period).await?;
        }
        examreg_kit::retention::sweep_records(pool, self.records).await
    }
}

/// Removes unreferenced objects (left by a failure between writing an object and its record,
/// or by a failed delete) and runs the retention's rules, once per
/// `BIOMETRICS_SWEEP_INTERVAL_SECS` across the replicas: one replica lists the bucket, not each.
async fn sweeper(
    lease: examreg_kit::lease::Lease,
    captures: Arc<captures::Captures>,
    retention: Retention,
    stop: impl Future<Output = ()>,
) {
    lease
        .run(stop, || async {
            match captures.sweep(Duration::from_secs(600)).await {
                Ok(0) => {}
                Ok(swept) => tracing::info!(swept, "unreferenced objects deleted"),
                Err(e) => tracing::warn!(error = %e, "sweep failed; will retry"),
            }
            if let Err(e) = retention.sweep(&captures.pool).await {
                tracing::warn!(error = %e, "retention sweep failed; will retry");
            }
        })
        .await;
}
