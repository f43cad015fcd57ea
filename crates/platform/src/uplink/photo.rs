//! Head images for `ProjectWorker.Add`: the national platform takes JPEG or PNG of at most
//! 50 KB (`[headImage]大小超过限制50KB!`). A stored face (up to `max_photo_bytes`, any of
//! the enrolment formats) is decoded and re-encoded as JPEG, smaller and at lower quality
//! until it fits. Pure and CPU-bound: call it from a blocking task.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;

/// The national limit.
pub const MAX_HEAD_IMAGE_BYTES: usize = 50 * 1024;
/// A head image needs no more than this on its longer side.
const START_SIDE: u32 = 640;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhotoError {
    #[error("the face photo cannot be decoded: {0}")]
    Decode(String),
    #[error("the face photo does not fit in 50 KB even small")]
    TooLarge,
}

/// A JPEG of at most [`MAX_HEAD_IMAGE_BYTES`] showing the photo.
pub fn head_image(bytes: &[u8]) -> Result<Vec<u8>, PhotoError> {
    let decoded = image::load_from_memory(bytes).map_err(|e| PhotoError::Decode(e.to_string()))?;
    let mut side = START_SIDE.min(decoded.width().max(decoded.height()));
    while side >= 64 {
        let scaled = if decoded.width().max(decoded.height()) > side {
            decoded.resize(side, side, FilterType::Triangle)
        } else {
            decoded.clone()
        };
        let rgb = scaled.to_rgb8();
        for quality in [85u8, 70, 55, 40] {
            let mut out = Cursor::new(Vec::new());
            JpegEncoder::new_with_quality(&mut out, quality)
                .encode_image(&rgb)
                .map_err(|e| PhotoError::Decode(e.to_string()))?;
            let out = out.into_inner();
            if out.len() <= MAX_HEAD_IMAGE_BYTES {
                return Ok(out);
            }
        }
        side = side * 3 / 4;
    }
    Err(PhotoError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A noisy 1600×1200 PNG: far over 50 KB, and hard to compress.
    fn big_png() -> Vec<u8> {
        let mut state: u32 = 12345;
        let img = image::RgbImage::from_fn(1600, 1200, |_, _| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let b = state.to_le_bytes();
            image::Rgb([b[1], b[2], b[3]])
        });
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn a_large_photo_becomes_a_jpeg_under_50_kb() {
        let png = big_png();
        assert!(png.len() > MAX_HEAD_IMAGE_BYTES * 10);
        let jpeg = head_image(&png).unwrap();
        assert!(jpeg.len() <= MAX_HEAD_IMAGE_BYTES, "{} bytes", jpeg.len());
        assert_eq!(
            image::guess_format(&jpeg).unwrap(),
            image::ImageFormat::Jpeg
        );
        let back = image::load_from_memory(&jpeg).unwrap();
        assert!(back.width() <= START_SIDE && back.height() <= START_SIDE);
    }

    #[test]
    fn garbage_is_not_a_photo() {
        assert!(matches!(
            head_image(b"not a photo"),
            Err(PhotoError::Decode(_))
        ));
    }
}
