//! Putting the gateway together: the router of every resource behind the middleware, and the
//! [`Application`] that connects to Redis and the services, binds, and serves until stopped.

use crate::{
    admin, admission, capture,
    config::{Config, Docs},
    error, handoff, middleware as mw, onboarding, openapi, ops, profile, recovery, reference,
    registration, sessions,
    state::{AppState, Inner},
    upstream, web,
};
use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::StatusCode,
    middleware::{from_fn, from_fn_with_state},
};
use examreg_kit::{
    auth::Keys,
    client::ServiceToken,
    service::{Serve, Stop},
};
use std::{
    future::{Future, IntoFuture},
    net::SocketAddr,
    sync::Arc,
    time::Duration,
};
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

/// The `/v1` API, resource by resource, each describing its routes for the document.
fn described() -> OpenApiRouter<AppState> {
    limited().merge(capture::frames()).merge(admin::router())
}

/// The applicants' routes behind the per-address limit and the admission gate: all but the
/// preview frames (`capture::frames`, which shed load on their own) and the operators'.
fn limited() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::frame())
        .merge(reference::router())
        .merge(registration::router())
        .merge(sessions::router())
        .merge(recovery::router())
        .merge(onboarding::router())
        .merge(handoff::router())
        .merge(capture::router())
        .merge(profile::router())
}

/// The OpenAPI document: what the routes of every port describe (each path says its port).
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = described().split_for_parts();
    document.merge(ops::router().split_for_parts().1);
    openapi::finish(&mut document);
    document
}

/// The docs viewer over `/openapi.json`, for the port `GATEWAY_DOCS` names.
fn docs(state: &AppState) -> Router<AppState> {
    let swagger = SwaggerUi::new("/docs")
        .url("/openapi.json", state.texts.describe(document()))
        .config(
            SwaggerConfig::default()
                .validator_url("none")
                .try_it_out_enabled(true),
        );
    ops::docs(Router::from(swagger))
}

/// What every port's answers go through: errors in the caller's language, no caching, the
/// request counted and timed.
fn finished(router: Router<AppState>, state: AppState) -> Router {
    router
        .fallback(|| async { error::ApiError::new(StatusCode::NOT_FOUND, "not_found") })
        .layer(from_fn(error::localize))
        .layer(from_fn(mw::no_store))
        .layer(from_fn(mw::track))
        .with_state(state)
}

/// The applicants' port: the API, the pages, `/openapi.json` (and the docs viewer when
/// `GATEWAY_DOCS=public`).
pub fn router(state: AppState) -> Router {
    let (api, _) = limited().split_for_parts();
    let (frames, _) = capture::frames().split_for_parts();
    let api = api
        .layer(from_fn_with_state(state.clone(), mw::rate_limit))
        .layer(from_fn_with_state(
            state.admission.clone(),
            admission::admit,
        ))
        .layer(DefaultBodyLimit::max(state.config.body_limit));
    let public = Router::new().merge(api).merge(frames).merge(web::router());
    // The viewer serves `/openapi.json` itself.
    let public = if state.config.docs == Docs::Public {
        public.merge(docs(&state))
    } else {
        let contract = state.texts.describe(document());
        public.route(
            "/openapi.json",
            axum::routing::get(move || {
                let contract = contract.clone();
                async move { axum::Json(contract) }
            }),
        )
    };
    let cors = mw::cors(&state.config.cors_origins);
    finished(public, state).layer(cors)
}

/// The operators' port: the admin routes (and the docs viewer, by default).
pub fn admin_router(state: AppState) -> Router {
    let (admin, _) = admin::router().split_for_parts();
    let mut routes = admin.layer(DefaultBodyLimit::max(state.config.body_limit));
    if state.config.docs == Docs::Admin {
        routes = routes.merge(docs(&state));
    }
    finished(routes, state)
}

/// The platform's port: liveness, readiness and the metrics.
pub fn ops_router(state: AppState) -> Router {
    let (ops, _) = ops::router().split_for_parts();
    finished(ops, state)
}

pub struct Application {
    listeners: [(TcpListener, SocketAddr); 3],
    state: AppState,
}

impl Application {
    /// Connects to Redis and the services and binds the listener. `keys` must hold identity's
    /// JWK Set (see `examreg_kit::auth::Keys::fetch`).
    pub async fn build(config: Config, keys: Keys) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !config.pow_key.expose().is_empty(),
            "GATEWAY_POW_KEY is required"
        );
        let texts = crate::texts::Texts::load(config.texts_dir.as_deref())?;
        let redis =
            examreg_kit::redis::connect(config.redis_url.expose(), Duration::from_secs(3)).await?;
        let identity = examreg_kit::channel::lazy(&config.identity_url, &config.tls)?;
        let calls = upstream::Calls::new(ServiceToken::of(identity.clone(), &config.client));
        let verification = examreg_kit::channel::lazy(&config.verification_url, &config.tls)?;
        let biometrics = examreg_kit::channel::lazy(&config.biometrics_url, &config.tls)?;
        let profile = examreg_kit::channel::lazy(&config.profile_url, &config.tls)?;
        let listeners = [
            examreg_kit::server::bind(config.addr).await?,
            examreg_kit::server::bind(config.admin_addr).await?,
            examreg_kit::server::bind(config.ops_addr).await?,
        ];
        let state = AppState {
            inner: Arc::new(Inner {
                flows: crate::flow::Flows::new(redis.clone(), config.key_prefix.clone()),
                identity: upstream::Identity::new(identity, calls.clone()),
                verification: upstream::Verification::new(verification, calls.clone()),
                biometrics: upstream::Biometrics::new(biometrics, calls.clone()),
                profile: upstream::Profile::new(profile, calls),
                redis,
                keys,
                metrics: examreg_kit::metrics::recorder(),
                admission: Arc::new(admission::Admission::new(config.admission_pause)),
                pow: crate::pow::Pow::new(
                    config.pow_key.expose().as_bytes(),
                    config.pow_base,
                    config.pow_step,
                    config.pow_slack,
                    config.pow_pass_ttl,
                ),
                texts,
                budgets: crate::middleware::Budgets::default(),
                bodies: crate::bodies::Bodies::new(
                    config.body_budget,
                    config.body_min_rate,
                    config.body_grace,
                ),
                config,
            }),
        };
        Ok(Self { listeners, state })
    }

    /// The applicants' port.
    pub fn addr(&self) -> SocketAddr {
        self.listeners[0].1
    }

    /// The operators' port.
    pub fn admin_addr(&self) -> SocketAddr {
        self.listeners[1].1
    }

    /// The platform's port (probes and metrics).
    pub fn ops_addr(&self) -> SocketAddr {
        self.listeners[2].1
    }

    /// Serves the three ports until `shutdown`; each then drains its requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = examreg_kit::tasks::Trigger::default();
        let fire = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            fire.fire();
        });
        let [public, admin, ops] = self.listeners;
        let state = self.state;
        let serve = |(listener, _): (TcpListener, SocketAddr), router: Router| {
            let app = router.into_make_service_with_connect_info::<SocketAddr>();
            // Replies go out at once (no waiting on the client's delayed ACK).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.signal())
                .into_future()
        };
        tokio::try_join!(
            serve(public, router(state.clone())),
            serve(admin, admin_router(state.clone())),
            serve(ops, ops_router(state)),
        )?;
        Ok(())
    }
}

impl Serve for Application {
    fn local_addr(&self) -> SocketAddr {
        self.addr()
    }

    fn serve(self, shutdown: Stop) -> impl Future<Output = anyhow::Result<()>> {
        self.run_until_stopped(shutdown)
    }
}
