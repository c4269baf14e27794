//! Who is calling. Every gRPC call carries `authorization: Bearer <token>`: either an end
//! user's access token (forwarded by the gateway; the service acts on that user only) or a
//! service token with scopes. [`AuthLayer`] verifies the token before any handler runs and puts
//! the [`Caller`] into the request's extensions; handlers then ask for what they need with
//! [`caller`] and [`Caller::require_scope`].

use crate::tokens::{KeySet, SigningKey};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::{
    sync::{Arc, RwLock},
    task::{Context, Poll},
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tonic::{Request, Status, metadata::MetadataValue};
use uuid::Uuid;

/// Issuer of access and service tokens.
pub const ISSUER: &str = "examreg-identity";
/// Audience of access and service tokens: every examreg service.
pub const AUDIENCE: &str = "examreg";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// An end user's access token.
    Access,
    /// A service client's token.
    Service,
    /// A phone's token after a hand-off: the photos of one account, nothing else.
    Capture,
    /// Identity's own token for one change of a registration it has already recorded (its
    /// audit row and feed event written): the owners' reopen and erase calls take nothing
    /// else, so no client, whatever its scopes, changes a registration past identity's record.
    Change,
}

/// What a recorded change does to a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// Steps of a completed registration to redo.
    Reopen,
    /// The person's data to erase.
    Erase,
}

impl ChangeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reopen => "reopen",
            Self::Erase => "erase",
        }
    }
}

/// A change of a registration as identity recorded it, carried in a [`TokenKind::Change`]
/// token: the owners check the call against it and record its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Identity's id of the change (its `changes` row).
    pub id: Uuid,
    pub action: ChangeAction,
    /// The steps a reopening names; empty for an erasure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// Who asked identity for the change (the staff member or client its audit row names).
    pub by: String,
}

/// Issuer and audience of email proofs (signed by verification, accepted once by identity).
pub const PROOF_ISSUER: &str = "examreg-verification";
pub const PROOF_AUDIENCE: &str = "examreg-identity";

/// The claims of an email proof: this email was shown to be readable, for this purpose.
/// identity accepts each `jti` once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofClaims {
    pub iss: String,
    pub aud: String,
    /// The normalized email.
    pub sub: String,
    /// `registration` or `recovery`.
    pub purpose: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

/// The claims of access and service tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Account id (access) or client id (service).
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub typ: TokenKind,
    /// The session (refresh family) an access token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Space-separated scopes of a service token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The recorded change a [`TokenKind::Change`] token is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chg: Option<Change>,
    /// A staff client's token: every call with it names the person it is made for
    /// ([`ON_BEHALF_OF`]), and is refused without one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub staff: bool,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Claims {
    pub fn access(account_id: Uuid, session_id: Uuid, ttl: Duration) -> Self {
        let now = unix_now();
        Self {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: account_id.to_string(),
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(900),
            iat: now,
            jti: Uuid::new_v4().to_string(),
            typ: TokenKind::Access,
            sid: Some(session_id.to_string()),
            scope: None,
            chg: None,
            staff: false,
        }
    }

    /// A capture token: what a phone holds after the desktop handed the photo steps to it.
    pub fn capture(account_id: Uuid, session_id: Uuid, ttl: Duration) -> Self {
        Self {
            typ: TokenKind::Capture,
            ..Self::access(account_id, session_id, ttl)
        }
    }

    pub fn service(client_id: &str, scopes: &[String], ttl: Duration) -> Self {
        let now = unix_now();
        Self {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: client_id.into(),
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(900),
            iat: now,
            jti: Uuid::new_v4().to_string(),
            typ: TokenKind::Service,
            sid: None,
            scope: Some(scopes.join(" ")),
            chg: None,
            staff: false,
        }
    }

    /// Identity's token for a change of `account_id`'s registration it has recorded.
    pub fn change(account_id: Uuid, change: Change, ttl: Duration) -> Self {
        Self {
            sub: account_id.to_string(),
            typ: TokenKind::Change,
            chg: Some(change),
            ..Self::service("identity", &[], ttl)
        }
    }
}

