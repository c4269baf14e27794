//! Reading the machine-readable zone off a document photo: find the zone's lines cheaply, then
//! recognise only those with PaddleOCR's PP-OCRv4 recognition network (ONNX, run by the pure
//! Rust `tract`), then parse them under the check digits ([`examreg_domain::mrz`]).
//!
//! Finding the lines needs no network. Ink is what is darker than its neighbourhood (a box
//! mean, from an integral image); the skew (up to ±7°) is the angle at which the ink's rows
//! line up best (the largest sum of squares of the row histogram of the ink points projected at
//! that angle); the photo is turned upright by it; text lines are the bands of rows dense in
//! ink, and a zone's lines are the widest ones, of one height, at the bottom of the document.
//! The few bands from the bottom are recognised one by one until some `n` consecutive ones
//! parse (three for an ID card, two for a passport).
//!
//! Recognition decodes the network's output (CTC: one class per column of 8 pixels, blank 0)
//! over the zone's alphabet only (A–Z, 0–9, `<` and the shapes a chevron is mistaken for), so
//! it cannot answer with a character a zone never has.

use crate::checks;
use examreg_domain::mrz::{self, Format, Unreadable, Zone};
use image::GrayImage;
use std::path::Path;
use tract_onnx::prelude::*;

/// The network's input height.
const LINE_HEIGHT: u32 = 48;
/// The long side the photo is brought to before reading (a zone's characters are then
/// 20–40 pixels high on a card that fills the frame).
const BASE_SIDE: u32 = 1600;
/// Bands tried from the bottom of the document.
const MAX_BANDS: usize = 6;

/// The widths the network is planned for (its reshapes need a fixed input shape): a piece of
/// a line is padded to the narrowest that holds it, or squeezed to the widest. The network's
/// cost grows with the width: a cell read again alone costs a third of a piece, and the
/// widest holds a piece of ten characters with its margins unsqueezed (squeezed ones cost
/// two ID cards of the 50 in the accuracy test).
const WIDTHS: [u32; 3] = [128, 256, 352];
/// Characters recognised at once. The network reads a piece of up to about ten characters
/// faithfully but drops characters from a whole line, the more so next to a long run of
/// chevrons (it was trained on short text), so a line is cut between characters into pieces
/// of at most this many (ten: a TD1 line in three pieces and a TD3 line in five; with eight,
/// the same accuracy test read 17 passports of 20 instead of 20, at half again the runs).
const PIECE: usize = 10;

/// The recognition network, loaded once per process and shared (a run holds no state).
pub struct Reader {
    /// One plan per width of [`WIDTHS`].
    plans: Vec<(u32, Arc<TypedRunnableModel>)>,
    /// For each output class, the zone's character it stands for; `None` for every other.
    classes: Vec<Option<u8>>,
}

/// Why a photo's zone was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no machine-readable zone was found")]
    NotFound,
    #[error("the zone was found but not read: {0}")]
    Unreadable(#[from] Unreadable),
    #[error("the photo cannot be decoded: {0}")]
    Image(String),
    #[error("the recognition network failed: {0}")]
    Model(String),
}

/// What was recognised of a line: its strip, its cells, and the character found in each
/// (with its score), if any.
struct Reading {
    strip: GrayImage,
    cells: Cells,
    found: Vec<Option<(u8, f32)>>,
}

/// A band of text rows in the upright photo, in its pixels.
#[derive(Debug, Clone, Copy)]
struct Band {
    top: u32,
    bottom: u32,
    left: u32,
    right: u32,
}

impl Band {
    fn height(&self) -> u32 {
        self.bottom - self.top
    }
    fn width(&self) -> u32 {
        self.right - self.left
    }
}

/// The issuing state in a first line's cells (positions 2 to 4 in both formats), if all three
/// were read.
fn issuing_state(found: &[Option<(u8, f32)>]) -> Option<Vec<u8>> {
    found
        .get(2..5)?
        .iter()
        .map(|cell| cell.map(|(c, _)| c))
        .collect()
}

