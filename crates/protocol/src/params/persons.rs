//! The person-list task interfaces: T_SEND_PERSON and T_UPDATE_DEVICE_PERSON (paged roster
//! download, ZJ-PERSON-02, ZJ-PERSON-04), T_DEL_DEVICE_PERSON (ids to delete, ZJ-PERSON-05)
//! and T_POST_DEVICE_PERSON (the device uploads its list for reconciliation, with its task
//! param `excludeFields`; ZJ-RECON-01, ZJ-RECON-03).

use serde::{Deserialize, Serialize};

use super::lenient;

/// Page size when the device asks for none.
pub const DEFAULT_PAGE_SIZE: u32 = 10;
/// Largest page size the platform serves; larger requests are clamped.
pub const MAX_PAGE_SIZE: u32 = 100;

/// T_SEND_PERSON / T_UPDATE_DEVICE_PERSON param: `{currentPage, size?, totalPage?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageParam {
    /// The page asked for, from 1 (`0` → `400_02`).
    #[serde(deserialize_with = "lenient::page_number")]
    pub current_page: u32,
    /// Persons per page; see [`PageParam::effective_size`].
    #[serde(
        default,
        deserialize_with = "lenient::opt_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub size: Option<u32>,
    /// The page count the device believes in (the standard lists it; the platform ignores it).
    #[serde(
        default,
        deserialize_with = "lenient::opt_u32",
        skip_serializing_if = "Option::is_none"
    )]
    pub total_page: Option<u32>,
}

impl PageParam {
    /// The page size served and echoed: `size`, default [`DEFAULT_PAGE_SIZE`], clamped to
    /// `1..=MAX_PAGE_SIZE` (ZJ-PERSON-03).
    pub fn effective_size(&self) -> u32 {
        self.size
            .unwrap_or(DEFAULT_PAGE_SIZE)
            .clamp(1, MAX_PAGE_SIZE)
    }

    /// Index of the first person of the page in the task's list.
    pub fn offset(&self) -> u64 {
        u64::from(self.current_page.saturating_sub(1)) * u64::from(self.effective_size())
    }
}

/// T_SEND_PERSON / T_UPDATE_DEVICE_PERSON response: one page of persons.
/// A page past the end has empty `data` (ZJ-PERSON-03); an unbound device's roster has
/// `totalPage` 0 (ZJ-TASK-09).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonPage {
    /// The persons of this page.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub data: Vec<PersonEntry>,
    /// The page served (echoed).
    #[serde(deserialize_with = "lenient::u32")]
    pub current_page: u32,
    /// How many pages the task's list has at this size.
    #[serde(deserialize_with = "lenient::u32")]
    pub total_page: u32,
    /// The page size used (echoed, after clamping). A platform that does not echo it (the
    /// standard's example does not) reads as 0.
    #[serde(default, deserialize_with = "lenient::u32")]
    pub size: u32,
}

impl PersonPage {
    /// Whether no page follows this one.
    pub fn is_last(&self) -> bool {
        self.current_page >= self.total_page
    }
}

/// One person of a [`PersonPage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonEntry {
    /// The person id.
    #[serde(deserialize_with = "lenient::string")]
    pub person_id: String,
    /// The person's name.
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    /// Signed, expiring URLs of the person's face photos (possibly none).
    #[serde(default, deserialize_with = "lenient::strings_or_empty")]
    pub img_urls: Vec<String>,
}

/// T_DEL_DEVICE_PERSON response: `{personIds:[...]}`, the persons to delete.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelPersonResponse {
    /// Person ids as decimal strings.
    #[serde(default, deserialize_with = "lenient::strings_or_empty")]
    pub person_ids: Vec<String>,
}

/// T_POST_DEVICE_PERSON param: one page of the device's own person list.
/// Pages are keyed by (taskid, currentPage); a resent page replaces the old one (ZJ-RECON-02).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostDevicePersonParam {
    /// This page's number, from 1.
    #[serde(deserialize_with = "lenient::page_number")]
    pub current_page: u32,
    /// How many pages the upload has.
    #[serde(deserialize_with = "lenient::u32")]
    pub total_page: u32,
    /// The persons of this page.
    pub data: Vec<DevicePerson>,
}

/// One person as a device holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DevicePerson {
    /// The person id.
    #[serde(deserialize_with = "lenient::string")]
    pub person_id: String,
    /// The name the device holds.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<String>,
    /// The face photo, base64 (left out of the signature; see [`super::decode_base64`]).
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub img: Option<String>,
    /// Whether the device holds an accepted face (`1`/`0`, `true`/`false`).
    #[serde(
        default,
        deserialize_with = "lenient::opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub has_img: Option<bool>,
    /// Phone number.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub phone: Option<String>,
    /// ID card number.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub idcard_no: Option<String>,
}

/// The task param of T_POST_DEVICE_PERSON: `{excludeFields:"img,phone"}` — members the
/// device should leave out of its upload (ZJ-RECON-03).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostDevicePersonTaskParam {
    /// Comma-separated wire names of [`DevicePerson`] members.
    #[serde(
        default,
        deserialize_with = "lenient::opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub exclude_fields: Option<String>,
}

impl PostDevicePersonTaskParam {
    /// Whether `field` (a wire name such as `img`) is excluded. Names are separated by commas
    /// (ASCII or full-width `，`) and trimmed; the comparison is exact.
    pub fn excludes(&self, field: &str) -> bool {
        self.exclude_fields.as_deref().is_some_and(|list| {
            list.split([',', '，'])
                .any(|name| name.trim() == field && !field.is_empty())
        })
    }
}
