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

/// What this replica knows of the per-minute counts, so that a request of a client far below
/// its budget need not wait for Redis's answer: its count and its work go at once, and the
/// answer, which still lands in the shared counter, only updates what is known. A request
/// waits for the count first when this replica has seen the client at half its budget this
/// minute, or while [`IN_FLIGHT`] of its counts are unanswered here, or when the table is
/// full. Each replica's counts are awaited once it could matter, so the budget holds to
/// within [`IN_FLIGHT`] requests a replica (ones that other replicas' counts pushed past
/// it while this one's were in flight); with one replica it holds exactly.
#[derive(Default)]
pub struct Budgets(std::sync::Mutex<std::collections::HashMap<String, Known>>);

#[derive(Clone, Copy)]
pub struct Known {
    minute: i64,
    /// The greatest count Redis answered for the client this minute.
    counted: u64,
    /// Counts sent from here and not answered yet.
    in_flight: u64,
}

/// The most counts of one client a replica sends without waiting for their answers.
const IN_FLIGHT: u64 = 4;
/// The most clients a replica remembers; past it, clients of earlier minutes are forgotten,
/// and if the table is still full a new client's requests wait for their counts.
const KNOWN_CLIENTS: usize = 100_000;

impl Budgets {
    fn table(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Known>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a count about to be sent; whether the request may go on without its answer.
    fn send(&self, who: &str, minute: i64, limit: u64) -> bool {
        let fresh = Known {
            minute,
            counted: 0,
            in_flight: 0,
        };
        let mut table = self.table();
        // A known client costs no allocation; a new one its key.
        let known = match table.get_mut(who) {
            Some(known) => known,
            None => {
                if table.len() >= KNOWN_CLIENTS {
                    table.retain(|_, known| known.minute >= minute);
                    if table.len() >= KNOWN_CLIENTS {
                        return false;
                    }
                }
                table.entry(who.to_owned()).or_insert(fresh)
            }
        };
        if known.minute != minute {
            *known = fresh;
        }
        let ahead =
            known.in_flight < IN_FLIGHT && 2 * (known.counted + known.in_flight + 1) <= limit;
        known.in_flight += 1;
        ahead
    }

    /// Notes the answer (None: the count failed).
    fn answered(&self, who: &str, minute: i64, used: Option<u64>) {
        if let Some(known) = self.table().get_mut(who)
            && known.minute == minute
        {
            known.in_flight = known.in_flight.saturating_sub(1);
            known.counted = known.counted.max(used.unwrap_or(0));
        }
    }
}

/// Counts one request of `who` against `limit` and runs it if it is within: beside the count
/// when [`Budgets`] says it may, after it otherwise. `Ok(Err(request))` hands back a request
/// past the limit; `Err` is a count that failed before anything ran.
async fn counted(
    state: &AppState,
    who: &str,
    minute: i64,
    limit: u64,
    request: Request,
    next: Next,
) -> redis::RedisResult<Result<Response, Request>> {
    if state.budgets.send(who, minute, limit) {
        let (used, response) = tokio::join!(count(state, who, minute), next.run(request));
        if let Err(e) = &used {
            // The request was already within what this replica knew; the next one waits.
            tracing::warn!(error = %e, "a request's count failed after it ran");
        }
        state.budgets.answered(who, minute, used.ok());
        return Ok(Ok(response));
    }
    let used = count(state, who, minute).await;
    state
        .budgets
        .answered(who, minute, used.as_ref().ok().copied());
    if used? > limit {
        return Ok(Err(request));
    }
    Ok(Ok(next.run(request).await))
}

fn rate_limited(now: i64) -> Response {
    let wait = 60 - now.rem_euclid(60);
    metrics::counter!("gateway_rate_limited_total").increment(1);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")
        .retry_after(Duration::from_secs(u64::try_from(wait).unwrap_or(60)))
        .into_response()
}

/// The passes an address minted in the current window.
fn passes_key(state: &AppState, address: &str, now: i64) -> String {
    let window = now / crate::pow::WINDOW_SECS;
    format!(
        "{}pow:passes:{{{address}}}:{window}",
        state.config.key_prefix
    )
}

/// Mints a pass for a solution of ARGV[1] (`maxnumber`) when at most ARGV[5] (`slack`) passes
/// were minted at the address since its price was that (`Pow::accepts`), counting the pass;
/// answers whether it minted and the address's price now. The price is `Pow::price`:
/// base + ⌊base × passes / step⌋. One script, so that parallel redemptions each see the passes
/// the others minted.
static REDEEM: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local offered, base, step = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local passes = tonumber(redis.call('GET', KEYS[1]) or 0)
local function price(p) return base + math.floor(base * p / step) end
if offered < price(math.max(passes - tonumber(ARGV[5]), 0)) then
  return {0, price(passes)}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {1, price(passes + 1)}
",
    )
});

/// 429 `proof_of_work_required` with a challenge of `maxnumber`.
fn challenge(state: &AppState, maxnumber: u64, now: i64) -> Response {
    let challenge = state.pow.challenge(maxnumber, now);
    metrics::counter!("gateway_pow_challenges_total").increment(1);
    let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "proof_of_work_required");
    error.extra = Some(serde_json::json!({ "proof_of_work": challenge }));
    error.into_response()
}

/// 429 `proof_of_work_required` with a challenge at the address's current price.
async fn ask_for_work(state: &AppState, address: &str, now: i64) -> Response {
    let passes: redis::RedisResult<Option<u64>> =
        redis::AsyncCommands::get(&mut state.redis.clone(), passes_key(state, address, now)).await;
    match passes {
        Ok(passes) => challenge(state, state.pow.price(passes.unwrap_or(0)), now),
        Err(e) => ApiError::unavailable(&e).into_response(),
    }
}