impl Reader {
    /// Loads and optimises the network (half a second a width).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let model = tract_onnx::onnx()
            .model_for_path(path)
            .map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))?;
        let dictionary = model
            .properties
            .get("onnx.metadata_props.character")
            .ok_or_else(|| anyhow::anyhow!("{} has no character dictionary", path.display()))?
            .try_as_plain_ram()
            .and_then(|plain| plain.to_scalar::<String>().cloned())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Class 0 is CTC's blank, then the dictionary's lines, then a space.
        let mut classes = vec![None];
        classes.extend(dictionary.lines().map(|entry| {
            let mut chars = entry.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => alphabet(c),
                (Some(_) | None, _) => None,
            }
        }));
        classes.push(None);
        anyhow::ensure!(
            (b'A'..=b'Z')
                .chain(b'0'..=b'9')
                .chain([b'<'])
                .all(|c| classes.contains(&Some(c))),
            "{}'s dictionary lacks part of the zone's alphabet",
            path.display()
        );
        let mut plans = Vec::new();
        for width in WIDTHS {
            let mut model = model.clone();
            model
                .set_input_fact(
                    0,
                    InferenceFact::dt_shape(
                        f32::datum_type(),
                        tvec!(1, 3, LINE_HEIGHT as usize, width as usize),
                    ),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let plan = model
                .into_optimized()
                .and_then(|m| m.into_runnable())
                .map_err(|e| anyhow::anyhow!("optimising {}: {e}", path.display()))?;
            plans.push((width, plan));
        }
        Ok(Self { plans, classes })
    }

    /// Reads the zone of `format` off a photo (JPEG or PNG bytes, upright). CPU-bound: call it
    /// on a blocking thread.
    pub fn read_photo(&self, bytes: &[u8], format: Format) -> Result<Zone, ReadError> {
        let image = image::load_from_memory(bytes).map_err(|e| ReadError::Image(e.to_string()))?;
        let gray = checks::luma_of(&image);
        drop(image);
        self.read(&gray, format)
    }

    /// Reads the zone of `format` off a grey photo.
    pub fn read(&self, gray: &GrayImage, format: Format) -> Result<Zone, ReadError> {
        let base = checks::downscale(gray, BASE_SIDE);
        let angle = skew(&ink(&half(&base)));
        let upright = rotate(&base, -angle);
        let small = half(&upright);
        let bands = bands(&ink(&small));
        if bands.len() < format.lines() {
            return Err(ReadError::NotFound);
        }
        // Per band: not yet recognised, not a line of a zone, or what was read of it.
        let mut read: Vec<Option<Option<Reading>>> = (0..bands.len()).map(|_| None).collect();
        let mut last_error = None;
        // From the bottom up: the zone is the document's last lines.
        'windows: for end in (format.lines()..=bands.len()).rev() {
            let start = end - format.lines();
            if bands.len() - end + format.lines() > MAX_BANDS {
                break;
            }
            let window = &bands[start..end];
            if !alike(window) {
                continue;
            }
            let mut lines: Vec<String> = Vec::with_capacity(format.lines());
            for (i, band) in window.iter().enumerate() {
                if read[start + i].is_none() {
                    let strip = strip(&upright, band);
                    read[start + i] = Some(self.recognise_line(strip, format.width())?);
                }
                let Some(Some(reading)) = &read[start + i] else {
                    continue 'windows;
                };
                // The issuing state: its own cells on the first line, the line read above
                // on the others.
                let state = match lines.first() {
                    Some(first) => first.as_bytes().get(2..5).map(<[u8]>::to_vec),
                    None => issuing_state(&reading.found),
                };
                match self.finish(reading, format, i, state.as_deref())? {
                    Some(line) => lines.push(line),
                    None => continue 'windows,
                }
            }
            match mrz::parse(format, &lines) {
                Ok(zone) => return Ok(zone),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.map_or(ReadError::NotFound, ReadError::Unreadable))
    }

    /// A line of `chars` monospaced characters, 48 pixels high (`None` if it is not one). The
    /// print's extent gives the pitch and so each character's cell; the line is recognised in
    /// pieces of whole cells, and each character the network emits is put in the cell under
    /// its position. A cell left empty (the network drops characters, most often in and after
    /// a run of chevrons) is read again in a window of its own and its neighbours'.
    fn recognise_line(&self, strip: GrayImage, chars: usize) -> Result<Option<Reading>, ReadError> {
        let Some(cells) = Cells::of(&strip, chars) else {
            return Ok(None);
        };
        let mut found: Vec<Option<(u8, f32)>> = vec![None; chars];
        let count = chars.div_ceil(PIECE);
        let bounds: Vec<usize> = (0..=count).map(|k| chars * k / count).collect();
        for pair in bounds.windows(2) {
            self.read_cells(&strip, &cells, pair[0], pair[1], &mut found)?;
        }
        // Mostly empty: not a line of characters at this pitch.
        if found.iter().filter(|f| f.is_some()).count() * 2 < chars {
            return Ok(None);
        }
        for i in 0..chars {
            // Again with a neighbour either side, then alone.
            for (from, to) in [(i.saturating_sub(1), (i + 2).min(chars)), (i, i + 1)] {
                if found[i].is_some() {
                    break;
                }
                let mut again = vec![None; chars];
                self.read_cells(&strip, &cells, from, to, &mut again)?;
                found[i] = again[i];
            }
        }
        Ok(Some(Reading {
            strip,
            cells,
            found,
        }))
    }

    /// The text of a line read as line `line` of a `format` zone issued by `state` (as read).
    /// A cell the readings left empty between fillers is a filler (a chevron is what the
    /// network loses most). One where the zone has a digit — a date, a check digit, or on a
    /// Kazakh document a digit of the IIN or the number whose other digits were read — is the
    /// likeliest digit over the steps under it read alone (the network drops a check digit
    /// after a run of chevrons, and the IIN's last digit before them), which the check digits
    /// then judge like any other. Anywhere else the line is not read.
    fn finish(
        &self,
        reading: &Reading,
        format: Format,
        line: usize,
        state: Option<&[u8]>,
    ) -> Result<Option<String>, ReadError> {
        let found = &reading.found;
        let chars = found.len();
        let filler_at = |j: usize| {
            found
                .get(j)
                .copied()
                .flatten()
                .is_some_and(|(c, _)| c == b'<')
        };
        let character_at = |j: usize| {
            found
                .get(j)
                .copied()
                .flatten()
                .is_some_and(|(c, _)| c != b'<')
        };
        // A cell the network left empty inside a run of fillers, with at most two more empty
        // cells beside it, is a filler: the network sometimes drops a chevron or two of a
        // long run. A character missed there instead fails its field's check digit.
        let within_fillers = |i: usize| {
            let before = (i.saturating_sub(3)..i).rev().find(|&j| found[j].is_some());
            let after = (i + 1..(i + 4).min(chars)).find(|&j| found[j].is_some());
            match (before, after) {
                (Some(b), Some(a)) => a - b <= 4 && filler_at(b) && filler_at(a),
                _ => false,
            }
        };
        let kazakh_runs = if state == Some(b"KAZ".as_slice()) {
            format.kazakh_digits(line)
        } else {
            Vec::new()
        };
        let digit_at = |i: usize| {
            format.digit_at(line, i)
                || kazakh_runs
                    .iter()
                    .any(|run| run.contains(&i) && run.clone().all(|j| j == i || character_at(j)))
        };
        let mut text = Vec::with_capacity(chars);
        for (i, cell) in found.iter().enumerate() {
            match *cell {
                // Not a character a digit is mistaken for (a `W` for the composite's 3
                // after the chevrons): the likeliest digit instead.
                Some((c, _)) if digit_at(i) && !mrz::reads_as_digit(c) => {
                    match self.forced_digit(&reading.strip, &reading.cells, i)? {
                        Some(digit) => text.push(digit),
                        None => return Ok(None),
                    }
                }
                Some((c, _)) => text.push(c),
                None if within_fillers(i) => text.push(b'<'),
                None if digit_at(i) => {
                    match self.forced_digit(&reading.strip, &reading.cells, i)? {
                        Some(digit) => text.push(digit),
                        None => return Ok(None),
                    }
                }
                None => return Ok(None),
            }
        }
        Ok(Some(String::from_utf8_lossy(&text).into_owned()))
    }

    /// Cell `i` of a strip read alone: the digit with the best score at any step under the
    /// cell, whatever the blank scores.
    fn forced_digit(
        &self,
        strip: &GrayImage,
        cells: &Cells,
        i: usize,
    ) -> Result<Option<u8>, ReadError> {
        let (piece, offset) = cells.piece(strip, i, i + 1);
        let (steps, step_width) = self.scores(&piece)?;
        let mut best: Option<(u8, f32)> = None;
        for (t, step) in steps.outer_iter().enumerate() {
            if cells.at((t as f32 + 0.5) * step_width + offset) != Some(i) {
                continue;
            }
            for (class, &score) in step.iter().enumerate().skip(1) {
                if let Some(Some(c)) = self.classes.get(class)
                    && c.is_ascii_digit()
                    && best.is_none_or(|(_, b)| score > b)
                {
                    best = Some((*c, score));
                }
            }
        }
        Ok(best.map(|(c, _)| c))
    }

    /// Recognises cells `from..to` of a strip and files each character in its cell (the more
    /// confident of two in one cell).
    fn read_cells(
        &self,
        strip: &GrayImage,
        cells: &Cells,
        from: usize,
        to: usize,
        found: &mut [Option<(u8, f32)>],
    ) -> Result<(), ReadError> {
        let (piece, offset) = cells.piece(strip, from, to);
        for (c, x, score) in self.recognise(&piece)? {
            let Some(i) = cells.at(x + offset).filter(|i| (from..to).contains(i)) else {
                continue;
            };
            if found[i].is_none_or(|(_, best)| score > best) {
                found[i] = Some((c, score));
            }
        }
        Ok(())
    }

    /// The network's scores for one piece of text, 48 pixels high: per time step, per class;
    /// and the width of a step in the piece's pixels.
    fn scores(&self, line: &GrayImage) -> Result<(tract_ndarray::Array2<f32>, f32), ReadError> {
        let (width, plan) = self
            .plans
            .iter()
            .find(|(width, _)| *width >= line.width())
            .or(self.plans.last())
            .ok_or_else(|| ReadError::Model("no plan".into()))?;
        let (line, stretch) = if line.width() > *width {
            let squeezed = image::imageops::resize(
                line,
                *width,
                LINE_HEIGHT,
                image::imageops::FilterType::Triangle,
            );
            (
                squeezed,
                f32::from(u16::try_from(line.width()).unwrap_or(u16::MAX)) / *width as f32,
            )
        } else {
            (line.clone(), 1.0)
        };
        // The padding is the line's own paper.
        let paper = background(&line);
        let (w, h) = (*width as usize, LINE_HEIGHT as usize);
        // PaddleOCR's normalisation: (x / 255 - 0.5) / 0.5, three equal channels.
        let input = tract_ndarray::Array4::from_shape_fn((1, 3, h, w), |(_, _, y, x)| {
            let p = if (x as u32) < line.width() {
                line.get_pixel(x as u32, y as u32).0[0]
            } else {
                paper
            };
            f32::from(p) / 127.5 - 1.0
        });
        let output = plan
            .run(tvec!(Tensor::from(input).into()))
            .map_err(|e| ReadError::Model(e.to_string()))?;
        let scores = output[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| ReadError::Model(e.to_string()))?;
        if scores.ndim() != 3 || scores.shape()[0] != 1 || scores.shape()[1] == 0 {
            return Err(ReadError::Model(format!(
                "unexpected output {:?}",
                scores.shape()
            )));
        }
        let steps = scores.index_axis(tract_ndarray::Axis(0), 0);
        let step_width = w as f32 / steps.shape()[0] as f32 * stretch;
        let steps = steps
            .to_owned()
            .into_dimensionality::<tract_ndarray::Ix2>()
            .map_err(|e| ReadError::Model(e.to_string()))?;
        Ok((steps, step_width))
    }

    /// One piece of text, 48 pixels high: each character the network emits, with its centre
    /// (in the piece's pixels) and its score.
    fn recognise(&self, line: &GrayImage) -> Result<Vec<(u8, f32, f32)>, ReadError> {
        let (steps, step_width) = self.scores(line)?;

        // CTC: a character is a run of steps whose best class is it; blanks separate repeats.
        let mut glyphs = Vec::new();
        let mut run: Option<(u8, usize, usize, f32)> = None;
        let close = |run: Option<(u8, usize, usize, f32)>, glyphs: &mut Vec<(u8, f32, f32)>| {
            if let Some((c, first, last, score)) = run {
                let centre = (first + last + 1) as f32 / 2.0 * step_width;
                glyphs.push((c, centre, score));
            }
        };
        for (t, step) in steps.outer_iter().enumerate() {
            // The best of the blank and the zone's characters, whatever else scores higher.
            let mut best = (step[0], None);
            for (class, score) in step.iter().enumerate().skip(1) {
                if let Some(Some(c)) = self.classes.get(class)
                    && *score > best.0
                {
                    best = (*score, Some(*c));
                }
            }
            run = match (run, best.1) {
                (Some((c, first, _, score)), Some(now)) if now == c => {
                    Some((c, first, t, score.max(best.0)))
                }
                (previous, now) => {
                    close(previous, &mut glyphs);
                    now.map(|c| (c, t, t, best.0))
                }
            };
        }
        close(run, &mut glyphs);
        Ok(glyphs)
    }
}

