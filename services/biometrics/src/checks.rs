//! What a photo must pass before it is kept, each refusal with a stable reason code and the
//! scores behind it, so a front end can tell the person what to do ("the photo is blurred,
//! retake it").
//!
//! In order: the type is sniffed from the bytes (JPEG or PNG only), the size is capped, the
//! image is fully decoded under limits (truncated files and decompression bombs are refused
//! before they cost memory), the EXIF orientation is applied, the dimensions are checked for
//! the kind of capture, then sharpness (variance of the Laplacian), exposure (mean luminance)
//! and faces (SeetaFace via rustface, on a downscaled copy). A photo that passes is kept
//! without metadata (EXIF, GPS, XMP, maker notes, comments): an upright JPEG loses its metadata
//! segments and keeps its compressed pixels as they are (no second generation of compression,
//! no encoding cost); a PNG or a photo turned by its EXIF orientation is re-encoded as JPEG.
//!
//! Everything here is CPU-bound and synchronous: callers run it on blocking threads behind a
//! bound.

pub use examreg_domain::CaptureKind;
use image::{
    DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits, imageops,
    metadata::Orientation,
};
use std::{cell::RefCell, io::Cursor};

/// Thresholds, from config; the defaults are calibrated on the photographs in the tests.
#[derive(Debug, Clone)]
pub struct Thresholds {
    pub max_bytes: usize,
    /// Largest width or height a decoder may produce.
    pub max_dimension: u32,
    /// Largest decoded frame (width × height × channels × bytes per sample), read from the
    /// header and refused before a pixel is decoded; also the decoders' own allocation limit.
    /// A small file can declare a huge frame (a 250 KB PNG of 7999 × 7999 16-bit RGBA pixels
    /// is 488 MiB decoded), so the file size alone bounds nothing.
    pub max_decoded_bytes: u64,
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
            // A 12-megapixel phone photo (4032 × 3024) with four 8-bit channels is 46.5 MiB.
            max_decoded_bytes: 48 * 1024 * 1024,
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

/// A photo that passed: a JPEG without metadata, with its scores.
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
/// that matter are large. SeetaFace scans a 40-pixel window over a pyramid that starts at the
/// frame's own size (rustface ignores `set_min_face_size` for the top of the pyramid), so the
/// frame alone decides the smallest face found: 40/480 = 0.083 of the long side, under half the
/// 0.2 the selfie's oval demands, so a second face half the applicant's size is still seen.
const DETECTION_SIDE: u32 = 480;
/// The long side at which a document's sharpness is measured.
const DOCUMENT_READING_SIDE: u32 = 1280;

/// Sniffs, decodes and checks a photo of `kind`.
pub fn check(bytes: &[u8], kind: CaptureKind, t: &Thresholds) -> Result<Accepted, Refusal> {
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
    let (image, orientation) = decode(bytes, format, t)?;
    let upright = orientation == Orientation::NoTransforms;
    let view = Oriented::new(&image, orientation);
    let (width, height) = image::GenericImageView::dimensions(&view);
    let mut scores = Scores {
        width,
        height,
        ..Scores::default()
    };
    let (min_long, min_short) = match kind {
        CaptureKind::Face => t.min_face_photo,
        CaptureKind::DocumentFront | CaptureKind::DocumentBack => t.min_document_photo,
    };
    let (long, short) = (
        scores.width.max(scores.height),
        scores.width.min(scores.height),
    );
    if long < min_long || short < min_short {
        return Err(Refusal::TooSmall(scores));
    }
    // The grey copy is a third of the frame: it is the one turned upright.
    let mut luma = DynamicImage::ImageLuma8(luma_of(&image));
    luma.apply_orientation(orientation);
    let luma = luma.into_luma8();
    let gray = downscale(&luma, DETECTION_SIDE);
    scores.brightness = mean(&gray);
    let (min_sharpness, max_brightness) = if kind == CaptureKind::Face {
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
    if kind != CaptureKind::DocumentBack {
        measure_faces(&gray, &mut scores);
        match kind {
            CaptureKind::Face => scores = judge_selfie_face(scores, t)?,
            CaptureKind::DocumentFront => {
                if scores.face_share.unwrap_or(0.0) < t.min_document_face_share {
                    return Err(Refusal::NoFace(scores));
                }
            }
            CaptureKind::DocumentBack => {}
        }
    }
    let jpeg = match (format, upright) {
        (ImageFormat::Jpeg, true) => strip_jpeg_metadata(bytes),
        _ => None,
    };
    let jpeg = match jpeg {
        Some(jpeg) => jpeg,
        None => encode_jpeg(&view).map_err(|e| Refusal::Undecodable(e.to_string()))?,
    };
    Ok(Accepted { jpeg, scores })
}

/// Finds the faces of a grey frame at the detector's size and records their count and the
/// largest one's share of the width and distance from the centre.
fn measure_faces(gray: &GrayImage, scores: &mut Scores) {
    let faces = detect_faces(gray);
    scores.faces = u32::try_from(faces.len()).unwrap_or(u32::MAX);
    let largest = faces.iter().max_by_key(|f| f.2);
    if let Some(&(x, y, w, h)) = largest {
        let (gw, gh) = (f64::from(gray.width()), f64::from(gray.height()));
        scores.face_share = Some(f64::from(w) / gw);
        let cx = (f64::from(x) + f64::from(w) / 2.0) / gw - 0.5;
        let cy = (f64::from(y) + f64::from(h) / 2.0) / gh - 0.5;
        scores.face_offset = Some(cx.abs().max(cy.abs()));
    }
}

/// A selfie's face as the oval wants it: one, large enough, near the centre.
fn judge_selfie_face(scores: Scores, t: &Thresholds) -> Result<Scores, Refusal> {
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
    Ok(scores)
}

/// The largest preview frame accepted, in bytes and on its long side.
pub const FRAME_MAX_BYTES: usize = 256 * 1024;
pub const FRAME_MAX_SIDE: u32 = 640;
/// The long side a preview frame's faces are detected at (the page sends 320 × 240). The
/// detector's 40-pixel window finds faces down to 40/320 = 0.125 of the width, well under the
/// 0.2 the oval wants, at 0.44 of the pixels the selfie check scans (480 × 360): frames come
/// several per applicant, so they are judged at the cheapest size that sees every face that
/// matters. A second face smaller than that is left to the photo's own check.
pub const FRAME_DETECTION_SIDE: u32 = 320;
/// The smallest frame's short side.
const FRAME_MIN_SIDE: u32 = 180;

/// Whether a frame of the camera's preview shows a face where the selfie check will accept
/// it: in good light, one face, large enough, near the centre, judged with the selfie's own
/// thresholds on the same detector. Its sharpness is not judged (a preview frame is small and
/// may be moving); the photo taken is checked in full. A JPEG of at most 640 pixels a side;
/// the scores on success.
pub fn check_frame(bytes: &[u8], t: &Thresholds) -> Result<Scores, Refusal> {
    if bytes.len() > FRAME_MAX_BYTES {
        return Err(Refusal::TooLarge);
    }
    if image::guess_format(bytes).ok() != Some(ImageFormat::Jpeg) {
        return Err(Refusal::UnsupportedType);
    }
    if !jpeg_is_complete(bytes) {
        return Err(Refusal::Undecodable("the JPEG is truncated".into()));
    }
    let bounds = Thresholds {
        max_dimension: FRAME_MAX_SIDE,
        max_decoded_bytes: u64::from(FRAME_MAX_SIDE * FRAME_MAX_SIDE * 4),
        ..t.clone()
    };
    let (image, _) = decode(bytes, ImageFormat::Jpeg, &bounds)?;
    let mut scores = Scores {
        width: image.width(),
        height: image.height(),
        ..Scores::default()
    };
    if scores.width.min(scores.height) < FRAME_MIN_SIDE {
        return Err(Refusal::TooSmall(scores));
    }
    let gray = downscale(&luma_of(&image), FRAME_DETECTION_SIDE);
    scores.brightness = mean(&gray);
    if scores.brightness < t.min_brightness {
        return Err(Refusal::TooDark(scores));
    }
    if scores.brightness > t.max_brightness {
        return Err(Refusal::TooBright(scores));
    }
    measure_faces(&gray, &mut scores);
    judge_selfie_face(scores, t)
}

/// Decodes within the memory budget and reads the EXIF orientation (applied by the caller to
/// the small grey copy and, when stored, through [`Oriented`], so turning a photo never holds
/// two full frames).
fn decode(
    bytes: &[u8],
    format: ImageFormat,
    t: &Thresholds,
) -> Result<(DynamicImage, Orientation), Refusal> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(t.max_dimension);
    limits.max_image_height = Some(t.max_dimension);
    limits.max_alloc = Some(t.max_decoded_bytes);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| Refusal::Undecodable(e.to_string()))?;
    // `ImageReader::decode` would check the frame against `max_alloc`; `from_decoder` does not,
    // so the frame is measured here, from the header, before anything is allocated.
    if decoder.total_bytes() > t.max_decoded_bytes {
        return Err(Refusal::TooLarge);
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image =
        DynamicImage::from_decoder(decoder).map_err(|e| Refusal::Undecodable(e.to_string()))?;
    Ok((image, orientation))
}

/// A decoded photo seen upright and as 8-bit RGB, without copying it: the JPEG encoder reads
/// pixels through this view, so a photo taken sideways is stored upright with no second frame
/// in memory (`DynamicImage::apply_orientation` allocates one for a quarter turn).
struct Oriented<'a> {
    image: &'a DynamicImage,
    rgb: Option<&'a image::RgbImage>,
    orientation: Orientation,
}

