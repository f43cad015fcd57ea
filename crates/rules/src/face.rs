//! The face rules of an enrolment face photo: exactly one face, at least 128×128 px, and at least
//! 1/3 of the picture — checked with a real face detector, not assumed.
//!
//! docs/DEVICES.md RC-DEV-07 to RC-DEV-12 (enrolment, "face photo"): JPEG or PNG under 400 KB, face region ≥ 128×128 px, face
//! ≥ 1/3 of the picture (read as: the face box is at least 1/3 of the picture's width **and** of
//! its height), exactly one face. This module owns everything after the container checks:
//! decoding the pixels, finding the faces, and the three face rules. The container rules (size,
//! format by magic bytes, readable header) stay in [`crate::photo::inspect`], which
//! [`FaceChecker::check`] calls first.
//!
//! ## How a check runs
//! 1. [`photo::inspect`] with the configured `max_photo_bytes`: size, JPEG/PNG magic, header.
//! 2. Decode under [`image::Limits`] (10,000 px a side, 64 MiB, the same bounds as `photo`), apply
//!    the EXIF orientation (phones store portraits sideways plus a tag; the detector only finds
//!    upright frontal faces), convert to 8-bit grey.
//! 3. Downscale so the longer side is at most [`WORK_SIDE`] (320 px) — for speed only (the first
//!    cascade stage scans every pyramid level, so its cost follows the pixel count). The rules
//!    are judged in original pixels: every box is mapped back and clipped to the picture. A face
//!    that can pass (≥ 1/3 of the picture) is ≥ 107 px in the working picture, far above the
//!    detector's 40 px window; faces smaller than 1/8 of the longer side (40/320) are not seen at
//!    all (a background passer-by in a large photo is ignored rather than counted, and a face far
//!    too small for the picture is reported as no face). 240 px still finds every fixture face
//!    but the face in `face_small_in_picture.jpg` drops from score 21 to 11 there; 480 px costs
//!    about twice the scanning for no better answer.
//! 4. Run the SeetaFace FuSt cascade (the `rustface` crate, model compiled in from
//!    `assets/seeta_fd_frontal_v1.0.bin`, BSD-2), drop boxes whose centre lies in a better box,
//!    then apply the rules in this order: [`FaceError::NoFace`], [`FaceError::MultipleFaces`],
//!    [`FaceError::FaceTooSmall`] (pixels), [`FaceError::FaceTooSmallInPicture`] (proportion).
//!
//! ## Detector parameters (tuned on the NASA portrait fixtures in `tests/data/faces/`)
//! - score threshold [`SCORE_THRESHOLD`] = 2.0, the SeetaFace/rustface demo value. Measured
//!   with the threshold lowered to 0.3: every real face in the fixtures scores 14–26, the
//!   shuttle picture yields no candidate at all, and the only other candidate anywhere (between
//!   the two faces of `two_faces.jpg`, scanned at 480 px) scores 0.5 — a wide margin both ways.
//!   The crate default 3.85 would pass the fixtures too; 2.0 leaves more room for dim or slightly
//!   turned real faces, because a missed face ("no face" for a good photo) is the worse mistake
//!   for an enrolling worker than a rare false second face.
//! - pyramid scale factor [`PYRAMID_SCALE`] = 0.8 (the demo value): each level is 80 % of the
//!   previous one, so a face is never more than 25 % off the 40 px window at its best level,
//!   which the cascade tolerates; 0.9 would double the levels (and the first-stage cost).
//! - slide window step [`WINDOW_STEP`] = 4 px both ways (the demo value): finer steps cost 4× per
//!   halving and the later cascade stages re-centre the box anyway.
//! - min face size 40 px (the detector window): `set_min_face_size` is stored but not used by
//!   `rustface` 0.1.7 (the line that would use it is commented out), so the pyramid always starts
//!   at 1:1 — our [`WORK_SIDE`] downscale is what bounds the smallest face and the cost.
//!
//! ## Sharing and cost
//! `rustface` detectors are `Box<dyn Detector>` (not `Send`) and need `&mut self`, so neither a
//! `Mutex<detector>` nor a pool can be shared between threads without `unsafe`. [`FaceChecker`]
//! instead parses the model once (`rustface::Model` is `Send + Sync`) and builds a fresh
//! detector per call from a clone of it. The clone copies about 1.2 MB of weights: measured
//! 0.8–11 ms, against 0.09–0.3 s to parse the model and about 0.6 s for a whole check (same debug
//! build, see below) — so a per-call detector costs at most 2 % of a check and buys fully parallel
//! checks with no lock, where a `Mutex` would serialise every upload behind one detector. The
//! checker is `Send + Sync`; share it as `Arc<FaceChecker>`. `rustface` (default `rayon`
//! feature) also fans each MLP layer out onto the global rayon pool, so one check may use more
//! than one core.
//!
//! **Blocking**: a check decodes and scans a picture — hundreds of milliseconds of CPU. Call it
//! from `tokio::task::spawn_blocking`, never directly on an async worker.
//!
//! Measured on the 2-core build machine while other workspaces were compiling (load average
//! 10–12), debug test profile — dependencies at `opt-level = 1`, this crate at 0 — so
//! an upper bound; an idle machine and a release build are faster:
//! `cargo test -p rollcall-platform --lib face::tests::check_time -- --ignored --nocapture`
//! → `portrait_ok.jpg` (360×420, 24 KB, scanned at 274×320): **0.58 s per check** (decode,
//! detect and rules; mean of 20 checks), model parse 88 ms, model clone 0.8 ms (load average 11
//! during the run). Earlier runs of the same test (same source and profile, in a scratch crate
//! while the workspace built): 0.57–0.79 s per check, parse 0.26–0.32 s, clone 1–11 ms — the
//! figures move with the load.
//!
//! Bounds: rustface 0.1.7 computes `scaled_width - 40` in `u32` for every pyramid level; if
//! float rounding makes a level 39 px wide, that underflows (a panic in debug, an out-of-bounds
//! scan in release). `working_size` replays the crate's pyramid arithmetic and shrinks the
//! working picture by a pixel until every level is at least 40 px, so the detector is only ever
//! called on pictures it handles.

