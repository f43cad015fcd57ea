//! The SDK's errors, one enum per layer, each saying whether a retry can help
//! ([`SdkError::is_retryable`], after atuin's sync errors).
//!
//! - [`SdkError`]: what a call of the SDK (an HTTP interface, a download, a task, an enqueue)
//!   can fail with.
//! - [`crate::store::StoreError`]: the local SQLite store.
//! - [`RecordError`]: an attendance record refused **before** it enters the queue.
//! - [`CollectError`]: an enrolment of a collection device refused **before** it is sent.
//!
//! Secrets never appear in an error: requests are described by apicode and taskid only.

use rollcall_protocol::{ApiCode, ErrorCode, ProtocolError};

use crate::store::StoreError;

/// A failure of an SDK operation.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The platform answered with a protocol error (`errorcode` + `errormsg`).
    #[error("platform refused {api}: {error}")]
    Refused { api: ApiCode, error: ProtocolError },
    /// Connecting, sending or receiving failed (connection refused, reset, DNS, …).
    #[error("network: {0}")]
    Network(String),
    /// No answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// An HTTP status other than 200 where a protocol body or a file was expected.
    #[error("HTTP {status} from {what}")]
    HttpStatus { status: u16, what: String },
    /// A success response whose `sign` does not verify with the vendor's secret: forged,
    /// corrupted, or signed with another secret. Nothing of it is used.
    #[error("the signature of the {api} response does not verify")]
    BadSignature { api: ApiCode },
    /// A verified response whose content is not what the interface promises.
    #[error("malformed {api} response: {detail}")]
    BadResponse { api: ApiCode, detail: String },
    /// An encrypted (JWE) response that cannot be decrypted with the device's key, or a JWE
    /// response while the device has no key configured.
    #[error("encrypted response: {0}")]
    Decrypt(String),
    /// A downloaded photo that is not a usable JPEG/PNG.
    #[error("photo: {0}")]
    Photo(#[from] crate::photo::PhotoError),
    /// A firmware package whose size or sha256 differs from the signed task param.
    #[error("firmware: {0}")]
    Firmware(String),
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// A record refused before it entered the queue.
    #[error("record refused: {0}")]
    Record(#[from] RecordError),
    /// An enrolment (X_COLLECT_PERSON) refused before it was sent.
    #[error("enrolment refused: {0}")]
    Collect(#[from] CollectError),
    /// The device configuration cannot work (bad address, unreadable key).
    #[error("configuration: {0}")]
    Config(String),
    /// The device has shut down; nothing more can be done with this handle.
    #[error("the device has shut down")]
    Closed,
}

impl SdkError {
    /// Whether repeating the operation later can succeed.
    ///
    /// Retryable: network failures and timeouts, HTTP 5xx/429, the protocol's transient codes
    /// (`500_01`, `429_01`) and those a fresh token or a corrected clock cures (`401_01`,
    /// `400_05`) — see [`ErrorCode::is_permanent`] — a signature that did not verify (a
    /// corrupted answer may come right next time), a firmware download that did not match,
    /// and a busy local store. Everything else needs a change first.
    pub fn is_retryable(&self) -> bool {
        match self {
            SdkError::Refused { error, .. } => !error.code.is_permanent(),
            SdkError::Network(_) | SdkError::Timeout(_) | SdkError::BadSignature { .. } => true,
            SdkError::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            SdkError::Firmware(_) => true,
            SdkError::Store(e) => e.is_retryable(),
            SdkError::BadResponse { .. }
            | SdkError::Decrypt(_)
            | SdkError::Photo(_)
            | SdkError::Record(_)
            | SdkError::Collect(_)
            | SdkError::Config(_)
            | SdkError::Closed => false,
        }
    }

    /// The protocol error code, when the platform answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            SdkError::Refused { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// The param member a `400_02` names, e.g. `idcardNo` for a refused ID card number: the
    /// platform writes the member first in the detail (`idcardNo: …`), so a terminal can
    /// show the operator which field to capture again. `None` for any other answer.
    pub fn refused_member(&self) -> Option<&str> {
        match self {
            SdkError::Refused { error, .. } if error.code == ErrorCode::ParamInvalid => {
                let detail = error.detail.as_deref()?;
                let (member, _) = detail.split_once(':')?;
                let member = member.trim();
                (!member.is_empty()
                    && member
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'))
                .then_some(member)
            }
            _ => None,
        }
    }
}

/// Why an attendance record cannot enter the queue. Never retryable: the record itself must
/// change (the platform would refuse it for good, or could not receive it at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// `personId` is empty.
    #[error("personId is empty")]
    NoPerson,
    /// The platform would answer 403_01/403_02/403_03.
    #[error("{0}")]
    Invalid(ProtocolError),
    /// The photo is not a JPEG/PNG, or larger than the platform keeps.
    #[error("photo: {0}")]
    Photo(crate::photo::PhotoError),
}

/// Why an enrolment cannot be sent. Never retryable: the capture itself must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectError {
    /// `idcardNo` is not 17 digits and a check character (digit or `X`). The check
    /// character and the birth date are the platform's check (`400_02` naming `idcardNo`).
    #[error("idcardNo: not an 18-character ID card number")]
    IdCardNo,
    /// `name` is empty.
    #[error("name is empty")]
    NoName,
    /// An image member (`facePhoto`, `idCardPhoto`, …) that is not a usable JPEG/PNG, or is
    /// over the size limit. Iris images are BMP/PNG/JPEG and only checked for being present.
    #[error("{member}: {error}")]
    Image {
        member: &'static str,
        error: crate::photo::PhotoError,
    },
}
