//! Errors of the device-facing layer and **the one exhaustive mapping** onto wire codes.
//!
//! Handlers and services return [`DeviceError`]; [`DeviceError::to_wire`] turns it into the
//! code and message a device sees. Internal detail (SQL errors, I/O) is logged by the
//! dispatcher and answered as a bare `500_01`; nothing internal leaks onto the wire.

use rollcall_protocol::code::{ErrorCode, ProtocolError};

use crate::runtime::ingest::IngestError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Already a wire error: envelope checks, param parsing, 403_0x validation.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Unknown sn without auto-registration, or a disabled device.
    #[error("device unavailable")]
    DeviceUnavailable,
    #[error("credentials revoked")]
    CredentialsRevoked,
    #[error("token unknown or expired")]
    TokenNotFound,
    /// Bad sign, another device's token, unknown credentials, sn of another vendor, a
    /// connection bound to another device. The reason is logged, not answered: nothing
    /// confirms that an id exists.
    #[error("authentication failed: {0}")]
    AuthFailed(&'static str),
    #[error("over the request budget")]
    RateLimited,
    #[error("task not found: {0}")]
    TaskNotFound(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("photo storage: {0}")]
    Io(#[from] std::io::Error),
    /// An internal failure already logged where it happened (e.g. a failed group commit
    /// answered to every record in the batch).
    #[error("internal: {0}")]
    Internal(String),
    /// The platform is shutting down or a worker task is gone.
    #[error("platform unavailable")]
    Unavailable,
}

impl From<IngestError> for DeviceError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Unavailable => DeviceError::Unavailable,
            IngestError::Failed(what) => DeviceError::Internal(what.to_owned()),
        }
    }
}

impl DeviceError {
    /// The wire error for this failure.
    pub fn to_wire(&self) -> ProtocolError {
        match self {
            DeviceError::Protocol(p) => p.clone(),
            DeviceError::DeviceUnavailable => ErrorCode::DeviceUnavailable.into(),
            DeviceError::CredentialsRevoked => ErrorCode::CredentialsRevoked.into(),
            DeviceError::TokenNotFound => ErrorCode::TokenNotFound.into(),
            DeviceError::AuthFailed(_) => ErrorCode::AuthFailed.into(),
            DeviceError::RateLimited => ErrorCode::RateLimited.into(),
            DeviceError::TaskNotFound(id) => {
                ProtocolError::with_detail(ErrorCode::TaskNotFound, id.clone())
            }
            DeviceError::Store(_)
            | DeviceError::Io(_)
            | DeviceError::Internal(_)
            | DeviceError::Unavailable => ErrorCode::Internal.into(),
        }
    }

    /// Whether the failure is ours (logged at error level) rather than the device's.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            DeviceError::Store(_)
                | DeviceError::Io(_)
                | DeviceError::Internal(_)
                | DeviceError::Unavailable
        )
    }

    /// A 400_02 naming what is wrong.
    pub fn param(detail: impl Into<String>) -> Self {
        DeviceError::Protocol(ProtocolError::with_detail(ErrorCode::ParamInvalid, detail))
    }
}
