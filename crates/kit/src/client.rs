//! The client side of service authentication: a service obtains its own scoped token from
//! identity with its client id and secret and keeps it fresh ([`ServiceToken`]); a service that
//! verifies tokens fetches identity's JWK Set and refreshes it ([`refresh_jwks`]).

use crate::{auth::Keys, config::Secret, tokens::KeySet};
use examreg_proto::identity::v1::{
    GetJwksRequest, IssueServiceTokenRequest, identity_service_client::IdentityServiceClient,
};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::Mutex;
use tonic::{Status, transport::Channel};

/// A service token that renews itself a minute before it expires.
#[derive(Clone)]
pub struct ServiceToken {
    identity: IdentityServiceClient<Channel>,
    client_id: String,
    secret: Secret,
    cached: Arc<Mutex<Option<(String, Instant)>>>,
}

impl ServiceToken {
    pub fn new(identity: Channel, client_id: String, secret: Secret) -> Self {
        Self {
            identity: IdentityServiceClient::new(identity),
            client_id,
            secret,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    /// The current token, fetching a new one when none is held or it is about to expire.
    pub async fn get(&self) -> Result<String, Status> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let answer = self
            .identity
            .clone()
            .issue_service_token(IssueServiceTokenRequest {
                client_id: self.client_id.clone(),
                client_secret: self.secret.expose().to_owned(),
            })
            .await?
            .into_inner();
        let lifetime = Duration::from_secs(u64::try_from(answer.expires_in).unwrap_or(0));
        let renew_at = Instant::now() + lifetime.saturating_sub(Duration::from_secs(60));
        *cached = Some((answer.access_token.clone(), renew_at));
        Ok(answer.access_token)
    }

    /// Builds a request carrying the service token.
    pub async fn request<T>(&self, message: T) -> Result<tonic::Request<T>, Status> {
        crate::auth::with_bearer(message, &self.get().await?)
    }
}

/// Fetches identity's JWK Set into `keys` now (retrying until it succeeds or `give_up` passes)
/// and returns; call [`jwks_refresher`] to keep it fresh.
pub async fn fetch_jwks(identity: Channel, keys: &Keys, give_up: Duration) -> Result<(), Status> {
    let started = Instant::now();
    let mut client = IdentityServiceClient::new(identity);
    loop {
        match client.get_jwks(GetJwksRequest {}).await {
            Ok(answer) => {
                let set = KeySet::from_jwks(&answer.into_inner().jwks_json)
                    .map_err(|e| Status::internal(e.to_string()))?;
                keys.replace(set);
                return Ok(());
            }
            Err(status) if started.elapsed() < give_up => {
                tracing::warn!(code = ?status.code(), "JWKS not available yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(status) => return Err(status),
        }
    }
}

/// Refreshes `keys` from identity every `every` until `shutdown` resolves; a failed refresh
/// keeps the keys it had.
pub async fn jwks_refresher(
    identity: Channel,
    keys: Keys,
    every: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    // The first run is the fetch the caller just made; start one period later.
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => return,
        () = tokio::time::sleep(every) => {}
    }
    crate::grpc::periodically(every, shutdown, || async {
        if let Err(status) = fetch_jwks(identity.clone(), &keys, Duration::ZERO).await {
            tracing::warn!(code = ?status.code(), "JWKS refresh failed; keeping the old keys");
        }
    })
    .await;
}

/// Keys kept in step with identity's JWK Set: fetched now (waiting up to two minutes for
/// identity to come up), then refreshed every five minutes until `stop` fires. Returns the
/// keys and the refresher task to await at shutdown.
pub async fn synced_keys(
    identity_url: &str,
    stop: &crate::grpc::Trigger,
) -> Result<(Keys, tokio::task::JoinHandle<()>), Box<dyn std::error::Error + Send + Sync>> {
    let identity = crate::grpc::channel(identity_url)?;
    let keys = Keys::default();
    fetch_jwks(identity.clone(), &keys, Duration::from_secs(120)).await?;
    let refresher = tokio::spawn(jwks_refresher(
        identity,
        keys.clone(),
        Duration::from_secs(300),
        stop.signal(),
    ));
    Ok((keys, refresher))
}
