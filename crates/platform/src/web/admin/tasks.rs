//! `/api/v1/devices/{sn}/tasks`: tasks an administrator gives a device — full resync, clear,
//! reconcile, firmware, update or delete persons — the device's task history with the
//! failures it reported, and the result of a reconciliation.
//!
//! Tasks are made by `services::tasks::create` (merging, superseding and push live there);
//! a full resync uses `services::devices::send_roster`. Params are checked with the protocol
//! crate's types before a task is made, so a device never receives a param it cannot read.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use rollcall_protocol::ApiCode;
use rollcall_protocol::params::{self, FirmwareInfo, PostDevicePersonTaskParam};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::devices::device_or_404;
use super::error::ApiError;
use super::extract::{ApiJson, QueryParams, echo, id_value, path_id};
use crate::runtime::util::now_ms;
use crate::services;
use crate::state::{App, AppState};
use crate::store::{Device, SyncFailure, Task, TaskState};

/// Most persons in one update or delete task.
const MAX_TASK_PERSONS: usize = 10_000;
/// Members of a T_POST_DEVICE_PERSON upload a task may leave out.
const EXCLUDABLE: &[&str] = &["name", "img", "hasImg", "phone", "idcardNo"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices/{sn}/tasks", get(list).post(create))
        .route(
            "/devices/{sn}/tasks/{taskid}/reconciliation",
            get(reconciliation),
        )
        .route("/devices/{sn}/tasks/{taskid}/retry", post(retry))
}

/// Retries a finished task: the persons and faces it failed go to the device again as a
/// `T_UPDATE_DEVICE_PERSON`; a task that failed as a whole (or that the device did not
/// support) is made again with the same apicode and param. 409 `task_open` while the task
/// still owes an outcome, 409 `nothing_to_retry` for a task done without failures.
#[utoipa::path(
    post,
    operation_id = "retryTask",
    path = "/api/v1/devices/{sn}/tasks/{taskid}/retry",
    tag = "tasks",
    params(
        ("sn" = String, Path, description = "Serial number"),
        ("taskid" = String, Path, description = "Task id"),
    ),
    responses(
        (status = 201, description = "The new task", body = TaskView),
        (status = 404, description = "Unknown device or task", body = super::openapi::ErrorBody),
        (status = 409, description = "`task_open` or `nothing_to_retry`", body = super::openapi::ErrorBody),
    )
)]
pub async fn retry(
    State(app): State<AppState>,
    caller: Caller,
    Path((sn, taskid)): Path<(String, String)>,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let device = device_or_404(&app, &caller, &sn).await?;
    let id = path_id("任务", &taskid)?;
    let task = app
        .store
        .task(id)
        .await?
        .filter(|t| t.sn == device.sn)
        .ok_or_else(|| ApiError::NotFound(format!("任务 {}", echo(&taskid))))?;
    let conflict = |code: &'static str, message: &str| ApiError::Conflict {
        code,
        message: message.to_owned(),
        extra: serde_json::Map::new(),
    };
    if matches!(task.state, TaskState::Pending | TaskState::Delivered) {
        return Err(conflict("task_open", "任务尚未完成，不能重试"));
    }
    let (persons, faces) = app.store.task_failures(task.taskid).await?;
    let mut failed: Vec<i64> = persons
        .iter()
        .chain(&faces)
        .filter_map(|f| f.person_id.parse().ok())
        .collect();
    failed.sort_unstable();
    failed.dedup();
    let new = if !failed.is_empty() {
        let taskid = services::tasks::enqueue_update(&app, &device.sn, &failed).await?;
        app.store
            .task(taskid)
            .await?
            .ok_or_else(|| ApiError::Internal(format!("task {taskid} vanished")))?
    } else if matches!(task.state, TaskState::Failed | TaskState::Unsupported) {
        let api = task
            .apicode
            .parse::<ApiCode>()
            .map_err(|_| unsupported(&task.apicode))?;
        let (list, _) = app.store.task_persons(task.taskid, 0, u32::MAX).await?;
        services::tasks::create(&app, &device.sn, api, task.param.clone(), list).await?
    } else {
        return Err(conflict(
            "nothing_to_retry",
            "任务已成功完成，没有可重试的内容",
        ));
    };
    tracing::info!(sn = %device.sn, from = task.taskid, taskid = new.taskid, "task retried");
    let shown = param_json(&services::tasks::deliverable_param(&app, &new, now_ms()));
    Ok((
        StatusCode::CREATED,
        Json(task_view(new, shown, (Vec::new(), Vec::new()))),
    ))
}

