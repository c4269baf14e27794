//! What the services' background tasks share: a trigger that stops them with the service, and
//! the loop of every sweeper and refresher.

use std::{future::Future, time::Duration};

/// A shutdown trigger for background tasks: `signal()` futures resolve once `fire()` is called
/// (or the trigger is dropped), so every task tied to it stops with the service.
#[derive(Clone)]
pub struct Trigger(std::sync::Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Trigger {
    fn default() -> Self {
        Self(std::sync::Arc::new(tokio::sync::watch::channel(false).0))
    }
}

impl Trigger {
    pub fn signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }

    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

/// Runs `task` now and then every `every` until `stop` resolves (a run in progress finishes
/// first): the shape of every sweeper and refresher in the suite.
pub async fn periodically<F, Fut>(every: Duration, stop: impl Future<Output = ()>, mut task: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::pin!(stop);
    loop {
        task().await;
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
