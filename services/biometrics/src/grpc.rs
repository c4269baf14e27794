//! gRPC handlers, thin: who calls, the request into domain values (the photo's bytes read off
//! the stream), the call into [`Captures`], the answer back. Every failure becomes a status in
//! `error.rs`.

use crate::{
    captures::{Captures, Upload},
    checks,
    error::Error,
    reviews, store,
};
use examreg_domain::{CaptureKind, DocumentType};
use examreg_kit::{
    auth::{Caller, ChangeAction, account_id_field, caller},
    record::{after_id, cut, note, page_size},
};
use examreg_proto::{
    biometrics::v1::{self as pb, biometrics_service_server::BiometricsService},
    convert::{FromWire, steps_from_wire, steps_named, steps_to_wire, steps_typed, timestamp},
};
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

/// The access log's actor when applicants read their own photos.
const APPLICANT: &str = "applicant";

pub struct Biometrics {
    pub captures: std::sync::Arc<Captures>,
}

fn capture_summary(c: &store::CaptureRow) -> pb::CaptureSummary {
    pb::CaptureSummary {
        kind: pb::CaptureKind::from(c.kind).into(),
        capture_id: c.id.to_string(),
        captured_at: Some(timestamp(c.created_at)),
        scores: Some(scores_from_json(&c.scores)),
    }
}

fn review_id(value: &str) -> Result<i64, Error> {
    value
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(Error::ReviewNotFound)
}

/// A refusal as the wire says it.
fn refusal_pb(refusal: &crate::checks::Refusal) -> pb::PhotoRefusal {
    use crate::checks::Refusal;
    match refusal {
        Refusal::UnsupportedType => pb::PhotoRefusal::UnsupportedType,
        Refusal::TooLarge => pb::PhotoRefusal::TooLarge,
        Refusal::Undecodable(_) => pb::PhotoRefusal::Undecodable,
        Refusal::TooSmall(_) => pb::PhotoRefusal::TooSmall,
        Refusal::Blurred(_) => pb::PhotoRefusal::Blurred,
        Refusal::TooDark(_) => pb::PhotoRefusal::TooDark,
        Refusal::TooBright(_) => pb::PhotoRefusal::TooBright,
        Refusal::NoFace(_) => pb::PhotoRefusal::NoFace,
        Refusal::SeveralFaces(_) => pb::PhotoRefusal::SeveralFaces,
        Refusal::FaceTooSmall(_) => pb::PhotoRefusal::FaceTooSmall,
        Refusal::FaceOffCentre(_) => pb::PhotoRefusal::FaceOffCentre,
    }
}

/// The status of a person's photo set, as GetCaptureStatus answers it.
fn status_message(set: crate::captures::SetStatus) -> pb::GetCaptureStatusResponse {
    pb::GetCaptureStatusResponse {
        captures: set.captures.iter().map(capture_summary).collect(),
        document_type: pb::DocumentType::from(set.document_type).into(),
        consent_given: set.consent.is_some(),
        consent_accepted_at: set.consent.as_ref().map(|c| timestamp(c.accepted_at)),
        consent_sha256: set
            .consent
            .as_ref()
            .and_then(|c| c.sha256.clone())
            .unwrap_or_default(),
        consent_language: set
            .consent
            .as_ref()
            .and_then(|c| c.language.clone())
            .unwrap_or_default(),
        consent_version: set.consent.map(|c| c.version).unwrap_or_default(),
        submitted: set.missing.is_empty(),
        missing_steps: steps_typed(&set.missing),
        missing: owned(set.missing),
        redo_steps: steps_typed(&set.redo),
        redo: set.redo,
        sealed_at: set.sealed_at.map(timestamp),
        document_check: set
            .document_check
            .map(|(check, decision)| document_check(check, decision)),
    }
}

