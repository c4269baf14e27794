//! The gateway's configuration, from `GATEWAY_*` variables and the services' URLs.

use axum::http::HeaderValue;
use examreg_kit::config::{Env, Secret};
use std::{net::SocketAddr, time::Duration};

/// Configuration, from `GATEWAY_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// The applicants' port: the API and the pages (`GATEWAY_ADDR`).
    pub addr: SocketAddr,
    /// TLS: the certificate it serves, the CA bundle its calls verify (`EXAMREG_TLS_*`).
    pub tls: examreg_kit::tls::Settings,
    /// The operators' port: the admin routes (`GATEWAY_ADMIN_ADDR`).
    pub admin_addr: SocketAddr,
    /// The platform's port: `/healthz`, `/readyz`, `/metrics` (`GATEWAY_OPS_ADDR`).
    pub ops_addr: SocketAddr,
    /// Where the docs viewer (`/docs`) is served (`GATEWAY_DOCS`).
    pub docs: Docs,
    /// May carry the ACL user's password: from `GATEWAY_REDIS_URL` or `_FILE`.
    pub redis_url: Secret,
    pub key_prefix: String,
    pub identity_url: String,
    pub verification_url: String,
    pub biometrics_url: String,
    pub profile_url: String,
    /// Its client at identity (`GATEWAY_CLIENT_ID`, `GATEWAY_CLIENT_SECRET`): the service
    /// token it calls the services with, and the revocation feed.
    pub client: examreg_kit::client::Credentials,
    pub flow_ttl: Duration,
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    /// Largest photo body (the biometrics service applies its own limit too).
    pub photo_limit: usize,
    /// Bytes of photo bodies one replica holds at once (see `bodies`).
    pub body_budget: u64,
    /// The least average rate a photo body must arrive at, after `body_grace`.
    pub body_min_rate: u64,
    pub body_grace: Duration,
    /// Requests per client per minute: a soft limit for an address (past it a proof of work
    /// earns a pass), a hard one for a pass.
    pub rate_limit: u32,
    /// Keys the proof-of-work challenges and passes (shared by every replica).
    pub pow_key: Secret,
    /// The price of an address's first pass in a ten-minute window, in `maxnumber`.
    pub pow_base: u64,
    /// Each this many passes an address minted in the window add `pow_base` to its price.
    pub pow_step: u64,
    /// Passes an address may mint between a challenge's issue and its redemption before the
    /// challenge is stale (the clients of a lab solving at once).
    pub pow_slack: u64,
    /// How long a pass lasts.
    pub pow_pass_ttl: Duration,
    /// How many proxies of ours stand in front of the gateway, each appending the address it
    /// saw to `X-Forwarded-For`: the client is the N-th address from the right, across all
    /// the header's lines. 0 ignores the header (the peer is the client).
    pub trusted_proxies: usize,
    /// The bits of an IPv4 address that make one client for the per-address budgets (32: the
    /// address itself).
    pub ipv4_prefix: u8,
    /// The same for IPv6: 64, since a subscriber is given a whole /64 (or more) and picks
    /// addresses from it at will.
    pub ipv6_prefix: u8,
    /// How long new journeys are refused after a service answers `overloaded`.
    pub admission_pause: Duration,
    /// Where applicants reach these pages (the hand-off link points there).
    pub public_url: String,
    /// How long a hand-off link waits to be opened.
    pub handoff_ttl: Duration,
    /// Where the user agreement and the biometric consent are read from (see `texts`); the
    /// compiled-in texts when unset.
    pub texts_dir: Option<std::path::PathBuf>,
}

/// Where the docs viewer (Swagger UI with try-it-out) is served: on the operators' port (the
/// default), on the applicants' port, or nowhere. `/openapi.json` is on the applicants' port
/// always: clients pin it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Docs {
    Admin,
    Public,
    Off,
}

impl std::str::FromStr for Docs {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "admin" => Ok(Self::Admin),
            "public" => Ok(Self::Public),
            "off" => Ok(Self::Off),
            other => Err(format!("{other} is not one of admin, public, off")),
        }
    }
}

impl Config {
    /// Every default, listening on a free loopback port, without secrets: for tests and tools,
    /// which set the secrets they need.
    pub fn defaults() -> Self {
        let any_port = |var: &str| (var.to_owned(), "127.0.0.1:0".to_owned());
        let mut env = examreg_kit::config::Env::from_map(
            ["GATEWAY_ADDR", "GATEWAY_ADMIN_ADDR", "GATEWAY_OPS_ADDR"]
                .into_iter()
                .map(any_port)
                .collect(),
        );
        Self::from_env(&mut env)
    }