/// The zone's character a dictionary entry stands for, chevron look-alikes included.
fn alphabet(c: char) -> Option<u8> {
    match c {
        'A'..='Z' | '0'..='9' | '<' => u8::try_from(c).ok(),
        // The zone has no lower case; a recogniser trained on prose may still prefer it.
        'a'..='z' => u8::try_from(c.to_ascii_uppercase()).ok(),
        '«' | '‹' | '〈' | '《' | 'く' | '＜' => Some(b'<'),
        _ => None,
    }
}

fn half(gray: &GrayImage) -> GrayImage {
    checks::downscale(gray, gray.width().max(gray.height()) / 2)
}

/// Pixels darker than the mean of their neighbourhood by a margin: print, edges, shadows.
fn ink(gray: &GrayImage) -> image::GrayImage {
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let mut integral = vec![0u64; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u64;
        for x in 0..w {
            row += u64::from(gray.as_raw()[y * w + x]);
            integral[(y + 1) * (w + 1) + x + 1] = integral[y * (w + 1) + x + 1] + row;
        }
    }
    let r = (w.max(h) / 60).max(4);
    let mut out = GrayImage::new(w as u32, h as u32);
    for y in 0..h {
        let (y0, y1) = (y.saturating_sub(r), (y + r + 1).min(h));
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(r), (x + r + 1).min(w));
            let sum = integral[y1 * (w + 1) + x1] + integral[y0 * (w + 1) + x0]
                - integral[y0 * (w + 1) + x1]
                - integral[y1 * (w + 1) + x0];
            let mean = sum as f64 / ((y1 - y0) * (x1 - x0)) as f64;
            let p = f64::from(gray.as_raw()[y * w + x]);
            if mean - p > (mean * 0.12).max(12.0) {
                out.as_mut()[y * w + x] = 255;
            }
        }
    }
    out
}

