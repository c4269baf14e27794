//! Listening on a Postgres notification channel, kept up: a lost connection is made again half
//! a second later, until the service stops. What was announced while it was away is not
//! replayed, so each session starts by catching up on its own (see its callers).

use sqlx::{PgPool, postgres::PgListener};
use std::{convert::Infallible, time::Duration};

/// Connects, listens on `channel` and runs `session` with the listener until the connection
/// fails, then again, until `stop`. `what` names the listener in the warning of a lost
/// connection.
pub(crate) async fn listen<F, Fut>(
    pool: &PgPool,
    channel: &str,
    what: &str,
    stop: impl Future<Output = ()>,
    mut session: F,
) where
    F: FnMut(PgListener) -> Fut,
    Fut: Future<Output = Result<Infallible, sqlx::Error>>,
{
    tokio::pin!(stop);
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.listen(channel).await?;
            match session(listener).await? {}
        };
        tokio::select! {
            () = &mut stop => return,
            ended = connected => {
                let Err::<Infallible, sqlx::Error>(e) = ended;
                tracing::warn!(error = %e, "{what} lost Postgres; reconnecting");
            }
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
