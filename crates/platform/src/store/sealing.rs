//! Secrets at rest: the vendor credentials' `accessKey` and `accessSecret` (and any secret the
//! platform must give back in clear later, such as an uplink password) are stored **sealed**
//! with AES-256-GCM under the operator's secret key, never in clear.
//!
//! - **The stored form** is `sealed:v1:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>`. The key
//!   id is the first 8 hex digits of SHA-256 of the key, so a value names the key that opens it
//!   without revealing it. The associated data binds a value to its column and credential
//!   (`<column>:<access id>`): a sealed value copied into another row does not open.
//! - **The keyring** is one current key (the first) and any number of older keys, given as
//!   base64 lines of a key file or comma-separated in one environment variable. Values are
//!   always sealed under the current key; any key of the ring opens.
//! - **Rotation** (SECURITY.md): put a new key first, keep the old one after it, restart; at
//!   startup the platform reseals every value not under the current key
//!   ([`crate::store::VendorStore::reseal_secrets`]); then the old key can go.
//! - **Values written before sealing existed** (plain text, no `sealed:` prefix) are read as
//!   they are and resealed at the next startup, so an upgrade needs no manual step.

use std::fmt;

use aes_gcm::aead::{AeadInOut, Generate, KeyInit};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rollcall_protocol::ids::Secret;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed:v1:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// Why a keyring could not be built or a value could not be opened. Never carries key
/// material or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error(
        "secret key {index}: not base64 of 32 bytes (generate one with `rollcall keys generate`)"
    )]
    BadKey { index: usize },
    #[error("no secret key given")]
    NoKey,
    #[error("no secret key is configured, so sealed secrets cannot be read or written")]
    Unset,
    #[error("a value is sealed with key {0}, which is not in the keyring")]
    UnknownKey(String),
    #[error("a sealed value is malformed")]
    Malformed,
    #[error("a sealed value does not open (tampered, or moved to another row)")]
    Tampered,
    #[error("the operating system's random source failed")]
    Random,
}

struct SealKey {
    id: String,
    cipher: Aes256Gcm,
}

/// The operator's secret keys: the current one seals, all of them open.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: std::sync::Arc<Vec<SealKey>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field(
                "key_ids",
                &self.keys.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A value read back: the secret, and whether it should be resealed (it was not sealed under
/// the current key, or not sealed at all).
#[derive(Debug)]
pub struct Opened {
    pub secret: Secret,
    pub stale: bool,
}

impl Keyring {
    /// A keyring from base64 keys separated by newlines or commas; the first is current.
    /// Blank lines and `#` comments are ignored.
    pub fn parse(text: &str) -> Result<Keyring, SealError> {
        let mut keys = Vec::new();
        for (index, item) in text
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .flat_map(|line| line.split(','))
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .enumerate()
        {
            let bytes = STANDARD
                .decode(item)
                .ok()
                .and_then(|b| <[u8; KEY_LEN]>::try_from(b.as_slice()).ok())
                .ok_or(SealError::BadKey { index: index + 1 })?;
            keys.push(SealKey {
                id: hex::encode(&Sha256::digest(bytes)[..4]),
                cipher: Aes256Gcm::new(&Key::<Aes256Gcm>::from(bytes)),
            });
        }
        if keys.is_empty() {
            return Err(SealError::NoKey);
        }
        Ok(Keyring {
            keys: std::sync::Arc::new(keys),
        })
    }

    /// A fresh random key, base64, for a key file or the environment.
    pub fn generate_key() -> Result<String, SealError> {
        let key = <[u8; KEY_LEN]>::try_generate().map_err(|_| SealError::Random)?;
        Ok(STANDARD.encode(key))
    }

    /// The current key's id, if any key is configured.
    pub fn current_id(&self) -> Option<&str> {
        self.keys.first().map(|k| k.id.as_str())
    }

    /// Seals `secret` for `column` of the credential `access_id`.
    pub fn seal(
        &self,
        column: &str,
        access_id: &str,
        secret: &Secret,
    ) -> Result<String, SealError> {
        let key = self.keys.first().ok_or(SealError::Unset)?;
        let nonce = <[u8; NONCE_LEN]>::try_generate().map_err(|_| SealError::Random)?;
        let mut body = secret.expose().as_bytes().to_vec();
        let tag = key
            .cipher
            .encrypt_inout_detached(
                &nonce.into(),
                aad(column, access_id).as_bytes(),
                body.as_mut_slice().into(),
            )
            .map_err(|_| SealError::Malformed)?;
        let mut raw = Vec::with_capacity(NONCE_LEN + body.len() + TAG_LEN);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&body);
        raw.extend_from_slice(&tag);
        Ok(format!("{PREFIX}{}:{}", key.id, STANDARD.encode(raw)))
    }

    /// Opens a stored value of `column` of the credential `access_id`.
    pub fn open(&self, column: &str, access_id: &str, stored: &str) -> Result<Opened, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            // Written before secrets were sealed: read as is, reseal at the next startup.
            return Ok(Opened {
                secret: Secret::new(stored),
                stale: true,
            });
        };
        let (id, body) = rest.split_once(':').ok_or(SealError::Malformed)?;
        let position = self
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let raw = STANDARD.decode(body).map_err(|_| SealError::Malformed)?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| SealError::Malformed)?;
        let mut plain = ciphertext.to_vec();
        self.keys[position]
            .cipher
            .decrypt_inout_detached(
                &nonce.into(),
                aad(column, access_id).as_bytes(),
                plain.as_mut_slice().into(),
                &tag.into(),
            )
            .map_err(|_| SealError::Tampered)?;
        let secret = String::from_utf8(plain).map_err(|_| SealError::Malformed)?;
        Ok(Opened {
            secret: Secret::new(secret),
            stale: position != 0,
        })
    }
}

