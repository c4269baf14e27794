//! Admission at the door. When a service refuses work as `overloaded` (its CPU pool and
//! queue are full), this gateway stops starting new journeys — registrations and password
//! recoveries — for a short pause, while applicants already on their way go on. Without it,
//! at twice the sustainable rate new arrivals kept taking hashes and photo checks from the
//! people ahead of them, and most of the work done went to journeys that were then turned
//! away half-way (the benchmark's overload run: 3.1 completions/s against 6.0 sustainable).
//! Refusing at the first screen costs nothing, and the person is told to try again shortly.
//!
//! Each gateway replica learns from its own answers; no shared state is needed because every
//! replica sends work to the same pools and sees their refusals.

use crate::error::ApiError;
use axum::{
    extract::{MatchedPath, Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// The routes that begin a journey which will need the heavy work later.
const DOORS: [(&Method, &str); 2] = [
    (&Method::POST, "/v1/registrations"),
    (&Method::POST, "/v1/recovery"),
];

pub struct Admission {
    /// How long the door stays shut after the last `overloaded` from a service
    /// (`GATEWAY_ADMISSION_PAUSE_MS`, 1 s): long enough for the pools to drain their queues,
    /// short enough that an idle moment is not wasted.
    pause: Duration,
    origin: Instant,
    /// Milliseconds after `origin` until which the door is shut.
    shut_until: AtomicU64,
}

impl Admission {
    pub fn new(pause: Duration) -> Self {
        Self {
            pause,
            origin: Instant::now(),
            shut_until: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A service said `overloaded`: shut the door for the pause from now.
    pub fn overloaded(&self) {
        let pause = u64::try_from(self.pause.as_millis()).unwrap_or(u64::MAX);
        let until = self.now_ms().saturating_add(pause);
        self.shut_until.fetch_max(until, Ordering::Relaxed);
    }

    /// How long the door stays shut, if it is.
    pub fn shut_for(&self) -> Option<Duration> {
        let until = self.shut_until.load(Ordering::Relaxed);
        let now = self.now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }
}

/// Refuses a new journey while the door is shut; watches every other answer for `overloaded`.
pub async fn admit(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let is_door = request.extensions().get::<MatchedPath>().is_some_and(|p| {
        DOORS
            .iter()
            .any(|(m, path)| *m == request.method() && *path == p.as_str())
    });
    if is_door && let Some(wait) = admission.shut_for() {
        metrics::counter!("gateway_admission_refused_total").increment(1);
        return ApiError::new(StatusCode::TOO_MANY_REQUESTS, "overloaded")
            .retry_after(wait)
            .into_response();
    }
    let response = next.run(request).await;
    if crate::error::code_of(&response) == Some("overloaded") {
        admission.overloaded();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_door_shuts_for_the_pause_and_opens_again() {
        const PAUSE: Duration = Duration::from_secs(1);
        let admission = Admission::new(PAUSE);
        assert_eq!(admission.shut_for(), None);
        admission.overloaded();
        let wait = admission.shut_for().expect("shut after an overload");
        assert!(wait <= PAUSE && wait > PAUSE / 2);
        // The end moves only forward.
        admission.shut_until.store(u64::MAX - 1, Ordering::Relaxed);
        admission.overloaded();
        assert_eq!(admission.shut_until.load(Ordering::Relaxed), u64::MAX - 1);
        admission.shut_until.store(0, Ordering::Relaxed);
        assert_eq!(admission.shut_for(), None);
    }
}
