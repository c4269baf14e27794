//! The photo checks on real photographs (a NASA portrait, public domain, from scikit-image's
//! sample data; a cup of coffee from the same set; the 1927 Solvay conference group photo that
//! rustface ships) and on images derived from them here.

use examreg_biometrics::checks::{CaptureKind, Refusal, Thresholds, check};
use examreg_testkit::photos::{SELFIE, camera_jpeg as frame_of, id_card, jpeg};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage, imageops};
use std::{io::Cursor, time::Instant};

const COFFEE: &[u8] = include_bytes!("../fixtures/coffee.jpg");

fn group_photo() -> DynamicImage {
    let path = concat!(env!("RUSTFACE_DIR"), "/test.png");
    image::open(path).expect("rustface ships its test photograph")
}

fn selfie() -> DynamicImage {
    image::load_from_memory(SELFIE).unwrap()
}

fn timed(bytes: &[u8], kind: CaptureKind) -> Result<examreg_biometrics::checks::Accepted, Refusal> {
    let started = Instant::now();
    let result = check(bytes, kind, &Thresholds::default());
    let outcome = match &result {
        Ok(a) => format!("accepted {:?}", a.scores),
        Err(r) => format!("refused {} {:?}", r.code(), r.scores()),
    };
    println!(
        "{} {} bytes: {outcome} in {:?}",
        kind.as_str(),
        bytes.len(),
        started.elapsed()
    );
    result
}

#[test]
fn a_good_selfie_is_accepted_with_its_scores() {
    let accepted = timed(SELFIE, CaptureKind::Face).unwrap();
    assert_eq!(accepted.scores.faces, 1);
    assert!(accepted.scores.face_share.unwrap() > 0.2);
    // Re-encoded as a plain JPEG.
    assert_eq!(
        image::guess_format(&accepted.jpeg).unwrap(),
        ImageFormat::Jpeg
    );
}

#[test]
fn a_group_photo_is_refused_for_several_faces() {
    // Six people of the middle rows, brightened: the 1927 print is darker than a phone photo.
    let crop = group_photo().crop_imm(430, 130, 440, 340).brighten(50);
    let err = timed(&jpeg(&crop), CaptureKind::Face).unwrap_err();
    assert_eq!(err.code(), "several_faces", "{err:?}");
    assert!(err.scores().unwrap().faces > 1);
}

#[test]
fn a_photo_without_a_face_is_refused() {
    let err = timed(COFFEE, CaptureKind::Face).unwrap_err();
    assert_eq!(err.code(), "no_face", "{err:?}");
}

#[test]
fn a_blurred_copy_is_refused() {
    let blurred = selfie().blur(4.0);
    let err = timed(&jpeg(&blurred), CaptureKind::Face).unwrap_err();
    assert_eq!(err.code(), "blurred", "{err:?}");
}

#[test]
fn a_dark_copy_is_refused() {
    let dark = selfie().brighten(-110);
    let err = timed(&jpeg(&dark), CaptureKind::Face).unwrap_err();
    assert_eq!(err.code(), "too_dark", "{err:?}");
}

#[test]
fn a_tiny_image_is_refused() {
    let tiny = selfie().resize(160, 160, imageops::FilterType::Triangle);
    let err = timed(&jpeg(&tiny), CaptureKind::Face).unwrap_err();
    assert_eq!(err.code(), "too_small");
}

#[test]
fn truncated_files_and_non_images_are_refused() {
    let truncated = &SELFIE[..SELFIE.len() / 2];
    assert_eq!(
        timed(truncated, CaptureKind::Face).unwrap_err().code(),
        "undecodable"
    );
    assert_eq!(
        timed(b"%PDF-1.7 not a photo", CaptureKind::Face)
            .unwrap_err()
            .code(),
        "unsupported_type"
    );
    let mut gif = Vec::new();
    DynamicImage::new_rgb8(400, 400)
        .write_to(&mut Cursor::new(&mut gif), ImageFormat::Gif)
        .ok();
    if !gif.is_empty() {
        assert_eq!(
            timed(&gif, CaptureKind::Face).unwrap_err().code(),
            "unsupported_type"
        );
    }
}

