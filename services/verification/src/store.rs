//! The code store: challenges in Redis, each check one atomic Lua script, so concurrent calls
//! (on any number of replicas) cannot beat the attempt cap, the cooldown or the budgets.
//!
//! A code is never stored: only HMAC-SHA256(key, challenge id ‖ code). Keys carry no personal
//! data either: budgets are keyed by an HMAC of the email. Each key carries a `{hash tag}` so
//! that a script's keys live in one slot when Redis runs as a cluster.

use examreg_kit::redis::Redis;
use hmac::{Hmac, Mac};
use rand::Rng;
use redis::Script;
use sha2::Sha256;
use std::{sync::LazyLock, time::Duration};
use uuid::Uuid;

static CREATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/create.lua")));
static CONFIRM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/confirm.lua")));
static RESEND: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/resend.lua")));
static BUDGET: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/budget.lua")));

/// What a code is for; a proof for one purpose is useless for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    Registration,
    Recovery,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Recovery => "recovery",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "registration" => Some(Self::Registration),
            "recovery" => Some(Self::Recovery),
            _ => None,
        }
    }
}

/// Limits of the code store, from config.
#[derive(Debug, Clone)]
pub struct Limits {
    pub code_ttl: Duration,
    pub resend_cooldown: Duration,
    pub max_attempts: u32,
    pub email_hourly: u32,
    pub ip_hourly: u32,
}

/// A six-digit code, drawn uniformly from the OS CSPRNG. Its `Debug` never shows the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    pub fn generate() -> Self {
        Self(format!(
            "{:06}",
            rand::rngs::OsRng.gen_range(0..1_000_000u32)
        ))
    }

    /// Accepts exactly six ASCII digits (surrounding whitespace trimmed).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        (s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())).then(|| Self(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(******)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("unexpected script answer")]
    Protocol,
}

