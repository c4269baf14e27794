//! Operations endpoints: liveness, readiness (checks the dependencies), Prometheus metrics,
//! and the docs page: Swagger UI (vendored in the binary, so it needs nothing from the
//! internet) over `/openapi.json`, with try-it-out.

use crate::{state::AppState, upstream::serving};
use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Alive {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    operation_id = "healthz",
    responses((status = 200, description = "Alive", body = Alive))
)]
async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

/// What readiness found: each dependency, answering or not.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    redis: bool,
    identity: bool,
    verification: bool,
    biometrics: bool,
    profile: bool,
}

/// The docs page's routes (Swagger UI and `/openapi.json`) behind a content security policy
/// that lets the page load nothing but its own files and call nothing but this gateway.
pub fn docs<S: Clone + Send + Sync + 'static>(swagger: Router<S>) -> Router<S> {
    swagger.layer(axum::middleware::map_response(
        |mut response: Response| async move {
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; connect-src 'self'",
                ),
            );
            response
        },
    ))
}

/// Readiness: Redis and the services answer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: the dependencies that did not answer are false", body = Readiness),
    )
)]
async fn readyz(State(state): State<AppState>) -> Response {
    let redis = async {
        let pong: Result<String, _> = redis::cmd("PING")
            .query_async(&mut state.redis.clone())
            .await;
        pong.is_ok()
    };
    let (redis, identity, verification, biometrics, profile) = tokio::join!(
        redis,
        serving(state.identity.channel()),
        serving(state.verification.channel()),
        serving(state.biometrics.channel()),
        serving(state.profile.channel())
    );
    let body = Readiness {
        redis,
        identity,
        verification,
        biometrics,
        profile,
    };
    let status = if redis && identity && verification && biometrics && profile {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    operation_id = "metrics",
    responses((status = 200, description = "Metrics in the Prometheus text format", content_type = "text/plain", body = String))
)]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
