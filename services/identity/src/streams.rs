//! How many streams a replica serves (`WatchRevocations`, `WatchRegistrations`): each holds a
//! task, a channel and, at its start, a query, so neither one client nor all of them together
//! may open them without bound. Past a cap the call is refused RESOURCE_EXHAUSTED
//! `too_many_streams` with a retry hint. The caps are per replica, since what they protect
//! (tasks, memory, the pool) is the replica's own.

use crate::error::Error;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

/// The streams open on this replica, by client.
#[derive(Clone, Debug)]
pub struct Streams {
    open: Arc<Mutex<Open>>,
    /// Streams at once on this replica, of every client.
    pub total: usize,
    /// Streams at once of one client (a service's client id: all its replicas together).
    pub per_client: usize,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<String, usize>,
}

/// A stream's place: given back when the stream ends (its task drops it).
#[derive(Debug)]
pub struct Permit {
    open: Arc<Mutex<Open>>,
    client: String,
}

impl Streams {
    pub fn new(total: usize, per_client: usize) -> Self {
        Self {
            open: Arc::default(),
            total,
            per_client,
        }
    }

    /// A place for one more stream of `client`, or the refusal.
    pub fn admit(&self, client: &str) -> Result<Permit, Error> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = open.by_client.get(client).copied().unwrap_or(0);
        if open.total >= self.total || mine >= self.per_client {
            metrics::counter!("identity_streams_refused_total").increment(1);
            tracing::warn!(
                client,
                mine,
                total = open.total,
                "stream refused: at its cap"
            );
            return Err(Error::TooManyStreams);
        }
        open.total += 1;
        *open.by_client.entry(client.to_owned()).or_default() += 1;
        Ok(Permit {
            open: self.open.clone(),
            client: client.to_owned(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(mine) = open.by_client.get_mut(&self.client) {
            *mine = mine.saturating_sub(1);
            if *mine == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_all_get_the_total_and_an_ended_stream_gives_its_place_back() {
        let streams = Streams::new(3, 2);
        let a1 = streams.admit("gateway").unwrap();
        let _a2 = streams.admit("gateway").unwrap();
        assert!(matches!(
            streams.admit("gateway"),
            Err(Error::TooManyStreams)
        ));
        let _b1 = streams.admit("biometrics").unwrap();
        // Three open: the total is reached for everyone.
        assert!(matches!(
            streams.admit("profile"),
            Err(Error::TooManyStreams)
        ));
        drop(a1);
        let _p1 = streams.admit("profile").unwrap();
        assert!(matches!(
            streams.admit("gateway"),
            Err(Error::TooManyStreams)
        ));
    }
}
