//! The identity service: what it holds (the database, the keys, the hasher, the throttle, the
//! feeds and the clients of the services it changes) and, in `accounts`, `sessions`, `changes`
//! and `record`, what it does. Nothing here knows it is called over gRPC (`grpc::Api` does).

use crate::{ServiceClient, Throttle, feed::Feed, password::Hasher};
use examreg_kit::tokens::{KeySet, SigningKey};
use examreg_proto::{
    biometrics::v1::biometrics_service_client::BiometricsServiceClient,
    profile::v1::profile_service_client::ProfileServiceClient,
    verification::v1::verification_service_client::VerificationServiceClient,
};
use sqlx::PgPool;
use std::time::Duration;
use tonic::transport::Channel;

/// The service, shared by its gRPC handlers and its background tasks.
pub struct Identity {
    pub pool: PgPool,
    pub hasher: Hasher,
    pub signing_key: SigningKey,
    pub published_keys: Vec<SigningKey>,
    pub proof_keys: KeySet,
    pub clients: Vec<ServiceClient>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long a spent refresh token may come back for a pair of its own (a race, a lost
    /// answer) before a reuse ends the session.
    pub refresh_grace: Duration,
    pub session_lifetime: Duration,
    pub service_token_ttl: Duration,
    pub throttle: Throttle,
    pub revocations: crate::revocations::Feed,
    pub feed: Feed,
    /// The streams this replica serves, within their caps.
    pub streams: crate::streams::Streams,
    pub biometrics: BiometricsServiceClient<Channel>,
    pub profile: ProfileServiceClient<Channel>,
    pub verification: VerificationServiceClient<Channel>,
}
