//! The collection device (采集设备, DEVICES.md "Enrollment data", PROTOCOL.md §7): a terminal
//! that reads a worker's ID card, takes the face (and optionally the irises) once, and
//! enrols the worker on the platform with `X_COLLECT_PERSON` — after which every attendance
//! terminal of the worker's project gets them through its usual person tasks.
//!
//! [`CollectedPerson`] is one capture, images as bytes; [`Collector`] checks it the way the
//! platform will ([`CollectedPerson::validate`]) and uploads it over HTTP, signed without its
//! images (the protocol crate's sign recipe). Answers are mapped as every other call of the
//! SDK: a success gives the person id; a refusal is [`SdkError::Refused`] with the wire code,
//! retried by the SDK when a retry can help (`401_01` re-authenticates, `400_05` corrects the
//! clock, `500_01`/`429_01`/network back off) and otherwise returned — `400_02` names the
//! member that failed ([`SdkError::refused_member`]), `400_01` says the device is not
//! registered as a collector. An enrolment is idempotent on the ID card number (the platform
//! answers the same person id again), so resending after a lost answer is safe.
//!
//! The upload is not queued: a collection device enrols with the worker standing in front of
//! it, and the operator needs the answer (or the field to capture again) there and then.
//!
//! ```no_run
//! # async fn demo(face: Vec<u8>) -> Result<(), rollcall_device::SdkError> {
//! use rollcall_device::collect::{CollectedPerson, Collector};
//! use rollcall_device::{Credentials, DeviceConfig};
//! let creds = Credentials::new("access id", "access key", "access secret");
//! let config = DeviceConfig::new("COLLECT-01", creds, "192.0.2.10:7700", "http://192.0.2.10:8080", "/var/lib/collector");
//! let collector = Collector::new(config)?;
//! let mut person = CollectedPerson::new("33010619850315123X", "陈六", face);
//! person.nation = Some("汉".into());
//! let enrolled = collector.upload(&person).await?;
//! println!("person id {}", enrolled.person_id);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use base64::Engine as _;
use rollcall_protocol::ApiCode;
use rollcall_protocol::params::{self, CollectPersonParam, CollectPersonResponse};

use crate::config::DeviceConfig;
use crate::error::{CollectError, SdkError};
use crate::http::DeviceHttp;
use crate::photo::{self, PhotoError};

/// One enrolment as the collection device captured it: the ID card's fields (as read from
/// its chip), its images, the face photo, optional iris images.
#[derive(Clone, PartialEq)]
pub struct CollectedPerson {
    /// 18 characters (GB 11643-1999).
    pub idcard_no: String,
    pub name: String,
    /// 男 / 女; the platform reads it from the ID number when absent.
    pub gender: Option<String>,
    /// 民族.
    pub nation: Option<String>,
    pub birth_date: Option<String>,
    pub address: Option<String>,
    /// 签发机关.
    pub issuing_authority: Option<String>,
    pub valid_from: Option<String>,
    /// End of validity, or `长期`.
    pub valid_to: Option<String>,
    /// The face photo: JPEG or PNG, under the platform's limit (400 KB), one face.
    pub face_photo: Vec<u8>,
    /// The chip photo (JPEG/PNG).
    pub id_card_photo: Option<Vec<u8>>,
    /// The card's front (JPEG/PNG).
    pub id_card_front: Option<Vec<u8>>,
    /// The card's back (JPEG/PNG).
    pub id_card_back: Option<Vec<u8>>,
    /// Left iris: 640×480, one 8-bit channel, BMP by default.
    pub iris_left: Option<Vec<u8>>,
    /// Right iris.
    pub iris_right: Option<Vec<u8>>,
    pub phone: Option<String>,
    /// The device's face-vs-chip-photo score, when it compared them.
    pub face_match_score: Option<f64>,
}

/// ID numbers masked, images by size: a capture is sensitive personal information.
impl fmt::Debug for CollectedPerson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |v: &Option<Vec<u8>>| v.as_ref().map(Vec::len);
        f.debug_struct("CollectedPerson")
            .field("idcard_no", &mask(&self.idcard_no))
            .field("name", &self.name)
            .field("face_photo_bytes", &self.face_photo.len())
            .field("id_card_photo_bytes", &len(&self.id_card_photo))
            .field("iris_bytes", &(len(&self.iris_left), len(&self.iris_right)))
            .finish_non_exhaustive()
    }
}

/// `330106********123X`: the region and the last four characters, as the platform lists them.
fn mask(idcard: &str) -> String {
    let chars: Vec<char> = idcard.chars().collect();
    if chars.len() < 10 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 10))
}

impl CollectedPerson {
    /// The three required members; the rest empty.
    pub fn new(idcard_no: impl Into<String>, name: impl Into<String>, face_photo: Vec<u8>) -> Self {
        CollectedPerson {
            idcard_no: idcard_no.into(),
            name: name.into(),
            gender: None,
            nation: None,
            birth_date: None,
            address: None,
            issuing_authority: None,
            valid_from: None,
            valid_to: None,
            face_photo,
            id_card_photo: None,
            id_card_front: None,
            id_card_back: None,
            iris_left: None,
            iris_right: None,
            phone: None,
            face_match_score: None,
        }
    }

