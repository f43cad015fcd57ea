//! What a photo is — JPEG or PNG, how big, how many pixels — without decoding it.
//!
//! Attendance photos (`img` of C_SIGN_IN) and enrolment photos arrive from devices as untrusted
//! bytes. [`inspect`] answers the cheap questions every upload needs before anything else looks at
//! the picture:
//!
//! 1. **Size first**: more than `max_bytes` (`max_photo_bytes`, default 400 KB = 409,600 bytes) is
//!    [`PhotoError::TooLarge`], before any parsing.
//! 2. **Format from the magic bytes**: JPEG (`FF D8 FF`) or PNG (the 8-byte PNG signature); anything
//!    else — BMP, GIF, WebP, text, empty input — is [`PhotoError::NotJpegOrPng`]. The format is
//!    decided by the protocol crate's magic check ([`PhotoFormat::sniff`], PROTOCOL.md rule
//!    ZJ-SIGNIN-04, shared with the device SDK), never by a file name or a MIME type the device
//!    sent.
//! 3. **Dimensions from the header only** (`image`'s `into_dimensions`, no pixel decoding), under
//!    [`image::Limits`] for untrusted input: at most 10,000 px a side and 64 MiB of decoder memory.
//!    Bytes that start like a JPEG or PNG but whose header cannot be parsed (truncated, corrupted,
//!    over the limits) are [`PhotoError::Unreadable`] — not `NotJpegOrPng`: the device did send
//!    a JPEG/PNG, just a broken one.
//!
//! Face rules (face size, exactly one face) need a decoder and a detector and live elsewhere.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// The two photo formats the standard accepts (ZJ-SIGNIN-04): the protocol crate's, with its
/// magic-byte [`PhotoFormat::sniff`], extension and MIME type.
pub use rollcall_protocol::photo::ImageFormat as PhotoFormat;

/// Largest width or height accepted, in pixels.
const MAX_SIDE: u32 = 10_000;
/// Most memory the header parser may allocate.
const MAX_ALLOC: u64 = 64 * 1024 * 1024;

/// The `image` crate's name of a photo format.
fn image_format(format: PhotoFormat) -> ImageFormat {
    match format {
        PhotoFormat::Jpeg => ImageFormat::Jpeg,
        PhotoFormat::Png => ImageFormat::Png,
    }
}

