//! Putting the gateway together: the router of every resource behind the middleware, and the
//! [`Application`] that connects to Redis and the services, binds, and serves until stopped.

use crate::{
    admin, admission, capture,
    config::Config,
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
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

/// The `/v1` API, resource by resource, each describing its routes for the document.
fn described() -> OpenApiRouter<AppState> {
    limited().merge(capture::frames())
}

/// The routes behind the per-address limit and the admission gate: all but the preview
/// frames, which have a budget per account of their own.
fn limited() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::frame())
        .merge(reference::router())
        .merge(registration::router())
        .merge(sessions::router())
        .merge(recovery::router())
        .merge(onboarding::router())
        .merge(handoff::router())
        .merge(admin::router())
        .merge(capture::router())
        .merge(profile::router())
}

/// The OpenAPI document: what the routes of the API and of operations describe.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = described().split_for_parts();
    document.merge(ops::router().split_for_parts().1);
    openapi::finish(&mut document);
    document
}

pub fn router(state: AppState) -> Router {
    let (api, _) = limited().split_for_parts();
    let (frames, _) = capture::frames().split_for_parts();
    let (ops, _) = ops::router().split_for_parts();
    let docs = SwaggerUi::new("/docs")
        .url("/openapi.json", state.texts.describe(document()))
        .config(
            SwaggerConfig::default()
                .validator_url("none")
                .try_it_out_enabled(true),
        );
    let api = api
        .layer(from_fn_with_state(state.clone(), mw::rate_limit))
        .layer(from_fn_with_state(
            state.admission.clone(),
            admission::admit,
        ))
        .layer(DefaultBodyLimit::max(state.config.body_limit));
    Router::new()
        .merge(api)
        .merge(frames)
        .merge(ops)
        .merge(ops::docs(Router::from(docs)))
        .merge(web::router())
        .fallback(|| async { error::ApiError::new(StatusCode::NOT_FOUND, "not_found") })
        .layer(from_fn(error::localize))
        .layer(from_fn(mw::no_store))
        .layer(from_fn(mw::track))
        .layer(mw::cors(&state.config.cors_origins))
        .with_state(state)
}

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
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
        let identity = examreg_kit::channel::lazy(&config.identity_url)?;
        let calls = upstream::Calls::new(ServiceToken::of(identity.clone(), &config.client));
        let verification = examreg_kit::channel::lazy(&config.verification_url)?;
        let biometrics = examreg_kit::channel::lazy(&config.biometrics_url)?;
        let profile = examreg_kit::channel::lazy(&config.profile_url)?;
        let (listener, addr) = examreg_kit::server::bind(config.addr).await?;
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

impl Serve for Application {
    fn local_addr(&self) -> SocketAddr {
        self.addr()
    }

    fn serve(self, shutdown: Stop) -> impl Future<Output = anyhow::Result<()>> {
        self.run_until_stopped(shutdown)
    }
}
