//! Encrypted success responses: JWE compact serialization, `RSA-OAEP-256` + `A256GCM`
//! (ZJ-JWE-01, ZJ-JWE-02; RFC 7516 / RFC 7518).
//!
//! This module owns the one JWE profile the protocol uses. A vendor may register an RSA public
//! key; the platform then replaces the JSON text of every success `response` with
//!
//! ```text
//! BASE64URL(header) . BASE64URL(RSA-OAEP-256(CEK)) . BASE64URL(IV) . BASE64URL(ciphertext) . BASE64URL(tag)
//! ```
//!
//! where `header` is exactly `{"alg":"RSA-OAEP-256","enc":"A256GCM"}`, the CEK is a fresh
//! random 256-bit AES key, the IV a fresh random 96-bit nonce, and the AES-GCM additional
//! authenticated data is the ASCII of the first (base64url) part. [`JweEncrypter`] is the
//! platform side (public key), [`JweDecrypter`] the device side (private key, used by the device
//! SDK and by tests).
//!
//! ## Decisions
//! - **Keys.** PEM only: SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY` for encryption, PKCS#8
//!   `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY` for decryption (encrypted PKCS#8 is refused).
//!   Keys under [`MIN_KEY_BITS`] (2048) are refused with [`JweError::KeyTooSmall`] on **both**
//!   sides — also keys so small that the `rsa` crate itself would not load them (< 1024), whose
//!   size is read from the DER first so the error still says how many bits were offered. The
//!   `rsa` crate's upper limit (8192 bits) also applies.
//! - **Strict header.** `alg` and `enc` must be exactly `RSA-OAEP-256` / `A256GCM`; any other
//!   value is [`JweError::Unsupported`]. A `zip` (compression) or `crit` (critical extensions)
//!   member is also unsupported (RFC 7516 §4.1.3/§4.1.11 forbid ignoring them). Other members
//!   (`kid`, `typ`, `cty`, …) are ignored. Base64url must be unpadded and canonical.
//! - **One opaque decryption error.** A wrong key, a tampered encrypted key, IV, ciphertext, tag
//!   or header all yield [`JweError::Decrypt`]. As RFC 7516 §11.5 recommends, when the RSA step
//!   fails a random CEK is substituted and AES-GCM still runs, so the RSA and GCM failures are not
//!   told apart by the error nor by an early return.
//! - **Randomness** comes from the operating system through the crates' `getrandom` support
//!   (`rsa`'s OAEP padding and blinding, `aead::Generate` for the CEK and IV). That is the only
//!   contact with the outside world and is not I/O in the sense of this crate. An RNG failure is
//!   reported as [`JweError::Encrypt`], never a panic.
//! - **Secrets.** CEKs are wiped on drop (`zeroize`, and `aes-gcm`'s `zeroize` feature for the
//!   AES key schedule); `Debug` of [`JweDecrypter`] prints only the key size, never key material,
//!   and key-loading errors never quote the PEM.
//!
//! ## RUSTSEC-2023-0071 (Marvin attack on `rsa`)
//! `cargo audit` lists this advisory for the `rsa` crate: a timing side channel in **private-key**
//! operations that could let an attacker who times many of them decrypt or sign with the key. The
//! platform only ever **encrypts** with vendors' **public** keys — it holds no private key, so
//! nothing secret is exposed to that channel; the advisory is ignored with that reason.
//! [`JweDecrypter`] does run private-key operations, but only on a device (or in tests), on its own
//! key, for responses from its own platform — not an oracle an attacker can query. The `rsa`
//! decryption also uses random blinding.

use std::fmt;

use aes_gcm::aead::{AeadInOut, Generate, KeyInit};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _, RsaPublicKeyRef};
use rsa::pkcs8::der::{Decode as _, Document, SecretDocument};
use rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{PrivateKey, PublicKey};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The key-management algorithm: RSAES-OAEP with SHA-256 and MGF1 with SHA-256.
pub const ALG: &str = "RSA-OAEP-256";
/// The content-encryption algorithm: AES-256 in Galois/Counter Mode.
pub const ENC: &str = "A256GCM";
/// The protected header every JWE this module writes carries, byte for byte.
pub const PROTECTED_HEADER: &str = r#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#;
/// The smallest RSA modulus accepted, in bits.
pub const MIN_KEY_BITS: usize = 2048;

