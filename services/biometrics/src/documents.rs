//! The document check's queue: the machine-readable zone of the photo that bears one is read
//! off the upload's path (see `migrations/0004_document_checks.sql`), by a few workers per
//! replica at background priority, so a registration rush waits on nothing but the photo
//! checks. The applicant sees the result on the next onboarding poll.

use crate::{
    captures::Captures,
    grpc::Biometrics,
    ocr::{ReadError, Reader},
};
use examreg_domain::{
    CaptureKind, DocumentType,
    mrz::{Expected, Format, Mismatch, Verdict, Zone},
};
use sqlx::{PgConnection, PgPool};
use std::{path::PathBuf, sync::Arc, time::Duration};
use uuid::Uuid;

/// How long a claimed check is left to its worker before another may take it.
const LEASE: Duration = Duration::from_secs(120);
/// How long the readings under way may take to finish when the service stops.
const DRAIN: Duration = Duration::from_secs(10);
/// Attempts at a check whose reading fails for a reason other than the photo (the object
/// store, the model) before it is left to a person.
const MAX_ATTEMPTS: i32 = 5;
/// The purpose the access log gives for the worker's read of the photo.
const PURPOSE: &str = "reading the document's machine-readable zone";

/// The format of the zone the capture `kind` bears in a set of `document_type`, if any.
pub fn zone_of(document_type: DocumentType, kind: CaptureKind) -> Option<Format> {
    match (document_type, kind) {
        (DocumentType::IdCard, CaptureKind::DocumentBack) => Some(Format::Td1),
        (DocumentType::Passport, CaptureKind::DocumentFront) => Some(Format::Td3),
        (DocumentType::IdCard, CaptureKind::Face | CaptureKind::DocumentFront)
        | (DocumentType::Passport, CaptureKind::Face | CaptureKind::DocumentBack) => None,
    }
}

/// Called in the transaction that makes `capture` current: a zone-bearing photo (re)queues the
/// account's check; another photo that replaced the one a check read ends that check.
pub async fn enqueue(
    tx: &mut PgConnection,
    c: &crate::store::NewCapture<'_>,
    holder: Option<&Expected>,
) -> Result<(), sqlx::Error> {
    let (account, capture, kind) = (c.account_id, c.id, c.kind);
    let document_type = sqlx::query_scalar!(
        r#"SELECT document_type AS "document_type: DocumentType" FROM capture_sets WHERE account_id = $1"#,
        account
    )
    .fetch_one(&mut *tx)
    .await?;
    match zone_of(document_type, kind) {
        Some(format) => {
            sqlx::query!(
                r#"INSERT INTO document_checks (account_id, capture_id, format, expected_iin,
                     expected_passport_number, expected_citizenship)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (account_id) DO UPDATE SET capture_id = EXCLUDED.capture_id,
                     format = EXCLUDED.format, state = 'pending', attempts = 0, not_before = now(),
                     zone = NULL, error = NULL, read_ms = NULL, queued_at = now(), read_at = NULL,
                     expected_iin = EXCLUDED.expected_iin,
                     expected_passport_number = EXCLUDED.expected_passport_number,
                     expected_citizenship = EXCLUDED.expected_citizenship,
                     outcome = NULL, mismatches = '{}', decision = NULL, decision_reason = NULL,
                     claimed_names = NULL, names_agree = NULL"#,
                account,
                capture,
                format.as_str(),
                holder
                    .and_then(|h| h.iin.as_ref())
                    .map(|i| i.as_str().to_owned()),
                holder.and_then(|h| h.passport_number.clone()),
                holder.and_then(|h| h.citizenship.clone()),
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!(
                r#"UPDATE document_reviews SET decision = 'superseded', decided_by = 'biometrics',
                     decided_at = now(), reason = 'a new photo of the document'
                   WHERE account_id = $1 AND decision IS NULL"#,
                account
            )
            .execute(&mut *tx)
            .await?;
            sqlx::query!("SELECT pg_notify('document_checks', '')")
                .execute(&mut *tx)
                .await?;
        }
        None => {
            sqlx::query!("DELETE FROM document_checks WHERE capture_id = $1", capture)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Where an account's document check stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Waiting for a worker or being read.
    Pending,
    /// Read, with what it says of the account's claim.
    Read(Box<Zone>, Verdict),
    /// Found no zone or could not read it (a stable code): the applicant retakes the photo.
    Unreadable(String),
    /// The reading itself kept failing: a person looks.
    Failed(String),
}

/// A person's decision on a check: `approve`, `retake` or `reject`, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub decision: String,
    pub reason: String,
}

/// What the profile says of the holder (the applicant confirmed it), compared with the zone
/// when the set is sealed: a passport's holder typed them, so only the zone can vouch.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    pub birth_date: Option<chrono::NaiveDate>,
    pub sex: Option<examreg_domain::Sex>,
    /// Compared after transliteration, for the reviewer only.
    pub names: Option<ClaimedNames>,
    /// Only compare and record the names: never seal, never open a review.
    pub compare_only: bool,
}