/// When a new challenge or code may be resent and when it expires (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub resend_at_ms: i64,
    pub expires_at_ms: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Confirm {
    Ok { email: String, purpose: Purpose },
    Wrong { attempts_left: u32 },
    Burnt,
    Missing,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Resend {
    Ok {
        email: String,
        purpose: Purpose,
        timing: Timing,
    },
    Early {
        wait: Duration,
    },
    Missing,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Budget {
    Within,
    Over { retry_after: Duration, of: Limit },
}

/// Which budget a send was over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The email's, or the typed login's: strict.
    Subject,
    /// The client address's: the gateway may vouch for a client past it.
    Address,
}

#[derive(Clone)]
pub struct CodeStore {
    redis: Redis,
    prefix: String,
    key: Vec<u8>,
    pub limits: Limits,
}

fn as_int(s: &str) -> Result<i64, StoreError> {
    s.parse().map_err(|_| StoreError::Protocol)
}

/// A script's answer (a list of strings, the first saying which case), to match on.
fn words(answer: &[String]) -> Vec<&str> {
    answer.iter().map(String::as_str).collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl CodeStore {
    pub fn new(redis: Redis, prefix: String, key: &[u8], limits: Limits) -> Self {
        Self {
            redis,
            prefix,
            key: key.to_vec(),
            limits,
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// The MAC a challenge keeps of its code; a decoy (`None`) keeps random bytes that no
    /// offered code's MAC can equal.
    fn code_mac(&self, challenge: Uuid, code: Option<&Code>) -> String {
        match code {
            Some(code) => self.mac(&[b"code", challenge.as_bytes(), code.expose().as_bytes()]),
            None => hex::encode(rand::random::<[u8; 32]>()),
        }
    }

    fn challenge_key(&self, challenge: Uuid) -> String {
        format!("{}ch:{{{challenge}}}", self.prefix)
    }

    /// The tag a subject's budget is counted under: an HMAC of the email, or of the login
    /// the applicant typed (a login has no `@`, so the two never meet), never the value itself.
    pub fn subject_tag(&self, subject: &str) -> String {
        self.mac(&[b"email", subject.as_bytes()])[..32].to_owned()
    }

    /// Spends one send from the subject's and the IP's hourly budgets (the subject first: it
    /// is the tighter one and the one an attacker cannot rotate). A send the IP's budget
    /// refuses is given back to the subject's, so a caller that earns more room for its
    /// address (the gateway's proof of work) and asks again has lost nothing.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn spend_budgets(
        &self,
        subject_tag: &str,
        client_ip: &str,
    ) -> Result<Budget, StoreError> {
        let hour = Duration::from_secs(3600);
        let subject_key = format!("{}budget:email:{{{subject_tag}}}", self.prefix);
        if let Some(retry_after) = self
            .spend(&subject_key, self.limits.email_hourly, hour)
            .await?
        {
            return Ok(Budget::Over {
                retry_after,
                of: Limit::Subject,
            });
        }
        if client_ip.is_empty() {
            return Ok(Budget::Within);
        }
        let ip_tag = &self.mac(&[b"ip", client_ip.as_bytes()])[..32];
        let ip_key = format!("{}budget:ip:{{{ip_tag}}}", self.prefix);
        match self.spend(&ip_key, self.limits.ip_hourly, hour).await? {
            None => Ok(Budget::Within),
            Some(retry_after) => {
                let _: i64 =
                    redis::AsyncCommands::decr(&mut self.redis.clone(), &subject_key, 1).await?;
                Ok(Budget::Over {
                    retry_after,
                    of: Limit::Address,
                })
            }
        }
    }

    /// Spends one unit of `key`'s budget; `Some(wait until the window resets)` when over it.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    async fn spend(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let (within, value): (i64, i64) = BUDGET
            .key(key)
            .arg(limit)
            .arg(millis(window))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok((within != 1).then(|| Duration::from_millis(u64::try_from(value).unwrap_or(0))))
    }

    /// Creates a challenge holding the MAC of `code` (a decoy, `None`, holds one nothing
    /// matches and an empty email) and the tag of the budget its resends spend.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn create(
        &self,
        challenge: Uuid,
        email: &str,
        purpose: Purpose,
        code: Option<&Code>,
        subject_tag: &str,
    ) -> Result<Timing, StoreError> {
        let answer: Vec<String> = CREATE
            .key(self.challenge_key(challenge))
            .arg(email)
            .arg(purpose.as_str())
            .arg(self.code_mac(challenge, code))
            .arg(millis(self.limits.resend_cooldown))
            .arg(millis(self.limits.code_ttl))
            .arg(subject_tag)
            .invoke_async(&mut self.redis.clone())
            .await?;
        match answer.as_slice() {
            [resend_at, expires_at] => Ok(Timing {
                resend_at_ms: as_int(resend_at)?,
                expires_at_ms: as_int(expires_at)?,
            }),
            _ => Err(StoreError::Protocol),
        }
    }

    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn confirm(&self, challenge: Uuid, code: &Code) -> Result<Confirm, StoreError> {
        let answer: Vec<String> = CONFIRM
            .key(self.challenge_key(challenge))
            .arg(self.code_mac(challenge, Some(code)))
            .arg(self.limits.max_attempts)
            .invoke_async(&mut self.redis.clone())
            .await?;
        match words(&answer).as_slice() {
            ["ok", email, purpose] => Ok(Confirm::Ok {
                email: (*email).to_owned(),
                purpose: Purpose::parse(purpose).ok_or(StoreError::Protocol)?,
            }),
            ["wrong", left] => Ok(Confirm::Wrong {
                attempts_left: left.parse().map_err(|_| StoreError::Protocol)?,
            }),
            ["burnt"] => Ok(Confirm::Burnt),
            ["missing"] => Ok(Confirm::Missing),
            _ => Err(StoreError::Protocol),
        }
    }

    /// Checks the cooldown without changing anything: resend spends budgets only when it can
    /// actually send.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn resend_wait(
        &self,
        challenge: Uuid,
    ) -> Result<Option<Option<Duration>>, StoreError> {
        let mut redis = self.redis.clone();
        let key = self.challenge_key(challenge);
        let (resend_at, time): (Option<i64>, (i64, i64)) = redis::pipe()
            .hget(&key, "resend_at")
            .cmd("TIME")
            .query_async(&mut redis)
            .await?;
        let Some(resend_at) = resend_at else {
            return Ok(None);
        };
        let now = time.0 * 1000 + time.1 / 1000;
        Ok(Some((now < resend_at).then(|| {
            Duration::from_millis(u64::try_from(resend_at - now).unwrap_or(0))
        })))
    }

    /// Replaces the code of a challenge if its cooldown has passed.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn resend(&self, challenge: Uuid, code: Option<&Code>) -> Result<Resend, StoreError> {
        let answer: Vec<String> = RESEND
            .key(self.challenge_key(challenge))
            .arg(self.code_mac(challenge, code))
            .arg(millis(self.limits.resend_cooldown))
            .arg(millis(self.limits.code_ttl))
            .invoke_async(&mut self.redis.clone())
            .await?;
        match words(&answer).as_slice() {
            ["ok", email, purpose, resend_at, expires_at] => Ok(Resend::Ok {
                email: (*email).to_owned(),
                purpose: Purpose::parse(purpose).ok_or(StoreError::Protocol)?,
                timing: Timing {
                    resend_at_ms: as_int(resend_at)?,
                    expires_at_ms: as_int(expires_at)?,
                },
            }),
            ["early", wait] => Ok(Resend::Early {
                wait: Duration::from_millis(u64::try_from(as_int(wait)?).unwrap_or(0)),
            }),
            ["missing"] => Ok(Resend::Missing),
            _ => Err(StoreError::Protocol),
        }
    }

    /// Deletes the live challenges of an email, and its send budget and the login's; how many
    /// challenges.
    /// Challenges are keyed by id, so this scans them, on every primary of a cluster (a rare
    /// operator action; live challenges expire within minutes, so there are never many).
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn erase(&self, email: &str, login: Option<&str>) -> Result<u32, StoreError> {
        let mut redis = self.redis.clone();
        let pattern = format!("{}ch:*", self.prefix);
        let keys = examreg_kit::redis::scan_match(&redis, &pattern).await?;
        let mut deleted = 0;
        for key in keys {
            let owner: Option<String> =
                redis::AsyncCommands::hget(&mut redis, &key, "email").await?;
            if owner.is_some_and(|o| o.eq_ignore_ascii_case(email)) {
                let _: i64 = redis::AsyncCommands::del(&mut redis, &key).await?;
                deleted += 1;
            }
        }
        for subject in std::iter::once(email).chain(login) {
            let _: i64 = redis::AsyncCommands::del(
                &mut redis,
                format!(
                    "{}budget:email:{{{}}}",
                    self.prefix,
                    self.subject_tag(subject)
                ),
            )
            .await?;
        }
        Ok(deleted)
    }

    /// Marks that the proof `jti` had its notice, for as long as the proof lives; `false` when
    /// it already had one.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn mark_notice(&self, jti: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut redis = self.redis.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}notice:{{{jti}}}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut redis)
            .await?;
        Ok(set.is_some())
    }

    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn unmark_notice(&self, jti: &str) -> Result<(), StoreError> {
        let mut redis = self.redis.clone();
        let _: i64 =
            redis::AsyncCommands::del(&mut redis, format!("{}notice:{{{jti}}}", self.prefix))
                .await?;
        Ok(())
    }

    /// Who a live challenge is for: its email (empty for a decoy) and the tag of the budget
    /// its resends spend.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn subject_of(&self, challenge: Uuid) -> Result<Option<Subject>, StoreError> {
        let mut redis = self.redis.clone();
        let (email, tag): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.challenge_key(challenge))
            .arg("email")
            .arg("budget")
            .query_async(&mut redis)
            .await?;
        Ok(email.map(|email| Subject {
            // A challenge made before budgets were tagged counts against its email.
            budget: tag.unwrap_or_else(|| self.subject_tag(&email)),
            email,
        }))
    }
}

/// Who a challenge is for.
#[derive(Debug, PartialEq, Eq)]
pub struct Subject {
    /// Empty for a decoy.
    pub email: String,
    /// The tag of the budget its sends spend.
    pub budget: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_never_debug_print() {
        for _ in 0..1000 {
            let code = Code::generate();
            assert_eq!(code.expose().len(), 6);
            assert!(Code::parse(code.expose()).is_some());
            assert_eq!(format!("{code:?}"), "Code(******)");
        }
        for bad in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert!(Code::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn codes_cover_the_whole_range() {
        // 20 000 draws over 10 buckets of the first digit: each bucket near 2 000.
        let mut buckets = [0u32; 10];
        for _ in 0..20_000 {
            buckets[usize::from(Code::generate().expose().as_bytes()[0] - b'0')] += 1;
        }
        assert!(
            buckets.iter().all(|n| (1_600..2_400).contains(n)),
            "{buckets:?}"
        );
    }
}
