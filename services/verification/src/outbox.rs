//! The durable mail queue. A letter is written to Redis (AOF on) and the call returns; a
//! worker delivers it over SMTP and only then removes it. Each letter has its own attempt
//! count, next-attempt time and age, so one address that a relay keeps deferring waits its
//! own backoff while every other letter goes out. A letter that keeps failing moves to the
//! dead letters with its reason after the configured attempts or age; nothing is ever dropped
//! (a letter that cannot be opened, or whose move to the dead letters fails, stays where it is
//! and is counted).
//!
//! Letters carry codes, so they are sealed with AES-256-GCM before they touch Redis (and so
//! its AOF file).
//!
//! Layout (every key in one hash slot, `{mail}`, so the scripts run on a Redis Cluster):
//! - `mail:{mail}:due` — sorted set, letter id → when it may next be tried (ms). A worker that
//!   takes a letter moves it a lease ahead, so a letter held by a replica that stopped becomes
//!   due again and another replica takes it over.
//! - `mail:{mail}:letters` — hash, letter id → sealed letter.
//! - `mail:{mail}:attempts` — hash, letter id → delivery attempts the letter is to blame for
//!   (SMTP replies; an unreachable server is not the letter's fault and counts only as age).
//! - `mail:{mail}:born` — sorted set, letter id → when it was queued (ms): its age, and the
//!   oldest letter's age for the alert.
//! - `mail:{mail}:wake` — list, one token pushed per letter queued, so an idle worker waiting
//!   on it starts at once.
//! - `mail:{mail}:dead` — stream of dead letters: the sealed letter, its reason (addresses
//!   masked), its attempts and when it was queued. Kept until an operator deals with them (or
//!   an erasure removes them).
//!
//! Times come from Redis (`TIME`), so replicas whose clocks differ agree on what is due.

use crate::letters::Letter;
use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, AeadCore, OsRng},
};
use examreg_kit::redis::Redis;
use futures::StreamExt;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use redis::{AsyncCommands, Script};
use std::{future::Future, sync::LazyLock, time::Duration};

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

    pub fn seal(&self, letter: &Letter) -> Vec<u8> {
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

/// How letters are retried and when they give up; from `VERIFICATION_OUTBOX_*`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A letter a worker took and neither delivered nor put back within this long (its
    /// replica stopped) is taken over by another.
    pub claim_after: Duration,
    /// Attempts the letter is to blame for (SMTP replies) before it is dead.
    pub max_attempts: u32,
    /// Age at which a letter still not delivered is dead, whatever the reason.
    pub max_age: Duration,
    /// Wait after the first failed attempt; doubles with each attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Letters one worker delivers at once (a slow relay answer holds only its own letter).
    pub concurrency: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            claim_after: Duration::from_secs(60),
            max_attempts: 10,
            max_age: Duration::from_secs(6 * 3600),
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(1800),
            concurrency: 8,
        }
    }
}

impl Policy {
    /// The wait before the next try of a letter the server deferred `attempts` times.
    fn backoff(&self, attempts: u32) -> Duration {
        let doubled = self
            .retry_base
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)));
        doubled.min(self.retry_max)
    }

    /// The wait before the next try when the server could not be reached: as long as the
    /// letter has waited so far (within the base and the cap), so an outage is probed often
    /// at first and rarely later, without counting against the letter.
    fn unreachable_backoff(&self, age: Duration) -> Duration {
        age.clamp(self.retry_base, self.retry_max.max(self.retry_base))
    }
}

/// The keys of the queue under a prefix.
#[derive(Clone)]
struct Keys {
    due: String,
    letters: String,
    attempts: String,
    born: String,
    wake: String,
    dead: String,
    /// Where letters were kept before the per-letter queue (a stream with a consumer group);
    /// a worker moves what it finds there into the queue.
    legacy: String,
    /// Who is moving the old stream's letters (a lease, so one replica does, not each).
    adopting: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        let key = |name: &str| format!("{prefix}mail:{{mail}}:{name}");
        Self {
            due: key("due"),
            letters: key("letters"),
            attempts: key("attempts"),
            born: key("born"),
            wake: key("wake"),
            dead: key("dead"),
            legacy: format!("{prefix}outbox"),
            adopting: format!("{prefix}outbox:adopting"),
        }
    }

    /// Every key of a letter, in the order the scripts take them.
    fn all(&self) -> [&str; 5] {
        [
            &self.due,
            &self.letters,
            &self.attempts,
            &self.born,
            &self.dead,
        ]
    }
}