/// The authenticated caller of a gRPC request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User {
        account_id: Uuid,
        session_id: Uuid,
    },
    Service {
        /// The client, and for a call made for a person, `client/person` (see
        /// [`ON_BEHALF_OF`]): what the audit logs record as the actor.
        client_id: String,
        scopes: Vec<String>,
        /// A staff client: it must name the person on every call.
        staff: bool,
    },
    /// A phone after a hand-off: it may take and read the photos of this account, and read
    /// where the registration stands; every other call refuses it.
    Capture {
        account_id: Uuid,
        session_id: Uuid,
    },
    /// Identity, carrying out a change of this account's registration it has recorded.
    Change {
        account_id: Uuid,
        change: Change,
    },
}

impl Caller {
    fn from_claims(claims: Claims) -> Option<Self> {
        match claims.typ {
            TokenKind::Access => Some(Self::User {
                account_id: claims.sub.parse().ok()?,
                session_id: claims.sid?.parse().ok()?,
            }),
            TokenKind::Capture => Some(Self::Capture {
                account_id: claims.sub.parse().ok()?,
                session_id: claims.sid?.parse().ok()?,
            }),
            TokenKind::Service => Some(Self::Service {
                staff: claims.staff,
                client_id: claims.sub,
                scopes: claims
                    .scope
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            }),
            TokenKind::Change => Some(Self::Change {
                account_id: claims.sub.parse().ok()?,
                change: claims.chg?,
            }),
        }
    }

    /// The change identity recorded, when the caller is identity carrying out `action` on
    /// the account the request names (`named`), for steps the change names (`steps`, none for
    /// an erasure); PERMISSION_DENIED (`change_not_recorded`) for every other caller, whatever
    /// its scopes.
    pub fn require_change(
        &self,
        action: ChangeAction,
        named: &str,
        steps: &[String],
    ) -> Result<(Uuid, &Change), Status> {
        match self {
            Self::Change { account_id, change }
                if change.action == action
                    && named.parse() == Ok(*account_id)
                    && steps.iter().all(|step| change.steps.contains(step)) =>
            {
                Ok((*account_id, change))
            }
            Self::Change { .. }
            | Self::User { .. }
            | Self::Service { .. }
            | Self::Capture { .. } => Err(crate::errors::status(
                tonic::Code::PermissionDenied,
                "change_not_recorded",
                "this call changes a registration: only identity makes it, for a change it has \
                 recorded (ReopenRegistration, DeleteAccount)",
            )),
        }
    }

    /// The service client id if the caller is a service holding `scope`; PERMISSION_DENIED
    /// otherwise (a user token never carries service scopes).
    pub fn require_scope(&self, scope: &str) -> Result<&str, Status> {
        match self {
            Self::Service {
                client_id, scopes, ..
            } if scopes.iter().any(|s| s == scope) => Ok(client_id),
            Self::Service { .. }
            | Self::User { .. }
            | Self::Capture { .. }
            | Self::Change { .. } => Err(Status::permission_denied(format!(
                "this call needs the scope {scope}"
            ))),
        }
    }

    /// The account a call is about: an end user's own, or — for a service holding `scope` —
    /// the one the request names (`named`, a UUID).
    pub fn account_for(&self, scope: &str, named: &str) -> Result<Uuid, Status> {
        match self {
            Self::User { account_id, .. } => Ok(*account_id),
            Self::Service { .. } | Self::Change { .. } => {
                self.require_scope(scope)?;
                account_id_field(named)
            }
            Self::Capture { .. } => Err(capture_only()),
        }
    }

    /// Like [`Caller::account_for`], for the calls a phone may make after a hand-off (taking
    /// photos, reading where the registration stands): a capture token counts as its account.
    pub fn account_for_capture(&self, scope: &str, named: &str) -> Result<Uuid, Status> {
        match self {
            Self::Capture { account_id, .. } => Ok(*account_id),
            Self::User { .. } | Self::Service { .. } | Self::Change { .. } => {
                self.account_for(scope, named)
            }
        }
    }

