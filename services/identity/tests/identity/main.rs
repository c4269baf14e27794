//! identity's integration tests, on the local stack's Postgres (and the kit's client balancing, leases and pools, exercised on identity).
//!
//! One binary for all of them: the helpers are compiled once and the crate linked once.

mod common;

mod balance;
mod config;
mod identity;
mod lease;
mod pool;
mod record;