/// Content-encryption key length for A256GCM, in bytes.
const CEK_LEN: usize = 32;
/// GCM nonce length, in bytes.
const IV_LEN: usize = 12;
/// GCM tag length, in bytes.
const TAG_LEN: usize = 16;
/// At most this many characters of an unsupported header value are echoed in an error.
const MAX_ECHO_CHARS: usize = 64;

/// Why a key could not be loaded or a JWE could not be produced or opened.
#[derive(Debug, thiserror::Error)]
pub enum JweError {
    /// The PEM is not an RSA key of the expected kind.
    #[error("invalid RSA key: {0}")]
    Key(String),
    /// The RSA key is shorter than [`MIN_KEY_BITS`].
    #[error("RSA key of {bits} bits refused: at least 2048 bits required")]
    KeyTooSmall {
        /// The modulus size offered.
        bits: usize,
    },
    /// Not a well-formed compact JWE (part count, base64url, header JSON, IV or tag length).
    #[error("malformed JWE: {0}")]
    Malformed(&'static str),
    /// A well-formed JWE using an algorithm or feature this profile does not support.
    #[error("unsupported JWE: {0}")]
    Unsupported(String),
    /// Decryption or authentication failed: wrong key, or the JWE was altered.
    #[error("JWE decryption failed")]
    Decrypt,
    /// Encryption failed (the operating system's RNG failed, or the plaintext is too long
    /// for AES-GCM).
    #[error("JWE encryption failed: {0}")]
    Encrypt(String),
}

/// Encrypts response texts to one vendor's RSA public key. Cheap to clone.
#[derive(Clone)]
pub struct JweEncrypter {
    key: PublicKey,
}

impl fmt::Debug for JweEncrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JweEncrypter")
            .field("key_bits", &self.key_bits())
            .finish()
    }
}

impl JweEncrypter {
    /// Loads a public key from PEM: SPKI `-----BEGIN PUBLIC KEY-----` or PKCS#1
    /// `-----BEGIN RSA PUBLIC KEY-----`. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`JweError::KeyTooSmall`] under 2048 bits; [`JweError::Key`] for anything that is not an
    /// RSA public key in one of those encodings.
    pub fn from_public_key_pem(pem: &str) -> Result<Self, JweError> {
        let (label, doc) = Document::from_pem(pem.trim()).map_err(key_error)?;
        let key = match label {
            "PUBLIC KEY" => {
                let spki = SubjectPublicKeyInfoRef::from_der(doc.as_bytes()).map_err(key_error)?;
                if let Some(pkcs1) = spki.subject_public_key.as_bytes() {
                    refuse_small(modulus_bits(pkcs1))?;
                }
                PublicKey::from_public_key_der(doc.as_bytes()).map_err(key_error)?
            }
            "RSA PUBLIC KEY" => {
                refuse_small(modulus_bits(doc.as_bytes()))?;
                PublicKey::from_pkcs1_der(doc.as_bytes()).map_err(key_error)?
            }
            other => return Err(wrong_label(other, "PUBLIC KEY or RSA PUBLIC KEY")),
        };
        refuse_small(Some(public_key_bits(&key)))?;
        Ok(JweEncrypter { key })
    }

    /// The size of the RSA modulus in bits.
    pub fn key_bits(&self) -> usize {
        public_key_bits(&self.key)
    }

    /// Encrypts `plaintext` (the JSON text of a response) into a JWE compact serialization.
    ///
    /// Each call draws a fresh random CEK (32 bytes) and 96-bit IV. The protected header is
    /// exactly [`PROTECTED_HEADER`]; AAD = ASCII(BASE64URL(header)); all five parts are base64url
    /// without padding.
    ///
    /// # Errors
    /// [`JweError::Encrypt`] if the operating system's RNG fails or the plaintext exceeds
    /// AES-GCM's limit (64 GiB).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, JweError> {
        let cek = Zeroizing::new(<[u8; CEK_LEN]>::try_generate().map_err(rng_error)?);
        let iv = <[u8; IV_LEN]>::try_generate().map_err(rng_error)?;
        let encrypted_key = self
            .key
            .oaep_encrypt::<Sha256>(cek.as_slice())
            .map_err(|e| JweError::Encrypt(format!("RSA-OAEP: {e}")))?;

