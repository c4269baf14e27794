//! What every handler can reach: the configuration, Redis and the flows kept there, the
//! service facades, identity's keys, the metrics and the admission gate.

use crate::{
    admission::Admission,
    config::Config,
    flow::Flows,
    upstream::{Biometrics, Identity, Profile, Verification},
};
use examreg_kit::auth::Keys;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

pub struct Inner {
    pub config: Config,
    pub redis: examreg_kit::redis::Redis,
    pub flows: Flows,
    pub identity: Identity,
    pub verification: Verification,
    pub biometrics: Biometrics,
    pub profile: Profile,
    pub keys: Keys,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub admission: Arc<Admission>,
    /// Proof-of-work challenges and passes past an address's soft limits.
    pub pow: crate::pow::Pow,
    /// The user agreement and the consent, as published.
    pub texts: crate::texts::Texts,
    /// What this replica knows of the per-minute request counts.
    pub budgets: crate::middleware::Budgets,
    /// The photo bodies this replica holds, within their budget and pace.
    pub bodies: crate::bodies::Bodies,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}
