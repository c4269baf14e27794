//! What the hardware allows: the CPU a registration cannot avoid (two argon2id hashes, at the
//! account's creation and at login, the checks of three photos, and the reading of the ID
//! card's machine-readable zone), measured on this machine with the services' own code and
//! configured parameters.

use crate::journey::{PASSWORD, Photos};
use examreg_biometrics::{
    checks::{CaptureKind, Thresholds, check},
    ocr::Reader,
};
use examreg_domain::mrz::Format;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// argon2id hashes per second with `cores` hashing at once for `window`.
async fn hashes_per_second(cores: usize, window: Duration) -> anyhow::Result<f64> {
    let defaults = examreg_identity::Config::defaults();
    let hasher = examreg_identity::password::Hasher::new(
        defaults.argon2_memory_kib,
        defaults.argon2_iterations,
        defaults.argon2_parallelism,
        cores,
        cores * 4,
    )?;
    let started = Instant::now();
    // Collected, so every worker starts now (a lazy map would start each after the last).
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                let mut done = 0u32;
                while started.elapsed() < window {
                    hasher.hash(PASSWORD).await.expect("argon2 hashes");
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0u32;
    for worker in workers {
        total += worker.await?;
    }
    Ok(f64::from(total) / started.elapsed().as_secs_f64())
}

/// Milliseconds of one core to do `work` once, with every core doing it at once (as when the
/// suite is saturated; one core alone runs faster, and that is not the bound): the median
/// over `rounds` per core.
fn per_core_ms(rounds: usize, work: impl Fn() + Sync) -> f64 {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let mut times: Vec<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    (0..rounds)
                        .map(|_| {
                            let started = Instant::now();
                            work();
                            started.elapsed().as_secs_f64() * 1000.0
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a bound thread"))
            .collect()
    });
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Milliseconds of one core to check `bytes` as `kind` (see [`per_core_ms`]).
fn photo_ms(bytes: &[u8], kind: CaptureKind, rounds: usize) -> f64 {
    let thresholds = Thresholds::default();
    per_core_ms(rounds, || {
        let accepted = check(bytes, kind, &thresholds);
        assert!(accepted.is_ok(), "the benchmark's photos pass the checks");
    })
}

/// Milliseconds of one core to judge a preview frame of the selfie (see [`per_core_ms`]).
fn frame_ms(frame: &[u8], rounds: usize) -> f64 {
    let thresholds = Thresholds::default();
    per_core_ms(rounds, || {
        let placed = examreg_biometrics::checks::check_frame(frame, &thresholds);
        assert!(placed.is_ok(), "the benchmark's frame shows a placed face");
    })
}

/// Milliseconds of one core to read the zone off the back `bytes` (see [`per_core_ms`]).
fn mrz_ms(reader: &Reader, bytes: &[u8], rounds: usize) -> f64 {
    per_core_ms(rounds, || {
        let zone = reader.read_photo(bytes, Format::Td1);
        assert!(zone.is_ok(), "the benchmark's card is read");
    })
}

/// The preview frames a selfie costs when it goes well: the page sends one every half second
/// until the face is placed (about three while the applicant settles in the oval) and none
/// through the countdown, when it watches the picture itself.
const FRAMES_PER_APPLICANT: f64 = 3.0;

/// The parts of the bound, measured now.
pub(crate) struct Parts {
    hashes: f64,
    face: f64,
    front: f64,
    back: f64,
    mrz: f64,
    frame: f64,
}

pub(crate) async fn parts(photos: &Photos, reader: &Reader) -> anyhow::Result<Parts> {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    Ok(Parts {
        hashes: hashes_per_second(cores, Duration::from_secs(3)).await?,
        face: photo_ms(&photos.face, CaptureKind::Face, 15),
        front: photo_ms(&photos.front, CaptureKind::DocumentFront, 15),
        back: photo_ms(&photos.back, CaptureKind::DocumentBack, 15),
        mrz: mrz_ms(reader, &photos.back, 5),
        frame: frame_ms(&photos.frame, 15),
    })
}

/// The bound from two measurements, one before the load and one after it: anything else
/// running (the suite starting, a store flushing) only makes the work look dearer, so each
/// part's better reading is the truer one.
pub(crate) fn bound(before: &Parts, after: &Parts) -> Value {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let hashes = before.hashes.max(after.hashes);
    let hash_ms = cores as f64 / hashes * 1000.0;
    let face = before.face.min(after.face);
    let front = before.front.min(after.front);
    let back = before.back.min(after.back);
    let mrz = before.mrz.min(after.mrz);
    let frame = before.frame.min(after.frame);
    let cpu_seconds = (2.0 * hash_ms + face + front + back + mrz) / 1000.0;
    json!({
        "readings": {
            "before": {"argon2_hashes_per_second": before.hashes, "photo_ms": [before.face, before.front, before.back], "mrz_ms": before.mrz},
            "after": {"argon2_hashes_per_second": after.hashes, "photo_ms": [after.face, after.front, after.back], "mrz_ms": after.mrz},
        },
        "argon2_hashes_per_second": hashes,
        "hash_ms": hash_ms,
        "photo_ms": {"face": face, "document_front": front, "document_back": back},
        "mrz_ms": mrz,
        // The oval's preview frames are optional work, shed first: kept off the bound.
        "frame_ms": frame,
        "frame_ms_per_applicant": frame * FRAMES_PER_APPLICANT,
        "cpu_seconds_per_registration": cpu_seconds,
        "registrations_per_second": cores as f64 / cpu_seconds,
    })
}
