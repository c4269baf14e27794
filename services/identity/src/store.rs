//! Data access: small functions over a pool or a transaction, one statement each, checked at
//! compile time against the migrations (offline data in `.sqlx/`).

use chrono::{DateTime, Utc};
use examreg_domain::{AccountStatus, LoginKind, RegistrationEventKind, SupportAction};
use examreg_kit::auth::ChangeAction;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;
use uuid::Uuid;

/// Which unique constraint an insert hit.
#[derive(Debug, PartialEq, Eq)]
pub enum Conflict {
    /// Another account holds the login or the email.
    Taken,
    Proof,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

// Uniqueness is decided without raising an error (`ON CONFLICT DO NOTHING`, then asking which
// key was taken): a unique violation makes Postgres log its DETAIL, `Key (login)=(<IIN>)`, in
// the server log, and personal data stays out of every log, the stores' included.

pub struct NewAccount<'a> {
    pub id: Uuid,
    pub citizenship: &'a str,
    pub login: &'a str,
    pub login_kind: LoginKind,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub terms_version: &'a str,
    pub terms_accepted_at: DateTime<Utc>,
    pub terms_client_ip: &'a str,
    pub terms_user_agent: &'a str,
    pub terms_sha256: &'a str,
    pub terms_language: &'a str,
}

#[derive(Debug, Clone)]
pub struct AccountRow {
    pub id: Uuid,
    pub citizenship: String,
    pub login: String,
    pub login_kind: LoginKind,
    pub email: String,
    pub password_hash: String,
    pub status: AccountStatus,
    pub created_at: DateTime<Utc>,
    pub registered_at: Option<DateTime<Utc>>,
}

/// Spends a proof (once) for the account `account` about to be made with it.
#[tracing::instrument(skip_all)]
pub async fn consume_proof(
    conn: &mut PgConnection,
    jti: Uuid,
    expires_at: DateTime<Utc>,
    account: Option<Uuid>,
) -> Result<(), StoreError> {
    let consumed = sqlx::query_scalar!(
        r#"INSERT INTO consumed_proofs (jti, expires_at, account_id) VALUES ($1, $2, $3)
           ON CONFLICT (jti) DO NOTHING RETURNING jti"#,
        jti,
        expires_at,
        account
    )
    .fetch_optional(conn)
    .await?;
    match consumed {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict(Conflict::Proof)),
    }
}

/// The account the registration proof `jti` made, if it made one with this login and email.
#[tracing::instrument(skip_all)]
pub async fn account_made_with_proof(
    pool: &PgPool,
    jti: Uuid,
    login: &str,
    email: &str,
) -> Result<Option<AccountRow>, StoreError> {
    Ok(sqlx::query_as!(
        AccountRow,
        r#"SELECT a.id, a.citizenship, a.login, a.login_kind AS "login_kind: LoginKind", a.email,
                  a.password_hash, a.status AS "status: AccountStatus", a.created_at,
                  a.registered_at
           FROM consumed_proofs p JOIN accounts a ON a.id = p.account_id
           WHERE p.jti = $1 AND a.login = $2 AND a.email = $3"#,
        jti,
        login,
        email
    )
    .fetch_optional(pool)
    .await?)
}

/// Inserts the account, or says that another account holds its login or its email (not
/// which: nobody is told that).
#[tracing::instrument(skip_all)]
pub async fn insert_account(conn: &mut PgConnection, a: &NewAccount<'_>) -> Result<(), StoreError> {
    // Twice at most: a conflicting account deleted between the insert and the question is
    // gone, and the second insert decides.
    for _ in 0..2 {
        if try_insert_account(conn, a).await? {
            return Ok(());
        }
        let taken = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM accounts WHERE login = $1 OR email = $2) AS "taken!""#,
            a.login,
            a.email,
        )
        .fetch_one(&mut *conn)
        .await?;
        if taken {
            return Err(StoreError::Conflict(Conflict::Taken));
        }
    }
    Err(StoreError::Db(sqlx::Error::Protocol(
        "an account insert kept conflicting with no account holding its login or email".into(),
    )))
}

async fn try_insert_account(
    conn: &mut PgConnection,
    a: &NewAccount<'_>,
) -> Result<bool, StoreError> {
    let inserted = sqlx::query_scalar!(
        r#"INSERT INTO accounts (id, citizenship, login, login_kind, email, password_hash,
                                 terms_version, terms_accepted_at, terms_client_ip, terms_user_agent,
                                 terms_sha256, terms_language)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           ON CONFLICT DO NOTHING RETURNING id"#,
        a.id,
        a.citizenship,
        a.login,
        a.login_kind as LoginKind,
        a.email,
        a.password_hash,
        a.terms_version,
        a.terms_accepted_at,
        a.terms_client_ip,
        a.terms_user_agent,
        a.terms_sha256,
        a.terms_language,
    )
    .fetch_optional(conn)
    .await?;
    Ok(inserted.is_some())
}

#[tracing::instrument(skip_all)]
pub async fn account_by_login(
    pool: &PgPool,
    login: &str,
) -> Result<Option<AccountRow>, StoreError> {
    Ok(sqlx::query_as!(
        AccountRow,
        r#"SELECT id, citizenship, login, login_kind AS "login_kind: LoginKind", email, password_hash,
                  status AS "status: AccountStatus", created_at, registered_at
           FROM accounts WHERE login = $1"#,
        login
    )
    .fetch_optional(pool)
    .await?)
}