/// Gives a lease back if it is still the caller's: KEYS lease; ARGV holder.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        ",
    )
});

/// Queues a letter: KEYS due, letters, attempts, born, dead, wake; ARGV id, sealed.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = t[1] * 1000 + math.floor(t[2] / 1000)
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        redis.call('ZADD', KEYS[4], now, ARGV[1])
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        redis.call('LPUSH', KEYS[6], 1)
        redis.call('LTRIM', KEYS[6], 0, 0)
        return now
        ",
    )
});

/// Takes up to ARGV[2] due letters and leases them for ARGV[1] ms. Returns, per letter, its
/// id, sealed body, attempts so far and age in ms.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = t[1] * 1000 + math.floor(t[2] / 1000)
        local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
        local out = {}
        for _, id in ipairs(ids) do
            local sealed = redis.call('HGET', KEYS[2], id)
            if sealed then
                redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), id)
                local attempts = tonumber(redis.call('HGET', KEYS[3], id) or '0')
                local born = tonumber(redis.call('ZSCORE', KEYS[4], id) or now)
                table.insert(out, {id, sealed, attempts, math.max(0, now - born)})
            else
                -- A schedule entry without its letter (erased meanwhile): nothing to send.
                redis.call('ZREM', KEYS[1], id)
                redis.call('ZREM', KEYS[4], id)
                redis.call('HDEL', KEYS[3], id)
            end
        end
        return out
        ",
    )
});

/// Removes a delivered (or erased) letter.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('HDEL', KEYS[2], ARGV[1])
        redis.call('HDEL', KEYS[3], ARGV[1])
        redis.call('ZREM', KEYS[4], ARGV[1])
        return 1
        ",
    )
});

/// Puts a letter back, due in ARGV[2] ms; ARGV[3] = 1 counts the attempt against it. Does
/// nothing to a letter that is gone (erased while it was being tried).
static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return 0 end
        local t = redis.call('TIME')
        local now = t[1] * 1000 + math.floor(t[2] / 1000)
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[3], ARGV[1], 1) end
        return 1
        ",
    )
});

/// Moves a letter to the dead letters with ARGV[2] as its reason and ARGV[3] its attempts. The
/// stream entry is written first: if that fails the script stops there and the letter stays
/// queued.
static BURY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local sealed = redis.call('HGET', KEYS[2], ARGV[1])
        if not sealed then return 0 end
        local born = redis.call('ZSCORE', KEYS[4], ARGV[1]) or '0'
        redis.call('XADD', KEYS[5], '*', 'letter', sealed, 'id', ARGV[1], 'reason', ARGV[2],
            'attempts', ARGV[3], 'queued_ms', born)
        redis.call('ZREM', KEYS[1], ARGV[1])
        redis.call('HDEL', KEYS[2], ARGV[1])
        redis.call('HDEL', KEYS[3], ARGV[1])
        redis.call('ZREM', KEYS[4], ARGV[1])
        return 1
        ",
    )
});

fn invocation<'a>(script: &'a Script, keys: &Keys) -> redis::ScriptInvocation<'a> {
    let mut invocation = script.prepare_invoke();
    for key in keys.all() {
        invocation.key(key);
    }
    invocation
}

/// Appends letters to the queue.
#[derive(Clone)]
pub struct Outbox {
    redis: Redis,
    keys: Keys,
    sealer: Sealer,
}

impl Outbox {
    pub fn new(redis: Redis, prefix: &str, sealer: Sealer) -> Self {
        Self {
            redis,
            keys: Keys::new(prefix),
            sealer,
        }
    }

