//! What a photo must pass before it is kept, each refusal with a stable reason code and the
//! scores behind it, so a front end can tell the person what to do ("the photo is blurred,
//! retake it").
//!
//! In order: the type is sniffed from the bytes (JPEG or PNG only), the size is capped, the
//! image is fully decoded under limits (truncated files and decompression bombs are refused
//! before they cost memory), the EXIF orientation is applied, the dimensions are checked for
//! the kind of capture, then sharpness (variance of the Laplacian), exposure (mean luminance)
//! and faces (SeetaFace via rustface, on a downscaled copy). A photo that passes is re-encoded
//! as JPEG, which keeps no metadata (EXIF, GPS, maker notes).
//!
//! Everything here is CPU-bound and synchronous: callers run it on blocking threads behind a
//! bound.

use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, imageops};
use std::{cell::RefCell, io::Cursor};

/// What is being captured; it decides the size and the face rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Face,
    DocumentFront,
    DocumentBack,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Face => "face",
            Self::DocumentFront => "document_front",
            Self::DocumentBack => "document_back",
        }
    }
}

/// Thresholds, from config; the defaults are calibrated on the photographs in the tests.
#[derive(Debug, Clone)]
pub struct Thresholds {
    pub max_bytes: usize,
    /// Largest width or height a decoder may produce.
    pub max_dimension: u32,
    /// Largest allocation a decoder may make.
    pub max_alloc: u64,
    /// Smallest (long side, short side) of a selfie and of a document photo.
    pub min_face_photo: (u32, u32),
    pub min_document_photo: (u32, u32),
    /// Variance of the Laplacian below which a photo is blurred: a selfie measured at the
    /// detector's size, a document at reading size (its print must stay legible).
    pub min_sharpness: f64,
    pub min_document_sharpness: f64,
    /// Mean luminance (0–255) bounds.
    pub min_brightness: f64,
    pub max_brightness: f64,
    /// Documents are light cards: a higher ceiling than a face before "too bright".
    pub max_document_brightness: f64,
    /// Largest share of a document photo's pixels burnt to white (glare hides the print).
    pub max_document_glare: f64,
    /// Smallest face width as a share of the photo's width: selfie, and the holder's photo
    /// on a document front.
    pub min_face_share: f64,
    pub min_document_face_share: f64,
    /// Largest distance of the selfie's face centre from the photo's centre, as a share of
    /// the photo's width and height.
    pub max_face_offset: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            max_dimension: 8000,
            max_alloc: 200 * 1024 * 1024,
            min_face_photo: (320, 320),
            min_document_photo: (640, 400),
            min_sharpness: 60.0,
            min_document_sharpness: 20.0,
            min_brightness: 60.0,
            max_brightness: 210.0,
            max_document_brightness: 235.0,
            max_document_glare: 0.25,
            min_face_share: 0.2,
            min_document_face_share: 0.035,
            max_face_offset: 0.3,
        }
    }
}

/// The measurements behind a decision, returned with it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Scores {
    pub width: u32,
    pub height: u32,
    pub sharpness: f64,
    pub brightness: f64,
    pub faces: u32,
    /// Width of the largest face as a share of the photo's width.
    pub face_share: Option<f64>,
    /// Distance of the largest face's centre from the photo's centre (share of the size).
    pub face_offset: Option<f64>,
    /// Share of a document photo's pixels burnt to white.
    pub glare: Option<f64>,
}

/// Why a photo is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("only JPEG and PNG photos are accepted")]
    UnsupportedType,
    #[error("the photo is larger than the limit")]
    TooLarge,
    #[error("the photo cannot be read: {0}")]
    Undecodable(String),
    #[error("the photo is too small")]
    TooSmall(Scores),
    #[error("the photo is blurred")]
    Blurred(Scores),
    #[error("the photo is too dark")]
    TooDark(Scores),
    #[error("the photo is too bright")]
    TooBright(Scores),
    #[error("no face was found")]
    NoFace(Scores),
    #[error("more than one face was found")]
    SeveralFaces(Scores),
    #[error("the face is too small: come closer")]
    FaceTooSmall(Scores),
    #[error("the face is not in the centre")]
    FaceOffCentre(Scores),
}

