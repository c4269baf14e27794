//! Captures: what the service does, on domain values, without gRPC. A photo is checked off the
//! async runtime behind a bound, sealed with a fresh data key, written to the object store, and
//! only then recorded (so a failure in between leaves at most an unreferenced object, which the
//! sweeper removes, never a record without its object). A set is sealed at completion and
//! final after; an erased person's set is a tombstone.

use crate::{
    checks::{self, Thresholds},
    envelope::MasterKeys,
    error::Error,
    objects::Objects,
    store,
};
use examreg_domain::{CaptureKind, DocumentType};
use examreg_kit::auth::Change;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::sync::Arc;
use uuid::Uuid;

/// Who reads a photo and why, for the access log; `owner` limits the read to one account's
/// photos (an applicant reading their own).
pub struct Reader<'a> {
    pub actor: &'a str,
    pub purpose: &'a str,
    pub owner: Option<Uuid>,
}

/// A JPEG of `photo` whose longer side is at most `side` pixels.
fn preview(photo: &[u8], side: u32) -> Result<Vec<u8>, Error> {
    let image = image::load_from_memory_with_format(photo, image::ImageFormat::Jpeg)
        .map_err(Error::Preview)?;
    let small = image.thumbnail(side, side).into_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small)
        .map_err(Error::Preview)?;
    Ok(out)
}

pub struct Captures {
    pub pool: PgPool,
    pub objects: Objects,
    pub keys: MasterKeys,
    pub thresholds: Arc<Thresholds>,
    /// Bounds how many photos are checked at once (decoding and detection are CPU-bound) and
    /// how many wait; beyond that an upload is refused with a retry hint.
    pub gate: examreg_kit::work::Gate,
    /// Bounds how many photos are read at once (fetched, opened and, for a preview, decoded
    /// and scaled: up to the sealed, the plain and the decoded image of each in memory) and how
    /// many wait: a cabinet's previews opened by a crowd must not hold the pod's memory.
    pub reads: examreg_kit::work::Gate,
}

/// Where a capture set stands.
pub struct SetStatus {
    pub captures: Vec<store::CaptureRow>,
    pub document_type: DocumentType,
    pub consent: Option<store::Consent>,
    /// What the set still lacks, in the order the applicant does it.
    pub missing: Vec<&'static str>,
    /// The steps a reopening asked to redo, not yet redone.
    pub redo: Vec<String>,
    pub sealed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The reading of the zone-bearing photo's machine-readable zone.
    pub document_check: Option<(crate::document::Check, Option<crate::document::Decision>)>,
}

/// What an upload came to.
pub enum Upload {
    /// Kept: the capture, its scores, and what the set lacks now.
    Stored {
        id: Uuid,
        scores: checks::Scores,
        missing: Vec<&'static str>,
    },
    /// Refused by a check; nothing changed.
    Refused(checks::Refusal),
    /// Larger than the limit while it arrived; nothing changed.
    TooLarge,
}

/// The associated data that binds a sealed object to its key, owner and kind.
fn aad(object_key: &str, account: Uuid, kind: CaptureKind) -> Vec<u8> {
    format!("{object_key}|{account}|{kind}").into_bytes()
}

impl Captures {
    pub fn max_bytes(&self) -> usize {
        self.thresholds.max_bytes
    }

    pub async fn status(&self, account: Uuid) -> Result<SetStatus, Error> {
        let captures = store::captures_of(&self.pool, account).await?;
        let set = store::capture_set(&self.pool, account).await?;
        let document_type = set.document_type;
        let consent = store::consent_of(&self.pool, account).await?;
        let document_check = store::checks::check_of(&self.pool, account).await?;
        let document = crate::document::standing(document_check.as_ref(), set.sealed_at.is_some());
        let missing = store::missing_of(
            &captures,
            document_type,
            consent.is_some(),
            &set.redo,
            document,
        );
        Ok(SetStatus {
            document_check,
            captures,
            document_type,
            consent,
            missing,
            redo: set.redo,
            sealed_at: set.sealed_at,
        })
    }