    /// The account whose photos the caller may take: an end user's own, or the one a capture
    /// token was handed for; PERMISSION_DENIED for services.
    pub fn capturing_account(&self) -> Result<Uuid, Status> {
        match self {
            Self::User { account_id, .. } | Self::Capture { account_id, .. } => Ok(*account_id),
            Self::Service { .. } | Self::Change { .. } => Err(Status::permission_denied(
                "this call acts for an end user and needs their access token",
            )),
        }
    }

    /// The account id if the caller is an end user; PERMISSION_DENIED otherwise.
    pub fn require_user(&self) -> Result<(Uuid, Uuid), Status> {
        match self {
            Self::User {
                account_id,
                session_id,
            } => Ok((*account_id, *session_id)),
            Self::Service { .. } | Self::Change { .. } => Err(Status::permission_denied(
                "this call acts for an end user and needs their access token",
            )),
            Self::Capture { .. } => Err(capture_only()),
        }
    }
}

fn capture_only() -> Status {
    crate::errors::status(
        tonic::Code::PermissionDenied,
        "capture_only",
        "a hand-off token may only take the photos",
    )
}

/// The account id a request names in its `account_id` field: a UUID, or INVALID_ARGUMENT.
pub fn account_id_field(value: &str) -> Result<Uuid, Status> {
    value.parse().map_err(|_| {
        crate::errors::invalid(
            "invalid_account_id",
            "account_id is a UUID",
            &[("account_id", "invalid")],
        )
    })
}

/// The caller the auth layer attached to a request.
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))
}

/// The keys that tokens are checked against, shared and replaceable (JWKS refresh), and the
/// sessions that ended, whose tokens are refused although their signatures are good.
#[derive(Clone, Default, Debug)]
pub struct Keys {
    set: Arc<RwLock<KeySet>>,
    /// When each key id was last in a set fetched from identity.
    seen: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
    /// Where to fetch the set again when a token names a key it lacks, and when it last did.
    source: Arc<std::sync::OnceLock<Source>>,
    revoked: Revocations,
    /// Tokens whose signature and claims were checked, so each is verified once per
    /// process rather than on every call it rides on.
    verified: Verified,
}

/// Tokens already verified, by the SHA-256 of the token, each with its caller and the Unix
/// second it expires. A verification (an Ed25519 signature, base64 and JSON) costs tens of
/// microseconds and the same token comes with every call of a session, through the gateway
/// and again in each service it calls. Only tokens that verified are kept, so forgeries do
/// not fill it; an entry is used only until its token's `exp` (after that the full check,
/// with its leeway, decides), the sessions that ended are checked on every call as before,
/// and the whole cache is dropped when the key set changes, so a token of a key that left
/// the set is verified again (and refused).
#[derive(Clone, Default, Debug)]
struct Verified(Arc<std::sync::Mutex<VerifiedTokens>>);

/// Token digest → (its caller, its `exp`).
type VerifiedTokens = std::collections::HashMap<[u8; 32], (Caller, i64)>;

/// The most tokens kept; when full, expired entries go, and if none has, all of them (a
/// burst of logins empties it, which only costs verifications).
const VERIFIED_KEPT: usize = 50_000;

impl Verified {
    fn entries(&self) -> std::sync::MutexGuard<'_, VerifiedTokens> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, digest: &[u8; 32], now: i64) -> Option<Caller> {
        match self.entries().get(digest) {
            Some((caller, exp)) if now < *exp => Some(caller.clone()),
            Some(_) | None => None,
        }
    }

    fn put(&self, digest: [u8; 32], caller: Caller, exp: i64, now: i64) {
        let mut entries = self.entries();
        if entries.len() >= VERIFIED_KEPT {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= VERIFIED_KEPT {
                entries.clear();
            }
        }
        entries.insert(digest, (caller, exp));
    }

    fn clear(&self) {
        self.entries().clear();
    }
}

