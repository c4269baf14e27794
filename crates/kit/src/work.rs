//! A bound on CPU-heavy work (argon2, photo checks): at most `concurrency` jobs run at once and
//! at most `queue` wait for a turn. One more is refused at once — RESOURCE_EXHAUSTED with a
//! retry hint, which the gateway answers as 429 with Retry-After — instead of joining a queue
//! that only grows while a rush lasts and makes every applicant wait longer.

use std::{
    cell::Cell,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone)]
pub struct Gate {
    name: &'static str,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    queue: usize,
    retry_after: Duration,
}

/// How much lower than everything else the heavy work runs (the nice value of its threads).
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`], once per thread; called at
/// the start of every heavy job on a blocking thread. The heavy work still takes every idle
/// cycle, but a cheap request (a code check, a token refresh, a store's reply) that becomes
/// runnable preempts it instead of waiting for a 20 ms hash to end — so the cheap steps stay
/// fast while the pools are full. A thread cannot raise its priority back without privileges;
/// the blocking threads of these services do little else. Best effort: if the system refuses,
/// the work runs at normal priority.
pub fn background_priority() {
    thread_local! {
        static LOWERED: Cell<bool> = const { Cell::new(false) };
    }
    LOWERED.with(|lowered| {
        if !lowered.replace(true) {
            lower_to(BACKGROUND_NICE);
        }
    });
}

/// Sets the calling thread's nice value (best effort).
fn lower_to(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // On Linux the nice value belongs to the thread; name this one by its id.
        let thread = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(thread), nice) {
            tracing::debug!(error = %e, "could not lower a worker thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// The nice value of queued work nobody waits for at a request (a document's reading): below
/// the photo checks and the hashes applicants wait for, so it takes only the CPU they leave.
pub const QUEUED_NICE: i32 = 19;

type Job = Box<dyn FnOnce() + Send>;

/// A thread of its own, at [`QUEUED_NICE`], that runs the jobs given to it one after another.
/// Its own, because a thread once lowered stays lowered: queued work on the blocking pool
/// would leave its threads at the lowest priority for the next photo check. The thread ends
/// when the lane is dropped; a job that panics is answered `None` and the lane goes on.
pub struct Lane {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Lane {
    pub fn new(name: &str) -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                lower_to(QUEUED_NICE);
                for job in queue {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })?;
        Ok(Self { jobs })
    }

    /// Runs `job` on the lane's thread and waits for its answer; `None` if it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(job());
        });
        self.jobs.send(job).ok()?;
        answered.await.ok()
    }
}

/// The CPU time this thread has used (for work measured on the blocking thread that does it).
pub fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// The gate was full: try again after `retry_after`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too much work queued; retry in {retry_after:?}")]
pub struct Overloaded {
    pub retry_after: Duration,
}

impl Overloaded {
    pub fn status(self) -> tonic::Status {
        crate::errors::rate_limited(
            "overloaded",
            "the service is busy; try again shortly",
            self.retry_after,
        )
    }
}

/// Gives the waiting slot back however the wait ends (a turn, or the caller going away).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub fn new(
        name: &'static str,
        concurrency: usize,
        queue: usize,
        retry_after: Duration,
    ) -> Self {
        Self {
            name,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            queue,
            retry_after,
        }
    }

    /// A turn now or never: for work worth doing only when a turn is idle (a camera's preview
    /// frame), so it is the first thing shed when the gate is busy. It never queues, and a
    /// released turn goes to the work queued for it first.
    pub fn try_enter(&self, what: &'static str) -> Result<OwnedSemaphorePermit, Overloaded> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("work_shed_total", "gate" => self.name, "work" => what).increment(1);
            Overloaded {
                retry_after: self.retry_after,
            }
        })
    }

    /// A turn to run, held until the permit drops; or `Overloaded` when the queue is full.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Overloaded> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("work_refused_total", "gate" => self.name).increment(1);
            return Err(Overloaded {
                retry_after: self.retry_after,
            });
        }
        let _waiting = Waiting(self.waiting.clone());
        Ok(self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the gate's semaphore is never closed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn heavy_work_lowers_only_its_own_thread() {
        let own = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = own();
        let worker = std::thread::spawn(move || {
            background_priority();
            background_priority();
            own()
        })
        .join()
        .unwrap();
        assert_eq!(worker, (before + BACKGROUND_NICE).min(19));
        assert_eq!(own(), before, "the calling thread keeps its priority");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_lane_runs_its_jobs_at_the_lowest_priority_and_outlives_a_panic() {
        let own = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = own();
        let lane = Lane::new("test-lane").unwrap();
        assert_eq!(lane.run(own).await, Some(QUEUED_NICE));
        assert_eq!(own(), before, "the caller keeps its priority");
        let panicked: Option<()> = lane.run(|| panic!("a job that fails")).await;
        assert_eq!(panicked, None);
        // The same thread goes on with the next job, still lowered.
        let name = lane
            .run(|| std::thread::current().name().map(str::to_owned))
            .await;
        assert_eq!(name, Some(Some("test-lane".to_owned())));
        assert_eq!(lane.run(own).await, Some(QUEUED_NICE));
    }

    #[tokio::test]
    async fn beyond_the_queue_work_is_refused_at_once_and_slots_come_back() {
        let gate = Gate::new("test", 1, 2, Duration::from_secs(1));
        let running = gate.enter().await.unwrap();
        let first = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(drop) }
        });
        let second = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // One running, two waiting: the fourth is refused without waiting.
        let refused = gate.enter().await.unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        drop(running);
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        // The waiting slots were given back.
        let again = gate.enter().await.unwrap();
        drop(again);
        // A waiter that goes away gives its slot back too.
        let hold = gate.enter().await.unwrap();
        let gone = tokio::time::timeout(Duration::from_millis(20), gate.enter()).await;
        assert!(gone.is_err());
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
        drop(hold);
    }

    #[tokio::test]
    async fn work_that_takes_only_an_idle_turn_is_shed_first_and_never_jumps_the_queue() {
        let gate = Gate::new("test", 1, 4, Duration::from_secs(1));
        let idle = gate.try_enter("frame").unwrap();
        assert!(gate.try_enter("frame").is_err(), "the only turn is taken");
        let queued = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(idle);
        // The released turn went to the upload that waited, not to the next frame.
        let shed = gate.try_enter("frame");
        queued.await.unwrap().unwrap();
        assert!(shed.is_err());
        assert!(gate.try_enter("frame").is_ok());
    }
}