#[tracing::instrument(skip_all)]
pub async fn account_by_email(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<AccountRow>, StoreError> {
    Ok(sqlx::query_as!(
        AccountRow,
        r#"SELECT id, citizenship, login, login_kind AS "login_kind: LoginKind", email, password_hash,
                  status AS "status: AccountStatus", created_at, registered_at
           FROM accounts WHERE email = $1"#,
        email
    )
    .fetch_optional(conn)
    .await?)
}

#[tracing::instrument(skip_all)]
pub async fn account_by_id(pool: &PgPool, id: Uuid) -> Result<Option<AccountRow>, StoreError> {
    Ok(sqlx::query_as!(
        AccountRow,
        r#"SELECT id, citizenship, login, login_kind AS "login_kind: LoginKind", email, password_hash,
                  status AS "status: AccountStatus", created_at, registered_at
           FROM accounts WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?)
}

/// What completing a registration found.
#[derive(Debug, PartialEq, Eq)]
pub enum Completion {
    /// Completed now (the feed has the event) or before, at this time.
    Done(DateTime<Utc>),
    /// No such account, or it is blocked.
    Refused,
    /// A change of the registration is still being carried out.
    ChangePending,
}

/// Marks an active account registered; the first completion writes the feed's event, a repeat
/// answers the time of the first. An account with a change not carried out yet (a reopening
/// whose owners have not lifted their seal) is not completed: the steps it reopens would be
/// skipped.
#[tracing::instrument(skip_all)]
pub async fn complete_registration(pool: &PgPool, id: Uuid) -> Result<Completion, StoreError> {
    let mut tx = pool.begin().await?;
    match lock_status(&mut tx, id).await? {
        None | Some(AccountStatus::Blocked) => Ok(Completion::Refused),
        Some(AccountStatus::Registered) => {
            let at = sqlx::query_scalar!("SELECT registered_at FROM accounts WHERE id = $1", id)
                .fetch_one(&mut *tx)
                .await?;
            Ok(at.map_or(Completion::Refused, Completion::Done))
        }
        Some(AccountStatus::Active) => {
            // A statement after the lock: it sees every change committed before the lock.
            let pending = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM changes
                                  WHERE account_id = $1 AND finished_at IS NULL) AS "pending!""#,
                id
            )
            .fetch_one(&mut *tx)
            .await?;
            if pending {
                return Ok(Completion::ChangePending);
            }
            let at = sqlx::query_scalar!(
                r#"UPDATE accounts SET status = 'registered', registered_at = now()
                   WHERE id = $1 RETURNING registered_at AS "registered_at!""#,
                id
            )
            .fetch_one(&mut *tx)
            .await?;
            append_event(&mut tx, id, RegistrationEventKind::RegistrationCompleted).await?;
            tx.commit().await?;
            Ok(Completion::Done(at))
        }
    }
}

/// Who does a support action, and why: what the operator log records.
pub struct Acting<'a> {
    pub actor: &'a str,
    pub reason: &'a str,
}

/// The status of an account, locked until the transaction ends; `None` when there is none.
async fn lock_status(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<AccountStatus>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"SELECT status AS "status: AccountStatus" FROM accounts WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// What a recorded change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Steps to redo, at biometrics and profile.
    Reopen,
    /// The person's data erased at every service, then the account deleted.
    Erase,
    /// A squatter's data erased at every other service; the account stays, blocked.
    Release,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reopen => "reopen",
            Self::Erase => "erase",
            Self::Release => "release",
        }
    }

    /// What the owners are asked to do.
    pub fn at_owners(self) -> ChangeAction {
        match self {
            Self::Reopen => ChangeAction::Reopen,
            Self::Erase | Self::Release => ChangeAction::Erase,
        }
    }
}

/// A change of a registration identity recorded for other services to carry out.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: Uuid,
    pub account: Uuid,
    pub action: Action,
    pub steps: Vec<String>,
    pub actor: String,
}

/// Records a change in its transaction (after the audit log's entry and the feed's event).
async fn record_change(
    conn: &mut PgConnection,
    account: Uuid,
    action: Action,
    steps: &[&str],
    actor: &str,
) -> Result<Pending, StoreError> {
    let id = Uuid::new_v4();
    let steps: Vec<String> = steps.iter().map(|s| (*s).to_owned()).collect();
    sqlx::query!(
        "INSERT INTO changes (id, account_id, action, steps, actor) VALUES ($1, $2, $3, $4, $5)",
        id,
        account,
        action.as_str(),
        &steps,
        actor
    )
    .execute(conn)
    .await?;
    Ok(Pending {
        id,
        account,
        action,
        steps,
        actor: actor.to_owned(),
    })
}

/// The changes not finished yet: an account's, or (with `None`) every account's recorded
/// before `older_than` ago, oldest first, at most `limit`.
pub async fn unfinished_changes(
    pool: &PgPool,
    account: Option<Uuid>,
    older_than: Duration,
    limit: i64,
) -> Result<Vec<Pending>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT id, account_id, action, steps, actor FROM changes
           WHERE finished_at IS NULL AND ($1::uuid IS NULL OR account_id = $1)
             AND created_at <= now() - make_interval(secs => $2)
           ORDER BY created_at LIMIT $3"#,
        account,
        older_than.as_secs_f64(),
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Pending {
            id: r.id,
            account: r.account_id,
            action: match r.action.as_str() {
                "erase" => Action::Erase,
                "release" => Action::Release,
                _ => Action::Reopen,
            },
            steps: r.steps,
            actor: r.actor,
        })
        .collect())
}