        let header = URL_SAFE_NO_PAD.encode(PROTECTED_HEADER);
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*cek));
        let mut ciphertext = plaintext.to_vec();
        let tag = cipher
            .encrypt_inout_detached(
                &iv.into(),
                header.as_bytes(),
                ciphertext.as_mut_slice().into(),
            )
            .map_err(|_| JweError::Encrypt("AES-GCM: plaintext too long".to_owned()))?;

        let parts: [&[u8]; 4] = [&encrypted_key, &iv, &ciphertext, &tag];
        let mut out = header;
        for part in parts {
            out.push('.');
            URL_SAFE_NO_PAD.encode_string(part, &mut out);
        }
        Ok(out)
    }
}

/// Decrypts JWEs addressed to one RSA private key (the device side).
#[derive(Clone)]
pub struct JweDecrypter {
    key: PrivateKey,
}

impl fmt::Debug for JweDecrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JweDecrypter")
            .field("key", &"REDACTED")
            .field("key_bits", &public_key_bits(self.key.as_public_key()))
            .finish()
    }
}

impl JweDecrypter {
    /// Loads a private key from PEM: PKCS#8 `-----BEGIN PRIVATE KEY-----` or PKCS#1
    /// `-----BEGIN RSA PRIVATE KEY-----`. Surrounding whitespace is ignored.
    ///
    /// # Errors
    /// [`JweError::KeyTooSmall`] under 2048 bits; [`JweError::Key`] for anything else that is not
    /// an unencrypted RSA private key in one of those encodings. Messages never contain key
    /// material.
    pub fn from_private_key_pem(pem: &str) -> Result<Self, JweError> {
        let (label, doc) = SecretDocument::from_pem(pem.trim()).map_err(key_error)?;
        let key = match label {
            "PRIVATE KEY" => PrivateKey::from_pkcs8_der(doc.as_bytes()).map_err(key_error)?,
            "RSA PRIVATE KEY" => PrivateKey::from_pkcs1_der(doc.as_bytes()).map_err(key_error)?,
            "ENCRYPTED PRIVATE KEY" => {
                return Err(JweError::Key(
                    "encrypted PKCS#8 is not supported; decrypt the key first".to_owned(),
                ));
            }
            other => return Err(wrong_label(other, "PRIVATE KEY or RSA PRIVATE KEY")),
        };
        refuse_small(Some(public_key_bits(key.as_public_key())))?;
        Ok(JweDecrypter { key })
    }

    /// The size of the RSA modulus in bits.
    pub fn key_bits(&self) -> usize {
        public_key_bits(self.key.as_public_key())
    }