impl<'a> Oriented<'a> {
    fn new(image: &'a DynamicImage, orientation: Orientation) -> Self {
        Self {
            image,
            rgb: image.as_rgb8(),
            orientation,
        }
    }

    /// Whether the view swaps width and height.
    fn turned(&self) -> bool {
        matches!(
            self.orientation,
            Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH
        )
    }

    /// The source pixel shown at (x, y), as `apply_orientation` would move it.
    fn source(&self, x: u32, y: u32) -> (u32, u32) {
        let (w, h) = (self.image.width(), self.image.height());
        match self.orientation {
            Orientation::NoTransforms => (x, y),
            Orientation::Rotate90 => (y, h - 1 - x),
            Orientation::Rotate180 => (w - 1 - x, h - 1 - y),
            Orientation::Rotate270 => (w - 1 - y, x),
            Orientation::FlipHorizontal => (w - 1 - x, y),
            Orientation::FlipVertical => (x, h - 1 - y),
            Orientation::Rotate90FlipH => (y, x),
            Orientation::Rotate270FlipH => (w - 1 - y, h - 1 - x),
        }
    }
}

impl image::GenericImageView for Oriented<'_> {
    type Pixel = image::Rgb<u8>;

    fn dimensions(&self) -> (u32, u32) {
        let (w, h) = self.image.dimensions();
        if self.turned() { (h, w) } else { (w, h) }
    }

    fn get_pixel(&self, x: u32, y: u32) -> image::Rgb<u8> {
        let (sx, sy) = self.source(x, y);
        match self.rgb {
            Some(rgb) => *rgb.get_pixel(sx, sy),
            None => {
                let image::Rgba([r, g, b, _]) = self.image.get_pixel(sx, sy);
                image::Rgb([r, g, b])
            }
        }
    }
}