/// Marks a change carried out.
pub async fn finish_change(pool: &PgPool, id: Uuid) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE changes SET finished_at = now() WHERE id = $1 AND finished_at IS NULL",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records the erasure of an account: its live sessions end (as [`revoke_all_sessions`] ends
/// them), it is blocked so nothing more is written for it, and the audit log's entry, the
/// feed's event and the change are written, all in one transaction; `None` when there is no
/// such account. The account's row goes when the owners have erased theirs
/// ([`finish_erasure`]).
#[tracing::instrument(skip_all)]
pub async fn record_erasure(
    pool: &PgPool,
    id: Uuid,
    acting: &Acting<'_>,
    keep: Duration,
) -> Result<Option<Pending>, StoreError> {
    let mut tx = pool.begin().await?;
    let change = record_erasure_in(&mut tx, id, acting, keep).await?;
    tx.commit().await?;
    Ok(change)
}

/// [`record_erasure`] in the caller's transaction (the retention's, with its evidence).
pub async fn record_erasure_in(
    tx: &mut PgConnection,
    id: Uuid,
    acting: &Acting<'_>,
    keep: Duration,
) -> Result<Option<Pending>, StoreError> {
    if lock_status(&mut *tx, id).await?.is_none() {
        return Ok(None);
    }
    revoke_all_sessions(&mut *tx, id, "erased", keep).await?;
    sqlx::query!("UPDATE accounts SET status = 'blocked' WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    log_action(
        &mut *tx,
        id,
        acting.actor,
        SupportAction::Erase,
        acting.reason,
        "",
    )
    .await?;
    let change = record_change(&mut *tx, id, Action::Erase, &[], acting.actor).await?;
    append_event(&mut *tx, id, RegistrationEventKind::AccountErased).await?;
    Ok(Some(change))
}

