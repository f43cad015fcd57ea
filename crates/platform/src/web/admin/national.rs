//! What the national platform needs of a worker, and the dictionaries it is coded in
//! (docs/UPLINK.md):
//!
//! - `PATCH /workers/{personId}` — edits a worker: their own fields and their national data
//!   (ID card issuing authority and validity, politics type, work type, team leader). The
//!   edit reaches every device of the worker's active projects by merging into the pending
//!   person update (ZJ-TASK-05), and the worker's waiting uplink items are looked at again.
//! - `GET /dictionaries`, `PUT /dictionaries/{kind}/{code}` — the work types, politics types
//!   and nations: built-in defaults plus the operator's entries (administrators add them).
//!
//! A worker's `national` block (also in `GET /workers/{personId}`) flags an expired ID card
//! and lists why the national platform would refuse the worker, before anything is sent.

use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Caller, visible_worker};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, echo, optional_text, required_text};
use super::workers::{WorkerView, view};
use crate::runtime::util::now_ms;
use crate::services;
use crate::state::{App, AppState};
use crate::store::{DictionaryEntry, Worker, WorkerNational, WorkerPatch};
use crate::uplink::dictionaries;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dictionaries", get(list_dictionaries))
        .route("/dictionaries/{kind}/{code}", put(put_dictionary_entry))
}

/// The `PATCH` half of `/workers/{personId}` (the `GET` is in `workers`).
pub fn worker_routes() -> axum::routing::MethodRouter<AppState> {
    axum::routing::patch(update_worker)
}

/// A worker's national data, with what the national platform would refuse.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NationalView {
    pub grant_org: Option<String>,
    pub id_valid_from: Option<String>,
    pub id_valid_to: Option<String>,
    pub politics_type: Option<String>,
    pub work_type: Option<String>,
    pub team_leader: bool,
    /// The ID card's validity ended before today (Beijing time).
    pub id_card_expired: bool,
    /// Why the national platform would refuse the worker now (empty: nothing known).
    pub uplink_problems: Vec<String>,
}

pub async fn national_view(app: &App, worker: &Worker) -> Result<NationalView, ApiError> {
    let national = app.store.worker_national(worker.person_id).await?;
    let today = rollcall_protocol::time::today_beijing(now_ms());
    let problems = dictionaries::problems(national.as_ref(), worker.face_key.is_some(), today);
    let n = national.unwrap_or_default();
    Ok(NationalView {
        id_card_expired: dictionaries::id_card_expired(&n, today),
        grant_org: n.grant_org,
        id_valid_from: n.id_valid_from,
        id_valid_to: n.id_valid_to,
        politics_type: n.politics_type,
        work_type: n.work_type,
        team_leader: n.team_leader,
        uplink_problems: problems,
    })
}

/// `PATCH /workers/{personId}`: every field optional; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWorker {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nation: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// The ID card's issuing authority (签发机关).
    #[serde(default)]
    pub grant_org: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub id_valid_from: Option<String>,
    /// `YYYY-MM-DD` or `长期`.
    #[serde(default)]
    pub id_valid_to: Option<String>,
    /// A `politics_type` dictionary code.
    #[serde(default)]
    pub politics_type: Option<String>,
    /// A `work_type` dictionary code.
    #[serde(default)]
    pub work_type: Option<String>,
    #[serde(default)]
    pub team_leader: Option<bool>,
}

/// `PATCH /workers/{personId}` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatchedWorker {
    #[serde(flatten)]
    pub worker: WorkerView,
    pub national: NationalView,
}

pub fn date_field(
    field: &str,
    value: Option<&str>,
    forever: bool,
) -> Result<Option<String>, ApiError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if (forever && v == "长期") || dictionaries::date_number(v).is_some() {
        Ok(Some(v.to_owned()))
    } else {
        Err(ApiError::invalid_field(
            "invalid_field",
            field,
            format!("字段 {field} 应为 YYYY-MM-DD 日期，收到 {}", echo(v)),
        ))
    }
}

fn code_field(
    entries: &[DictionaryEntry],
    kind: &str,
    field: &str,
    value: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if dictionaries::has(entries, kind, v) {
        Ok(Some(v.to_owned()))
    } else {
        Err(ApiError::invalid_field(
            "unknown_code",
            field,
            format!("字段 {field} 不是字典 {kind} 中的代码：{}", echo(v)),
        ))
    }
}