use std::io::{self, Cursor};

use image::imageops::{self, FilterType};
use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use rustface::{ImageData, Model};

use crate::photo::{self, PhotoError, PhotoFormat};

/// The SeetaFace frontal detection model, compiled in (see `assets/README.md`).
static MODEL_BYTES: &[u8] = include_bytes!("../assets/seeta_fd_frontal_v1.0.bin");

/// Smallest face region accepted, in pixels a side (RC-DEV-09).
pub const MIN_FACE_SIDE: u32 = 128;
/// Longest side of the picture the detector scans (larger pictures are downscaled first).
pub const WORK_SIDE: u32 = 320;
/// Detections scoring below this are not faces.
pub const SCORE_THRESHOLD: f64 = 2.0;
/// Ratio between adjacent levels of the detector's image pyramid.
pub const PYRAMID_SCALE: f32 = 0.8;
/// Horizontal and vertical step of the sliding window, in pixels.
pub const WINDOW_STEP: u32 = 4;
/// The FuSt detector's fixed window (`K_WND_SIZE` in rustface): the smallest face it can find.
const DETECTOR_WINDOW: u32 = 40;
/// Largest width or height decoded; the same bound `photo::inspect` puts on the header.
const MAX_SIDE: u32 = 10_000;
/// Most memory the decoder may allocate (also bounds the decoded picture itself).
const MAX_ALLOC: u64 = 64 * 1024 * 1024;

/// A face box in the upright picture's pixels (clipped to the picture).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceBox {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// A photo that passed every face rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceReport {
    /// JPEG or PNG, from [`photo::inspect`].
    pub format: PhotoFormat,
    /// Width of the upright picture (after EXIF orientation), in pixels.
    pub width: u32,
    /// Height of the upright picture, in pixels.
    pub height: u32,
    /// The one face.
    pub face: FaceBox,
    /// The detector's score for it (higher is surer; at least [`SCORE_THRESHOLD`]).
    pub score: f64,
}

