//! Service plumbing that every examreg service shares, written once:
//! - start-up: `config` (typed configuration from the environment), `telemetry` (logs, traces,
//!   the request span layer), `metrics` (the recorder, the RPC count layer), `server` (bind,
//!   serve behind the layers, drain), `service` (a binary's main, Postgres pools);
//! - callers and callees: `auth` (tokens' claims, the keys, the authentication layer),
//!   `tokens` (signing and key sets), `client` (a service's own token, keys kept in step with
//!   identity), `channel` (balanced channels to other services, the health probe);
//! - shared behaviour: `errors`, `texts`, `record` (keyset pages, audit notes, changes),
//!   `retention`, `work` (CPU lanes and gates), `tasks` (stop triggers, periodic loops),
//!   `lease` and `redis`.
#![forbid(unsafe_code)]

pub mod auth;
pub mod channel;
pub mod client;
pub mod config;
pub mod errors;
#[cfg(feature = "postgres")]
pub mod lease;
pub mod metrics;
pub mod record;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "postgres", feature = "redis"))]
pub mod retention;
pub mod server;
pub mod service;
pub mod tasks;
pub mod telemetry;
pub mod texts;
pub mod tls;
pub mod tokens;
pub mod work;
