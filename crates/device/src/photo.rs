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

    /// A synthetic iris image as the standard wants one (GB/T 26237.6-2014 VGA monocular):
    /// 640×480, one 8-bit grey channel, BMP — a bright sclera, a mid-grey iris of radius
    /// 100 px and a dark pupil. `shade` (0..=40) varies the iris's grey level so that two
    /// eyes differ. 308 KB.
    pub fn iris_bmp(shade: u8) -> Vec<u8> {
        const W: u32 = 640;
        const H: u32 = 480;
        const PALETTE: u32 = 256 * 4;
        const OFFSET: u32 = 14 + 40 + PALETTE;
        let size = OFFSET + W * H;
        let mut b = Vec::with_capacity(size as usize);
        // BITMAPFILEHEADER
        b.extend_from_slice(b"BM");
        b.extend_from_slice(&size.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&OFFSET.to_le_bytes());
        // BITMAPINFOHEADER: 8 bits per pixel, uncompressed, a 256-entry grey palette.
        b.extend_from_slice(&40u32.to_le_bytes());
        b.extend_from_slice(&(W as i32).to_le_bytes());
        b.extend_from_slice(&(H as i32).to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&8u16.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(W * H).to_le_bytes());
        b.extend_from_slice(&2835u32.to_le_bytes());
        b.extend_from_slice(&2835u32.to_le_bytes());
        b.extend_from_slice(&256u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for g in 0..=255u8 {
            b.extend_from_slice(&[g, g, g, 0]);
        }
        let iris = 110u8.saturating_add(shade.min(40));
        // Rows bottom-up; 640 bytes a row is already a multiple of 4.
        for y in 0..H as i64 {
            for x in 0..W as i64 {
                let (dx, dy) = (x - W as i64 / 2, y - H as i64 / 2);
                let r2 = dx * dx + dy * dy;
                b.push(if r2 <= 40 * 40 {
                    20
                } else if r2 <= 100 * 100 {
                    iris
                } else {
                    210
                });
            }
        }
        b
    }
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

    #[test]
    fn the_sample_iris_is_an_8_bit_vga_bmp() {
        let bmp = sample::iris_bmp(0);
        assert_eq!(&bmp[..2], b"BM");
        assert_eq!(bmp.len(), 14 + 40 + 1024 + 640 * 480);
        assert_eq!(&bmp[18..26], &[128, 2, 0, 0, 224, 1, 0, 0], "640×480");
        assert_eq!(&bmp[28..30], &[8, 0], "8 bits per pixel");
        assert_ne!(sample::iris_bmp(0), sample::iris_bmp(9));
    }
}
