//! Biometrics as the gateway calls it: the photos and the consent.

use super::{As, Calls};
use crate::error::ApiResult;
use axum::body::Bytes;
use examreg_proto::biometrics::v1::{
    self as bio, biometrics_service_client::BiometricsServiceClient, upload_capture_request::Part,
};
use tonic::transport::Channel;

#[derive(Clone)]
pub struct Biometrics {
    client: BiometricsServiceClient<Channel>,
    channel: Channel,
    calls: Calls,
}

/// A photo to upload: what it is, and its bytes as they arrived.
pub struct Upload {
    pub kind: bio::CaptureKind,
    pub content_type: String,
    pub document_type: bio::DocumentType,
    /// With a document photo: the account's identifier and citizenship, which the document
    /// check compares with the machine-readable zone.
    pub holder: Option<bio::Holder>,
    pub photo: Bytes,
}

/// How much of the photo goes in one stream message.
const CHUNK: usize = 64 * 1024;

impl Biometrics {
    pub(crate) fn new(channel: Channel, calls: Calls) -> Self {
        Self {
            client: BiometricsServiceClient::new(channel.clone()),
            channel,
            calls,
        }
    }

    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// Where the capture set of the applicant (or phone) whose token this is stands.
    pub async fn status(&self, token: &str) -> ApiResult<bio::GetCaptureStatusResponse> {
        let message = bio::GetCaptureStatusRequest::default();
        call!(self, As::Bearer(token), message => get_capture_status).await
    }

    /// Streams a photo to biometrics in chunks that share the body's buffer, so a retry
    /// sends the same bytes again without copying them.
    pub async fn upload(
        &self,
        token: &str,
        upload: Upload,
    ) -> ApiResult<bio::UploadCaptureResponse> {
        let mut parts = Vec::with_capacity(1 + upload.photo.len().div_ceil(CHUNK));
        parts.push(bio::UploadCaptureRequest {
            part: Some(Part::Header(bio::UploadHeader {
                kind: upload.kind.into(),
                content_type: upload.content_type,
                document_type: upload.document_type.into(),
                holder: upload.holder,
            })),
        });
        let mut offset = 0;
        while offset < upload.photo.len() {
            let end = (offset + CHUNK).min(upload.photo.len());
            parts.push(bio::UploadCaptureRequest {
                part: Some(Part::Chunk(upload.photo.slice(offset..end))),
            });
            offset = end;
        }
        self.calls
            .call(
                &self.client,
                As::Bearer(token),
                parts,
                |mut c, r| async move { c.upload_capture(r.map(futures::stream::iter)).await },
            )
            .await
    }

    /// Whether a preview frame shows the face placed (see biometrics' `CheckFrame`).
    pub async fn check_frame(
        &self,
        token: &str,
        frame: Bytes,
    ) -> ApiResult<bio::CheckFrameResponse> {
        let message = bio::CheckFrameRequest {
            frame: frame.to_vec(),
        };
        call!(self, As::Bearer(token), message => check_frame).await
    }

    /// A small JPEG of one of the applicant's own photos (`max_side` pixels at most), read the
    /// audited way: biometrics logs the read with its purpose.
    pub async fn preview(
        &self,
        token: &str,
        capture_id: &str,
        max_side: u32,
    ) -> ApiResult<Vec<u8>> {
        let message = bio::DownloadCaptureRequest {
            capture_id: capture_id.to_owned(),
            purpose: "the applicant's own preview in the cabinet".to_owned(),
            max_side,
        };
        self.calls
            .call(
                &self.client,
                As::Bearer(token),
                message,
                |mut c, r| async move {
                    let mut stream = c.download_capture(r).await?.into_inner();
                    let mut bytes = Vec::new();
                    while let Some(part) = stream.message().await? {
                        if let Some(bio::download_capture_response::Part::Chunk(chunk)) = part.part
                        {
                            bytes.extend_from_slice(&chunk);
                        }
                    }
                    Ok(tonic::Response::new(bytes))
                },
            )
            .await
    }

    pub async fn record_consent(
        &self,
        token: &str,
        consent: bio::RecordConsentRequest,
    ) -> ApiResult<bio::RecordConsentResponse> {
        call!(self, As::Bearer(token), consent => record_consent).await
    }

    /// Seals a complete set (idempotent); what is missing when it is not complete. The
    /// holder's birth date and sex as the profile has them are compared with the document's
    /// zone, and the names beside the zone's for a reviewer; `compare_only` records that
    /// and never seals.
    pub async fn seal(
        &self,
        token: &str,
        profile: &examreg_proto::profile::v1::Profile,
        sex: &str,
        compare_only: bool,
    ) -> ApiResult<bio::SealCapturesResponse> {
        let message = bio::SealCapturesRequest {
            birth_date: profile.birth_date.clone(),
            sex: sex.to_owned(),
            surname: profile.surname.clone(),
            given_name: profile.given_name.clone(),
            patronymic: profile.patronymic.clone(),
            compare_only,
        };
        call!(self, As::Bearer(token), message => seal_captures).await
    }
}
