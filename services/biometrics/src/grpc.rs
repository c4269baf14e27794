//! gRPC handlers of the biometrics service.

use crate::{
    checks::{self, Kind, Thresholds},
    envelope::MasterKeys,
    objects::{ObjectError, Objects},
    store,
};
use examreg_kit::{
    auth::{account_id_field, caller},
    errors::{self, internal, invalid},
};
use examreg_proto::biometrics::v1::{self as pb, biometrics_service_server::BiometricsService};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::{pin::Pin, sync::Arc};
use tokio_stream::Stream;
use tonic::{Code, Request, Response, Status, Streaming};
use uuid::Uuid;

pub struct Biometrics {
    pub pool: PgPool,
    pub objects: Objects,
    pub keys: MasterKeys,
    pub thresholds: Arc<Thresholds>,
    /// Bounds how many photos are checked at once (decoding and detection are CPU-bound) and
    /// how many wait; beyond that an upload is refused with a retry hint.
    pub gate: examreg_kit::work::Gate,
}

use errors::db;

fn object_error(e: ObjectError) -> Status {
    match e {
        ObjectError::Unavailable(_) => errors::unavailable("object store", &e),
        ObjectError::Missing => internal(&e),
    }
}

/// A write to a set that is final (the registration is complete) or gone (erased).
fn closed_status(closed: store::Closed) -> Status {
    match closed {
        store::Closed::Sealed => errors::status(
            Code::FailedPrecondition,
            "registration_completed",
            "the registration is complete: the photos and the consent are final",
        ),
        store::Closed::Erased => errors::status(
            Code::NotFound,
            "account_not_found",
            "the person's data was erased",
        ),
    }
}

fn kind_of(value: i32) -> Result<Kind, Status> {
    match pb::CaptureKind::try_from(value) {
        Ok(pb::CaptureKind::Face) => Ok(Kind::Face),
        Ok(pb::CaptureKind::DocumentFront) => Ok(Kind::DocumentFront),
        Ok(pb::CaptureKind::DocumentBack) => Ok(Kind::DocumentBack),
        Ok(pb::CaptureKind::Unspecified) | Err(_) => Err(invalid(
            "invalid_kind",
            "kind is face, document_front or document_back",
            &[("kind", "invalid")],
        )),
    }
}

fn kind_pb(kind: &str) -> pb::CaptureKind {
    match kind {
        "face" => pb::CaptureKind::Face,
        "document_front" => pb::CaptureKind::DocumentFront,
        "document_back" => pb::CaptureKind::DocumentBack,
        _ => pb::CaptureKind::Unspecified,
    }
}

fn scores_pb(s: &checks::Scores) -> pb::CaptureScores {
    pb::CaptureScores {
        width: s.width,
        height: s.height,
        sharpness: s.sharpness,
        brightness: s.brightness,
        faces: s.faces,
        face_share: s.face_share,
        face_offset: s.face_offset,
        glare: s.glare,
    }
}

