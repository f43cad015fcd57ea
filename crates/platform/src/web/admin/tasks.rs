//! `/api/v1/devices/{sn}/tasks`: tasks an administrator gives a device — full resync, clear,
//! reconcile, firmware, update or delete persons — the device's task history with the
//! failures it reported, and the result of a reconciliation.
//!
//! Tasks are made by `services::tasks::create` (merging, superseding and push live there);
//! a full resync uses `services::devices::send_roster`. Params are checked with the protocol
//! crate's types before a task is made, so a device never receives a param it cannot read.
//!
//! Two rules keep a task from carrying what its device may not have:
//! - **Firmware only from registered packages** (ZJ-FW-01, ZJ-FW-02): a `T_UPDATE_DEVICE_VERSION`
//!   names a package by `firmwareId` (`web::admin::firmware`); the URL, size and digest come
//!   from the package's own row, and a raw `downloadUrl` is refused (422, field
//!   `param.downloadUrl`). Otherwise the platform would sign any `/files/` key on delivery and
//!   hand it back: a signing oracle for other projects' photos. Firmware is the
//!   administrators' (as `POST /firmware/{id}/deploy`).
//! - **Persons only from the device's roster** (ZJ-PERSON-04): a `T_UPDATE_DEVICE_PERSON` names
//!   only workers on the roster of the device's project (422 `unknown_person` otherwise,
//!   without telling a worker of another project from one that does not exist).
//!
//! Admin views of tasks show the param as stored: firmware URLs unsigned (`/files/…`), never
//! a signed, fetchable URL; devices get theirs signed at delivery.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use rollcall_protocol::ApiCode;
use rollcall_protocol::params::{self, FirmwareInfo, PersonIdsParam, PostDevicePersonTaskParam};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::access::device_or_404;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, QueryParams, echo, id_value, path_id};
use crate::accounts::audit::AuditNote;
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
        (status = 404, description = "Unknown device or task", body = super::error::ErrorBody),
        (status = 409, description = "`task_open` or `nothing_to_retry`", body = super::error::ErrorBody),
        (status = 422, description = "The task's apicode or param can no longer be given (`invalid_apicode`, `invalid_param`)", body = super::error::ErrorBody),
    )
)]
pub async fn retry(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((sn, taskid)): ApiPath<(String, String)>,
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
    // Only workers still on the device's roster go to it again (ZJ-PERSON-04).
    let roster = device_roster(&app, &device).await?;
    failed.retain(|id| roster.binary_search(id).is_ok());
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
    let shown = param_json(&new.param);
    Ok((
        StatusCode::CREATED,
        Json(task_view(new, shown, (Vec::new(), Vec::new()))),
    ))
}

/// `POST /devices/{sn}/tasks`. Params by apicode:
/// - `T_SEND_PERSON` (full resync), `T_CLEAR_DEVICE_PERSON`: none.
/// - `T_POST_DEVICE_PERSON` (reconcile): optional `{excludeFields: "img,phone"}`.
/// - `T_UPDATE_DEVICE_VERSION` (administrators): `{firmwareId}`, a package of the device's
///   vendor and kind; a raw `downloadUrl` is refused.
/// - `T_UPDATE_DEVICE_PERSON`: `{personIds: [...]}`, workers on the device's project roster.
/// - `T_DEL_DEVICE_PERSON`: `{personIds: [...]}`.
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
    /// The task param as stored. Firmware URLs are shown unsigned (`/files/…`): devices get
    /// them signed on delivery, people never.
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

/// `T_UPDATE_DEVICE_VERSION`'s param as the API takes it: the package's id only.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FirmwareTaskParam {
    #[serde(default)]
    firmware_id: Option<serde_json::Value>,
    #[serde(default)]
    download_url: Option<serde_json::Value>,
}