#[test]
fn a_decompression_bomb_is_refused_quickly() {
    // A tiny PNG that claims 30000 × 30000 pixels (2.7 GB decoded).
    let mut bomb = Vec::new();
    let small = RgbImage::new(1, 1);
    small
        .write_to(&mut Cursor::new(&mut bomb), ImageFormat::Png)
        .unwrap();
    // Patch the IHDR width and height (bytes 16..24) and its CRC.
    bomb[16..20].copy_from_slice(&30_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&30_000u32.to_be_bytes());
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let started = Instant::now();
    let err = timed(&bomb, CaptureKind::Face).unwrap_err();
    assert_eq!(err.code(), "undecodable");
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn the_kept_photo_carries_no_metadata() {
    // Insert an APP1 Exif segment with a GPS marker right after the JPEG's SOI.
    let mut exif = Vec::from(&SELFIE[..2]);
    let payload = b"Exif\0\0MM\0*\0\0\0\x08GPSLatitude=43.2389N;GPSLongitude=76.8897E";
    exif.extend_from_slice(&[0xFF, 0xE1]);
    exif.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    exif.extend_from_slice(payload);
    exif.extend_from_slice(&SELFIE[2..]);
    assert!(exif.windows(11).any(|w| w == b"GPSLatitude"));
    // An XMP packet and a comment, and bytes a camera appended after the end of the image.
    let mut marked = Vec::from(&exif[..2]);
    marked.extend_from_slice(&segment(
        0xE1,
        b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Almaty</x:xmpmeta>",
    ));
    marked.extend_from_slice(&segment(0xFE, b"taken by Aigerim"));
    marked.extend_from_slice(&exif[2..]);
    marked.extend_from_slice(b"MAKERNOTE-TRAILER");
    let accepted = timed(&marked, CaptureKind::Face).unwrap();
    for needle in [
        &b"Exif"[..],
        b"GPSLatitude",
        b"xmpmeta",
        b"Aigerim",
        b"MAKERNOTE",
    ] {
        assert!(!accepted.jpeg.windows(needle.len()).any(|w| w == needle));
    }
    // The pixels are the ones that were checked: the compressed data is kept as it came.
    let original = image::load_from_memory(SELFIE).unwrap().to_rgb8();
    let kept = image::load_from_memory(&accepted.jpeg).unwrap().to_rgb8();
    assert_eq!(original, kept);
    assert!(accepted.jpeg.len() <= SELFIE.len());
}

fn segment(marker: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0xFF, marker];
    out.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn a_photo_taken_sideways_is_kept_upright_and_without_its_exif() {
    // What a phone writes for a portrait photo stored in landscape: EXIF orientation 6
    // ("rotate 90° clockwise to view").
    // The selfie on a 330 × 400 canvas, stored turned a quarter to the left (400 × 330).
    let mut upright = RgbImage::from_pixel(330, 400, Rgb([128, 128, 128]));
    imageops::overlay(&mut upright, &selfie().to_rgb8(), 0, 35);
    let stored = DynamicImage::ImageRgb8(imageops::rotate270(&upright));
    let plain = jpeg(&stored);
    let tiff = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
    let mut sideways = Vec::from(&plain[..2]);
    sideways.extend_from_slice(&segment(0xE1, tiff));
    sideways.extend_from_slice(&plain[2..]);
    let accepted = timed(&sideways, CaptureKind::Face).unwrap();
    assert_eq!((accepted.scores.width, accepted.scores.height), (330, 400));
    let kept = image::load_from_memory(&accepted.jpeg).unwrap();
    assert_eq!((kept.width(), kept.height()), (330, 400));
    assert!(!accepted.jpeg.windows(4).any(|w| w == b"Exif"));
    // Without the orientation the same photo is a face lying on its side: no face found.
    assert_eq!(
        timed(&plain, CaptureKind::Face).unwrap_err().code(),
        "no_face"
    );
}

/// The card photographed the way applicants do it: lying on a table (the coffee photograph
/// is the scene), filling most of a 1600 × 1200 frame, turned a few degrees, with sensor
/// noise and phone-grade JPEG compression.
fn photographed(card: &[u8], card_width: u32, degrees: f64) -> DynamicImage {
    let card = image::load_from_memory(card).unwrap().to_rgb8();
    let card_height = card_width * card.height() / card.width();
    let card = imageops::resize(
        &card,
        card_width,
        card_height,
        imageops::FilterType::Triangle,
    );
    let table = image::load_from_memory(COFFEE)
        .unwrap()
        .resize_to_fill(1600, 1200, imageops::FilterType::Triangle)
        .to_rgb8();
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (800.0, 600.0);
    let (half_w, half_h) = (f64::from(card_width) / 2.0, f64::from(card_height) / 2.0);
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let frame = RgbImage::from_fn(1600, 1200, |x, y| {
        // Where this pixel falls on the turned card, if it does.
        let (dx, dy) = (f64::from(x) - cx, f64::from(y) - cy);
        let (u, v) = (cos * dx + sin * dy + half_w, -sin * dx + cos * dy + half_h);
        let base =
            if u >= 0.0 && v >= 0.0 && u < f64::from(card_width) && v < f64::from(card_height) {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                *card.get_pixel(u as u32, v as u32)
            } else {
                *table.get_pixel(x, y)
            };
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let noise = i16::try_from(seed % 9).unwrap() - 4;
        Rgb(base
            .0
            .map(|c| u8::try_from((i16::from(c) + noise).clamp(0, 255)).unwrap()))
    });
    DynamicImage::ImageRgb8(frame)
}

#[test]
fn a_photographed_id_card_is_accepted_and_its_faults_are_named() {
    let front = photographed(&id_card(true), 1200, 4.0);
    let accepted = timed(&jpeg(&front), CaptureKind::DocumentFront).unwrap();
    assert!(accepted.scores.faces >= 1, "{:?}", accepted.scores);
    let back = photographed(&id_card(false), 1200, -3.0);
    timed(&jpeg(&back), CaptureKind::DocumentBack).unwrap();
    // The back sent as the front: no holder's photo.
    let err = timed(&jpeg(&back), CaptureKind::DocumentFront).unwrap_err();
    assert_eq!(err.code(), "no_face", "{err:?}");
    // A phone's usual softness passes; a shaken photo, whose print smears over several
    // pixels, does not.
    timed(&jpeg(&front.blur(1.0)), CaptureKind::DocumentFront).unwrap();
    let err = timed(&jpeg(&front.blur(3.0)), CaptureKind::DocumentFront).unwrap_err();
    assert_eq!(err.code(), "blurred", "{err:?}");
    // Under a lamp's glare, in a dim room.
    let err = timed(&jpeg(&front.brighten(110)), CaptureKind::DocumentFront).unwrap_err();
    assert_eq!(err.code(), "too_bright", "{err:?}");
    let err = timed(&jpeg(&front.brighten(-150)), CaptureKind::DocumentFront).unwrap_err();
    assert_eq!(err.code(), "too_dark", "{err:?}");
    // Taken from across the room: the card, and the holder's face on it, too small to read.
    let far = photographed(&id_card(true), 380, 0.0);
    let err = timed(&jpeg(&far), CaptureKind::DocumentFront).unwrap_err();
    assert!(
        ["face_too_small", "no_face"].contains(&err.code()),
        "{err:?}"
    );
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn a_preview_frame_of_the_placed_face_passes_and_the_others_say_why_not() {
    use examreg_biometrics::checks::check_frame;
    let t = Thresholds::default();
    // The portrait as the webcam shows it, at 320 × 240: placed.
    let placed = check_frame(&frame_of(&selfie(), 320, 240), &t).unwrap();
    assert_eq!(placed.faces, 1);
    assert!(placed.face_share.unwrap() >= t.min_face_share, "{placed:?}");
    // And the photo taken from the same camera passes the selfie check: the two agree.
    check(&frame_of(&selfie(), 640, 480), CaptureKind::Face, &t).unwrap();

    let coffee = image::load_from_memory(COFFEE).unwrap();
    let refusal = |frame: Vec<u8>| check_frame(&frame, &t).unwrap_err().code();
    assert_eq!(refusal(frame_of(&coffee, 320, 240)), "no_face");
    // Far from the camera: a small face in a large grey frame.
    let far = selfie().resize(110, 110, imageops::FilterType::CatmullRom);
    let mut small = RgbImage::from_pixel(320, 240, Rgb([128, 128, 128]));
    imageops::overlay(&mut small, &far.to_rgb8(), 105, 65);
    assert_eq!(
        refusal(jpeg(&DynamicImage::ImageRgb8(small))),
        "face_too_small"
    );
    // At the edge of the frame.
    let mut aside = RgbImage::from_pixel(320, 240, Rgb([128, 128, 128]));
    let face = selfie().resize(240, 240, imageops::FilterType::CatmullRom);
    imageops::overlay(&mut aside, &face.to_rgb8(), -70, 0);
    let aside = check_frame(&jpeg(&DynamicImage::ImageRgb8(aside)), &t).unwrap_err();
    assert_eq!(aside.code(), "face_off_centre", "{aside:?}");
    let placed_frame =
        DynamicImage::ImageRgb8(examreg_testkit::browser::camera_frame(&selfie(), 320, 240));
    assert_eq!(refusal(jpeg(&placed_frame.brighten(-120))), "too_dark");
    // Only small JPEGs: a PNG, a frame larger than 640 a side, a cut-off upload.
    let mut png = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::new(320, 240))
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    assert_eq!(refusal(png), "unsupported_type");
    assert!(check_frame(&frame_of(&selfie(), 1280, 960), &t).is_err());
    let whole = frame_of(&selfie(), 320, 240);
    assert_eq!(refusal(whole[..whole.len() / 2].to_vec()), "undecodable");
    assert_eq!(refusal(frame_of(&selfie(), 200, 150)), "too_small");
    // A larger frame is judged at the same size: the same answer.
    let larger = check_frame(&frame_of(&selfie(), 640, 480), &t).unwrap();
    assert_eq!(larger.faces, 1);
}
