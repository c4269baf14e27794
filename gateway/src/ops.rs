//! Operations endpoints: liveness, readiness (checks the dependencies), Prometheus metrics,
//! the OpenAPI document and a docs page that works offline.

use crate::{state::AppState, upstream::serving};
use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;

pub const OPENAPI: &str = include_str!("../static/openapi.json");
const DOCS_HTML: &str = include_str!("../static/docs.html");
const DOCS_JS: &str = include_str!("../static/docs.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/docs", get(docs))
        .route(
            "/docs/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    DOCS_JS,
                )
            }),
        )
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

async fn docs() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DOCS_HTML,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'"),
    );
    response
}