/// ZJ-FW-01/ZJ-FW-02: the firmware info of a registered package for this device. A raw
/// `downloadUrl` is refused: the URL is always the package's own stored file.
async fn firmware(
    app: &App,
    device: &Device,
    text: Option<&str>,
) -> Result<FirmwareInfo, ApiError> {
    let text = text.ok_or_else(|| bad_param("param 不能为空，需要 {firmwareId}"))?;
    let p: FirmwareTaskParam = serde_json::from_str(text)
        .map_err(|_| bad_param("param 应为 JSON 对象，需要 {firmwareId}"))?;
    if p.download_url.is_some() {
        return Err(ApiError::invalid_field(
            "invalid_param",
            "param.downloadUrl",
            "不接受 param.downloadUrl：请先上传固件（POST /firmware），再以 param.firmwareId 指定",
        ));
    }
    let raw = match &p.firmware_id {
        Some(serde_json::Value::String(s)) => s.trim().to_owned(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => {
            return Err(ApiError::invalid_field(
                "invalid_param",
                "param.firmwareId",
                "param.firmwareId 不能为空（固件包的 id）",
            ));
        }
    };
    let unknown = || {
        ApiError::invalid_field(
            "unknown_firmware",
            "param.firmwareId",
            format!("固件 {} 不存在", echo(&raw)),
        )
    };
    let id = id_value(&raw).ok_or_else(unknown)?;
    let package = app.store.firmware(id).await?.ok_or_else(unknown)?;
    if package.vendor_id != device.vendor_id || package.kind != device.kind.as_str() {
        return Err(ApiError::invalid_field(
            "wrong_device",
            "param.firmwareId",
            format!("设备 {} 的厂商或类型与固件不符", device.sn),
        ));
    }
    Ok(FirmwareInfo {
        version: package.version.clone(),
        size: u64::try_from(package.size).unwrap_or(0),
        download_url: format!("/files/{}", package.file_key),
        sha256: package.sha256.clone(),
    })
}

/// The roster of the device's project (empty for an unbound device), sorted.
async fn device_roster(app: &App, device: &Device) -> Result<Vec<i64>, ApiError> {
    Ok(match device.project_id {
        Some(project) => app.store.roster(project).await?,
        None => Vec::new(),
    })
}

/// Makes the task an apicode asks for, after checking its param.
async fn make_task(
    app: &App,
    caller: &Caller,
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
            // Firmware is the administrators' (as its upload and deploy).
            caller.require_admin()?;
            let info = firmware(app, device, param).await?;
            services::tasks::create(app, sn, api, params::to_json(&info), Vec::new()).await?
        }
        ApiCode::UpdateDevicePerson => {
            let ids = person_ids(param)?;
            // ZJ-PERSON-04: a device only ever receives workers on its project's roster. A
            // worker of another project is answered like one that does not exist.
            let roster = device_roster(app, device).await?;
            let unknown: Vec<String> = ids
                .iter()
                .filter(|id| roster.binary_search(*id).is_err())
                .map(i64::to_string)
                .collect();
            if !unknown.is_empty() {
                return Err(ApiError::invalid_field(
                    "unknown_person",
                    "param",
                    format!("工人不在设备所属项目的花名册上：{}", unknown.join(", ")),
                )
                .with("personIds", serde_json::Value::from(unknown)));
            }
            services::tasks::create(app, sn, api, "{}".into(), ids).await?
        }
        ApiCode::DelDevicePerson => {
            let ids = person_ids(param)?;
            let text = PersonIdsParam::new(&ids).to_text();
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
        (status = 403, description = "`T_UPDATE_DEVICE_VERSION` by someone not an administrator", body = super::error::ErrorBody),
        (status = 404, description = "Unknown device", body = super::error::ErrorBody),
        (status = 422, description = "An apicode that cannot be given, or a bad param (`invalid_param`; `unknown_person`: not on the device's project roster; `unknown_firmware`, `wrong_device`)", body = super::error::ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(sn): ApiPath<String>,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<(StatusCode, Extension<AuditNote>, Json<TaskView>), ApiError> {
    let device = device_or_404(&app, &caller, &sn).await?;
    let apicode = body.apicode.trim();
    let api = apicode
        .parse::<ApiCode>()
        .map_err(|_| unsupported(apicode))?;
    let param = param_text(body.param.as_ref())?;
    let task = make_task(&app, &caller, &device, api, param.as_deref()).await?;
    tracing::info!(sn = %device.sn, taskid = task.taskid, apicode = task.apicode, "task created");
    let note = AuditNote(audit_detail(&app, &task).await?);
    let shown = param_json(&task.param);
    Ok((
        StatusCode::CREATED,
        Extension(note),
        Json(task_view(task, shown, (Vec::new(), Vec::new()))),
    ))
}

/// What the audit log says of a task: its apicode, device and the persons it carries (who
/// sent whom to which device).
async fn audit_detail(app: &App, task: &Task) -> Result<String, ApiError> {
    let (persons, total) = app.store.task_persons(task.taskid, 0, 1000).await?;
    let mut detail = format!("任务 {} {} 设备 {}", task.taskid, task.apicode, task.sn);
    if total > 0 {
        let ids: Vec<String> = persons.iter().map(i64::to_string).collect();
        detail.push_str(&format!("，人员 {} 人：{}", total, ids.join(", ")));
        if u64::from(total) > persons.len() as u64 {
            detail.push('…');
        }
    }
    Ok(detail)
}

/// A device's tasks, newest first, with the failures it reported.
#[utoipa::path(
    get,
    operation_id = "listTasks",
    path = "/api/v1/devices/{sn}/tasks",
    tag = "tasks",
    params(
        ("sn" = String, Path, description = "Serial number"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "Most tasks, default 100, at most 1000 (a larger one counts as 1000)"),
    ),
    responses(
        (status = 200, description = "OK", body = TaskList),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(sn): ApiPath<String>,
    q: QueryParams,
) -> Result<Json<TaskList>, ApiError> {
    let limit = q.limit(100, 1000)?;
    let device = device_or_404(&app, &caller, &sn).await?;
    let rows = app.store.tasks_of_device(&device.sn, limit).await?;
    let mut tasks = Vec::with_capacity(rows.len());
    for task in rows {
        let failed = app.store.task_failures(task.taskid).await?;
        // As stored: never a signed URL.
        let shown = param_json(&task.param);
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
        (status = 404, description = "Unknown device or task, or the upload is not complete yet (`reconciliation_pending`)", body = super::error::ErrorBody),
    )
)]
pub async fn reconciliation(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((sn, taskid)): ApiPath<(String, String)>,
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
