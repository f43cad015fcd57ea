//! The task interfaces T_GET_TASKS (fetch tasks by id, ZJ-PERSON-01) and T_UPDATE_TASKS_STATUS
//! (report their outcomes, ZJ-STATUS-01).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::lenient;
use crate::apicode::ApiCode;

/// T_GET_TASKS param: `{taskids:[...]}` (ids as strings; numbers accepted exactly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTasksParam {
    /// The task ids to fetch, as the heartbeat answered them.
    #[serde(deserialize_with = "lenient::strings")]
    pub taskids: Vec<String>,
}

/// T_GET_TASKS response: `{tasks:[{taskid, apicode, param}]}` — only this device's
/// unfinished tasks; unknown, finished and cancelled ids are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetTasksResponse {
    /// The tasks found, in the order asked.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub tasks: Vec<TaskItem>,
}

/// One task of [`GetTasksResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskItem {
    /// The task id (19-digit decimal string).
    #[serde(deserialize_with = "lenient::string")]
    pub taskid: String,
    /// The task's apicode, e.g. `T_UPDATE_DEVICE_PERSON`; see [`TaskItem::api_code`].
    #[serde(deserialize_with = "lenient::string")]
    pub apicode: String,
    /// The task param as JSON **text** (may be empty). Read leniently: absent or `null` is
    /// `""`, and an object sent in place of its text is kept as compact JSON text.
    #[serde(default, deserialize_with = "lenient::json_text")]
    pub param: String,
}

impl TaskItem {
    /// The apicode, when it names an interface.
    pub fn api_code(&self) -> Option<ApiCode> {
        self.apicode.parse().ok()
    }
}

/// The param of a person task that names its persons, as the platform stores it and answers it:
/// `{"personIds":["1","2"]}` — T_DEL_DEVICE_PERSON's persons to delete (ZJ-PERSON-05), and the
/// persons an operator names for T_UPDATE_DEVICE_PERSON (whose persons are merged into one
/// task, ZJ-TASK-05).
///
/// Written strictly by [`PersonIdsParam::to_text`] (ids as decimal strings, compact); read
/// leniently with [`super::parse`]: `personIds` is required, and numbers are taken as their
/// text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonIdsParam {
    /// Person ids as decimal strings.
    #[serde(deserialize_with = "lenient::strings")]
    pub person_ids: Vec<String>,
}

impl PersonIdsParam {
    /// The param naming `ids`, in the order given.
    pub fn new<I: fmt::Display>(ids: impl IntoIterator<Item = I>) -> Self {
        PersonIdsParam {
            person_ids: ids.into_iter().map(|id| id.to_string()).collect(),
        }
    }

    /// The param's text: `{"personIds":["1","2"]}` (ZJ-PERSON-05).
    pub fn to_text(&self) -> String {
        super::to_json(self)
    }
}

/// T_UPDATE_TASKS_STATUS param:
/// `{task:[{taskid, status, failedPersons, failedFaces}], personCount, faceCount}`.
/// The counts are required, as in the standard (ZJ-STATUS-02).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTasksStatusParam {
    /// One outcome per task reported.
    pub task: Vec<TaskStatus>,
    /// How many persons the device holds now (授权人员总数).
    #[serde(deserialize_with = "lenient::u64")]
    pub person_count: u64,
    /// How many faces the device holds now (授权人脸总数).
    #[serde(deserialize_with = "lenient::u64")]
    pub face_count: u64,
}

/// The outcome of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// The task id.
    #[serde(deserialize_with = "lenient::string")]
    pub taskid: String,
    /// Done, failed or unsupported.
    pub status: TaskOutcome,
    /// Persons the device could not take (person tasks); absent or `null` is empty.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub failed_persons: Vec<FailedItem>,
    /// Faces the device could not register; absent or `null` is empty.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub failed_faces: Vec<FailedItem>,
}

/// A person or face the device failed on, with the device's own error code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedItem {
    /// The person id.
    #[serde(deserialize_with = "lenient::string")]
    pub person_id: String,
    /// The device's error code, e.g. `"404_1"` (a number is accepted as its text).
    #[serde(deserialize_with = "lenient::string")]
    pub err_code: String,
}

/// A task's status as the device reports it: wire integer 1, 2 or 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskOutcome {
    /// 1: done (完成).
    Done,
    /// 2: failed (失败).
    Failed,
    /// 3: not supported by this device (不支持).
    Unsupported,
}

impl TaskOutcome {
    /// The wire integer.
    pub const fn code(self) -> u8 {
        match self {
            TaskOutcome::Done => 1,
            TaskOutcome::Failed => 2,
            TaskOutcome::Unsupported => 3,
        }
    }

    /// The outcome of a wire integer.
    pub const fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(TaskOutcome::Done),
            2 => Some(TaskOutcome::Failed),
            3 => Some(TaskOutcome::Unsupported),
            _ => None,
        }
    }
}

impl fmt::Display for TaskOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskOutcome::Done => "done",
            TaskOutcome::Failed => "failed",
            TaskOutcome::Unsupported => "unsupported",
        })
    }
}

impl Serialize for TaskOutcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for TaskOutcome {
    /// `1`/`2`/`3`, or their text; anything else is an error.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::integer_with(d, |n| {
            u64::try_from(n)
                .ok()
                .and_then(TaskOutcome::from_code)
                .ok_or_else(|| format!("取值错误: 需要 1、2 或 3，收到 {n}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_ids_param_text() {
        assert_eq!(
            PersonIdsParam::new([1_i64, 2]).to_text(),
            r#"{"personIds":["1","2"]}"#
        );
        assert_eq!(
            PersonIdsParam::new([7_i64]).to_text(),
            format!("{{\"personIds\":[\"{}\"]}}", 7)
        );
        let read: PersonIdsParam = super::super::parse(r#"{"personIds":["3",1]}"#).unwrap();
        assert_eq!(read.person_ids, ["3", "1"]);
        let err = super::super::parse::<PersonIdsParam>(r#"{"ids":["1"]}"#).unwrap_err();
        assert!(err.detail.unwrap().contains("personIds"));
    }
}
