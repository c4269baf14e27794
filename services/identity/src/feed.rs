//! The change feed of registrations: `registration_events`, an outbox written in the
//! transaction of each change (see the migration for why its numbers are gap-free and commit in
//! order), streamed by `WatchRegistrations` from a cursor. A stream reads the events after its
//! cursor in batches, then waits: the table's trigger announces each event on the Postgres
//! channel `registration_events`, every replica listens there and wakes its streams, and a
//! stream also looks every second on its own, so a lost announcement delays an event by a
//! second at most. The cursor is the sequence number of the last event a client has, so a client
//! that resumes from what it processed misses nothing, across a restart of either side.

use crate::{error::Error, store};
use examreg_kit::grpc::Trigger;
use examreg_proto::{convert::timestamp, identity::v1 as pb};
use sqlx::PgPool;
use std::{pin::Pin, time::Duration};
use tokio::sync::watch;
use tonic::Status;

const CHANNEL: &str = "registration_events";
/// How often a stream looks for events without being woken.
const POLL: Duration = Duration::from_secs(1);
/// How long a stream stays silent before it sends an empty message with its cursor.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Events per message at most.
const BATCH: i64 = 256;

/// What a `WatchRegistrations` call streams.
pub type Watch =
    Pin<Box<dyn futures::Stream<Item = Result<pb::WatchRegistrationsResponse, Status>> + Send>>;

/// The feed of one replica: the newest sequence number it heard of, and the drain trigger that
/// ends its streams.
#[derive(Clone)]
pub struct Feed {
    pool: PgPool,
    heard: watch::Sender<i64>,
    draining: Trigger,
}

/// A cursor off the wire: `None` for empty (from the oldest event kept).
pub fn parse_cursor(text: &str) -> Result<Option<i64>, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(seq) if seq >= 0 => Ok(Some(seq)),
        _ => Err(Error::InvalidCursor),
    }
}

impl Feed {
    pub fn new(pool: PgPool, draining: Trigger) -> Self {
        Self {
            pool,
            heard: watch::channel(0).0,
            draining,
        }
    }

    /// Where a stream from `cursor` begins: the last sequence number the client has. Refuses a
    /// cursor past the head (not given by this feed) and one whose next events were swept.
    async fn start(&self, cursor: Option<i64>) -> Result<i64, Error> {
        let head = store::feed_head(&mut *self.pool.acquire().await?).await?;
        let oldest = store::feed_oldest(&self.pool).await?;
        // With nothing kept, the next event is the head's successor.
        let first_kept = oldest.unwrap_or(head + 1);
        match cursor {
            None => Ok(first_kept - 1),
            Some(seq) if seq > head => Err(Error::InvalidCursor),
            Some(seq) if seq + 1 < first_kept => Err(Error::CursorExpired),
            Some(seq) => Ok(seq),
        }
    }

    /// A stream of the events after `cursor`, then of each new one, until the client goes or
    /// the service drains.
    pub async fn watch(&self, cursor: Option<i64>) -> Result<Watch, Error> {
        let mut after = self.start(cursor).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let pool = self.pool.clone();
        let mut heard = self.heard.subscribe();
        let draining = self.draining.signal();
        tokio::spawn(async move {
            tokio::pin!(draining);
            let _open = OpenStream::new();
            let mut quiet_since = tokio::time::Instant::now();
            loop {
                // Marked before the read: an event announced after it wakes the wait below.
                heard.borrow_and_update();
                let mut full = false;
                let message = match next_batch(&pool, after).await {
                    Ok(events) if events.is_empty() => {
                        (quiet_since.elapsed() >= HEARTBEAT).then(|| Ok(response(after, events)))
                    }
                    Ok(events) => {
                        full = events.len() == BATCH as usize;
                        metrics::counter!("identity_feed_events_streamed_total")
                            .increment(events.len() as u64);
                        after = events.last().map_or(after, |e| e.seq);
                        Some(Ok(response(after, events)))
                    }
                    Err(status) => Some(Err(status)),
                };
                if let Some(message) = message {
                    let failed = message.is_err();
                    if tx.send(message).await.is_err() || failed {
                        return;
                    }
                    quiet_since = tokio::time::Instant::now();
                }
                // A full batch: more are waiting.
                if full {
                    continue;
                }
                tokio::select! {
                    () = &mut draining => return,
                    () = tx.closed() => return,
                    _ = heard.changed() => {}
                    () = tokio::time::sleep(POLL) => {}
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

/// Counts a stream while it is open (`identity_feed_streams`).
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        metrics::gauge!("identity_feed_streams").increment(1.0);
        Self
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        metrics::gauge!("identity_feed_streams").decrement(1.0);
    }
}

/// The events after `after`; an error when one is missing, which only the retention can cause.
async fn next_batch(pool: &PgPool, after: i64) -> Result<Vec<store::EventRow>, Status> {
    let events = store::events_after(pool, after, BATCH)
        .await
        .map_err(|e| Status::unavailable(format!("the feed is unavailable: {e}")))?;
    match events.first() {
        Some(first) if first.seq != after + 1 => Err(Status::from(Error::CursorExpired)),
        _ => Ok(events),
    }
}

fn response(cursor: i64, events: Vec<store::EventRow>) -> pb::WatchRegistrationsResponse {
    pb::WatchRegistrationsResponse {
        events: events
            .into_iter()
            .map(|e| pb::RegistrationEvent {
                cursor: e.seq.to_string(),
                kind: pb::RegistrationEventKind::from(e.kind).into(),
                account_id: e.account_id.to_string(),
                occurred_at: Some(timestamp(e.occurred_at)),
            })
            .collect(),
        cursor: cursor.to_string(),
    }
}

/// Listens on the channel until `stop`, telling the streams of this replica the newest
/// sequence number announced. A lost connection only slows the streams to their own looking.
/// `sessions` gives the listener its connection (the direct URL's pool, if any).
pub async fn listen(feed: Feed, sessions: sqlx::PgPool, stop: impl Future<Output = ()>) {
    let feed = &feed;
    crate::channel::listen(
        &sessions,
        CHANNEL,
        "feed listener",
        stop,
        move |mut listener| async move {
            loop {
                let note = listener.recv().await?;
                if let Ok(seq) = note.payload().parse::<i64>() {
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!("identity_feed_head").set(seq as f64);
                    feed.heard.send_if_modified(|newest| {
                        let newer = seq > *newest;
                        *newest = (*newest).max(seq);
                        newer
                    });
                }
            }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_sequence_numbers_or_nothing() {
        assert_eq!(parse_cursor("").unwrap(), None);
        assert_eq!(parse_cursor(" 42 ").unwrap(), Some(42));
        assert!(matches!(parse_cursor("-1"), Err(Error::InvalidCursor)));
        assert!(matches!(parse_cursor("abc"), Err(Error::InvalidCursor)));
    }
}