/// Why a face photo was refused: the message (Chinese) names the rule, [`FaceError::code`] is
/// the stable machine code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaceError {
    /// A container rule of [`photo::inspect`] failed (too large, not JPEG/PNG, bad header).
    #[error(transparent)]
    Photo(#[from] PhotoError),
    /// The header was fine but the pixels cannot be decoded (the cause, in English).
    #[error("照片无法解码：{0}")]
    Undecodable(String),
    /// No face found.
    #[error("未检测到人脸")]
    NoFace,
    /// More than one face found.
    #[error("检测到多张人脸（{count} 张），只能有一张")]
    MultipleFaces {
        /// How many faces.
        count: usize,
    },
    /// The face region is under 128×128 px.
    #[error("人脸区域 {width}×{height} 像素，小于 {min}×{min}", min = MIN_FACE_SIDE)]
    FaceTooSmall {
        /// Face width in pixels.
        width: u32,
        /// Face height in pixels.
        height: u32,
    },
    /// The face is under 1/3 of the picture's width or height.
    #[error("{}", in_picture_text(*.face_width, *.face_height, *.width, *.height))]
    FaceTooSmallInPicture {
        /// Face width in pixels.
        face_width: u32,
        /// Face height in pixels.
        face_height: u32,
        /// Picture width in pixels.
        width: u32,
        /// Picture height in pixels.
        height: u32,
    },
}

impl FaceError {
    /// Stable machine code of the failed rule: `too_large`, `undecodable` (not a JPEG/PNG, a
    /// broken header or undecodable pixels — the message says which), `no_face`,
    /// `multiple_faces`, `face_too_small`, `face_too_small_in_picture`.
    pub fn code(&self) -> &'static str {
        match self {
            FaceError::Photo(PhotoError::TooLarge { .. }) => "too_large",
            FaceError::Photo(PhotoError::NotJpegOrPng | PhotoError::Unreadable(_))
            | FaceError::Undecodable(_) => "undecodable",
            FaceError::NoFace => "no_face",
            FaceError::MultipleFaces { .. } => "multiple_faces",
            FaceError::FaceTooSmall { .. } => "face_too_small",
            FaceError::FaceTooSmallInPicture { .. } => "face_too_small_in_picture",
        }
    }
}

/// `人脸宽度只占照片的 22%，应至少 1/3`, naming the side (or both) that failed.
fn in_picture_text(face_width: u32, face_height: u32, width: u32, height: u32) -> String {
    let percent = |part: u32, whole: u32| u64::from(part) * 100 / u64::from(whole.max(1));
    let (wp, hp) = (percent(face_width, width), percent(face_height, height));
    match (
        too_small_third(face_width, width),
        too_small_third(face_height, height),
    ) {
        (true, true) => format!("人脸宽度只占照片的 {wp}%、高度只占 {hp}%，应至少 1/3"),
        (true, false) => format!("人脸宽度只占照片的 {wp}%，应至少 1/3"),
        _ => format!("人脸高度只占照片的 {hp}%，应至少 1/3"),
    }
}

/// `part < whole / 3` in exact integer arithmetic.
fn too_small_third(part: u32, whole: u32) -> bool {
    u64::from(part) * 3 < u64::from(whole)
}

/// One detection, in original (upright) picture pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Detection {
    face: FaceBox,
    score: f64,
}

/// Checks enrolment face photos. Build once at startup, share as `Arc<FaceChecker>`; `check`
/// blocks (run it in `tokio::task::spawn_blocking`).
pub struct FaceChecker {
    /// Parsed once; each check builds its own detector from a clone (see the module doc).
    model: Model,
    /// `max_photo_bytes` for [`photo::inspect`].
    max_photo_bytes: usize,
}

impl std::fmt::Debug for FaceChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The model is 1.2 MB of weights: not worth printing.
        f.debug_struct("FaceChecker")
            .field("max_photo_bytes", &self.max_photo_bytes)
            .finish_non_exhaustive()
    }
}

// The checker is shared between blocking threads: keep that a compile-time fact.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<FaceChecker>();
};

impl FaceChecker {
    /// Parses the compiled-in model. An error means the embedded asset is corrupt — a build
    /// problem, reported at startup rather than on the first upload.
    pub fn new(max_photo_bytes: usize) -> io::Result<Self> {
        let model = rustface::read_model(MODEL_BYTES)?;
        Ok(FaceChecker {
            model,
            max_photo_bytes,
        })
    }

