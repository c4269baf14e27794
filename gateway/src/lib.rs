//! The gateway: the only public door of examreg. An HTTP+JSON API (axum) that sequences the
//! gRPC services into the applicant's flow, keeps pre-account flow state in Redis, verifies
//! access tokens locally with identity's JWK Set, and limits what one client can do.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admission;
pub mod error;
pub mod flow;
pub mod handoff;
pub mod i18n;
pub mod me;
pub mod ops;
pub mod profile;
pub mod reference;
pub mod routes;
pub mod web;

use axum::{
    Router,
    extract::{ConnectInfo, DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use error::ApiError;
use examreg_kit::{
    auth::{Caller, Keys},
    client::ServiceToken,
    config::{Env, Secret},
};
use examreg_proto::{
    identity::v1::identity_service_client::IdentityServiceClient,
    verification::v1::verification_service_client::VerificationServiceClient,
};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tonic::transport::Channel;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Configuration, from `GATEWAY_*` variables.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub redis_url: String,
    pub key_prefix: String,
    pub identity_url: String,
    pub verification_url: String,
    pub biometrics_url: String,
    pub profile_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub flow_ttl: Duration,
    pub cors_origins: Vec<String>,
    pub body_limit: usize,
    /// Largest photo body (the biometrics service applies its own limit too).
    pub photo_limit: usize,
    /// Requests per client IP per minute.
    pub rate_limit: u32,
    /// Take the client address from the last `X-Forwarded-For` hop (only behind a trusted
    /// proxy that sets it).
    pub trust_forwarded_for: bool,
    /// How long new journeys are refused after a service answers `overloaded`.
    pub admission_pause: Duration,
    /// Where applicants reach these pages (the hand-off link points there).
    pub public_url: String,
    /// How long a hand-off link waits to be opened.
    pub handoff_ttl: Duration,
}

impl Config {
    /// Every default, listening on a free loopback port, without secrets: for tests and tools,
    /// which set the secrets they need.
    pub fn defaults() -> Self {
        let mut config = Self::from_env(&mut Env::from_map(Default::default()));
        config.addr = "127.0.0.1:0".parse().expect("literal");
        config
    }

    pub fn from_env(env: &mut Env) -> Self {
        let cors = env.string("GATEWAY_CORS_ORIGINS", "");
        let cors_origins: Vec<String> = cors
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        for origin in &cors_origins {
            if HeaderValue::from_str(origin).is_err()
                || !(origin.starts_with("http://") || origin.starts_with("https://"))
            {
                env.invalid(
                    "GATEWAY_CORS_ORIGINS",
                    format!("{origin:?} is not an origin like https://example.kz"),
                );
            }
        }
        Self {
            addr: env.parse("GATEWAY_ADDR", "127.0.0.1:8080".parse().expect("literal")),
            redis_url: env.string("GATEWAY_REDIS_URL", "redis://127.0.0.1:6379"),
            key_prefix: env.string("GATEWAY_KEY_PREFIX", "examreg:gateway:"),
            identity_url: env.string("IDENTITY_URL", "http://127.0.0.1:50051"),
            verification_url: env.string("VERIFICATION_URL", "http://127.0.0.1:50052"),
            biometrics_url: env.string("BIOMETRICS_URL", "http://127.0.0.1:50053"),
            profile_url: env.string("PROFILE_URL", "http://127.0.0.1:50054"),
            client_id: env.string("GATEWAY_CLIENT_ID", "gateway"),
            client_secret: env.required_secret("GATEWAY_CLIENT_SECRET"),
            flow_ttl: env.seconds("GATEWAY_FLOW_TTL_SECS", 3600),
            cors_origins,
            body_limit: env.parse("GATEWAY_BODY_LIMIT_BYTES", 64 * 1024),
            photo_limit: env.parse("GATEWAY_PHOTO_LIMIT_BYTES", 10 * 1024 * 1024),
            rate_limit: env.parse("GATEWAY_RATE_LIMIT_PER_MINUTE", 120),
            trust_forwarded_for: env.parse("GATEWAY_TRUST_FORWARDED_FOR", false),
            admission_pause: Duration::from_millis(env.parse("GATEWAY_ADMISSION_PAUSE_MS", 1000)),
            public_url: env.string("GATEWAY_PUBLIC_URL", "http://localhost:8080"),
            handoff_ttl: env.seconds("GATEWAY_HANDOFF_TTL_SECS", 300),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

pub struct Inner {
    pub config: Config,
    pub redis: redis::aio::ConnectionManager,
    pub flows: flow::Flows,
    pub identity: IdentityServiceClient<Channel>,
    pub verification: VerificationServiceClient<Channel>,
    pub identity_channel: Channel,
    pub verification_channel: Channel,
    pub biometrics:
        examreg_proto::biometrics::v1::biometrics_service_client::BiometricsServiceClient<Channel>,
    pub biometrics_channel: Channel,
    pub profile: examreg_proto::profile::v1::profile_service_client::ProfileServiceClient<Channel>,
    pub profile_channel: Channel,
    pub token: ServiceToken,
    pub keys: Keys,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub admission: admission::Admission,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// The client as the gateway sees it, for budgets and audit.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: String,
    pub user_agent: String,
    pub lang: i18n::Lang,
}

impl Client {
    pub fn from_parts(config: &Config, headers: &HeaderMap, peer: Option<SocketAddr>) -> Self {
        let forwarded = config
            .trust_forwarded_for
            .then(|| headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
            .flatten()
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok());
        let ip = forwarded.unwrap_or_else(|| peer.map(|p| p.ip().to_string()).unwrap_or_default());
        let user_agent: String = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect();
        let lang = i18n::Lang::from_header(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        Self {
            ip,
            user_agent,
            lang,
        }
    }
}

impl axum::extract::FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        Ok(Self::from_parts(&state.config, &parts.headers, peer))
    }
}

/// An end user authenticated by their bearer access token, verified locally.
#[derive(Debug, Clone)]
pub struct User {
    pub account_id: uuid::Uuid,
    pub token: String,
}

/// The request's bearer token, or 401.
pub(crate) fn bearer(parts: &http::request::Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated"))
}

impl axum::extract::FromRequestParts<AppState> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        authenticate(parts, state, false)
    }
}

/// A caller of the photo steps (`PUT /v1/me/biometrics/{kind}`, `GET /v1/me/onboarding`): the
/// applicant, or the phone they handed the photos to (a capture token).
pub struct PhotoTaker(pub User);

impl axum::extract::FromRequestParts<AppState> for PhotoTaker {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        authenticate(parts, state, true).map(Self)
    }
}

