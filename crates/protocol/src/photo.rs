//! Which image formats the protocol accepts, decided by their magic bytes (ZJ-SIGNIN-04).
//!
//! An attendance `img` or an enrolment photo is a **JPEG or a PNG**; anything else (BMP, GIF,
//! WebP, text, nothing) is not a photo of the standard. The format is decided from the first
//! bytes only — never from a file name, a URL or a MIME type the sender chose. The platform
//! (which also reads dimensions) and the device SDK (which checks downloaded faces) both ask
//! [`ImageFormat::sniff`], so the two sides cannot disagree about what a photo is.

/// The two photo formats of the standard (ZJ-SIGNIN-04).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG (JFIF or Exif): starts `FF D8 FF` (SOI, then the first marker's `FF`).
    Jpeg,
    /// PNG: starts with the 8-byte PNG signature.
    Png,
}

/// Start of every JPEG: SOI marker followed by the first marker's `FF`.
const JPEG_MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];
/// The 8-byte PNG signature.
const PNG_MAGIC: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

impl ImageFormat {
    /// The format whose magic bytes start `bytes`, if any (ZJ-SIGNIN-04): JPEG or PNG, nothing
    /// else.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&JPEG_MAGIC) {
            Some(ImageFormat::Jpeg)
        } else if bytes.starts_with(&PNG_MAGIC) {
            Some(ImageFormat::Png)
        } else {
            None
        }
    }

    /// `jpeg` or `png`: the format's name, as the device SDK stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
        }
    }

    /// File extension without the dot: `jpg` or `png`.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        }
    }

    /// MIME type: `image/jpeg` or `image/png`.
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide() {
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(ImageFormat::sniff(&[0xFF, 0xD8]), None);
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0];
        assert_eq!(ImageFormat::sniff(&png), Some(ImageFormat::Png));
        assert_eq!(ImageFormat::sniff(&png[..7]), None);
        assert_eq!(
            ImageFormat::sniff(b"BM\x36\x00"),
            None,
            "BMP is not a photo"
        );
        assert_eq!(ImageFormat::sniff(b"GIF89a"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
    }

    #[test]
    fn names() {
        assert_eq!(ImageFormat::Jpeg.as_str(), "jpeg");
        assert_eq!(ImageFormat::Jpeg.extension(), "jpg");
        assert_eq!(ImageFormat::Png.mime(), "image/png");
    }
}