#[derive(Debug)]
struct Source {
    identity: tonic::transport::Channel,
    fetched: tokio::sync::Mutex<Option<std::time::Instant>>,
}

/// How long a key stays accepted after identity stopped publishing it (longer than any token
/// lives): replicas of identity in the middle of a rotation publish different sets.
const KEY_KEPT: Duration = Duration::from_secs(3600);
/// How long a call waits for a quiet revocation feed to speak again before it is refused.
const STALE_GRACE: Duration = Duration::from_secs(3);
/// The least time between two fetches for an unknown key id, so a flood of forged key ids
/// does not become a flood of fetches.
const REFETCH_EVERY: Duration = Duration::from_secs(2);

impl Keys {
    pub fn new(set: KeySet) -> Self {
        Self {
            set: Arc::new(RwLock::new(set)),
            ..Self::default()
        }
    }

    /// Takes in a set fetched from identity: its keys are added, and a key no fetched set
    /// has named for [`KEY_KEPT`] is dropped.
    pub fn merge(&self, fetched: KeySet) {
        let now = std::time::Instant::now();
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for kid in fetched.kids() {
            seen.insert(kid.to_owned(), now);
        }
        seen.retain(|_, at| now.duration_since(*at) < KEY_KEPT);
        let mut set = self
            .set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let merged = set.merged(&fetched, |kid| seen.contains_key(kid));
        let kids = |set: &KeySet| {
            let mut kids: Vec<String> = set.kids().map(str::to_owned).collect();
            kids.sort_unstable();
            kids
        };
        if kids(&merged) != kids(&set) {
            self.verified.clear();
        }
        *set = merged;
    }

    /// Fetch the set from this identity when a token names a key not in it.
    pub fn refetch_from(&self, identity: tonic::transport::Channel) {
        let _ = self.source.set(Source {
            identity,
            fetched: tokio::sync::Mutex::new(None),
        });
    }

