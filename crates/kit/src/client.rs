//! The client side of service authentication: a service obtains its own scoped token from
//! identity with its client id and secret and keeps it fresh ([`ServiceToken`]); a service that
//! verifies tokens fetches identity's JWK Set and refreshes it ([`refresh_jwks`]).

use crate::{auth::Keys, config::Secret};
use examreg_proto::identity::v1::{
    IssueServiceTokenRequest, WatchRevocationsRequest,
    identity_service_client::IdentityServiceClient,
};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::Mutex;
use tonic::{Status, transport::Channel};

/// A service's own client at identity (`<SERVICE>_CLIENT_ID`, `<SERVICE>_CLIENT_SECRET` or
/// `_FILE`): what it presents for the service tokens it needs, such as the one that opens the
/// revocation feed (scope `revocations:watch`).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: String,
    pub secret: Secret,
}

impl Credentials {
    /// `<PREFIX>_CLIENT_ID` (default `default_id`) and the required `<PREFIX>_CLIENT_SECRET`.
    pub fn from_env(env: &mut crate::config::Env, prefix: &str, default_id: &str) -> Self {
        Self {
            id: env.string(&format!("{prefix}_CLIENT_ID"), default_id),
            secret: env.required_secret(&format!("{prefix}_CLIENT_SECRET")),
        }
    }
}

/// A service token that renews itself a minute before it expires.
#[derive(Clone)]
pub struct ServiceToken {
    identity: IdentityServiceClient<Channel>,
    client_id: String,
    secret: Secret,
    cached: Arc<Mutex<Option<(String, Instant)>>>,
}

impl ServiceToken {
    /// The token of `credentials`' client.
    pub fn of(identity: Channel, credentials: &Credentials) -> Self {
        Self::new(identity, credentials.id.clone(), credentials.secret.clone())
    }

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

    /// Drops the held token if it is `token`: a service refused it (identity no longer
    /// accepts the key that signed it), so the next request gets a new one.
    pub async fn forget(&self, token: &str) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|(held, _)| held == token) {
            *cached = None;
        }
    }

    /// Builds a request carrying the service token.
    pub async fn request<T>(&self, message: T) -> Result<tonic::Request<T>, Status> {
        crate::auth::with_bearer(message, &self.get().await?)
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
    crate::tasks::periodically(every, shutdown, || async {
        if let Err(status) = keys.fetch(identity.clone(), Duration::ZERO).await {
            tracing::warn!(code = ?status.code(), "JWKS refresh failed; keeping the old keys");
        }
    })
    .await;
}

/// Keeps `keys`' list of ended sessions current from identity's `WatchRevocations` until
/// `shutdown` resolves, opening it with `token` (scope `revocations:watch`). Each stream
/// starts with the whole list, so a broken one is simply opened again; while it is down the
/// list goes stale and end users' tokens are refused as UNAVAILABLE after
/// [`crate::auth::REVOCATIONS_STALE_AFTER`].
pub async fn watch_revocations(
    identity: Channel,
    keys: Keys,
    token: ServiceToken,
    shutdown: impl std::future::Future<Output = ()>,
) {
    keys.revocations().watched();
    tokio::pin!(shutdown);
    let mut client = IdentityServiceClient::new(identity);
    loop {
        let feed = async {
            let request = token.request(WatchRevocationsRequest {}).await?;
            let sent = crate::auth::bearer_of(&request).map(str::to_owned);
            let opened = client.watch_revocations(request).await;
            if let (Err(status), Some(sent)) = (&opened, sent)
                && status.code() == tonic::Code::Unauthenticated
            {
                // Signed by a key identity no longer accepts: the next try gets a new token.
                token.forget(&sent).await;
            }
            let mut stream = opened?.into_inner();
            while let Some(news) = stream.message().await? {
                keys.revocations().heard(
                    news.revocations
                        .iter()
                        .filter_map(|r| Some((r.session_id.parse().ok()?, r.until))),
                );
            }
            Ok::<(), Status>(())
        };
        tokio::select! {
            () = &mut shutdown => return,
            ended = feed => {
                let code = ended.err().map(|status| status.code());
                tracing::warn!(?code, "the revocation feed ended; opening it again");
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Waits until `keys`' list of ended sessions has been heard from, up to `give_up`.
pub async fn revocations_current(keys: &Keys, give_up: Duration) -> Result<(), Status> {
    let started = Instant::now();
    while !keys.revocations().current() {
        if started.elapsed() >= give_up {
            return Err(Status::unavailable("no revocation feed from identity"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Keys kept in step with identity: its JWK Set fetched now (waiting up to two minutes for
/// identity to come up), then refreshed every five minutes, and its ended sessions watched,
/// until `stop` fires. Returns the keys and the task to await at shutdown.
pub async fn synced_keys(
    identity_url: &str,
    tls: &crate::tls::Settings,
    credentials: &Credentials,
    stop: &crate::tasks::Trigger,
) -> Result<(Keys, tokio::task::JoinHandle<()>), Box<dyn std::error::Error + Send + Sync>> {
    let identity = crate::channel::lazy(identity_url, tls)?;
    let keys = Keys::default();
    keys.refetch_from(identity.clone());
    keys.fetch(identity.clone(), Duration::from_secs(120))
        .await?;
    let refresher = jwks_refresher(
        identity.clone(),
        keys.clone(),
        Duration::from_secs(300),
        stop.signal(),
    );
    let token = ServiceToken::of(identity.clone(), credentials);
    let watcher = watch_revocations(identity, keys.clone(), token, stop.signal());
    let tasks = tokio::spawn(async move {
        tokio::join!(refresher, watcher);
    });
    revocations_current(&keys, Duration::from_secs(120)).await?;
    Ok((keys, tasks))
}