/// What [`inspect`] found out about a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoInfo {
    /// JPEG or PNG.
    pub format: PhotoFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Why a photo was refused (messages in Chinese, naming the rule).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhotoError {
    /// More than `max` bytes.
    #[error("照片超过 {}（实际 {len} 字节）", limit_text(*.max))]
    TooLarge {
        /// Size of the photo in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// Neither JPEG nor PNG magic bytes.
    #[error("照片格式错误，只支持 JPEG 或 PNG")]
    NotJpegOrPng,
    /// Starts like a JPEG or PNG but its header cannot be read (the cause, in English).
    #[error("照片无法读取：{0}")]
    Unreadable(String),
}

/// `409600` → `400 KB`; sizes that are not whole kilobytes stay in bytes.
fn limit_text(max: usize) -> String {
    if max >= 1024 && max.is_multiple_of(1024) {
        format!("{} KB", max / 1024)
    } else {
        format!("{max} 字节")
    }
}

/// Format from magic bytes, dimensions from the header only (`ImageReader` set to the sniffed
/// format, `into_dimensions()`, with `image::Limits` set for untrusted input), size against
/// `max_bytes`. Checks run in order of cost: size, magic bytes, header.
pub fn inspect(bytes: &[u8], max_bytes: usize) -> Result<PhotoInfo, PhotoError> {
    if bytes.len() > max_bytes {
        return Err(PhotoError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let format = PhotoFormat::sniff(bytes).ok_or(PhotoError::NotJpegOrPng)?;
    // Parse as the format our own magic check found (image's content guess would agree).
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format(format));
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| PhotoError::Unreadable(e.to_string()))?;
    if width == 0 || height == 0 {
        return Err(PhotoError::Unreadable(format!(
            "empty image {width}x{height}"
        )));
    }
    Ok(PhotoInfo {
        format,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const FACE1_JPG: &[u8] = include_bytes!("../../platform/tests/data/face1.jpg");
    const FACE3_PNG: &[u8] = include_bytes!("../../platform/tests/data/face3.png");
    const IRIS_BMP: &[u8] = include_bytes!("../../platform/tests/data/iris.bmp");
    const MAX: usize = 409_600;
    /// The 8-byte PNG signature.
    const PNG_MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    /// The 1x1 JPEG of the protocol test vectors.
    const TINY_JPEG_B64: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDA0NDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==";

    #[test]
    fn real_jpeg_and_png() {
        assert_eq!(
            inspect(FACE1_JPG, MAX),
            Ok(PhotoInfo {
                format: PhotoFormat::Jpeg,
                width: 484,
                height: 528
            })
        );
        assert_eq!(
            inspect(FACE3_PNG, MAX),
            Ok(PhotoInfo {
                format: PhotoFormat::Png,
                width: 360,
                height: 425
            })
        );
    }

    #[test]
    fn tiny_protocol_vector_is_a_1x1_jpeg() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(TINY_JPEG_B64)
            .unwrap();
        let info = inspect(&bytes, MAX).unwrap();
        assert_eq!(
            (info.format, info.width, info.height),
            (PhotoFormat::Jpeg, 1, 1)
        );
    }

    #[test]
    fn bmp_and_other_things_are_not_jpeg_or_png() {
        assert_eq!(inspect(IRIS_BMP, MAX), Err(PhotoError::NotJpegOrPng));
        for bytes in [
            &b""[..],
            b"GIF89a\x01\x00\x01\x00",
            b"hello world",
            &[0xFF, 0xD8],
            &PNG_MAGIC[..7],
        ] {
            assert_eq!(
                inspect(bytes, MAX),
                Err(PhotoError::NotJpegOrPng),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn truncated_or_corrupt_headers_are_unreadable() {
        for n in [3, 4, 20, 100] {
            assert!(
                matches!(
                    inspect(&FACE1_JPG[..n], MAX),
                    Err(PhotoError::Unreadable(_))
                ),
                "jpeg cut at {n}"
            );
        }
        for n in [8, 12, 20, 30] {
            assert!(
                matches!(
                    inspect(&FACE3_PNG[..n], MAX),
                    Err(PhotoError::Unreadable(_))
                ),
                "png cut at {n}"
            );
        }
        // PNG IHDR with a broken CRC.
        let mut png = FACE3_PNG.to_vec();
        png[29] ^= 0xFF;
        assert!(matches!(inspect(&png, MAX), Err(PhotoError::Unreadable(_))));
    }

    #[test]
    fn dimensions_over_the_limits_are_unreadable() {
        // A PNG header claiming 20000 x 1 px (IHDR with a correct CRC).
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend_from_slice(&20_000u32.to_be_bytes());
        ihdr.extend_from_slice(&1u32.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut png = PNG_MAGIC.to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(&ihdr);
        png.extend_from_slice(&png_crc(&ihdr).to_be_bytes());
        assert!(matches!(inspect(&png, MAX), Err(PhotoError::Unreadable(_))));
    }

    /// CRC-32 as PNG uses it (bitwise, for the test only).
    fn png_crc(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    #[test]
    fn over_max_is_too_large_before_anything_else() {
        assert_eq!(
            inspect(FACE1_JPG, 1000),
            Err(PhotoError::TooLarge {
                len: FACE1_JPG.len(),
                max: 1000
            })
        );
        let mut big = FACE1_JPG.to_vec();
        big.resize(MAX + 1, 0);
        assert_eq!(
            inspect(&big, MAX),
            Err(PhotoError::TooLarge {
                len: MAX + 1,
                max: MAX
            })
        );
        assert_eq!(
            inspect(&vec![0u8; MAX + 1], MAX).unwrap_err().to_string(),
            "照片超过 400 KB（实际 409601 字节）"
        );
        // Exactly the limit is fine.
        big.truncate(MAX);
        assert_eq!(inspect(&big, MAX).map(|i| i.width), Ok(484));
    }

    #[test]
    fn format_names() {
        assert_eq!(PhotoFormat::Jpeg.extension(), "jpg");
        assert_eq!(PhotoFormat::Png.extension(), "png");
        assert_eq!(PhotoFormat::Jpeg.mime(), "image/jpeg");
        assert_eq!(PhotoFormat::Png.mime(), "image/png");
        assert_eq!(
            PhotoError::NotJpegOrPng.to_string(),
            "照片格式错误，只支持 JPEG 或 PNG"
        );
        assert_eq!(limit_text(1000), "1000 字节");
    }
}