impl Refusal {
    /// The stable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedType => "unsupported_type",
            Self::TooLarge => "too_large",
            Self::Undecodable(_) => "undecodable",
            Self::TooSmall(_) => "too_small",
            Self::Blurred(_) => "blurred",
            Self::TooDark(_) => "too_dark",
            Self::TooBright(_) => "too_bright",
            Self::NoFace(_) => "no_face",
            Self::SeveralFaces(_) => "several_faces",
            Self::FaceTooSmall(_) => "face_too_small",
            Self::FaceOffCentre(_) => "face_off_centre",
        }
    }

    /// The scores measured before the refusal, when the photo got that far.
    pub fn scores(&self) -> Option<&Scores> {
        match self {
            Self::UnsupportedType | Self::TooLarge | Self::Undecodable(_) => None,
            Self::TooSmall(s)
            | Self::Blurred(s)
            | Self::TooDark(s)
            | Self::TooBright(s)
            | Self::NoFace(s)
            | Self::SeveralFaces(s)
            | Self::FaceTooSmall(s)
            | Self::FaceOffCentre(s) => Some(s),
        }
    }
}

/// A photo that passed: re-encoded without metadata, with its scores.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub jpeg: Vec<u8>,
    pub scores: Scores,
}

/// The SeetaFace frontal model from the rustface package (see build.rs).
static MODEL: &[u8] = include_bytes!(env!("SEETA_MODEL"));

thread_local! {
    /// One detector per (blocking) thread: the model is parsed once per thread, not per photo.
    static DETECTOR: RefCell<Box<dyn rustface::Detector>> = RefCell::new({
        let model = rustface::read_model(Cursor::new(MODEL)).expect("the bundled model parses");
        let mut detector = rustface::create_detector_with_model(model);
        detector.set_min_face_size(24);
        detector.set_score_thresh(2.0);
        detector.set_pyramid_scale_factor(0.8);
        detector.set_slide_window_step(4, 4);
        detector
    });
}

/// The long side faces are detected at: detection cost grows with the pixel count, and faces
/// that matter are large.
const DETECTION_SIDE: u32 = 480;
/// The long side at which a document's sharpness is measured.
const DOCUMENT_READING_SIDE: u32 = 1280;

/// Sniffs, decodes and checks a photo of `kind`.
pub fn check(bytes: &[u8], kind: Kind, t: &Thresholds) -> Result<Accepted, Refusal> {
    if bytes.len() > t.max_bytes {
        return Err(Refusal::TooLarge);
    }
    let format = image::guess_format(bytes).map_err(|_| Refusal::UnsupportedType)?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png) {
        return Err(Refusal::UnsupportedType);
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // JPEG decoders paint a cut-off photo grey and carry on; a cut-off upload is refused.
        return Err(Refusal::Undecodable("the JPEG is truncated".into()));
    }
    let image = decode(bytes, format, t)?;
    let mut scores = Scores {
        width: image.width(),
        height: image.height(),
        ..Scores::default()
    };
    let (min_long, min_short) = match kind {
        Kind::Face => t.min_face_photo,
        Kind::DocumentFront | Kind::DocumentBack => t.min_document_photo,
    };
    let (long, short) = (
        scores.width.max(scores.height),
        scores.width.min(scores.height),
    );
    if long < min_long || short < min_short {
        return Err(Refusal::TooSmall(scores));
    }
    let luma = image.to_luma8();
    let gray = downscale(&luma, DETECTION_SIDE);
    scores.brightness = mean(&gray);
    let (min_sharpness, max_brightness) = if kind == Kind::Face {
        scores.sharpness = laplacian_variance(&gray);
        (t.min_sharpness, t.max_brightness)
    } else {
        // A document must stay legible, so it is judged where print is read: at reading
        // size, not at the detector's.
        let reading = downscale(&luma, DOCUMENT_READING_SIDE);
        scores.sharpness = laplacian_variance(&reading);
        scores.glare = Some(burnt_share(&reading));
        (t.min_document_sharpness, t.max_document_brightness)
    };
    if scores.brightness < t.min_brightness {
        return Err(Refusal::TooDark(scores));
    }
    if scores.brightness > max_brightness || scores.glare.is_some_and(|g| g > t.max_document_glare)
    {
        return Err(Refusal::TooBright(scores));
    }
    if scores.sharpness < min_sharpness {
        return Err(Refusal::Blurred(scores));
    }
    if kind != Kind::DocumentBack {
        let faces = detect_faces(&gray);
        scores.faces = u32::try_from(faces.len()).unwrap_or(u32::MAX);
        let largest = faces.iter().max_by_key(|f| f.2);
        if let Some(&(x, y, w, h)) = largest {
            let (gw, gh) = (f64::from(gray.width()), f64::from(gray.height()));
            scores.face_share = Some(f64::from(w) / gw);
            let cx = (f64::from(x) + f64::from(w) / 2.0) / gw - 0.5;
            let cy = (f64::from(y) + f64::from(h) / 2.0) / gh - 0.5;
            scores.face_offset = Some(cx.abs().max(cy.abs()));
        }
        match kind {
            Kind::Face => {
                if scores.faces == 0 {
                    return Err(Refusal::NoFace(scores));
                }
                if scores.faces > 1 {
                    return Err(Refusal::SeveralFaces(scores));
                }
                if scores.face_share.unwrap_or(0.0) < t.min_face_share {
                    return Err(Refusal::FaceTooSmall(scores));
                }
                if scores.face_offset.unwrap_or(1.0) > t.max_face_offset {
                    return Err(Refusal::FaceOffCentre(scores));
                }
            }
            Kind::DocumentFront => {
                if scores.face_share.unwrap_or(0.0) < t.min_document_face_share {
                    return Err(Refusal::NoFace(scores));
                }
            }
            Kind::DocumentBack => {}
        }
    }
    let jpeg = encode_jpeg(&image).map_err(|e| Refusal::Undecodable(e.to_string()))?;
    Ok(Accepted { jpeg, scores })
}

