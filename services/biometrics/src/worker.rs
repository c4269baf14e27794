//! The document check's readers: a few workers per replica claim the queue's checks
//! (`store::checks`), read the photo's machine-readable zone off the upload's path at background
//! priority, so a registration rush waits on nothing but the photo checks, and record what it
//! says. The applicant sees the result on the next onboarding poll.

use crate::{
    captures::Captures,
    ocr::{ReadError, Reader},
    reviews,
    store::checks::{self, Claimed},
};
use examreg_domain::mrz::{Format, Verdict};
use sqlx::PgPool;
use std::{path::PathBuf, sync::Arc, time::Duration};
use uuid::Uuid;

/// How long the readings under way may take to finish when the service stops.
const DRAIN: Duration = Duration::from_secs(10);
/// Attempts at a check whose reading fails for a reason other than the photo (the object
/// store, the model) before it is left to a person.
const MAX_ATTEMPTS: i32 = 5;
/// The purpose the access log gives for the worker's read of the photo.
const PURPOSE: &str = "reading the document's machine-readable zone";

/// The workers' settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The recognition network (see `deploy/mrz-model`).
    pub model: PathBuf,
    /// Checks read at once in this replica, each on a thread of its own at the lowest
    /// priority.
    pub workers: usize,
    /// The day a document must still be valid on (the exam session's last day); today when
    /// unset or past.
    pub valid_until: Option<chrono::NaiveDate>,
}

/// Runs the workers until `stop`: each claims a check, reads the photo (an access-logged
/// download), runs the reader on its own thread at the lowest priority (`work::Lane`: the
/// photo checks and hashes applicants wait for come first) and records the outcome. The network is loaded first, on a blocking thread, so start-up does not wait.
pub async fn run(
    captures: Arc<Captures>,
    sessions: PgPool,
    settings: Settings,
    stop: impl std::future::Future<Output = ()>,
) {
    let model = settings.model.clone();
    let loaded = tokio::task::spawn_blocking(move || Reader::load(&model)).await;
    let reader = match loaded {
        Ok(Ok(reader)) => Arc::new(reader),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the document reader did not load; document checks wait");
            stop.await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "the document reader's loading panicked");
            stop.await;
            return;
        }
    };
    tracing::info!(workers = settings.workers, "document reader loaded");
    let wake = Arc::new(tokio::sync::Notify::new());
    let pool = captures.pool.clone();
    let mut background = tokio::task::JoinSet::new();
    background.spawn(listen(sessions, wake.clone()));
    background.spawn(gauge(pool.clone()));
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let held: Held = Arc::default();
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..settings.workers.max(1) {
        let lane = match examreg_kit::work::Lane::new(&format!("mrz-{n}")) {
            Ok(lane) => lane,
            Err(e) => {
                tracing::error!(error = %e, "a document reader's thread did not start");
                continue;
            }
        };
        workers.spawn(worker(
            captures.clone(),
            reader.clone(),
            lane,
            wake.clone(),
            settings.valid_until,
            stopped.clone(),
            held.clone(),
        ));
    }
    stop.await;
    // A rollout or a drained node: the readings under way finish (a fraction of a second
    // each), no new one starts, and a claim still held after the drain is handed back at once
    // rather than after its lease, so an applicant's check does not wait minutes.
    let _ = stopping.send(true);
    background.abort_all();
    let drained = tokio::time::timeout(DRAIN, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        workers.abort_all();
    }
    let left: Vec<Uuid> = held
        .lock()
        .map(|held| held.iter().copied().collect())
        .unwrap_or_default();
    if !left.is_empty() {
        match checks::release(&pool, &left).await {
            Ok(()) => tracing::info!(released = left.len(), "document checks handed back"),
            Err(e) => tracing::warn!(error = %e, "document checks left to their lease"),
        }
    }
}

/// The accounts whose checks this replica's workers hold.
type Held = Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>;