    /// Decrypts and authenticates a JWE compact serialization, returning the plaintext.
    ///
    /// Checks there are exactly 5 parts, that the header's `alg`/`enc` are exactly
    /// `RSA-OAEP-256`/`A256GCM`, then decrypts the CEK and the content.
    ///
    /// # Errors
    /// [`JweError::Malformed`] for a structural problem, [`JweError::Unsupported`] for another
    /// algorithm, [`JweError::Decrypt`] when the key does not fit or anything was altered.
    pub fn decrypt(&self, compact: &str) -> Result<Vec<u8>, JweError> {
        let mut parts = compact.split('.');
        let (Some(header_b64), Some(ek_b64), Some(iv_b64), Some(ct_b64), Some(tag_b64), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(JweError::Malformed("expected 5 dot-separated parts"));
        };

        let header = decode_part(header_b64, "header is not base64url")?;
        check_header(&header)?;
        let encrypted_key = decode_part(ek_b64, "encrypted key is not base64url")?;
        let iv = decode_part(iv_b64, "IV is not base64url")?;
        let iv: [u8; IV_LEN] = iv
            .try_into()
            .map_err(|_| JweError::Malformed("IV must be 96 bits"))?;
        let mut content = decode_part(ct_b64, "ciphertext is not base64url")?;
        let tag = decode_part(tag_b64, "tag is not base64url")?;
        let tag: [u8; TAG_LEN] = tag
            .try_into()
            .map_err(|_| JweError::Malformed("tag must be 128 bits"))?;

        let cek = self.unwrap_cek(&encrypted_key)?;
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*cek));
        cipher
            .decrypt_inout_detached(
                &iv.into(),
                header_b64.as_bytes(),
                content.as_mut_slice().into(),
                &tag.into(),
            )
            .map_err(|_| JweError::Decrypt)?;
        Ok(content)
    }

    /// Decrypts the CEK. RFC 7516 §11.5: when the RSA step fails (or yields a key of the wrong
    /// length), carry on with a random CEK so that neither the error nor an early return reveals
    /// which step failed; AES-GCM authentication then fails as it would for any tampering.
    fn unwrap_cek(&self, encrypted_key: &[u8]) -> Result<Zeroizing<[u8; CEK_LEN]>, JweError> {
        let decrypted = self
            .key
            .oaep_decrypt::<Sha256>(encrypted_key)
            .map(Zeroizing::new);
        if let Ok(cek) = &decrypted
            && let Ok(cek) = <[u8; CEK_LEN]>::try_from(cek.as_slice())
        {
            return Ok(Zeroizing::new(cek));
        }
        random_cek()
    }
}

/// Checks the protected header: a JSON object with exactly our `alg` and `enc`, and neither
/// `zip` nor `crit`.
fn check_header(header: &[u8]) -> Result<(), JweError> {
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(header)
        .map_err(|_| JweError::Malformed("header is not a JSON object"))?;
    for (name, want, missing) in [
        ("alg", ALG, "header lacks alg"),
        ("enc", ENC, "header lacks enc"),
    ] {
        match header.get(name) {
            None => return Err(JweError::Malformed(missing)),
            Some(serde_json::Value::String(s)) if s == want => {}
            Some(other) => {
                return Err(JweError::Unsupported(format!(
                    "{name} {}, only {want}",
                    echo(&other.to_string())
                )));
            }
        }
    }
    if header.contains_key("zip") {
        return Err(JweError::Unsupported("zip (compression)".to_owned()));
    }
    if header.contains_key("crit") {
        return Err(JweError::Unsupported(
            "crit (critical extensions)".to_owned(),
        ));
    }
    Ok(())
}

fn decode_part(part: &str, what: &'static str) -> Result<Vec<u8>, JweError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JweError::Malformed(what))
}

fn random_cek() -> Result<Zeroizing<[u8; CEK_LEN]>, JweError> {
    // Unlikely (the OS RNG failed); report it as the opaque decryption failure it leads to.
    <[u8; CEK_LEN]>::try_generate()
        .map(Zeroizing::new)
        .map_err(|_| JweError::Decrypt)
}

/// The bit length of the modulus of a DER `RSAPublicKey`, if it parses.
fn modulus_bits(pkcs1_der: &[u8]) -> Option<usize> {
    let key = RsaPublicKeyRef::from_der(pkcs1_der).ok()?;
    let bytes = key.modulus.as_bytes();
    let first = bytes.iter().position(|&b| b != 0)?;
    let leading = usize::try_from(bytes[first].leading_zeros()).ok()?;
    Some((bytes.len() - first) * 8 - leading)
}

fn public_key_bits(key: &PublicKey) -> usize {
    usize::try_from(key.n().bit_width_vartime()).unwrap_or(usize::MAX)
}

fn refuse_small(bits: Option<usize>) -> Result<(), JweError> {
    match bits {
        Some(bits) if bits < MIN_KEY_BITS => Err(JweError::KeyTooSmall { bits }),
        _ => Ok(()),
    }
}

fn key_error(e: impl fmt::Display) -> JweError {
    JweError::Key(e.to_string())
}

fn wrong_label(label: &str, expected: &str) -> JweError {
    JweError::Key(format!("PEM label {:?}, expected {expected}", echo(label)))
}

fn rng_error(e: impl fmt::Display) -> JweError {
    JweError::Encrypt(format!("random number generator: {e}"))
}

fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}
