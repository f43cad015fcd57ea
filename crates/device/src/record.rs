//! Attendance records: what a vendor's recognition code hands the SDK
//! ([`AttendanceRecord`]), what waits in the durable queue ([`QueuedRecord`]), and what was
//! refused for good ([`DeadLetter`]).
//!
//! A record is checked **before** it enters the queue ([`AttendanceRecord::validate`]): the
//! 403_0x dictionary rules of the protocol crate and the photo rules of [`crate::photo`], so
//! that what is queued is what the platform will take. Its photo travels as base64 in `img`
//! and is left out of the signature by the protocol crate's sign recipe.

use base64::Engine as _;
use rollcall_protocol::params::{
    self, AttendanceType, BitType, Coordinate, QrCodeInfo, SignInParam,
};

use crate::error::RecordError;

/// One attendance event, as the terminal's recognition produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttendanceRecord {
    /// The platform's person id (as the roster gave it).
    pub person_id: String,
    /// The method: face, iris, mobile, card, … (wire `type`).
    pub method: AttendanceType,
    /// Composite methods, when more than one was used (wire `bitType`).
    pub bit_type: Option<BitType>,
    /// When it was taken: epoch milliseconds, the device's clock.
    pub record_time: i64,
    /// The capture: JPEG or PNG bytes (sent base64 as `img`).
    pub photo: Option<Vec<u8>>,
    /// Body temperature, °C.
    pub temperature: Option<f64>,
    /// Where (mobile attendance), GCJ-02 unless the project says WGS-84.
    pub coordinate: Option<Coordinate>,
    /// The scanned code (QR / health-code attendance).
    pub qr_code_info: Option<QrCodeInfo>,
    /// Iris recognition information.
    pub iris_info: Option<String>,
}

impl AttendanceRecord {
    /// A record of one method and nothing else.
    fn of(person_id: impl Into<String>, method: AttendanceType, record_time: i64) -> Self {
        AttendanceRecord {
            person_id: person_id.into(),
            method,
            bit_type: None,
            record_time,
            photo: None,
            temperature: None,
            coordinate: None,
            qr_code_info: None,
            iris_info: None,
        }
    }

    /// A face record with a capture photo — the common case, and a gate's record too (a
    /// gate's direction is its registration on the platform, not a member of the record:
    /// see [`crate::kind`]).
    pub fn face(person_id: impl Into<String>, record_time: i64, photo: Option<Vec<u8>>) -> Self {
        AttendanceRecord {
            photo,
            ..Self::of(person_id, AttendanceType::Face, record_time)
        }
    }

    /// An iris record (`type` 32) with the terminal's iris recognition information.
    pub fn iris(
        person_id: impl Into<String>,
        record_time: i64,
        iris_info: impl Into<String>,
    ) -> Self {
        AttendanceRecord {
            iris_info: Some(iris_info.into()),
            ..Self::of(person_id, AttendanceType::Iris, record_time)
        }
    }

    /// A mobile attendance record (`type` 64): the face capture and where the phone was
    /// (GCJ-02 unless the project says WGS-84). The platform flags a record outside the
    /// project's fence `outside_fence`, and one without a coordinate `no_coordinate`; it
    /// stores both.
    pub fn mobile(
        person_id: impl Into<String>,
        record_time: i64,
        coordinate: Coordinate,
        photo: Option<Vec<u8>>,
    ) -> Self {
        AttendanceRecord {
            coordinate: Some(coordinate),
            photo,
            ..Self::of(person_id, AttendanceType::Mobile, record_time)
        }
    }

    /// A QR code record (`type` 16) with the scanned code. Alone it is auxiliary attendance
    /// (the platform flags `indirect_method`); add the face capture with
    /// [`AttendanceRecord::with_face`] to make it real-name.
    pub fn qr(person_id: impl Into<String>, record_time: i64, code: QrCodeInfo) -> Self {
        AttendanceRecord {
            qr_code_info: Some(code),
            ..Self::of(person_id, AttendanceType::QrCode, record_time)
        }
    }

    /// Adds the face capture. For a method that is not itself face-based (QR, card, iris)
    /// the record becomes composite: `bitType` = its methods + face (QR + face = 17).
    /// Mobile attendance is face + position by definition (DEVICES.md §5), so a mobile
    /// record keeps its single `type`.
    pub fn with_face(mut self, photo: Vec<u8>) -> Self {
        self.photo = Some(photo);
        if !matches!(self.method, AttendanceType::Face | AttendanceType::Mobile) {
            let bits = self.bit_type.unwrap_or(BitType::from(self.method));
            self.bit_type = Some(bits | BitType::from(AttendanceType::Face));
        }
        self
    }

    /// The C_SIGN_IN param of this record, **without** `img` (the queue keeps the photo as
    /// bytes; it is encoded when sent).
    pub fn to_param(&self) -> SignInParam {
        SignInParam {
            person_id: self.person_id.clone(),
            r#type: self.method.code(),
            bit_type: self.bit_type.map(|b| b.0),
            qr_code_info: self.qr_code_info.clone(),
            img: None,
            record_time: self.record_time,
            temperature: self.temperature,
            iris_info: self.iris_info.clone(),
            coordinate: self.coordinate,
        }
    }

