//! biometrics' integration tests: the photo checks, the document reader, Garage (one node and a cluster), Postgres and the service over gRPC.
//!
//! One binary for all of them: the helpers are compiled once and the crate linked once.

mod checks;
mod garage_cluster;
mod mrz;
mod objects;
mod service;
mod store;
