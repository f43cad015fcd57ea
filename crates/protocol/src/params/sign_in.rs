//! C_SIGN_IN (ZJ-SIGNIN-01): one attendance record, the attendance-method dictionary, and the
//! 403_0x rules (ZJ-SIGNIN-02).
//!
//! Parsing ([`super::parse`]) answers `400_02`; [`SignInParam::validate`], called after a
//! successful parse, answers `403_01`/`403_02`/`403_03`, in that order. Everything else about a
//! record (unknown person, fences, late upload, photo content) is stored and flagged by the
//! platform, never rejected.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::lenient;
use crate::code::{ErrorCode, ProtocolError};

/// One attendance method of the dictionary (`type`), a single bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum AttendanceType {
    /// 1: face (人脸) — real-name.
    Face = 1,
    /// 2: IC card (IC卡) — not real-name alone.
    IcCard = 2,
    /// 4: health code (健康码) — auxiliary.
    HealthCode = 4,
    /// 8: ID card (身份证) — not real-name alone.
    IdCard = 8,
    /// 16: QR code (二维码) — auxiliary.
    QrCode = 16,
    /// 32: iris (虹膜) — real-name.
    Iris = 32,
    /// 64: mobile attendance with third-party real-name check (移动考勤) — real-name.
    Mobile = 64,
}

impl AttendanceType {
    /// The seven methods, in bit order.
    pub const ALL: [AttendanceType; 7] = [
        AttendanceType::Face,
        AttendanceType::IcCard,
        AttendanceType::HealthCode,
        AttendanceType::IdCard,
        AttendanceType::QrCode,
        AttendanceType::Iris,
        AttendanceType::Mobile,
    ];

    /// The wire code (its bit).
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The method of a wire code; `None` outside the dictionary (→ `403_01`).
    pub fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Whether the method alone is real-name attendance (RC-DEV-01: face, iris, mobile).
    pub const fn is_real_name(self) -> bool {
        matches!(
            self,
            AttendanceType::Face | AttendanceType::Iris | AttendanceType::Mobile
        )
    }

    /// The standard's Chinese name.
    pub const fn label(self) -> &'static str {
        match self {
            AttendanceType::Face => "人脸",
            AttendanceType::IcCard => "IC卡",
            AttendanceType::HealthCode => "健康码",
            AttendanceType::IdCard => "身份证",
            AttendanceType::QrCode => "二维码",
            AttendanceType::Iris => "虹膜",
            AttendanceType::Mobile => "移动考勤",
        }
    }
}

impl fmt::Display for AttendanceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for AttendanceType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.code())
    }
}

impl<'de> Deserialize<'de> for AttendanceType {
    /// A wire code, read leniently (`1` or `"1"`); a code outside the dictionary is an error.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::integer_with(d, |n| {
            u32::try_from(n)
                .ok()
                .and_then(Self::from_code)
                .ok_or_else(|| format!("取值错误: {n} 不是考勤类型"))
        })
    }
}

/// A set of attendance methods: the composite `bitType`, or a single `type` seen as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BitType(
    /// The bits, as on the wire.
    #[serde(deserialize_with = "lenient::u32")]
    pub u32,
);

impl BitType {
    /// The seven bits of the dictionary.
    pub const KNOWN_BITS: u32 = 0b111_1111;

    /// Whether the set holds `method`.
    pub const fn contains(self, method: AttendanceType) -> bool {
        self.0 & method.code() != 0
    }

    /// A valid composite `bitType`: only the seven bits, and at least two of them (403_02,
    /// ZJ-SIGNIN-02).
    pub const fn is_valid_composite(self) -> bool {
        self.0 & !Self::KNOWN_BITS == 0 && self.0.count_ones() >= 2
    }

    /// Whether the set holds a real-name method (face 1, iris 32 or mobile 64).
    pub const fn is_real_name(self) -> bool {
        self.contains(AttendanceType::Face)
            || self.contains(AttendanceType::Iris)
            || self.contains(AttendanceType::Mobile)
    }

    /// The known methods in the set, in bit order.
    pub fn methods(self) -> impl Iterator<Item = AttendanceType> {
        AttendanceType::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
    }
}

impl From<AttendanceType> for BitType {
    fn from(t: AttendanceType) -> Self {
        BitType(t.code())
    }
}

impl std::ops::BitOr for BitType {
    type Output = BitType;

    fn bitor(self, rhs: BitType) -> BitType {
        BitType(self.0 | rhs.0)
    }
}

/// `qrCodeInfo`: the code scanned for QR / health-code attendance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QrCodeInfo {
    /// 1 person code (人员二维码) | 2 health code (健康码); anything else → `403_03`.
    #[serde(deserialize_with = "lenient::u32")]
    pub r#type: u32,
    /// `red` | `yellow` | `green`.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub code_color: Option<String>,
    /// The code's value.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub code_value: Option<String>,
    /// Administrative division code (行政区划代码); nationwide `100000`.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub city_code: Option<String>,
}