fn scores_from_json(v: &serde_json::Value) -> pb::CaptureScores {
    let f = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
    let u = |k: &str| {
        v.get(k)
            .and_then(serde_json::Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    pb::CaptureScores {
        width: u("width"),
        height: u("height"),
        sharpness: f("sharpness").unwrap_or(0.0),
        brightness: f("brightness").unwrap_or(0.0),
        faces: u("faces"),
        face_share: f("face_share"),
        face_offset: f("face_offset"),
        glare: f("glare"),
    }
}

/// The associated data that binds a sealed object to its key, owner and kind.
fn aad(object_key: &str, account: Uuid, kind: &str) -> Vec<u8> {
    format!("{object_key}|{account}|{kind}").into_bytes()
}

impl Biometrics {
    /// What the set still lacks, in the order the applicant does it.
    async fn missing(
        &self,
        account: Uuid,
    ) -> Result<
        (
            Vec<store::CaptureRow>,
            String,
            Option<String>,
            Vec<&'static str>,
        ),
        Status,
    > {
        let captures = store::captures_of(&self.pool, account).await.map_err(db)?;
        let (document_type, _) = store::capture_set(&self.pool, account).await.map_err(db)?;
        let consent = store::consent_of(&self.pool, account).await.map_err(db)?;
        let missing = store::missing_of(&captures, &document_type, consent.is_some());
        Ok((captures, document_type, consent, missing))
    }

    /// Records whether the set is complete; returns what is still missing.
    async fn submit_if_complete(&self, account: Uuid) -> Result<Vec<String>, Status> {
        let (.., missing) = self.missing(account).await?;
        store::set_submitted(&self.pool, account, missing.is_empty())
            .await
            .map_err(db)?;
        Ok(missing.into_iter().map(str::to_owned).collect())
    }
}

type DownloadStream =
    Pin<Box<dyn Stream<Item = Result<pb::DownloadCaptureResponse, Status>> + Send>>;

#[tonic::async_trait]
impl BiometricsService for Biometrics {
    #[tracing::instrument(skip_all)]
    async fn upload_capture(
        &self,
        request: Request<Streaming<pb::UploadCaptureRequest>>,
    ) -> Result<Response<pb::UploadCaptureResponse>, Status> {
        let account = caller(&request)?.capturing_account()?;
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::UploadCaptureRequest {
                part: Some(pb::upload_capture_request::Part::Header(h)),
            }) => h,
            _ => {
                return Err(invalid(
                    "header_required",
                    "the first message is the header",
                    &[("header", "required")],
                ));
            }
        };
        let kind = kind_of(header.kind)?;
        let document_type = match pb::DocumentType::try_from(header.document_type) {
            Ok(pb::DocumentType::IdCard) => Some("id_card"),
            Ok(pb::DocumentType::Passport) => Some("passport"),
            Ok(pb::DocumentType::Unspecified) => None,
            Err(_) => {
                return Err(invalid(
                    "invalid_document_type",
                    "document_type is id_card or passport",
                    &[("document_type", "invalid")],
                ));
            }
        };
        if kind == Kind::DocumentBack {
            let passport = match document_type {
                Some(chosen) => chosen == "passport",
                None => store::capture_set(&self.pool, account).await.map_err(db)?.0 == "passport",
            };
            if passport {
                return Err(invalid(
                    "document_back_not_needed",
                    "a passport needs its data page only",
                    &[("kind", "document_back_not_needed")],
                ));
            }
        }
        let mut bytes = Vec::new();
        while let Some(message) = stream.message().await? {
            if let Some(pb::upload_capture_request::Part::Chunk(chunk)) = message.part {
                if bytes.len() + chunk.len() > self.thresholds.max_bytes {
                    return Ok(Response::new(pb::UploadCaptureResponse {
                        accepted: false,
                        reason: "too_large".into(),
                        ..Default::default()
                    }));
                }
                bytes.extend_from_slice(&chunk);
            }
        }
        let permit = self.gate.enter().await.map_err(|o| o.status())?;
        let thresholds = self.thresholds.clone();
        let span = tracing::Span::current();
        let started = std::time::Instant::now();
        let checked = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let _permit = permit;
            examreg_kit::work::background_priority();
            checks::check(&bytes, kind, &thresholds)
        })
        .await
        .map_err(|e| internal(&e))?;
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
                return Ok(Response::new(pb::UploadCaptureResponse {
                    capture_id: String::new(),
                    accepted: false,
                    reason: refusal.code().into(),
                    scores: refusal.scores().map(scores_pb),
                    missing: Vec::new(),
                }));
            }
        };
        // The object first, then the record: a failure in between leaves at most an
        // unreferenced object, which the sweeper removes, never a record without its object.
        let id = Uuid::now_v7();
        let object_key = self.objects.new_key();
        let sealed = self
            .keys
            .seal(&accepted.jpeg, &aad(&object_key, account, kind.as_str()));
        self.objects
            .put(&object_key, sealed)
            .await
            .map_err(object_error)?;
        let capture = store::NewCapture {
            id,
            account_id: account,
            kind: kind.as_str(),
            object_key: &object_key,
            master_key_id: self.keys.current_id(),
            sha256: &Sha256::digest(&accepted.jpeg),
            size_bytes: i32::try_from(accepted.jpeg.len()).unwrap_or(i32::MAX),
            width: i32::try_from(accepted.scores.width).unwrap_or(0),
            height: i32::try_from(accepted.scores.height).unwrap_or(0),
            scores: serde_json::to_value(&accepted.scores).unwrap_or_default(),
            document_type,
        };
        let replaced = match store::replace_capture(&self.pool, &capture).await {
            Ok(Ok(replaced)) => replaced,
            Ok(Err(closed)) => {
                let _ = self.objects.delete(&object_key).await;
                return Err(closed_status(closed));
            }
            Err(e) => {
                let _ = self.objects.delete(&object_key).await;
                return Err(db(e));
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
        Ok(Response::new(pb::UploadCaptureResponse {
            capture_id: id.to_string(),
            accepted: true,
            reason: String::new(),
            scores: Some(scores_pb(&accepted.scores)),
            missing,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_capture_status(
        &self,
        request: Request<pb::GetCaptureStatusRequest>,
    ) -> Result<Response<pb::GetCaptureStatusResponse>, Status> {
        let account = caller(&request)?
            .account_for_capture("biometrics:status", &request.get_ref().account_id)?;
        let (captures, document_type, consent, missing) = self.missing(account).await?;
        Ok(Response::new(pb::GetCaptureStatusResponse {
            captures: captures
                .iter()
                .map(|c| pb::CaptureSummary {
                    kind: kind_pb(&c.kind).into(),
                    capture_id: c.id.to_string(),
                    captured_at: Some(prost_types::Timestamp {
                        seconds: c.created_at.timestamp(),
                        nanos: 0,
                    }),
                    scores: Some(scores_from_json(&c.scores)),
                })
                .collect(),
            document_type: if document_type == "passport" {
                pb::DocumentType::Passport
            } else {
                pb::DocumentType::IdCard
            }
            .into(),
            consent_given: consent.is_some(),
            consent_version: consent.unwrap_or_default(),
            submitted: missing.is_empty(),
            missing: missing.into_iter().map(str::to_owned).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn record_consent(
        &self,
        request: Request<pb::RecordConsentRequest>,
    ) -> Result<Response<pb::RecordConsentResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let req = request.into_inner();
        if !req.accepted {
            return Err(invalid(
                "consent_not_given",
                "the consent must be accepted",
                &[("accepted", "required")],
            ));
        }
        if req.version.trim().is_empty() {
            return Err(invalid(
                "consent_version_required",
                "the consent version is required",
                &[("version", "required")],
            ));
        }
        store::record_consent(
            &self.pool,
            account,
            req.version.trim(),
            &req.client_ip,
            &req.user_agent,
        )
        .await
        .map_err(db)?
        .map_err(closed_status)?;
        let missing = self.submit_if_complete(account).await?;
        Ok(Response::new(pb::RecordConsentResponse {
            submitted: missing.is_empty(),
            missing,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn seal_captures(
        &self,
        request: Request<pb::SealCapturesRequest>,
    ) -> Result<Response<pb::SealCapturesResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let answer = match store::seal(&self.pool, account).await.map_err(db)? {
            store::Seal::Sealed(at) => pb::SealCapturesResponse {
                sealed: true,
                sealed_at: Some(prost_types::Timestamp {
                    seconds: at.timestamp(),
                    nanos: 0,
                }),
                missing: Vec::new(),
            },
            store::Seal::Incomplete(missing) => pb::SealCapturesResponse {
                sealed: false,
                sealed_at: None,
                missing: missing.into_iter().map(str::to_owned).collect(),
            },
            store::Seal::Erased => return Err(closed_status(store::Closed::Erased)),
        };
        if answer.sealed {
            tracing::info!(%account, "capture set sealed");
        }
        Ok(Response::new(answer))
    }

    type DownloadCaptureStream = DownloadStream;

    #[tracing::instrument(skip_all)]
    async fn download_capture(
        &self,
        request: Request<pb::DownloadCaptureRequest>,
    ) -> Result<Response<Self::DownloadCaptureStream>, Status> {
        let actor = caller(&request)?
            .require_scope("biometrics:read")?
            .to_owned();
        let req = request.into_inner();
        let purpose = req.purpose.trim();
        if purpose.is_empty() {
            return Err(invalid(
                "purpose_required",
                "state why the image is read",
                &[("purpose", "required")],
            ));
        }
        let id: Uuid = req
            .capture_id
            .parse()
            .map_err(|_| errors::status(Code::NotFound, "capture_not_found", "no such capture"))?;
        let capture = store::capture_by_id(&self.pool, id)
            .await
            .map_err(db)?
            .ok_or_else(|| {
                errors::status(Code::NotFound, "capture_not_found", "no such capture")
            })?;
        let sealed = self
            .objects
            .get(&capture.object_key)
            .await
            .map_err(object_error)?;
        let plain = self
            .keys
            .open(
                &sealed,
                &aad(&capture.object_key, capture.account_id, &capture.kind),
            )
            .map_err(|e| internal(&e))?;
        // The read is on record before a byte leaves.
        store::log_access(&self.pool, id, capture.account_id, &actor, purpose)
            .await
            .map_err(db)?;
        tracing::info!(capture = %id, actor, "capture read");
        let mut parts = vec![Ok(pb::DownloadCaptureResponse {
            part: Some(pb::download_capture_response::Part::ContentType(
                "image/jpeg".into(),
            )),
        })];
        parts.extend(plain.chunks(64 * 1024).map(|c| {
            Ok(pb::DownloadCaptureResponse {
                part: Some(pb::download_capture_response::Part::Chunk(c.to_vec())),
            })
        }));
        Ok(Response::new(Box::pin(tokio_stream::iter(parts))))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_biometric_data(
        &self,
        request: Request<pb::DeleteBiometricDataRequest>,
    ) -> Result<Response<pb::DeleteBiometricDataResponse>, Status> {
        caller(&request)?.require_scope("biometrics:admin")?;
        let account: Uuid = account_id_field(&request.get_ref().account_id)?;
        let keys = store::delete_account(&self.pool, account)
            .await
            .map_err(db)?;
        for key in &keys {
            if let Err(e) = self.objects.delete(key).await {
                tracing::warn!(error = %e, "object not deleted; the sweeper will");
            }
        }
        tracing::info!(%account, captures = keys.len(), "biometric data deleted");
        Ok(Response::new(pb::DeleteBiometricDataResponse {
            captures_deleted: u32::try_from(keys.len()).unwrap_or(u32::MAX),
        }))
    }
}

impl Biometrics {
    /// Deletes objects that no capture references and that are older than `grace` (younger
    /// ones may belong to an upload whose record is being written). Returns how many.
    pub async fn sweep(&self, grace: std::time::Duration) -> Result<usize, Status> {
        let cutoff =
            chrono::Utc::now().timestamp() - i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        let old: Vec<String> = self
            .objects
            .list()
            .await
            .map_err(object_error)?
            .into_iter()
            .filter(|(_, modified)| *modified < cutoff)
            .map(|(key, _)| key)
            .collect();
        let orphans = store::unreferenced(&self.pool, &old).await.map_err(db)?;
        for key in &orphans {
            self.objects.delete(key).await.map_err(object_error)?;
        }
        Ok(orphans.len())
    }
}