    /// Records whether the set is complete; returns what is still missing.
    async fn submit_if_complete(&self, account: Uuid) -> Result<Vec<&'static str>, Error> {
        let missing = self.status(account).await?.missing;
        store::set_submitted(&self.pool, account, missing.is_empty()).await?;
        Ok(missing)
    }

    /// Whether an upload of `kind` is refused before the photo is read (and before any CPU is
    /// spent checking it): a set that is sealed (the registration is complete) unless the kind
    /// was reopened, an erased one, and the back of a passport. The write checks the seal again
    /// under the set's lock.
    pub async fn refuse_early(
        &self,
        account: Uuid,
        kind: CaptureKind,
        document_type: Option<DocumentType>,
    ) -> Result<(), Error> {
        let set = store::capture_set(&self.pool, account).await?;
        let reopened = set.redo.iter().any(|step| step == kind.as_str());
        match set.closed {
            Some(store::Closed::Sealed) if reopened => {}
            Some(closed) => return Err(closed.into()),
            None => {}
        }
        if !document_type
            .unwrap_or(set.document_type)
            .captures()
            .contains(&kind)
        {
            return Err(Error::DocumentBackNotNeeded);
        }
        Ok(())
    }

    /// Checks a frame of the camera's preview (see `checks::check_frame`) on an idle turn of
    /// the photo checks, or refuses it at once when they are busy.
    pub async fn check_frame(
        &self,
        frame: Vec<u8>,
    ) -> Result<Result<checks::Scores, checks::Refusal>, Error> {
        let permit = self.gate.try_enter("frame").map_err(Error::Overloaded)?;
        let thresholds = self.thresholds.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            examreg_kit::work::background_priority();
            checks::check_frame(&frame, &thresholds)
        })
        .await?;
        let outcome = if checked.is_ok() {
            "placed"
        } else {
            "not_placed"
        };
        metrics::counter!("biometrics_frames_checked_total", "outcome" => outcome).increment(1);
        Ok(checked)
    }

    /// Checks and keeps a photo of `kind` (a retake replaces the current one).
    pub async fn upload(
        &self,
        account: Uuid,
        kind: CaptureKind,
        document_type: Option<DocumentType>,
        holder: Option<examreg_domain::mrz::Expected>,
        bytes: Vec<u8>,
    ) -> Result<Upload, Error> {
        let permit = self.gate.enter().await.map_err(Error::Overloaded)?;
        let thresholds = self.thresholds.clone();
        let span = tracing::Span::current();
        let started = std::time::Instant::now();
        let checked = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _permit = permit;
            examreg_kit::work::background_priority();
            checks::check(&bytes, kind, &thresholds)
        })
        .await?;
        let accepted = match checked {
            Ok(accepted) => accepted,
            Err(refusal) => {
                tracing::info!(
                    kind = kind.as_str(),
                    reason = refusal.code(),
                    ms = started.elapsed().as_millis(),
                    "capture refused"
                );
                metrics::counter!(
                    "biometrics_captures_refused_total",
                    "kind" => kind.as_str(),
                    "reason" => refusal.code()
                )
                .increment(1);
                return Ok(Upload::Refused(refusal));
            }
        };
        let id = Uuid::now_v7();
        let object_key = self.objects.new_key();
        let sealed = self
            .keys
            .seal(&accepted.jpeg, &aad(&object_key, account, kind));
        self.objects.put(&object_key, sealed).await?;
        let capture = store::NewCapture {
            id,
            account_id: account,
            kind,
            object_key: &object_key,
            master_key_id: self.keys.current_id(),
            sha256: &Sha256::digest(&accepted.jpeg),
            size_bytes: i32::try_from(accepted.jpeg.len()).unwrap_or(i32::MAX),
            width: i32::try_from(accepted.scores.width).unwrap_or(0),
            height: i32::try_from(accepted.scores.height).unwrap_or(0),
            scores: serde_json::to_value(&accepted.scores).unwrap_or_default(),
            document_type,
            holder: holder.as_ref(),
        };
        let recorded = store::replace_capture(&self.pool, &capture).await;
        let replaced = match recorded {
            Ok(Ok(replaced)) => replaced,
            Ok(Err(closed)) => {
                let _ = self.objects.delete(&object_key).await;
                return Err(closed.into());
            }
            Err(e) => {
                let _ = self.objects.delete(&object_key).await;
                return Err(e.into());
            }
        };
        for old in replaced {
            if let Err(e) = self.objects.delete(&old).await {
                tracing::warn!(error = %e, "replaced object not deleted; the sweeper will");
            }
        }
        let missing = self.submit_if_complete(account).await?;
        tracing::info!(capture = %id, kind = kind.as_str(), ms = started.elapsed().as_millis(), "capture stored");
        metrics::counter!("biometrics_captures_stored_total", "kind" => kind.as_str()).increment(1);
        Ok(Upload::Stored {
            id,
            scores: accepted.scores,
            missing,
        })
    }

    /// Records the consent; returns what the set still lacks.
    pub async fn consent(
        &self,
        account: Uuid,
        consent: &store::NewConsent<'_>,
    ) -> Result<Vec<&'static str>, Error> {
        store::record_consent(&self.pool, account, consent).await??;
        self.submit_if_complete(account).await
    }

    pub async fn seal(
        &self,
        account: Uuid,
        claim: crate::document::Claim,
    ) -> Result<store::Seal, Error> {
        let seal = store::seal(&self.pool, account, claim).await?;
        match &seal {
            store::Seal::Erased => return Err(Error::Erased),
            store::Seal::Sealed(_) => tracing::info!(%account, "capture set sealed"),
            store::Seal::Incomplete(_) | store::Seal::Held(_) => {}
        }
        Ok(seal)
    }

    /// The decrypted image (or a preview of it, `max_side` pixels at most), once its read is on
    /// record (who, why). With an `owner`, only that account's photos are found.
    pub async fn download(
        &self,
        id: Uuid,
        reader: &Reader<'_>,
        max_side: Option<u32>,
    ) -> Result<Vec<u8>, Error> {
        let capture = store::capture_by_id(&self.pool, id)
            .await?
            .filter(|c| reader.owner.is_none_or(|owner| owner == c.account_id))
            .ok_or(Error::CaptureNotFound)?;
        let (actor, purpose) = (reader.actor, reader.purpose);
        let _turn = self.reads.enter().await.map_err(Error::Overloaded)?;
        let sealed = self.objects.get(&capture.object_key).await?;
        let plain = self.keys.open(
            &sealed,
            &aad(&capture.object_key, capture.account_id, capture.kind),
        )?;
        let mut conn = self.pool.acquire().await?;
        store::log_access(&mut conn, Some(id), capture.account_id, actor, purpose).await?;
        tracing::info!(capture = %id, actor, "capture read");
        match max_side {
            None => Ok(plain),
            Some(side) => tokio::task::spawn_blocking(move || preview(&plain, side)).await?,
        }
    }

    /// The set's status read by a service, once the read is on record (who, why).
    pub async fn status_for(
        &self,
        account: Uuid,
        actor: &str,
        purpose: &str,
    ) -> Result<SetStatus, Error> {
        let status = self.status(account).await?;
        let mut conn = self.pool.acquire().await?;
        store::log_access(&mut conn, None, account, actor, purpose).await?;
        Ok(status)
    }

    /// Puts steps on the set's list to redo (a reopening by the support desk): each of them may
    /// be written again despite the seal, and the set lists them as missing until it is.
    /// Only for a change identity recorded, whose id is recorded with it.
    pub async fn reopen(
        &self,
        account: Uuid,
        steps: &[String],
        change: &Change,
    ) -> Result<(), Error> {
        if !store::reopen(&self.pool, account, steps, change).await? {
            return Err(Error::Erased);
        }
        tracing::info!(%account, change = %change.id, by = change.by, ?steps, "capture set reopened");
        Ok(())
    }

    /// Deletes every capture, object and consent of an account, for an erasure identity
    /// recorded; how many captures.
    pub async fn delete(&self, account: Uuid, change: &Change) -> Result<usize, Error> {
        let keys = store::delete_account(&self.pool, account, change).await?;
        for key in &keys {
            if let Err(e) = self.objects.delete(key).await {
                tracing::warn!(error = %e, "object not deleted; the sweeper will");
            }
        }
        tracing::info!(%account, captures = keys.len(), "biometric data deleted");
        Ok(keys.len())
    }

    /// Deletes objects that no capture references and that are older than `grace` (younger
    /// ones may belong to an upload whose record is being written). Returns how many.
    pub async fn sweep(&self, grace: std::time::Duration) -> Result<usize, Error> {
        let cutoff =
            chrono::Utc::now().timestamp() - i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        let old: Vec<String> = self
            .objects
            .list()
            .await?
            .into_iter()
            .filter(|(_, modified)| *modified < cutoff)
            .map(|(key, _)| key)
            .collect();
        let orphans = store::unreferenced(&self.pool, &old).await?;
        for key in &orphans {
            self.objects.delete(key).await?;
        }
        Ok(orphans.len())
    }
}
