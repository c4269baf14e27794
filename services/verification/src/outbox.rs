//! The durable outbox: a letter is appended to a Redis stream (AOF on) and the call returns;
//! a worker delivers it over SMTP and only then acknowledges and deletes it. An SMTP outage or
//! a restart therefore delays mail and loses none: unacknowledged letters stay pending, the
//! worker retries them with a growing backoff, and letters held by a consumer that died are
//! claimed by another after a minute. Letters carry codes, so they are sealed with AES-256-GCM
//! before they touch Redis (and so its AOF file).

use crate::letters::Letter;
use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng},
};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use redis::{
    AsyncCommands,
    aio::ConnectionManager,
    streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamReadOptions, StreamReadReply},
};
use std::{future::Future, time::Duration};

const GROUP: &str = "mailers";

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Seals and opens letters with the outbox key.
#[derive(Clone)]
pub struct Sealer(Aes256Gcm);

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(Aes256Gcm::new(key.into()))
    }

    fn seal(&self, letter: &Letter) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let plain = serde_json::to_vec(letter).expect("a letter serializes");
        let mut out = nonce.to_vec();
        out.extend(
            self.0
                .encrypt(&nonce, plain.as_slice())
                .expect("AES-GCM seals"),
        );
        out
    }

    fn open(&self, sealed: &[u8]) -> Option<Letter> {
        if sealed.len() < 12 {
            return None;
        }
        let (nonce, body) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = self.0.decrypt(&Nonce::from(nonce), body).ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

/// Appends letters to the stream.
#[derive(Clone)]
pub struct Outbox {
    redis: ConnectionManager,
    stream: String,
    sealer: Sealer,
}

impl Outbox {
    pub fn new(redis: ConnectionManager, prefix: &str, sealer: Sealer) -> Self {
        Self {
            redis,
            stream: format!("{prefix}outbox"),
            sealer,
        }
    }

    /// Queues a letter durably; returns once Redis has it.
    #[tracing::instrument(skip_all, fields(to = %examreg_domain::mask_email(&letter.to)))]
    pub async fn enqueue(&self, letter: &Letter) -> Result<(), OutboxError> {
        let mut letter = letter.clone();
        letter.traceparent = examreg_kit::telemetry::current_traceparent();
        let sealed = self.sealer.seal(&letter);
        let _: String = self
            .redis
            .clone()
            .xadd(&self.stream, "*", &[("letter", sealed)])
            .await?;
        metrics::counter!("verification_letters_queued_total").increment(1);
        Ok(())
    }
}

impl Outbox {
    /// Deletes the letters to `email` still queued or dead; how many. A letter a worker is
    /// delivering at this very moment may still go out.
    pub async fn erase(&self, email: &str) -> Result<u32, OutboxError> {
        let mut redis = self.redis.clone();
        let mut deleted = 0;
        for stream in [self.stream.clone(), format!("{}:dead", self.stream)] {
            let mut start = "-".to_owned();
            loop {
                let page: redis::streams::StreamRangeReply =
                    redis.xrange_count(&stream, &start, "+", 500).await?;
                let Some(last) = page.ids.last() else { break };
                start = format!("({}", last.id);
                for entry in &page.ids {
                    let to_email = letter_field(&entry.map)
                        .and_then(|sealed| self.sealer.open(&sealed))
                        .is_some_and(|letter| letter.to.eq_ignore_ascii_case(email));
                    if to_email {
                        // Acknowledged first, so no consumer keeps a pending entry for it.
                        let _: Result<i64, _> = redis.xack(&stream, GROUP, &[&entry.id]).await;
                        let removed: i64 = redis.xdel(&stream, &[&entry.id]).await?;
                        deleted += u32::try_from(removed).unwrap_or(0);
                    }
                }
                if page.ids.len() < 500 {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}

/// Delivers queued letters until shutdown.
pub struct Worker {
    redis: ConnectionManager,
    stream: String,
    consumer: String,
    sealer: Sealer,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Letters idle this long in another consumer's pending list are taken over.
    claim_after: Duration,
}

enum Delivery {
    Sent,
    /// The SMTP server refused the letter for good (bad address): it goes to the dead letters.
    Rejected(String),
    /// Try again later.
    Retry(String),
}

impl Worker {
    pub fn new(
        redis: ConnectionManager,
        prefix: &str,
        sealer: Sealer,
        smtp: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        claim_after: Duration,
    ) -> Self {
        Self {
            redis,
            stream: format!("{prefix}outbox"),
            consumer: format!("mailer-{}", uuid::Uuid::new_v4()),
            sealer,
            smtp,
            from,
            claim_after,
        }
    }

    async fn ensure_group(&mut self) -> Result<(), redis::RedisError> {
        let created: Result<(), redis::RedisError> = self
            .redis
            .xgroup_create_mkstream(&self.stream, GROUP, "0")
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Our own pending letters first (left by a failed attempt), then letters stuck with a
    /// dead consumer, then new ones (waiting up to a second).
    async fn next_batch(&mut self) -> Result<Vec<(String, Vec<u8>)>, redis::RedisError> {
        let own: StreamReadReply = self
            .redis
            .xread_options(
                &[&self.stream],
                &["0"],
                &StreamReadOptions::default()
                    .group(GROUP, &self.consumer)
                    .count(10),
            )
            .await?;
        let mut batch = entries(own);
        if batch.is_empty() {
            let claimed: StreamAutoClaimReply = self
                .redis
                .xautoclaim_options(
                    &self.stream,
                    GROUP,
                    &self.consumer,
                    u64::try_from(self.claim_after.as_millis()).unwrap_or(60_000),
                    "0-0",
                    StreamAutoClaimOptions::default().count(10),
                )
                .await?;
            batch = claimed
                .claimed
                .into_iter()
                .filter_map(|id| letter_field(&id.map).map(|b| (id.id, b)))
                .collect();
        }
        if batch.is_empty() {
            let fresh: StreamReadReply = self
                .redis
                .xread_options(
                    &[&self.stream],
                    &[">"],
                    &StreamReadOptions::default()
                        .group(GROUP, &self.consumer)
                        .count(10)
                        .block(1000),
                )
                .await?;
            batch = entries(fresh);
        }
        Ok(batch)
    }

    async fn deliver(&self, letter: &Letter) -> Delivery {
        let to: Mailbox = match letter.to.parse() {
            Ok(to) => to,
            Err(e) => return Delivery::Rejected(format!("bad recipient: {e}")),
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                letter.text.clone(),
                letter.html.clone(),
            ));
        let message = match message {
            Ok(m) => m,
            Err(e) => return Delivery::Rejected(format!("cannot build: {e}")),
        };
        match self.smtp.send(message).await {
            Ok(_) => Delivery::Sent,
            Err(e) if e.is_permanent() => Delivery::Rejected(e.to_string()),
            Err(e) => Delivery::Retry(e.to_string()),
        }
    }

    async fn finish(&mut self, id: &str) -> Result<(), redis::RedisError> {
        let _: () = redis::pipe()
            .atomic()
            .xack(&self.stream, GROUP, &[id])
            .ignore()
            .xdel(&self.stream, &[id])
            .ignore()
            .query_async(&mut self.redis)
            .await?;
        Ok(())
    }

    /// Runs until `shutdown` resolves; a letter being sent then is finished first.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        loop {
            let pause = if failures == 0 {
                Duration::ZERO
            } else {
                Duration::from_millis(500 * 2u64.pow(failures.min(7))).min(Duration::from_secs(60))
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
            }
            let batch = tokio::select! {
                () = &mut shutdown => return,
                batch = async { match self.ensure_group().await { Ok(()) => self.next_batch().await, Err(e) => Err(e) } } => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "outbox: redis unavailable");
                    continue;
                }
            };
            for (id, sealed) in batch {
                let Some(letter) = self.sealer.open(&sealed) else {
                    tracing::error!(id, "outbox: letter cannot be opened (wrong key?); dropped");
                    let _ = self.finish(&id).await;
                    continue;
                };
                let to = examreg_domain::mask_email(&letter.to);
                // A trace of its own (the request is long answered), linked to the request's.
                let span =
                    tracing::info_span!(parent: None, "smtp_delivery", to = %to, outbox_id = %id);
                if let Some(traceparent) = &letter.traceparent {
                    examreg_kit::telemetry::link_to(&span, traceparent);
                }
                let delivery = tracing::Instrument::instrument(self.deliver(&letter), span).await;
                match delivery {
                    Delivery::Sent => {
                        metrics::counter!("verification_letters_delivered_total").increment(1);
                        failures = 0;
                        tracing::info!(id, to, "outbox: letter delivered");
                        if let Err(e) = self.finish(&id).await {
                            tracing::warn!(id, error = %e, "outbox: ack failed; the letter may be sent twice");
                        }
                    }
                    Delivery::Rejected(why) => {
                        metrics::counter!("verification_letters_rejected_total").increment(1);
                        tracing::error!(id, to, why, "outbox: letter rejected for good");
                        let dead = format!("{}:dead", self.stream);
                        let _: Result<String, _> = self
                            .redis
                            .xadd(&dead, "*", &[("letter", sealed.as_slice())])
                            .await;
                        let _ = self.finish(&id).await;
                    }
                    Delivery::Retry(why) => {
                        metrics::counter!("verification_delivery_failures_total").increment(1);
                        failures += 1;
                        tracing::warn!(
                            id,
                            to,
                            why,
                            failures,
                            "outbox: delivery failed; will retry"
                        );
                        break;
                    }
                }
            }
        }
    }
}

fn letter_field(map: &std::collections::HashMap<String, redis::Value>) -> Option<Vec<u8>> {
    match map.get("letter") {
        Some(redis::Value::BulkString(bytes)) => Some(bytes.clone()),
        _ => None,
    }
}

fn entries(reply: StreamReadReply) -> Vec<(String, Vec<u8>)> {
    reply
        .keys
        .into_iter()
        .flat_map(|key| key.ids)
        .filter_map(|id| letter_field(&id.map).map(|b| (id.id, b)))
        .collect()
}