/// The angle (radians) that lines the ink's rows up best, within ±7°.
fn skew(ink: &GrayImage) -> f64 {
    let points: Vec<(f64, f64)> = ink
        .enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] > 0)
        .map(|(x, y, _)| (f64::from(x), f64::from(y)))
        .collect();
    let stride = (points.len() / 40_000).max(1);
    let diagonal = f64::from(ink.width() + ink.height());
    let mut histogram = vec![0u32; (2.0 * diagonal) as usize + 2];
    let mut best = (0u64, 0.0);
    for step in -28..=28 {
        let angle = f64::from(step) * 0.25_f64.to_radians();
        let (sin, cos) = angle.sin_cos();
        histogram.iter_mut().for_each(|h| *h = 0);
        for &(x, y) in points.iter().step_by(stride) {
            let row = (y * cos - x * sin + diagonal) as usize;
            histogram[row] += 1;
        }
        let score: u64 = histogram.iter().map(|&h| u64::from(h) * u64::from(h)).sum();
        if score > best.0 {
            best = (score, angle);
        }
    }
    best.1
}

/// The photo turned by `angle` about its centre (bilinear), the uncovered corners white.
fn rotate(gray: &GrayImage, angle: f64) -> GrayImage {
    if angle.abs() < 1e-6 {
        return gray.clone();
    }
    let (w, h) = (gray.width(), gray.height());
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let (sin, cos) = angle.sin_cos();
    GrayImage::from_fn(w, h, |x, y| {
        let (dx, dy) = (f64::from(x) - cx, f64::from(y) - cy);
        // The source of (x, y) under a turn by `angle`.
        let sx = dx * cos + dy * sin + cx;
        let sy = -dx * sin + dy * cos + cy;
        image::Luma([sample(gray, sx, sy)])
    })
}

