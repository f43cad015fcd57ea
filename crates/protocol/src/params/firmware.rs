//! T_UPDATE_DEVICE_VERSION (ZJ-FW-01): the firmware a device is asked to install.
//!
//! The same object is the task's param (signed, in T_GET_TASKS or a pushed command) and the
//! interface's response. The response's signature does not cover the response (ZJ-SIGN-14),
//! so a device takes the URL and the sha256 from the signed task param and checks the download
//! (ZJ-FW-03).

use serde::{Deserialize, Serialize};

use super::lenient;

/// `{version, size, downloadUrl, sha256}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirmwareInfo {
    /// The firmware package's version.
    #[serde(deserialize_with = "lenient::string")]
    pub version: String,
    /// The package's size in bytes.
    #[serde(deserialize_with = "lenient::u64")]
    pub size: u64,
    /// An absolute, signed and expiring URL under the platform's `public_url`.
    #[serde(deserialize_with = "lenient::string")]
    pub download_url: String,
    /// The package's SHA-256, 64 hex characters.
    #[serde(deserialize_with = "lenient::string")]
    pub sha256: String,
}

impl FirmwareInfo {
    /// The expected digest as bytes; `None` when `sha256` is not 64 hex characters.
    pub fn sha256_bytes(&self) -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.sha256, &mut out).ok()?;
        Some(out)
    }

    /// Whether a downloaded package has the announced size and digest (`digest` being its
    /// SHA-256, computed by the caller; ZJ-FW-03).
    pub fn matches(&self, len: u64, digest: &[u8; 32]) -> bool {
        len == self.size && self.sha256_bytes().is_some_and(|d| &d == digest)
    }
}