/// The profile's names as typed (`Debug` prints none of them).
#[derive(Clone, Default)]
pub struct ClaimedNames {
    pub surname: String,
    pub given_name: String,
    pub patronymic: String,
}

impl std::fmt::Debug for ClaimedNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClaimedNames(..)")
    }
}

/// Records the profile's names beside the zone's (printed as a zone would print them, and
/// whether they agree), in the seal's transaction. A soft signal: nothing is held for it.
pub async fn record_names(
    tx: &mut PgConnection,
    account: Uuid,
    zone: &Zone,
    names: &ClaimedNames,
) -> Result<(), sqlx::Error> {
    use examreg_domain::mrz::names;
    let (surname, given) = names::claimed(&names.surname, &names.given_name);
    let agree = names::agree(
        zone.names_field(),
        &names.surname,
        &names.given_name,
        &names.patronymic,
    );
    sqlx::query!(
        "UPDATE document_checks SET claimed_names = $2, names_agree = $3 WHERE account_id = $1",
        account,
        format!("{surname}<<{given}").replace(' ', "<"),
        agree
    )
    .execute(&mut *tx)
    .await?;
    metrics::counter!("biometrics_document_names_compared_total", "agree" => agree.to_string())
        .increment(1);
    Ok(())
}

impl Claim {
    /// What of the claim the zone disagrees with.
    pub fn mismatches(&self, zone: &Zone) -> Vec<Mismatch> {
        let mut out = Vec::new();
        if let Some(birth) = self.birth_date
            && zone.birth_date != birth.format("%y%m%d").to_string()
        {
            out.push(Mismatch::BirthDate);
        }
        if let (Some(claimed), Some(printed)) = (self.sex, zone.sex)
            && claimed != printed
        {
            out.push(Mismatch::Sex);
        }
        out
    }
}

/// Turns a verified check into one for a person to review (the profile disagrees with the
/// zone), in the seal's transaction; the check as it now stands.
pub async fn hold_for_review(
    tx: &mut PgConnection,
    account: Uuid,
    zone: Zone,
    mismatches: Vec<Mismatch>,
) -> Result<(Check, Option<Decision>), sqlx::Error> {
    let codes: Vec<String> = mismatches.iter().map(|m| m.code().to_owned()).collect();
    let capture = sqlx::query_scalar!(
        "UPDATE document_checks SET outcome = 'review', mismatches = $2
         WHERE account_id = $1 RETURNING capture_id",
        account,
        &codes
    )
    .fetch_one(&mut *tx)
    .await?;
    open_review(tx, account, capture, &codes).await?;
    Ok((
        Check::Read(Box::new(zone), Verdict::Review(mismatches)),
        None,
    ))
}