    /// Queues a letter durably; returns once Redis has it.
    #[tracing::instrument(skip_all, fields(to = %examreg_domain::mask_email(&letter.to)))]
    pub async fn enqueue(&self, letter: &Letter) -> Result<(), OutboxError> {
        let mut letter = letter.clone();
        letter.traceparent = examreg_kit::telemetry::current_traceparent();
        let sealed = self.sealer.seal(&letter);
        enqueue_sealed(&mut self.redis.clone(), &self.keys, &sealed).await?;
        metrics::counter!("verification_letters_queued_total").increment(1);
        Ok(())
    }

    /// Deletes the dead letters that died longer ago than `period` (the retention's
    /// `dead_letters` rule); how many.
    pub async fn sweep_dead(&self, period: Duration) -> Result<u64, OutboxError> {
        let mut redis = self.redis.clone();
        let (secs, _micros): (u64, u64) = redis::cmd("TIME").query_async(&mut redis).await?;
        let cutoff = secs.saturating_sub(period.as_secs()).saturating_mul(1000);
        let mut deleted = 0;
        loop {
            // Stream ids are the times the letters died (ms): everything before the cutoff.
            let page: redis::streams::StreamRangeReply = redis
                .xrange_count(&self.keys.dead, "-", format!("({cutoff}"), 500)
                .await?;
            if page.ids.is_empty() {
                return Ok(deleted);
            }
            let ids: Vec<&str> = page.ids.iter().map(|entry| entry.id.as_str()).collect();
            let removed: u64 = redis.xdel(&self.keys.dead, &ids).await?;
            deleted += removed;
        }
    }

    /// Deletes the letters to `email` still queued or dead; how many. A letter a worker is
    /// delivering at this very moment may still go out.
    pub async fn erase(&self, email: &str) -> Result<u32, OutboxError> {
        let mut redis = self.redis.clone();
        let mut deleted = 0;
        let to_email = |sealed: &[u8]| {
            self.sealer
                .open(sealed)
                .is_some_and(|letter| letter.to.eq_ignore_ascii_case(email))
        };
        let mut cursor = 0u64;
        loop {
            let (next, page): (u64, Vec<(String, Vec<u8>)>) = redis::cmd("HSCAN")
                .arg(&self.keys.letters)
                .arg(cursor)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut redis)
                .await?;
            for (id, sealed) in page {
                if to_email(&sealed) {
                    let _: i64 = invocation(&FINISH, &self.keys)
                        .arg(&id)
                        .invoke_async(&mut redis)
                        .await?;
                    deleted += 1;
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let mut start = "-".to_owned();
        loop {
            let page: redis::streams::StreamRangeReply = redis
                .xrange_count(&self.keys.dead, &start, "+", 500)
                .await?;
            let Some(last) = page.ids.last() else { break };
            start = format!("({}", last.id);
            for entry in &page.ids {
                if letter_field(&entry.map).is_some_and(|sealed| to_email(&sealed)) {
                    let removed: i64 = redis.xdel(&self.keys.dead, &[&entry.id]).await?;
                    deleted += u32::try_from(removed).unwrap_or(0);
                }
            }
            if page.ids.len() < 500 {
                break;
            }
        }
        Ok(deleted)
    }
}

async fn enqueue_sealed(
    redis: &mut Redis,
    keys: &Keys,
    sealed: &[u8],
) -> Result<(), redis::RedisError> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let _: i64 = invocation(&ENQUEUE, keys)
        .key(&keys.wake)
        .arg(&id)
        .arg(sealed)
        .invoke_async(redis)
        .await?;
    Ok(())
}

/// How the queue stands, for the gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depth {
    /// Letters waiting (due, leased or backing off).
    pub queued: u64,
    /// Age of the oldest of them.
    pub oldest: Duration,
    /// Letters in the dead letters.
    pub dead: u64,
}

/// Delivers queued letters until shutdown.
pub struct Worker {
    redis: Redis,
    keys: Keys,
    sealer: Sealer,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    policy: Policy,
}

