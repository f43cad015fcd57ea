//! What the device accepts as a face or attendance photo: a JPEG or PNG (decided by its
//! magic bytes, never by a URL or a Content-Type) no larger than `max_photo_bytes` (the
//! platform's 400 KB by default). Decoding and face checks are the vendor's recognition
//! engine's business.

use crate::codes;

/// The two photo formats of the standard (ZJ-SIGNIN-04): the protocol
/// crate's, with its magic-byte [`PhotoFormat::sniff`] (the platform asks the same one) and
/// `as_str` (`jpeg` or `png`, as stored).
pub use rollcall_protocol::photo::ImageFormat as PhotoFormat;

/// Why a photo is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("empty")]
    Empty,
    #[error("{len} bytes, over the {limit}-byte limit")]
    TooLarge { len: usize, limit: usize },
    #[error("not a JPEG or PNG")]
    NotJpegOrPng,
}

impl PhotoError {
    /// The device's errCode for `failedFaces` (see the vendor guide).
    pub fn err_code(&self) -> &'static str {
        match self {
            PhotoError::Empty | PhotoError::NotJpegOrPng => codes::ERR_FACE_FORMAT,
            PhotoError::TooLarge { .. } => codes::ERR_FACE_SIZE,
        }
    }
}

/// Checks a photo; returns its format.
pub fn check(bytes: &[u8], max_bytes: usize) -> Result<PhotoFormat, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.len() > max_bytes {
        return Err(PhotoError::TooLarge {
            len: bytes.len(),
            limit: max_bytes,
        });
    }
    PhotoFormat::sniff(bytes).ok_or(PhotoError::NotJpegOrPng)
}

/// Sample pictures for simulators, demos and tests (not linked into a binary that does not
/// use them).
pub mod sample {
    /// A 64×64 JPEG of 1.7 KB: a cheap attendance photo.
    pub const SMALL_JPEG: &[u8] = include_bytes!("assets/face_tiny.jpg");
    /// A 48 KB JPEG crop of NASA's public-domain astronaut portrait: one real face, passes
    /// the enrolment face rules (RC-DEV-07 to RC-DEV-12).
    pub const FACE_JPEG: &[u8] = include_bytes!("assets/face1.jpg");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_limits() {
        assert_eq!(check(sample::SMALL_JPEG, 409_600), Ok(PhotoFormat::Jpeg));
        assert_eq!(check(sample::FACE_JPEG, 409_600), Ok(PhotoFormat::Jpeg));
        assert_eq!(
            check(sample::FACE_JPEG, 1000),
            Err(PhotoError::TooLarge {
                len: sample::FACE_JPEG.len(),
                limit: 1000
            })
        );
        assert_eq!(check(b"GIF89a....", 100), Err(PhotoError::NotJpegOrPng));
        assert_eq!(check(b"", 100), Err(PhotoError::Empty));
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0];
        assert_eq!(check(&png, 100), Ok(PhotoFormat::Png));
    }
}