/// Decodes under limits and applies the EXIF orientation, so a photo taken sideways is
/// checked and stored upright.
fn decode(bytes: &[u8], format: ImageFormat, t: &Thresholds) -> Result<DynamicImage, Refusal> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(t.max_dimension);
    limits.max_image_height = Some(t.max_dimension);
    limits.max_alloc = Some(t.max_alloc);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| Refusal::Undecodable(e.to_string()))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image =
        DynamicImage::from_decoder(decoder).map_err(|e| Refusal::Undecodable(e.to_string()))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Whether a JPEG's last scan is followed by its end-of-image marker. Inside entropy-coded
/// data a 0xFF byte is always followed by 0x00 or a restart marker, so an `FF D9` after the last
/// start-of-scan (`FF DA`) can only be the real end; an embedded thumbnail's markers come
/// earlier, and bytes some cameras append after the end are allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|at| bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

fn downscale(gray: &GrayImage, side: u32) -> GrayImage {
    let long = gray.width().max(gray.height());
    if long <= side {
        return gray.clone();
    }
    let scale = f64::from(side) / f64::from(long);
    let w = ((f64::from(gray.width()) * scale).round() as u32).max(1);
    let h = ((f64::from(gray.height()) * scale).round() as u32).max(1);
    imageops::resize(gray, w, h, imageops::FilterType::Triangle)
}

/// Share of pixels at (or next to) pure white.
fn burnt_share(gray: &GrayImage) -> f64 {
    let burnt = gray.as_raw().iter().filter(|&&p| p >= 250).count();
    burnt as f64 / gray.as_raw().len().max(1) as f64
}

fn mean(gray: &GrayImage) -> f64 {
    let sum: u64 = gray.as_raw().iter().map(|&p| u64::from(p)).sum();
    sum as f64 / gray.as_raw().len().max(1) as f64
}

/// Variance of the 4-neighbour Laplacian: sharp edges give large responses, blur flattens them.
fn laplacian_variance(gray: &GrayImage) -> f64 {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let px = gray.as_raw();
    let at = |x: usize, y: usize| f64::from(px[y * w + x]);
    let (mut sum, mut sum_sq, mut n) = (0.0, 0.0, 0.0);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let l = at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y);
            sum += l;
            sum_sq += l * l;
            n += 1.0;
        }
    }
    let m = sum / n;
    sum_sq / n - m * m
}

/// Faces as (x, y, width, height) in the downscaled image's pixels.
fn detect_faces(gray: &GrayImage) -> Vec<(i32, i32, u32, u32)> {
    let data = rustface::ImageData::new(gray.as_raw(), gray.width(), gray.height());
    DETECTOR.with(|detector| {
        detector
            .borrow_mut()
            .detect(&data)
            .iter()
            .map(|f| {
                let b = f.bbox();
                (b.x(), b.y(), b.width(), b.height())
            })
            .collect()
    })
}

fn encode_jpeg(image: &DynamicImage) -> image::ImageResult<Vec<u8>> {
    let mut out = Vec::new();
    let rgb = image.to_rgb8();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&rgb)?;
    Ok(out)
}
