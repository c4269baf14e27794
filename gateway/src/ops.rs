//! Operations endpoints: liveness, readiness (checks the dependencies), Prometheus metrics,
//! and the docs page: Swagger UI (vendored in the binary, so it needs nothing from the
//! internet) over `/openapi.json`, with try-it-out.

use crate::{state::AppState, upstream::serving};
use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
    let body = json!({
        "redis": redis, "identity": identity, "verification": verification,
        "biometrics": biometrics, "profile": profile,
    });
    let status = if redis && identity && verification && biometrics && profile {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