    /// Like [`Keys::authenticate`], but a token signed with a key these keys do not know yet
    /// (identity rotated) makes them fetch identity's set first, at most every
    /// [`REFETCH_EVERY`].
    pub async fn authenticate_fresh(&self, token: &str) -> Result<Caller, Status> {
        let mut outcome = self.authenticate(token);
        // The feed went quiet (this process was starved, or identity is restarting): give it
        // a moment to speak before refusing.
        if matches!(&outcome, Err(status) if status.code() == tonic::Code::Unavailable) {
            let waited = std::time::Instant::now();
            while !self.revoked.current() && waited.elapsed() < STALE_GRACE {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            outcome = self.authenticate(token);
        }
        let unknown = || {
            jsonwebtoken::decode_header(token)
                .ok()
                .and_then(|header| header.kid)
                .is_some_and(|kid| !self.contains(&kid))
        };
        let Some(source) = self.source.get() else {
            return outcome;
        };
        if outcome.is_ok() || !unknown() {
            return outcome;
        }
        let mut fetched = source.fetched.lock().await;
        // Another call may have fetched it while this one waited.
        if unknown() && fetched.is_none_or(|at| at.elapsed() >= REFETCH_EVERY) {
            *fetched = Some(std::time::Instant::now());
            if let Err(status) = self.fetch(source.identity.clone(), Duration::ZERO).await {
                tracing::warn!(code = ?status.code(), "JWKS fetch for an unknown key failed");
            }
        }
        drop(fetched);
        self.authenticate(token)
    }

    /// Fetches identity's JWK Set into these keys now (retrying until it succeeds or
    /// `give_up` passes); `client::jwks_refresher` keeps it fresh.
    pub async fn fetch(
        &self,
        identity: tonic::transport::Channel,
        give_up: Duration,
    ) -> Result<(), Status> {
        use examreg_proto::identity::v1::{
            GetJwksRequest, identity_service_client::IdentityServiceClient,
        };
        let started = std::time::Instant::now();
        let mut client = IdentityServiceClient::new(identity);
        loop {
            match client.get_jwks(GetJwksRequest {}).await {
                Ok(answer) => {
                    let set = KeySet::from_jwks(&answer.into_inner().jwks_json)
                        .map_err(|e| Status::internal(e.to_string()))?;
                    self.merge(set);
                    return Ok(());
                }
                Err(status) if started.elapsed() < give_up => {
                    tracing::warn!(code = ?status.code(), "JWKS not available yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(status) => return Err(status),
            }
        }
    }

    pub fn snapshot(&self) -> KeySet {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn contains(&self, kid: &str) -> bool {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(kid)
    }

    /// The ended sessions these keys refuse the tokens of.
    pub fn revocations(&self) -> &Revocations {
        &self.revoked
    }

    /// Checks a bearer token and returns its caller. An end user's or a phone's token is
    /// refused once its session has ended (UNAUTHENTICATED), and while the list of ended
    /// sessions is not known to be current (UNAVAILABLE: retry, do not log out).
    pub fn authenticate(&self, token: &str) -> Result<Caller, Status> {
        use sha2::Digest as _;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = unix_now();
        let caller = match self.verified.get(&digest, now) {
            Some(caller) => caller,
            None => {
                let claims: Claims = self
                    .set
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .verify(token, ISSUER, AUDIENCE)
                    .map_err(|_| Status::unauthenticated("invalid or expired token"))?;
                let exp = claims.exp;
                let caller = Caller::from_claims(claims)
                    .ok_or_else(|| Status::unauthenticated("invalid token claims"))?;
                self.verified.put(digest, caller.clone(), exp, now);
                caller
            }
        };
        if let Caller::User { session_id, .. } | Caller::Capture { session_id, .. } = &caller {
            self.revoked.check(*session_id)?;
        }
        Ok(caller)
    }
}

/// How long a watched list of ended sessions may go without news from identity (which sends
/// some every second) before end users' tokens are refused as UNAVAILABLE: a revocation could
/// be missing from it.
pub const REVOCATIONS_STALE_AFTER: Duration = Duration::from_secs(10);

/// The sessions that ended while tokens of theirs may be unexpired, each with the time its
/// last token expires. Fed by identity's `WatchRevocations` (see `client::watch_revocations`);
/// checked in memory on every call.
#[derive(Clone, Default, Debug)]
pub struct Revocations(Arc<RwLock<RevocationState>>);

#[derive(Default, Debug)]
struct RevocationState {
    /// Session id → Unix second after which its tokens have all expired.
    ended: std::collections::HashMap<Uuid, i64>,
    /// Set once a feed is attached; until then (a test's keys) nothing is stale.
    watched: bool,
    /// When the feed last said something (news or a heartbeat).
    heard: Option<std::time::Instant>,
}

impl Revocations {
    fn state(&self) -> std::sync::RwLockWriteGuard<'_, RevocationState> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A feed is attached: from now on the list must stay current.
    pub fn watched(&self) {
        self.state().watched = true;
    }

    /// The feed spoke: these sessions ended (none for a heartbeat).
    pub fn heard(&self, ended: impl IntoIterator<Item = (Uuid, i64)>) {
        let now = unix_now();
        let mut state = self.state();
        state.ended.retain(|_, until| *until >= now);
        state
            .ended
            .extend(ended.into_iter().filter(|(_, until)| *until >= now));
        state.heard = Some(std::time::Instant::now());
    }

    /// Whether the feed has spoken within [`REVOCATIONS_STALE_AFTER`].
    pub fn current(&self) -> bool {
        let state = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state
            .heard
            .is_some_and(|at| at.elapsed() <= REVOCATIONS_STALE_AFTER)
    }

    fn check(&self, session: Uuid) -> Result<(), Status> {
        let state = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state
            .ended
            .get(&session)
            .is_some_and(|until| *until >= unix_now())
        {
            // Like any other token that is no good: the gateway answers `unauthenticated`.
            return Err(Status::unauthenticated("the session has ended"));
        }
        let stale = state
            .heard
            .is_none_or(|at| at.elapsed() > REVOCATIONS_STALE_AFTER);
        if state.watched && stale {
            return Err(Status::unavailable(
                "the list of ended sessions is not current",
            ));
        }
        Ok(())
    }
}

impl From<&SigningKey> for Keys {
    fn from(key: &SigningKey) -> Self {
        Self::new(KeySet::from_signing_keys([key]))
    }
}

/// The metadata (HTTP header) naming the person a staff client's call is made for — the
/// support agent, the reviewer, the officer at the desk: 1 to 64 of `A-Z a-z 0-9 . _ @ + -`
/// (a staff login, say). The audit logs record the caller as `client/person`.
pub const ON_BEHALF_OF: &str = "x-examreg-on-behalf-of";

/// Whether a value names a person as [`ON_BEHALF_OF`] wants it.
fn is_person(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
}

/// Names the person a staff client's call is made for.
pub fn on_behalf_of<T>(request: &mut Request<T>, person: &str) -> Result<(), Status> {
    let value = MetadataValue::try_from(person)
        .ok()
        .filter(|_| is_person(person))
        .ok_or_else(on_behalf_of_required)?;
    request.metadata_mut().insert(ON_BEHALF_OF, value);
    Ok(())
}

fn on_behalf_of_required() -> Status {
    crate::errors::status(
        tonic::Code::PermissionDenied,
        "on_behalf_of_required",
        "a staff client names the person each call is made for (x-examreg-on-behalf-of: 1 to 64 \
         of A-Z a-z 0-9 . _ @ + -)",
    )
}

impl Caller {
    /// The caller with the person a service's call is made for (the [`ON_BEHALF_OF`] header):
    /// `client/person`. A staff client without one, or anyone with a malformed one, is
    /// refused (PERMISSION_DENIED `on_behalf_of_required`); the header means nothing to other
    /// callers.
    fn acting_for(self, person: Option<&str>) -> Result<Self, Status> {
        match (self, person) {
            (
                Self::Service {
                    client_id,
                    scopes,
                    staff,
                },
                Some(person),
            ) => {
                if !is_person(person) {
                    return Err(on_behalf_of_required());
                }
                Ok(Self::Service {
                    client_id: format!("{client_id}/{person}"),
                    scopes,
                    staff,
                })
            }
            (Self::Service { staff: true, .. }, None) => Err(on_behalf_of_required()),
            (caller, _) => Ok(caller),
        }
    }
}

/// gRPC paths that need no token: health probes, reflection, and whatever a service names
/// (identity's token endpoints).
fn is_public(path: &str, extra: &[&str]) -> bool {
    path.starts_with("/grpc.health.v1.")
        || path.starts_with("/grpc.reflection.")
        || path == crate::metrics::PATH
        || extra.contains(&path)
}

/// Tower layer that authenticates every gRPC request but the public ones: the caller goes
/// into the request's extensions (read by [`caller`]); a refused call is answered here and
/// never reaches a handler. It runs inside the request's span (`telemetry::SpanLayer`), where
/// it records the account, and inside its count (`metrics::MetricsLayer`).
#[derive(Clone)]
pub struct AuthLayer {
    keys: Keys,
    public: &'static [&'static str],
}

impl AuthLayer {
    pub fn new(keys: Keys, public: &'static [&'static str]) -> Self {
        Self { keys, public }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the routes.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let needs_token = !is_public(request.uri().path(), self.layer.public);
        let token = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|v| v.trim().to_owned());
        let person = request
            .headers()
            .get(ON_BEHALF_OF)
            .map(|v| v.to_str().unwrap_or("\u{fffd}").to_owned());
        let keys = self.layer.keys.clone();
        // The clone is the ready one's twin; swap so the polled-ready service handles the call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            if needs_token {
                let outcome = match token {
                    None => Err(Status::unauthenticated("missing bearer token")),
                    Some(token) => keys.authenticate_fresh(&token).await,
                }
                .and_then(|caller| caller.acting_for(person.as_deref()));
                match outcome {
                    Ok(caller) => {
                        if let Caller::User { account_id, .. } = &caller {
                            tracing::Span::current().record("account_id", account_id.to_string());
                        }
                        request.extensions_mut().insert(caller);
                    }
                    Err(status) => {
                        tracing::info!(code = ?status.code(), "call refused");
                        return Ok(status.into_http());
                    }
                }
            }
            inner.call(request).await
        })
    }
}