/// Opens a review of `capture` (once: an open one stays).
async fn open_review(
    tx: &mut PgConnection,
    account: Uuid,
    capture: Uuid,
    mismatches: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"INSERT INTO document_reviews (account_id, capture_id, mismatches) VALUES ($1, $2, $3)
           ON CONFLICT (account_id) WHERE decision IS NULL DO NOTHING"#,
        account,
        capture,
        mismatches
    )
    .execute(&mut *tx)
    .await?;
    metrics::counter!("biometrics_document_reviews_opened_total").increment(1);
    Ok(())
}

/// What an account's document check means for completing its registration (the rule in
/// docs/internal-api.md, "The document check and its reviews").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The zone was read and agrees with the account, or a person approved the document.
    Passed,
    /// The applicant photographs the document again: the zone was not read, the document has
    /// expired, a person asked for it, or the photo came before there were checks.
    Retake,
    /// Waits: for the reading, or for a person (the data did not agree, the reading kept
    /// failing, or a person rejected the document and the support desk has to help).
    Held,
}

/// The standing of an account's check (`None`: its zone-bearing photo has none). A set
/// sealed before there were checks keeps its seal.
pub fn standing(check: Option<&(Check, Option<Decision>)>, sealed: bool) -> Standing {
    let Some((check, decision)) = check else {
        return if sealed {
            Standing::Passed
        } else {
            Standing::Retake
        };
    };
    match (decision.as_ref().map(|d| d.decision.as_str()), check) {
        // A person's decision outranks what the reading said.
        (Some("approve"), _) => Standing::Passed,
        (Some("retake"), _) => Standing::Retake,
        (Some(_), _) => Standing::Held,
        (None, Check::Read(_, Verdict::Verified)) => Standing::Passed,
        (None, Check::Read(_, Verdict::Expired) | Check::Unreadable(_)) => Standing::Retake,
        (None, Check::Read(_, Verdict::Review(_)) | Check::Pending | Check::Failed(_)) => {
            Standing::Held
        }
    }
}

/// The check of the account's current zone-bearing photo, if it has one, and the decision on
/// its review, if any.
pub async fn check_of(
    db: impl sqlx::PgExecutor<'_>,
    account: Uuid,
) -> Result<Option<(Check, Option<Decision>)>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT state, zone, error, outcome, mismatches, decision, decision_reason
         FROM document_checks WHERE account_id = $1",
        account
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| {
        let decision = row.decision.clone().map(|decision| Decision {
            decision,
            reason: row.decision_reason.clone().unwrap_or_default(),
        });
        (
            check_from(
                row.state.as_str(),
                row.zone,
                row.error,
                row.outcome,
                &row.mismatches,
            ),
            decision,
        )
    }))
}

fn check_from(
    state: &str,
    zone: Option<serde_json::Value>,
    error: Option<String>,
    outcome: Option<String>,
    mismatches: &[String],
) -> Check {
    match state {
        "read" => match zone.and_then(|z| serde_json::from_value::<Zone>(z).ok()) {
            Some(zone) => {
                let verdict = match outcome.as_deref() {
                    Some("verified") => Verdict::Verified,
                    Some("expired") => Verdict::Expired,
                    Some(_) | None => Verdict::Review(
                        mismatches
                            .iter()
                            .filter_map(|m| serde_json::from_value(serde_json::json!(m)).ok())
                            .collect(),
                    ),
                };
                Check::Read(Box::new(zone), verdict)
            }
            None => Check::Failed("zone_unparsable".into()),
        },
        "unreadable" => Check::Unreadable(error.unwrap_or_default()),
        "failed" => Check::Failed(error.unwrap_or_default()),
        _ => Check::Pending,
    }
}

struct Claimed {
    account_id: Uuid,
    capture_id: Uuid,
    format: String,
    attempts: i32,
    expected_iin: Option<String>,
    expected_passport_number: Option<String>,
    expected_citizenship: Option<String>,
}