    /// The checks the platform would answer with a permanent error, done before queueing:
    /// an empty personId, the 403_0x rules, and a photo that is not a JPEG/PNG or is over
    /// `max_photo_bytes`.
    pub fn validate(&self, max_photo_bytes: usize) -> Result<(), RecordError> {
        if self.person_id.trim().is_empty() {
            return Err(RecordError::NoPerson);
        }
        self.to_param().validate().map_err(RecordError::Invalid)?;
        if let Some(photo) = &self.photo {
            crate::photo::check(photo, max_photo_bytes).map_err(RecordError::Photo)?;
        }
        Ok(())
    }
}

/// A record waiting in the durable queue. `id` is its queue position: ids only grow
/// (SQLite `AUTOINCREMENT`), and the queue drains in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedRecord {
    pub id: i64,
    /// The C_SIGN_IN param without `img`.
    pub param: SignInParam,
    pub photo: Option<Vec<u8>>,
}

impl QueuedRecord {
    /// Bytes of its photo (0 without one).
    pub fn photo_len(&self) -> usize {
        self.photo.as_ref().map_or(0, Vec::len)
    }

    /// The param text sent on the wire: strict JSON with `img` (base64) when there is a photo.
    pub fn wire_param(&self) -> String {
        match &self.photo {
            None => params::to_json(&self.param),
            Some(bytes) => {
                let mut p = self.param.clone();
                p.img = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
                params::to_json(&p)
            }
        }
    }

    pub fn record_time(&self) -> i64 {
        self.param.record_time
    }
}

/// A record the platform refused for good (a permanent error such as `400_02` or `403_0x`),
/// moved out of the queue so that it cannot block the records behind it. The vendor's
/// software lists them ([`crate::DeviceHandle::dead_letters`]) and may requeue them after a fix.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Its id while it was queued.
    pub id: i64,
    pub person_id: String,
    pub record_time: i64,
    /// The param without `img`, as JSON text.
    pub param: String,
    pub has_photo: bool,
    /// The wire error code, e.g. `403_01`.
    pub error_code: String,
    /// The platform's `errormsg`.
    pub error_message: String,
    /// When it was moved here (epoch ms).
    pub failed_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_mirrors_the_platform() {
        let ok = AttendanceRecord::face("42", 1, Some(crate::photo::sample::SMALL_JPEG.to_vec()));
        assert_eq!(ok.validate(409_600), Ok(()));
        let mut bad = ok.clone();
        bad.person_id = " ".into();
        assert_eq!(bad.validate(409_600), Err(RecordError::NoPerson));
        let mut bad = ok.clone();
        bad.bit_type = Some(BitType(1));
        assert!(matches!(
            bad.validate(409_600),
            Err(RecordError::Invalid(_))
        ));
        let mut bad = ok.clone();
        bad.photo = Some(b"not a picture".to_vec());
        assert!(matches!(bad.validate(409_600), Err(RecordError::Photo(_))));
    }

    #[test]
    fn each_kind_has_its_typed_record() {
        let iris = AttendanceRecord::iris("1", 5, "IRIS-FEATURE");
        let p = iris.to_param();
        assert_eq!(
            (p.r#type, p.iris_info.as_deref()),
            (32, Some("IRIS-FEATURE"))
        );
        assert!(p.is_real_name());

        let here = Coordinate {
            longitude: 120.15,
            latitude: 30.28,
        };
        let mobile = AttendanceRecord::mobile("1", 5, here, None)
            .with_face(crate::photo::sample::SMALL_JPEG.to_vec());
        let p = mobile.to_param();
        assert_eq!((p.r#type, p.bit_type, p.coordinate), (64, None, Some(here)));

        let code = QrCodeInfo {
            r#type: QrCodeInfo::PERSON_CODE,
            code_color: Some("green".into()),
            code_value: Some("P-1".into()),
            city_code: Some("330100".into()),
        };
        let qr = AttendanceRecord::qr("1", 5, code.clone());
        assert!(
            !qr.to_param().is_real_name(),
            "a QR code alone is auxiliary"
        );
        let qr = qr.with_face(crate::photo::sample::SMALL_JPEG.to_vec());
        let p = qr.to_param();
        assert_eq!((p.r#type, p.bit_type), (16, Some(17)));
        assert_eq!(p.qr_code_info, Some(code));
        assert!(p.is_real_name());
        assert_eq!(qr.validate(409_600), Ok(()));
    }

    #[test]
    fn wire_param_carries_the_photo_as_base64() {
        let r = QueuedRecord {
            id: 1,
            param: AttendanceRecord::face("7", 1_700_000_000_000, None).to_param(),
            photo: Some(vec![0xFF, 0xD8, 0xFF]),
        };
        let text = r.wire_param();
        let back: SignInParam = params::parse(&text).unwrap();
        assert_eq!(back.decode_img().unwrap(), Some(vec![0xFF, 0xD8, 0xFF]));
        assert_eq!(back.person_id, "7");
    }
}
