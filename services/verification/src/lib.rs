//! The verification service: proves that an applicant can read a mailbox. See `challenges`
//! for what it does, `store` for the code rules, `outbox` for mail delivery, `error` for every
//! failure it reports and `grpc` for the API.
#![forbid(unsafe_code)]

pub mod challenges;
pub mod error;
pub mod grpc;
pub mod letters;
pub mod outbox;
pub mod store;

use examreg_kit::{
    auth::Keys,
    config::{Env, Secret},
    service::Service,
    tokens::SigningKey,
};
use examreg_proto::verification::v1::verification_service_server::VerificationServiceServer;
use hmac::{Hmac, Mac};
use lettre::{AsyncSmtpTransport, Tokio1Executor, message::Mailbox};
use sha2::Sha256;
use std::{net::SocketAddr, time::Duration};
use tonic::service::Routes;

/// Configuration, from `VERIFICATION_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// The operators' port: `/metrics` and `/healthz` over plain HTTP.
    pub ops_addr: SocketAddr,
    /// TLS: the certificate it serves, the CA bundle its calls verify (`EXAMREG_TLS_*`).
    pub tls: examreg_kit::tls::Settings,
    /// May carry the ACL user's password: from `VERIFICATION_REDIS_URL` or `_FILE`.
    pub redis_url: Secret,
    /// Prefix of every Redis key (tests use one each).
    pub key_prefix: String,
    /// May carry the relay's login: from `VERIFICATION_SMTP_URL` or `_FILE`.
    pub smtp_url: Secret,
    pub mail_from: Mailbox,
    /// Keys the code MACs and (derived) the outbox seal.
    pub code_key: examreg_kit::config::Secret,
    pub proof_key: Option<SigningKey>,
    pub proof_ttl: Duration,
    pub limits: store::Limits,
    /// How letters are retried, given up on and taken over.
    pub outbox: outbox::Policy,
    /// Where to fetch the JWK Set that authenticates callers.
    pub identity_url: String,
    /// Its own client at identity (`VERIFICATION_CLIENT_ID`, `VERIFICATION_CLIENT_SECRET`), for the
    /// revocation feed.
    pub client: examreg_kit::client::Credentials,
    /// How applicants reach the support desk, as the letters name it.
    pub support_contact: String,
    /// Where the letters' templates are read from (see `letters`); the compiled-in ones when
    /// unset.
    pub letters_dir: Option<std::path::PathBuf>,
    /// How often the retention's sweep runs (once per cluster).
    pub sweep_every: Duration,
    /// How long dead letters are kept (`None`: until an operator deals with them).
    pub retain_dead_letters: Option<Duration>,
}

impl Config {
    /// Every default, listening on a free loopback port, without secrets: for tests and tools,
    /// which set the secrets they need.
    pub fn defaults() -> Self {
        examreg_kit::config::defaults(Self::from_env, "VERIFICATION_ADDR")
    }

