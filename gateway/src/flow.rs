//! Pre-account flow state (registration and recovery) in Redis, one JSON value per flow with an
//! absolute expiry: a flow is a bounded window, not a session that lives while it is used.
//! The next step is derived from what the flow holds, never stored beside it, so the two
//! cannot disagree.

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
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
    /// Recovery for a login that matches no account: wrong codes are counted here so the flow
    /// behaves exactly like a real one.
    #[serde(default)]
    pub decoy_attempts: u32,
    #[serde(default)]
    pub finished: bool,
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
            iin: None,
            passport_number: None,
            email: None,
            challenge_id: None,
            resend_available_at: None,
            email_proof: None,
            account_id: None,
            decoy_attempts: 0,
            finished: false,
        }
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

#[derive(Clone)]
pub struct Flows {
    redis: ConnectionManager,
    prefix: String,
}

impl Flows {
    pub fn new(redis: ConnectionManager, prefix: String) -> Self {
        Self { redis, prefix }
    }

    fn key(&self, id: Uuid) -> String {
        format!("{}flow:{{{id}}}", self.prefix)
    }

    /// Loads a live flow; `None` when it expired or never existed.
    pub async fn load(&self, id: Uuid) -> Result<Option<Flow>, redis::RedisError> {
        let raw: Option<String> =
            redis::AsyncCommands::get(&mut self.redis.clone(), self.key(id)).await?;
        Ok(raw.and_then(|json| serde_json::from_str(&json).ok()))
    }

    /// Stores a new flow.
    pub async fn create(&self, flow: &Flow) -> Result<(), redis::RedisError> {
        self.set(flow, "NX").await.map(|_| ())
    }

    /// Saves a flow that must still exist (an expired flow is never brought back).
    /// Returns false when it had expired.
    pub async fn save(&self, flow: &Flow) -> Result<bool, redis::RedisError> {
        self.set(flow, "XX").await
    }

    async fn set(&self, flow: &Flow, mode: &str) -> Result<bool, redis::RedisError> {
        let json = serde_json::to_string(flow).expect("a flow serializes");
        let done: Option<String> = redis::cmd("SET")
            .arg(self.key(flow.id))
            .arg(json)
            .arg(mode)
            .arg("PXAT")
            .arg(flow.expires_at.timestamp_millis())
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(done.is_some())
    }
}