impl QrCodeInfo {
    /// QR type 1: a person code.
    pub const PERSON_CODE: u32 = 1;
    /// QR type 2: a health code.
    pub const HEALTH_CODE: u32 = 2;
}

/// `coordinate`: where a mobile record was taken (GCJ-02 unless the project says `wgs84`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coordinate {
    /// Longitude in degrees.
    #[serde(deserialize_with = "lenient::f64")]
    pub longitude: f64,
    /// Latitude in degrees.
    #[serde(deserialize_with = "lenient::f64")]
    pub latitude: f64,
}

/// C_SIGN_IN param: one attendance record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInParam {
    /// The platform's person id (decimal string; a JSON number is accepted exactly).
    #[serde(deserialize_with = "lenient::string")]
    pub person_id: String,
    /// The attendance method, one of the seven codes of [`AttendanceType`] (wire `type`).
    #[serde(deserialize_with = "lenient::u32")]
    pub r#type: u32,
    /// Composite methods (3 = face + IC card, 13 = face + health code + ID card).
    #[serde(
        default,
        deserialize_with = "lenient::opt_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub bit_type: Option<u32>,
    /// The scanned code, for QR / health-code attendance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_code_info: Option<QrCodeInfo>,
    /// The face photo, base64 (JPEG/PNG); see [`SignInParam::decode_img`].
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub img: Option<String>,
    /// When the record was taken: epoch milliseconds.
    #[serde(deserialize_with = "lenient::i64")]
    pub record_time: i64,
    /// Body temperature, °C.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub temperature: Option<f64>,
    /// Iris recognition information (e.g. a feature value).
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub iris_info: Option<String>,
    /// Where the record was taken (mobile attendance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinate: Option<Coordinate>,
}

impl SignInParam {
    /// The 403 checks of ZJ-SIGNIN-02, in precedence order:
    /// `type` outside the dictionary → `403_01`; `bitType` present with bits outside the seven
    /// or fewer than two bits → `403_02`; `qrCodeInfo` present with a `type` other than 1 or 2
    /// → `403_03`. Call it after a successful [`super::parse`] (400_02 comes first).
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if AttendanceType::from_code(self.r#type).is_none() {
            return Err(ProtocolError::with_detail(
                ErrorCode::AttendanceType,
                format!("type={}", self.r#type),
            ));
        }
        if let Some(bits) = self.bit_type
            && !BitType(bits).is_valid_composite()
        {
            return Err(ProtocolError::with_detail(
                ErrorCode::AttendanceBitType,
                format!("bitType={bits}"),
            ));
        }
        if let Some(qr) = &self.qr_code_info
            && !matches!(qr.r#type, QrCodeInfo::PERSON_CODE | QrCodeInfo::HEALTH_CODE)
        {
            return Err(ProtocolError::with_detail(
                ErrorCode::QrCodeType,
                format!("qrCodeInfo.type={}", qr.r#type),
            ));
        }
        Ok(())
    }

    /// The attendance method of `type`, when it is in the dictionary.
    pub fn attendance_type(&self) -> Option<AttendanceType> {
        AttendanceType::from_code(self.r#type)
    }

    /// Every method the record claims: `type` together with `bitType` when present.
    ///
    /// A well-formed composite contains its `type`, so this is simply `bitType` when present,
    /// else `type`; the union also answers ZJ-SIGNIN-07's flags ("type **or** bitType contains 64")
    /// correctly for a device whose `bitType` leaves its `type` out.
    pub fn methods(&self) -> BitType {
        BitType(self.r#type | self.bit_type.unwrap_or(0))
    }

    /// Whether the record counts as real-name attendance: its methods include face, iris or
    /// mobile (RC-DEV-01, RC-DEV-03; otherwise the platform flags `indirect_method`).
    pub fn is_real_name(&self) -> bool {
        self.methods().is_real_name()
    }

    /// The photo's bytes: `None` when `img` is absent or empty; not base64 → `400_02` naming
    /// `img` (ZJ-SIGNIN-03). Accepts what [`super::decode_base64`] accepts (padding optional,
    /// line breaks, a `data:image/…;base64,` prefix). Whether the bytes are an image is the
    /// caller's check.
    pub fn decode_img(&self) -> Result<Option<Vec<u8>>, ProtocolError> {
        match self.img.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => super::decode_base64("img", text).map(Some),
        }
    }
}

/// C_SIGN_IN response (ext): `{recordId, duplicate}`; `duplicate` is true when the record
/// had already been stored (same sn, personId, recordTime, type) and nothing new was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInResponse {
    /// The stored record's id (decimal string).
    #[serde(deserialize_with = "lenient::string")]
    pub record_id: String,
    /// Whether this was a resend of a stored record.
    #[serde(default, deserialize_with = "lenient::bool")]
    pub duplicate: bool,
}