    /// Checks one face photo (untrusted bytes) against every rule, cheapest first; the first
    /// rule that fails is the error. Blocking: call it inside `tokio::task::spawn_blocking`.
    pub fn check(&self, bytes: &[u8]) -> Result<FaceReport, FaceError> {
        let info = photo::inspect(bytes, self.max_photo_bytes)?;
        let gray = decode_gray(bytes, info.format)?;
        let (width, height) = gray.dimensions();
        let faces = self.detect(&gray);
        let one = match faces.as_slice() {
            [] => return Err(FaceError::NoFace),
            [one] => *one,
            many => return Err(FaceError::MultipleFaces { count: many.len() }),
        };
        let face = one.face;
        if face.width < MIN_FACE_SIDE || face.height < MIN_FACE_SIDE {
            return Err(FaceError::FaceTooSmall {
                width: face.width,
                height: face.height,
            });
        }
        if too_small_third(face.width, width) || too_small_third(face.height, height) {
            return Err(FaceError::FaceTooSmallInPicture {
                face_width: face.width,
                face_height: face.height,
                width,
                height,
            });
        }
        Ok(FaceReport {
            format: info.format,
            width,
            height,
            face,
            score: one.score,
        })
    }

    /// Every face in `gray`, best first, in `gray`'s pixels.
    fn detect(&self, gray: &GrayImage) -> Vec<Detection> {
        let (width, height) = gray.dimensions();
        let Some((work_w, work_h)) = working_size(width, height) else {
            // Smaller than the detector window: no face can be found (nor pass the rules).
            return Vec::new();
        };
        let resized;
        let work = if (work_w, work_h) == (width, height) {
            gray
        } else {
            // Triangle (bilinear over the whole footprint) averages away aliasing when
            // shrinking, which the cascade's LAB features are sensitive to; cheap at this size.
            resized = imageops::resize(gray, work_w, work_h, FilterType::Triangle);
            &resized
        };

        let mut detector = rustface::create_detector_with_model(self.model.clone());
        detector.set_min_face_size(DETECTOR_WINDOW);
        detector.set_score_thresh(SCORE_THRESHOLD);
        detector.set_pyramid_scale_factor(PYRAMID_SCALE);
        detector.set_slide_window_step(WINDOW_STEP, WINDOW_STEP);
        let found = detector.detect(&ImageData::new(work.as_raw(), work_w, work_h));

        let sx = f64::from(width) / f64::from(work_w);
        let sy = f64::from(height) / f64::from(work_h);
        let mut faces: Vec<Detection> = found
            .iter()
            .filter(|f| f.score().is_finite())
            .filter_map(|f| {
                let b = f.bbox();
                let face = map_back(
                    (
                        f64::from(b.x()),
                        f64::from(b.y()),
                        f64::from(b.width()),
                        f64::from(b.height()),
                    ),
                    (sx, sy),
                    (width, height),
                )?;
                Some(Detection {
                    face,
                    score: f.score(),
                })
            })
            .collect();
        faces.sort_by(|a, b| b.score.total_cmp(&a.score));
        suppress_nested(faces)
    }
}

