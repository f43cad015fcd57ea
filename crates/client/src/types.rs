//! The request and response bodies, as on the wire: camelCase members, ids as decimal
//! strings, times as epoch milliseconds. Enumerations the server may extend (device kinds,
//! directions, task states, roles) are plain strings. Responses ignore members this client
//! does not know, so a newer server stays readable.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /vendors`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewVendor {
    pub name: String,
    /// PEM of the vendor's RSA public key (JWE-encrypted requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rsa_public_key: Option<String>,
}

/// A vendor just created: the only time its secret is shown.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorCreated {
    pub id: String,
    pub name: String,
    pub access_id: String,
    pub access_key: String,
    pub access_secret: String,
    pub has_rsa_key: bool,
    pub created_at: i64,
}

/// A vendor as listed (no secrets).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vendor {
    pub id: String,
    pub name: String,
    pub access_id: String,
    pub has_rsa_key: bool,
    pub created_at: i64,
}

/// A vendor's new credentials (`POST /vendors/{id}/rotate-credentials`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorCredentials {
    pub access_id: String,
    pub access_key: String,
    pub access_secret: String,
}

/// `POST /projects`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewProject {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `gcj02` (the default) or `wgs84`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coordinate_system: Option<String>,
    /// A circle `{longitude, latitude, radiusMeters}` or a polygon (a list of points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fence: Option<Value>,
}

/// A project.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub id: String,
    pub name: String,
    pub code: Option<String>,
    pub address: Option<String>,
    pub coordinate_system: String,
    pub fence: Option<Value>,
    pub created_at: i64,
}

/// Workers who joined a project (`POST /projects/{id}/workers`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub project_id: String,
    pub person_ids: Vec<String>,
}

/// `POST /devices`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewDevice {
    pub sn: String,
    pub vendor_id: String,
    /// Bound to this project at once (which makes its T_SEND_PERSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// `face`, `iris`, `mobile`, `qr`, `gate` or `collector`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `PATCH /devices/{sn}`: `None` leaves a member as it is; `Some(None)` clears it
/// (`project_id: Some(None)` unbinds).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DevicePatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A device and what the platform knows of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub sn: String,
    pub vendor_id: String,
    pub project_id: Option<String>,
    pub kind: String,
    pub direction: String,
    pub name: Option<String>,
    pub enabled: bool,
    pub online: bool,
    pub last_heartbeat_at: Option<i64>,
    pub firmware_version: Option<String>,
    pub ip: Option<String>,
    pub person_count: Option<i64>,
    pub face_count: Option<i64>,
    pub expected_person_count: i64,
    pub created_at: i64,
    /// The node holding its TCP connection (`GET /devices/{sn}` of an online device).
    #[serde(default)]
    pub node: Option<String>,
}

/// `GET /devices/{sn}/presence`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub sn: String,
    pub online: bool,
    pub last_heartbeat_at: Option<i64>,
    /// Newest first.
    pub history: Vec<PresenceEvent>,
}

/// A device going online or offline.
#[derive(Debug, Clone, Deserialize)]
pub struct PresenceEvent {
    pub online: bool,
    pub at: i64,
}

/// `POST /devices/{sn}/tasks`.
#[derive(Debug, Clone, Serialize)]
pub struct NewTask {
    pub apicode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<Value>,
}

/// A task and its outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub taskid: String,
    pub sn: String,
    pub apicode: String,
    pub param: Value,
    /// `pending`, `delivered`, `done`, `failed`, `unsupported` or `cancelled`.
    pub status: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub finished_at: Option<i64>,
    #[serde(default)]
    pub failed_persons: Vec<TaskFailure>,
    #[serde(default)]
    pub failed_faces: Vec<TaskFailure>,
}

/// A person (or face) a device could not take, with the device's error code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    pub person_id: String,
    pub err_code: String,
}

/// `POST /workers`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewWorker {
    pub idcard_no: String,
    pub name: String,
    /// Base64 of a JPEG, PNG or BMP.
    pub face_photo: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trade: Option<String>,
}

/// A worker (the ID-card number masked).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Worker {
    pub person_id: String,
    pub idcard_no: String,
    pub name: String,
    pub gender: Option<String>,
    pub nation: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub face_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which records `GET /attendance` lists; all members optional.
#[derive(Debug, Clone, Default)]
pub struct AttendanceQuery {
    pub project_id: Option<String>,
    pub person_id: Option<String>,
    pub sn: Option<String>,
    /// recordTime at or after (epoch ms).
    pub from: Option<i64>,
    /// recordTime before (epoch ms).
    pub to: Option<i64>,
    /// Page size (the server's default 100, at most 1000).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of attendance records, newest first.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttendancePage {
    pub records: Vec<AttendanceRecord>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One attendance record.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttendanceRecord {
    pub record_id: String,
    /// As the device sent it.
    pub person_id: String,
    pub sn: String,
    pub project_id: Option<String>,
    /// 1 face | 2 IC card | 4 health code | 8 ID card | 16 QR code | 32 iris | 64 mobile.
    #[serde(rename = "type")]
    pub kind: u32,
    pub bit_type: Option<u32>,
    pub record_time: i64,
    pub received_at: i64,
    pub direction: String,
    pub photo_url: Option<String>,
    pub flags: Vec<String>,
    pub temperature: Option<f64>,
    pub latency_ms: i64,
    pub coordinate: Option<Value>,
    pub qr_code_info: Option<Value>,
    pub iris_info: Option<Value>,
}

/// `POST /users`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub password: String,
    /// `administrator`, `project_manager` or `auditor`.
    pub role: String,
    pub project_ids: Vec<String>,
}

/// A console user.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub disabled: bool,
    pub project_ids: Vec<String>,
    pub created_at: i64,
}

/// A personal API token; `token` (`rcp_…`) only in the answer that created it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonalToken {
    pub id: String,
    pub name: String,
    pub token: Option<String>,
    pub created_at: i64,
}

#[derive(Deserialize)]
pub(crate) struct VendorList {
    pub vendors: Vec<Vendor>,
}

#[derive(Deserialize)]
pub(crate) struct TaskList {
    pub tasks: Vec<Task>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LoginAnswer {
    pub csrf_token: String,
}