/// `POST /devices/{sn}/tasks`. Params by apicode:
/// - `T_SEND_PERSON` (full resync), `T_CLEAR_DEVICE_PERSON`: none.
/// - `T_POST_DEVICE_PERSON` (reconcile): optional `{excludeFields: "img,phone"}`.
/// - `T_UPDATE_DEVICE_VERSION`: `{version, size, downloadUrl, sha256}` (sha256: 64 hex).
/// - `T_UPDATE_DEVICE_PERSON`, `T_DEL_DEVICE_PERSON`: `{personIds: [...]}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTask {
    pub apicode: String,
    /// A JSON object (or its text).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub param: Option<serde_json::Value>,
}

/// A person or face a device refused, with its errCode.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    pub person_id: String,
    pub err_code: String,
}

/// A task and its outcome.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// 19-digit decimal id.
    pub taskid: String,
    pub sn: String,
    pub apicode: String,
    /// The task param as the device receives it (firmware URLs are signed on delivery).
    #[schema(value_type = Object)]
    pub param: serde_json::Value,
    pub status: TaskState,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub failed_persons: Vec<TaskFailure>,
    pub failed_faces: Vec<TaskFailure>,
}

/// `GET /devices/{sn}/tasks`: newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<TaskView>,
}

/// What a complete T_POST_DEVICE_PERSON upload shows, compared with the roster.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reconciliation {
    pub taskid: String,
    pub sn: String,
    /// On the roster, not on the device.
    pub missing: Vec<String>,
    /// On the device, not on the roster (as the device sent them).
    pub extra: Vec<String>,
    /// On both, but the device has no usable face.
    pub faceless: Vec<String>,
}

/// `{personIds: [...]}` of update and delete tasks.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonIdsParam {
    #[serde(deserialize_with = "rollcall_protocol::params::lenient::strings")]
    person_ids: Vec<String>,
}

fn failures(list: Vec<SyncFailure>) -> Vec<TaskFailure> {
    list.into_iter()
        .map(|f| TaskFailure {
            person_id: f.person_id,
            err_code: f.err_code,
        })
        .collect()
}

/// The admin view of a task, with the failures its device reported.
pub fn task_view(
    task: Task,
    param: serde_json::Value,
    failed: (Vec<SyncFailure>, Vec<SyncFailure>),
) -> TaskView {
    TaskView {
        taskid: task.taskid.to_string(),
        sn: task.sn,
        apicode: task.apicode,
        param,
        status: task.state,
        created_at: task.created_at,
        delivered_at: task.delivered_at,
        finished_at: task.finished_at,
        failed_persons: failures(failed.0),
        failed_faces: failures(failed.1),
    }
}

/// The param as JSON (its text when it is not JSON, which a stored param always is).
fn param_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

/// The param's text: an object as JSON, a string as itself; absent or `null` is `None`.
fn param_text(param: Option<&serde_json::Value>) -> Result<Option<String>, ApiError> {
    match param {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ serde_json::Value::Object(_)) => Ok(Some(v.to_string())),
        Some(_) => Err(bad_param("param 应为 JSON 对象")),
    }
}

fn bad_param(message: impl Into<String>) -> ApiError {
    ApiError::invalid_field("invalid_param", "param", message)
}

/// Reads a param with the protocol crate's lenient reader; errors name the member.
fn read_param<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    params::parse::<T>(text).map_err(|e| {
        bad_param(format!(
            "param 无效：{}",
            e.detail.unwrap_or_else(|| e.code.message().to_owned())
        ))
    })
}

