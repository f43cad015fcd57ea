//! Interface identifiers (`apicode`) and what each one requires of a request.
//!
//! The per-apicode rules — which transport carries it (ZJ-CONN-04), whether it needs a token,
//! a timeStamp (ZJ-TIME-04), a param or a taskid (ZJ-ERR-02), and which image members its
//! signature leaves out (ZJ-SIGN-08) — are answered here, so the platform and the SDK ask
//! rather than re-list them.

use std::fmt;
use std::str::FromStr;

/// Every interface of the protocol (ZJ-TRANS-01), X_COLLECT_PERSON included (ZJ-COLLECT-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiCode {
    /// `C_AUTH`: exchange vendor credentials for a token.
    Auth,
    /// `C_HEARTBEAT`: keep-alive; answers pending task ids.
    Heartbeat,
    /// `C_SIGN_IN`: upload one attendance record.
    SignIn,
    /// `T_GET_TASKS`: fetch the params of tasks by id.
    GetTasks,
    /// `T_UPDATE_TASKS_STATUS`: report task outcomes.
    UpdateTasksStatus,
    /// `T_SEND_PERSON`: page through the whole roster; the device replaces its list.
    SendPerson,
    /// `T_UPDATE_DEVICE_PERSON`: page through added/changed persons; the device upserts.
    UpdateDevicePerson,
    /// `T_DEL_DEVICE_PERSON`: persons to delete.
    DelDevicePerson,
    /// `T_CLEAR_DEVICE_PERSON`: delete every person.
    ClearDevicePerson,
    /// `T_UPDATE_DEVICE_VERSION`: firmware update.
    UpdateDeviceVersion,
    /// `T_POST_DEVICE_PERSON`: the device uploads its roster for reconciliation.
    PostDevicePerson,
    /// `X_COLLECT_PERSON` (ext): a collection device uploads an enrolment.
    CollectPerson,
}

/// Which members the signature of an apicode's param leaves out (ZJ-SIGN-08).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImgCut {
    /// The param is signed as sent.
    None,
    /// These members of the top-level object are cut.
    TopLevel(&'static [&'static str]),
    /// This member of every object in the top-level `data` array is cut.
    DataRows(&'static str),
}

/// The image members of `X_COLLECT_PERSON`, all left out of its signature (ZJ-COLLECT-03).
pub const COLLECT_IMAGE_MEMBERS: &[&str] = &[
    "idCardPhoto",
    "idCardFront",
    "idCardBack",
    "facePhoto",
    "irisLeft",
    "irisRight",
];

impl ApiCode {
    pub const ALL: [ApiCode; 12] = [
        ApiCode::Auth,
        ApiCode::Heartbeat,
        ApiCode::SignIn,
        ApiCode::GetTasks,
        ApiCode::UpdateTasksStatus,
        ApiCode::SendPerson,
        ApiCode::UpdateDevicePerson,
        ApiCode::DelDevicePerson,
        ApiCode::ClearDevicePerson,
        ApiCode::UpdateDeviceVersion,
        ApiCode::PostDevicePerson,
        ApiCode::CollectPerson,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ApiCode::Auth => "C_AUTH",
            ApiCode::Heartbeat => "C_HEARTBEAT",
            ApiCode::SignIn => "C_SIGN_IN",
            ApiCode::GetTasks => "T_GET_TASKS",
            ApiCode::UpdateTasksStatus => "T_UPDATE_TASKS_STATUS",
            ApiCode::SendPerson => "T_SEND_PERSON",
            ApiCode::UpdateDevicePerson => "T_UPDATE_DEVICE_PERSON",
            ApiCode::DelDevicePerson => "T_DEL_DEVICE_PERSON",
            ApiCode::ClearDevicePerson => "T_CLEAR_DEVICE_PERSON",
            ApiCode::UpdateDeviceVersion => "T_UPDATE_DEVICE_VERSION",
            ApiCode::PostDevicePerson => "T_POST_DEVICE_PERSON",
            ApiCode::CollectPerson => "X_COLLECT_PERSON",
        }
    }

    /// `C_` apicodes: the only requests a device may send over TCP (ZJ-CONN-04).
    pub const fn is_connection(self) -> bool {
        matches!(self, ApiCode::Auth | ApiCode::Heartbeat | ApiCode::SignIn)
    }

    /// Apicodes a task can have: what the platform asks a device to do (ZJ-TASK-01).
    pub const fn is_task(self) -> bool {
        matches!(
            self,
            ApiCode::SendPerson
                | ApiCode::UpdateDevicePerson
                | ApiCode::DelDevicePerson
                | ApiCode::ClearDevicePerson
                | ApiCode::UpdateDeviceVersion
                | ApiCode::PostDevicePerson
        )
    }

    /// Tasks that change the device's person list; a device runs them one at a time in
    /// taskid order (ZJ-TASK-04), and merging (ZJ-TASK-05) and superseding (ZJ-TASK-06) apply
    /// among them (ZJ-TASK-01).
    pub const fn is_person_task(self) -> bool {
        matches!(
            self,
            ApiCode::SendPerson
                | ApiCode::UpdateDevicePerson
                | ApiCode::DelDevicePerson
                | ApiCode::ClearDevicePerson
        )
    }

    /// Every apicode but C_AUTH authenticates with a token (402_03).
    pub const fn requires_token(self) -> bool {
        !matches!(self, ApiCode::Auth)
    }

    /// timeStamp is required on C_ apicodes (402_05) and on X_COLLECT_PERSON, whose
    /// signature covers it (ZJ-COLLECT-02); optional on T_ apicodes, validated when present
    /// (ZJ-TIME-04).
    pub const fn requires_timestamp(self) -> bool {
        self.is_connection() || matches!(self, ApiCode::CollectPerson)
    }

    /// Whether the signature covers the timeStamp (ZJ-SIGN-05).
    pub const fn signs_timestamp(self) -> bool {
        self.requires_timestamp()
    }

    /// param is required (402_06) on these interfaces (ZJ-ERR-02).
    pub const fn requires_param(self) -> bool {
        matches!(
            self,
            ApiCode::Heartbeat
                | ApiCode::SignIn
                | ApiCode::GetTasks
                | ApiCode::UpdateTasksStatus
                | ApiCode::SendPerson
                | ApiCode::UpdateDevicePerson
                | ApiCode::PostDevicePerson
                | ApiCode::CollectPerson
        )
    }

    /// taskid is required (402_08) on the task interfaces.
    pub const fn requires_taskid(self) -> bool {
        self.is_task()
    }

    /// What the request signature leaves out of the param (ZJ-SIGN-08).
    pub const fn img_cut(self) -> ImgCut {
        match self {
            ApiCode::SignIn => ImgCut::TopLevel(&["img"]),
            ApiCode::PostDevicePerson => ImgCut::DataRows("img"),
            ApiCode::CollectPerson => ImgCut::TopLevel(COLLECT_IMAGE_MEMBERS),
            _ => ImgCut::None,
        }
    }
}

impl fmt::Display for ApiCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An apicode text that names no interface.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown apicode {0:?}")]
pub struct UnknownApiCode(pub String);

impl FromStr for ApiCode {
    type Err = UnknownApiCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiCode::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownApiCode(s.to_owned()))
    }
}