fn aad(column: &str, access_id: &str) -> String {
    format!("{column}:{access_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&str]) -> Keyring {
        Keyring::parse(&keys.join("\n")).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_and_never_shows_the_plaintext() {
        let key = Keyring::generate_key().unwrap();
        let keys = ring(&[&key]);
        let sealed = keys
            .seal("access_secret", "AK1", &Secret::new("0123456789abcdef"))
            .unwrap();
        assert!(sealed.starts_with("sealed:v1:"), "{sealed}");
        assert!(!sealed.contains("0123456789abcdef"));
        let opened = keys.open("access_secret", "AK1", &sealed).unwrap();
        assert_eq!(opened.secret.expose(), "0123456789abcdef");
        assert!(!opened.stale);
        // A fresh nonce each time: the same secret never seals to the same text.
        let again = keys
            .seal("access_secret", "AK1", &Secret::new("0123456789abcdef"))
            .unwrap();
        assert_ne!(sealed, again);
    }

    #[test]
    fn a_value_moved_to_another_row_or_column_or_altered_does_not_open() {
        let keys = ring(&[&Keyring::generate_key().unwrap()]);
        let sealed = keys
            .seal("access_secret", "AK1", &Secret::new("s3cret"))
            .unwrap();
        assert_eq!(
            keys.open("access_secret", "AK2", &sealed).unwrap_err(),
            SealError::Tampered
        );
        assert_eq!(
            keys.open("access_key", "AK1", &sealed).unwrap_err(),
            SealError::Tampered
        );
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(keys.open("access_secret", "AK1", &altered).is_err());
        assert_eq!(
            keys.open("access_secret", "AK1", "sealed:v1:nocolon")
                .unwrap_err(),
            SealError::Malformed
        );
    }

    #[test]
    fn rotation_opens_old_values_marks_them_stale_and_seals_under_the_new_key() {
        let (old, new) = (
            Keyring::generate_key().unwrap(),
            Keyring::generate_key().unwrap(),
        );
        let before = ring(&[&old]);
        let sealed = before.seal("access_key", "AK", &Secret::new("k")).unwrap();

        let after = ring(&[&new, &old]);
        let opened = after.open("access_key", "AK", &sealed).unwrap();
        assert_eq!(opened.secret.expose(), "k");
        assert!(opened.stale, "sealed under an older key");
        let resealed = after.seal("access_key", "AK", &opened.secret).unwrap();
        assert!(resealed.contains(after.current_id().unwrap()));
        assert!(!after.open("access_key", "AK", &resealed).unwrap().stale);

        // Without the old key, the old value names the key it needs.
        let only_new = ring(&[&new]);
        assert_eq!(
            only_new.open("access_key", "AK", &sealed).unwrap_err(),
            SealError::UnknownKey(before.current_id().unwrap().to_owned())
        );
    }

    #[test]
    fn plain_values_from_before_sealing_are_read_and_marked_stale() {
        let keys = ring(&[&Keyring::generate_key().unwrap()]);
        let opened = keys.open("access_secret", "AK", "plainhex").unwrap();
        assert_eq!(opened.secret.expose(), "plainhex");
        assert!(opened.stale);
    }

    #[test]
    fn key_text_is_parsed_strictly_and_its_debug_shows_ids_only() {
        let (a, b) = (
            Keyring::generate_key().unwrap(),
            Keyring::generate_key().unwrap(),
        );
        let keys = Keyring::parse(&format!("# rotated 2026-12\n{a}\n\n{b} # old\n")).unwrap();
        assert_eq!(keys.keys.len(), 2);
        assert_eq!(Keyring::parse(&format!("{a},{b}")).unwrap().keys.len(), 2);
        let debug = format!("{keys:?}");
        assert!(!debug.contains(&a) && !debug.contains(&b), "{debug}");
        assert!(debug.contains(keys.current_id().unwrap()));

        assert_eq!(Keyring::parse(" \n# none\n").unwrap_err(), SealError::NoKey);
        assert_eq!(
            Keyring::parse(&format!("{a},c2hvcnQ=")).unwrap_err(),
            SealError::BadKey { index: 2 }
        );
        assert_eq!(
            Keyring::default()
                .seal("access_key", "AK", &Secret::new("k"))
                .unwrap_err(),
            SealError::Unset
        );
    }
}