    pub fn from_env(env: &mut Env) -> Self {
        let code_key = env.required_secret("VERIFICATION_CODE_KEY");
        if !code_key.expose().is_empty() && code_key.expose().len() < 32 {
            env.invalid(
                "VERIFICATION_CODE_KEY",
                "must be at least 32 characters of random",
            );
        }
        env.required_in_production("VERIFICATION_MAIL_FROM");
        env.required_in_production("VERIFICATION_SUPPORT_CONTACT");
        let from = env.string("VERIFICATION_MAIL_FROM", "ИСО <noreply@examreg.local>");
        let mail_from = from.parse().unwrap_or_else(|e| {
            env.invalid("VERIFICATION_MAIL_FROM", format!("not a mailbox: {e}"));
            "noreply@examreg.local"
                .parse()
                .expect("a literal mailbox parses")
        });
        let limits = store::Limits {
            code_ttl: env.seconds("VERIFICATION_CODE_TTL_SECS", 600),
            resend_cooldown: env.seconds("VERIFICATION_RESEND_COOLDOWN_SECS", 60),
            max_attempts: env.parse("VERIFICATION_MAX_ATTEMPTS", 5),
            email_hourly: env.parse("VERIFICATION_EMAIL_HOURLY_BUDGET", 5),
            ip_hourly: env.parse("VERIFICATION_IP_HOURLY_BUDGET", 30),
        };
        if limits.max_attempts == 0 {
            env.invalid("VERIFICATION_MAX_ATTEMPTS", "must be at least 1");
        }
        let policy = outbox::Policy::default();
        let outbox = outbox::Policy {
            claim_after: env.seconds(
                "VERIFICATION_OUTBOX_CLAIM_AFTER_SECS",
                policy.claim_after.as_secs(),
            ),
            max_attempts: env.parse("VERIFICATION_OUTBOX_MAX_ATTEMPTS", policy.max_attempts),
            max_age: env.seconds("VERIFICATION_OUTBOX_MAX_AGE_SECS", policy.max_age.as_secs()),
            retry_base: env.seconds(
                "VERIFICATION_OUTBOX_RETRY_BASE_SECS",
                policy.retry_base.as_secs(),
            ),
            retry_max: env.seconds(
                "VERIFICATION_OUTBOX_RETRY_MAX_SECS",
                policy.retry_max.as_secs(),
            ),
            concurrency: env.parse("VERIFICATION_OUTBOX_CONCURRENCY", policy.concurrency),
        };
        if outbox.max_attempts == 0 {
            env.invalid("VERIFICATION_OUTBOX_MAX_ATTEMPTS", "must be at least 1");
        }
        if outbox.concurrency == 0 {
            env.invalid("VERIFICATION_OUTBOX_CONCURRENCY", "must be at least 1");
        }
        if outbox.claim_after < Duration::from_secs(15) {
            // A lease shorter than an SMTP exchange (10 s timeout) would hand a letter being
            // sent to a second replica.
            env.invalid(
                "VERIFICATION_OUTBOX_CLAIM_AFTER_SECS",
                "must be at least 15",
            );
        }
        Self {
            tls: examreg_kit::tls::Settings::from_env(env),
            ops_addr: env.parse(
                "VERIFICATION_OPS_ADDR",
                "127.0.0.1:9052".parse().expect("literal"),
            ),
            addr: env.parse(
                "VERIFICATION_ADDR",
                "127.0.0.1:50052".parse().expect("literal"),
            ),
            redis_url: env.secret_or("VERIFICATION_REDIS_URL", "redis://127.0.0.1:6379"),
            key_prefix: env.string("VERIFICATION_KEY_PREFIX", "examreg:verification:"),
            smtp_url: env.secret_or("VERIFICATION_SMTP_URL", "smtp://127.0.0.1:1025"),
            mail_from,
            code_key,
            proof_key: examreg_kit::tokens::signing_key_from_env(env, "VERIFICATION_PROOF_KEY"),
            proof_ttl: env.seconds("VERIFICATION_PROOF_TTL_SECS", 1800),
            limits,
            outbox,
            identity_url: env.service_url("IDENTITY_URL", "http://127.0.0.1:50051"),
            client: examreg_kit::client::Credentials::from_env(env, "VERIFICATION", "verification"),
            support_contact: env.string("VERIFICATION_SUPPORT_CONTACT", "support@examreg.local"),
            letters_dir: Some(env.string("VERIFICATION_LETTERS_DIR", ""))
                .filter(|dir| !dir.is_empty())
                .map(Into::into),
            sweep_every: env.seconds("VERIFICATION_SWEEP_INTERVAL_SECS", 3600),
            retain_dead_letters: env.days("VERIFICATION_RETAIN_DEAD_LETTERS_DAYS", 30),
        }
    }
}

