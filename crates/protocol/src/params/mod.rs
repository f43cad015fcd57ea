//! Typed params and responses of every interface, X_COLLECT_PERSON included (ZJ-COLLECT-03).
//!
//! The platform reads params and writes responses; the device SDK writes params and reads
//! responses; both use the same types, so the two sides cannot drift apart.
//!
//! - **Reading is lenient** (ZJ-JSON-01, ZJ-JSON-02): [`parse`] takes strict JSON or the JSON5
//!   subset of [`crate::json::to_strict`], numbers given as strings and strings given as
//!   numbers (the [`lenient`] readers), ignores unknown members and treats `null` as absent for
//!   optional ones. Every failure is `400_02` with a Chinese detail that **names the member**
//!   (ZJ-ERR-06), with its path when nested: `缺少字段 personId`, `缺少字段 task[0].status`,
//!   `字段 type 类型错误: 需要整数，收到字符串 "abc"`, `JSON 语法错误: 第 12 字节 (…)` (a 0-based byte offset).
//! - **Writing is strict** ([`to_json`]): compact JSON, members in struct field order (the
//!   response signature covers the exact text), optional members left out when `None`, ids
//!   written as strings (ZJ-JSON-03).
//!
//! One module per interface group: [`auth`], [`heartbeat`], [`sign_in`], [`tasks`]
//! (T_GET_TASKS, T_UPDATE_TASKS_STATUS), [`persons`] (T_SEND_PERSON, T_UPDATE_DEVICE_PERSON,
//! T_DEL_DEVICE_PERSON, T_POST_DEVICE_PERSON), [`firmware`] (T_UPDATE_DEVICE_VERSION) and
//! [`collect`] (X_COLLECT_PERSON). T_CLEAR_DEVICE_PERSON has neither param nor response.
//! Business validation beyond types (403_0x of C_SIGN_IN) is [`SignInParam::validate`];
//! everything that needs storage (known persons, fences, image content) is the platform's.

pub mod auth;
pub mod collect;
pub mod firmware;
pub mod heartbeat;
pub mod lenient;
pub mod persons;
pub mod sign_in;
pub mod tasks;

mod diagnose;

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::code::{ErrorCode, ProtocolError};

pub use auth::AuthResponse;
pub use collect::{CollectPersonParam, CollectPersonResponse};
pub use firmware::FirmwareInfo;
pub use heartbeat::{HeartbeatParam, HeartbeatResponse, HeartbeatSeen, NO_TASKS_JSON};
pub use persons::{
    DEFAULT_PAGE_SIZE, DelPersonResponse, DevicePerson, MAX_PAGE_SIZE, PageParam, PersonEntry,
    PersonPage, PostDevicePersonParam, PostDevicePersonTaskParam,
};
pub use sign_in::{AttendanceType, BitType, Coordinate, QrCodeInfo, SignInParam, SignInResponse};
pub use tasks::{
    FailedItem, GetTasksParam, GetTasksResponse, PersonIdsParam, TaskItem, TaskOutcome, TaskStatus,
    UpdateTasksStatusParam,
};

/// Reads a param (or response) leniently (ZJ-JSON-01, ZJ-JSON-02).
///
/// Strict JSON goes straight to `serde_json`; on a *syntax* error the text is rewritten by
/// [`crate::json::to_strict`] and read again. Members are read by the [`lenient`] readers
/// wherever the standard's type is String/Int/Long/Double. Every error is
/// [`ErrorCode::ParamInvalid`] (`400_02`) whose detail names the member (ZJ-ERR-06).
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ProtocolError> {
    let first = match serde_json::from_str::<T>(text) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    // serde_json reports a missing member before it notices trailing garbage, and a wrong
    // member before a JSON5 construct further on: a data error only stands for valid JSON.
    let syntax_ok = !first.is_syntax()
        && !first.is_eof()
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
    if syntax_ok {
        return Err(diagnose::error(text, &first));
    }
    match crate::json::to_strict(text) {
        Err(e) => Err(invalid(format!(
            "JSON 语法错误: 第 {} 字节 ({})",
            e.offset, e.reason
        ))),
        // Nothing to rewrite: serde_json's own complaint stands.
        Ok(Cow::Borrowed(_)) => Err(diagnose::error(text, &first)),
        Ok(Cow::Owned(strict)) => {
            serde_json::from_str::<T>(&strict).map_err(|e| diagnose::error(&strict, &e))
        }
    }
}

/// Writes a param or response as compact strict JSON, members in field order.
pub fn to_json<T: Serialize>(v: &T) -> String {
    // The types of this module serialise to JSON infallibly: string keys, finite floats or
    // none (serde_json writes a non-finite float as null rather than failing).
    serde_json::to_string(v).unwrap_or_default()
}

/// A `400_02` error with a detail.
pub(crate) fn invalid(detail: impl Into<String>) -> ProtocolError {
    ProtocolError::with_detail(ErrorCode::ParamInvalid, detail)
}

