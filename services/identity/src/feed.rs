//! The change feed of registrations: `registration_events`, an outbox written in the
//! transaction of each change (see the migration for why its numbers are gap-free and commit in
//! order), streamed by `WatchRegistrations` from a cursor. A stream reads the events after its
//! cursor in batches, then waits: the table's trigger announces each event on the Postgres
//! channel `registration_events`, every replica listens there and wakes its streams, and one
//! poller per replica reads the head every second while streams are open ([`poll_head`]), so a
//! lost announcement delays an event by a second at most. A stream queries only when the head
//! is past its cursor: a thousand idle streams cost one query a second, not a thousand. The cursor is the sequence number of the last event a client has, so a client
//! that resumes from what it processed misses nothing, across a restart of either side.

use crate::{error::Error, store};
use examreg_kit::tasks::Trigger;
use examreg_proto::{convert::timestamp, identity::v1 as pb};
use sqlx::PgPool;
use std::{pin::Pin, time::Duration};
use tokio::sync::watch;
use tonic::Status;

const CHANNEL: &str = "registration_events";
/// How often a replica with open streams reads the head without being woken.
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
        self.heard(head);
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

    /// The head moved to `seq` (news never goes back).
    fn heard(&self, seq: i64) {
        self.heard.send_if_modified(|newest| {
            let newer = seq > *newest;
            *newest = (*newest).max(seq);
            newer
        });
    }

    /// A stream of the events after `cursor`, then of each new one, until the client goes or
    /// the service drains; it holds `permit` (its place within the caps) while it lives.
    pub async fn watch(
        &self,
        cursor: Option<i64>,
        permit: crate::streams::Permit,
    ) -> Result<Watch, Error> {
        let mut after = self.start(cursor).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let pool = self.pool.clone();
        let mut heard = self.heard.subscribe();
        let draining = self.draining.signal();
        tokio::spawn(async move {
            let (_permit, _open) = (permit, OpenStream::new());
            tokio::pin!(draining);
            let mut quiet_since = tokio::time::Instant::now();
            loop {
                // Marked as seen before the read: news after it wakes the wait below.
                let head = *heard.borrow_and_update();
                if head > after {
                    match next_batch(&pool, after).await {
                        Err(status) => {
                            let _ = tx.send(Err(status)).await;
                            return;
                        }
                        Ok(events) if !events.is_empty() => {
                            let full = events.len() == BATCH as usize;
                            metrics::counter!("identity_feed_events_streamed_total")
                                .increment(events.len() as u64);
                            after = events.last().map_or(after, |e| e.seq);
                            if tx.send(Ok(response(after, events))).await.is_err() {
                                return;
                            }
                            quiet_since = tokio::time::Instant::now();
                            // A full batch: more are waiting.
                            if full {
                                continue;
                            }
                        }
                        // Announced but not visible here yet: the next word wakes it.
                        Ok(_) => {}
                    }
                }
                tokio::select! {
                    () = &mut draining => return,
                    () = tx.closed() => return,
                    changed = heard.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep_until(quiet_since + HEARTBEAT) => {
                        if tx.send(Ok(response(after, Vec::new()))).await.is_err() {
                            return;
                        }
                        quiet_since = tokio::time::Instant::now();
                    }
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
    metrics::counter!("identity_feed_reads_total", "by" => "stream").increment(1);
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
                    feed.heard(seq);
                }
            }
        },
    )
    .await;
}

/// Reads the head every [`POLL`] while this replica has streams open, until `stop`: one query
/// for all of them, in case an announcement was lost (the listener reconnecting).
pub async fn poll_head(feed: Feed, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = every.tick() => {}
        }
        if feed.heard.receiver_count() == 0 {
            continue;
        }
        metrics::counter!("identity_feed_reads_total", "by" => "poller").increment(1);
        let head = match feed.pool.acquire().await {
            Ok(mut conn) => store::feed_head(&mut conn).await,
            Err(e) => Err(e.into()),
        };
        match head {
            Ok(seq) => feed.heard(seq),
            Err(e) => tracing::warn!(error = %e, "the feed's head could not be read"),
        }
    }
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