impl Claimed {
    fn expected(&self) -> Expected {
        Expected {
            iin: self
                .expected_iin
                .as_deref()
                .and_then(|i| examreg_domain::Iin::parse(i).ok()),
            passport_number: self.expected_passport_number.clone(),
            citizenship: self.expected_citizenship.clone(),
            birth_date: None,
            sex: None,
        }
    }
}

/// Takes the oldest pending check that no worker holds.
async fn claim(pool: &PgPool) -> Result<Option<Claimed>, sqlx::Error> {
    sqlx::query_as!(
        Claimed,
        r#"UPDATE document_checks SET attempts = attempts + 1,
             not_before = now() + make_interval(secs => $1)
           WHERE account_id = (
             SELECT account_id FROM document_checks
             WHERE state = 'pending' AND not_before <= now()
             ORDER BY not_before LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING account_id, capture_id, format, attempts, expected_iin,
             expected_passport_number, expected_citizenship"#,
        LEASE.as_secs_f64()
    )
    .fetch_optional(pool)
    .await
}

/// Records what the reading came to, unless the photo was replaced meanwhile (the new one's
/// check is pending and is read next).
async fn finish(
    pool: &PgPool,
    claimed: &Claimed,
    state: &str,
    read: Option<(&Zone, &Verdict)>,
    error: Option<&str>,
    read_ms: Option<i32>,
) -> Result<(), sqlx::Error> {
    let (outcome, mismatches): (Option<&str>, Vec<String>) = match read.map(|(_, v)| v) {
        Some(Verdict::Verified) => (Some("verified"), Vec::new()),
        Some(Verdict::Expired) => (Some("expired"), Vec::new()),
        Some(Verdict::Review(m)) => (
            Some("review"),
            m.iter().map(|m: &Mismatch| m.code().to_owned()).collect(),
        ),
        None => (None, Vec::new()),
    };
    let mut tx = pool.begin().await?;
    let current = sqlx::query!(
        r#"UPDATE document_checks SET state = $3, zone = $4, error = $5, read_ms = $6, read_at = now(),
             outcome = $7, mismatches = $8
           WHERE account_id = $1 AND capture_id = $2"#,
        claimed.account_id,
        claimed.capture_id,
        state,
        read.map(|(z, _)| serde_json::to_value(z).unwrap_or_default()),
        error,
        read_ms,
        outcome,
        &mismatches
    )
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    // A disagreement, or a reading that kept failing, waits for a person.
    if current && (outcome == Some("review") || state == "failed") {
        open_review(&mut tx, claimed.account_id, claimed.capture_id, &mismatches).await?;
    }
    tx.commit().await
}

/// Puts a check whose reading failed for a passing reason back in the queue, after a pause
/// that grows with each attempt.
async fn retry_later(pool: &PgPool, claimed: &Claimed) -> Result<(), sqlx::Error> {
    let pause = 2f64.powi(claimed.attempts.min(8)) * 5.0;
    sqlx::query!(
        r#"UPDATE document_checks SET not_before = now() + make_interval(secs => $3)
           WHERE account_id = $1 AND capture_id = $2"#,
        claimed.account_id,
        claimed.capture_id,
        pause
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The workers' settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The recognition network (see `deploy/mrz-model`).
    pub model: PathBuf,
    /// Checks read at once in this replica, each on a thread of its own at the lowest
    /// priority.
    pub workers: usize,
    /// The day a document must still be valid on (the exam session's last day); today when
    /// unset or past.
    pub valid_until: Option<chrono::NaiveDate>,
}

/// Runs the workers until `stop`: each claims a check, reads the photo (an access-logged
/// download), runs the reader on its own thread at the lowest priority (`work::Lane`: the
/// photo checks and hashes applicants wait for come first) and records the outcome. The network is loaded first, on a blocking thread, so start-up does not wait.
pub async fn run(
    service: Arc<Biometrics>,
    sessions: PgPool,
    settings: Settings,
    stop: impl std::future::Future<Output = ()>,
) {
    let model = settings.model.clone();
    let loaded = tokio::task::spawn_blocking(move || Reader::load(&model)).await;
    let reader = match loaded {
        Ok(Ok(reader)) => Arc::new(reader),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the document reader did not load; document checks wait");
            stop.await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "the document reader's loading panicked");
            stop.await;
            return;
        }
    };
    tracing::info!(workers = settings.workers, "document reader loaded");
    let wake = Arc::new(tokio::sync::Notify::new());
    let pool = service.captures.pool.clone();
    let mut background = tokio::task::JoinSet::new();
    background.spawn(listen(sessions, wake.clone()));
    background.spawn(gauge(pool.clone()));
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let held: Held = Arc::default();
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..settings.workers.max(1) {
        let lane = match examreg_kit::work::Lane::new(&format!("mrz-{n}")) {
            Ok(lane) => lane,
            Err(e) => {
                tracing::error!(error = %e, "a document reader's thread did not start");
                continue;
            }
        };
        workers.spawn(worker(
            service.clone(),
            reader.clone(),
            lane,
            wake.clone(),
            settings.valid_until,
            stopped.clone(),
            held.clone(),
        ));
    }
    stop.await;
    // A rollout or a drained node: the readings under way finish (a fraction of a second
    // each), no new one starts, and a claim still held after the drain is handed back at once
    // rather than after its lease, so an applicant's check does not wait minutes.
    let _ = stopping.send(true);
    background.abort_all();
    let drained = tokio::time::timeout(DRAIN, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        workers.abort_all();
    }
    let left: Vec<Uuid> = held
        .lock()
        .map(|held| held.iter().copied().collect())
        .unwrap_or_default();
    if !left.is_empty() {
        match release(&pool, &left).await {
            Ok(()) => tracing::info!(released = left.len(), "document checks handed back"),
            Err(e) => tracing::warn!(error = %e, "document checks left to their lease"),
        }
    }
}