    pub fn from_env(env: &mut Env) -> Self {
        env.required_in_production("GATEWAY_CORS_ORIGINS");
        env.required_in_production("GATEWAY_PUBLIC_URL");
        let cors = env.string("GATEWAY_CORS_ORIGINS", "");
        let cors_origins: Vec<String> = cors
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        for origin in &cors_origins {
            if HeaderValue::from_str(origin).is_err()
                || !(origin.starts_with("http://") || origin.starts_with("https://"))
            {
                env.invalid(
                    "GATEWAY_CORS_ORIGINS",
                    format!("{origin:?} is not an origin like https://example.kz"),
                );
            }
        }
        let pow_key = env.required_secret("GATEWAY_POW_KEY");
        if !pow_key.expose().is_empty() && pow_key.expose().len() < 32 {
            env.invalid(
                "GATEWAY_POW_KEY",
                "must be at least 32 characters of random",
            );
        }
        let ipv4_prefix: u8 = env.parse("GATEWAY_IPV4_PREFIX", 32);
        if !(8..=32).contains(&ipv4_prefix) {
            env.invalid("GATEWAY_IPV4_PREFIX", "must be from 8 to 32");
        }
        let ipv6_prefix: u8 = env.parse("GATEWAY_IPV6_PREFIX", 64);
        if !(32..=128).contains(&ipv6_prefix) {
            env.invalid("GATEWAY_IPV6_PREFIX", "must be from 32 to 128");
        }
        Self {
            tls: examreg_kit::tls::Settings::from_env(env),
            addr: env.parse("GATEWAY_ADDR", "127.0.0.1:8080".parse().expect("literal")),
            admin_addr: env.parse(
                "GATEWAY_ADMIN_ADDR",
                "127.0.0.1:8081".parse().expect("literal"),
            ),
            ops_addr: env.parse(
                "GATEWAY_OPS_ADDR",
                "127.0.0.1:8082".parse().expect("literal"),
            ),
            docs: env.parse("GATEWAY_DOCS", Docs::Admin),
            redis_url: env.secret_or("GATEWAY_REDIS_URL", "redis://127.0.0.1:6379"),
            key_prefix: env.string("GATEWAY_KEY_PREFIX", "examreg:gateway:"),
            identity_url: env.service_url("IDENTITY_URL", "http://127.0.0.1:50051"),
            verification_url: env.service_url("VERIFICATION_URL", "http://127.0.0.1:50052"),
            biometrics_url: env.service_url("BIOMETRICS_URL", "http://127.0.0.1:50053"),
            profile_url: env.service_url("PROFILE_URL", "http://127.0.0.1:50054"),
            client: examreg_kit::client::Credentials::from_env(env, "GATEWAY", "gateway"),
            flow_ttl: env.seconds("GATEWAY_FLOW_TTL_SECS", 3600),
            cors_origins,
            body_limit: env.parse("GATEWAY_BODY_LIMIT_BYTES", 64 * 1024),
            photo_limit: env.parse("GATEWAY_PHOTO_LIMIT_BYTES", 10 * 1024 * 1024),
            body_budget: env.parse("GATEWAY_BODY_BUDGET_BYTES", 64 * 1024 * 1024),
            body_min_rate: env.parse("GATEWAY_BODY_MIN_RATE_BYTES_PER_SEC", 16 * 1024),
            body_grace: env.seconds("GATEWAY_BODY_GRACE_SECS", 10),
            rate_limit: env.parse("GATEWAY_RATE_LIMIT_PER_MINUTE", 120),
            trusted_proxies: env.parse("GATEWAY_TRUSTED_PROXIES", 0),
            ipv4_prefix,
            ipv6_prefix,
            admission_pause: Duration::from_millis(env.parse("GATEWAY_ADMISSION_PAUSE_MS", 1000)),
            public_url: env.string("GATEWAY_PUBLIC_URL", "http://localhost:8080"),
            handoff_ttl: env.seconds("GATEWAY_HANDOFF_TTL_SECS", 300),
            texts_dir: Some(env.string("GATEWAY_TEXTS_DIR", ""))
                .filter(|dir| !dir.is_empty())
                .map(Into::into),
            pow_key,
            pow_base: env.parse("GATEWAY_POW_BASE", 200_000),
            pow_step: env.parse("GATEWAY_POW_STEP_PASSES", 10),
            pow_slack: env.parse("GATEWAY_POW_SLACK_PASSES", 30),
            pow_pass_ttl: env.seconds("GATEWAY_POW_PASS_TTL_SECS", 3600),
        }
    }
}
