//! What the system of record's calls share: keyset pages — a bounded size, a token that is the
//! last key of the previous page, one row more than asked read to tell whether another page
//! follows — and the notes the audit logs keep (a read's purpose, an action's reason).

/// The page when the caller asks for none in particular.
pub const DEFAULT_PAGE: i64 = 100;
/// The largest page.
pub const MAX_PAGE: i64 = 500;

/// A page size as asked (0 or less for the default), bounded.
pub fn page_size(asked: i32) -> i64 {
    match asked {
        ..=0 => DEFAULT_PAGE,
        n => i64::from(n).min(MAX_PAGE),
    }
}

/// Where a page of rows keyed by a sequence number starts: 0 for the first page (no token),
/// `None` for a token no page gave.
pub fn after_id(token: &str) -> Option<i64> {
    match token.trim() {
        "" => Some(0),
        token => token.parse().ok().filter(|id| *id >= 0),
    }
}

/// Rows read `size + 1` at a time, cut to `size`, with the key the next page starts after when
/// there is one.
pub fn cut<T, K>(mut rows: Vec<T>, size: i64, key: impl Fn(&T) -> K) -> (Vec<T>, Option<K>) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let more = rows.len() > size;
    rows.truncate(size);
    let next = if more { rows.last().map(key) } else { None };
    (rows, next)
}

/// The evidence kept of a person whose data the retention deleted: the SHA-256 of the account
/// id (hex). It proves a given account was deleted and when, and names nobody by itself.
pub fn subject(account: uuid::Uuid) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(account.to_string().as_bytes()))
}

/// Records, at a service that owns a registration's data, a change identity recorded first,
/// in the transaction that carries it out: its `changes` table (`id uuid PRIMARY KEY,
/// account_id, action, steps text[], actor, at`; biometrics and profile have the same). A
/// repeat of the same change (identity retrying) records nothing more.
#[cfg(feature = "postgres")]
pub async fn record_change(
    conn: &mut sqlx::PgConnection,
    account: uuid::Uuid,
    change: &crate::auth::Change,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO changes (id, account_id, action, steps, actor) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(change.id)
    .bind(account)
    .bind(change.action.as_str())
    .bind(&change.steps)
    .bind(&change.by)
    .execute(conn)
    .await?;
    Ok(())
}

/// A note for an audit log: trimmed, 1 to 500 characters; `Err(too_long)` otherwise.
pub fn note(value: &str) -> Result<&str, bool> {
    let note = value.trim();
    match note.chars().count() {
        0 => Err(false),
        1..=500 => Ok(note),
        _ => Err(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_bounded_and_cut_with_the_next_key() {
        assert_eq!(page_size(0), DEFAULT_PAGE);
        assert_eq!(page_size(-3), DEFAULT_PAGE);
        assert_eq!(page_size(7), 7);
        assert_eq!(page_size(100_000), MAX_PAGE);
        assert_eq!(after_id(""), Some(0));
        assert_eq!(after_id("42"), Some(42));
        assert_eq!(after_id("-1"), None);
        assert_eq!(after_id("x"), None);
        assert_eq!(cut(vec![1, 2, 3], 2, |n| *n), (vec![1, 2], Some(2)));
        assert_eq!(cut(vec![1, 2], 2, |n| *n), (vec![1, 2], None));
    }

    #[test]
    fn notes_are_trimmed_and_bounded() {
        assert_eq!(note("  seat assignment "), Ok("seat assignment"));
        assert_eq!(note(" "), Err(false));
        assert_eq!(note(&"ә".repeat(500)).map(str::len), Ok(1000));
        assert_eq!(note(&"x".repeat(501)), Err(true));
    }
}