/// The bearer token of an incoming request, to act for the same caller in a downstream call
/// (e.g. reading the caller's own account).
pub fn bearer_of<T>(request: &Request<T>) -> Option<&str> {
    request
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Builds an outgoing request carrying `Bearer <token>` and the current trace context.
pub fn with_bearer<T>(message: T, token: &str) -> Result<Request<T>, Status> {
    let mut request = Request::new(message);
    crate::telemetry::inject(request.metadata_mut());
    let value = MetadataValue::try_from(format!("Bearer {token}"))
        .map_err(|_| Status::internal("token is not valid metadata"))?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetched_set_adds_to_the_keys_instead_of_replacing_them() {
        let (old, new) = (SigningKey::generate(), SigningKey::generate());
        let keys = Keys::default();
        keys.merge(KeySet::from_signing_keys([&old]));
        // A replica that already publishes only the new key does not take the old one away.
        keys.merge(KeySet::from_signing_keys([&new]));
        let (account, session) = (Uuid::new_v4(), Uuid::new_v4());
        for key in [&old, &new] {
            let token = key.sign(&Claims::access(account, session, Duration::from_secs(60)));
            assert!(keys.authenticate(&token).is_ok());
        }
    }

    #[test]
    fn a_verified_token_is_remembered_but_never_past_its_session_its_expiry_or_its_key() {
        let (old, new) = (SigningKey::generate(), SigningKey::generate());
        let keys = Keys::default();
        keys.merge(KeySet::from_signing_keys([&old]));
        let (account, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = old.sign(&Claims::access(account, session, Duration::from_secs(60)));
        let caller = keys.authenticate(&token).unwrap();
        assert_eq!(keys.verified.entries().len(), 1);
        // The second call is answered from the cache, with the same caller.
        assert_eq!(keys.authenticate(&token).unwrap(), caller);
        assert_eq!(keys.verified.entries().len(), 1);
        // Forgeries are never kept: a flipped signature byte, another key's token, garbage,
        // an expired token, a token of a key the set does not hold.
        let (body, signature) = token.rsplit_once('.').unwrap();
        let mut flipped = signature.as_bytes().to_vec();
        flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
        let flipped = format!("{body}.{}", String::from_utf8(flipped).unwrap());
        let mut expired = Claims::access(account, session, Duration::from_secs(60));
        expired.exp = unix_now() - 120;
        let stranger = SigningKey::generate();
        for forged in [
            flipped,
            old.sign(&expired),
            stranger.sign(&Claims::access(account, session, Duration::from_secs(60))),
            "not.a.token".to_owned(),
        ] {
            assert_eq!(
                keys.authenticate(&forged).unwrap_err().code(),
                tonic::Code::Unauthenticated
            );
        }
        assert_eq!(keys.verified.entries().len(), 1);
        // An entry is used only until its token expires.
        let digest: [u8; 32] = {
            use sha2::Digest as _;
            sha2::Sha256::digest(token.as_bytes()).into()
        };
        assert!(keys.verified.get(&digest, unix_now()).is_some());
        assert!(keys.verified.get(&digest, unix_now() + 61).is_none());
        // A session that ended is refused although its token is remembered.
        keys.revocations().heard([(session, unix_now() + 60)]);
        assert_eq!(
            keys.authenticate(&token).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        // A key that leaves the set takes its remembered tokens with it.
        let other = Uuid::new_v4();
        let token = old.sign(&Claims::access(account, other, Duration::from_secs(60)));
        assert!(keys.authenticate(&token).is_ok());
        let long_ago = std::time::Instant::now()
            .checked_sub(KEY_KEPT + Duration::from_secs(1))
            .expect("the machine has been up for an hour");
        keys.seen
            .lock()
            .unwrap()
            .insert(old.kid().to_owned(), long_ago);
        keys.merge(KeySet::from_signing_keys([&new]));
        assert!(!keys.contains(old.kid()));
        assert_eq!(
            keys.authenticate(&token).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert!(keys.verified.entries().is_empty());
    }

    #[test]
    fn the_remembered_tokens_stay_bounded() {
        let key = SigningKey::generate();
        let keys = Keys::from(&key);
        let now = unix_now();
        let caller = Caller::User {
            account_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
        };
        for i in 0..VERIFIED_KEPT as u64 + 10 {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&i.to_le_bytes());
            keys.verified.put(digest, caller.clone(), now + 60, now);
            assert!(keys.verified.entries().len() <= VERIFIED_KEPT);
        }
    }

    #[test]
    fn an_ended_session_is_refused_and_an_unheard_feed_refuses_as_unavailable() {
        let key = SigningKey::generate();
        let keys = Keys::from(&key);
        let (account, session, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let token = key.sign(&Claims::access(account, session, Duration::from_secs(60)));
        let capture = key.sign(&Claims::capture(account, session, Duration::from_secs(60)));
        let unrelated = key.sign(&Claims::access(account, other, Duration::from_secs(60)));
        let service = key.sign(&Claims::service("gateway", &[], Duration::from_secs(60)));
        // Keys nobody feeds (a test's) check signatures only.
        assert!(keys.authenticate(&token).is_ok());
        // Once watched, nothing passes until the feed has spoken…
        keys.revocations().watched();
        let code = |t: &str| keys.authenticate(t).map(|_| ()).map_err(|s| s.code());
        assert_eq!(code(&token), Err(tonic::Code::Unavailable));
        // …but services, which have no session, are not held up.
        assert_eq!(code(&service), Ok(()));
        keys.revocations().heard([]);
        assert_eq!(code(&token), Ok(()));
        // The session ends: its access and capture tokens are refused, others are not.
        keys.revocations().heard([(session, unix_now() + 60)]);
        assert_eq!(code(&token), Err(tonic::Code::Unauthenticated));
        assert_eq!(code(&capture), Err(tonic::Code::Unauthenticated));
        assert_eq!(code(&unrelated), Ok(()));
        // A revocation whose tokens have all expired is dropped.
        keys.revocations().heard([(other, unix_now() - 1)]);
        assert_eq!(code(&unrelated), Ok(()));
        assert!(!keys.revocations().state().ended.contains_key(&other));
    }

    #[test]
    fn a_capture_token_takes_photos_of_its_account_and_nothing_else() {
        let key = SigningKey::generate();
        let keys = Keys::from(&key);
        let (account, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = key.sign(&Claims::capture(account, session, Duration::from_secs(60)));
        let caller = keys.authenticate(&token).unwrap();
        assert_eq!(
            caller,
            Caller::Capture {
                account_id: account,
                session_id: session
            }
        );
        assert_eq!(caller.capturing_account().unwrap(), account);
        assert_eq!(caller.account_for_capture("x:read", "").unwrap(), account);
        for refused in [
            caller.account_for("x:read", ""),
            caller.require_user().map(|(a, _)| a),
            caller.require_scope("x:read").map(|_| account),
        ] {
            assert_eq!(refused.unwrap_err().code(), tonic::Code::PermissionDenied);
        }
        // An access token of the same account is not a capture token, and a service's scope
        // still names other accounts.
        let access = key.sign(&Claims::access(account, session, Duration::from_secs(60)));
        assert!(matches!(
            keys.authenticate(&access).unwrap(),
            Caller::User { .. }
        ));
        let other = Uuid::new_v4();
        let service = Caller::Service {
            client_id: "ops".into(),
            scopes: vec!["x:read".into()],
            staff: false,
        };
        assert_eq!(
            service
                .account_for_capture("x:read", &other.to_string())
                .unwrap(),
            other
        );
        assert!(service.capturing_account().is_err());
    }
}