fn authenticate(
    parts: &http::request::Parts,
    state: &AppState,
    capture_allowed: bool,
) -> Result<User, ApiError> {
    let token = bearer(parts)?;
    match state.keys.authenticate(token) {
        Ok(Caller::User { account_id, .. }) => {
            examreg_kit::telemetry::journey("account_id", &account_id);
            Ok(User {
                account_id,
                token: token.to_owned(),
            })
        }
        Ok(Caller::Capture { account_id, .. }) if capture_allowed => {
            examreg_kit::telemetry::journey("account_id", &account_id);
            Ok(User {
                account_id,
                token: token.to_owned(),
            })
        }
        Ok(Caller::Capture { .. }) => Err(ApiError::new(StatusCode::FORBIDDEN, "capture_only")),
        Ok(Caller::Service { .. }) | Err(_) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated"))
        }
    }
}

/// How long the gateway keeps calling a service that is unavailable (a replica restarting or
/// draining): long enough for a rolling restart, short enough for a person waiting.
const RETRY_DEADLINE: Duration = Duration::from_secs(10);

/// Runs `attempt` again while it fails with 503 (a service or identity's token endpoint
/// UNAVAILABLE), with a doubling pause, until `RETRY_DEADLINE`. Every call the gateway retries
/// is safe to repeat: reads, writes that set values, and calls whose repeat a drained replica
/// cannot have seen (graceful shutdown finishes what it accepted). Refreshing a session is the
/// exception and is never retried: a repeated refresh token revokes the session.
pub async fn retrying<R, Fut>(mut attempt: impl FnMut() -> Fut) -> error::ApiResult<R>
where
    Fut: Future<Output = error::ApiResult<R>>,
{
    let deadline = std::time::Instant::now() + RETRY_DEADLINE;
    let mut pause = Duration::from_millis(50);
    loop {
        match attempt().await {
            Err(e)
                if e.status == StatusCode::SERVICE_UNAVAILABLE
                    && std::time::Instant::now() + pause < deadline =>
            {
                metrics::counter!("gateway_retries_total").increment(1);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

/// For [`retrying`] a call whose refusals the caller inspects: UNAVAILABLE becomes the
/// retryable error, every other answer is handed back as it is.
pub fn transient<T>(
    answer: Result<T, tonic::Status>,
) -> error::ApiResult<Result<T, tonic::Status>> {
    match answer {
        Err(status) if status.code() == tonic::Code::Unavailable => Err(status.into()),
        other => Ok(other),
    }
}

/// Per-IP request budget per minute, counted in Redis so it holds across replicas.
async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = Client::from_parts(&state.config, request.headers(), peer);
    let minute = chrono::Utc::now().timestamp() / 60;
    let key = format!("{}rl:{{{}}}:{minute}", state.config.key_prefix, client.ip);
    let counted: Result<(u64,), _> = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .expire(&key, 120)
        .ignore()
        .query_async(&mut state.redis.clone())
        .await;
    match counted {
        Ok((used,)) if used > u64::from(state.config.rate_limit) => {
            let wait = 60 - chrono::Utc::now().timestamp().rem_euclid(60);
            metrics::counter!("gateway_rate_limited_total").increment(1);
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
                .retry_after(Duration::from_secs(u64::try_from(wait).unwrap_or(60)))
                .into_response()
        }
        Ok(_) => next.run(request).await,
        // Redis down: the flows cannot work either; say so instead of failing open silently.
        Err(e) => ApiError::unavailable(&e).into_response(),
    }
}

/// `Cache-Control: no-store` (and HTTP/1.0's `Pragma: no-cache`) on every `/v1` answer but
/// the public reference data and terms: tokens, codes, flows and personal data are never kept
/// by a shared cache or a browser's disk cache. Errors too (a 401 or a 409 names a flow's
/// state). The pages keep their own caching.
async fn no_store(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let public = path.starts_with("/v1/reference/") || path.starts_with("/v1/terms/");
    let private = path.starts_with("/v1/") && !public;
    let mut response = next.run(request).await;
    if private {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    response
}

/// Request count and latency per route and status.
async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = std::time::Instant::now();
    let span = examreg_kit::telemetry::request_span("http", &route, request.headers());
    let response = tracing::Instrument::instrument(next.run(request), span).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("gateway_http_requests_total", &labels).increment(1);
    metrics::histogram!("gateway_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT_LANGUAGE,
        ])
        .expose_headers([header::RETRY_AFTER, header::CONTENT_LANGUAGE])
        .max_age(Duration::from_secs(600))
}

pub fn router(state: AppState) -> Router {
    let api = routes::api()
        .layer(middleware::from_fn_with_state(state.clone(), rate_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            admission::admit,
        ))
        .layer(DefaultBodyLimit::max(state.config.body_limit));
    Router::new()
        .merge(api)
        .merge(ops::routes())
        .merge(web::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found") })
        .layer(middleware::from_fn(error::localize))
        .layer(middleware::from_fn(no_store))
        .layer(middleware::from_fn(track))
        .layer(cors(&state.config.cors_origins))
        .with_state(state)
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
}

impl Application {
    /// Connects to Redis and the services and binds the listener. `keys` must hold identity's
    /// JWK Set (see `examreg_kit::client::fetch_jwks`).
    pub async fn build(config: Config, keys: Keys) -> anyhow::Result<Self> {
        let client = redis::Client::open(config.redis_url.as_str())?;
        let redis = redis::aio::ConnectionManager::new_with_config(
            client,
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(3)))
                .set_response_timeout(Some(Duration::from_secs(3))),
        )
        .await?;
        let identity_channel = examreg_kit::grpc::channel(&config.identity_url)?;
        let verification_channel = examreg_kit::grpc::channel(&config.verification_url)?;
        let biometrics_channel = examreg_kit::grpc::channel(&config.biometrics_url)?;
        let profile_channel = examreg_kit::grpc::channel(&config.profile_url)?;
        let token = ServiceToken::new(
            identity_channel.clone(),
            config.client_id.clone(),
            config.client_secret.clone(),
        );
        let (listener, addr) = examreg_kit::grpc::bind(config.addr).await?;
        let state = AppState {
            inner: Arc::new(Inner {
                flows: flow::Flows::new(redis.clone(), config.key_prefix.clone()),
                identity: IdentityServiceClient::new(identity_channel.clone()),
                verification: VerificationServiceClient::new(verification_channel.clone()),
                identity_channel,
                verification_channel,
                biometrics: examreg_proto::biometrics::v1::biometrics_service_client::BiometricsServiceClient::new(
                    biometrics_channel.clone(),
                ),
                biometrics_channel,
                profile: examreg_proto::profile::v1::profile_service_client::ProfileServiceClient::new(
                    profile_channel.clone(),
                ),
                profile_channel,
                redis,
                token,
                keys,
                metrics: examreg_kit::metrics::recorder(),
                admission: admission::Admission::new(config.admission_pause),
                config,
            }),
        };
        Ok(Self {
            listener,
            addr,
            state,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        // Replies go out at once (no waiting on the client's delayed ACK).
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
