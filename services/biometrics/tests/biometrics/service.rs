//! The biometrics service against the local stack's Postgres and Garage.

use examreg_biometrics::{Application, Config, envelope::MasterKeys, objects::Objects};
use examreg_kit::{
    auth::{ChangeAction, Claims, with_bearer},
    config::Secret,
    errors::reason_of,
    tokens::SigningKey,
};
use examreg_proto::biometrics::v1::{
    self as pb, biometrics_service_client::BiometricsServiceClient, upload_capture_request::Part,
};
use examreg_testkit as tk;
use std::time::Duration;
use tonic::{Code, transport::Channel};
use uuid::Uuid;

use tk::photos::{SELFIE, jpeg};

fn random_iin() -> examreg_domain::Iin {
    examreg_domain::Iin::parse(&tk::random_iin(examreg_domain::Sex::Female)).unwrap()
}

/// An ID-card holder as the gateway states it.
fn holder(iin: &examreg_domain::Iin) -> pb::Holder {
    pb::Holder {
        identifier: Some(pb::holder::Identifier::Iin(iin.as_str().into())),
        citizenship: "KZ".into(),
    }
}

fn passport_holder(number: &str) -> pb::Holder {
    pb::Holder {
        identifier: Some(pb::holder::Identifier::PassportNumber(number.into())),
        citizenship: "RU".into(),
    }
}
const MASTER: &str = "dev1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct TestApp {
    client: BiometricsServiceClient<Channel>,
    /// The channel to the service, for its other gRPC services (the retention's).
    channel: Channel,
    key: SigningKey,
    objects: Objects,
    database: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn spawn_at(
    s3_endpoint: String,
    prefix: Option<String>,
    database: Option<String>,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let key = SigningKey::generate();
    let (id, secret) = tk::s3_credentials();
    let database = match database {
        Some(url) => url,
        None => tk::fresh_database("biometrics").await,
    };
    let mut config = Config::defaults();
    config.tls = tk::tls();
    config.database_url = Secret::new(database.clone());
    config.s3.endpoint = s3_endpoint;
    config.s3.prefix = prefix.unwrap_or_else(|| tk::unique_prefix("captures").replace(':', "/"));
    config.s3.access_key_id = id;
    config.s3.secret_access_key = Secret::new(secret);
    config.master_keys = Some(MasterKeys::parse(MASTER).unwrap());
    config.documents.model = tk::mrz_model();
    adjust(&mut config);
    let objects = Objects::new(&config.s3);
    let app = Application::build(config, examreg_kit::auth::Keys::from(&key))
        .await
        .unwrap();
    let addr = app.addr();
    let (stop, stopped) = tk::stopper();
    tokio::spawn(app.run_until_stopped(stopped));
    let channel = examreg_kit::channel::lazy(&format!("https://{addr}"), &tk::tls()).unwrap();
    TestApp {
        client: BiometricsServiceClient::new(channel.clone()),
        channel,
        key,
        objects,
        database,
        _stop: stop,
    }
}

async fn spawn() -> TestApp {
    spawn_at(tk::s3_endpoint(), None, None, |_| {}).await
}

impl TestApp {
    fn user(&self, account: Uuid) -> String {
        self.key.sign(&Claims::access(
            account,
            Uuid::new_v4(),
            Duration::from_secs(600),
        ))
    }

    fn service(&self, scopes: &[&str]) -> String {
        tk::service_token(&self.key, "operator", scopes)
    }

    async fn upload(
        &self,
        token: &str,
        kind: pb::CaptureKind,
        bytes: &[u8],
    ) -> Result<pb::UploadCaptureResponse, tonic::Status> {
        let mut parts = vec![pb::UploadCaptureRequest {
            part: Some(Part::Header(pb::UploadHeader {
                kind: kind.into(),
                content_type: "image/jpeg".into(),
                document_type: 0,
                holder: (kind != pb::CaptureKind::Face).then(|| holder(&random_iin())),
            })),
        }];
        parts.extend(bytes.chunks(16 * 1024).map(|c| pb::UploadCaptureRequest {
            part: Some(Part::Chunk(c.to_vec().into())),
        }));
        let request = with_bearer(futures::stream::iter(parts), token).unwrap();
        Ok(self
            .client
            .clone()
            .upload_capture(request)
            .await?
            .into_inner())
    }

    async fn status(&self, token: &str) -> pb::GetCaptureStatusResponse {
        self.client
            .clone()
            .get_capture_status(with_bearer(pb::GetCaptureStatusRequest::default(), token).unwrap())
            .await
            .unwrap()
            .into_inner()
    }

    async fn download(
        &self,
        token: &str,
        capture: &str,
        purpose: &str,
    ) -> Result<Vec<u8>, tonic::Status> {
        self.download_sized(token, capture, purpose, 0).await
    }

    /// A photo, or its preview of `max_side` pixels (0: the photo as stored).
    async fn download_sized(
        &self,
        token: &str,
        capture: &str,
        purpose: &str,
        max_side: u32,
    ) -> Result<Vec<u8>, tonic::Status> {
        let request = with_bearer(
            pb::DownloadCaptureRequest {
                capture_id: capture.into(),
                purpose: purpose.into(),
                max_side,
            },
            token,
        )
        .unwrap();
        let mut stream = self
            .client
            .clone()
            .download_capture(request)
            .await?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(part) = stream.message().await? {
            if let Some(pb::download_capture_response::Part::Chunk(chunk)) = part.part {
                bytes.extend(chunk);
            }
        }
        Ok(bytes)
    }
}

