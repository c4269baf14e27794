//! What runs around every request: the per-address budget, `no-store` on private answers,
//! the request metrics and span, CORS. (The admission gate is `admission`, the localized
//! errors `error::localize`.)

use crate::{error::ApiError, extract::Client, state::AppState};
use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{net::SocketAddr, time::Duration};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Per-IP request budget per minute, counted in Redis so it holds across replicas.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
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
pub async fn no_store(request: Request, next: Next) -> Response {
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
pub async fn track(request: Request, next: Next) -> Response {
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

pub fn cors(origins: &[String]) -> CorsLayer {
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