/// Decodes the whole picture under limits, upright, as 8-bit grey.
fn decode_gray(bytes: &[u8], format: PhotoFormat) -> Result<GrayImage, FaceError> {
    let undecodable = |e: image::ImageError| FaceError::Undecodable(e.to_string());
    let format = match format {
        PhotoFormat::Jpeg => ImageFormat::Jpeg,
        PhotoFormat::Png => ImageFormat::Png,
    };
    // `image` decodes JPEG leniently (zune-jpeg, non-strict): a cut-off upload decodes with the
    // missing rows grey and would be judged as a photo. A JPEG must reach its end-of-image marker.
    if format == ImageFormat::Jpeg && !jpeg_reaches_eoi(bytes) {
        return Err(FaceError::Undecodable(
            "JPEG has no end-of-image marker after its first scan (truncated)".to_owned(),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    // `into_decoder` does not count the output buffer against `max_alloc` (`decode` does): a
    // 400 KB JPEG of a flat 10,000×6,000 picture would otherwise need 180 MB.
    let total = decoder.total_bytes();
    if total > MAX_ALLOC {
        return Err(FaceError::Undecodable(format!(
            "decoded picture needs {total} bytes, more than {MAX_ALLOC}"
        )));
    }
    // A broken EXIF block is not worth refusing the photo for: treat it as upright.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    img.apply_orientation(orientation);
    let gray = img.into_luma8();
    if gray.width() == 0 || gray.height() == 0 {
        return Err(FaceError::Undecodable("empty image".to_owned()));
    }
    Ok(gray)
}

/// True when a JPEG has an EOI marker (`FF D9`) after its first start-of-scan. Segments before
/// the scan are walked by their lengths, so an EXIF thumbnail's own SOS/EOI inside APP1 is
/// skipped; inside and between scans `FF D9` only occurs as the real end (entropy-coded data
/// stuffs every `FF` as `FF 00`).
fn jpeg_reaches_eoi(bytes: &[u8]) -> bool {
    // After SOI (`FF D8`).
    let mut i = 2;
    let scan_start = loop {
        let (Some(&0xFF), Some(&marker)) = (bytes.get(i), bytes.get(i + 1)) else {
            return false;
        };
        match marker {
            // Fill byte before a marker.
            0xFF => i += 1,
            // Standalone markers without a length: TEM, RSTn.
            0x01 | 0xD0..=0xD7 => i += 2,
            // EOI (or a second SOI) before any scan: no picture.
            0xD8 | 0xD9 => return false,
            _ => {
                let (Some(&hi), Some(&lo)) = (bytes.get(i + 2), bytes.get(i + 3)) else {
                    return false;
                };
                let next = i + 2 + usize::from(u16::from_be_bytes([hi, lo]));
                if marker == 0xDA {
                    break next;
                }
                i = next;
            }
        }
    };
    bytes
        .get(scan_start..)
        .is_some_and(|scan| scan.windows(2).any(|w| w == [0xFF, 0xD9]))
}

/// The picture size the detector scans: the longer side at most [`WORK_SIDE`], shrunk by a
/// pixel at a time until rustface's pyramid never produces a level under its 40 px window
/// (see the module doc). `None` when the picture is too small for the window.
fn working_size(width: u32, height: u32) -> Option<(u32, u32)> {
    let long = width.max(height);
    let (mut w, mut h) = if long > WORK_SIDE {
        let scale = |side: u32| {
            let scaled = u64::from(side) * u64::from(WORK_SIDE) / u64::from(long);
            u32::try_from(scaled).unwrap_or(WORK_SIDE).max(1)
        };
        (scale(width), scale(height))
    } else {
        (width, height)
    };
    // A handful of tries is plenty: a bad level needs a float product landing just under 40.
    for _ in 0..8 {
        if w.min(h) < DETECTOR_WINDOW {
            return None;
        }
        if pyramid_fits(w, h) {
            return Some((w, h));
        }
        w -= 1;
        h -= 1;
    }
    None
}

/// Replays rustface 0.1.7's pyramid (`FuStDetector::detect`, `ImagePyramid`) in the same `f32`
/// arithmetic: true when every level is at least the 40 px window in both directions.
fn pyramid_fits(width: u32, height: u32) -> bool {
    let min_side = width.min(height);
    let min_scale = DETECTOR_WINDOW as f32 / min_side as f32;
    let mut scale: f32 = 1.0;
    while scale >= min_scale {
        let w = (width as f32 * scale) as u32;
        let h = (height as f32 * scale) as u32;
        if w < DETECTOR_WINDOW || h < DETECTOR_WINDOW {
            return false;
        }
        scale *= PYRAMID_SCALE;
    }
    true
}

/// A working-picture box `(x, y, w, h)` in original pixels, clipped to the picture; `None` when
/// nothing of it is inside.
fn map_back(
    (x, y, w, h): (f64, f64, f64, f64),
    (sx, sy): (f64, f64),
    (width, height): (u32, u32),
) -> Option<FaceBox> {
    let clip = |v: f64, max: u32| v.round().clamp(0.0, f64::from(max)) as u32;
    let x0 = clip(x * sx, width);
    let y0 = clip(y * sy, height);
    let x1 = clip((x + w) * sx, width);
    let y1 = clip((y + h) * sy, height);
    (x1 > x0 && y1 > y0).then_some(FaceBox {
        x: x0,
        y: y0,
        width: x1 - x0,
        height: y1 - y0,
    })
}

/// Drops every box whose centre lies inside a better-scoring kept box: the cascade's last
/// non-maximum suppression (IoU 0.3) can leave a much larger or smaller box on the same face,
/// which would otherwise count as a second face. `faces` is sorted best first.
fn suppress_nested(faces: Vec<Detection>) -> Vec<Detection> {
    let mut kept: Vec<Detection> = Vec::with_capacity(faces.len());
    for d in faces {
        let cx = u64::from(d.face.x) * 2 + u64::from(d.face.width);
        let cy = u64::from(d.face.y) * 2 + u64::from(d.face.height);
        let inside = kept.iter().any(|k| {
            // Doubled coordinates keep the centre exact in integers.
            let (kx, ky) = (u64::from(k.face.x) * 2, u64::from(k.face.y) * 2);
            cx >= kx
                && cx <= kx + u64::from(k.face.width) * 2
                && cy >= ky
                && cy <= ky + u64::from(k.face.height) * 2
        });
        if !inside {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;
    use std::time::Instant;

    const PORTRAIT_OK: &[u8] = include_bytes!("../../platform/tests/data/faces/portrait_ok.jpg");
    const NO_FACE: &[u8] = include_bytes!("../../platform/tests/data/faces/no_face.jpg");
    const TWO_FACES: &[u8] = include_bytes!("../../platform/tests/data/faces/two_faces.jpg");
    const TOO_SMALL: &[u8] = include_bytes!("../../platform/tests/data/faces/face_too_small.jpg");
    const SMALL_IN_PICTURE: &[u8] =
        include_bytes!("../../platform/tests/data/faces/face_small_in_picture.jpg");
    const MAX: usize = 409_600;

    /// One checker for the whole test binary, as the server holds one.
    fn checker() -> &'static FaceChecker {
        static CHECKER: OnceLock<FaceChecker> = OnceLock::new();
        CHECKER.get_or_init(|| FaceChecker::new(MAX).expect("embedded model parses"))
    }

    fn code(bytes: &[u8]) -> &'static str {
        match checker().check(bytes) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    /// Re-encodes a decoded fixture, resized to `width`×`height`, as JPEG or PNG.
    fn reencode(bytes: &[u8], width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let img = image::load_from_memory(bytes).expect("fixture decodes");
        let img = img.resize_exact(width, height, FilterType::Triangle);
        let img = DynamicImage::ImageLuma8(img.into_luma8());
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).expect("encodes");
        out.into_inner()
    }

    #[test]
    fn portrait_passes_with_a_big_face() {
        let report = checker().check(PORTRAIT_OK).expect("portrait passes");
        assert_eq!(report.format, PhotoFormat::Jpeg);
        assert_eq!((report.width, report.height), (360, 420));
        let f = report.face;
        assert!(
            f.width >= MIN_FACE_SIDE && f.height >= MIN_FACE_SIDE,
            "{f:?}"
        );
        assert!(f.width * 3 >= 360 && f.height * 3 >= 420, "{f:?}");
        // The face is in the upper-middle of the crop (see make_faces.py).
        let (cx, cy) = (f.x + f.width / 2, f.y + f.height / 2);
        assert!((100..260).contains(&cx) && (80..300).contains(&cy), "{f:?}");
        assert!(report.score >= SCORE_THRESHOLD);
    }

    #[test]
    fn each_fixture_fails_its_own_rule() {
        assert_eq!(checker().check(NO_FACE), Err(FaceError::NoFace));
        assert_eq!(
            checker().check(TWO_FACES),
            Err(FaceError::MultipleFaces { count: 2 })
        );
        assert_eq!(code(TOO_SMALL), "face_too_small");
        assert_eq!(code(SMALL_IN_PICTURE), "face_too_small_in_picture");
    }

    #[test]
    fn messages_name_the_rule_in_chinese() {
        assert_eq!(
            checker().check(TWO_FACES).unwrap_err().to_string(),
            "检测到多张人脸（2 张），只能有一张"
        );
        assert_eq!(FaceError::NoFace.to_string(), "未检测到人脸");
        let small = checker().check(TOO_SMALL).unwrap_err();
        let FaceError::FaceTooSmall { width, height } = small else {
            panic!("{small:?}");
        };
        assert!(width < MIN_FACE_SIDE || height < MIN_FACE_SIDE);
        assert_eq!(
            small.to_string(),
            format!("人脸区域 {width}×{height} 像素，小于 128×128")
        );
        let far = checker().check(SMALL_IN_PICTURE).unwrap_err();
        assert!(far.to_string().starts_with("人脸宽度只占照片的 "), "{far}");
        assert!(far.to_string().ends_with("，应至少 1/3"), "{far}");
        assert_eq!(
            in_picture_text(100, 300, 1000, 600),
            "人脸宽度只占照片的 10%，应至少 1/3"
        );
        assert_eq!(
            in_picture_text(400, 100, 1000, 600),
            "人脸高度只占照片的 16%，应至少 1/3"
        );
        assert_eq!(
            in_picture_text(100, 100, 1000, 600),
            "人脸宽度只占照片的 10%、高度只占 16%，应至少 1/3"
        );
    }

    #[test]
    fn large_pictures_are_judged_in_original_pixels() {
        // 2.5× the passing portrait (900×1050): scanned at 274×320, the box must come back
        // scaled up, still passing.
        let big = reencode(PORTRAIT_OK, 900, 1050, ImageFormat::Jpeg);
        let small = checker().check(PORTRAIT_OK).expect("portrait passes");
        let report = checker().check(&big).expect("big portrait passes");
        assert_eq!((report.width, report.height), (900, 1050));
        let ratio = f64::from(report.face.width) / f64::from(small.face.width);
        assert!((2.0..3.0).contains(&ratio), "{report:?} vs {small:?}");
    }

    #[test]
    fn png_portrait_passes() {
        let png = reencode(PORTRAIT_OK, 360, 420, ImageFormat::Png);
        let report = checker().check(&png).expect("png portrait passes");
        assert_eq!(report.format, PhotoFormat::Png);
    }

    #[test]
    fn container_rules_come_from_photo_inspect() {
        let strict = FaceChecker::new(1000).expect("model");
        let err = strict.check(PORTRAIT_OK).unwrap_err();
        assert_eq!(err.code(), "too_large");
        assert_eq!(
            err.to_string(),
            format!("照片超过 1000 字节（实际 {} 字节）", PORTRAIT_OK.len())
        );
    }

    #[test]
    fn garbage_and_truncated_photos_are_undecodable() {
        for bytes in [
            &b""[..],
            b"hello world",
            &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0],
            &PORTRAIT_OK[..PORTRAIT_OK.len() / 2],
            &PORTRAIT_OK[..600],
            &TWO_FACES[..TWO_FACES.len() - 200],
        ] {
            let err = checker().check(bytes).unwrap_err();
            assert_eq!(err.code(), "undecodable", "{} bytes: {err}", bytes.len());
        }
        // Cut anywhere — inside the headers or the scan — is undecodable, never a grey picture.
        for len in [
            3,
            100,
            600,
            5_000,
            PORTRAIT_OK.len() * 3 / 4,
            PORTRAIT_OK.len() - 2,
        ] {
            assert_eq!(
                code(&PORTRAIT_OK[..len]),
                "undecodable",
                "jpeg cut at {len}"
            );
        }
        let png = reencode(PORTRAIT_OK, 360, 420, ImageFormat::Png);
        for len in [40, png.len() / 2, png.len() * 9 / 10] {
            assert_eq!(code(&png[..len]), "undecodable", "png cut at {len}");
        }
    }

    #[test]
    fn jpeg_end_marker_is_found_past_headers_and_thumbnails() {
        assert!(jpeg_reaches_eoi(PORTRAIT_OK));
        // An APP1 segment holding a complete "thumbnail" (its own SOS and EOI) before a main
        // scan that is cut off: the thumbnail's EOI must not count.
        let mut fake = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08];
        fake.extend_from_slice(&[0xFF, 0xDA, 0xFF, 0xD9, 0x00, 0x00]);
        fake.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02, 0x12, 0x34]);
        assert!(!jpeg_reaches_eoi(&fake));
        fake.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_reaches_eoi(&fake));
        assert!(!jpeg_reaches_eoi(&[0xFF, 0xD8, 0xFF, 0xD9]));
        assert!(!jpeg_reaches_eoi(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF]));
    }

    #[test]
    fn tiny_pictures_have_no_face() {
        let tiny = reencode(PORTRAIT_OK, 30, 35, ImageFormat::Png);
        assert_eq!(code(&tiny), "no_face");
        let strip = reencode(PORTRAIT_OK, 2000, 40, ImageFormat::Png);
        assert_eq!(code(&strip), "no_face");
    }

    #[test]
    fn working_size_keeps_every_pyramid_level_above_the_window() {
        for w in 1..=520 {
            for h in (1..=520).step_by(7) {
                match working_size(w, h) {
                    Some((ww, wh)) => {
                        assert!(ww.max(wh) <= WORK_SIDE && pyramid_fits(ww, wh), "{w}x{h}");
                        assert!(w.abs_diff(ww) <= 8 || w.max(h) > WORK_SIDE, "{w}x{h}");
                    }
                    None => assert!(w.min(h) < DETECTOR_WINDOW + 8 || w.max(h) > WORK_SIDE),
                }
            }
        }
        assert_eq!(working_size(300, 320), Some((300, 320)));
        assert_eq!(working_size(360, 420), Some((274, 320)));
        assert_eq!(working_size(1000, 800), Some((320, 256)));
        assert_eq!(working_size(39, 1000), None);
    }

    #[test]
    fn nested_boxes_count_once() {
        let d = |x, y, side, score| Detection {
            face: FaceBox {
                x,
                y,
                width: side,
                height: side,
            },
            score,
        };
        let kept = suppress_nested(vec![
            d(100, 100, 200, 9.0),
            d(150, 150, 60, 3.0),
            d(400, 100, 150, 2.5),
        ]);
        assert_eq!(kept, vec![d(100, 100, 200, 9.0), d(400, 100, 150, 2.5)]);
    }

    #[test]
    fn boxes_map_back_and_clip() {
        assert_eq!(
            map_back((-10.0, 5.0, 50.0, 50.0), (2.0, 2.0), (300, 90)),
            Some(FaceBox {
                x: 0,
                y: 10,
                width: 80,
                height: 80
            })
        );
        assert_eq!(
            map_back((200.0, 0.0, 50.0, 50.0), (2.0, 2.0), (300, 90)),
            None
        );
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(FaceError::NoFace.code(), "no_face");
        assert_eq!(
            FaceError::MultipleFaces { count: 3 }.code(),
            "multiple_faces"
        );
        assert_eq!(
            FaceError::FaceTooSmall {
                width: 1,
                height: 1
            }
            .code(),
            "face_too_small"
        );
        assert_eq!(
            FaceError::Photo(PhotoError::NotJpegOrPng).code(),
            "undecodable"
        );
        assert_eq!(FaceError::Undecodable(String::new()).code(), "undecodable");
    }

    /// Not a test of speed (no timing assertion): prints the figures quoted in the module doc.
    #[test]
    #[ignore = "prints timings for the module doc"]
    fn check_time() {
        let t = Instant::now();
        let checker = FaceChecker::new(MAX).expect("model");
        let parse = t.elapsed();
        let t = Instant::now();
        let n = 20u32;
        for _ in 0..n {
            std::hint::black_box(checker.model.clone());
        }
        let clone = t.elapsed() / n;
        checker.check(PORTRAIT_OK).expect("warm-up");
        let t = Instant::now();
        for _ in 0..n {
            checker.check(PORTRAIT_OK).expect("passes");
        }
        let check = t.elapsed() / n;
        println!("parse {parse:?}, clone {clone:?}, check portrait_ok.jpg {check:?}");
        for (name, bytes) in [
            ("no_face", NO_FACE),
            ("two_faces", TWO_FACES),
            ("too_small", TOO_SMALL),
            ("small_in_picture", SMALL_IN_PICTURE),
            ("portrait_ok", PORTRAIT_OK),
        ] {
            let t = Instant::now();
            let gray = image::load_from_memory(bytes)
                .expect("decodes")
                .into_luma8();
            let faces = checker.detect(&gray);
            println!("{name}: {:?} {faces:?}", t.elapsed());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = checker().check(&bytes);
        }

        #[test]
        fn arbitrary_bytes_after_a_jpeg_or_png_magic_never_panic(
            png in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let mut bytes = if png {
                vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]
            } else {
                vec![0xFF, 0xD8, 0xFF]
            };
            bytes.extend_from_slice(&tail);
            let _ = checker().check(&bytes);
        }

        #[test]
        fn corrupted_real_photos_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
            cut in any::<prop::sample::Index>(),
        ) {
            // The small fixture decodes fast, so mutations that still decode reach the detector.
            let mut bytes = TOO_SMALL.to_vec();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            bytes.truncate(cut.index(bytes.len()) + 1);
            let _ = checker().check(&bytes);
        }
    }
}