/// Whether a JPEG's last scan is followed by its end-of-image marker. Inside entropy-coded
/// data a 0xFF byte is always followed by 0x00 or a restart marker, so an `FF D9` after the last
/// start-of-scan (`FF DA`) can only be the real end; an embedded thumbnail's markers come
/// earlier, and bytes some cameras append after the end are allowed.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    last_scan.is_some_and(|at| bytes[at..].windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// Luminance with the sRGB (Rec. 709) weights, in integers for the common 8-bit RGB case.
pub(crate) fn luma_of(image: &DynamicImage) -> GrayImage {
    let Some(rgb) = image.as_rgb8() else {
        return image.to_luma8();
    };
    let luma = rgb
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            // 0.2126, 0.7152, 0.0722 in 16-bit fixed point (the weights add up to 65536, so
            // the result fits a byte).
            let y = 13933 * u32::from(p[0]) + 46871 * u32::from(p[1]) + 4732 * u32::from(p[2]);
            ((y + 32768) >> 16) as u8
        })
        .collect();
    GrayImage::from_raw(rgb.width(), rgb.height(), luma).unwrap_or_else(|| image.to_luma8())
}

/// Shrinks to `side` on the long side with a triangle (bilinear) filter, the same filter the
/// thresholds were calibrated with, through fast_image_resize's SIMD convolution (0.6 ms
/// instead of 7–10 ms for a 1000 × 630 photo here).
pub(crate) fn downscale(gray: &GrayImage, side: u32) -> GrayImage {
    use fast_image_resize as fir;
    let long = gray.width().max(gray.height());
    if long <= side {
        return gray.clone();
    }
    let scale = f64::from(side) / f64::from(long);
    let w = ((f64::from(gray.width()) * scale).round() as u32).max(1);
    let h = ((f64::from(gray.height()) * scale).round() as u32).max(1);
    let fast = fir::images::ImageRef::new(
        gray.width(),
        gray.height(),
        gray.as_raw(),
        fir::PixelType::U8,
    )
    .ok()
    .and_then(|src| {
        let mut dst = fir::images::Image::new(w, h, fir::PixelType::U8);
        let options = fir::ResizeOptions::new()
            .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
        fir::Resizer::new().resize(&src, &mut dst, &options).ok()?;
        GrayImage::from_raw(w, h, dst.into_vec())
    });
    fast.unwrap_or_else(|| imageops::resize(gray, w, h, imageops::FilterType::Triangle))
}

