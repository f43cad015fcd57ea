//! Error codes of the standard (the standard's §1.3; ZJ-ERR-02) and our extensions, with their
//! messages and precedence.
//!
//! This module is **the one place** where a code meets its text: `errormsg` is the standard's
//! Chinese message word for word, optionally followed by `: ` and a detail (ZJ-ERR-01).
//! Higher layers (platform services, the SDK) map their own error enums onto [`ErrorCode`];
//! nothing else spells a code or a message.

use std::fmt;

/// Every error code a response can carry (ZJ-ERR-02).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// `413_01` (ext): a frame or body over its limit.
    TooLarge,
    /// `400_01`: apicode missing, empty, unknown, or a T_ apicode sent over TCP.
    ApiCodeInvalid,
    /// `402_01`: version missing.
    VersionMissing,
    /// `402_02`: sn missing.
    SnMissing,
    /// `402_03`: token missing.
    TokenMissing,
    /// `402_04`: never produced (400_01 covers a missing apicode, ZJ-ERR-03); listed for
    /// completeness.
    ApiCodeMissing,
    /// `402_05`: timeStamp missing on a C_ apicode.
    TimestampMissing,
    /// `402_06`: param missing where the interface requires one.
    ParamMissing,
    /// `402_07`: sign missing.
    SignMissing,
    /// `402_08` (ext): taskid missing on a task interface.
    TaskIdMissing,
    /// `404_01`: malformed timeStamp.
    TimestampMalformed,
    /// `400_05`: timeStamp outside the allowed skew.
    TimestampSkew,
    /// `400_06` (ext): unknown sn without auto-registration, or a disabled device.
    DeviceUnavailable,
    /// `401_02`: vendor credentials rotated or revoked.
    CredentialsRevoked,
    /// `401_01`: unknown or expired token.
    TokenNotFound,
    /// `400_04`: bad sign, another device's token, unknown credentials, sn of another vendor.
    AuthFailed,
    /// `429_01` (ext): a device over its request budget.
    RateLimited,
    /// `400_02`: param (or body) unparsable, wrong member type, required member missing.
    ParamInvalid,
    /// `405_01` (ext): unknown task, another device's, or used with another apicode.
    TaskNotFound,
    /// `403_01`: attendance type outside the dictionary.
    AttendanceType,
    /// `403_02`: composite attendance type invalid.
    AttendanceBitType,
    /// `403_03`: QR code type invalid.
    QrCodeType,
    /// `500_01`: an internal fault; nothing was half-written; the device retries.
    Internal,
}