/// What redeeming a solution came to.
enum Redeemed {
    /// A pass: its id and token.
    Pass(String, String),
    /// Right and unused, but issued when the address was cheaper by more than a step: a
    /// challenge at today's price.
    Stale(u64),
    /// Not ours, wrong, expired or used.
    Refused,
}

/// Spends a solution (once) for a pass, if it is still worth one.
async fn redeem(
    state: &AppState,
    solution: &str,
    address: &str,
    now: i64,
) -> redis::RedisResult<Redeemed> {
    let Some(solved) = state.pow.check(solution, now) else {
        return Ok(Redeemed::Refused);
    };
    let first: Option<String> = redis::cmd("SET")
        .arg(format!(
            "{}pow:used:{{{}}}",
            state.config.key_prefix, solved.challenge
        ))
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(600)
        .query_async(&mut state.redis.clone())
        .await?;
    if first.is_none() {
        return Ok(Redeemed::Refused);
    }
    let (minted, price): (u8, u64) = REDEEM
        .key(passes_key(state, address, now))
        .arg(solved.maxnumber)
        .arg(state.pow.base)
        .arg(state.pow.step)
        .arg(2 * crate::pow::WINDOW_SECS)
        .arg(state.pow.slack)
        .invoke_async(&mut state.redis.clone())
        .await?;
    if minted == 0 {
        metrics::counter!("gateway_pow_stale_total").increment(1);
        return Ok(Redeemed::Stale(price));
    }
    metrics::counter!("gateway_pow_passes_total").increment(1);
    let (id, token) = state.pow.pass(now);
    Ok(Redeemed::Pass(id, token))
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
        request.extensions_mut().insert(Vouched(pass.clone()));
        return match counted(
            &state,
            &format!("pass:{pass}"),
            minute,
            limit,
            request,
            next,
        )
        .await
        {
            Ok(Ok(response)) => response,
            Ok(Err(_)) => rate_limited(now),
            Err(e) => ApiError::unavailable(&e).into_response(),
        };
    }
    let Some(solution) = solution else {
        return match counted(&state, &client.address, minute, limit, request, next).await {
            Ok(Ok(response)) => {
                if crate::error::code_of(&response) == Some("address_budget_exhausted") {
                    return ask_for_work(&state, &client.address, now).await;
                }
                response
            }
            Ok(Err(_)) => ask_for_work(&state, &client.address, now).await,
            // Redis down: the flows cannot work either; say so instead of failing open
            // silently.
            Err(e) => ApiError::unavailable(&e).into_response(),
        };
    };
    // A solution comes with the request: the address is counted, and the solution redeemed
    // whether or not it was within.
    if let Err(e) = count(&state, &client.address, minute).await {
        return ApiError::unavailable(&e).into_response();
    }
    match redeem(&state, &solution, &client.address, now).await {
        Ok(Redeemed::Pass(id, token)) => {
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
        Ok(Redeemed::Stale(price)) => challenge(&state, price, now),
        Ok(Redeemed::Refused) => {
            tracing::info!("proof of work refused: not ours, wrong, expired or used");
            ask_for_work(&state, &client.address, now).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_goes_ahead_of_its_count_only_far_below_the_budget() {
        let budgets = Budgets::default();
        let limit = 20;
        // A client unknown this minute: ahead, up to IN_FLIGHT counts unanswered.
        for _ in 0..IN_FLIGHT {
            assert!(budgets.send("10.0.0.1", 7, limit));
        }
        assert!(!budgets.send("10.0.0.1", 7, limit), "too many in flight");
        // The answers come: four of them, and the fifth (the one that waited).
        for used in 1..=IN_FLIGHT + 1 {
            budgets.answered("10.0.0.1", 7, Some(used));
        }
        // Counted 5 of 20: ahead while 2 × (counted + in flight + 1) ≤ 20.
        for _ in 0..IN_FLIGHT {
            assert!(budgets.send("10.0.0.1", 7, limit));
        }
        (6..=9).for_each(|used| budgets.answered("10.0.0.1", 7, Some(used)));
        assert!(budgets.send("10.0.0.1", 7, limit), "10 of 20 still ahead");
        budgets.answered("10.0.0.1", 7, Some(10));
        assert!(!budgets.send("10.0.0.1", 7, limit), "11 of 20 waits");
        budgets.answered("10.0.0.1", 7, Some(11));
        // Another replica's counts show in an answer: it waits from then on.
        assert!(budgets.send("10.0.0.2", 7, limit));
        budgets.answered("10.0.0.2", 7, Some(15));
        assert!(!budgets.send("10.0.0.2", 7, limit));
        // A failed count is not a count, but its request no longer in flight.
        budgets.answered("10.0.0.2", 7, None);
        // A new minute starts from nothing, as Redis's counter does.
        assert!(budgets.send("10.0.0.1", 8, limit));
        // A late answer of the old minute changes nothing.
        budgets.answered("10.0.0.1", 7, Some(19));
        assert!(budgets.send("10.0.0.1", 8, limit));
    }

    #[test]
    fn a_full_table_forgets_old_minutes_then_makes_new_clients_wait() {
        let budgets = Budgets::default();
        for i in 0..KNOWN_CLIENTS {
            assert!(budgets.send(&format!("c{i}"), 1, 100));
        }
        // Full of this minute's clients: a new one waits for its count.
        assert!(!budgets.send("new", 1, 100));
        assert_eq!(budgets.table().len(), KNOWN_CLIENTS);
        // The next minute the old ones are forgotten.
        assert!(budgets.send("new", 2, 100));
        assert_eq!(budgets.table().len(), 1);
        // A limit too small to halve never goes ahead.
        assert!(!budgets.send("tiny", 2, 1));
    }
}
