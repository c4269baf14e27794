//! Pre-account flow state (registration and recovery) in Redis, one JSON value per flow with an
//! absolute expiry: a flow is a bounded window, not a session that lives while it is used.
//! The next step is derived from what the flow holds, never stored beside it, so the two
//! cannot disagree.

use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use examreg_kit::redis::Redis;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Registration,
    Recovery,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    pub id: Uuid,
    pub kind: Kind,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_ip: String,
    pub user_agent: String,
    #[serde(default)]
    pub citizenship: String,
    #[serde(default)]
    pub terms_version: String,
    /// The SHA-256 of the agreement's text accepted, and its language.
    #[serde(default)]
    pub terms_sha256: String,
    #[serde(default)]
    pub terms_language: String,
    #[serde(default)]
    pub iin: Option<String>,
    #[serde(default)]
    pub passport_number: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub challenge_id: Option<String>,
    #[serde(default)]
    pub resend_available_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub email_proof: Option<String>,
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub finished: bool,
    /// Bumped by every save; a save based on an older version is refused, so two concurrent
    /// requests on one flow cannot silently undo each other.
    #[serde(default)]
    pub version: u64,
}

impl Flow {
    pub fn new(kind: Kind, ttl: std::time::Duration, client_ip: &str, user_agent: &str) -> Self {
        let now = Utc::now();
        Self {
            id: Uuid::new_v4(),
            kind,
            created_at: now,
            expires_at: now + ttl,
            client_ip: client_ip.to_owned(),
            user_agent: user_agent.to_owned(),
            citizenship: String::new(),
            terms_version: String::new(),
            terms_sha256: String::new(),
            terms_language: String::new(),
            iin: None,
            passport_number: None,
            email: None,
            challenge_id: None,
            resend_available_at: None,
            email_proof: None,
            account_id: None,
            finished: false,
            version: 0,
        }
    }

    /// Forgets who the flow was for once it has done its work (the account made, the password
    /// replaced): what stays until the flow expires names nobody, so an erasure of the person
    /// meanwhile leaves nothing of them here.
    pub fn forget_person(&mut self) {
        self.iin = None;
        self.passport_number = None;
        self.email = None;
        self.email_proof = None;
        self.challenge_id = None;
        self.resend_available_at = None;
        self.client_ip.clear();
        self.user_agent.clear();
    }

    pub fn next_step(&self) -> &'static str {
        match self.kind {
            Kind::Registration if self.account_id.is_some() => "login",
            Kind::Registration if self.email_proof.is_some() => "password",
            Kind::Registration if self.challenge_id.is_some() => "email_code",
            Kind::Registration if self.iin.is_some() || self.passport_number.is_some() => "email",
            Kind::Registration => "identifier",
            Kind::Recovery if self.finished => "login",
            Kind::Recovery if self.email_proof.is_some() => "password",
            Kind::Recovery => "email_code",
        }
    }
}

/// Saves a flow if it still exists at the version it was loaded at.
/// KEYS[1] flow; ARGV: expected version, new version, JSON, expiry (unix ms).
/// Returns 1 saved, 0 changed meanwhile, -1 gone (expired).
static SAVE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
        local v = redis.call('HGET', KEYS[1], 'v')
        if not v then return -1 end
        if v ~= ARGV[1] then return 0 end
        redis.call('HSET', KEYS[1], 'v', ARGV[2], 'json', ARGV[3])
        redis.call('PEXPIREAT', KEYS[1], ARGV[4])
        return 1
        ",
    )
});

/// The outcome of a save.
#[derive(Debug, PartialEq, Eq)]
pub enum Saved {
    Yes,
    /// Another request changed the flow since it was loaded.
    Conflict,
    Expired,
}

#[derive(Clone)]
pub struct Flows {
    redis: Redis,
    prefix: String,
}

impl Flows {
    pub fn new(redis: Redis, prefix: String) -> Self {
        Self { redis, prefix }
    }

    fn key(&self, id: Uuid) -> String {
        format!("{}flow:{{{id}}}", self.prefix)
    }

    /// The live flow of `kind` a URL names: 404 for an id that is malformed or of the other
    /// kind, 410 `flow_expired` once it is gone, 503 while Redis is.
    pub async fn open(&self, flow_id: &str, kind: Kind) -> ApiResult<Flow> {
        let id: Uuid = flow_id
            .parse()
            .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found"))?;
        examreg_kit::telemetry::journey("flow_id", &examreg_kit::telemetry::fingerprint(&id));
        match self.load(id).await.map_err(|e| ApiError::unavailable(&e))? {
            Some(flow) if flow.kind == kind => {
                if let Some(account) = &flow.account_id {
                    examreg_kit::telemetry::journey("account_id", account);
                }
                Ok(flow)
            }
            Some(_) => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found")),
            None => Err(ApiError::flow_expired()),
        }
    }

    /// Stores a new flow, or 503 while Redis is down.
    pub async fn begin(&self, flow: &Flow) -> ApiResult<()> {
        self.create(flow)
            .await
            .map_err(|e| ApiError::unavailable(&e))?;
        examreg_kit::telemetry::journey("flow_id", &examreg_kit::telemetry::fingerprint(&flow.id));
        Ok(())
    }

    /// Saves a flow as [`Flows::save`] does, answering 409 `flow_changed` when another request
    /// changed it meanwhile and 410 `flow_expired` when it is gone.
    pub async fn commit(&self, flow: &mut Flow) -> ApiResult<()> {
        match self
            .save(flow)
            .await
            .map_err(|e| ApiError::unavailable(&e))?
        {
            Saved::Yes => Ok(()),
            Saved::Conflict => Err(ApiError::new(StatusCode::CONFLICT, "flow_changed")),
            Saved::Expired => Err(ApiError::flow_expired()),
        }
    }

    /// Loads a live flow; `None` when it expired or never existed.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn load(&self, id: Uuid) -> Result<Option<Flow>, redis::RedisError> {
        let raw: Option<String> =
            redis::AsyncCommands::hget(&mut self.redis.clone(), self.key(id), "json").await?;
        Ok(raw.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Stores a new flow.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn create(&self, flow: &Flow) -> Result<(), redis::RedisError> {
        let key = self.key(flow.id);
        let json = serde_json::to_string(flow).expect("a flow serializes");
        let _: () = redis::pipe()
            .atomic()
            .hset_multiple(&key, &[("v", flow.version.to_string()), ("json", json)])
            .ignore()
            .pexpire_at(&key, flow.expires_at.timestamp_millis())
            .ignore()
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Saves a flow that must still exist, unchanged since it was loaded; an expired flow is
    /// never brought back. Bumps `flow.version`.
    #[tracing::instrument(skip_all, fields(db.system = "redis"))]
    pub async fn save(&self, flow: &mut Flow) -> Result<Saved, redis::RedisError> {
        let expected = flow.version;
        flow.version += 1;
        let json = serde_json::to_string(flow).expect("a flow serializes");
        let outcome: i64 = SAVE
            .key(self.key(flow.id))
            .arg(expected.to_string())
            .arg(flow.version.to_string())
            .arg(json)
            .arg(flow.expires_at.timestamp_millis())
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match outcome {
            1 => Saved::Yes,
            0 => Saved::Conflict,
            _ => Saved::Expired,
        })
    }
}