/// Person ids of an update or delete task: present, decimal, at most 10,000; sorted, unique.
fn person_ids(text: Option<&str>) -> Result<Vec<i64>, ApiError> {
    let text = text.ok_or_else(|| bad_param("param 不能为空，需要 {personIds:[...]}"))?;
    let p: PersonIdsParam = read_param(text)?;
    if p.person_ids.is_empty() {
        return Err(bad_param("param.personIds 不能为空"));
    }
    if p.person_ids.len() > MAX_TASK_PERSONS {
        return Err(bad_param(format!(
            "param.personIds 一次最多 {MAX_TASK_PERSONS} 人"
        )));
    }
    let mut ids = Vec::with_capacity(p.person_ids.len());
    for raw in &p.person_ids {
        let id = id_value(raw).ok_or_else(|| {
            bad_param(format!(
                "param.personIds 应为十进制数字字符串，收到 {}",
                echo(raw)
            ))
        })?;
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Firmware info: every member present, a non-empty version and URL (absolute http(s), or a
/// `/files/` key that is signed on delivery), a positive size, a 64-hex sha256 (lowercased).
fn firmware(text: Option<&str>) -> Result<FirmwareInfo, ApiError> {
    let text =
        text.ok_or_else(|| bad_param("param 不能为空，需要 {version, size, downloadUrl, sha256}"))?;
    let mut info: FirmwareInfo = read_param(text)?;
    if info.version.trim().is_empty() {
        return Err(bad_param("param.version 不能为空"));
    }
    if info.size == 0 {
        return Err(bad_param("param.size 应大于 0"));
    }
    let url = info.download_url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("/files/"))
        || url.chars().any(char::is_whitespace)
    {
        return Err(bad_param(
            "param.downloadUrl 应为 http(s) 绝对地址或 /files/ 下的文件",
        ));
    }
    if info.sha256_bytes().is_none() {
        return Err(bad_param("param.sha256 应为 64 位十六进制 SHA-256"));
    }
    info.download_url = url.to_owned();
    info.sha256 = info.sha256.to_ascii_lowercase();
    Ok(info)
}

/// Makes the task an apicode asks for, after checking its param.
async fn make_task(
    app: &App,
    device: &Device,
    api: ApiCode,
    param: Option<&str>,
) -> Result<Task, ApiError> {
    let sn = device.sn.as_str();
    let task = match api {
        ApiCode::SendPerson => match device.project_id {
            Some(project) => services::devices::send_roster(app, sn, project).await?,
            // An unbound device has an empty roster.
            None => services::tasks::create(app, sn, api, "{}".into(), Vec::new()).await?,
        },
        ApiCode::ClearDevicePerson => {
            services::tasks::create(app, sn, api, "{}".into(), Vec::new()).await?
        }
        ApiCode::PostDevicePerson => {
            let p: PostDevicePersonTaskParam = match param {
                Some(text) => read_param(text)?,
                None => PostDevicePersonTaskParam::default(),
            };
            if let Some(list) = &p.exclude_fields {
                for name in list
                    .split([',', '，'])
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                {
                    if !EXCLUDABLE.contains(&name) {
                        return Err(bad_param(format!(
                            "param.excludeFields 只能包含 {}，收到 {}",
                            EXCLUDABLE.join("、"),
                            echo(name)
                        )));
                    }
                }
            }
            services::tasks::create(app, sn, api, params::to_json(&p), Vec::new()).await?
        }
        ApiCode::UpdateDeviceVersion => {
            let info = firmware(param)?;
            services::tasks::create(app, sn, api, params::to_json(&info), Vec::new()).await?
        }
        ApiCode::UpdateDevicePerson => {
            let ids = person_ids(param)?;
            let known = app.store.workers_by_ids(&ids).await?;
            let unknown: Vec<String> = ids
                .iter()
                .filter(|id| known.binary_search_by_key(*id, |w| w.person_id).is_err())
                .map(i64::to_string)
                .collect();
            if !unknown.is_empty() {
                return Err(ApiError::invalid_field(
                    "unknown_person",
                    "param",
                    format!("工人不存在：{}", unknown.join(", ")),
                )
                .with("personIds", serde_json::Value::from(unknown)));
            }
            services::tasks::create(app, sn, api, "{}".into(), ids).await?
        }
        ApiCode::DelDevicePerson => {
            let ids = person_ids(param)?;
            let listed: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
            let text = format!("{{\"personIds\":[{}]}}", listed.join(","));
            services::tasks::create(app, sn, api, text, ids).await?
        }
        _ => return Err(unsupported(api.as_str())),
    };
    Ok(task)
}

fn unsupported(apicode: &str) -> ApiError {
    ApiError::invalid_field(
        "invalid_apicode",
        "apicode",
        format!(
            "字段 apicode 应为 T_SEND_PERSON、T_CLEAR_DEVICE_PERSON、T_POST_DEVICE_PERSON、\
             T_UPDATE_DEVICE_VERSION、T_UPDATE_DEVICE_PERSON 或 T_DEL_DEVICE_PERSON，收到 {}",
            echo(apicode)
        ),
    )
}

/// Give a device a task; it is pushed at once when the device is connected.
#[utoipa::path(
    post,
    operation_id = "createTask",
    path = "/api/v1/devices/{sn}/tasks",
    tag = "tasks",
    params(("sn" = String, Path, description = "Serial number")),
    request_body = CreateTask,
    responses(
        (status = 201, description = "Created", body = TaskView),
        (status = 404, description = "Unknown device", body = super::openapi::ErrorBody),
        (status = 422, description = "An apicode that cannot be given, or a bad param (`invalid_param`, `unknown_person`)", body = super::openapi::ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Path(sn): Path<String>,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let device = device_or_404(&app, &caller, &sn).await?;
    let apicode = body.apicode.trim();
    let api = apicode
        .parse::<ApiCode>()
        .map_err(|_| unsupported(apicode))?;
    let param = param_text(body.param.as_ref())?;
    let task = make_task(&app, &device, api, param.as_deref()).await?;
    tracing::info!(sn = %device.sn, taskid = task.taskid, apicode = task.apicode, "task created");
    let now = crate::runtime::util::now_ms();
    let shown = param_json(&services::tasks::deliverable_param(&app, &task, now));
    Ok((
        StatusCode::CREATED,
        Json(task_view(task, shown, (Vec::new(), Vec::new()))),
    ))
}

/// A device's tasks, newest first, with the failures it reported.
#[utoipa::path(
    get,
    operation_id = "listTasks",
    path = "/api/v1/devices/{sn}/tasks",
    tag = "tasks",
    params(
        ("sn" = String, Path, description = "Serial number"),
        ("limit" = Option<u32>, Query, description = "Most tasks, default 100, at most 1000"),
    ),
    responses(
        (status = 200, description = "OK", body = TaskList),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Path(sn): Path<String>,
    q: QueryParams,
) -> Result<Json<TaskList>, ApiError> {
    let limit = q.limit(100, 1000)?;
    let device = device_or_404(&app, &caller, &sn).await?;
    let rows = app.store.tasks_of_device(&device.sn, limit).await?;
    let now = crate::runtime::util::now_ms();
    let mut tasks = Vec::with_capacity(rows.len());
    for task in rows {
        let failed = app.store.task_failures(task.taskid).await?;
        let shown = param_json(&services::tasks::deliverable_param(&app, &task, now));
        tasks.push(task_view(task, shown, failed));
    }
    Ok(Json(TaskList { tasks }))
}

/// The result of a T_POST_DEVICE_PERSON task: 404 until the device has uploaded every page.
#[utoipa::path(
    get,
    operation_id = "getReconciliation",
    path = "/api/v1/devices/{sn}/tasks/{taskid}/reconciliation",
    tag = "tasks",
    params(
        ("sn" = String, Path, description = "Serial number"),
        ("taskid" = String, Path, description = "Id of a T_POST_DEVICE_PERSON task"),
    ),
    responses(
        (status = 200, description = "OK", body = Reconciliation),
        (status = 404, description = "Unknown device or task, or the upload is not complete yet (`reconciliation_pending`)", body = super::openapi::ErrorBody),
    )
)]
pub async fn reconciliation(
    State(app): State<AppState>,
    caller: Caller,
    Path((sn, taskid)): Path<(String, String)>,
) -> Result<Json<Reconciliation>, ApiError> {
    let device = device_or_404(&app, &caller, &sn).await?;
    let id = path_id("任务", &taskid)?;
    let task = app
        .store
        .task(id)
        .await?
        .filter(|t| t.sn == device.sn && t.apicode == ApiCode::PostDevicePerson.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("设备 {} 的对账任务 {id}", device.sn)))?;
    let report = services::reconcile::report(&app, &task)
        .await?
        .ok_or_else(|| {
            ApiError::custom(
                StatusCode::NOT_FOUND,
                "reconciliation_pending",
                "设备尚未上传完整的人员名单，对账结果暂无",
            )
        })?;
    let ids = |v: Vec<i64>| v.into_iter().map(|i| i.to_string()).collect();
    Ok(Json(Reconciliation {
        taskid: task.taskid.to_string(),
        sn: task.sn,
        missing: ids(report.missing),
        extra: report.extra,
        faceless: ids(report.faceless),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_as_text() {
        assert_eq!(param_text(None).unwrap(), None);
        assert_eq!(param_text(Some(&serde_json::Value::Null)).unwrap(), None);
        assert_eq!(
            param_text(Some(&serde_json::json!({"a": 1}))).unwrap(),
            Some(r#"{"a":1}"#.to_owned())
        );
        assert_eq!(
            param_text(Some(&serde_json::json!("{\"a\":1}"))).unwrap(),
            Some(r#"{"a":1}"#.to_owned())
        );
        assert!(param_text(Some(&serde_json::json!([1]))).is_err());
    }

    #[test]
    fn person_id_params() {
        assert_eq!(
            person_ids(Some(r#"{"personIds":["3","1",2,"3"]}"#)).unwrap(),
            vec![1, 2, 3]
        );
        assert!(person_ids(None).is_err());
        assert!(person_ids(Some(r#"{"personIds":[]}"#)).is_err());
        assert!(person_ids(Some(r#"{"personIds":["x"]}"#)).is_err());
        let err = person_ids(Some(r#"{"ids":["1"]}"#))
            .unwrap_err()
            .to_string();
        assert!(err.contains("personIds"), "{err}");
    }

    #[test]
    fn firmware_params() {
        let sha = "AB".repeat(32);
        let ok = format!(
            r#"{{"version":"2.1.0","size":"1024","downloadUrl":"https://cdn.example/fw.bin","sha256":"{sha}"}}"#
        );
        let info = firmware(Some(&ok)).unwrap();
        assert_eq!(info.size, 1024);
        assert_eq!(info.sha256, "ab".repeat(32));
        let short = ok.replace(&sha, "abc");
        assert!(
            firmware(Some(&short))
                .unwrap_err()
                .to_string()
                .contains("sha256")
        );
        let ftp = ok.replace("https://cdn.example", "ftp://x");
        assert!(firmware(Some(&ftp)).is_err());
        let missing = r#"{"version":"1","size":1,"sha256":"x"}"#;
        assert!(
            firmware(Some(missing))
                .unwrap_err()
                .to_string()
                .contains("downloadUrl")
        );
        assert!(firmware(None).is_err());
    }

    #[test]
    fn views_map_failures_and_states() {
        let task = Task {
            taskid: 1_234_567_890_123_456_789,
            sn: "SN1".into(),
            apicode: "T_SEND_PERSON".into(),
            param: "{}".into(),
            state: TaskState::Done,
            created_at: 1,
            delivered_at: Some(2),
            finished_at: Some(3),
        };
        let failed = (
            vec![SyncFailure {
                person_id: "7".into(),
                err_code: "E01".into(),
            }],
            Vec::new(),
        );
        let v = serde_json::to_value(task_view(task, param_json("{}"), failed)).unwrap();
        assert_eq!(v["taskid"], "1234567890123456789");
        assert_eq!(v["status"], "done");
        assert_eq!(v["failedPersons"][0]["personId"], "7");
        assert_eq!(v["failedPersons"][0]["errCode"], "E01");
        assert_eq!(v["deliveredAt"], 2);
        assert_eq!(v["param"], serde_json::json!({}));
    }
}
