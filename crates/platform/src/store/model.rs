//! The rows the platform keeps, as the services see them. Times are epoch milliseconds, ids
//! are 64-bit integers (written as decimal strings on every API), booleans are real bools
//! here and integers in SQL (portable across backends).

use rollcall_protocol::ids::Secret;
use serde::{Deserialize, Serialize};

use rollcall_rules::geo::{CoordinateSystem, Fence};

/// A device vendor (厂商) with its current credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vendor {
    pub id: i64,
    pub name: String,
    pub access_id: String,
    pub access_key: Secret,
    pub access_secret: Secret,
    /// PEM; when set, success responses to this vendor's devices are JWE-encrypted.
    pub rsa_public_key: Option<String>,
    pub created_at: i64,
}

/// One credential pair ever issued to a vendor; `revoked_at` is set on rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_id: String,
    pub access_key: Secret,
    pub access_secret: Secret,
    pub vendor_id: i64,
    pub revoked_at: Option<i64>,
}

/// A construction project (site) with its optional electronic fence.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub code: Option<String>,
    pub address: Option<String>,
    pub coordinate_system: CoordinateSystem,
    pub fence: Option<Fence>,
    pub created_at: i64,
}

/// What a device is for. Serialised in lowercase on the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Face,
    Iris,
    Mobile,
    Qr,
    Gate,
    Collector,
}

/// Which way a gate counts (a rule of the daily report, stored with the device; its text form
/// is defined beside it, in `rollcall-rules`).
pub use rollcall_rules::reports::Direction;

macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// Every value, in declaration order.
            pub const ALL: &[Self] = &[$(Self::$v),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)* _ => None }
            }
        }
    };
}

text_enum!(DeviceKind { Face => "face", Iris => "iris", Mobile => "mobile", Qr => "qr", Gate => "gate", Collector => "collector" });

/// An attendance device, identified by its sn (unique across the platform).
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub sn: String,
    pub vendor_id: i64,
    /// `None`: unbound (auto-registered, or unbound by an administrator).
    pub project_id: Option<i64>,
    pub kind: DeviceKind,
    pub direction: Direction,
    pub name: Option<String>,
    pub enabled: bool,
    pub firmware_version: Option<String>,
    pub ip: Option<String>,
    pub last_heartbeat_at: Option<i64>,
    pub person_count: Option<i64>,
    pub face_count: Option<i64>,
    pub created_at: i64,
}

/// A change to a device; `None` leaves a field alone, `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DevicePatch {
    pub project_id: Option<Option<i64>>,
    pub kind: Option<DeviceKind>,
    pub direction: Option<Direction>,
    pub name: Option<Option<String>>,
    pub enabled: Option<bool>,
}

/// The heartbeat-derived state of a device, written behind in batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceUpdate {
    pub sn: String,
    pub last_heartbeat_at: i64,
    pub firmware_version: Option<String>,
    pub ip: Option<String>,
}

/// One online/offline transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceTransition {
    pub sn: String,
    pub online: bool,
    pub at: i64,
}

/// A worker (person). `idcard_no` is the full number: never log it, mask it in lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    pub person_id: i64,
    pub idcard_no: String,
    pub name: String,
    pub gender: Option<String>,
    pub nation: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// Key of the face photo in the file store.
    pub face_key: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a task is in its life (ZJ-TASK-02).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Pending,
    Delivered,
    Done,
    Failed,
    Unsupported,
    Cancelled,
}

text_enum!(TaskState { Pending => "pending", Delivered => "delivered", Done => "done", Failed => "failed", Unsupported => "unsupported", Cancelled => "cancelled" });

impl TaskState {
    /// Pending or delivered: the device still owes an outcome.
    pub fn is_open(self) -> bool {
        matches!(self, TaskState::Pending | TaskState::Delivered)
    }
}

/// A task for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub taskid: i64,
    pub sn: String,
    pub apicode: String,
    /// The task param as JSON text (what T_GET_TASKS and the pushed command carry).
    pub param: String,
    pub state: TaskState,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// A task to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub taskid: i64,
    pub sn: String,
    pub apicode: String,
    pub param: String,
    /// The frozen, sorted person list of T_SEND_PERSON / T_UPDATE_DEVICE_PERSON /
    /// T_DEL_DEVICE_PERSON.
    pub persons: Vec<i64>,
    /// Cancel the device's older open person tasks in the same transaction
    /// (decided by `services::tasks::supersedes`).
    pub supersede: bool,
    pub created_at: i64,
}

/// A device's report about one person of a task (failedPersons / failedFaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncFailure {
    pub person_id: String,
    pub err_code: String,
}

/// The per-person-per-device sync state after a task's status report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub sn: String,
    pub taskid: i64,
    /// Persons the task carried (accepted unless listed as failed).
    pub persons: Vec<i64>,
    pub failed_persons: Vec<SyncFailure>,
    pub failed_faces: Vec<SyncFailure>,
    pub at: i64,
}

/// Per-person sync state of one device (admin view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonSync {
    pub person_id: i64,
    pub person_ok: bool,
    pub person_err: Option<String>,
    pub face_ok: bool,
    pub face_err: Option<String>,
    pub updated_at: i64,
}

/// An attendance record to store. The idempotency key is (sn, person_id, record_time, type).
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttendance {
    pub record_id: i64,
    pub sn: String,
    pub person_id: String,
    pub r#type: u32,
    pub bit_type: Option<u32>,
    pub record_time: i64,
    pub received_at: i64,
    pub project_id: Option<i64>,
    pub direction: Direction,
    /// Key of the photo in the blob store.
    pub photo_key: Option<String>,
    pub flags: Vec<String>,
    pub temperature: Option<f64>,
    /// Extra members kept as JSON text: coordinate, qrCodeInfo, irisInfo.
    pub extra: Option<String>,
}

/// A stored attendance record.
pub type Attendance = NewAttendance;

/// The outcome of one insert in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    /// The stored record's id: the new one, or the first one stored under the same key.
    pub record_id: i64,
    pub duplicate: bool,
}

/// Filters of `GET /attendance`; the cursor is the last record id of the previous page
/// (records come newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttendanceQuery {
    pub project_id: Option<i64>,
    pub person_id: Option<String>,
    pub sn: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub before_record_id: Option<i64>,
    pub limit: u32,
}

/// One page of a T_POST_DEVICE_PERSON upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilePage {
    pub taskid: i64,
    pub page: u32,
    pub total_page: u32,
    /// The page's rows (images removed) as JSON text.
    pub data: String,
}

/// Which node holds a device's TCP connection (issue 15): taking a session over raises its
/// epoch, the fencing token of [`crate::store::DeviceStore::claim_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSession {
    pub sn: String,
    /// The holding node's instance name ([`crate::state::App::node`]).
    pub node: String,
    pub epoch: i64,
    pub claimed_at: i64,
}