/// What one attempt came to.
enum Delivery {
    Sent,
    /// The server refused the letter for good (a 5xx reply, a bad address): dead at once.
    Rejected(String),
    /// The server deferred it (a 4xx reply): the attempt counts against the letter.
    Deferred(String),
    /// The server could not be reached or did not answer: not the letter's fault.
    Unreachable(String),
}

/// A letter taken off the queue.
struct Claimed {
    id: String,
    sealed: Vec<u8>,
    attempts: u32,
    age: Duration,
}

impl Worker {
    pub fn new(
        redis: Redis,
        prefix: &str,
        sealer: Sealer,
        smtp: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        policy: Policy,
    ) -> Self {
        Self {
            redis,
            keys: Keys::new(prefix),
            sealer,
            smtp,
            from,
            policy,
        }
    }

    async fn claim(&mut self) -> Result<Vec<Claimed>, redis::RedisError> {
        let rows: Vec<(String, Vec<u8>, u32, u64)> = invocation(&CLAIM, &self.keys)
            .arg(u64::try_from(self.policy.claim_after.as_millis()).unwrap_or(60_000))
            .arg(self.policy.concurrency * 2)
            .invoke_async(&mut self.redis)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, sealed, attempts, age)| Claimed {
                id,
                sealed,
                attempts,
                age: Duration::from_millis(age),
            })
            .collect())
    }

    /// Waits up to `wait` for a letter to be queued.
    async fn idle(&mut self, wait: Duration) -> Result<(), redis::RedisError> {
        let _: Option<(String, String)> = self
            .redis
            .blpop(&self.keys.wake, wait.as_secs_f64())
            .await?;
        Ok(())
    }

    /// How the queue stands.
    pub async fn depth(&mut self) -> Result<Depth, redis::RedisError> {
        /// Letters queued, the oldest (id, queued at ms), dead letters, Redis' clock.
        type Reading = (u64, Vec<(String, f64)>, u64, (u64, u64));
        let (queued, oldest, dead, time): Reading = redis::pipe()
            .zcard(&self.keys.born)
            .zrange_withscores(&self.keys.born, 0, 0)
            .xlen(&self.keys.dead)
            .cmd("TIME")
            .query_async(&mut self.redis)
            .await?;
        let now_ms = time.0 * 1000 + time.1 / 1000;
        let oldest = oldest.first().map_or(Duration::ZERO, |(_, born)| {
            Duration::from_millis(now_ms.saturating_sub(*born as u64))
        });
        Ok(Depth {
            queued,
            oldest,
            dead,
        })
    }

    /// Moves letters left in the stream an earlier version kept them in into the queue (each
    /// written to the queue before it leaves the stream, so a crash in between repeats a
    /// letter at worst, never loses one; a letter an old replica is sending at that moment may
    /// go out twice).
    async fn adopt_legacy(&mut self) -> Result<(), redis::RedisError> {
        let waiting: u64 = self.redis.xlen(&self.keys.legacy).await?;
        if waiting == 0 {
            return Ok(());
        }
        // One replica at a time, or two would queue the same letter twice. A replica that
        // dies while holding the lease lets it lapse; the next one repeats at most the letter
        // it was moving.
        let holder = uuid::Uuid::new_v4().simple().to_string();
        let held: Option<String> = redis::cmd("SET")
            .arg(&self.keys.adopting)
            .arg(&holder)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut self.redis)
            .await?;
        if held.is_none() {
            return Ok(());
        }
        let moved = self.move_legacy().await;
        let _: i64 = RELEASE
            .key(&self.keys.adopting)
            .arg(&holder)
            .invoke_async(&mut self.redis)
            .await?;
        moved
    }

    async fn move_legacy(&mut self) -> Result<(), redis::RedisError> {
        loop {
            let page: redis::streams::StreamRangeReply = self
                .redis
                .xrange_count(&self.keys.legacy, "-", "+", 100)
                .await?;
            if page.ids.is_empty() {
                return Ok(());
            }
            for entry in &page.ids {
                if let Some(sealed) = letter_field(&entry.map) {
                    enqueue_sealed(&mut self.redis, &self.keys, &sealed).await?;
                }
                let _: i64 = self.redis.xdel(&self.keys.legacy, &[&entry.id]).await?;
            }
            tracing::info!(
                letters = page.ids.len(),
                "outbox: letters of the old stream queued"
            );
        }
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
            Err(e) if e.is_transient() => Delivery::Deferred(e.to_string()),
            Err(e) => Delivery::Unreachable(e.to_string()),
        }
    }

    /// One letter, from its claim to its next place: sent and removed, back in the queue with
    /// its own wait, or dead.
    async fn attempt(&self, claimed: Claimed) -> Result<(), redis::RedisError> {
        let mut redis = self.redis.clone();
        let id = claimed.id;
        let Some(letter) = self.sealer.open(&claimed.sealed) else {
            // Sealed with a key this replica lacks (a rotation half done?): kept, and looked at
            // again after the longest wait.
            metrics::counter!("verification_outbox_kept_total", "why" => "unreadable").increment(1);
            tracing::error!(id, "outbox: letter cannot be opened (wrong key?); kept");
            return self
                .retry(&mut redis, &id, self.policy.retry_max, false)
                .await;
        };
        let to = examreg_domain::mask_email(&letter.to);
        // A trace of its own (the request is long answered), linked to the request's.
        let span = tracing::info_span!(parent: None, "smtp_delivery", to = %to, outbox_id = %id);
        if let Some(traceparent) = &letter.traceparent {
            examreg_kit::telemetry::link_to(&span, traceparent);
        }
        let delivery = tracing::Instrument::instrument(self.deliver(&letter), span).await;
        let attempts = claimed.attempts + 1;
        match delivery {
            Delivery::Sent => {
                metrics::counter!("verification_letters_delivered_total").increment(1);
                tracing::info!(id, to, attempts, "outbox: letter delivered");
                let _: i64 = invocation(&FINISH, &self.keys)
                    .arg(&id)
                    .invoke_async(&mut redis)
                    .await
                    .inspect_err(|e| {
                        tracing::warn!(id, error = %e, "outbox: delivered letter not removed; it may be sent twice");
                    })?;
                Ok(())
            }
            Delivery::Rejected(why) => {
                metrics::counter!("verification_letters_rejected_total").increment(1);
                self.bury(&mut redis, (&id, &to, attempts), "rejected", &why)
                    .await
            }
            Delivery::Deferred(why) | Delivery::Unreachable(why)
                if claimed.age >= self.policy.max_age =>
            {
                metrics::counter!("verification_letters_expired_total", "limit" => "age")
                    .increment(1);
                self.bury(&mut redis, (&id, &to, attempts), "too_old", &why)
                    .await
            }
            Delivery::Deferred(why) if attempts >= self.policy.max_attempts => {
                metrics::counter!("verification_letters_expired_total", "limit" => "attempts")
                    .increment(1);
                self.bury(&mut redis, (&id, &to, attempts), "too_many_attempts", &why)
                    .await
            }
            Delivery::Deferred(why) => {
                metrics::counter!("verification_delivery_failures_total", "kind" => "deferred")
                    .increment(1);
                let wait = self.policy.backoff(attempts);
                tracing::warn!(
                    id,
                    to,
                    why = examreg_domain::mask_emails_in(&why),
                    attempts,
                    retry_in_secs = wait.as_secs(),
                    "outbox: letter deferred; will retry"
                );
                self.retry(&mut redis, &id, wait, true).await
            }
            Delivery::Unreachable(why) => {
                metrics::counter!("verification_delivery_failures_total", "kind" => "unreachable")
                    .increment(1);
                let wait = self.policy.unreachable_backoff(claimed.age);
                tracing::warn!(
                    id,
                    to,
                    why = examreg_domain::mask_emails_in(&why),
                    retry_in_secs = wait.as_secs(),
                    "outbox: mail server unreachable; will retry"
                );
                self.retry(&mut redis, &id, wait, false).await
            }
        }
    }

    async fn retry(
        &self,
        redis: &mut Redis,
        id: &str,
        wait: Duration,
        counts: bool,
    ) -> Result<(), redis::RedisError> {
        let _: i64 = invocation(&RETRY, &self.keys)
            .arg(id)
            .arg(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
            .arg(if counts { "1" } else { "0" })
            .invoke_async(redis)
            .await?;
        Ok(())
    }

    /// To the dead letters, with the reason (addresses masked). If Redis refuses, the letter
    /// stays queued (its lease runs out and it is tried again) and is counted.
    async fn bury(
        &self,
        redis: &mut Redis,
        letter: (&str, &str, u32),
        cause: &str,
        why: &str,
    ) -> Result<(), redis::RedisError> {
        let (id, to, attempts) = letter;
        let why = examreg_domain::mask_emails_in(why);
        let reason = format!("{cause}: {why}");
        let buried: Result<i64, _> = invocation(&BURY, &self.keys)
            .arg(id)
            .arg(&reason)
            .arg(attempts)
            .invoke_async(redis)
            .await;
        match buried {
            Ok(_) => {
                metrics::counter!("verification_letters_dead_total", "cause" => cause.to_owned())
                    .increment(1);
                tracing::error!(id, to, reason, "outbox: letter moved to the dead letters");
                Ok(())
            }
            Err(e) => {
                metrics::counter!("verification_outbox_kept_total", "why" => "dead_letter_failed")
                    .increment(1);
                tracing::error!(id, to, error = %e, "outbox: dead-lettering failed; the letter stays queued");
                // Tried again after its wait (if even this fails, its lease runs out instead).
                let wait = self.policy.backoff(attempts);
                self.retry(redis, id, wait, false).await?;
                Err(e)
            }
        }
    }

    async fn publish_depth(&mut self) {
        match self.depth().await {
            Ok(depth) => {
                metrics::gauge!("verification_outbox_depth").set(depth.queued as f64);
                metrics::gauge!("verification_outbox_oldest_age_seconds")
                    .set(depth.oldest.as_secs_f64());
                metrics::gauge!("verification_outbox_dead_letters").set(depth.dead as f64);
            }
            Err(e) => tracing::warn!(error = %e, "outbox: depth not read"),
        }
    }

    /// Runs until `shutdown` resolves; letters being sent then are finished first.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures: u32 = 0;
        let mut published = tokio::time::Instant::now() - Duration::from_secs(60);
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
            if published.elapsed() >= Duration::from_secs(5) {
                // During a rolling update replicas of the earlier version still queue into
                // the old stream, so it is looked at again every few seconds (an empty
                // XRANGE), not once.
                if let Err(e) = self.adopt_legacy().await {
                    tracing::warn!(error = %e, "outbox: old stream not read yet");
                }
                self.publish_depth().await;
                published = tokio::time::Instant::now();
            }
            let batch = tokio::select! {
                () = &mut shutdown => return,
                batch = self.claim() => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "outbox: redis unavailable");
                    continue;
                }
            };
            if batch.is_empty() {
                failures = 0;
                let idle = tokio::select! {
                    () = &mut shutdown => return,
                    idle = self.idle(Duration::from_secs(1)) => idle,
                };
                if let Err(e) = idle {
                    failures += 1;
                    tracing::warn!(error = %e, "outbox: redis unavailable");
                }
                continue;
            }
            // Each letter on its own: a deferred one takes its own wait and the rest go on.
            let results: Vec<_> = futures::stream::iter(batch)
                .map(|claimed| self.attempt(claimed))
                .buffer_unordered(self.policy.concurrency)
                .collect()
                .await;
            failures = if results.iter().any(Result::is_err) {
                failures + 1
            } else {
                0
            };
        }
    }
}

fn letter_field(map: &std::collections::HashMap<String, redis::Value>) -> Option<Vec<u8>> {
    match map.get("letter") {
        Some(redis::Value::BulkString(bytes)) => Some(bytes.clone()),
        _ => None,
    }
}
