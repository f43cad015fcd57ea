//! X_COLLECT_PERSON (ZJ-COLLECT-01, ext): a collection device (采集设备) uploads one enrolment — the ID
//! card's fields and images, a face photo, optional iris images.
//!
//! Only the types live here. The enrolment rules (RC-DEV-04 to RC-DEV-15: ID card number check
//! digit, face and iris image rules, expiry) are checked by the platform after parsing
//! (ZJ-COLLECT-05).

use serde::{Deserialize, Serialize};

use super::lenient;
use crate::apicode::COLLECT_IMAGE_MEMBERS;
use crate::code::ProtocolError;

/// X_COLLECT_PERSON param (ZJ-COLLECT-03). `idcardNo`, `name` and `facePhoto` are required;
/// the rest optional. Every image member is base64 and left out of the signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectPersonParam {
    /// ID card number (18 characters, GB 11643-1999).
    #[serde(deserialize_with = "lenient::string")]
    pub idcard_no: String,
    /// Name as on the card.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Gender as on the card (男/女).
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub gender: Option<String>,
    /// Ethnic group (民族).
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub nation: Option<String>,
    /// Birth date as on the card.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub birth_date: Option<String>,
    /// Address as on the card.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub address: Option<String>,
    /// Issuing authority (签发机关).
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub issuing_authority: Option<String>,
    /// Start of validity.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_from: Option<String>,
    /// End of validity, or `长期` (permanent).
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_to: Option<String>,
    /// The chip photo, base64.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_card_photo: Option<String>,
    /// The card's front, base64.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_card_front: Option<String>,
    /// The card's back, base64.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_card_back: Option<String>,
    /// The face photo, base64 (JPEG/PNG, under 400 KB).
    #[serde(deserialize_with = "lenient::string")]
    pub face_photo: String,
    /// Left iris image, base64 (640×480, 8-bit grey).
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub iris_left: Option<String>,
    /// Right iris image, base64.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub iris_right: Option<String>,
    /// Phone number.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub phone: Option<String>,
    /// The device's face-vs-ID-photo comparison score, when it compared.
    #[serde(
        default,
        deserialize_with = "lenient::opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    pub face_match_score: Option<f64>,
}

impl CollectPersonParam {
    /// The image members present and non-empty, as (wire name, base64 text), in the order
    /// of [`COLLECT_IMAGE_MEMBERS`].
    pub fn images(&self) -> Vec<(&'static str, &str)> {
        let values = [
            self.id_card_photo.as_deref(),
            self.id_card_front.as_deref(),
            self.id_card_back.as_deref(),
            Some(self.face_photo.as_str()),
            self.iris_left.as_deref(),
            self.iris_right.as_deref(),
        ];
        COLLECT_IMAGE_MEMBERS
            .iter()
            .zip(values)
            .filter_map(|(name, v)| v.filter(|s| !s.is_empty()).map(|s| (*name, s)))
            .collect()
    }

    /// Decodes every present image; the first that is not base64 → `400_02` naming it
    /// (ZJ-COLLECT-04).
    pub fn decode_images(&self) -> Result<Vec<(&'static str, Vec<u8>)>, ProtocolError> {
        self.images()
            .into_iter()
            .map(|(name, text)| super::decode_base64(name, text).map(|bytes| (name, bytes)))
            .collect()
    }
}

/// X_COLLECT_PERSON response: `{personId}`, the enrolled person's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectPersonResponse {
    /// The person id (decimal string).
    #[serde(deserialize_with = "lenient::string")]
    pub person_id: String,
}
