//! Ended sessions, told to every verifier. A revocation is a row of `session_revocations`,
//! written in the transaction that ends the session; the table's trigger announces it on the
//! Postgres channel `session_revocations` at commit, whichever replica wrote it. Every replica
//! listens there and passes the news on to the `WatchRevocations` streams it serves and to its
//! own keys, so a token of an ended session is refused everywhere as soon as the news travels
//! (milliseconds), without a lookup per call.

use crate::store;
use examreg_kit::{auth::Keys, tasks::Trigger};
use examreg_proto::identity::v1 as pb;
use sqlx::PgPool;
use std::{pin::Pin, time::Duration};
use tokio::sync::broadcast;
use tonic::Status;
use uuid::Uuid;

const CHANNEL: &str = "session_revocations";
/// How often a watcher hears from a quiet feed.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Sessions that ended, each with the Unix second its last token expires.
type News = Vec<(Uuid, i64)>;

/// What a `WatchRevocations` call streams.
pub type Watch =
    Pin<Box<dyn futures::Stream<Item = Result<pb::WatchRevocationsResponse, Status>> + Send>>;

/// The news of one replica: filled by [`listen`], read by the streams of [`Feed::watch`].
#[derive(Clone)]
pub struct Feed {
    pool: PgPool,
    news: broadcast::Sender<News>,
    /// Fired when the service starts draining: the streams end, so the drain can finish.
    draining: Trigger,
}

impl Feed {
    pub fn new(pool: PgPool, draining: Trigger) -> Self {
        Self {
            pool,
            news: broadcast::channel(256).0,
            draining,
        }
    }

    /// A watcher's stream: every live revocation first, then each new one, and an empty
    /// message every second, until the watcher goes or the service drains.
    pub fn watch(&self, permit: crate::streams::Permit) -> Watch {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        // Subscribed before the list is read: nothing ended in between is missed.
        let mut news = self.news.subscribe();
        let pool = self.pool.clone();
        let draining = self.draining.signal();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(draining);
            let mut heartbeat = tokio::time::interval(HEARTBEAT);
            heartbeat.tick().await;
            let mut next = store::live_revocations(&pool)
                .await
                .map_err(|e| e.to_string());
            loop {
                let message = match next {
                    Ok(list) => Ok(response(list)),
                    Err(e) => Err(Status::unavailable(format!("revocations unavailable: {e}"))),
                };
                let failed = message.is_err();
                if tx.send(message).await.is_err() || failed {
                    return;
                }
                next = tokio::select! {
                    () = &mut draining => return,
                    _ = heartbeat.tick() => Ok(Vec::new()),
                    got = news.recv() => match got {
                        Ok(list) => Ok(list),
                        // Too slow to keep up: the whole list again.
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            store::live_revocations(&pool).await.map_err(|e| e.to_string())
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                };
            }
        });
        Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
    }
}

fn response(list: News) -> pb::WatchRevocationsResponse {
    pb::WatchRevocationsResponse {
        revocations: list
            .into_iter()
            .map(|(session, until)| pb::Revocation {
                session_id: session.to_string(),
                until,
            })
            .collect(),
    }
}

/// An announcement: "<session id> <until>".
fn parse(payload: &str) -> Option<(Uuid, i64)> {
    let (session, until) = payload.split_once(' ')?;
    Some((session.parse().ok()?, until.parse().ok()?))
}

/// Listens on the channel until `stop`, passing every announcement to `feed` and to `keys`
/// (identity's own checks). After each (re)connection it passes the whole list again, since
/// what was announced while it was away is not replayed; while it is connected, `keys` hear a
/// heartbeat every second, so they go stale when it is not.
/// `sessions` gives the listener its connection (the direct URL's pool, if any).
pub async fn listen(
    feed: Feed,
    sessions: sqlx::PgPool,
    keys: Keys,
    stop: impl Future<Output = ()>,
) {
    keys.revocations().watched();
    let (feed, keys) = (&feed, &keys);
    crate::channel::listen(
        &sessions,
        CHANNEL,
        "revocation listener",
        stop,
        move |mut listener| async move {
            let all = store::live_revocations(&feed.pool)
                .await
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
            keys.revocations().heard(all.iter().copied());
            let _ = feed.news.send(all);
            let mut heartbeat = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    _ = heartbeat.tick() => keys.revocations().heard([]),
                    got = listener.recv() => {
                        let news: News = parse(got?.payload()).into_iter().collect();
                        keys.revocations().heard(news.iter().copied());
                        let _ = feed.news.send(news);
                    }
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
    fn announcements_are_read_and_garbage_is_not() {
        let id = Uuid::new_v4();
        assert_eq!(
            parse(&format!("{id} 1800000000")),
            Some((id, 1_800_000_000))
        );
        assert_eq!(parse("not-a-uuid 1"), None);
        assert_eq!(parse(&id.to_string()), None);
    }
}
