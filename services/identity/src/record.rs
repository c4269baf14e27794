//! The system of record as services read it: one account by id or by what identifies it, the
//! accounts page by page, and a person's audit log. Every read of personal data by a service is
//! recorded in the audit log with the caller and the purpose it gave, in the transaction of the
//! read: a read whose record cannot be written is not answered. A lookup by what identifies a
//! person is recorded whether it finds an account or not, with the SHA-256 of what was looked
//! up; so is every read of the audit log itself.

use crate::{
    error::Error,
    identity::Identity,
    store::{self, AuditOf, AuditRow, Filter, Record},
};
use examreg_domain::{Email, LoginKind};
use examreg_kit::record::cut;
use uuid::Uuid;

/// How a service names the account it looks for.
pub enum FindBy {
    Login(String, LoginKind),
    Email(Email),
}

impl FindBy {
    /// What the audit log keeps of the value looked up.
    fn subject(&self) -> String {
        match self {
            Self::Login(login, _) => identifier_subject(login),
            Self::Email(email) => identifier_subject(email.as_str()),
        }
    }
}

/// The SHA-256 (hex) of an identifier as normalized (an IIN or passport number as logins are
/// kept, an email in lower case): what a lookup's entry keeps of what was looked up.
pub fn identifier_subject(normalized: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(normalized.as_bytes()))
}

/// Who reads and why: what the audit log records of a read.
pub struct Reader<'a> {
    pub actor: &'a str,
    pub purpose: &'a str,
}

/// What a read of accounts is recorded as.
const ACCOUNT: &str = "account";
/// What a read of the audit log is recorded as, and why.
const AUDIT_LOG: &str = "audit_log";
const AUDIT_LOG_READ: &str = "the audit log (ListAccessLog)";

/// One page of accounts, where the next begins, and the feed's position before it was read.
pub struct Page {
    pub accounts: Vec<Record>,
    pub next: Option<Uuid>,
    pub feed_cursor: i64,
}

impl Identity {
    /// The account of its holder (one's own data: not logged).
    pub(crate) async fn own_record(&self, id: Uuid) -> Result<Record, Error> {
        let mut conn = self.pool.acquire().await?;
        store::record_by_id(&mut conn, id)
            .await?
            .ok_or(Error::AccountNotFound)
    }

    /// An account read by a service, logged.
    pub(crate) async fn record_for(&self, id: Uuid, reader: &Reader<'_>) -> Result<Record, Error> {
        let mut tx = self.pool.begin().await?;
        let record = store::record_by_id(&mut tx, id)
            .await?
            .ok_or(Error::AccountNotFound)?;
        store::log_reads(&mut tx, &[id], reader.actor, ACCOUNT, reader.purpose).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The account with this login or email, logged; NOT_FOUND when none (logged too, by the
    /// SHA-256 of what was looked up).
    pub(crate) async fn find(&self, by: &FindBy, reader: &Reader<'_>) -> Result<Record, Error> {
        let mut tx = self.pool.begin().await?;
        let found = match by {
            FindBy::Login(login, kind) => store::record_by_login(&mut tx, login, *kind).await?,
            FindBy::Email(email) => store::record_by_email(&mut tx, email.as_str()).await?,
        };
        let account = found.as_ref().map(|r| r.id);
        let subject = by.subject();
        store::log_lookup(
            &mut tx,
            account,
            reader.actor,
            ACCOUNT,
            reader.purpose,
            &subject,
        )
        .await?;
        tx.commit().await?;
        let record = found.ok_or(Error::AccountNotFound)?;
        tracing::info!(account = %record.id, actor = reader.actor, "account looked up");
        Ok(record)
    }

    /// A page of accounts after `after`, each logged as read.
    pub(crate) async fn list(
        &self,
        filter: &Filter<'_>,
        after: Option<Uuid>,
        limit: i64,
        reader: &Reader<'_>,
    ) -> Result<Page, Error> {
        let mut tx = self.pool.begin().await?;
        // Before the page: a change committed after this position may or may not show in the
        // page, and the feed from here replays it either way.
        let feed_cursor = store::feed_head(&mut tx).await?;
        let rows = store::list_records(&mut tx, filter, after, limit + 1).await?;
        let (accounts, next) = cut(rows, limit, |a| a.id);
        let ids: Vec<Uuid> = accounts.iter().map(|a| a.id).collect();
        store::log_reads(&mut tx, &ids, reader.actor, ACCOUNT, reader.purpose).await?;
        tx.commit().await?;
        Ok(Page {
            next,
            accounts,
            feed_cursor,
        })
    }

    /// A page of a person's audit log (or an identifier's lookups) after the entry `after`,
    /// oldest first; the read itself is recorded, in its transaction.
    pub(crate) async fn audit_log(
        &self,
        of: &AuditOf,
        after: i64,
        limit: i64,
        reader: &str,
    ) -> Result<(Vec<AuditRow>, Option<i64>), Error> {
        let mut tx = self.pool.begin().await?;
        let rows = store::audit_entries(&mut tx, of, after, limit + 1).await?;
        match of {
            AuditOf::Account(id) => {
                store::log_reads(&mut tx, &[*id], reader, AUDIT_LOG, AUDIT_LOG_READ).await?;
            }
            AuditOf::Identifier(subject) => {
                store::log_lookup(&mut tx, None, reader, AUDIT_LOG, AUDIT_LOG_READ, subject)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(cut(rows, limit, |e| e.id))
    }
}
