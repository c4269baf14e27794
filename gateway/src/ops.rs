//! Operations endpoints: liveness, readiness (Redis; the services' answers reported), Prometheus metrics,
//! and the docs page: Swagger UI (vendored in the binary, so it needs nothing from the
//! internet) over `/openapi.json`, with try-it-out.

use crate::{state::AppState, upstream::serving};
use axum::{
    Json, Router,
    extract::{RawQuery, State},
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

/// Readiness that degrades: the gateway is ready while it can serve something, that is while
/// Redis (its flows, sessions' revocations and limits) answers. A service that is down takes
/// only its own routes out (they answer 503 `dependency_unavailable`), not the whole pod and
/// the web pages with it. The body says which dependency answers, and
/// `gateway_dependency_up{dependency}` keeps it in the metrics; `/readyz?all` is ready only
/// when every one answers (for scripts waiting for the whole suite).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    operation_id = "readyz",
    params(("all" = Option<String>, Query, description = "Present: ready only when every dependency answers")),
    responses(
        (status = 200, description = "Ready (Redis answers; with `all`, every dependency); the body says which answer", body = Readiness),
        (status = 503, description = "Not ready: Redis does not answer (with `all`: some dependency does not)", body = Readiness),
    )
)]
async fn readyz(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let redis = async { examreg_kit::redis::ping(&state.redis).await.is_ok() };
    let (redis, identity, verification, biometrics, profile) = tokio::join!(
        redis,
        serving(state.identity.channel()),
        serving(state.verification.channel()),
        serving(state.biometrics.channel()),
        serving(state.profile.channel())
    );
    let found = [
        ("redis", redis),
        ("identity", identity),
        ("verification", verification),
        ("biometrics", biometrics),
        ("profile", profile),
    ];
    for (dependency, up) in found {
        metrics::gauge!("gateway_dependency_up", "dependency" => dependency).set(if up {
            1.0
        } else {
            0.0
        });
    }
    let all = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == "all" || p.starts_with("all=")));
    let ready = if all {
        found.iter().all(|(_, up)| *up)
    } else {
        redis
    };
    let body = Readiness {
        redis,
        identity,
        verification,
        biometrics,
        profile,
    };
    let status = if ready {
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