/// The JPEG without its metadata, by an allowlist: the segments that make the pixels (frame,
/// tables, scans) and the three that only describe how to read them (a JFIF header without a
/// thumbnail, an ICC colour profile, Adobe's colour-transform flag) are kept; every other APPn
/// and COM segment goes, and so does anything after the end-of-image marker. The compressed
/// pixels are copied untouched. `None` when the stream holds a reserved or unknown marker or
/// is not laid out as expected, and the caller re-encodes instead.
fn strip_jpeg_metadata(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, 0xD8]);
    let mut at = 2;
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        // Any number of 0xFF fill bytes may precede a marker.
        while *bytes.get(at + 1)? == 0xFF {
            at += 1;
        }
        let marker = bytes[at + 1];
        match marker {
            0xD9 => {
                out.extend_from_slice(&[0xFF, 0xD9]);
                return Some(out);
            }
            0x01 | 0xD0..=0xD7 => {
                out.extend_from_slice(&[0xFF, marker]);
                at += 2;
                continue;
            }
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        let end = at + 2 + length;
        let segment = bytes.get(at..end)?;
        if length < 2 {
            return None;
        }
        let data = &segment[4..];
        let keep = match marker {
            // JFIF with no thumbnail (its width and height bytes are 12 and 13 into the data).
            0xE0 => data.starts_with(b"JFIF\0") && data.get(12..14) == Some(&[0, 0][..]),
            0xE2 => data.starts_with(b"ICC_PROFILE\0"),
            0xEE => data.starts_with(b"Adobe"),
            0xE1 | 0xE3..=0xED | 0xEF | 0xFE => false,
            // What the pixels are made of: frame headers (SOF0–SOF15 but the reserved JPG),
            // Huffman and arithmetic tables, quantization tables, the restart interval, the
            // number of lines, the scans.
            0xC0..=0xC7 | 0xC9..=0xCF | 0xDA..=0xDD => true,
            // Anything else is reserved or unknown: nothing unknown is kept, so the photo is
            // re-encoded from its pixels instead.
            _ => return None,
        };
        if keep {
            out.extend_from_slice(segment);
        }
        at = end;
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00
            // nor a restart marker.
            let mut scan = at;
            loop {
                if *bytes.get(scan)? == 0xFF {
                    let next = *bytes.get(scan + 1)?;
                    if next != 0x00 && !(0xD0..=0xD7).contains(&next) {
                        break;
                    }
                    scan += 2;
                } else {
                    scan += 1;
                }
            }
            out.extend_from_slice(&bytes[at..scan]);
            at = scan;
        }
    }
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
/// In integers, row by row, so the compiler vectorizes it (|l| ≤ 1020, so l² and the sums fit).
fn laplacian_variance(gray: &GrayImage) -> f64 {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let px = gray.as_raw();
    let (mut sum, mut sum_sq) = (0i64, 0i64);
    for y in 1..h - 1 {
        let (up, row, down) = (
            &px[(y - 1) * w..y * w],
            &px[y * w..(y + 1) * w],
            &px[(y + 1) * w..(y + 2) * w],
        );
        let (mut row_sum, mut row_sq) = (0i32, 0i64);
        for x in 1..w - 1 {
            let l = i32::from(row[x - 1])
                + i32::from(row[x + 1])
                + i32::from(up[x])
                + i32::from(down[x])
                - 4 * i32::from(row[x]);
            row_sum += l;
            row_sq += i64::from(l * l);
        }
        sum += i64::from(row_sum);
        sum_sq += row_sq;
    }
    let n = ((w - 2) * (h - 2)) as f64;
    let m = sum as f64 / n;
    sum_sq as f64 / n - m * m
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

fn encode_jpeg(view: &Oriented<'_>) -> image::ImageResult<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(view)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::GenericImageView;

    #[test]
    fn the_oriented_view_shows_what_apply_orientation_makes() {
        // A 5 × 3 image whose every pixel is different, in RGB and in RGBA (the slow path).
        let rgb = image::RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8, y as u8, 7]));
        for source in [
            DynamicImage::ImageRgb8(rgb.clone()),
            DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(rgb).to_rgba8()),
        ] {
            for orientation in [
                Orientation::NoTransforms,
                Orientation::Rotate90,
                Orientation::Rotate180,
                Orientation::Rotate270,
                Orientation::FlipHorizontal,
                Orientation::FlipVertical,
                Orientation::Rotate90FlipH,
                Orientation::Rotate270FlipH,
            ] {
                let mut turned = source.clone();
                turned.apply_orientation(orientation);
                let turned = turned.to_rgb8();
                let view = Oriented::new(&source, orientation);
                assert_eq!(view.dimensions(), turned.dimensions(), "{orientation:?}");
                for (x, y, pixel) in turned.enumerate_pixels() {
                    assert_eq!(view.get_pixel(x, y), *pixel, "{orientation:?} at {x},{y}");
                }
            }
        }
    }

    #[test]
    fn a_frame_over_the_budget_is_refused_from_its_header() {
        // 100 × 100 RGB is 30 000 bytes decoded: over a 20 000-byte budget, under a 40 000 one.
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(image::RgbImage::new(100, 100))
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let mut t = Thresholds {
            max_decoded_bytes: 20_000,
            ..Thresholds::default()
        };
        assert_eq!(
            decode(&png, ImageFormat::Png, &t).unwrap_err(),
            Refusal::TooLarge
        );
        t.max_decoded_bytes = 40_000;
        assert!(decode(&png, ImageFormat::Png, &t).is_ok());
    }

    #[test]
    fn reserved_markers_are_not_kept() {
        let mut jpeg = Vec::new();
        DynamicImage::ImageRgb8(image::RgbImage::new(16, 16))
            .write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg)
            .unwrap();
        assert!(strip_jpeg_metadata(&jpeg).is_some());
        // A JPG0 (0xF0) extension segment after the start of image: not on the allowlist.
        let mut odd = Vec::from(&jpeg[..2]);
        odd.extend_from_slice(&[0xFF, 0xF0, 0x00, 0x06, b'h', b'i', b'd', b'e']);
        odd.extend_from_slice(&jpeg[2..]);
        assert_eq!(strip_jpeg_metadata(&odd), None);
    }
}