/// The accounts whose checks this replica's workers hold.
type Held = Arc<std::sync::Mutex<std::collections::HashSet<Uuid>>>;

/// Hands claimed checks back to the queue (the attempt is not counted).
async fn release(pool: &PgPool, accounts: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE document_checks SET not_before = now(), attempts = GREATEST(attempts - 1, 0)
         WHERE account_id = ANY($1) AND state = 'pending'",
        accounts
    )
    .execute(pool)
    .await?;
    sqlx::query!("SELECT pg_notify('document_checks', '')")
        .execute(pool)
        .await?;
    Ok(())
}

/// The queue's depth and its oldest check's age, every ten seconds (the same in every replica:
/// it is the cluster's queue).
async fn gauge(pool: PgPool) {
    loop {
        match sqlx::query!(
            r#"SELECT count(*) AS "pending!",
                 COALESCE(EXTRACT(EPOCH FROM now() - min(queued_at)), 0)::float8 AS "oldest!"
               FROM document_checks WHERE state = 'pending'"#
        )
        .fetch_one(&pool)
        .await
        {
            Ok(row) => {
                metrics::gauge!("biometrics_document_checks_pending").set(row.pending as f64);
                metrics::gauge!("biometrics_document_checks_oldest_age_seconds").set(row.oldest);
            }
            Err(e) => tracing::debug!(error = %e, "document check queue not measured"),
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// Wakes the workers when a check is queued anywhere (`pg_notify` in [`enqueue`]); they also
/// look every second on their own, so a lost connection only slows them.
async fn listen(pool: PgPool, wake: Arc<tokio::sync::Notify>) {
    loop {
        match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => {
                if listener.listen("document_checks").await.is_ok() {
                    while listener.recv().await.is_ok() {
                        wake.notify_waiters();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "document check listener not connected"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn worker(
    service: Arc<Biometrics>,
    reader: Arc<Reader>,
    lane: examreg_kit::work::Lane,
    wake: Arc<tokio::sync::Notify>,
    valid_until: Option<chrono::NaiveDate>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    held: Held,
) {
    let captures = &service.captures;
    let hold = |account: Uuid, on: bool| {
        if let Ok(mut held) = held.lock() {
            if on {
                held.insert(account);
            } else {
                held.remove(&account);
            }
        }
    };
    while !*stopping.borrow() {
        let notified = wake.notified();
        match claim(&captures.pool).await {
            Ok(Some(claimed)) => {
                hold(claimed.account_id, true);
                let today = chrono::Utc::now().date_naive();
                let valid_until = valid_until.map_or(today, |day| day.max(today));
                if let Err(e) = read_one(captures, &reader, &lane, &claimed, valid_until).await {
                    tracing::warn!(error = %e, "document check not recorded; it is retried after its lease");
                }
                hold(claimed.account_id, false);
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "document checks not claimed"),
        }
        tokio::select! {
            _ = tokio::time::timeout(Duration::from_secs(1), notified) => {}
            _ = stopping.changed() => {}
        }
    }
}

async fn read_one(
    captures: &Captures,
    reader: &Arc<Reader>,
    lane: &examreg_kit::work::Lane,
    claimed: &Claimed,
    valid_until: chrono::NaiveDate,
) -> Result<(), sqlx::Error> {
    let format = Format::parse(&claimed.format).unwrap_or(Format::Td1);
    let photo = match captures
        .download(
            claimed.capture_id,
            &crate::captures::Reader {
                actor: "biometrics",
                purpose: PURPOSE,
                owner: None,
            },
            None,
        )
        .await
    {
        Ok(photo) => photo,
        Err(crate::error::Error::CaptureNotFound) => return Ok(()),
        Err(e) => return give_up_or_retry(captures, claimed, &e.to_string()).await,
    };
    let reader = reader.clone();
    let span = tracing::Span::current();
    let outcome = lane
        .run(move || {
            let _entered = span.enter();
            let started = examreg_kit::work::thread_cpu_time();
            let read = reader.read_photo(&photo, format);
            (
                read,
                examreg_kit::work::thread_cpu_time().saturating_sub(started),
            )
        })
        .await;
    let Some((read, cpu)) = outcome else {
        return give_up_or_retry(captures, claimed, "the reading panicked").await;
    };
    let ms = i32::try_from(cpu.as_millis()).unwrap_or(i32::MAX);
    metrics::histogram!("biometrics_document_read_seconds").record(cpu.as_secs_f64());
    match read {
        Ok(zone) => {
            let verdict = examreg_domain::mrz::verdict(&zone, &claimed.expected(), valid_until);
            let outcome = match &verdict {
                Verdict::Verified => "verified",
                Verdict::Expired => "expired",
                Verdict::Review(_) => "review",
            };
            metrics::counter!("biometrics_document_checks_total", "outcome" => outcome)
                .increment(1);
            tracing::info!(ms, outcome, "document zone read");
            finish(
                &captures.pool,
                claimed,
                "read",
                Some((&zone, &verdict)),
                None,
                Some(ms),
            )
            .await
        }
        Err(ReadError::NotFound | ReadError::Unreadable(_) | ReadError::Image(_)) => {
            let code = match &read {
                Err(ReadError::NotFound) => "zone_not_found",
                Err(ReadError::Image(_)) => "image_undecodable",
                Ok(_) | Err(_) => "zone_unreadable",
            };
            metrics::counter!("biometrics_document_checks_total", "outcome" => "unreadable")
                .increment(1);
            tracing::info!(ms, reason = code, "document zone not read");
            finish(
                &captures.pool,
                claimed,
                "unreadable",
                None,
                Some(code),
                Some(ms),
            )
            .await
        }
        Err(ReadError::Model(e)) => give_up_or_retry(captures, claimed, &e).await,
    }
}

async fn give_up_or_retry(
    captures: &Captures,
    claimed: &Claimed,
    error: &str,
) -> Result<(), sqlx::Error> {
    tracing::warn!(error, attempts = claimed.attempts, "document check failed");
    if claimed.attempts >= MAX_ATTEMPTS {
        metrics::counter!("biometrics_document_checks_total", "outcome" => "failed").increment(1);
        finish(
            &captures.pool,
            claimed,
            "failed",
            None,
            Some("reading_failed"),
            None,
        )
        .await
    } else {
        retry_later(&captures.pool, claimed).await
    }
}

/// A review of a document check.
#[derive(Debug, Clone)]
pub struct ReviewRow {
    pub id: i64,
    pub account_id: Uuid,
    pub capture_id: Uuid,
    pub mismatches: Vec<String>,
    pub opened_at: chrono::DateTime<chrono::Utc>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Reviews after `after`, oldest first; open ones only unless `decided`.
pub async fn reviews(
    conn: &mut sqlx::PgConnection,
    decided: bool,
    after: i64,
    limit: i64,
) -> Result<Vec<ReviewRow>, sqlx::Error> {
    sqlx::query_as!(
        ReviewRow,
        r#"SELECT id, account_id, capture_id, mismatches, opened_at, decision, reason, decided_by,
             decided_at
           FROM document_reviews WHERE id > $1 AND ($2 OR decision IS NULL)
           ORDER BY id LIMIT $3"#,
        after,
        decided,
        limit
    )
    .fetch_all(conn)
    .await
}

/// What GetReview shows: the review, the zone read, and the profile's names beside it once
/// recorded (`SURNAME<<GIVEN` as a zone would print them, and whether they agree).
pub struct Reviewed {
    pub row: ReviewRow,
    pub zone: Option<Zone>,
    pub names: Option<(String, bool)>,
}

/// One review, and the zone its check read if that photo is still current.
pub async fn review(pool: &PgPool, id: i64) -> Result<Option<Reviewed>, sqlx::Error> {
    let Some(row) = sqlx::query_as!(
        ReviewRow,
        r#"SELECT id, account_id, capture_id, mismatches, opened_at, decision, reason, decided_by,
             decided_at
           FROM document_reviews WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let check = sqlx::query!(
        "SELECT zone, claimed_names, names_agree FROM document_checks WHERE capture_id = $1",
        row.capture_id
    )
    .fetch_optional(pool)
    .await?;
    let (zone, names) = match check {
        Some(check) => (
            check.zone.and_then(|z| serde_json::from_value(z).ok()),
            check.claimed_names.zip(check.names_agree),
        ),
        None => (None, None),
    };
    Ok(Some(Reviewed { row, zone, names }))
}

/// What deciding a review came to.
pub enum Decided {
    Done(ReviewRow),
    NotFound,
    /// Decided before, or superseded by a new photo.
    AlreadyDecided,
}

/// Decides an open review and, if its photo is still the current one, the check the applicant
/// sees, in one transaction.
pub async fn decide(
    pool: &PgPool,
    id: i64,
    decision: &str,
    reason: &str,
    actor: &str,
) -> Result<Decided, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(open) = sqlx::query!(
        "SELECT capture_id, decision FROM document_reviews WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Decided::NotFound);
    };
    if open.decision.is_some() {
        return Ok(Decided::AlreadyDecided);
    }
    let row = sqlx::query_as!(
        ReviewRow,
        r#"UPDATE document_reviews SET decision = $2, reason = $3, decided_by = $4, decided_at = now()
           WHERE id = $1
           RETURNING id, account_id, capture_id, mismatches, opened_at, decision, reason,
             decided_by, decided_at"#,
        id,
        decision,
        reason,
        actor
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE document_checks SET decision = $2, decision_reason = $3 WHERE capture_id = $1",
        open.capture_id,
        decision,
        reason
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    metrics::counter!("biometrics_document_reviews_decided_total", "decision" => decision.to_owned())
        .increment(1);
    Ok(Decided::Done(row))
}
