//! Identity documents drawn for tests and the benchmark: the back of a Kazakh ID card (a TD1
//! zone of three lines) and a passport's data page (a TD3 zone of two lines, the holder's
//! portrait), printed in OCR-B (Debian's `fonts-ocr-b`, which `deploy/lib.sh` installs) at the
//! zone's ten characters an inch, then photographed badly on a table: turned, blurred,
//! speckled and saved as a phone's JPEG.

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use examreg_domain::mrz::{Format, Printed};
use image::{DynamicImage, Rgb, RgbImage, codecs::jpeg::JpegEncoder, imageops};
use std::sync::OnceLock;

/// Where Debian installs the OCR-B font.
pub const OCR_B: &str = "/usr/share/fonts/opentype/ocr-b/OCRB.otf";

fn font() -> &'static FontVec {
    static FONT: OnceLock<FontVec> = OnceLock::new();
    FONT.get_or_init(|| {
        let bytes = std::fs::read(OCR_B).unwrap_or_else(|e| {
            panic!("{OCR_B} (Debian's fonts-ocr-b; deploy/lib.sh installs it): {e}")
        });
        FontVec::try_from_vec(bytes).expect("OCR-B parses")
    })
}

/// How badly the photo is taken.
#[derive(Debug, Clone, Copy)]
pub struct Shot {
    /// Degrees, either way.
    pub rotation: f32,
    /// Gaussian blur's sigma in pixels of the card (0: none).
    pub blur: f32,
    /// Largest amplitude of the speckle added to each channel.
    pub noise: u8,
    /// JPEG quality.
    pub quality: u8,
    /// Seeds the speckle.
    pub seed: u64,
}

impl Shot {
    /// A clean, straight shot.
    pub const CLEAN: Self = Self {
        rotation: 0.0,
        blur: 0.0,
        noise: 0,
        quality: 92,
        seed: 1,
    };

    /// The `n`th of a reproducible series of bad shots: turned up to 5° either way, blurred
    /// up to σ 1.3, speckled up to ±14, JPEG quality 70–90.
    pub fn nth(n: u64) -> Self {
        let mut rng = Rng(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        Self {
            rotation: (rng.unit() * 10.0 - 5.0) as f32,
            blur: (rng.unit() * 1.3) as f32,
            noise: (rng.unit() * 14.0) as u8,
            quality: 70 + (rng.unit() * 20.0) as u8,
            seed: n,
        }
    }
}

/// xorshift64*: enough randomness for speckle, and the same for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Draws `text` with its first character's left edge at `x` and its baseline at `baseline`,
/// each character `pitch` pixels on (or the font's own advance when `pitch` is 0).
fn draw(card: &mut RgbImage, text: &str, x: f32, baseline: f32, px: f32, pitch: f32, ink: Rgb<u8>) {
    let font = font();
    let scaled = font.as_scaled(PxScale::from(px));
    let mut pen = x;
    for c in text.chars() {
        let id = font.glyph_id(c);
        let glyph = id.with_scale_and_position(PxScale::from(px), ab_glyph::point(pen, baseline));
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (px, py) = (
                    bounds.min.x as i32 + gx as i32,
                    bounds.min.y as i32 + gy as i32,
                );
                if px < 0 || py < 0 || px >= card.width() as i32 || py >= card.height() as i32 {
                    return;
                }
                let pixel = card.get_pixel_mut(px as u32, py as u32);
                for (channel, ink) in pixel.0.iter_mut().zip(ink.0) {
                    let mixed = f32::from(*channel) * (1.0 - coverage) + f32::from(ink) * coverage;
                    *channel = mixed.round() as u8;
                }
            });
        }
        pen += if pitch > 0.0 {
            pitch
        } else {
            scaled.h_advance(id)
        };
    }
}

/// The font size at which OCR-B's characters are `pitch` apart.
fn size_for_pitch(pitch: f32) -> f32 {
    let font = font();
    let advance = font
        .as_scaled(PxScale::from(100.0))
        .h_advance(font.glyph_id('0'));
    100.0 * pitch / advance
}

fn portrait(width: u32) -> RgbImage {
    image::load_from_memory(crate::photos::SELFIE)
        .expect("the selfie decodes")
        .resize(width, width * 4 / 3, imageops::FilterType::Lanczos3)
        .to_rgb8()
}