/// What a read of the access log is recorded as, and why.
const ACCESS_LOG: &str = "access_log";
const ACCESS_LOG_READ: &str = "the access log (ListAccessLog)";
/// Why a listing of the review queue is recorded.
const REVIEW_QUEUE_READ: &str = "the review queue (ListReviews)";

fn review_message(row: reviews::ReviewRow) -> pb::Review {
    pb::Review {
        review_id: row.id.to_string(),
        account_id: row.account_id.to_string(),
        capture_id: row.capture_id.to_string(),
        mismatches: row.mismatches,
        opened_at: Some(timestamp(row.opened_at)),
        decision: row.decision.unwrap_or_default(),
        reason: row.reason.unwrap_or_default(),
        decided_by: row.decided_by.unwrap_or_default(),
        decided_at: row.decided_at.map(timestamp),
    }
}

fn zone_message(zone: examreg_domain::mrz::Zone) -> pb::ReadZone {
    pb::ReadZone {
        format: zone.format.as_str().into(),
        document_code: zone.document_code,
        issuing_state: zone.issuing_state,
        document_number: zone.document_number,
        birth_date: zone.birth_date,
        sex: zone.sex.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        expiry_date: zone.expiry_date,
        nationality: zone.nationality,
        optional_data: zone.optional_data,
        surname: zone.surname,
        given_names: zone.given_names,
        lines: zone.lines,
    }
}

/// Who the account says the holder of a document is.
fn holder_of(holder: Option<&pb::Holder>) -> Option<examreg_domain::mrz::Expected> {
    use pb::holder::Identifier;
    let holder = holder?;
    let citizenship = holder.citizenship.trim().to_ascii_uppercase();
    examreg_domain::mrz::alpha3(&citizenship)?;
    let mut expected = examreg_domain::mrz::Expected {
        citizenship: Some(citizenship),
        ..Default::default()
    };
    match holder.identifier.as_ref()? {
        Identifier::Iin(iin) => expected.iin = Some(examreg_domain::Iin::parse(iin).ok()?),
        Identifier::PassportNumber(number) => {
            expected.passport_number = Some(
                examreg_domain::PassportNumber::parse(number)
                    .ok()?
                    .as_str()
                    .to_owned(),
            );
        }
    }
    Some(expected)
}

fn document_check(
    check: crate::document::Check,
    decision: Option<crate::document::Decision>,
) -> pb::DocumentCheck {
    use crate::document::Check;
    use examreg_domain::mrz::Verdict;
    let mut answer = pb::DocumentCheck::default();
    let state = match check {
        Check::Pending => "pending",
        Check::Read(zone, verdict) => {
            answer.format = zone.format.as_str().into();
            answer.outcome = match verdict {
                Verdict::Verified => "verified",
                Verdict::Expired => "expired",
                Verdict::Review(mismatches) => {
                    answer.mismatches = mismatches.iter().map(|m| m.code().to_owned()).collect();
                    "review"
                }
            }
            .into();
            "read"
        }
        Check::Unreadable(reason) => {
            answer.reason = reason;
            "unreadable"
        }
        Check::Failed(reason) => {
            answer.reason = reason;
            "failed"
        }
    };
    answer.state = state.into();
    if let Some(decision) = decision {
        answer.decision = decision.decision;
        answer.decision_reason = decision.reason;
    }
    answer
}

