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

// --- uplink (docs/UPLINK.md) -------------------------------------------------------------

/// A project's settings for the national real-name platform. The secret is opened by the
/// store (sealed at rest) and never leaves the platform again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkConfig {
    pub project_id: i64,
    /// The national API's URL (ends in `/open.api`).
    pub endpoint: String,
    /// The project's code on the national platform (`projectCode`).
    pub appid: String,
    pub appsecret: Secret,
    pub corp_code: String,
    pub corp_name: String,
    pub enabled: bool,
    pub updated_at: i64,
    pub last_success_at: Option<i64>,
    /// The last request-level failure (HTTP, `code != 0` without a field), for the console.
    pub last_error: Option<String>,
    /// Request-level failures in a row (the project's backoff).
    pub failures: u32,
    /// Nothing is sent for the project before this (backoff).
    pub retry_at: i64,
}

/// What an outbox item reports, in the order the national platform needs them
/// (`Team.Add` → `ProjectWorker.Add` → `WorkerEntryExit.Add` → `WorkerAttendance.Add`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UplinkKind {
    Team,
    Worker,
    /// A worker already sent (`ProjectWorker.Add`) was edited: `ProjectWorker.Update`
    /// with the worker's data as it is when sent.
    #[serde(rename = "worker_update")]
    WorkerUpdate,
    Entry,
    Exit,
    Attendance,
}

impl UplinkKind {
    pub const ALL: &[Self] = &[
        Self::Team,
        Self::Worker,
        Self::WorkerUpdate,
        Self::Entry,
        Self::Exit,
        Self::Attendance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Team => "team",
            Self::Worker => "worker",
            Self::WorkerUpdate => "worker_update",
            Self::Entry => "entry",
            Self::Exit => "exit",
            Self::Attendance => "attendance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// Where an outbox item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UplinkState {
    /// Waiting to be sent (or to be retried; `message` says why it waits).
    Pending,
    /// In a request whose answer is not recorded yet: in flight, or in doubt after a crash
    /// or a timeout (resolved by querying the platform, not by sending again).
    Sending,
    /// Taken by the platform; its asynchronous result (`serial`) is awaited.
    Sent,
    Accepted,
    /// Refused by the national platform (or by the checks before sending); `message` says why.
    Refused,
}

impl UplinkState {
    pub const ALL: &[Self] = &[
        Self::Pending,
        Self::Sending,
        Self::Sent,
        Self::Accepted,
        Self::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Accepted => "accepted",
            Self::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

/// One row of the uplink outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UplinkItem {
    /// The queue order.
    pub id: i64,
    pub project_id: i64,
    pub kind: UplinkKind,
    /// The team id, person id or attendance record id.
    pub ref_id: i64,
    /// The worker concerned (none for a team).
    pub person_id: Option<String>,
    /// When it happened (the record's time, the day of joining or leaving).
    pub at: i64,
    pub state: UplinkState,
    pub attempts: u32,
    pub next_at: i64,
    /// Sent alone: the batch it was in was refused as a whole.
    pub solo: bool,
    /// The nonce of the request that carried it.
    pub request: Option<String>,
    /// The platform's `requestSerialCode`.
    pub serial: Option<String>,
    pub message: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub done_at: Option<i64>,
}

/// How an item ends or waits again ([`crate::store::UplinkStore::uplink_settle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UplinkOutcome {
    Accepted,
    Refused(String),
    /// Back to `sending` (sent items only): their fate is looked up by query, as after a
    /// crash — the platform no longer knows their async job.
    InDoubt,
    /// Back to pending: sent again from `next_at` (alone when `solo`), `message` says why.
    Retry {
        next_at: i64,
        solo: bool,
        message: Option<String>,
    },
}

/// A project's queue at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UplinkStats {
    /// Items not yet accepted or refused (pending, sending, sent).
    pub pending: i64,
    pub refused: i64,
    /// When the oldest of `pending` was queued.
    pub oldest_pending_at: Option<i64>,
    /// Attendance records of the day asked for (by record time).
    pub today_records: i64,
    /// Of those, accepted by the national platform.
    pub today_accepted: i64,
}

/// What the national platform needs of a worker beyond [`Worker`] (docs/UPLINK.md).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerNational {
    pub person_id: i64,
    /// The ID card's issuing authority (签发机关, `grantOrg`).
    pub grant_org: Option<String>,
    /// `YYYY-MM-DD`.
    pub id_valid_from: Option<String>,
    /// `YYYY-MM-DD`, or `长期` (no expiry).
    pub id_valid_to: Option<String>,
    /// A `politics_type` dictionary code.
    pub politics_type: Option<String>,
    /// A `work_type` dictionary code (3 digits).
    pub work_type: Option<String>,
    pub team_leader: bool,
    pub updated_at: i64,
}

/// A change to a worker's own fields (absent: unchanged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerPatch {
    pub name: Option<String>,
    pub nation: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub updated_at: i64,
}

/// One entry of a dictionary the operator can extend (`work_type`, `politics_type`,
/// `nation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DictionaryEntry {
    pub kind: String,
    pub code: String,
    pub name: String,
}

/// An integrator's webhook endpoint (docs/UPLINK.md, "Webhooks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: i64,
    pub url: String,
    /// The HMAC-SHA256 key of its signatures; sealed at rest.
    pub secret: Secret,
    /// Subscribed events (`attendance`, `worker`, `device`, `task`), or `["*"]`.
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
    /// Failed deliveries in a row (the endpoint's backoff).
    pub failures: u32,
    pub retry_at: i64,
}

/// One event for one endpoint: its delivery log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub event: String,
    /// What the event is about (a record id, a person id, `sn|online|at`, a task id).
    pub r#ref: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
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