/// The document, flat and sharp: an ID card's back (1000 × 630, 11.7 pixels a millimetre) or a
/// passport's data page (1250 × 880, 10 pixels a millimetre).
pub fn document(zone: &Printed<'_>) -> RgbImage {
    let lines = zone.lines();
    let dark = Rgb([28, 30, 40]);
    match zone.format {
        Format::Td1 => {
            let mut card = RgbImage::from_fn(1000, 630, |x, y| {
                // A faint guilloche-like wash, as printed cards have.
                let wave = ((x as f32 / 37.0).sin() * (y as f32 / 23.0).cos() * 6.0) as i16;
                Rgb([(214 + wave) as u8, (224 + wave) as u8, (232 - wave) as u8])
            });
            let small = 24.0;
            for (i, label) in [
                "REPUBLIC OF KAZAKHSTAN",
                "Place of birth  ALMATY",
                "Issued by  MINISTRY OF INTERNAL AFFAIRS",
                "Date of issue  12.05.2021",
            ]
            .iter()
            .enumerate()
            {
                draw(
                    &mut card,
                    label,
                    60.0,
                    70.0 + 42.0 * i as f32,
                    small,
                    0.0,
                    dark,
                );
            }
            // The zone: 10 characters an inch (2.54 mm, 29.7 pixels), lines 4.2 mm apart.
            let pitch = 29.7;
            let px = size_for_pitch(pitch);
            for (i, line) in lines.iter().enumerate() {
                draw(
                    &mut card,
                    line,
                    52.0,
                    475.0 + 50.0 * i as f32,
                    px,
                    pitch,
                    dark,
                );
            }
            card
        }
        Format::Td3 => {
            let mut page = RgbImage::from_fn(1250, 880, |x, y| {
                let wave = ((x as f32 / 41.0).cos() * (y as f32 / 29.0).sin() * 5.0) as i16;
                Rgb([(226 + wave) as u8, (220 + wave) as u8, (206 - wave) as u8])
            });
            imageops::overlay(&mut page, &portrait(330), 50, 120);
            let small = 26.0;
            for (i, label) in [
                "PASSPORT",
                "Surname  IVANOV",
                "Given names  PETR",
                "Nationality  RUSSIAN FEDERATION",
                "Date of birth  21.05.2006",
                "Date of expiry  09.09.2031",
            ]
            .iter()
            .enumerate()
            {
                draw(
                    &mut page,
                    label,
                    430.0,
                    140.0 + 55.0 * i as f32,
                    small,
                    0.0,
                    dark,
                );
            }
            let pitch = 25.4;
            let px = size_for_pitch(pitch);
            for (i, line) in lines.iter().enumerate() {
                draw(
                    &mut page,
                    line,
                    66.0,
                    790.0 + 50.0 * i as f32,
                    px,
                    pitch,
                    dark,
                );
            }
            page
        }
    }
}

/// The document photographed on a table as `shot` says, as JPEG bytes.
pub fn photo(zone: &Printed<'_>, shot: Shot) -> Vec<u8> {
    let document = document(zone);
    let (w, h) = (document.width(), document.height());
    let (cw, ch) = (w + w / 8, h + h / 6);
    let mut rng = Rng(shot.seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
    let angle = shot.rotation.to_radians();
    let (sin, cos) = angle.sin_cos();
    let (ccx, ccy) = (cw as f32 / 2.0, ch as f32 / 2.0);
    let (dcx, dcy) = (w as f32 / 2.0, h as f32 / 2.0);
    // Each pixel of the photo looks back into the document, turned; outside it, the table.
    let mut canvas = RgbImage::from_fn(cw, ch, |x, y| {
        let (dx, dy) = (x as f32 - ccx, y as f32 - ccy);
        let (sx, sy) = (dx * cos + dy * sin + dcx, -dx * sin + dy * cos + dcy);
        if sx >= 0.0 && sy >= 0.0 && sx < (w - 1) as f32 && sy < (h - 1) as f32 {
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let at = |x: f32, y: f32| document.get_pixel(x as u32, y as u32).0;
            let (a, b, c, d) = (
                at(x0, y0),
                at(x0 + 1.0, y0),
                at(x0, y0 + 1.0),
                at(x0 + 1.0, y0 + 1.0),
            );
            let mut out = [0u8; 3];
            for i in 0..3 {
                let top = f32::from(a[i]) * (1.0 - fx) + f32::from(b[i]) * fx;
                let bottom = f32::from(c[i]) * (1.0 - fx) + f32::from(d[i]) * fx;
                out[i] = (top * (1.0 - fy) + bottom * fy).round() as u8;
            }
            Rgb(out)
        } else {
            let grain = ((x / 3 + y / 7) % 11) as u8;
            Rgb([96 + grain, 78 + grain, 60 + grain])
        }
    });
    if shot.blur > 0.0 {
        canvas = imageops::blur(&canvas, shot.blur);
    }
    if shot.noise > 0 {
        let amplitude = i16::from(shot.noise);
        for pixel in canvas.pixels_mut() {
            for channel in &mut pixel.0 {
                let delta = (rng.next() % (2 * amplitude as u64 + 1)) as i16 - amplitude;
                *channel = (i16::from(*channel) + delta).clamp(0, 255) as u8;
            }
        }
    }
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(canvas)
        .write_with_encoder(JpegEncoder::new_with_quality(&mut out, shot.quality))
        .expect("JPEG encodes");
    out
}

/// The back of a Kazakh ID card for the holder of `iin`, expiring on `expiry` (`YYMMDD`),
/// photographed as `shot` says.
pub fn id_card_back(iin: &examreg_domain::Iin, expiry: &str, shot: Shot) -> Vec<u8> {
    let birth = iin.birth_date().format("%y%m%d").to_string();
    photo(
        &Printed {
            format: Format::Td1,
            document_code: "ID",
            issuing_state: "KAZ",
            document_number: "045612378",
            birth_date: &birth,
            sex: Some(iin.sex()),
            expiry_date: expiry,
            nationality: "KAZ",
            optional_data: iin.as_str(),
            surname: "ABDRAKHMANOVA",
            given_names: "AIGERIM",
        },
        shot,
    )
}

/// A passport's data page numbered `number`, issued by `state` (ICAO code), photographed as
/// `shot` says.
pub fn passport_page(number: &str, state: &str, expiry: &str, shot: Shot) -> Vec<u8> {
    photo(
        &Printed {
            format: Format::Td3,
            document_code: "P",
            issuing_state: state,
            document_number: number,
            birth_date: "060521",
            sex: Some(examreg_domain::Sex::Male),
            expiry_date: expiry,
            nationality: state,
            optional_data: "",
            surname: "IVANOV",
            given_names: "PETR",
        },
        shot,
    )
}
