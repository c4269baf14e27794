//! Service plumbing that every examreg service shares, written once: typed configuration from
//! the environment, telemetry, the gRPC server bootstrap (health, reflection, graceful
//! shutdown), signed tokens and the authentication layer, error mapping helpers, and what the
//! system of record's calls share (keyset pages, audit notes).
#![forbid(unsafe_code)]

pub mod auth;
pub mod balance;
pub mod client;
pub mod config;
pub mod errors;
pub mod grpc;
#[cfg(feature = "postgres")]
pub mod lease;
pub mod metrics;
pub mod record;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "postgres", feature = "redis"))]
pub mod retention;
pub mod service;
pub mod telemetry;
pub mod texts;
pub mod tokens;
pub mod work;