/// Edits a worker; the change reaches their devices and their national report.
#[utoipa::path(
    patch,
    operation_id = "updateWorker",
    path = "/api/v1/workers/{personId}",
    tag = "workers",
    params(("personId" = String, Path, description = "Person id")),
    request_body = PatchWorker,
    responses(
        (status = 200, description = "The worker as it now is", body = PatchedWorker),
        (status = 422, description = "`invalid_field`, `unknown_code`", body = super::error::ErrorBody),
    )
)]
pub async fn update_worker(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(person_id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchWorker>,
) -> Result<Json<PatchedWorker>, ApiError> {
    let visible = visible_worker(&app, &caller, &person_id).await?;
    let id = visible.worker.person_id;
    let now = now_ms();
    let patch = WorkerPatch {
        name: match body.name.as_deref() {
            Some(n) => Some(required_text("name", n, 64)?),
            None => None,
        },
        nation: optional_text("nation", body.nation.as_deref(), 32)?,
        address: optional_text("address", body.address.as_deref(), 200)?,
        phone: optional_text("phone", body.phone.as_deref(), 32)?,
        updated_at: now,
    };
    let entries = dictionaries::merged(&app.store.dictionary_entries().await?);
    let old = app.store.worker_national(id).await?.unwrap_or_default();
    let national = WorkerNational {
        person_id: id,
        grant_org: optional_text("grantOrg", body.grant_org.as_deref(), 64)?.or(old.grant_org),
        id_valid_from: date_field("idValidFrom", body.id_valid_from.as_deref(), false)?
            .or(old.id_valid_from),
        id_valid_to: date_field("idValidTo", body.id_valid_to.as_deref(), true)?
            .or(old.id_valid_to),
        politics_type: code_field(
            &entries,
            "politics_type",
            "politicsType",
            body.politics_type.as_deref(),
        )?
        .or(old.politics_type),
        work_type: code_field(&entries, "work_type", "workType", body.work_type.as_deref())?
            .or(old.work_type),
        team_leader: body.team_leader.unwrap_or(old.team_leader),
        updated_at: now,
    };
    let worker = services::workers::edit(&app, id, &patch, &national)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("工人 {id}")))?;
    tracing::info!(person = id, "worker edited");
    Ok(Json(PatchedWorker {
        worker: view(&app, &worker, now),
        national: national_view(&app, &worker).await?,
    }))
}

/// `GET /dictionaries`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DictionaryList {
    pub entries: Vec<DictionaryEntry>,
}

/// The dictionaries (built-in defaults and the operator's entries).
#[utoipa::path(
    get,
    operation_id = "listDictionaries",
    path = "/api/v1/dictionaries",
    tag = "uplink",
    responses((status = 200, description = "OK", body = DictionaryList))
)]
pub async fn list_dictionaries(
    State(app): State<AppState>,
) -> Result<Json<DictionaryList>, ApiError> {
    let stored = app.store.dictionary_entries().await?;
    Ok(Json(DictionaryList {
        entries: dictionaries::merged(&stored),
    }))
}

/// `PUT /dictionaries/{kind}/{code}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutEntry {
    pub name: String,
}

/// Adds or renames a dictionary entry (administrators).
#[utoipa::path(
    put,
    operation_id = "putDictionaryEntry",
    path = "/api/v1/dictionaries/{kind}/{code}",
    tag = "uplink",
    params(
        ("kind" = String, Path, description = "`work_type`, `politics_type` or `nation`"),
        ("code" = String, Path, description = "The code (1 to 8 letters or digits)"),
    ),
    request_body = PutEntry,
    responses(
        (status = 200, description = "The entry", body = DictionaryEntry),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 422, description = "Unknown kind or bad code", body = super::error::ErrorBody),
    )
)]
pub async fn put_dictionary_entry(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((kind, code)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutEntry>,
) -> Result<Json<DictionaryEntry>, ApiError> {
    caller.require_admin()?;
    if !dictionaries::KINDS.contains(&kind.as_str()) {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "kind",
            format!(
                "字典应为 work_type、politics_type 或 nation，收到 {}",
                echo(&kind)
            ),
        ));
    }
    if code.is_empty() || code.len() > 8 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "code",
            format!("代码应为 1–8 个字母或数字，收到 {}", echo(&code)),
        ));
    }
    let entry = DictionaryEntry {
        kind,
        code,
        name: required_text("name", &body.name, 64)?,
    };
    app.store.put_dictionary_entry(&entry).await?;
    Ok(Json(entry))
}