fn derive(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// What seals the letters in Redis, derived from `VERIFICATION_CODE_KEY`.
pub fn outbox_sealer(code_key: &examreg_kit::config::Secret) -> outbox::Sealer {
    outbox::Sealer::new(&derive(
        code_key.expose().as_bytes(),
        b"examreg outbox seal v1",
    ))
}

/// The verification service's start-up.
pub struct Application;

impl Application {
    /// Connects to Redis, prepares SMTP and binds the listener; the mail queue's worker runs
    /// while it serves. `keys` authenticate callers.
    pub async fn build(config: Config, keys: Keys) -> anyhow::Result<Service> {
        let letters = letters::Letters::load(config.letters_dir.as_deref())?;
        let redis =
            examreg_kit::redis::connect(config.redis_url.expose(), Duration::from_secs(3)).await?;
        // The worker blocks on BLPOP while idle, so it gets a connection of its own.
        let worker_redis =
            examreg_kit::redis::connect(config.redis_url.expose(), Duration::from_secs(10)).await?;
        let key = config.code_key.expose().as_bytes();
        let sealer = outbox_sealer(&config.code_key);
        let store = store::CodeStore::new(
            redis.clone(),
            config.key_prefix.clone(),
            &derive(key, b"examreg code mac v1"),
            config.limits.clone(),
        );
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(config.smtp_url.expose())?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let proof_key = config
            .proof_key
            .clone()
            .ok_or_else(|| anyhow::anyhow!("VERIFICATION_PROOF_KEY is required"))?;
        let outbox = outbox::Outbox::new(redis.clone(), &config.key_prefix, sealer.clone());
        let evidence = examreg_kit::retention::Evidence::new(
            "verification",
            vec![examreg_kit::retention::Rule {
                name: "dead_letters",
                data: "letters that could not be delivered (sealed; the address and the code inside)",
                period: config.retain_dead_letters,
                from: "the letter was given up".into(),
            }],
            examreg_kit::retention::Log::Redis {
                redis: redis.clone(),
                key: format!("{}retention", config.key_prefix),
            },
        );
        let sweep = Sweep {
            lease: format!("{}retention:lease", config.key_prefix),
            redis: redis.clone(),
            every: config.sweep_every,
            retain: config.retain_dead_letters,
            outbox: outbox.clone(),
            evidence: evidence.clone(),
        };
        let service = grpc::Verification {
            challenges: challenges::Challenges {
                store,
                outbox,
                proof_key,
                proof_ttl: config.proof_ttl,
                support_contact: config.support_contact,
                letters,
            },
        };
        let worker = outbox::Worker::new(
            worker_redis,
            &config.key_prefix,
            sealer,
            smtp,
            config.mail_from,
            config.outbox,
        );
        let routes =
            Routes::new(VerificationServiceServer::new(service)).add_service(evidence.server());
        let names = &[
            "examreg.verification.v1.VerificationService",
            examreg_kit::retention::SERVICE_NAME,
        ];
        Ok(
            Service::bind(config.addr, config.ops_addr, routes, names, keys)
                .await?
                .tls(&config.tls)?
                .task(|stop| worker.run(stop))
                .task(|stop| sweep.run(stop)),
        )
    }
}

/// The retention's sweep: dead letters older than their period go, once per
/// `VERIFICATION_SWEEP_INTERVAL_SECS` across the replicas (a lease in Redis: the replica that
/// sets it runs the sweep).
struct Sweep {
    lease: String,
    redis: examreg_kit::redis::Redis,
    every: Duration,
    retain: Option<Duration>,
    outbox: outbox::Outbox,
    evidence: examreg_kit::retention::Evidence,
}

impl Sweep {
    async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let Some(period) = self.retain else { return };
        let poll = (self.every / 10).clamp(Duration::from_millis(100), Duration::from_secs(60));
        tokio::pin!(stop);
        loop {
            let mut redis = self.redis.clone();
            let claimed: Result<Option<String>, _> = redis::cmd("SET")
                .arg(&self.lease)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(u64::try_from(self.every.as_millis()).unwrap_or(u64::MAX))
                .query_async(&mut redis)
                .await;
            match claimed {
                Ok(Some(_)) => match self.outbox.sweep_dead(period).await {
                    Ok(deleted) => {
                        if let Err(e) = self.evidence.record_done("dead_letters", deleted).await {
                            tracing::warn!(error = %e.message(), "retention run not recorded");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "retention sweep failed; will retry"),
                },
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "retention lease not claimed; will ask again"),
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}
