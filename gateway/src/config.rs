//! The gateway's configuration, from `GATEWAY_*` variables and the services' URLs.

use axum::http::HeaderValue;
use examreg_kit::config::{Env, Secret};
use std::{net::SocketAddr, time::Duration};

/// Configuration, from `GATEWAY_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub redis_url: String,
    pub key_prefix: String,
    pub identity_url: String,
    pub verification_url: String,
    pub biometrics_url: String,
    pub profile_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub flow_ttl: Duration,
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    /// Largest photo body (the biometrics service applies its own limit too).
    pub photo_limit: usize,
    /// Requests per client per minute: a soft limit for an address (past it a proof of work
    /// earns a pass), a hard one for a pass.
    pub rate_limit: u32,
    /// Keys the proof-of-work challenges and passes (shared by every replica).
    pub pow_key: Secret,
    /// The challenge's `maxnumber` for an address that earned no pass lately.
    pub pow_base: u64,
    /// Each this many passes an address earned in ten minutes add `pow_base` again.
    pub pow_step: u64,
    /// How long a pass lasts.
    pub pow_pass_ttl: Duration,
    /// How many proxies of ours stand in front of the gateway, each appending the address it
    /// saw to `X-Forwarded-For`: the client is the N-th address from the right, across all
    /// the header's lines. 0 ignores the header (the peer is the client).
    pub trusted_proxies: usize,
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

impl Config {
    /// Every default, listening on a free loopback port, without secrets: for tests and tools,
    /// which set the secrets they need.
    pub fn defaults() -> Self {
        examreg_kit::config::defaults(Self::from_env, "GATEWAY_ADDR")
    }

    pub fn from_env(env: &mut Env) -> Self {
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
        Self {
            addr: env.parse("GATEWAY_ADDR", "127.0.0.1:8080".parse().expect("literal")),
            redis_url: env.string("GATEWAY_REDIS_URL", "redis://127.0.0.1:6379"),
            key_prefix: env.string("GATEWAY_KEY_PREFIX", "examreg:gateway:"),
            identity_url: env.string("IDENTITY_URL", "http://127.0.0.1:50051"),
            verification_url: env.string("VERIFICATION_URL", "http://127.0.0.1:50052"),
            biometrics_url: env.string("BIOMETRICS_URL", "http://127.0.0.1:50053"),
            profile_url: env.string("PROFILE_URL", "http://127.0.0.1:50054"),
            client_id: env.string("GATEWAY_CLIENT_ID", "gateway"),
            client_secret: env.required_secret("GATEWAY_CLIENT_SECRET"),
            flow_ttl: env.seconds("GATEWAY_FLOW_TTL_SECS", 3600),
            cors_origins,
            body_limit: env.parse("GATEWAY_BODY_LIMIT_BYTES", 64 * 1024),
            photo_limit: env.parse("GATEWAY_PHOTO_LIMIT_BYTES", 10 * 1024 * 1024),
            rate_limit: env.parse("GATEWAY_RATE_LIMIT_PER_MINUTE", 120),
            trusted_proxies: env.parse("GATEWAY_TRUSTED_PROXIES", 0),
            admission_pause: Duration::from_millis(env.parse("GATEWAY_ADMISSION_PAUSE_MS", 1000)),
            public_url: env.string("GATEWAY_PUBLIC_URL", "http://localhost:8080"),
            handoff_ttl: env.seconds("GATEWAY_HANDOFF_TTL_SECS", 300),
            texts_dir: Some(env.string("GATEWAY_TEXTS_DIR", ""))
                .filter(|dir| !dir.is_empty())
                .map(Into::into),
            pow_key,
            pow_base: env.parse("GATEWAY_POW_BASE", 50_000),
            pow_step: env.parse("GATEWAY_POW_STEP_PASSES", 100),
            pow_pass_ttl: env.seconds("GATEWAY_POW_PASS_TTL_SECS", 3600),
        }
    }
}
