//! Photo bodies held in memory, bounded. A photo is read whole before it goes on to biometrics
//! (up to `GATEWAY_PHOTO_LIMIT_BYTES` each), so without a bound a crowd of uploads — or a few
//! that arrive a byte at a time — would hold the pod's memory until it is killed. Two rules:
//!
//! - **A budget of bytes** (`GATEWAY_BODY_BUDGET_BYTES`) for all the photo bodies of this
//!   replica in flight: an upload reserves what it declares (`Content-Length`, or the photo
//!   limit when it does not say) before a byte is read, and holds it until its answer is sent.
//!   Past the budget the answer is 503 `uploads_busy` with Retry-After, at once.
//! - **A least receive rate** (`GATEWAY_BODY_MIN_RATE_BYTES_PER_SEC` after a grace of
//!   `GATEWAY_BODY_GRACE_SECS`): a body whose bytes arrive slower on average is cut with 408
//!   `body_too_slow`, and its reservation goes back.
//!
//! JSON bodies are not counted: they are at most `GATEWAY_BODY_LIMIT_BYTES` (64 KiB) each.

use crate::error::{ApiError, ApiResult};
use axum::{
    body::{Body, Bytes},
    http::StatusCode,
};
use futures::StreamExt;
use std::{sync::Arc, time::Duration};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What the budget counts in: a permit per KiB, so a budget of gigabytes fits the semaphore.
const UNIT: u64 = 1024;

/// The replica's budget and pace for photo bodies.
#[derive(Clone)]
pub struct Bodies {
    budget: Arc<Semaphore>,
    min_rate: u64,
    grace: Duration,
}

/// A body's reservation of the budget, given back when dropped.
#[must_use = "the reservation holds the body's bytes until the answer is sent"]
pub struct Held(#[allow(dead_code)] OwnedSemaphorePermit);

impl Bodies {
    pub fn new(budget_bytes: u64, min_rate: u64, grace: Duration) -> Self {
        let units = usize::try_from(budget_bytes.div_ceil(UNIT)).unwrap_or(Semaphore::MAX_PERMITS);
        Self {
            budget: Arc::new(Semaphore::new(units.min(Semaphore::MAX_PERMITS))),
            min_rate: min_rate.max(1),
            grace,
        }
    }

    /// Reads `body` whole, at most `limit` bytes, `declared` the length it announced: within
    /// the budget (503 `uploads_busy` past it), at the least rate (408 `body_too_slow`), 413
    /// `body_too_large` beyond the limit. The bytes, and the reservation to keep while they are
    /// used.
    pub async fn read(
        &self,
        body: Body,
        limit: usize,
        declared: Option<u64>,
    ) -> ApiResult<(Bytes, Held)> {
        let limit = limit as u64;
        let reserve = match declared {
            Some(length) if length > limit => return Err(too_large()),
            Some(length) => length,
            None => limit,
        };
        let units = u32::try_from(reserve.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        let Ok(permit) = self.budget.clone().try_acquire_many_owned(units) else {
            metrics::counter!("gateway_bodies_refused_total", "why" => "budget").increment(1);
            return Err(
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "uploads_busy")
                    .retry_after(Duration::from_secs(2)),
            );
        };
        metrics::gauge!("gateway_body_bytes_held").increment(reserve as f64);
        let held = Held(permit);
        let _count = Counted(reserve);
        let started = tokio::time::Instant::now();
        let mut body = body.into_data_stream();
        let mut bytes = Vec::new();
        loop {
            // By now at least (elapsed - grace) × rate bytes must have come: the next frame is
            // awaited until the moment the bytes so far stop being enough.
            let due = started
                + self.grace
                + Duration::from_secs_f64(bytes.len() as f64 / self.min_rate as f64);
            let data = match tokio::time::timeout_at(due, body.next()).await {
                Err(_) => {
                    metrics::counter!("gateway_bodies_refused_total", "why" => "slow").increment(1);
                    return Err(ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_too_slow"));
                }
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    return Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_request"));
                }
                Ok(Some(Ok(data))) => data,
            };
            if (bytes.len() + data.len()) as u64 > reserve {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
        Ok((Bytes::from(bytes), held))
    }
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
}

/// Keeps `gateway_body_bytes_held` while a body is read.
struct Counted(u64);

impl Drop for Counted {
    fn drop(&mut self) {
        metrics::gauge!("gateway_body_bytes_held").decrement(self.0 as f64);
    }
}

/// The length a request announced.
pub fn declared(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trickle(chunks: usize, every: Duration) -> Body {
        let stream = futures::stream::iter(0..chunks).then(move |_| async move {
            tokio::time::sleep(every).await;
            Ok::<_, std::io::Error>(Bytes::from_static(&[7u8; 1000]))
        });
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn a_body_slower_than_the_least_rate_is_cut_and_gives_its_bytes_back() {
        let bodies = Bodies::new(10_000, 10_000, Duration::from_millis(50));
        // 1000 bytes a second, a tenth of the least rate: cut once the grace is spent.
        let slow = bodies.read(trickle(9, Duration::from_secs(1)), 9_000, Some(9_000));
        let error = slow.await.err().unwrap();
        assert_eq!(error.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(error.code, "body_too_slow");
        // Its reservation went back: a body of the whole budget's size fits again.
        let (bytes, _held) = bodies
            .read(trickle(9, Duration::ZERO), 10_000, Some(9_000))
            .await
            .ok()
            .unwrap();
        assert_eq!(bytes.len(), 9_000);
    }

    #[tokio::test]
    async fn past_the_budget_a_body_is_refused_before_it_is_read() {
        let bodies = Bodies::new(20 * 1024, 1, Duration::from_secs(60));
        let (_, first) = bodies
            .read(Body::from(vec![0u8; 15 * 1024]), 15 * 1024, Some(15 * 1024))
            .await
            .ok()
            .unwrap();
        let busy = bodies
            .read(Body::from(vec![0u8; 10 * 1024]), 15 * 1024, Some(10 * 1024))
            .await
            .err()
            .unwrap();
        assert_eq!(
            (busy.status, busy.code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "uploads_busy")
        );
        assert!(busy.retry_after.is_some());
        // Undeclared: the limit is reserved; more than declared is too large.
        drop(first);
        let lying = bodies
            .read(Body::from(vec![0u8; 2048]), 15 * 1024, Some(1024))
            .await
            .err()
            .unwrap();
        assert_eq!(lying.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            bodies
                .read(Body::from(vec![0u8; 16 * 1024]), 15 * 1024, None)
                .await
                .is_err()
        );
    }
}