impl ErrorCode {
    /// Every code, **in precedence order**: when several apply, the earliest wins (ZJ-ERR-04).
    /// `500_01` comes last: it is raised by faults, never chosen among input errors.
    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::TooLarge,
        ErrorCode::ApiCodeInvalid,
        ErrorCode::VersionMissing,
        ErrorCode::SnMissing,
        ErrorCode::TokenMissing,
        ErrorCode::ApiCodeMissing,
        ErrorCode::TimestampMissing,
        ErrorCode::ParamMissing,
        ErrorCode::SignMissing,
        ErrorCode::TaskIdMissing,
        ErrorCode::TimestampMalformed,
        ErrorCode::TimestampSkew,
        ErrorCode::DeviceUnavailable,
        ErrorCode::CredentialsRevoked,
        ErrorCode::TokenNotFound,
        ErrorCode::AuthFailed,
        ErrorCode::RateLimited,
        ErrorCode::ParamInvalid,
        ErrorCode::TaskNotFound,
        ErrorCode::AttendanceType,
        ErrorCode::AttendanceBitType,
        ErrorCode::QrCodeType,
        ErrorCode::Internal,
    ];

    /// The wire code, e.g. `"400_04"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::TooLarge => "413_01",
            ErrorCode::ApiCodeInvalid => "400_01",
            ErrorCode::VersionMissing => "402_01",
            ErrorCode::SnMissing => "402_02",
            ErrorCode::TokenMissing => "402_03",
            ErrorCode::ApiCodeMissing => "402_04",
            ErrorCode::TimestampMissing => "402_05",
            ErrorCode::ParamMissing => "402_06",
            ErrorCode::SignMissing => "402_07",
            ErrorCode::TaskIdMissing => "402_08",
            ErrorCode::TimestampMalformed => "404_01",
            ErrorCode::TimestampSkew => "400_05",
            ErrorCode::DeviceUnavailable => "400_06",
            ErrorCode::CredentialsRevoked => "401_02",
            ErrorCode::TokenNotFound => "401_01",
            ErrorCode::AuthFailed => "400_04",
            ErrorCode::RateLimited => "429_01",
            ErrorCode::ParamInvalid => "400_02",
            ErrorCode::TaskNotFound => "405_01",
            ErrorCode::AttendanceType => "403_01",
            ErrorCode::AttendanceBitType => "403_02",
            ErrorCode::QrCodeType => "403_03",
            ErrorCode::Internal => "500_01",
        }
    }

    /// The standard's message, word for word (ours for the extension codes).
    pub const fn message(self) -> &'static str {
        match self {
            ErrorCode::TooLarge => "数据包过大",
            ErrorCode::ApiCodeInvalid => "APICODE为空",
            ErrorCode::VersionMissing => "当前版本号（数据包版本号）不能为空",
            ErrorCode::SnMissing => "设备号不能为空",
            ErrorCode::TokenMissing => "设备认证通过Token值不能为空",
            ErrorCode::ApiCodeMissing => "接口标识不能为空",
            ErrorCode::TimestampMissing => "时间戳不能为空",
            ErrorCode::ParamMissing => "请求参数json串param不能为空",
            ErrorCode::SignMissing => "签名不能为空",
            ErrorCode::TaskIdMissing => "任务id不能为空",
            ErrorCode::TimestampMalformed => "时间戳timeStamp格式有误，正确格式为yyyyMMddHHmmss",
            ErrorCode::TimestampSkew => "timestamp验证错误",
            ErrorCode::DeviceUnavailable => "设备未登记或已停用",
            ErrorCode::CredentialsRevoked => "认证密钥已失效",
            ErrorCode::TokenNotFound => "token不存在",
            ErrorCode::AuthFailed => "token或sign验证失败",
            ErrorCode::RateLimited => "请求过于频繁",
            ErrorCode::ParamInvalid => "param解析失败",
            ErrorCode::TaskNotFound => "任务不存在",
            ErrorCode::AttendanceType => "考勤类型有误，请参考数据字典传值",
            ErrorCode::AttendanceBitType => "考勤复合类型有误，请参考数据字典传值",
            ErrorCode::QrCodeType => "二维码类型有误，请参考数据字典传值",
            ErrorCode::Internal => "系统异常",
        }
    }

    /// Position in the precedence order of ZJ-ERR-04 (lower wins).
    pub fn rank(self) -> usize {
        // ALL is written in precedence order; a linear scan of 23 entries is cheap.
        Self::ALL
            .iter()
            .position(|c| *c == self)
            .unwrap_or(usize::MAX)
    }

    /// Parses a wire code such as `"401_01"`.
    pub fn from_wire(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }

    /// Whether a device should give up on the request rather than retry it unchanged.
    /// Transient: `500_01`, `429_01`; the token errors are cured by re-authenticating.
    pub fn is_permanent(self) -> bool {
        !matches!(
            self,
            ErrorCode::Internal
                | ErrorCode::RateLimited
                | ErrorCode::TokenNotFound
                | ErrorCode::TimestampSkew
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answered on the wire: a code plus an optional detail (which field, which value,
/// the platform's time). The detail is written after the standard's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub detail: Option<String>,
}

impl ProtocolError {
    pub fn new(code: ErrorCode) -> Self {
        ProtocolError { code, detail: None }
    }

    pub fn with_detail(code: ErrorCode, detail: impl Into<String>) -> Self {
        ProtocolError {
            code,
            detail: Some(detail.into()),
        }
    }

    /// `errormsg`: the standard's message, then `: detail` when there is one (ZJ-ERR-01).
    pub fn errormsg(&self) -> String {
        match &self.detail {
            Some(d) if !d.is_empty() => format!("{}: {}", self.code.message(), d),
            _ => self.code.message().to_owned(),
        }
    }

    /// The strict JSON text of the `error` member: `{"errorcode":"…","errormsg":"…"}`.
    pub fn to_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            errorcode: &'a str,
            errormsg: String,
        }
        let body = Body {
            errorcode: self.code.as_str(),
            errormsg: self.errormsg(),
        };
        // Serialising two strings cannot fail.
        serde_json::to_string(&body).unwrap_or_default()
    }

    /// Reads an `error` member back (device side). Unknown codes are kept as `None`.
    pub fn from_json(text: &str) -> Option<(Option<ErrorCode>, String)> {
        #[derive(serde::Deserialize)]
        struct Body {
            errorcode: String,
            #[serde(default)]
            errormsg: String,
        }
        let body: Body = serde_json::from_str(text).ok()?;
        Some((ErrorCode::from_wire(&body.errorcode), body.errormsg))
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.as_str(), self.errormsg())
    }
}

impl std::error::Error for ProtocolError {}

impl From<ErrorCode> for ProtocolError {
    fn from(code: ErrorCode) -> Self {
        ProtocolError::new(code)
    }
}