#[tokio::test]
async fn a_complete_set_is_submitted_and_a_retake_leaves_one_capture_and_no_orphan() {
    let app = spawn().await;
    let me = app.user(Uuid::new_v4());
    let face = app
        .upload(&me, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap();
    assert!(face.accepted, "{face:?}");
    let retake = app
        .upload(&me, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap();
    assert!(retake.accepted);
    let status = app.status(&me).await;
    assert_eq!(status.captures.len(), 1);
    assert_eq!(status.captures[0].capture_id, retake.capture_id);
    assert_eq!(
        app.objects.list().await.unwrap().len(),
        1,
        "the replaced object is gone"
    );
    assert_eq!(
        status.missing,
        ["document_front", "document_back", "consent"]
    );

    let front = app
        .upload(
            &me,
            pb::CaptureKind::DocumentFront,
            &tk::photos::id_card(true),
        )
        .await
        .unwrap();
    assert!(front.accepted, "{front:?}");
    app.verified_back(&me).await;
    let consent = app.consent(&me).await.unwrap();
    assert!(consent.submitted);
    let status = app.status(&me).await;
    assert!(status.submitted && status.missing.is_empty());
}

#[tokio::test]
async fn a_refused_photo_changes_nothing() {
    let app = spawn().await;
    let me = app.user(Uuid::new_v4());
    let blurred = jpeg(&image::load_from_memory(SELFIE).unwrap().blur(4.0));
    let answer = app
        .upload(&me, pb::CaptureKind::Face, &blurred)
        .await
        .unwrap();
    assert!(!answer.accepted);
    assert_eq!(answer.reason, "blurred");
    assert!(answer.scores.unwrap().sharpness < 60.0);
    let front_without_photo = app
        .upload(
            &me,
            pb::CaptureKind::DocumentFront,
            &tk::photos::id_card(false),
        )
        .await
        .unwrap();
    assert_eq!(
        front_without_photo.reason, "no_face",
        "the ID card front must show the holder's photo"
    );
    assert!(app.status(&me).await.captures.is_empty());
    assert!(app.objects.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn garage_down_during_an_upload_is_unavailable_records_nothing_and_the_retry_succeeds() {
    let mut relay = tk::Relay::down(&tk::s3_addr()).await;
    let prefix = tk::unique_prefix("captures").replace(':', "/");
    let app = spawn_at(format!("http://{}", relay.addr), Some(prefix), None, |_| {}).await;
    let me = app.user(Uuid::new_v4());
    let err = app
        .upload(&me, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(app.status(&me).await.captures.is_empty());
    relay.up().await;
    let answer = app
        .upload(&me, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap();
    assert!(answer.accepted);
    assert_eq!(app.status(&me).await.captures.len(), 1);
}

#[tokio::test]
async fn images_are_read_only_with_the_scope_and_every_read_is_audited_without_metadata() {
    let app = spawn().await;
    let owner = Uuid::new_v4();
    let me = app.user(owner);
    // A selfie carrying GPS coordinates in an Exif segment.
    let mut with_gps = Vec::from(&SELFIE[..2]);
    let payload = b"Exif\0\0MM\0*\0\0\0\x08GPSLatitude=43.2389N;GPSLongitude=76.8897E";
    with_gps.extend_from_slice(&[0xFF, 0xE1]);
    with_gps.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    with_gps.extend_from_slice(payload);
    with_gps.extend_from_slice(&SELFIE[2..]);
    let capture = app
        .upload(&me, pb::CaptureKind::Face, &with_gps)
        .await
        .unwrap()
        .capture_id;

    // The applicant reads their own photo (the cabinet's preview, small); another applicant
    // is told there is no such photo, as for one that never existed.
    let preview = app
        .download_sized(&me, &capture, "the cabinet's preview", 160)
        .await
        .unwrap();
    let small = image::load_from_memory(&preview).unwrap();
    assert_eq!(
        small.width().max(small.height()),
        160,
        "{}x{}",
        small.width(),
        small.height()
    );
    let stranger = app.user(Uuid::new_v4());
    let missing = app
        .download(&stranger, &capture, "curious")
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let unknown = app
        .download(&stranger, &Uuid::new_v4().to_string(), "curious")
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (unknown.code(), unknown.message())
    );
    // A service without the scope reads no image.
    let narrow = app.service(&["biometrics:status"]);
    assert_eq!(
        app.download(&narrow, &capture, "curious")
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let reader = app.service(&["biometrics:read"]);
    assert_eq!(
        app.download(&reader, &capture, "")
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    let image = app
        .download(&reader, &capture, "identity check at the exam hall")
        .await
        .unwrap();
    assert!(image::load_from_memory(&image).is_ok());
    assert!(!image.windows(11).any(|w| w == b"GPSLatitude"));
    let stored = app.objects.list().await.unwrap();
    let raw = app.objects.get(&stored[0].0).await.unwrap();
    assert!(
        image::load_from_memory(&raw).is_err(),
        "Garage holds ciphertext"
    );

    let pool = sqlx::PgPool::connect(&app.database).await.unwrap();
    let audit: Vec<(String, String)> =
        sqlx::query_as("SELECT actor, purpose FROM access_log WHERE account_id = $1 ORDER BY id")
            .bind(owner)
            .fetch_all(&pool)
            .await
            .unwrap();
    // Every read is there, the applicant's own preview too; the stranger's attempt found
    // nothing to log.
    assert_eq!(
        audit,
        [
            ("applicant".to_owned(), "the cabinet's preview".to_owned()),
            (
                "operator".to_owned(),
                "identity check at the exam hall".to_owned()
            )
        ]
    );
}

#[tokio::test]
async fn one_applicant_cannot_see_or_change_anothers_captures() {
    let app = spawn().await;
    let alice = app.user(Uuid::new_v4());
    let bob = app.user(Uuid::new_v4());
    app.upload(&alice, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap();
    assert!(app.status(&bob).await.captures.is_empty());
    // Bob's upload lands in Bob's set, never replacing Alice's.
    app.upload(&bob, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap();
    assert_eq!(app.status(&alice).await.captures.len(), 1);
    assert_eq!(app.objects.list().await.unwrap().len(), 2);
    // Deleting is identity's, for an erasure it recorded: nobody else's.
    let err = app
        .client
        .clone()
        .delete_biometric_data(
            with_bearer(
                pb::DeleteBiometricDataRequest {
                    account_id: Uuid::new_v4().to_string(),
                },
                &bob,
            )
            .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn deleting_a_persons_biometric_data_removes_records_and_objects() {
    let app = spawn().await;
    let person = Uuid::new_v4();
    let token = app.user(person);
    app.upload(&token, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap();
    app.upload(
        &token,
        pb::CaptureKind::DocumentFront,
        &tk::photos::id_card(true),
    )
    .await
    .unwrap();
    // A client with the old admin scope is refused; identity's call for the erasure it
    // recorded goes through.
    let admin = app.service(&["biometrics:admin"]);
    let refused = app
        .client
        .clone()
        .delete_biometric_data(
            with_bearer(
                pb::DeleteBiometricDataRequest {
                    account_id: person.to_string(),
                },
                &admin,
            )
            .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(reason_of(&refused).reason, "change_not_recorded");
    let admin = tk::change_token(&app.key, person, ChangeAction::Erase, &[]);
    let deleted = app
        .client
        .clone()
        .delete_biometric_data(
            with_bearer(
                pb::DeleteBiometricDataRequest {
                    account_id: person.to_string(),
                },
                &admin,
            )
            .unwrap(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.captures_deleted, 2);
    assert!(app.status(&token).await.captures.is_empty());
    assert!(app.objects.list().await.unwrap().is_empty());
    // The person's token has not expired yet: an upload or a consent now recreates nothing.
    let late = app
        .upload(&token, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap_err();
    assert_eq!(
        (late.code(), reason_of(&late).reason.as_str()),
        (Code::NotFound, "account_not_found")
    );
    let consent = app.consent(&token).await.unwrap_err();
    assert_eq!(consent.code(), Code::NotFound);
    assert!(app.status(&token).await.captures.is_empty());
    assert!(app.objects.list().await.unwrap().is_empty());
}

impl TestApp {
    async fn consent(&self, token: &str) -> Result<pb::RecordConsentResponse, tonic::Status> {
        Ok(self
            .client
            .clone()
            .record_consent(
                with_bearer(
                    pb::RecordConsentRequest {
                        version: "2026-01".into(),
                        accepted: true,
                        sha256: "45777c14d90fa79dc6ce71ceb6f81cced62c929c472199547cfd939a54e954c6"
                            .into(),
                        language: "ru".into(),
                        ..Default::default()
                    },
                    token,
                )
                .unwrap(),
            )
            .await?
            .into_inner())
    }

    async fn seal(&self, token: &str) -> Result<pb::SealCapturesResponse, tonic::Status> {
        self.seal_claiming(token, "", "").await
    }

    /// Seals with the profile's birth date and sex of the holder.
    async fn seal_claiming(
        &self,
        token: &str,
        birth_date: &str,
        sex: &str,
    ) -> Result<pb::SealCapturesResponse, tonic::Status> {
        self.seal_with(
            token,
            pb::SealCapturesRequest {
                birth_date: birth_date.into(),
                sex: sex.into(),
                ..Default::default()
            },
        )
        .await
    }

    async fn seal_with(
        &self,
        token: &str,
        request: pb::SealCapturesRequest,
    ) -> Result<pb::SealCapturesResponse, tonic::Status> {
        Ok(self
            .client
            .clone()
            .seal_captures(with_bearer(request, token).unwrap())
            .await?
            .into_inner())
    }
}

#[tokio::test]
async fn a_sealed_set_refuses_retakes_document_switches_and_consent_and_keeps_its_photos() {
    let app = spawn().await;
    let me = app.user(Uuid::new_v4());
    assert!(
        app.upload(&me, pb::CaptureKind::Face, SELFIE)
            .await
            .unwrap()
            .accepted
    );
    // Incomplete: not sealed, and what is missing is named; uploads still go through.
    let early = app.seal(&me).await.unwrap();
    assert!(!early.sealed);
    assert_eq!(
        early.missing,
        ["document_front", "document_back", "consent"]
    );
    let front = tk::photos::id_card(true);
    assert!(
        app.upload(&me, pb::CaptureKind::DocumentFront, &front)
            .await
            .unwrap()
            .accepted
    );
    app.verified_back(&me).await;
    app.consent(&me).await.unwrap();
    let sealed = app.seal(&me).await.unwrap();
    assert!(sealed.sealed && sealed.missing.is_empty(), "{sealed:?}");
    assert!(sealed.sealed_at.is_some());
    // Sealing again answers the same.
    assert_eq!(app.seal(&me).await.unwrap().sealed_at, sealed.sealed_at);
    let before = app.status(&me).await;
    let objects = app.objects.list().await.unwrap().len();

    let refused = |status: tonic::Status| {
        assert_eq!(
            (status.code(), reason_of(&status).reason),
            (
                Code::FailedPrecondition,
                "registration_completed".to_owned()
            )
        );
    };
    refused(
        app.upload(&me, pb::CaptureKind::Face, SELFIE)
            .await
            .unwrap_err(),
    );
    refused(app.consent(&me).await.unwrap_err());
    // Switching to a passport would drop the back: refused too.
    let mut parts = vec![pb::UploadCaptureRequest {
        part: Some(Part::Header(pb::UploadHeader {
            kind: pb::CaptureKind::DocumentFront.into(),
            content_type: "image/jpeg".into(),
            document_type: pb::DocumentType::Passport.into(),
            holder: Some(passport_holder("751234567")),
        })),
    }];
    parts.push(pb::UploadCaptureRequest {
        part: Some(Part::Chunk(tk::photos::id_card(true).into())),
    });
    let switch = app
        .client
        .clone()
        .upload_capture(with_bearer(futures::stream::iter(parts), &me).unwrap())
        .await
        .unwrap_err();
    refused(switch);
    let after = app.status(&me).await;
    assert_eq!(after.captures, before.captures);
    assert_eq!(after.document_type, before.document_type);
    // The objects of the refused uploads were removed again.
    assert_eq!(app.objects.list().await.unwrap().len(), objects);
}

#[tokio::test]
async fn the_sweeper_deletes_only_old_unreferenced_objects() {
    let app = spawn().await;
    let me = app.user(Uuid::new_v4());
    app.upload(&me, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap();
    // An object whose record was never written (a crash between the two steps).
    let orphan = app.objects.new_key();
    app.objects
        .put(&orphan, b"sealed bytes".to_vec())
        .await
        .unwrap();
    let config = Config::defaults();
    let service = examreg_biometrics::captures::Captures {
        pool: sqlx::PgPool::connect(&app.database).await.unwrap(),
        objects: app.objects.clone(),
        keys: MasterKeys::parse(MASTER).unwrap(),
        thresholds: std::sync::Arc::new(config.thresholds),
        gate: examreg_kit::work::Gate::new("photo_checks", 1, 4, Duration::from_secs(1)),
        reads: examreg_kit::work::Gate::new("photo_reads", 1, 4, Duration::from_secs(1)),
    };
    // Young objects are left alone: their upload may still be writing its record.
    assert_eq!(service.sweep(Duration::from_secs(600)).await.unwrap(), 0);
    // S3 times are whole seconds: past the next one, a sweep without grace sees it old.
    // (Whether a sweep within the same second spares it depends on when the second ticks,
    // so nothing is asserted about that.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(service.sweep(Duration::ZERO).await.unwrap(), 1);
    let left: Vec<String> = app
        .objects
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0], orphan);
    assert_eq!(app.status(&me).await.captures.len(), 1);
}

/// This process's peak resident memory (the service runs in it), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// A valid PNG of 7999 × 7999 16-bit RGBA pixels, all black: 488 MiB decoded, a few hundred
/// KB on the wire. Written row by row, so making it costs no frame of memory.
fn png_bomb() -> Vec<u8> {
    let side = 7999u32;
    // The encoder wants to own its writer; this one shares its bytes.
    let out = tk::logs::Sink::default();
    let mut encoder = png::Encoder::new(out.clone(), side, side);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Sixteen);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder
        .write_header()
        .unwrap()
        .into_stream_writer()
        .unwrap();
    let row = vec![0u8; side as usize * 8];
    for _ in 0..side {
        std::io::Write::write_all(&mut writer, &row).unwrap();
    }
    writer.finish().unwrap();
    out.bytes()
}

#[tokio::test]
async fn a_small_png_declaring_a_huge_frame_is_refused_without_allocating_it() {
    let app = spawn().await;
    let bomb = tokio::task::spawn_blocking(png_bomb).await.unwrap();
    println!("PNG bomb: {} bytes", bomb.len());
    assert!(bomb.len() < 2 * 1024 * 1024, "{} bytes", bomb.len());
    let token = app.user(Uuid::new_v4());
    // Warm up the path (connections, the pool, the detector) with a photo that is kept, then
    // measure from here: "5" resets the peak to what is resident now.
    assert!(
        app.upload(&token, pb::CaptureKind::Face, SELFIE)
            .await
            .unwrap()
            .accepted
    );
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_rss();
    let answer = app
        .upload(&token, pb::CaptureKind::Face, &bomb)
        .await
        .unwrap();
    let grown = peak_rss().saturating_sub(before);
    println!("peak RSS grew by {} KiB", grown / 1024);
    assert!(!answer.accepted);
    assert_eq!(answer.reason, "too_large");
    assert!(grown < 64 * 1024 * 1024, "peak RSS grew by {grown} bytes");
    // And the selfie kept before is still the current one.
    let status = app.status(&token).await;
    assert_eq!(status.captures.len(), 1);
}

impl TestApp {
    /// A complete, sealed set of a new applicant; the applicant's token.
    async fn sealed_set(&self, account: Uuid) -> String {
        let me = self.user(account);
        for (kind, photo) in [
            (pb::CaptureKind::Face, SELFIE.to_vec()),
            (pb::CaptureKind::DocumentFront, tk::photos::id_card(true)),
        ] {
            assert!(self.upload(&me, kind, &photo).await.unwrap().accepted);
        }
        self.verified_back(&me).await;
        self.consent(&me).await.unwrap();
        assert!(self.seal(&me).await.unwrap().sealed);
        me
    }

    async fn reopen(
        &self,
        token: &str,
        account: Uuid,
        steps: &[&str],
    ) -> Result<Vec<String>, tonic::Status> {
        let request = pb::ReopenCapturesRequest {
            account_id: account.to_string(),
            steps: steps.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        Ok(self
            .client
            .clone()
            .reopen_captures(with_bearer(request, token).unwrap())
            .await?
            .into_inner()
            .missing)
    }

    async fn status_for(
        &self,
        token: &str,
        account: Uuid,
        purpose: &str,
    ) -> Result<pb::GetCaptureStatusResponse, tonic::Status> {
        let request = pb::GetCaptureStatusRequest {
            account_id: account.to_string(),
            purpose: purpose.into(),
        };
        Ok(self
            .client
            .clone()
            .get_capture_status(with_bearer(request, token).unwrap())
            .await?
            .into_inner())
    }

    async fn access_log(&self, account: Uuid) -> Vec<pb::AccessLogEntry> {
        let auditor = tk::service_token(&self.key, "dpo", &["audit:read"]);
        let request = pb::ListAccessLogRequest {
            account_id: account.to_string(),
            ..Default::default()
        };
        self.client
            .clone()
            .list_access_log(with_bearer(request, &auditor).unwrap())
            .await
            .unwrap()
            .into_inner()
            .entries
    }
}

#[tokio::test]
async fn a_reopened_step_is_redone_despite_the_seal_and_the_rest_stays_final() {
    let app = spawn().await;
    let account = Uuid::new_v4();
    let me = app.sealed_set(account).await;
    let sealed_at = app.status(&me).await.sealed_at;
    assert!(sealed_at.is_some());
    // Only identity, for a reopening it recorded: a client with every scope, identity's own
    // service token, a change of another person or of other steps are refused.
    let not_recorded = |status: tonic::Status| {
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(reason_of(&status).reason, "change_not_recorded");
    };
    let reopening = |account: Uuid, steps: &[&str]| {
        tk::change_token(&app.key, account, ChangeAction::Reopen, steps)
    };
    not_recorded(app.reopen(&me, account, &["face"]).await.unwrap_err());
    let support = tk::service_token(&app.key, "identity", &["support:write", "biometrics:admin"]);
    not_recorded(app.reopen(&support, account, &["face"]).await.unwrap_err());
    let other = reopening(Uuid::new_v4(), &["face"]);
    not_recorded(app.reopen(&other, account, &["face"]).await.unwrap_err());
    let face_only = reopening(account, &["face"]);
    not_recorded(
        app.reopen(&face_only, account, &["consent"])
            .await
            .unwrap_err(),
    );
    let erasure = tk::change_token(&app.key, account, ChangeAction::Erase, &[]);
    not_recorded(app.reopen(&erasure, account, &["face"]).await.unwrap_err());
    assert!(app.status(&me).await.redo.is_empty(), "nothing reopened");
    let err = app
        .reopen(&reopening(account, &["name"]), account, &["name"])
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "invalid_step");
    // A person without photos has nothing to reopen: the steps are missing already.
    let nobody = Uuid::new_v4();
    let missing = app
        .reopen(&reopening(nobody, &["face"]), nobody, &["face"])
        .await
        .unwrap();
    assert!(missing.contains(&"face".to_owned()), "{missing:?}");

    assert_eq!(
        app.reopen(&face_only, account, &["face"]).await.unwrap(),
        ["face"]
    );
    // A repeat of the same change (identity retrying) changes nothing more; the change is
    // recorded once, with who asked for it.
    assert_eq!(
        app.reopen(&face_only, account, &["face"]).await.unwrap(),
        ["face"]
    );
    let pool = sqlx::PgPool::connect(&app.database).await.unwrap();
    let recorded: Vec<(String, Vec<String>, String)> =
        sqlx::query_as("SELECT action, steps, actor FROM changes WHERE account_id = $1")
            .bind(account)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        recorded,
        [(
            "reopen".to_owned(),
            vec!["face".to_owned()],
            "support-agent".to_owned()
        )]
    );
    let status = app.status(&me).await;
    assert_eq!(
        (status.missing.clone(), status.redo.clone()),
        (vec!["face".to_owned()], vec!["face".to_owned()])
    );
    assert!(!status.submitted);
    let early = app.seal(&me).await.unwrap();
    assert!(!early.sealed);
    assert_eq!(early.missing, ["face"]);
    // Only the reopened step opens: the document and the consent stay final.
    let refused = |status: tonic::Status| {
        assert_eq!(reason_of(&status).reason, "registration_completed");
    };
    refused(
        app.upload(
            &me,
            pb::CaptureKind::DocumentFront,
            &tk::photos::id_card(true),
        )
        .await
        .unwrap_err(),
    );
    refused(app.consent(&me).await.unwrap_err());
    let retake = app
        .upload(&me, pb::CaptureKind::Face, SELFIE)
        .await
        .unwrap();
    assert!(retake.accepted);
    assert!(retake.missing.is_empty());
    let status = app.status(&me).await;
    assert!(status.redo.is_empty() && status.missing.is_empty() && status.submitted);
    let resealed = app.seal(&me).await.unwrap();
    assert!(resealed.sealed);
    assert_eq!(
        resealed.sealed_at, sealed_at,
        "the seal keeps its first time"
    );
    // Redone once: final again.
    refused(
        app.upload(&me, pb::CaptureKind::Face, SELFIE)
            .await
            .unwrap_err(),
    );
    // One capture per kind, and no orphan left behind by the retake.
    assert_eq!(app.status(&me).await.captures.len(), 3);
    assert_eq!(app.objects.list().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_services_status_read_needs_a_purpose_and_is_in_the_access_log_with_the_downloads() {
    let app = spawn().await;
    let account = Uuid::new_v4();
    let me = app.sealed_set(account).await;
    let checkin = tk::service_token(
        &app.key,
        "check-in",
        &["biometrics:status", "biometrics:read"],
    );
    let err = app.status_for(&checkin, account, " ").await.unwrap_err();
    assert_eq!(reason_of(&err).reason, "purpose_required");
    let err = app
        .status_for(&app.service(&["biometrics:read"]), account, "x")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let status = app
        .status_for(&checkin, account, "check-in at hall 3")
        .await
        .unwrap();
    assert!(status.consent_given && status.consent_accepted_at.is_some());
    let face = status
        .captures
        .iter()
        .find(|c| c.kind == i32::from(pb::CaptureKind::Face))
        .unwrap()
        .capture_id
        .clone();
    app.download(&checkin, &face, "check-in at hall 3")
        .await
        .unwrap();
    // The applicant's own read is not logged.
    app.status(&me).await;
    // (The document check's own read of the back, logged as `biometrics` whenever its worker
    // gets to it, is shown in a test of its own.)
    let log: Vec<(String, String, String, String)> = app
        .access_log(account)
        .await
        .into_iter()
        .filter(|e| e.actor != "biometrics")
        .map(|e| (e.actor, e.what, e.capture_id, e.purpose))
        .collect();
    assert_eq!(
        log,
        [
            (
                "check-in".into(),
                "status".into(),
                String::new(),
                "check-in at hall 3".into()
            ),
            (
                "check-in".into(),
                "image".into(),
                face,
                "check-in at hall 3".into()
            ),
        ]
    );
    let request = pb::ListAccessLogRequest {
        account_id: account.to_string(),
        ..Default::default()
    };
    let err = app
        .client
        .clone()
        .list_access_log(with_bearer(request, &checkin).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

impl TestApp {
    async fn upload_as(
        &self,
        token: &str,
        kind: pb::CaptureKind,
        document_type: pb::DocumentType,
        holder: pb::Holder,
        bytes: &[u8],
    ) -> pb::UploadCaptureResponse {
        let mut parts = vec![pb::UploadCaptureRequest {
            part: Some(Part::Header(pb::UploadHeader {
                kind: kind.into(),
                content_type: "image/jpeg".into(),
                document_type: document_type.into(),
                holder: Some(holder),
            })),
        }];
        parts.extend(bytes.chunks(16 * 1024).map(|c| pb::UploadCaptureRequest {
            part: Some(Part::Chunk(c.to_vec().into())),
        }));
        self.client
            .clone()
            .upload_capture(with_bearer(futures::stream::iter(parts), token).unwrap())
            .await
            .unwrap()
            .into_inner()
    }

    /// Uploads the back of the holder's own card and waits for its check to verify it.
    /// (A back the reader missed is photographed again, as its holder would be asked to.)
    async fn verified_back(&self, token: &str) {
        let iin = random_iin();
        for n in 0..3 {
            let shot = match n {
                0 => tk::cards::Shot::CLEAN,
                n => tk::cards::Shot::nth(n),
            };
            let card = tk::cards::id_card_back(&iin, "340101", shot);
            let stored = self
                .upload_as(
                    token,
                    pb::CaptureKind::DocumentBack,
                    pb::DocumentType::IdCard,
                    holder(&iin),
                    &card,
                )
                .await;
            assert!(stored.accepted, "{}", stored.reason);
            let check = self.document_check(token).await.expect("a check");
            if check.state != "unreadable" {
                assert_eq!(
                    (check.state.as_str(), check.outcome.as_str()),
                    ("read", "verified")
                );
                return;
            }
        }
        panic!("three shots of the back were not read");
    }

    /// The document check once it is no longer pending (the reader runs in the background).
    async fn document_check(&self, token: &str) -> Option<pb::DocumentCheck> {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let check = self.status(token).await.document_check;
            match &check {
                Some(c) if c.state == "pending" && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Some(_) | None => return check,
            }
        }
    }
}

#[tokio::test]
async fn a_card_back_is_read_in_the_background_and_a_retake_reads_again() {
    let app = spawn().await;
    let account = Uuid::now_v7();
    let me = app.user(account);
    let iin = random_iin();
    let doc = |kind, bytes: Vec<u8>| {
        let app = &app;
        let me = me.clone();
        let holder = holder(&iin);
        async move {
            app.upload_as(&me, kind, pb::DocumentType::IdCard, holder, &bytes)
                .await
        }
    };
    // The front bears no zone: nothing to read yet.
    let front = doc(pb::CaptureKind::DocumentFront, tk::photos::id_card(true)).await;
    assert!(front.accepted, "{}", front.reason);
    assert_eq!(app.status(&me).await.document_check, None);
    let back = tk::cards::id_card_back(&iin, "340101", tk::cards::Shot::nth(7));
    let stored = doc(pb::CaptureKind::DocumentBack, back).await;
    assert!(stored.accepted, "{}", stored.reason);
    let check = app.document_check(&me).await.expect("a check");
    assert_eq!(check.state, "read", "{check:?}");
    assert_eq!(check.format, "td1");
    assert_eq!(check.outcome, "verified");
    assert!(check.mismatches.is_empty());
    // The worker's read of the photo is in the access log, with its purpose.
    let log = sqlx::query!(
        "SELECT actor, purpose FROM access_log WHERE account_id = $1 AND what = 'image'",
        account
    )
    .fetch_all(&sqlx::PgPool::connect(&app.database).await.unwrap())
    .await
    .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].actor, "biometrics");
    assert!(log[0].purpose.contains("machine-readable zone"));
    // A retake without a zone is read again and asks for another.
    let retake = doc(pb::CaptureKind::DocumentBack, tk::photos::id_card(false)).await;
    assert!(retake.accepted, "{}", retake.reason);
    let check = app.document_check(&me).await.expect("a check");
    assert_eq!(check.state, "unreadable");
    assert_eq!(check.reason, "zone_not_found");
    assert_eq!(check.outcome, "");
}

#[tokio::test]
async fn another_iin_is_held_for_review_and_an_expired_card_is_refused() {
    let app = spawn().await;
    let squatter = app.user(Uuid::now_v7());
    let claimed = random_iin();
    let holders = tk::cards::id_card_back(&random_iin(), "340101", tk::cards::Shot::nth(11));
    let stored = app
        .upload_as(
            &squatter,
            pb::CaptureKind::DocumentBack,
            pb::DocumentType::IdCard,
            holder(&claimed),
            &holders,
        )
        .await;
    assert!(stored.accepted, "{}", stored.reason);
    let check = app.document_check(&squatter).await.expect("a check");
    assert_eq!(check.state, "read");
    assert_eq!(check.outcome, "review");
    assert!(check.mismatches.contains(&"iin".to_string()), "{check:?}");
    let me = app.user(Uuid::now_v7());
    let iin = random_iin();
    let expired = tk::cards::id_card_back(&iin, "250101", tk::cards::Shot::nth(12));
    app.upload_as(
        &me,
        pb::CaptureKind::DocumentBack,
        pb::DocumentType::IdCard,
        holder(&iin),
        &expired,
    )
    .await;
    let check = app.document_check(&me).await.expect("a check");
    assert_eq!(
        (check.state.as_str(), check.outcome.as_str()),
        ("read", "expired")
    );
}

#[tokio::test]
async fn a_document_photo_without_its_holder_is_refused_and_changes_nothing() {
    let app = spawn().await;
    let me = app.user(Uuid::now_v7());
    for holder in [
        None,
        Some(pb::Holder {
            identifier: Some(pb::holder::Identifier::Iin("123456789012".into())),
            citizenship: "KZ".into(),
        }),
        Some(pb::Holder {
            identifier: Some(pb::holder::Identifier::Iin(random_iin().as_str().into())),
            citizenship: "QQ".into(),
        }),
    ] {
        let parts = vec![
            pb::UploadCaptureRequest {
                part: Some(Part::Header(pb::UploadHeader {
                    kind: pb::CaptureKind::DocumentBack.into(),
                    content_type: "image/jpeg".into(),
                    document_type: 0,
                    holder,
                })),
            },
            pb::UploadCaptureRequest {
                part: Some(Part::Chunk(tk::photos::id_card(false).into())),
            },
        ];
        let err = app
            .client
            .clone()
            .upload_capture(with_bearer(futures::stream::iter(parts), &me).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(reason_of(&err).reason, "invalid_holder");
    }
    assert!(app.status(&me).await.captures.is_empty());
}

#[tokio::test]
async fn a_passport_page_is_read_and_a_switch_to_an_id_card_ends_its_check() {
    let app = spawn().await;
    let me = app.user(Uuid::now_v7());
    let page = tk::cards::passport_page("751234567", "RUS", "310909", tk::cards::Shot::nth(3));
    let stored = app
        .upload_as(
            &me,
            pb::CaptureKind::DocumentFront,
            pb::DocumentType::Passport,
            passport_holder("751234567"),
            &page,
        )
        .await;
    assert!(stored.accepted, "{}", stored.reason);
    let check = app.document_check(&me).await.expect("a check");
    assert_eq!(
        (check.state.as_str(), check.format.as_str()),
        ("read", "td3")
    );
    assert_eq!(check.outcome, "verified", "{check:?}");
    // The front of an ID card bears no zone: the passport's reading goes with the page.
    let front = app
        .upload_as(
            &me,
            pb::CaptureKind::DocumentFront,
            pb::DocumentType::IdCard,
            holder(&random_iin()),
            &tk::photos::id_card(true),
        )
        .await;
    assert!(front.accepted, "{}", front.reason);
    assert_eq!(app.status(&me).await.document_check, None);
}

impl TestApp {
    async fn reviews(&self, token: &str, include_decided: bool) -> Vec<pb::Review> {
        let request = pb::ListReviewsRequest {
            include_decided,
            ..Default::default()
        };
        self.client
            .clone()
            .list_reviews(with_bearer(request, token).unwrap())
            .await
            .unwrap()
            .into_inner()
            .reviews
    }

    async fn decide(
        &self,
        token: &str,
        review: &str,
        decision: &str,
        reason: &str,
    ) -> Result<pb::Review, tonic::Status> {
        let request = pb::DecideReviewRequest {
            review_id: review.into(),
            decision: decision.into(),
            reason: reason.into(),
        };
        Ok(self
            .client
            .clone()
            .decide_review(with_bearer(request, token).unwrap())
            .await?
            .into_inner()
            .review
            .unwrap())
    }
}

#[tokio::test]
async fn a_mismatch_waits_in_the_review_queue_and_a_persons_decision_is_on_record() {
    let app = spawn().await;
    let account = Uuid::now_v7();
    let me = app.user(account);
    let claimed = random_iin();
    let card = |n| tk::cards::id_card_back(&random_iin(), "340101", tk::cards::Shot::nth(n));
    let upload = |bytes: Vec<u8>| {
        let (app, me, holder) = (&app, me.clone(), holder(&claimed));
        async move {
            app.upload_as(
                &me,
                pb::CaptureKind::DocumentBack,
                pb::DocumentType::IdCard,
                holder,
                &bytes,
            )
            .await
        }
    };
    upload(card(21)).await;
    assert_eq!(app.document_check(&me).await.unwrap().outcome, "review");
    let reviewer = tk::service_token(
        &app.key,
        "review-desk",
        &["review:write", "biometrics:read"],
    );
    // The queue is the desk's only.
    let err = app
        .client
        .clone()
        .list_reviews(
            with_bearer(
                pb::ListReviewsRequest::default(),
                &app.service(&["biometrics:read"]),
            )
            .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let open: Vec<pb::Review> = app
        .reviews(&reviewer, false)
        .await
        .into_iter()
        .filter(|r| r.account_id == account.to_string())
        .collect();
    assert_eq!(open.len(), 1);
    assert!(open[0].mismatches.contains(&"iin".to_string()), "{open:?}");
    // A new photo supersedes the open review; its own reading opens the next.
    upload(card(22)).await;
    assert_eq!(app.document_check(&me).await.unwrap().outcome, "review");
    let all: Vec<pb::Review> = app
        .reviews(&reviewer, true)
        .await
        .into_iter()
        .filter(|r| r.account_id == account.to_string())
        .collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].decision, "superseded");
    assert_eq!(all[1].decision, "");
    let review = all[1].review_id.clone();
    // Listing the queue is a read of the people in it, and so is the officer's read of the
    // log: each is on record (the next read shows the one before).
    app.access_log(account).await;
    let log = app.access_log(account).await;
    let reads: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.actor.as_str(), e.what.as_str()))
        .collect();
    assert!(reads.contains(&("review-desk", "review")), "{reads:?}");
    assert!(reads.contains(&("dpo", "access_log")), "{reads:?}");
    // What the zone says, and the photos to download; the read is on record.
    let got = app.get_review(&reviewer, &review).await;
    let zone = got.zone.unwrap();
    assert_eq!(zone.format, "td1");
    assert_eq!(zone.issuing_state, "KAZ");
    assert_ne!(&zone.optional_data[..12], claimed.as_str());
    assert_eq!(got.captures.len(), 1);
    // Bad decisions change nothing.
    let err = app
        .decide(&reviewer, &review, "maybe", "x")
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "invalid_decision");
    let err = app
        .decide(&reviewer, &review, "approve", " ")
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "reason_required");
    let err = app
        .decide(&reviewer, "999999999", "approve", "x")
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "review_not_found");
    assert_eq!(app.document_check(&me).await.unwrap().decision, "");
    let decided = app
        .decide(&reviewer, &review, "reject", "the card is another person's")
        .await
        .unwrap();
    assert_eq!(decided.decision, "reject");
    assert_eq!(decided.decided_by, "review-desk");
    let check = app.document_check(&me).await.unwrap();
    assert_eq!(
        (check.decision.as_str(), check.decision_reason.as_str()),
        ("reject", "the card is another person's")
    );
    let err = app
        .decide(&reviewer, &review, "approve", "changed my mind")
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "review_decided");
    let log = app.access_log(account).await;
    assert!(
        log.iter()
            .any(|e| e.actor == "review-desk" && e.purpose == format!("document review {review}")),
        "{log:?}"
    );
}

impl TestApp {
    /// A selfie, an ID card's front and the consent: everything but the back.
    async fn all_but_the_back(&self, token: &str) {
        for (kind, photo) in [
            (pb::CaptureKind::Face, SELFIE.to_vec()),
            (pb::CaptureKind::DocumentFront, tk::photos::id_card(true)),
        ] {
            assert!(self.upload(token, kind, &photo).await.unwrap().accepted);
        }
        self.consent(token).await.unwrap();
    }

    /// The open review of `account`'s document.
    /// A review as its reviewer reads it (the zone, the names, the photos).
    async fn get_review(&self, reviewer: &str, review: &str) -> pb::GetReviewResponse {
        let request = pb::GetReviewRequest {
            review_id: review.to_owned(),
        };
        self.client
            .clone()
            .get_review(with_bearer(request, reviewer).unwrap())
            .await
            .unwrap()
            .into_inner()
    }

    async fn open_review(&self, reviewer: &str, account: Uuid) -> String {
        self.reviews(reviewer, false)
            .await
            .into_iter()
            .find(|r| r.account_id == account.to_string())
            .expect("an open review")
            .review_id
    }
}

#[tokio::test]
async fn the_seal_waits_for_a_person_when_the_card_disagrees_and_their_approval_lets_it_through() {
    let app = spawn().await;
    let account = Uuid::now_v7();
    let me = app.user(account);
    app.all_but_the_back(&me).await;
    // Somebody else's card: every photo is there, but the set waits for a person.
    let claimed = random_iin();
    let card = tk::cards::id_card_back(&random_iin(), "340101", tk::cards::Shot::CLEAN);
    app.upload_as(
        &me,
        pb::CaptureKind::DocumentBack,
        pb::DocumentType::IdCard,
        holder(&claimed),
        &card,
    )
    .await;
    assert_eq!(app.document_check(&me).await.unwrap().outcome, "review");
    assert!(app.status(&me).await.missing.is_empty());
    let held = app.seal(&me).await.unwrap();
    assert!(!held.sealed && held.missing.is_empty(), "{held:?}");
    assert_eq!(held.document_check.unwrap().outcome, "review");
    assert!(app.status(&me).await.sealed_at.is_none());
    // The queue the reviewers' alert watches counts it (this test's database holds only it).
    let pool = sqlx::PgPool::connect(&app.database).await.unwrap();
    let (open, oldest) = examreg_biometrics::reviews::open_depth(&pool)
        .await
        .unwrap();
    assert_eq!(open, 1);
    assert!((0.0..600.0).contains(&oldest), "{oldest}");
    // A person's rejection holds it still; a new photo's review, approved, lets it through.
    let reviewer = tk::service_token(&app.key, "review-desk", &["review:write"]);
    app.decide(
        &reviewer,
        &app.open_review(&reviewer, account).await,
        "reject",
        "not theirs",
    )
    .await
    .unwrap();
    let held = app.seal(&me).await.unwrap();
    assert!(!held.sealed);
    assert_eq!(held.document_check.unwrap().decision, "reject");
    let card = tk::cards::id_card_back(&random_iin(), "340101", tk::cards::Shot::nth(3));
    app.upload_as(
        &me,
        pb::CaptureKind::DocumentBack,
        pb::DocumentType::IdCard,
        holder(&claimed),
        &card,
    )
    .await;
    assert_eq!(app.document_check(&me).await.unwrap().outcome, "review");
    let review = app.open_review(&reviewer, account).await;
    app.decide(&reviewer, &review, "approve", "a renamed card")
        .await
        .unwrap();
    let sealed = app.seal(&me).await.unwrap();
    assert!(sealed.sealed, "{sealed:?}");
    let (open, oldest) = examreg_biometrics::reviews::open_depth(&pool)
        .await
        .unwrap();
    assert_eq!((open, oldest), (0, 0.0));
}

#[tokio::test]
async fn an_unreadable_or_expired_back_is_a_step_to_redo_and_a_queued_check_holds_the_seal() {
    let app = spawn().await;
    let account = Uuid::now_v7();
    let me = app.user(account);
    app.all_but_the_back(&me).await;
    let iin = random_iin();
    let back = |bytes: Vec<u8>| {
        let (app, me, holder) = (&app, me.clone(), holder(&iin));
        async move {
            let stored = app
                .upload_as(
                    &me,
                    pb::CaptureKind::DocumentBack,
                    pb::DocumentType::IdCard,
                    holder,
                    &bytes,
                )
                .await;
            assert!(stored.accepted, "{}", stored.reason);
            app.document_check(&me).await.unwrap()
        }
    };
    // No zone on it, then an expired card: the back is missing again, and the seal says so.
    for (photo, state) in [
        (tk::photos::id_card(false), "unreadable"),
        (
            tk::cards::id_card_back(&iin, "250101", tk::cards::Shot::CLEAN),
            "read",
        ),
    ] {
        let check = back(photo).await;
        assert_eq!(check.state, state, "{check:?}");
        assert_eq!(app.status(&me).await.missing, ["document_back"]);
        let seal = app.seal(&me).await.unwrap();
        assert!(!seal.sealed && seal.document_check.is_none(), "{seal:?}");
        assert_eq!(seal.missing, ["document_back"]);
    }
    // The holder's valid card, its check still in the queue (as in a rush): held.
    let check = back(tk::cards::id_card_back(
        &iin,
        "340101",
        tk::cards::Shot::CLEAN,
    ))
    .await;
    assert_eq!(check.outcome, "verified");
    let db = sqlx::PgPool::connect(&app.database).await.unwrap();
    sqlx::query(
        "UPDATE document_checks SET state = 'pending', outcome = NULL, zone = NULL,
           not_before = now() + interval '1 hour' WHERE account_id = $1",
    )
    .bind(account)
    .execute(&db)
    .await
    .unwrap();
    let held = app.seal(&me).await.unwrap();
    assert!(!held.sealed && held.missing.is_empty(), "{held:?}");
    assert_eq!(held.document_check.unwrap().state, "pending");
    // Read at last: sealed.
    sqlx::query("UPDATE document_checks SET not_before = now() WHERE account_id = $1")
        .bind(account)
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("SELECT pg_notify('document_checks', '')")
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(app.document_check(&me).await.unwrap().outcome, "verified");
    assert!(app.seal(&me).await.unwrap().sealed);
}

#[tokio::test]
async fn a_passports_birth_date_and_sex_must_be_the_profiles_or_a_person_looks() {
    let app = spawn().await;
    // Two holders of the same page (born 21 May 2006, male): one typed it right, one not.
    let page = tk::cards::passport_page("751234567", "RUS", "340101", tk::cards::Shot::nth(3));
    let set = |account: Uuid| {
        let (app, page) = (&app, page.clone());
        async move {
            let me = app.user(account);
            assert!(
                app.upload(&me, pb::CaptureKind::Face, SELFIE)
                    .await
                    .unwrap()
                    .accepted
            );
            let stored = app
                .upload_as(
                    &me,
                    pb::CaptureKind::DocumentFront,
                    pb::DocumentType::Passport,
                    passport_holder("751234567"),
                    &page,
                )
                .await;
            assert!(stored.accepted, "{}", stored.reason);
            app.consent(&me).await.unwrap();
            assert_eq!(app.document_check(&me).await.unwrap().outcome, "verified");
            me
        }
    };
    let right = set(Uuid::now_v7()).await;
    // A claim that is not a date or a sex is refused and changes nothing.
    let err = app
        .seal_claiming(&right, "21.05.2006", "male")
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "invalid_holder");
    let err = app
        .seal_claiming(&right, "2006-05-21", "m")
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "invalid_holder");
    assert!(app.status(&right).await.sealed_at.is_none());
    let named = |birth: &str, sex: &str, surname: &str, given: &str| pb::SealCapturesRequest {
        birth_date: birth.into(),
        sex: sex.into(),
        surname: surname.into(),
        given_name: given.into(),
        ..Default::default()
    };
    // A name longer than the profile takes is not a claim either.
    let err = app
        .seal_with(
            &right,
            named("2006-05-21", "male", &"И".repeat(101), "Пётр"),
        )
        .await
        .unwrap_err();
    assert_eq!(reason_of(&err).reason, "invalid_holder");
    let sealed = app
        .seal_with(&right, named("2006-05-21", "male", "Иванов", "Пётр"))
        .await
        .unwrap();
    assert!(sealed.sealed, "{sealed:?}");
    // Names that are not the page's are a signal for a reviewer, never a reason to hold.
    let renamed = set(Uuid::now_v7()).await;
    // Compared only (the gateway's call for a held completion): recorded, never sealed.
    let compared = app
        .seal_with(
            &renamed,
            pb::SealCapturesRequest {
                compare_only: true,
                ..named("2006-05-21", "male", "Сидоров", "Алексей")
            },
        )
        .await
        .unwrap();
    assert!(!compared.sealed, "{compared:?}");
    assert_eq!(compared.document_check.unwrap().outcome, "verified");
    assert!(app.status(&renamed).await.sealed_at.is_none());
    let sealed = app
        .seal_with(&renamed, named("2006-05-21", "male", "Сидоров", "Алексей"))
        .await
        .unwrap();
    assert!(sealed.sealed, "{sealed:?}");
    let pool = sqlx::PgPool::connect(&app.database).await.unwrap();
    let signals: Vec<(String, bool)> = sqlx::query_as(
        "SELECT claimed_names, names_agree FROM document_checks WHERE claimed_names IS NOT NULL
         ORDER BY read_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        signals,
        [
            ("IVANOV<<PETR".to_owned(), true),
            ("SIDOROV<<ALEKSEI".to_owned(), false)
        ]
    );

    let account = Uuid::now_v7();
    let wrong = set(account).await;
    let held = app
        .seal_with(&wrong, named("2006-05-12", "female", "Иванов", "Пётр"))
        .await
        .unwrap();
    assert!(!held.sealed && held.missing.is_empty(), "{held:?}");
    let check = held.document_check.unwrap();
    assert_eq!(check.outcome, "review");
    assert_eq!(check.mismatches, ["birth_date", "sex"]);
    // It is a person's to decide now, and the applicant's status says so.
    assert_eq!(
        app.status(&wrong).await.document_check.unwrap().outcome,
        "review"
    );
    let reviewer = tk::service_token(&app.key, "review-desk", &["review:write"]);
    let review = app.open_review(&reviewer, account).await;
    // The reviewer sees the names beside the page's: they agree, so the date was a typo.
    let got = app.get_review(&reviewer, &review).await;
    let zone = got.zone.unwrap();
    assert_eq!(
        (zone.surname.as_str(), zone.given_names.as_str()),
        ("IVANOV", "PETR")
    );
    assert_eq!(
        got.names,
        Some(pb::NamesSignal {
            surname: "IVANOV".into(),
            given_names: "PETR".into(),
            agree: true,
        })
    );
    app.decide(
        &reviewer,
        &review,
        "approve",
        "the profile was corrected by the desk",
    )
    .await
    .unwrap();
    assert!(
        app.seal_claiming(&wrong, "2006-05-12", "female")
            .await
            .unwrap()
            .sealed
    );
}

/// Garage unreachable while a back is read: each failed attempt puts the check back in the
/// queue after a longer pause, the fifth leaves it to a person (`failed`, a review with no
/// mismatch) and the set waits for them; once Garage is back, a retake is read as usual.
#[tokio::test]
async fn a_back_that_cannot_be_fetched_is_retried_later_and_left_to_a_person_after_five_attempts() {
    let mut relay = tk::Relay::down(&tk::s3_addr()).await;
    relay.up().await;
    let app = spawn_at(format!("http://{}", relay.addr), None, None, |_| {}).await;
    let account = Uuid::now_v7();
    let me = app.user(account);
    app.all_but_the_back(&me).await;
    app.verified_back(&me).await;
    let pool = sqlx::PgPool::connect(&app.database).await.unwrap();
    let row = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (String, i32, f64, Option<String>)>(
            "SELECT state, attempts, EXTRACT(EPOCH FROM not_before - now())::float8, error
             FROM document_checks WHERE account_id = $1",
        )
        .bind(account)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    // Garage goes away; the photo is read again from the start.
    relay.stop().await;
    sqlx::query(
        "UPDATE document_checks SET state = 'pending', attempts = 0, not_before = now(),
           zone = NULL, outcome = NULL WHERE account_id = $1",
    )
    .bind(account)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('document_checks', '')")
        .execute(&pool)
        .await
        .unwrap();
    // The first attempt fails and waits 10 s (5 s doubled per attempt), still pending.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (state, attempts, wait, error) = loop {
        let now = row(pool.clone()).await;
        if now.1 == 1 && now.2 > 0.0 && now.2 < 60.0 || std::time::Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((state.as_str(), attempts, error), ("pending", 1, None));
    assert!((5.0..=10.5).contains(&wait), "waits {wait} s");
    assert_eq!(
        app.status(&me).await.document_check.unwrap().state,
        "pending"
    );
    // Three more failures later (the pauses skipped): the fifth attempt gives up.
    sqlx::query(
        "UPDATE document_checks SET attempts = 4, not_before = now() WHERE account_id = $1",
    )
    .bind(account)
    .execute(&pool)
    .await
    .unwrap();
    let check = app.document_check(&me).await.unwrap();
    assert_eq!(
        (check.state.as_str(), check.reason.as_str()),
        ("failed", "reading_failed")
    );
    assert_eq!(row(pool.clone()).await.1, 5);
    // A person looks: the review names no mismatch, and the set waits for them.
    let reviewer = tk::service_token(&app.key, "review-desk", &["review:write"]);
    let review = app
        .reviews(&reviewer, false)
        .await
        .into_iter()
        .find(|r| r.account_id == account.to_string())
        .expect("an open review");
    assert!(review.mismatches.is_empty());
    let held = app.seal(&me).await.unwrap();
    assert!(!held.sealed && held.missing.is_empty(), "{held:?}");
    assert_eq!(held.document_check.unwrap().state, "failed");
    // Garage is back: a retake supersedes the review and is read.
    relay.up().await;
    app.verified_back(&me).await;
    let decided = app.reviews(&reviewer, true).await;
    assert!(
        decided
            .iter()
            .any(|r| r.review_id == review.review_id && r.decision == "superseded")
    );
    assert!(app.seal(&me).await.unwrap().sealed);
}

#[tokio::test]
async fn the_retention_deletes_decided_reviews_and_old_access_log_entries_and_keeps_the_proof() {
    use examreg_proto::retention::v1::{
        ListRetentionRunsRequest, retention_service_client::RetentionServiceClient,
    };
    let app = spawn_at(tk::s3_endpoint(), None, None, |config| {
        config.retain_reviews = Some(Duration::from_secs(1));
        config.retain_records = Some(Duration::from_secs(1));
        config.sweep_every = Duration::from_secs(1);
    })
    .await;
    let account = Uuid::now_v7();
    let me = app.user(account);
    let claimed = random_iin();
    let card = tk::cards::id_card_back(&random_iin(), "340101", tk::cards::Shot::nth(31));
    app.upload_as(
        &me,
        pb::CaptureKind::DocumentBack,
        pb::DocumentType::IdCard,
        holder(&claimed),
        &card,
    )
    .await;
    assert_eq!(app.document_check(&me).await.unwrap().outcome, "review");
    let reviewer = tk::service_token(&app.key, "review-desk", &["review:write"]);
    let review = app.reviews(&reviewer, false).await[0].review_id.clone();
    app.decide(&reviewer, &review, "approve", "a new card")
        .await
        .unwrap();
    let checkin = tk::service_token(&app.key, "check-in", &["biometrics:status"]);
    app.status_for(&checkin, account, "check-in at hall 3")
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect(&app.database).await.unwrap();
    let gone = async {
        loop {
            let left: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM document_reviews) + (SELECT count(*) FROM access_log)",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), gone)
        .await
        .expect("the retention deleted them");
    // The photo and its check go with the registration, not by time.
    assert_eq!(app.status(&me).await.captures.len(), 1);

    let mut evidence = RetentionServiceClient::new(app.channel.clone());
    let dpo = tk::service_token(&app.key, "dpo", &["audit:read"]);
    let report = evidence
        .list_retention_runs(with_bearer(ListRetentionRunsRequest::default(), &dpo).unwrap())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.service, "biometrics");
    let deleted = |rule: &str| -> i64 {
        report
            .runs
            .iter()
            .filter(|r| r.rule == rule)
            .map(|r| r.deleted)
            .sum()
    };
    assert_eq!(deleted("reviews"), 1);
    assert!(
        deleted("access_log") >= 2,
        "the review's read and the status read: {report:?}"
    );
    let periods: Vec<&str> = report.rules.iter().map(|r| r.period.as_str()).collect();
    assert_eq!(
        periods,
        ["1 second after the decision", "1 second after the entry"]
    );
}
