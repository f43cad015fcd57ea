//! Signed, expiring URLs for photos and firmware (ZJ-URL-02).
//!
//! Face photos are sensitive personal information (PIPL), so every photo or firmware URL the
//! platform hands out (`imgUrls`, `downloadUrl`, `photoUrl`) carries an expiry time and an
//! HMAC-SHA256 signature:
//!
//! ```text
//! {public_url}{path}?expires={unix seconds}&sig={hex(HMAC-SHA256(key, path + "\n" + expires))}
//! ```
//!
//! Key decisions:
//!
//! - The signature covers the **path exactly as it appears in the URL** (no decoding, no
//!   normalisation) and the expiry; the host is not covered, so a URL stays valid behind any proxy
//!   that preserves the path. Callers build paths from URL-safe characters, and the HTTP handler
//!   verifies the raw request path (`Uri::path()`).
//! - A URL is valid up to and including its `expires` second: `now > expires` is [`UrlError::Expired`].
//! - The signature is checked before the expiry (a tampered expiry is a bad signature, not an
//!   expired URL), with the constant-time comparison of `hmac`'s `verify_slice`.
//! - The key never leaves this type: `Debug` redacts it.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The signature was right, but the URL's time is up.
    #[error("链接已过期")]
    Expired,
    /// The signature does not match the path and expiry (tampered, or signed with another key).
    #[error("链接签名无效")]
    BadSignature,
    /// `expires` is not a decimal number of seconds, or `sig` not 64 hex digits.
    #[error("链接参数格式错误")]
    Malformed,
}

/// Signs and verifies expiring URLs under the platform's `public_url`.
#[derive(Clone)]
pub struct UrlSigner {
    /// HMAC state keyed once; cloned for every signature.
    mac: HmacSha256,
    public_url: String,
    ttl_secs: u64,
}

impl fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlSigner")
            .field("key", &"<redacted>")
            .field("public_url", &self.public_url)
            .field("ttl_secs", &self.ttl_secs)
            .finish()
    }
}

impl UrlSigner {
    /// A signer with a 32-byte secret `key`, the platform's `public_url` (e.g.
    /// `http://127.0.0.1:8080`; a trailing slash is tolerated) and the lifetime of the URLs it signs.
    pub fn new(key: [u8; 32], public_url: &str, ttl_secs: u64) -> Self {
        // HMAC pads a key shorter than the hash's block to the block size with zeros, so keying
        // with the zero-padded 64-byte block is HMAC with `key`, and cannot fail.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&key);
        UrlSigner {
            mac: HmacSha256::new(&block.into()),
            public_url: public_url.trim_end_matches('/').to_owned(),
            ttl_secs,
        }
    }

    /// The base URL signed URLs start with (without a trailing slash).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// How long a signed URL stays valid, in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// Absolute URL: `{public_url}{path}?expires={unix_secs}&sig={hex hmac-sha256(key, path + "\n"
    /// + expires)}`, valid until `now_secs + ttl_secs`. `path` starts with `/` and has no query.
    pub fn sign(&self, path: &str, now_secs: u64) -> String {
        let expires = now_secs.saturating_add(self.ttl_secs);
        let sig = hex::encode(self.mac_for(path, expires).finalize().into_bytes());
        format!("{}{path}?expires={expires}&sig={sig}", self.public_url)
    }