/// The base64 [`decode_base64`] accepts: the standard alphabet, padded or not, trailing bits
/// ignored.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decodes a base64 image member (`img`, `facePhoto`, …); `member` names it in the error.
///
/// Accepted: the standard alphabet, with or without `=` padding; ASCII whitespace anywhere
/// (Android's `Base64.DEFAULT` and MIME encoders wrap lines every 76 characters); and a
/// `data:<mime>;base64,` prefix as browsers and mobile apps write it. Not base64 → `400_02`
/// naming the member (ZJ-SIGNIN-03, ZJ-COLLECT-04). Whether the bytes are a JPEG/PNG, and
/// their size, is the platform's business.
pub fn decode_base64(member: &str, text: &str) -> Result<Vec<u8>, ProtocolError> {
    let body = match text.strip_prefix("data:") {
        Some(rest) => match rest.split_once(";base64,") {
            Some((_mime, body)) => body,
            None => {
                return Err(invalid(format!(
                    "字段 {member} 不是有效的 base64: data URI 缺少 \";base64,\""
                )));
            }
        },
        None => text,
    };
    let decode = |b64: &[u8]| match decode_canonical(b64) {
        Some(bytes) => Ok(bytes),
        None => LENIENT.decode(b64),
    };
    // Decoded as it is first: whitespace is outside the alphabet, so text holding any fails
    // here and is decoded again without it. Looking for whitespace before decoding was a scan
    // of the whole photo on every sign-in (BENCHMARKS.md, sign-in profile).
    let decoded = decode(body.as_bytes()).or_else(|e| {
        if body.bytes().any(|b| b.is_ascii_whitespace()) {
            let compact: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            decode(&compact)
        } else {
            Err(e)
        }
    });
    decoded.map_err(|e| {
        let why = match e {
            base64::DecodeError::InvalidByte(at, byte) => {
                format!("第 {at} 个字符 {:?} 无效", char::from(byte))
            }
            base64::DecodeError::InvalidLength(_) => "长度无效".to_owned(),
            base64::DecodeError::InvalidLastSymbol(at, _) => format!("第 {at} 个字符无效"),
            base64::DecodeError::InvalidPadding => "填充无效".to_owned(),
        };
        invalid(format!("字段 {member} 不是有效的 base64: {why}"))
    })
}

/// `b64` decoded by the SIMD decoder when it is canonical base64 (the standard alphabet, with
/// its padding or none), what devices send; `None` leaves it to the lenient decoder above,
/// whose verdict stands. Either decoder gives the same bytes for text both accept, so this
/// only makes the usual photo cheaper: the lenient decoder was the largest part of a photo
/// sign-in's instructions (BENCHMARKS.md, session 12).
fn decode_canonical(b64: &[u8]) -> Option<Vec<u8>> {
    // Exactly the padding a length that is a multiple of four can carry; anything else with an
    // `=` fails below and goes to the lenient decoder.
    let unpadded = match b64.len() % 4 {
        0 => b64
            .strip_suffix(b"==")
            .or_else(|| b64.strip_suffix(b"="))
            .unwrap_or(b64),
        _ => b64,
    };
    base64_simd::STANDARD_NO_PAD.decode_to_vec(unpadded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    use proptest::prelude::*;

    proptest! {
        /// The SIMD path takes every canonical encoding, padded or not (so a device's photo
        /// never pays for the lenient decoder), and whatever else it accepts it decodes to the
        /// bytes the lenient decoder gives.
        #[test]
        fn the_fast_path_decodes_as_the_lenient_decoder_does(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            pad in any::<bool>(),
            noise in "[A-Za-z0-9+/=_ \n-]{0,6}",
            at in any::<usize>(),
        ) {
            let text = if pad { STANDARD.encode(&bytes) } else { STANDARD_NO_PAD.encode(&bytes) };
            prop_assert_eq!(decode_canonical(text.as_bytes()), Some(bytes.clone()));
            let mut damaged = text.clone();
            damaged.insert_str(at % (text.len() + 1), &noise);
            if let Some(fast) = decode_canonical(damaged.as_bytes()) {
                prop_assert_eq!(Ok(fast), LENIENT.decode(&damaged));
            }
            let whole = decode_base64("img", &damaged);
            let lenient = LENIENT.decode(&damaged);
            if let Ok(lenient) = lenient {
                prop_assert_eq!(whole, Ok(lenient));
            }
        }
    }

    #[test]
    fn base64_forms() {
        let plain = decode_base64("img", "aGVsbG8=").unwrap();
        assert_eq!(plain, b"hello");
        assert_eq!(decode_base64("img", "aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("img", "aGVs\r\nbG8=\n").unwrap(), b"hello");
        assert_eq!(
            decode_base64("img", "data:image/jpeg;base64,aGVsbG8=").unwrap(),
            b"hello"
        );
        let err = decode_base64("img", "not base64!").unwrap_err();
        assert_eq!(err.code, ErrorCode::ParamInvalid);
        assert!(err.detail.unwrap().contains("img"));
        assert!(decode_base64("facePhoto", "data:image/png,xx").is_err());
    }
}