/// The queue's depth and its oldest check's age, and the open reviews' count and the oldest's
/// age, every ten seconds (the same in every replica: they are the cluster's queues).
async fn gauge(pool: PgPool) {
    loop {
        match checks::queue_depth(&pool).await {
            Ok((pending, oldest)) => {
                metrics::gauge!("biometrics_document_checks_pending").set(pending as f64);
                metrics::gauge!("biometrics_document_checks_oldest_age_seconds").set(oldest);
            }
            Err(e) => tracing::debug!(error = %e, "document check queue not measured"),
        }
        match reviews::open_depth(&pool).await {
            Ok((open, oldest)) => {
                metrics::gauge!("biometrics_document_reviews_open").set(open as f64);
                metrics::gauge!("biometrics_document_reviews_oldest_open_age_seconds").set(oldest);
            }
            Err(e) => tracing::debug!(error = %e, "review queue not measured"),
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// Wakes the workers when a check is queued anywhere (`pg_notify` in [`checks::enqueue`]); they also
/// look every second on their own, so a lost connection only slows them.
async fn listen(pool: PgPool, wake: Arc<tokio::sync::Notify>) {
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if listener.listen("document_checks").await.is_ok() {
                    while listener.recv().await.is_ok() {
                        wake.notify_waiters();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "document check listener not connected"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn worker(
    captures: Arc<Captures>,
    reader: Arc<Reader>,
    lane: examreg_kit::work::Lane,
    wake: Arc<tokio::sync::Notify>,
    valid_until: Option<chrono::NaiveDate>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    held: Held,
) {
    let hold = |account: Uuid, on: bool| {
        if let Ok(mut held) = held.lock() {
            if on {
                held.insert(account);
            } else {
                held.remove(&account);
            }
        }
    };
    while !*stopping.borrow() {
        let notified = wake.notified();
        match checks::claim(&captures.pool).await {
            Ok(Some(claimed)) => {
                hold(claimed.account_id, true);
                let today = chrono::Utc::now().date_naive();
                let valid_until = valid_until.map_or(today, |day| day.max(today));
                if let Err(e) = read_one(&captures, &reader, &lane, &claimed, valid_until).await {
                    tracing::warn!(error = %e, "document check not recorded; it is retried after its lease");
                }
                hold(claimed.account_id, false);
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "document checks not claimed"),
        }
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_secs(1), notified) => {}
            _ = stopping.changed() => {}
        }
    }
}

async fn read_one(
    captures: &Captures,
    reader: &Arc<Reader>,
    lane: &examreg_kit::work::Lane,
    claimed: &Claimed,
    valid_until: chrono::NaiveDate,
) -> Result<(), sqlx::Error> {
    let format = Format::parse(&claimed.format).unwrap_or(Format::Td1);
    let photo = match captures
        .download(
            claimed.capture_id,
            &crate::captures::Reader {
                actor: "biometrics",
                purpose: PURPOSE,
                owner: None,
            },
            None,
        )
        .await
    {
        Ok(photo) => photo,
        Err(crate::error::Error::CaptureNotFound) => return Ok(()),
        Err(e) => return give_up_or_retry(captures, claimed, &e.to_string()).await,
    };
    let reader = reader.clone();
    let span = tracing::Span::current();
    let outcome = lane
        .run(move || {
            let _entered = span.enter();
            let started = examreg_kit::work::thread_cpu_time();
            let read = reader.read_photo(&photo, format);
            (
                read,
                examreg_kit::work::thread_cpu_time().saturating_sub(started),
            )
        })
        .await;
    let Some((read, cpu)) = outcome else {
        return give_up_or_retry(captures, claimed, "the reading panicked").await;
    };
    let ms = i32::try_from(cpu.as_millis()).unwrap_or(i32::MAX);
    metrics::histogram!("biometrics_document_read_seconds").record(cpu.as_secs_f64());
    match read {
        Ok(zone) => {
            let verdict = examreg_domain::mrz::verdict(&zone, &claimed.expected(), valid_until);
            let outcome = match &verdict {
                Verdict::Verified => "verified",
                Verdict::Expired => "expired",
                Verdict::Review(_) => "review",
            };
            metrics::counter!("biometrics_document_checks_total", "outcome" => outcome)
                .increment(1);
            tracing::info!(ms, outcome, "document zone read");
            checks::finish(
                &captures.pool,
                claimed,
                "read",
                Some((&zone, &verdict)),
                None,
                Some(ms),
            )
            .await
        }
        Err(ReadError::NotFound | ReadError::Unreadable(_) | ReadError::Image(_)) => {
            let code = match &read {
                Err(ReadError::NotFound) => "zone_not_found",
                Err(ReadError::Image(_)) => "image_undecodable",
                Ok(_) | Err(_) => "zone_unreadable",
            };
            metrics::counter!("biometrics_document_checks_total", "outcome" => "unreadable")
                .increment(1);
            tracing::info!(ms, reason = code, "document zone not read");
            checks::finish(
                &captures.pool,
                claimed,
                "unreadable",
                None,
                Some(code),
                Some(ms),
            )
            .await
        }
        Err(ReadError::Model(e)) => give_up_or_retry(captures, claimed, &e).await,
    }
}

async fn give_up_or_retry(
    captures: &Captures,
    claimed: &Claimed,
    error: &str,
) -> Result<(), sqlx::Error> {
    tracing::warn!(error, attempts = claimed.attempts, "document check failed");
    if claimed.attempts >= MAX_ATTEMPTS {
        metrics::counter!("biometrics_document_checks_total", "outcome" => "failed").increment(1);
        checks::finish(
            &captures.pool,
            claimed,
            "failed",
            None,
            Some("reading_failed"),
            None,
        )
        .await
    } else {
        checks::retry_later(&captures.pool, claimed).await
    }
}