    /// Checks a request for `path` (the raw request path) with its `expires` and `sig` query
    /// values at time `now_secs`.
    pub fn verify(
        &self,
        path: &str,
        expires: &str,
        sig: &str,
        now_secs: u64,
    ) -> Result<(), UrlError> {
        if expires.is_empty() || expires.len() > 20 || !expires.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(UrlError::Malformed);
        }
        let expires_at: u64 = expires.parse().map_err(|_| UrlError::Malformed)?;
        if sig.len() != 64 {
            return Err(UrlError::Malformed);
        }
        let sig = hex::decode(sig).map_err(|_| UrlError::Malformed)?;
        // Sign the text exactly as received: "0123" and "123" are different URLs.
        self.mac_for_text(path, expires)
            .verify_slice(&sig)
            .map_err(|_| UrlError::BadSignature)?;
        if now_secs > expires_at {
            return Err(UrlError::Expired);
        }
        Ok(())
    }

    fn mac_for(&self, path: &str, expires: u64) -> HmacSha256 {
        self.mac_for_text(path, &expires.to_string())
    }

    fn mac_for_text(&self, path: &str, expires: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];
    const NOW: u64 = 1_760_000_000;

    /// Splits a signed URL into (path, expires, sig).
    fn parts(url: &str) -> (String, String, String) {
        let rest = url.strip_prefix("http://127.0.0.1:8080").unwrap();
        let (path, query) = rest.split_once('?').unwrap();
        let (e, s) = query.split_once('&').unwrap();
        (
            path.to_owned(),
            e.strip_prefix("expires=").unwrap().to_owned(),
            s.strip_prefix("sig=").unwrap().to_owned(),
        )
    }

    #[test]
    fn round_trip() {
        let s = UrlSigner::new(KEY, "http://127.0.0.1:8080/", 86_400);
        let url = s.sign("/files/faces/1/a.jpg", NOW);
        assert!(
            url.starts_with("http://127.0.0.1:8080/files/faces/1/a.jpg?expires=1760086400&sig=")
        );
        let (path, e, sig) = parts(&url);
        assert_eq!(sig.len(), 64);
        assert_eq!(s.verify(&path, &e, &sig, NOW), Ok(()));
        assert_eq!(s.verify(&path, &e, &sig.to_uppercase(), NOW), Ok(()));
    }

    #[test]
    fn signature_is_hmac_sha256_of_path_newline_expires() {
        let s = UrlSigner::new(KEY, "http://127.0.0.1:8080", 60);
        let (_, _, sig) = parts(&s.sign("/p", 100));
        let mut mac = HmacSha256::new_from_slice(&KEY).unwrap();
        mac.update(b"/p\n160");
        assert_eq!(sig, hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn tampering_is_refused() {
        let s = UrlSigner::new(KEY, "http://127.0.0.1:8080", 600);
        let (path, e, sig) = parts(&s.sign("/files/faces/1/a.jpg", NOW));
        assert_eq!(
            s.verify("/files/faces/2/a.jpg", &e, &sig, NOW),
            Err(UrlError::BadSignature)
        );
        let later = (e.parse::<u64>().unwrap() + 1).to_string();
        assert_eq!(
            s.verify(&path, &later, &sig, NOW),
            Err(UrlError::BadSignature)
        );
        assert_eq!(
            s.verify(&path, &format!("0{e}"), &sig, NOW),
            Err(UrlError::BadSignature)
        );
        let mut flipped = sig.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            s.verify(&path, &e, &flipped, NOW),
            Err(UrlError::BadSignature)
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        let s = UrlSigner::new(KEY, "http://127.0.0.1:8080", 600);
        let (path, e, sig) = parts(&s.sign("/x", NOW));
        for bad in ["", "-1", "+5", "1e9", " 1", "99999999999999999999999"] {
            assert_eq!(
                s.verify(&path, bad, &sig, NOW),
                Err(UrlError::Malformed),
                "{bad}"
            );
        }
        for bad in ["", "abc", &sig[..63], &format!("{sig}0"), &"zz".repeat(32)] {
            assert_eq!(
                s.verify(&path, &e, bad, NOW),
                Err(UrlError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn expiry_boundary() {
        let s = UrlSigner::new(KEY, "http://127.0.0.1:8080", 600);
        let (path, e, sig) = parts(&s.sign("/x", NOW));
        assert_eq!(s.verify(&path, &e, &sig, NOW + 600), Ok(()));
        assert_eq!(s.verify(&path, &e, &sig, NOW + 601), Err(UrlError::Expired));
        let far = UrlSigner::new(KEY, "http://127.0.0.1:8080", u64::MAX);
        let (path, e, sig) = parts(&far.sign("/x", NOW));
        assert_eq!(e, u64::MAX.to_string());
        assert_eq!(far.verify(&path, &e, &sig, u64::MAX), Ok(()));
    }

    #[test]
    fn another_key_is_refused() {
        let a = UrlSigner::new(KEY, "http://127.0.0.1:8080", 600);
        let b = UrlSigner::new([8u8; 32], "http://127.0.0.1:8080", 600);
        let (path, e, sig) = parts(&a.sign("/x", NOW));
        assert_eq!(b.verify(&path, &e, &sig, NOW), Err(UrlError::BadSignature));
    }

    #[test]
    fn debug_redacts_the_key() {
        let s = UrlSigner::new([0xAB; 32], "http://127.0.0.1:8080", 600);
        let text = format!("{s:?}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(
            !text.to_lowercase().contains("ab, ") && !text.contains("171"),
            "{text}"
        );
        assert!(!text.to_lowercase().contains("abab"), "{text}");
    }
}