/// The document chosen with an upload: unspecified means "as before".
fn document_type_of(value: i32) -> Result<Option<DocumentType>, Error> {
    if value == i32::from(pb::DocumentType::Unspecified) {
        return Ok(None);
    }
    DocumentType::from_wire(value)
        .map(Some)
        .ok_or(Error::InvalidDocumentType)
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

/// Why a service reads personal data, for the access log: not blank, at most 500 characters.
fn purpose_field(value: &str) -> Result<&str, Error> {
    note(value).map_err(|_| Error::PurposeRequired)
}

/// The steps a reopening names, checked: at least one, each biometrics' (a photo or the consent); in the
/// onboarding's order.
fn steps_field(typed: &[i32], text: &[String]) -> Result<Vec<String>, Error> {
    match steps_from_wire(typed, text) {
        Some(steps) if steps.iter().all(|s| s.is_biometric()) => Ok(steps_to_wire(steps)),
        Some(_) | None => Err(Error::InvalidStep),
    }
}

fn owned(missing: Vec<&'static str>) -> Vec<String> {
    missing.into_iter().map(str::to_owned).collect()
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
            _ => return Err(Error::HeaderRequired.into()),
        };
        let kind = CaptureKind::from_wire(header.kind).ok_or(Error::InvalidKind)?;
        let document_type = document_type_of(header.document_type)?;
        let holder = match kind {
            CaptureKind::Face => None,
            CaptureKind::DocumentFront | CaptureKind::DocumentBack => {
                Some(holder_of(header.holder.as_ref()).ok_or(Error::InvalidHolder)?)
            }
        };
        self.captures
            .refuse_early(account, kind, document_type)
            .await?;
        let limit = self.captures.max_bytes();
        let mut bytes = Vec::new();
        let mut too_large = false;
        while let Some(message) = stream.message().await? {
            if let Some(pb::upload_capture_request::Part::Chunk(chunk)) = message.part {
                if bytes.len() + chunk.len() > limit {
                    too_large = true;
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
        }
        let upload = if too_large {
            Upload::TooLarge
        } else {
            self.captures
                .upload(account, kind, document_type, holder, bytes)
                .await?
        };
        Ok(Response::new(match upload {
            Upload::Stored {
                id,
                scores,
                missing,
            } => pb::UploadCaptureResponse {
                capture_id: id.to_string(),
                accepted: true,
                reason: String::new(),
                scores: Some(scores_pb(&scores)),
                missing_steps: steps_typed(&missing),
                missing: owned(missing),
                refusal: pb::PhotoRefusal::Unspecified.into(),
            },
            Upload::Refused(refusal) => pb::UploadCaptureResponse {
                capture_id: String::new(),
                accepted: false,
                reason: refusal.code().into(),
                scores: refusal.scores().map(scores_pb),
                missing: Vec::new(),
                missing_steps: Vec::new(),
                refusal: refusal_pb(&refusal).into(),
            },
            Upload::TooLarge => pb::UploadCaptureResponse {
                accepted: false,
                reason: "too_large".into(),
                refusal: pb::PhotoRefusal::TooLarge.into(),
                ..Default::default()
            },
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn check_frame(
        &self,
        request: Request<pb::CheckFrameRequest>,
    ) -> Result<Response<pb::CheckFrameResponse>, Status> {
        caller(&request)?.capturing_account()?;
        let frame = request.into_inner().frame;
        let answer = match self.captures.check_frame(frame).await? {
            Ok(scores) => pb::CheckFrameResponse {
                placed: true,
                reason: String::new(),
                scores: Some(scores_pb(&scores)),
                refusal: pb::PhotoRefusal::Unspecified.into(),
            },
            Err(refusal) => pb::CheckFrameResponse {
                placed: false,
                reason: refusal.code().to_owned(),
                scores: refusal.scores().map(scores_pb),
                refusal: refusal_pb(&refusal).into(),
            },
        };
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all)]
    async fn get_capture_status(
        &self,
        request: Request<pb::GetCaptureStatusRequest>,
    ) -> Result<Response<pb::GetCaptureStatusResponse>, Status> {
        let who = caller(&request)?;
        let req = request.get_ref();
        let set = match who {
            Caller::Service { .. } | Caller::Change { .. } => {
                let actor = who.require_scope("biometrics:status")?;
                let purpose = purpose_field(&req.purpose)?;
                let account = account_id_field(&req.account_id)?;
                self.captures.status_for(account, actor, purpose).await?
            }
            Caller::User { .. } | Caller::Capture { .. } => {
                let account = who.account_for_capture("biometrics:status", &req.account_id)?;
                self.captures.status(account).await?
            }
        };
        Ok(Response::new(status_message(set)))
    }

    #[tracing::instrument(skip_all)]
    async fn export_person_data(
        &self,
        request: Request<pb::ExportPersonDataRequest>,
    ) -> Result<Response<pb::ExportPersonDataResponse>, Status> {
        let actor = caller(&request)?.require_scope("audit:read")?;
        let req = request.get_ref();
        let purpose = purpose_field(&req.purpose)?;
        let account = account_id_field(&req.account_id)?;
        let data = store::person_data(&self.captures.pool, account, actor, purpose)
            .await
            .map_err(Error::from)?;
        let status = self.captures.status(account).await.ok().map(status_message);
        Ok(Response::new(pb::ExportPersonDataResponse {
            status,
            captures: data
                .captures
                .into_iter()
                .map(|c| pb::StoredCapture {
                    capture_id: c.id.to_string(),
                    kind: pb::CaptureKind::from(c.kind).into(),
                    captured_at: Some(timestamp(c.created_at)),
                    sha256: hex::encode(c.sha256),
                    size_bytes: c.size_bytes,
                    width: c.width,
                    height: c.height,
                })
                .collect(),
            consent: data.consent.map(|c| pb::GivenConsent {
                version: c.version,
                accepted_at: Some(timestamp(c.accepted_at)),
                client_ip: c.client_ip,
                user_agent: c.user_agent,
            }),
            zone: data
                .zone
                .and_then(|z| serde_json::from_value(z).ok())
                .map(zone_message),
            reviews: data.reviews.into_iter().map(review_message).collect(),
            changes: data
                .changes
                .into_iter()
                .map(|c| pb::RecordedChange {
                    change_id: c.id.to_string(),
                    action: c.action,
                    onboarding_steps: steps_typed(&c.steps),
                    steps: c.steps,
                    actor: c.actor,
                    at: Some(timestamp(c.at)),
                })
                .collect(),
            erased_at: data.erased_at.map(timestamp),
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
            return Err(Error::ConsentNotGiven.into());
        }
        let version = req.version.trim();
        examreg_domain::check_text_acceptance(version, &req.sha256, &req.language)
            .map_err(Error::ConsentVersionRequired)?;
        let consent = crate::store::NewConsent {
            version,
            sha256: &req.sha256,
            language: &req.language,
            client_ip: &req.client_ip,
            user_agent: &req.user_agent,
        };
        let missing = self.captures.consent(account, &consent).await?;
        Ok(Response::new(pb::RecordConsentResponse {
            submitted: missing.is_empty(),
            missing_steps: steps_typed(&missing),
            missing: owned(missing),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn seal_captures(
        &self,
        request: Request<pb::SealCapturesRequest>,
    ) -> Result<Response<pb::SealCapturesResponse>, Status> {
        let (account, _) = caller(&request)?.require_user()?;
        let req = request.get_ref();
        let birth_date = match req.birth_date.as_str() {
            "" => None,
            text => Some(
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map_err(|_| Error::InvalidHolder)?,
            ),
        };
        let sex = match req.sex.as_str() {
            "" => None,
            text => Some(examreg_domain::Sex::parse(text).ok_or(Error::InvalidHolder)?),
        };
        // Names as the profile took them; not compared when absent.
        let part = |text: &str| -> Result<String, Error> {
            let text = text.trim();
            if text.chars().count() > 100 {
                return Err(Error::InvalidHolder);
            }
            Ok(text.to_owned())
        };
        let names = crate::document::ClaimedNames {
            surname: part(&req.surname)?,
            given_name: part(&req.given_name)?,
            patronymic: part(&req.patronymic)?,
        };
        let names = (!names.surname.is_empty() && !names.given_name.is_empty()).then_some(names);
        let claim = crate::document::Claim {
            birth_date,
            sex,
            names,
            compare_only: req.compare_only,
        };
        Ok(Response::new(
            match self.captures.seal(account, claim).await? {
                store::Seal::Sealed(at) => pb::SealCapturesResponse {
                    sealed: true,
                    sealed_at: Some(timestamp(at)),
                    missing: Vec::new(),
                    missing_steps: Vec::new(),
                    document_check: None,
                },
                store::Seal::Incomplete(missing) => pb::SealCapturesResponse {
                    sealed: false,
                    sealed_at: None,
                    missing_steps: steps_typed(&missing),
                    missing: owned(missing),
                    document_check: None,
                },
                store::Seal::Held((check, decision)) => pb::SealCapturesResponse {
                    sealed: false,
                    sealed_at: None,
                    missing: Vec::new(),
                    missing_steps: Vec::new(),
                    document_check: Some(document_check(check, decision)),
                },
                store::Seal::Erased => return Err(Error::Erased.into()),
            },
        ))
    }

    type DownloadCaptureStream = DownloadStream;

    #[tracing::instrument(skip_all)]
    async fn download_capture(
        &self,
        request: Request<pb::DownloadCaptureRequest>,
    ) -> Result<Response<Self::DownloadCaptureStream>, Status> {
        // An applicant reads their own photos (the cabinet's previews); a service with the
        // scope reads anyone's. Either way the read is logged with its purpose.
        let who = caller(&request)?;
        let (actor, owner) = match who {
            Caller::User { account_id, .. } => (APPLICANT.to_owned(), Some(*account_id)),
            Caller::Service { .. } | Caller::Capture { .. } | Caller::Change { .. } => {
                (who.require_scope("biometrics:read")?.to_owned(), None)
            }
        };
        let req = request.into_inner();
        let purpose = purpose_field(&req.purpose)?;
        let id: Uuid = req.capture_id.parse().map_err(|_| Error::CaptureNotFound)?;
        let reader = crate::captures::Reader {
            actor: &actor,
            purpose,
            owner,
        };
        let max_side = (req.max_side > 0).then(|| req.max_side.clamp(16, 1024));
        let plain = self.captures.download(id, &reader, max_side).await?;
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
        let who = caller(&request)?;
        let (account, change) =
            who.require_change(ChangeAction::Erase, &request.get_ref().account_id, &[])?;
        let deleted = self.captures.delete(account, change).await?;
        Ok(Response::new(pb::DeleteBiometricDataResponse {
            captures_deleted: u32::try_from(deleted).unwrap_or(u32::MAX),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn reopen_captures(
        &self,
        request: Request<pb::ReopenCapturesRequest>,
    ) -> Result<Response<pb::ReopenCapturesResponse>, Status> {
        let req = request.get_ref();
        let who = caller(&request)?;
        let named = steps_named(&req.onboarding_steps, &req.steps);
        let (account, change) =
            who.require_change(ChangeAction::Reopen, &req.account_id, &named)?;
        let steps = steps_field(&req.onboarding_steps, &req.steps)?;
        self.captures.reopen(account, &steps, change).await?;
        let missing = self.captures.status(account).await?.missing;
        Ok(Response::new(pb::ReopenCapturesResponse {
            missing_steps: steps_typed(&missing),
            missing: owned(missing),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_access_log(
        &self,
        request: Request<pb::ListAccessLogRequest>,
    ) -> Result<Response<pb::ListAccessLogResponse>, Status> {
        let reader = caller(&request)?.require_scope("audit:read")?;
        let req = request.get_ref();
        let account = account_id_field(&req.account_id)?;
        let after = after_id(&req.page_token).ok_or(Error::InvalidPageToken)?;
        let limit = page_size(req.page_size);
        // The read of the log is itself recorded, in its transaction.
        let mut tx = self.captures.pool.begin().await.map_err(Error::from)?;
        let rows = store::access_entries(&mut tx, account, after, limit + 1)
            .await
            .map_err(Error::from)?;
        store::log_reads(&mut tx, &[account], reader, ACCESS_LOG, ACCESS_LOG_READ)
            .await
            .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        let (entries, next) = cut(rows, limit, |e| e.id);
        Ok(Response::new(pb::ListAccessLogResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::AccessLogEntry {
                    at: Some(timestamp(e.read_at)),
                    actor: e.actor,
                    what: e.what,
                    capture_id: e.capture_id.map(|id| id.to_string()).unwrap_or_default(),
                    purpose: e.purpose,
                })
                .collect(),
            next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ListReviewsResponse>, Status> {
        let reader = caller(&request)?.require_scope("review:write")?;
        let req = request.get_ref();
        let after = after_id(&req.page_token).ok_or(Error::InvalidPageToken)?;
        let limit = page_size(req.page_size);
        // The queue names people and what of their documents disagrees: each person listed has
        // the read on record, in its transaction.
        let mut tx = self.captures.pool.begin().await.map_err(Error::from)?;
        let rows = reviews::list(&mut tx, req.include_decided, after, limit + 1)
            .await
            .map_err(Error::from)?;
        let (rows, next) = cut(rows, limit, |r| r.id);
        let listed: Vec<Uuid> = rows.iter().map(|r| r.account_id).collect();
        store::log_reads(&mut tx, &listed, reader, "review", REVIEW_QUEUE_READ)
            .await
            .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        Ok(Response::new(pb::ListReviewsResponse {
            reviews: rows.into_iter().map(review_message).collect(),
            next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_review(
        &self,
        request: Request<pb::GetReviewRequest>,
    ) -> Result<Response<pb::GetReviewResponse>, Status> {
        let actor = caller(&request)?.require_scope("review:write")?.to_owned();
        let id = review_id(&request.get_ref().review_id)?;
        let reviews::Reviewed { row, zone, names } = reviews::review(&self.captures.pool, id)
            .await
            .map_err(Error::from)?
            .ok_or(Error::ReviewNotFound)?;
        // The reviewer reads what the zone says of a person: on record, like any read.
        let mut conn = self.captures.pool.acquire().await.map_err(Error::from)?;
        store::log_access(
            &mut conn,
            None,
            row.account_id,
            &actor,
            &format!("document review {id}"),
        )
        .await
        .map_err(Error::from)?;
        drop(conn);
        let captures = store::captures_of(&self.captures.pool, row.account_id)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(pb::GetReviewResponse {
            review: Some(review_message(row)),
            zone: zone.map(zone_message),
            captures: captures.iter().map(capture_summary).collect(),
            names: names.map(|(printed, agree)| {
                let (surname, given) = printed.split_once("<<").unwrap_or((&printed, ""));
                pb::NamesSignal {
                    surname: surname.replace('<', " "),
                    given_names: given.replace('<', " "),
                    agree,
                }
            }),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn decide_review(
        &self,
        request: Request<pb::DecideReviewRequest>,
    ) -> Result<Response<pb::DecideReviewResponse>, Status> {
        let actor = caller(&request)?.require_scope("review:write")?.to_owned();
        let req = request.get_ref();
        let id = review_id(&req.review_id)?;
        let decision = match req.decision.trim() {
            d @ ("approve" | "retake" | "reject") => d,
            _ => return Err(Error::InvalidDecision.into()),
        };
        let reason = note(&req.reason).map_err(|_| Error::ReasonRequired)?;
        match reviews::decide(&self.captures.pool, id, decision, reason, &actor)
            .await
            .map_err(Error::from)?
        {
            reviews::Decided::Done(row) => {
                tracing::info!(review = id, decision, actor, "document review decided");
                Ok(Response::new(pb::DecideReviewResponse {
                    review: Some(review_message(row)),
                }))
            }
            reviews::Decided::NotFound => Err(Error::ReviewNotFound.into()),
            reviews::Decided::AlreadyDecided => Err(Error::ReviewDecided.into()),
        }
    }
}
