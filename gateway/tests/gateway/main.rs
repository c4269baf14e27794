//! The gateway's integration tests: the whole suite running on the local stack, driven through the public HTTP API (and the internal gRPC API beside it), each module one area.
//!
//! One binary for all of them: the helpers are compiled once and the crate linked once.

mod common;

mod browser;
mod cabinet;
mod contract;
mod faults;
mod internal;
mod journey;
mod restart;
mod sessions;
mod traces;