fn sample(gray: &GrayImage, x: f64, y: f64) -> u8 {
    let (w, h) = (gray.width() as i64, gray.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let at = |x: i64, y: i64| -> f64 {
        if x < 0 || y < 0 || x >= w || y >= h {
            255.0
        } else {
            f64::from(gray.get_pixel(x as u32, y as u32).0[0])
        }
    };
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
    let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
    (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
}

/// Text lines of an upright ink map, top to bottom, in the full-size photo's pixels (twice the
/// ink map's): bands of rows dense in ink, each with its widest run of inked columns.
fn bands(ink: &GrayImage) -> Vec<Band> {
    let (w, h) = (ink.width() as usize, ink.height() as usize);
    let raw = ink.as_raw();
    let profile: Vec<u32> = (0..h)
        .map(|y| raw[y * w..(y + 1) * w].iter().filter(|&&p| p > 0).count() as u32)
        .collect();
    let peak = profile.iter().copied().max().unwrap_or(0);
    let threshold = (peak / 5).max(3);
    let mut rows = Vec::new();
    let mut y = 0;
    while y < h {
        if profile[y] <= threshold {
            y += 1;
            continue;
        }
        let start = y;
        while y < h && profile[y] > threshold {
            y += 1;
        }
        if y - start >= 4 {
            rows.push((start, y));
        }
    }
    // The widest run of inked columns with gaps narrower than a line's height: a zone has no
    // spaces (fillers join its words), and a wider gap keeps a textured background beside
    // the card out of the band.
    let measure = |top: usize, bottom: usize| -> Option<Band> {
        let gap = bottom - top;
        let mut best = (0, 0);
        let mut run: Option<(usize, usize)> = None;
        for x in (0..w).filter(|&x| (top..bottom).any(|y| raw[y * w + x] > 0)) {
            let (s, e) = match run {
                Some((s, last)) if x - last <= gap => (s, x),
                Some(_) | None => (x, x),
            };
            run = Some((s, e));
            if e - s > best.1 - best.0 {
                best = (s, e);
            }
        }
        (best.1 > best.0).then(|| Band {
            top: 2 * top as u32,
            bottom: 2 * bottom as u32,
            left: 2 * best.0 as u32,
            right: 2 * best.1 as u32 + 1,
        })
    };
    let measured: Vec<Band> = rows.iter().filter_map(|&(a, b)| measure(a, b)).collect();
    // A zone's lines are among the widest on the document.
    let widest = measured.iter().map(Band::width).max().unwrap_or(0);
    let wide: Vec<Band> = measured
        .into_iter()
        .filter(|b| b.width() * 2 >= widest && b.width() >= 8 * b.height())
        .collect();
    // A band twice the usual height of the wide ones is two lines run together by blur:
    // split at its thinnest rows.
    let mut heights: Vec<u32> = wide.iter().map(Band::height).collect();
    heights.sort_unstable();
    let usual = heights.get(heights.len() / 2).copied().unwrap_or(0) as usize / 2;
    let mut out = Vec::new();
    for band in wide {
        let (a, b) = (band.top as usize / 2, band.bottom as usize / 2);
        if usual == 0 || b - a <= usual * 17 / 10 {
            out.push(band);
            continue;
        }
        let parts = ((b - a) as f64 / usual as f64).round().max(2.0) as usize;
        let step = (b - a) / parts;
        let mut from = a;
        for i in 1..=parts {
            let cut = if i == parts {
                b
            } else {
                let around = a + i * step;
                let (lo, hi) = (
                    around.saturating_sub(step / 3),
                    (around + step / 3).min(b - 1),
                );
                (lo..=hi).min_by_key(|&y| profile[y]).unwrap_or(around)
            };
            if cut > from
                && let Some(part) = measure(from, cut)
            {
                out.push(part);
            }
            from = cut;
        }
    }
    out
}

/// Lines of one zone: about the same height and width.
fn alike(window: &[Band]) -> bool {
    let (lo, hi) = window.iter().fold((u32::MAX, 0), |(lo, hi), b| {
        (lo.min(b.height()), hi.max(b.height()))
    });
    let (narrow, wide) = window.iter().fold((u32::MAX, 0), |(lo, hi), b| {
        (lo.min(b.width()), hi.max(b.width()))
    });
    hi * 10 <= lo * 18 && wide * 10 <= narrow * 16
}

/// The brightest tenth of a strip's levels: its paper.
fn background(strip: &GrayImage) -> u8 {
    let mut levels: Vec<u8> = strip.as_raw().clone();
    levels.sort_unstable();
    levels[levels.len() * 9 / 10]
}

/// Where the characters of a monospaced strip are: the print's first column and the pitch
/// (OCR-B's glyphs fill about 70 % of it), measured on the strip.
struct Cells {
    first: f32,
    pitch: f32,
    chars: usize,
    paper: u8,
    /// Per column, how much darker than the paper it is.
    darkness: Vec<u32>,
}

impl Cells {
    fn of(strip: &GrayImage, chars: usize) -> Option<Self> {
        let paper = background(strip);
        let mut levels: Vec<u8> = strip.as_raw().clone();
        levels.sort_unstable();
        let dark = levels[levels.len() / 20];
        let threshold = paper.saturating_sub((paper.saturating_sub(dark) / 2).max(30));
        let (w, h) = (strip.width(), strip.height());
        let darkness: Vec<u32> = (0..w)
            .map(|x| {
                (0..h)
                    .map(|y| u32::from(paper.saturating_sub(strip.get_pixel(x, y).0[0])))
                    .sum()
            })
            .collect();
        let inked: Vec<bool> = (0..w)
            .map(|x| {
                (0..h)
                    .filter(|&y| strip.get_pixel(x, y).0[0] < threshold)
                    .count()
                    >= 2
            })
            .collect();
        // The print: the longest run of inked columns with gaps under a line's height.
        let (mut best, mut run) = ((0u32, 0u32), None::<(u32, u32)>);
        for x in (0..w).filter(|&x| inked[x as usize]) {
            let (s, e) = match run {
                Some((s, last)) if x - last <= h => (s, x),
                Some(_) | None => (x, x),
            };
            run = Some((s, e));
            if e - s > best.1 - best.0 {
                best = (s, e);
            }
        }
        let (first, last) = best;
        if last <= first || chars < 2 {
            return None;
        }
        Some(Self {
            first: first as f32,
            pitch: (last - first) as f32 / (chars as f32 - 1.0 + 0.7),
            chars,
            paper,
            darkness,
        })
    }

    /// The cell under column `x`.
    fn at(&self, x: f32) -> Option<usize> {
        let i = ((x - self.first) / self.pitch + 0.15).floor();
        (i >= 0.0 && (i as usize) < self.chars).then_some(i as usize)
    }

    /// The column between cells `i - 1` and `i`: the least inked near the cell's edge.
    fn cut(&self, i: usize) -> u32 {
        let at = self.first + (i as f32 - 0.15) * self.pitch;
        let last = self.darkness.len().saturating_sub(1) as f32;
        if i == 0 {
            return (self.first - self.pitch * 0.4).max(0.0) as u32;
        }
        if i >= self.chars {
            return (at + self.pitch * 0.25).clamp(0.0, last) as u32;
        }
        let lo = (at - self.pitch * 0.25).clamp(0.0, last) as u32;
        let hi = (at + self.pitch * 0.25).clamp(0.0, last) as u32;
        (lo..=hi)
            .min_by_key(|&x| self.darkness[x as usize])
            .unwrap_or(at as u32)
    }

    /// Cells `from..to` on their own paper with a margin, and the strip column of the piece's
    /// first column (add it to a position in the piece to get one in the strip).
    fn piece(&self, strip: &GrayImage, from: usize, to: usize) -> (GrayImage, f32) {
        const MARGIN: u32 = 12;
        let a = self.cut(from).min(strip.width() - 1);
        let b = self.cut(to).clamp(a + 1, strip.width());
        let mut piece = GrayImage::from_pixel(
            b - a + 2 * MARGIN,
            strip.height(),
            image::Luma([self.paper]),
        );
        image::imageops::replace(
            &mut piece,
            &image::imageops::crop_imm(strip, a, 0, b - a, strip.height()).to_image(),
            i64::from(MARGIN),
            0,
        );
        (piece, a as f32 - MARGIN as f32)
    }
}

/// A band cut out with a margin and scaled to the network's height.
fn strip(upright: &GrayImage, band: &Band) -> GrayImage {
    let pad_y = band.height() * 3 / 10 + 2;
    let pad_x = band.height();
    let top = band.top.saturating_sub(pad_y);
    let bottom = (band.bottom + pad_y).min(upright.height());
    let left = band.left.saturating_sub(pad_x);
    let right = (band.right + pad_x).min(upright.width());
    let crop = image::imageops::crop_imm(upright, left, top, right - left, bottom - top).to_image();
    let width = (f64::from(crop.width()) * f64::from(LINE_HEIGHT) / f64::from(crop.height()))
        .round()
        .clamp(16.0, 3200.0) as u32;
    image::imageops::resize(
        &crop,
        width,
        LINE_HEIGHT,
        image::imageops::FilterType::Triangle,
    )
}