/// Deletes the account of a recorded erasure (its sessions and refresh tokens go with it, and
/// the failed logins counted under its login, keyed by `throttle_key`) and marks the change
/// carried out, in one transaction.
#[tracing::instrument(skip_all)]
pub async fn finish_erasure(
    pool: &PgPool,
    change: &Pending,
    throttle_key: fn(&str) -> String,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let logins = sqlx::query!(
        "DELETE FROM accounts WHERE id = $1 RETURNING login, released_login",
        change.account
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(logins) = logins {
        let keys: Vec<String> = std::iter::once(logins.login)
            .chain(logins.released_login)
            .map(|login| throttle_key(&login))
            .collect();
        sqlx::query!("DELETE FROM login_throttle WHERE key = ANY($1)", &keys)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query!(
        "UPDATE changes SET finished_at = now() WHERE id = $1 AND finished_at IS NULL",
        change.id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Blocks an account and ends its live sessions in one transaction, with the operator log's
/// entry and (when it was not blocked yet) the feed's event: how many sessions ended, `None`
/// when there is no such account.
#[tracing::instrument(skip_all)]
pub async fn block_account(
    pool: &PgPool,
    id: Uuid,
    acting: &Acting<'_>,
    keep: Duration,
) -> Result<Option<u64>, StoreError> {
    let mut tx = pool.begin().await?;
    let Some(status) = lock_status(&mut tx, id).await? else {
        return Ok(None);
    };
    let ended = block_locked(&mut tx, id, status, keep).await?;
    log_action(
        &mut tx,
        id,
        acting.actor,
        SupportAction::Block,
        acting.reason,
        "",
    )
    .await?;
    if status != AccountStatus::Blocked {
        append_event(&mut tx, id, RegistrationEventKind::AccountBlocked).await?;
    }
    tx.commit().await?;
    Ok(Some(ended))
}

/// Blocks a locked account and ends its sessions; how many ended.
async fn block_locked(
    conn: &mut PgConnection,
    id: Uuid,
    status: AccountStatus,
    keep: Duration,
) -> Result<u64, StoreError> {
    if status != AccountStatus::Blocked {
        sqlx::query!("UPDATE accounts SET status = 'blocked' WHERE id = $1", id)
            .execute(&mut *conn)
            .await?;
    }
    revoke_all_sessions(conn, id, "blocked", keep).await
}

/// What lifting a block found.
#[derive(Debug, PartialEq, Eq)]
pub enum Unblock {
    Done,
    NotFound,
    /// The account's identifier was released: it stays blocked.
    Released,
}

/// Lifts a block: active again, or registered when the registration was complete; logged, and
/// told to the feed when the account was blocked.
#[tracing::instrument(skip_all)]
pub async fn unblock_account(
    pool: &PgPool,
    id: Uuid,
    acting: &Acting<'_>,
) -> Result<Unblock, StoreError> {
    let mut tx = pool.begin().await?;
    let Some(status) = lock_status(&mut tx, id).await? else {
        return Ok(Unblock::NotFound);
    };
    let released = sqlx::query_scalar!(
        r#"SELECT released_login IS NOT NULL AS "released!" FROM accounts WHERE id = $1"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if released {
        return Ok(Unblock::Released);
    }
    log_action(
        &mut tx,
        id,
        acting.actor,
        SupportAction::Unblock,
        acting.reason,
        "",
    )
    .await?;
    if status == AccountStatus::Blocked {
        sqlx::query!(
            r#"UPDATE accounts
               SET status = CASE WHEN registered_at IS NULL THEN 'active' ELSE 'registered' END
               WHERE id = $1"#,
            id
        )
        .execute(&mut *tx)
        .await?;
        append_event(&mut tx, id, RegistrationEventKind::AccountUnblocked).await?;
    }
    tx.commit().await?;
    Ok(Unblock::Done)
}

/// Forgets the failed logins of an account's login (its lockout with them), logged: whether it
/// was locked, `None` when there is no such account.
#[tracing::instrument(skip_all)]
pub async fn unlock_login(
    pool: &PgPool,
    id: Uuid,
    acting: &Acting<'_>,
    key_of: impl FnOnce(&str) -> String,
) -> Result<Option<bool>, StoreError> {
    let mut tx = pool.begin().await?;
    let login = sqlx::query_scalar!("SELECT login FROM accounts WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(login) = login else {
        return Ok(None);
    };
    let was_locked = sqlx::query_scalar!(
        r#"DELETE FROM login_throttle WHERE key = $1
           RETURNING locked_until IS NOT NULL AND locked_until > now() AS "locked!""#,
        key_of(&login)
    )
    .fetch_optional(&mut *tx)
    .await?
    .unwrap_or(false);
    log_action(
        &mut tx,
        id,
        acting.actor,
        SupportAction::UnlockLogin,
        acting.reason,
        "",
    )
    .await?;
    tx.commit().await?;
    Ok(Some(was_locked))
}

/// Releases an account's login for its real holder: blocks the account (its sessions end),
/// keeps the login in `released_login` and puts in its place a value no login can match, and
/// forgets the login's failures, so the holder starts clean; logged and told to the feed, with
/// the change that has the other services erase the squatter's data. How many sessions ended
/// and that change, `None` when there is no such account. A second release changes nothing
/// but the log.
#[tracing::instrument(skip_all)]
pub async fn release_login(
    pool: &PgPool,
    id: Uuid,
    acting: &Acting<'_>,
    keep: Duration,
    key_of: impl FnOnce(&str) -> String,
) -> Result<Option<(u64, Option<Pending>)>, StoreError> {
    let mut tx = pool.begin().await?;
    let Some(status) = lock_status(&mut tx, id).await? else {
        return Ok(None);
    };
    let ended = block_locked(&mut tx, id, status, keep).await?;
    // The placeholder has a colon: no IIN or passport number has one.
    let released = sqlx::query!(
        r#"UPDATE accounts SET released_login = login, login = 'released:' || id::text
           WHERE id = $1 AND released_login IS NULL
           RETURNING released_login AS "login!", login_kind"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let what = released.as_ref().map_or("", |r| r.login_kind.as_str());
    log_action(
        &mut tx,
        id,
        acting.actor,
        SupportAction::ReleaseIdentifier,
        acting.reason,
        what,
    )
    .await?;
    let mut change = None;
    if let Some(released) = &released {
        sqlx::query!(
            "DELETE FROM login_throttle WHERE key = $1",
            key_of(&released.login)
        )
        .execute(&mut *tx)
        .await?;
        change = Some(record_change(&mut tx, id, Action::Release, &[], acting.actor).await?);
        append_event(&mut tx, id, RegistrationEventKind::IdentifierReleased).await?;
    }
    tx.commit().await?;
    Ok(Some((ended, change)))
}

#[tracing::instrument(skip_all)]
pub async fn set_password_hash(
    conn: &mut PgConnection,
    id: Uuid,
    hash: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE accounts SET password_hash = $2, password_changed_at = now() WHERE id = $1",
        id,
        hash
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces a hash only if it is still the one that was verified (a password change in between
/// wins over a rehash).
#[tracing::instrument(skip_all)]
pub async fn rehash_password(
    pool: &PgPool,
    id: Uuid,
    old: &str,
    new: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE accounts SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
        id,
        old,
        new
    )
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn insert_session(
    conn: &mut PgConnection,
    id: Uuid,
    account: Uuid,
    ip: &str,
    agent: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO sessions (id, account_id, client_ip, user_agent) VALUES ($1, $2, $3, $4)",
        id,
        account,
        ip,
        agent
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn insert_refresh(
    conn: &mut PgConnection,
    hash: &[u8],
    session: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)",
        hash,
        session,
        expires_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What spending a refresh token found.
#[derive(Debug, PartialEq, Eq)]
pub enum Spend {
    /// Spent now, or spent moments ago and presented again within the grace (two requests
    /// that found the access token expired together, an answer lost on a flaky network): the
    /// session is live (begun at `began`) and gets a fresh pair either way.
    Spent {
        session: Uuid,
        account: Uuid,
        began: DateTime<Utc>,
    },
    /// Spent before the grace: a replay, the family must die.
    Reused { session: Uuid },
    /// Unknown, expired, or its session was revoked.
    Invalid,
}

/// Marks a refresh token spent, atomically: of two concurrent uses exactly one spends it (the
/// other waits for the first to commit, then finds it spent). A token spent less than
/// `grace` ago counts as spent now (zero turns the grace off). A session older than
/// `lifetime`, or of a blocked account, refreshes no more.
#[tracing::instrument(skip_all)]
pub async fn spend_refresh(
    conn: &mut PgConnection,
    hash: &[u8],
    lifetime: Duration,
    grace: Duration,
) -> Result<Spend, StoreError> {
    let spent = sqlx::query!(
        r#"UPDATE refresh_tokens r SET spent_at = now()
           FROM sessions s, accounts a
           WHERE r.token_hash = $1 AND r.spent_at IS NULL AND r.expires_at > now()
             AND s.id = r.session_id AND s.revoked_at IS NULL
             AND s.created_at > now() - make_interval(secs => $2)
             AND a.id = s.account_id AND a.status <> 'blocked'
           RETURNING r.session_id, s.account_id, s.created_at"#,
        hash,
        lifetime.as_secs_f64()
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = spent {
        return Ok(Spend::Spent {
            session: row.session_id,
            account: row.account_id,
            began: row.created_at,
        });
    }
    // How long ago it was spent by the clock (`clock_timestamp()`): `now()` is when this
    // transaction began, maybe before it waited on the spending one's row lock.
    let known = sqlx::query!(
        r#"SELECT r.session_id, r.spent_at, s.account_id, s.created_at,
                  COALESCE($3::float8 > 0
                   AND r.spent_at > clock_timestamp() - make_interval(secs => $3)
                   AND r.expires_at > now() AND s.revoked_at IS NULL
                   AND s.created_at > now() - make_interval(secs => $2)
                   AND a.status <> 'blocked', false) AS "in_grace!"
           FROM refresh_tokens r
           JOIN sessions s ON s.id = r.session_id
           JOIN accounts a ON a.id = s.account_id
           WHERE r.token_hash = $1"#,
        hash,
        lifetime.as_secs_f64(),
        grace.as_secs_f64()
    )
    .fetch_optional(conn)
    .await?;
    Ok(match known {
        Some(row) if row.in_grace => Spend::Spent {
            session: row.session_id,
            account: row.account_id,
            began: row.created_at,
        },
        Some(row) if row.spent_at.is_some() => Spend::Reused {
            session: row.session_id,
        },
        Some(_) | None => Spend::Invalid,
    })
}

/// Whether a session exists and was not revoked (logged out, password reset, erased).
#[tracing::instrument(skip_all)]
pub async fn session_is_live(pool: &PgPool, session: Uuid) -> Result<bool, StoreError> {
    let live = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND revoked_at IS NULL) AS "live!""#,
        session
    )
    .fetch_one(pool)
    .await?;
    Ok(live)
}

/// Ends a session; its tokens are refused for `keep` (the longest a token of it may live).
#[tracing::instrument(skip_all)]
pub async fn revoke_session(
    conn: &mut PgConnection,
    session: Uuid,
    reason: &str,
    keep: Duration,
) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        r#"WITH ended AS (
               UPDATE sessions SET revoked_at = now(), revoked_reason = $2
               WHERE id = $1 AND revoked_at IS NULL RETURNING id)
           INSERT INTO session_revocations (session_id, until)
           SELECT id, clock_timestamp() + make_interval(secs => $3) FROM ended
           ON CONFLICT (session_id) DO UPDATE SET until = EXCLUDED.until"#,
        session,
        reason,
        keep.as_secs_f64()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every live session of an account, as [`revoke_session`] does one.
#[tracing::instrument(skip_all)]
pub async fn revoke_all_sessions(
    conn: &mut PgConnection,
    account: Uuid,
    reason: &str,
    keep: Duration,
) -> Result<u64, StoreError> {
    let done = sqlx::query!(
        r#"WITH ended AS (
               UPDATE sessions SET revoked_at = now(), revoked_reason = $2
               WHERE account_id = $1 AND revoked_at IS NULL RETURNING id)
           INSERT INTO session_revocations (session_id, until)
           SELECT id, clock_timestamp() + make_interval(secs => $3) FROM ended
           ON CONFLICT (session_id) DO UPDATE SET until = EXCLUDED.until"#,
        account,
        reason,
        keep.as_secs_f64()
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The sessions whose tokens are still refused, each with when that ends.
#[tracing::instrument(skip_all)]
pub async fn live_revocations(pool: &PgPool) -> Result<Vec<(Uuid, i64)>, StoreError> {
    let rows = sqlx::query!(
        r#"SELECT session_id, ceil(extract(epoch FROM until))::bigint AS "until!"
           FROM session_revocations WHERE until > now()"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.session_id, r.until)).collect())
}

/// Takes one slot of a failure budget before a password is checked, so that parallel guesses
/// cannot exceed it. `None` when the key is locked or its budget is taken by attempts in flight;
/// then `locked_for` says how long to wait.
#[tracing::instrument(skip_all)]
pub async fn throttle_reserve(
    pool: &PgPool,
    key: &str,
    budget: i32,
    window_secs: f64,
) -> Result<Option<i32>, StoreError> {
    let row = sqlx::query!(
        r#"INSERT INTO login_throttle AS t (key, failures, window_started_at) VALUES ($1, 1, now())
           ON CONFLICT (key) DO UPDATE SET
             failures = CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                               OR t.locked_until <= now() THEN 1 ELSE t.failures + 1 END,
             window_started_at = CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                               OR t.locked_until <= now() THEN now() ELSE t.window_started_at END,
             locked_until = CASE WHEN t.locked_until <= now() THEN NULL ELSE t.locked_until END
           WHERE (t.locked_until IS NULL OR t.locked_until <= now())
             AND (t.failures < $2 OR t.window_started_at < now() - make_interval(secs => $3)
                  OR t.locked_until <= now())
           RETURNING failures"#,
        key,
        budget,
        window_secs
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.failures))
}

/// Seconds until a locked key opens (0 when not locked).
#[tracing::instrument(skip_all)]
pub async fn throttle_locked_for(pool: &PgPool, key: &str) -> Result<f64, StoreError> {
    let row = sqlx::query!(
        r#"SELECT GREATEST(EXTRACT(EPOCH FROM (locked_until - now())), 0)::float8 AS "secs!"
           FROM login_throttle WHERE key = $1 AND locked_until IS NOT NULL"#,
        key
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map_or(0.0, |r| r.secs))
}

/// After a failed attempt: locks the key when its budget is used up, for a delay that doubles
/// with each lockout (base × 2^lockouts, capped). Returns the lock's length in seconds.
#[tracing::instrument(skip_all)]
pub async fn throttle_fail(
    pool: &PgPool,
    key: &str,
    budget: i32,
    base_secs: f64,
    max_secs: f64,
) -> Result<Option<f64>, StoreError> {
    let row = sqlx::query!(
        r#"UPDATE login_throttle
           SET locked_until = now() + make_interval(secs => LEAST($3 * power(2, lockouts), $4)),
               lockouts = lockouts + 1
           WHERE key = $1 AND failures >= $2 AND locked_until IS NULL
           RETURNING LEAST($3 * power(2, lockouts - 1), $4)::float8 AS "secs!""#,
        key,
        budget,
        base_secs,
        max_secs
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.secs))
}

/// After a successful attempt: the reserved slot was no failure. `forget` clears the key's
/// history (a login identifier whose owner just proved the password).
#[tracing::instrument(skip_all)]
pub async fn throttle_succeed(pool: &PgPool, key: &str, forget: bool) -> Result<(), StoreError> {
    sqlx::query!(
        r#"UPDATE login_throttle
           SET failures = CASE WHEN $2 THEN 0 ELSE GREATEST(failures - 1, 0) END,
               lockouts = CASE WHEN $2 THEN 0 ELSE lockouts END
           WHERE key = $1"#,
        key,
        forget
    )
    .execute(pool)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn throttle_clear(conn: &mut PgConnection, key: &str) -> Result<(), StoreError> {
    sqlx::query!("DELETE FROM login_throttle WHERE key = $1", key)
        .execute(conn)
        .await?;
    Ok(())
}

/// What the sweeper removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub proofs: u64,
    pub refresh_tokens: u64,
    pub throttles: u64,
}

/// Deletes what can no longer matter: proofs past their expiry (they cannot be replayed
/// anyway), refresh tokens expired or spent a day ago (reuse detection needs spent tokens for
/// a while), and throttle rows whose window and lock have both passed.
#[tracing::instrument(skip_all)]
pub async fn sweep(pool: &PgPool, window_secs: f64) -> Result<Swept, StoreError> {
    sqlx::query!("DELETE FROM session_revocations WHERE until < now()")
        .execute(pool)
        .await?;
    let proofs = sqlx::query!("DELETE FROM consumed_proofs WHERE expires_at < now()")
        .execute(pool)
        .await?
        .rows_affected();
    let refresh_tokens = sqlx::query!(
        "DELETE FROM refresh_tokens WHERE expires_at < now() OR spent_at < now() - interval '1 day'"
    )
    .execute(pool)
    .await?
    .rows_affected();
    let throttles = sqlx::query!(
        r#"DELETE FROM login_throttle
           WHERE window_started_at < now() - make_interval(secs => $1)
             AND (locked_until IS NULL OR locked_until < now())"#,
        window_secs
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(Swept {
        proofs,
        refresh_tokens,
        throttles,
    })
}

// ---- The system of record: accounts as services read them, the access and operator logs,
// and the change feed.

/// An account as the record shows it to services and to its holder (no password hash).
#[derive(Debug, Clone)]
pub struct Record {
    pub id: Uuid,
    pub citizenship: String,
    pub login: String,
    pub login_kind: LoginKind,
    pub email: String,
    pub status: AccountStatus,
    pub created_at: DateTime<Utc>,
    pub registered_at: Option<DateTime<Utc>>,
    pub terms_version: String,
    pub terms_accepted_at: DateTime<Utc>,
    pub terms_client_ip: String,
    pub terms_user_agent: String,
    /// Unknown for an account made before the texts' hashes were kept.
    pub terms_sha256: Option<String>,
    pub terms_language: Option<String>,
    /// The login was released for its real holder; `login` is what the account held.
    pub released: bool,
}

#[tracing::instrument(skip_all)]
pub async fn record_by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<Record>, StoreError> {
    Ok(sqlx::query_as!(
        Record,
        r#"SELECT id, citizenship, COALESCE(released_login, login) AS "login!",
                  login_kind AS "login_kind: LoginKind", email,
                  status AS "status: AccountStatus", created_at, registered_at, terms_version,
                  terms_accepted_at, terms_client_ip, terms_user_agent, terms_sha256,
                  terms_language, released_login IS NOT NULL AS "released!"
           FROM accounts WHERE id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?)
}

/// The account with this login of this kind (an IIN is never found as a passport number).
#[tracing::instrument(skip_all)]
pub async fn record_by_login(
    conn: &mut PgConnection,
    login: &str,
    kind: LoginKind,
) -> Result<Option<Record>, StoreError> {
    Ok(sqlx::query_as!(
        Record,
        r#"SELECT id, citizenship, COALESCE(released_login, login) AS "login!",
                  login_kind AS "login_kind: LoginKind", email,
                  status AS "status: AccountStatus", created_at, registered_at, terms_version,
                  terms_accepted_at, terms_client_ip, terms_user_agent, terms_sha256,
                  terms_language, released_login IS NOT NULL AS "released!"
           FROM accounts WHERE login = $1 AND login_kind = $2"#,
        login,
        kind as LoginKind
    )
    .fetch_optional(conn)
    .await?)
}

#[tracing::instrument(skip_all)]
pub async fn record_by_email(
    conn: &mut PgConnection,
    email: &str,
) -> Result<Option<Record>, StoreError> {
    Ok(sqlx::query_as!(
        Record,
        r#"SELECT id, citizenship, COALESCE(released_login, login) AS "login!",
                  login_kind AS "login_kind: LoginKind", email,
                  status AS "status: AccountStatus", created_at, registered_at, terms_version,
                  terms_accepted_at, terms_client_ip, terms_user_agent, terms_sha256,
                  terms_language, released_login IS NOT NULL AS "released!"
           FROM accounts WHERE email = $1"#,
        email
    )
    .fetch_optional(conn)
    .await?)
}

/// What `ListAccounts` filters by; `None` lets everything through.
pub struct Filter<'a> {
    pub statuses: &'a [AccountStatus],
    pub registered_from: Option<DateTime<Utc>>,
    pub registered_before: Option<DateTime<Utc>>,
}

/// Up to `limit` accounts after `after` (an account id) in id order, which is creation order
/// (UUIDv7): an account created while a client pages has a larger id than every one before it.
#[tracing::instrument(skip_all)]
pub async fn list_records(
    conn: &mut PgConnection,
    filter: &Filter<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Record>, StoreError> {
    let statuses: Vec<String> = filter
        .statuses
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    Ok(sqlx::query_as!(
        Record,
        r#"SELECT id, citizenship, COALESCE(released_login, login) AS "login!",
                  login_kind AS "login_kind: LoginKind", email,
                  status AS "status: AccountStatus", created_at, registered_at, terms_version,
                  terms_accepted_at, terms_client_ip, terms_user_agent, terms_sha256,
                  terms_language, released_login IS NOT NULL AS "released!"
           FROM accounts
           WHERE id > COALESCE($1, '00000000-0000-0000-0000-000000000000'::uuid)
             AND (cardinality($2::text[]) = 0 OR status = ANY($2))
             AND ($3::timestamptz IS NULL OR registered_at >= $3)
             AND ($4::timestamptz IS NULL OR registered_at < $4)
           ORDER BY id LIMIT $5"#,
        after,
        &statuses,
        filter.registered_from,
        filter.registered_before,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Records in the audit log that `actor` read `what` of these accounts for `purpose`.
#[tracing::instrument(skip_all)]
pub async fn log_reads(
    conn: &mut PgConnection,
    accounts: &[Uuid],
    actor: &str,
    what: &str,
    purpose: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO audit_log (account_id, actor, kind, what, note)
           SELECT id, $2, 'read', $3, $4 FROM unnest($1::uuid[]) AS id"#,
        accounts,
        actor,
        what,
        purpose
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a lookup by what identifies a person (an IIN, a passport number, an email), found
/// (`account`) or not: `subject` is the SHA-256 of the normalized value, so the officer can ask
/// who looked up a given identifier, and a lookup that found nobody names nobody.
#[tracing::instrument(skip_all)]
pub async fn log_lookup(
    conn: &mut PgConnection,
    account: Option<Uuid>,
    actor: &str,
    what: &str,
    purpose: &str,
    subject: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO audit_log (account_id, actor, kind, what, note, subject)
           VALUES ($1, $2, 'read', $3, $4, $5)"#,
        account,
        actor,
        what,
        purpose,
        subject
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a support action on an account in the audit log.
#[tracing::instrument(skip_all)]
pub async fn log_action(
    conn: &mut PgConnection,
    account: Uuid,
    actor: &str,
    action: SupportAction,
    reason: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO audit_log (account_id, actor, kind, what, note)
           VALUES ($1, $2, $3, $4, $5)"#,
        account,
        actor,
        action.as_str(),
        detail,
        reason
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct AuditRow {
    pub id: i64,
    pub account_id: Option<Uuid>,
    pub actor: String,
    pub kind: String,
    pub what: String,
    pub note: String,
    pub at: DateTime<Utc>,
}

/// Up to `limit` entries of an account's audit log (or an identifier's lookups) after `after`
/// (an entry id), oldest first.
#[tracing::instrument(skip_all)]
pub async fn audit_entries(
    conn: &mut PgConnection,
    of: &AuditOf,
    after: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let (account, subject) = match of {
        AuditOf::Account(id) => (Some(*id), None),
        AuditOf::Identifier(subject) => (None, Some(subject.as_str())),
    };
    Ok(sqlx::query_as!(
        AuditRow,
        r#"SELECT id, account_id, actor, kind, what, note, at FROM audit_log
           WHERE (account_id = $1 OR subject = $2) AND id > $3 ORDER BY id LIMIT $4"#,
        account,
        subject,
        after,
        limit
    )
    .fetch_all(conn)
    .await?)
}

/// Whose audit log: an account's, or the lookups of an identifier (its SHA-256).
pub enum AuditOf {
    Account(Uuid),
    Identifier(String),
}

/// Appends an event to the change feed. The last statement of its transaction: it holds the
/// feed's head row until the commit, which orders the writers (see the migration).
#[tracing::instrument(skip_all)]
pub async fn append_event(
    conn: &mut PgConnection,
    account: Uuid,
    kind: RegistrationEventKind,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"WITH head AS (UPDATE feed_head SET seq = seq + 1 RETURNING seq)
           INSERT INTO registration_events (seq, account_id, kind)
           SELECT seq, $1, $2 FROM head RETURNING seq"#,
        account,
        kind as RegistrationEventKind
    )
    .fetch_one(conn)
    .await?)
}

/// The sequence number of the last event committed.
#[tracing::instrument(skip_all)]
pub async fn feed_head(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar!("SELECT seq FROM feed_head")
        .fetch_one(conn)
        .await?)
}

/// The oldest event kept (after the retention sweep), if any is.
#[tracing::instrument(skip_all)]
pub async fn feed_oldest(pool: &PgPool) -> Result<Option<i64>, StoreError> {
    Ok(
        sqlx::query_scalar!(r#"SELECT min(seq) AS "seq" FROM registration_events"#)
            .fetch_one(pool)
            .await?,
    )
}

pub struct EventRow {
    pub seq: i64,
    pub account_id: Uuid,
    pub kind: RegistrationEventKind,
    pub occurred_at: DateTime<Utc>,
}

/// Up to `limit` events after `after`, in order.
#[tracing::instrument(skip_all)]
pub async fn events_after(
    pool: &PgPool,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    Ok(sqlx::query_as!(
        EventRow,
        r#"SELECT seq, account_id, kind AS "kind: RegistrationEventKind", occurred_at
           FROM registration_events WHERE seq > $1 ORDER BY seq LIMIT $2"#,
        after,
        limit
    )
    .fetch_all(pool)
    .await?)
}

/// Deletes the events older than the retention (never the newest one, so the head's
/// position stays visible); how many.
#[tracing::instrument(skip_all)]
pub async fn sweep_events(pool: &PgPool, retention: Duration) -> Result<u64, StoreError> {
    Ok(sqlx::query!(
        r#"DELETE FROM registration_events
           WHERE occurred_at < now() - make_interval(secs => $1)
             AND seq < (SELECT seq FROM feed_head)"#,
        retention.as_secs_f64()
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// How a reopening was recorded.
pub enum Reopened {
    NotFound,
    Blocked,
    Recorded(Pending),
}

/// Records the reopening of `steps` of an account's registration: the audit log's entry, a
/// registered account made active again with the feed's event, and the change for biometrics
/// and profile to carry out, in one transaction. A blocked account is not reopened.
#[tracing::instrument(skip_all)]
pub async fn record_reopening(
    pool: &PgPool,
    id: Uuid,
    acting: &Acting<'_>,
    steps: &[&str],
) -> Result<Reopened, StoreError> {
    let mut tx = pool.begin().await?;
    let Some(status) = lock_status(&mut tx, id).await? else {
        return Ok(Reopened::NotFound);
    };
    if status == AccountStatus::Blocked {
        return Ok(Reopened::Blocked);
    }
    log_action(
        &mut tx,
        id,
        acting.actor,
        SupportAction::Reopen,
        acting.reason,
        &steps.join(","),
    )
    .await?;
    let change = record_change(&mut tx, id, Action::Reopen, steps, acting.actor).await?;
    if status == AccountStatus::Registered {
        sqlx::query!(
            "UPDATE accounts SET status = 'active', registered_at = NULL WHERE id = $1",
            id
        )
        .execute(&mut *tx)
        .await?;
        append_event(&mut tx, id, RegistrationEventKind::RegistrationReopened).await?;
    }
    tx.commit().await?;
    Ok(Reopened::Recorded(change))
}

/// A session as a subject access request shows it.
pub struct SessionRow {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
    pub client_ip: String,
    pub user_agent: String,
}

/// An account's sessions, oldest first, read with the read's record in the audit log.
#[tracing::instrument(skip_all)]
pub async fn sessions_of(
    pool: &PgPool,
    account: Uuid,
    actor: &str,
    purpose: &str,
) -> Result<Vec<SessionRow>, StoreError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query_as!(
        SessionRow,
        r#"SELECT id, created_at, revoked_at, revoked_reason, client_ip, user_agent
           FROM sessions WHERE account_id = $1 ORDER BY created_at"#,
        account
    )
    .fetch_all(&mut *tx)
    .await?;
    log_reads(&mut tx, &[account], actor, "sessions", purpose).await?;
    tx.commit().await?;
    Ok(rows)
}
