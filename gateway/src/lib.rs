//! The gateway: the only public door of examreg. An HTTP+JSON API (axum) that sequences the
//! gRPC services into the applicant's flow, keeps pre-account flow state in Redis, verifies
//! access tokens locally with identity's JWK Set, and limits what one client can do.
//!
//! The modules, from the bottom up (each uses only those above it):
//! - `error`, `i18n`, `json`, `config`, `admission`, `flow`: the API's error shape and its
//!   messages, how values look in JSON, the configuration, the admission gate, the flows in
//!   Redis;
//! - `upstream`: one typed facade per service (retries, service token, bearer forwarding);
//! - `state`: what every handler reaches; `extract`: who is asking; `middleware`;
//! - the resources, each with its `router()`: `reference`, `registration` and `recovery`
//!   (with `codes`, the steps they share), `sessions`, `onboarding` (where the applicant
//!   stands, completion), then `capture`, `profile` and `handoff`, which answer with the next
//!   step from `onboarding`; `admin`; `ops` and `web`;
//! - `startup`: the router of all of them and the [`Application`].
#![forbid(unsafe_code)]

pub mod admission;
pub mod bodies;
pub mod config;
pub mod error;
pub mod flow;
pub mod i18n;
pub mod json;
pub mod openapi;
pub mod pow;
pub mod texts;
pub mod upstream;

pub mod extract;
pub mod middleware;
pub mod state;

pub mod admin;
pub mod capture;
pub mod codes;
pub mod handoff;
pub mod onboarding;
pub mod ops;
pub mod profile;
pub mod recovery;
pub mod reference;
pub mod registration;
pub mod sessions;
pub mod web;

pub mod startup;

pub use config::Config;
pub use startup::{Application, router};
