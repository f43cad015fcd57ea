//! The admin API's error type: each variant names its HTTP status; internal errors are
//! logged and answered as an opaque 500.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    /// Invalid input: `code` is machine-readable, `message` says which field and why.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// A unique key is taken; `extra` is merged into the error object (e.g. `personId`).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        extra: serde_json::Map<String, serde_json::Value>,
    },
    /// Any other status, with a machine-readable code; `extra` is merged into the error
    /// object (e.g. `field`, the unknown `personIds`).
    #[error("{message}")]
    Custom {
        status: StatusCode,
        code: &'static str,
        message: String,
        extra: serde_json::Map<String, serde_json::Value>,
    },
    /// Too many failed sign-ins of a username or from an address: 429 with `Retry-After`.
    #[error("too many failed sign-ins")]
    TooManyAttempts { retry_after_secs: u64 },
    /// No password hasher free in time: 503 with `Retry-After: 1`.
    #[error(transparent)]
    Busy(#[from] crate::runtime::password::Busy),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// A 422 naming the offending field (`{"code", "message", "field"}`).
    pub fn invalid_field(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        ApiError::custom(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            .with("field", serde_json::Value::from(field))
    }

    /// An error with any status and code.
    pub fn custom(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Custom {
            status,
            code,
            message: message.into(),
            extra: serde_json::Map::new(),
        }
    }

    /// Adds a member to the error object of a [`ApiError::Custom`] or
    /// [`ApiError::Conflict`] (other variants are returned unchanged).
    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        if let ApiError::Custom { extra, .. } | ApiError::Conflict { extra, .. } = &mut self {
            extra.insert(key.to_owned(), value);
        }
        self
    }
}

impl From<rollcall_rules::validate::FieldError> for ApiError {
    fn from(e: rollcall_rules::validate::FieldError) -> Self {
        ApiError::invalid_field(e.code, &e.field, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::TooManyAttempts { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Busy(_) => Some(1),
            _ => None,
        };
        let (status, code, message, extra) = match self {
            ApiError::TooManyAttempts { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("登录失败次数过多，请 {retry_after_secs} 秒后再试"),
                None,
            ),
            ApiError::Busy(busy) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                busy.to_string(),
                None,
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "需要有效的管理员令牌".to_owned(),
                None,
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "无权访问".to_owned(),
                None,
            ),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} 不存在"),
                None,
            ),
            ApiError::Invalid { code, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, message, None)
            }
            ApiError::Conflict {
                code,
                message,
                extra,
            } => (StatusCode::CONFLICT, code, message, Some(extra)),
            ApiError::Custom {
                status,
                code,
                message,
                extra,
            } => (status, code, message, Some(extra)),
            ApiError::Store(StoreError::NotFound(what)) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} 不存在"),
                None,
            ),
            ApiError::Store(StoreError::Conflict(what)) => (
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} 已存在"),
                None,
            ),
            ApiError::Store(e) => {
                tracing::error!(error = %e, "admin request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "系统异常".to_owned(),
                    None,
                )
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "admin request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "系统异常".to_owned(),
                    None,
                )
            }
        };
        let mut error = json!({ "code": code, "message": message });
        if let (Some(extra), Some(obj)) = (extra, error.as_object_mut()) {
            obj.extend(extra);
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// Every error: `{"error": {"code", "message", …}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A machine-readable `code`, a Chinese `message`, and members that depend on the error:
/// `field` (the offending field or query parameter), `personId` (`worker_exists`),
/// `personIds` (`unknown_person`), `sn` (`device_exists`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    pub person_id: Option<String>,
    pub person_ids: Option<Vec<String>>,
    pub sn: Option<String>,
}