    /// What the platform would refuse for good, checked before sending: the ID number's
    /// shape (the check character and birth date are the platform's), an empty name, a face
    /// photo that is not a JPEG/PNG within `max_photo_bytes`, ID card images that are not
    /// JPEG/PNG, empty iris images. The face rules (one face, its size) need a detector and
    /// are the platform's (`400_02` naming `facePhoto`).
    pub fn validate(&self, max_photo_bytes: usize) -> Result<(), CollectError> {
        let id = self.idcard_no.as_bytes();
        let shaped = id.len() == 18
            && id[..17].iter().all(u8::is_ascii_digit)
            && (id[17].is_ascii_digit() || id[17] == b'X' || id[17] == b'x');
        if !shaped {
            return Err(CollectError::IdCardNo);
        }
        if self.name.trim().is_empty() {
            return Err(CollectError::NoName);
        }
        let image =
            |member: &'static str| move |error: PhotoError| CollectError::Image { member, error };
        photo::check(&self.face_photo, max_photo_bytes).map_err(image("facePhoto"))?;
        for (member, bytes) in [
            ("idCardPhoto", &self.id_card_photo),
            ("idCardFront", &self.id_card_front),
            ("idCardBack", &self.id_card_back),
        ] {
            if let Some(b) = bytes {
                photo::check(b, usize::MAX).map_err(image(member))?;
            }
        }
        for (member, bytes) in [
            ("irisLeft", &self.iris_left),
            ("irisRight", &self.iris_right),
        ] {
            if bytes.as_ref().is_some_and(Vec::is_empty) {
                return Err(CollectError::Image {
                    member,
                    error: PhotoError::Empty,
                });
            }
        }
        Ok(())
    }

    /// The X_COLLECT_PERSON param: the fields, every image as base64.
    pub fn to_param(&self) -> CollectPersonParam {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let opt = |b: &Option<Vec<u8>>| b.as_deref().map(b64);
        CollectPersonParam {
            idcard_no: self.idcard_no.clone(),
            name: self.name.clone(),
            gender: self.gender.clone(),
            nation: self.nation.clone(),
            birth_date: self.birth_date.clone(),
            address: self.address.clone(),
            issuing_authority: self.issuing_authority.clone(),
            valid_from: self.valid_from.clone(),
            valid_to: self.valid_to.clone(),
            id_card_photo: opt(&self.id_card_photo),
            id_card_front: opt(&self.id_card_front),
            id_card_back: opt(&self.id_card_back),
            face_photo: b64(&self.face_photo),
            iris_left: opt(&self.iris_left),
            iris_right: opt(&self.iris_right),
            phone: self.phone.clone(),
            face_match_score: self.face_match_score,
        }
    }
}

/// A collection device's connection to the platform: HTTP only (X_COLLECT_PERSON is an HTTP
/// interface), authenticating itself with C_AUTH on first use and again when its token
/// expires. A collector that should also heartbeat and show as online runs a
/// [`crate::Device`] with the same configuration beside it; the two hold separate tokens,
/// which the protocol allows (a new C_AUTH revokes no earlier token).
#[derive(Debug)]
pub struct Collector {
    http: DeviceHttp,
    max_photo_bytes: usize,
}

impl Collector {
    /// A collector for `config` (its sn, credentials, `http_url`, CA, RSA key and tuning;
    /// the TCP address and the data directory are not used).
    pub fn new(config: DeviceConfig) -> Result<Collector, SdkError> {
        let decrypter = crate::http::decrypter_of(&config)?;
        let max_photo_bytes = config.tuning.max_photo_bytes;
        let http = DeviceHttp::new(Arc::new(config), Arc::new(AtomicI64::new(0)), decrypter)?;
        Ok(Collector {
            http,
            max_photo_bytes,
        })
    }

    /// Checks and uploads one enrolment; the platform's person id for the worker (the same
    /// id again for an ID number already enrolled).
    pub async fn upload(
        &self,
        person: &CollectedPerson,
    ) -> Result<CollectPersonResponse, SdkError> {
        person.validate(self.max_photo_bytes)?;
        let param = params::to_json(&person.to_param());
        let text = self
            .http
            .call(ApiCode::CollectPerson, None, Some(&param))
            .await?;
        text.as_deref()
            .and_then(|t| params::parse::<CollectPersonResponse>(t).ok())
            .filter(|r| !r.person_id.is_empty())
            .ok_or_else(|| SdkError::BadResponse {
                api: ApiCode::CollectPerson,
                detail: "no personId".into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photo::sample::{FACE_JPEG, SMALL_JPEG, iris_bmp};

    fn person() -> CollectedPerson {
        let mut p = CollectedPerson::new("33010619850315123X", "陈六", FACE_JPEG.to_vec());
        p.id_card_photo = Some(SMALL_JPEG.to_vec());
        p.iris_left = Some(iris_bmp(0));
        p
    }

    #[test]
    fn a_capture_is_checked_before_it_is_sent() {
        assert_eq!(person().validate(409_600), Ok(()));
        let mut p = person();
        p.idcard_no = "3301061985031512".into();
        assert_eq!(p.validate(409_600), Err(CollectError::IdCardNo));
        let mut p = person();
        p.name = " ".into();
        assert_eq!(p.validate(409_600), Err(CollectError::NoName));
        let mut p = person();
        p.id_card_photo = Some(b"GIF89a".to_vec());
        assert!(matches!(
            p.validate(409_600),
            Err(CollectError::Image {
                member: "idCardPhoto",
                ..
            })
        ));
        assert!(matches!(
            person().validate(1000),
            Err(CollectError::Image {
                member: "facePhoto",
                error: PhotoError::TooLarge { .. }
            })
        ));
    }

    #[test]
    fn the_param_carries_every_image_as_base64_and_debug_masks_the_id() {
        let p = person().to_param();
        let images: Vec<&str> = p.images().iter().map(|(name, _)| *name).collect();
        assert_eq!(images, ["idCardPhoto", "facePhoto", "irisLeft"]);
        let decoded = p.decode_images().unwrap();
        assert_eq!(decoded[1].1, FACE_JPEG);
        let shown = format!("{:?}", person());
        assert!(shown.contains("330106********123X"), "{shown}");
        assert!(!shown.contains("19850315"), "{shown}");
    }
}
