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

/// A client the gateway vouches for past its address's soft limits: the pass it earned by a
/// proof of work. Its budgets (requests here, letters at verification) are the pass's own.
#[derive(Debug, Clone)]
pub struct Vouched(pub String);

/// Adds one to a per-minute request counter in Redis (shared by every replica).
/// Counts one more request of `who` in `minute` (shared by every replica); the count so far.
pub(crate) async fn count(state: &AppState, who: &str, minute: i64) -> redis::RedisResult<u64> {
    let key = format!("{}rl:{{{who}}}:{minute}", state.config.key_prefix);
    let (used,): (u64,) = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .expire(&key, 120)
        .ignore()
        .query_async(&mut state.redis.clone())
        .await?;
    Ok(used)
}

fn rate_limited(now: i64) -> Response {
    let wait = 60 - now.rem_euclid(60);
    metrics::counter!("gateway_rate_limited_total").increment(1);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        .retry_after(Duration::from_secs(u64::try_from(wait).unwrap_or(60)))
        .into_response()
}

fn passes_key(state: &AppState, ip: &str, now: i64) -> String {
    let window = now / crate::pow::WINDOW_SECS;
    format!("{}pow:passes:{{{ip}}}:{window}", state.config.key_prefix)
}

/// 429 `proof_of_work_required` with a challenge as hard as the address's recent passes ask.
async fn ask_for_work(state: &AppState, ip: &str, now: i64) -> Response {
    let passes: redis::RedisResult<Option<u64>> =
        redis::AsyncCommands::get(&mut state.redis.clone(), passes_key(state, ip, now)).await;
    let passes = match passes {
        Ok(passes) => passes.unwrap_or(0),
        Err(e) => return ApiError::unavailable(&e).into_response(),
    };
    let challenge = state.pow.challenge(state.pow.maxnumber(passes), now);
    metrics::counter!("gateway_pow_challenges_total").increment(1);
    let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "proof_of_work_required");
    error.extra = Some(serde_json::json!({ "proof_of_work": challenge }));
    error.into_response()
}

/// A pass for a solution that is ours, right, unexpired and not used before.
async fn redeem(
    state: &AppState,
    solution: &str,
    ip: &str,
    now: i64,
) -> redis::RedisResult<Option<(String, String)>> {
    let Some(challenge) = state.pow.check(solution, now) else {
        return Ok(None);
    };
    let mut redis = state.redis.clone();
    let first: Option<String> = redis::cmd("SET")
        .arg(format!(
            "{}pow:used:{{{challenge}}}",
            state.config.key_prefix
        ))
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(600)
        .query_async(&mut redis)
        .await?;
    if first.is_none() {
        return Ok(None);
    }
    let key = passes_key(state, ip, now);
    let _: () = redis::pipe()
        .atomic()
        .incr(&key, 1)
        .ignore()
        .expire(&key, 2 * crate::pow::WINDOW_SECS)
        .ignore()
        .query_async(&mut redis)
        .await?;
    metrics::counter!("gateway_pow_passes_total").increment(1);
    Ok(Some(state.pow.pass(now)))
}

/// The per-client request budget per minute. A client with a pass is counted on its own pass,
/// hard. Without one it is counted on its address, softly: past the limit a solved challenge
/// earns a pass (the answer carries it in `X-Pow-Pass`), anything else gets a challenge. A
/// letter verification refuses for the address's budget is answered with a challenge the same
/// way, for a client without a pass.
pub async fn rate_limit(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = Client::from_parts(&state.config, request.headers(), peer);
    let now = chrono::Utc::now().timestamp();
    let minute = now / 60;
    // Owned before any await: a borrowed request (its body is not Sync) would make this
    // future not Send.
    let [pass, solution] = [crate::pow::PASS_HEADER, crate::pow::SOLUTION_HEADER].map(|name| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    let limit = u64::from(state.config.rate_limit);
    if let Some(pass) = pass.and_then(|t| state.pow.check_pass(&t, now)) {
        return match count(&state, &format!("pass:{pass}"), minute).await {
            Ok(used) if used > limit => rate_limited(now),
            Ok(_) => {
                request.extensions_mut().insert(Vouched(pass));
                next.run(request).await
            }
            Err(e) => ApiError::unavailable(&e).into_response(),
        };
    }
    let within = match count(&state, &client.ip, minute).await {
        Ok(used) => used <= limit,
        // Redis down: the flows cannot work either; say so instead of failing open silently.
        Err(e) => return ApiError::unavailable(&e).into_response(),
    };
    if within && solution.is_none() {
        let response = next.run(request).await;
        if crate::error::code_of(&response) == Some("address_budget_exhausted") {
            return ask_for_work(&state, &client.ip, now).await;
        }
        return response;
    }
    let Some(solution) = solution else {
        return ask_for_work(&state, &client.ip, now).await;
    };
    match redeem(&state, &solution, &client.ip, now).await {
        Ok(Some((id, token))) => {
            count(&state, &format!("pass:{id}"), minute).await.ok();
            request.extensions_mut().insert(Vouched(id));
            let mut response = next.run(request).await;
            if let Ok(value) = HeaderValue::from_str(&token) {
                response
                    .headers_mut()
                    .insert(crate::pow::PASS_HEADER, value);
            }
            response
        }
        Ok(None) => {
            tracing::info!("proof of work refused: not ours, wrong, expired or used");
            ask_for_work(&state, &client.ip, now).await
        }
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
            header::HeaderName::from_static(crate::pow::SOLUTION_HEADER),
            header::HeaderName::from_static(crate::pow::PASS_HEADER),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::CONTENT_LANGUAGE,
            header::HeaderName::from_static(crate::pow::PASS_HEADER),
        ])
        .max_age(Duration::from_secs(600))
}
