//! `/api/v1/projects/{id}/workers`: a project's roster — workers joining (进场) and leaving
//! (退场), their team and trade. Joining and leaving go through `services::workers`, which
//! makes the device tasks (ZJ-TASK-05, ZJ-PERSON-04, ZJ-PERSON-05): every device of the project
//! gets a T_UPDATE_DEVICE_PERSON (merged into a pending one) or a T_DEL_DEVICE_PERSON.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Caller, project_or_404};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, optional_text, parse_id, path_id};
use super::workers::{WorkerView, view};
use crate::accounts::Scope;
use crate::accounts::audit::AuditNote;
use crate::runtime::util::now_ms;
use crate::services;
use crate::state::{App, AppState};

/// Most persons joined in one call.
const MAX_JOIN: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{id}/workers", post(join).get(roster))
        .route(
            "/projects/{id}/workers/{personId}",
            delete(leave).patch(update_member),
        )
}

/// `POST /projects/{id}/workers`: either person ids (decimal strings) of workers the caller
/// sees, or one enrolled worker by ID-card number and name (the way a project manager takes
/// on a worker enrolled elsewhere: "enrol once", `409 worker_exists`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinWorkers {
    #[serde(
        default,
        deserialize_with = "rollcall_protocol::params::lenient::strings"
    )]
    pub person_ids: Vec<String>,
    /// With `name`: the worker enrolled with this ID-card number and this name.
    #[serde(default)]
    pub idcard_no: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// The workers that joined.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub project_id: String,
    pub person_ids: Vec<String>,
}

/// `GET /projects/{id}/workers`: the roster (active, non-blacklisted), ID numbers masked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Roster {
    pub project_id: String,
    pub workers: Vec<RosterEntry>,
}

/// A worker on a roster, with their team and trade in the project.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RosterEntry {
    #[serde(flatten)]
    pub worker: WorkerView,
    pub team_id: Option<String>,
    pub trade: Option<String>,
}

/// Workers join the project; every device of the project gets a T_UPDATE_DEVICE_PERSON,
/// pushed at once to connected devices.
///
/// By `personIds`, a project manager names only workers they already see (members, past or
/// present, of one of their projects); any other id is answered `unknown_person`, exactly as
/// an id that does not exist. A worker of another project joins by `idcardNo` and `name`
/// together (both must match the enrolment: what the manager reads off the worker's ID card
/// when they arrive), so knowing a person id is never enough to pull a worker, their name
/// and face onto one's devices.
#[utoipa::path(
    post,
    operation_id = "joinProject",
    path = "/api/v1/projects/{id}/workers",
    tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    request_body = JoinWorkers,
    responses(
        (status = 200, description = "OK", body = Joined),
        (status = 404, description = "Unknown project", body = super::error::ErrorBody),
        (status = 409, description = "`worker_blacklisted`: a worker on the blacklist, listed in `personIds`", body = super::error::ErrorBody),
        (status = 422, description = "Empty or malformed list, unknown person ids or ones the caller does not see (`unknown_person`, listed in `personIds`), or no worker of that `idcardNo` and `name` (`unknown_person`)", body = super::error::ErrorBody),
    )
)]
pub async fn join(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<JoinWorkers>,
) -> Result<(Extension<AuditNote>, Json<Joined>), ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let ids = match (&body.idcard_no, body.person_ids.is_empty()) {
        (Some(idcard_no), true) => {
            vec![by_idcard(&app, idcard_no, body.name.as_deref().unwrap_or("")).await?]
        }
        (Some(_), false) => {
            return Err(ApiError::invalid_field(
                "invalid_field",
                "idcardNo",
                "字段 personIds 与 idcardNo 只能给一个",
            ));
        }
        (None, _) => person_ids(&app, &caller, &body.person_ids).await?,
    };
    let listed = services::workers::blacklisted_among(&app, &ids).await?;
    if !listed.is_empty() {
        let listed: Vec<String> = listed.iter().map(i64::to_string).collect();
        return Err(ApiError::Conflict {
            code: "worker_blacklisted",
            message: format!("工人在黑名单中，不能进场：{}", listed.join(", ")),
            extra: serde_json::Map::new(),
        }
        .with("personIds", serde_json::Value::from(listed)));
    }
    services::workers::join_project(&app, project.id, &ids).await?;
    tracing::info!(project = project.id, count = ids.len(), "workers joined");
    let person_ids: Vec<String> = ids.iter().map(i64::to_string).collect();
    // Who added whom (the access layer writes it with the actor).
    let note = AuditNote(format!(
        "工人进场 项目 {}：{}",
        project.id,
        person_ids.join(", ")
    ));
    Ok((
        Extension(note),
        Json(Joined {
            project_id: project.id.to_string(),
            person_ids,
        }),
    ))
}

/// The person ids of a join: decimal, at most [`MAX_JOIN`], each a worker the caller sees.
async fn person_ids(app: &App, caller: &Caller, raw: &[String]) -> Result<Vec<i64>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "personIds",
            "字段 personIds 不能为空",
        ));
    }
    if raw.len() > MAX_JOIN {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "personIds",
            format!("字段 personIds 一次最多 {MAX_JOIN} 人"),
        ));
    }
    let mut ids = Vec::with_capacity(raw.len());
    for raw in raw {
        let id = parse_id("personIds", raw)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut known = app.store.workers_by_ids(&ids).await?;
    if caller.0.scope() != Scope::All {
        // A project manager names only workers they see (services::scope); others read as
        // unknown, so this answer reveals nothing about other projects.
        let mut visible = Vec::with_capacity(known.len());
        for w in known {
            let projects: Vec<i64> = app
                .store
                .memberships(w.person_id)
                .await?
                .iter()
                .map(|m| m.project_id)
                .collect();
            if caller.0.sees_member_of(&projects) {
                visible.push(w);
            }
        }
        known = visible;
    }
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| known.binary_search_by_key(*id, |w| w.person_id).is_err())
        .map(i64::to_string)
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::invalid_field(
            "unknown_person",
            "personIds",
            format!("工人不存在：{}", unknown.join(", ")),
        )
        .with("personIds", serde_json::Value::from(unknown)));
    }
    Ok(ids)
}

/// The worker enrolled with this ID-card number and this name; one answer for "no such
/// number" and "another name", so the endpoint is no oracle for either.
async fn by_idcard(app: &App, idcard_no: &str, name: &str) -> Result<i64, ApiError> {
    let unknown = || {
        ApiError::invalid_field(
            "unknown_person",
            "idcardNo",
            "未找到该身份证号与姓名的已登记工人",
        )
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "name",
            "以身份证号加入时须同时给出姓名（name）",
        ));
    }
    let number = idcard_no.trim().to_ascii_uppercase();
    let worker = app
        .store
        .worker_by_idcard(&number)
        .await?
        .ok_or_else(unknown)?;
    if worker.name.trim() != name {
        return Err(unknown());
    }
    Ok(worker.person_id)
}

/// A worker leaves the project; every device of the project gets a T_DEL_DEVICE_PERSON.
#[utoipa::path(
    delete,
    operation_id = "leaveProject",
    path = "/api/v1/projects/{id}/workers/{personId}",
    tag = "projects",
    params(
        ("id" = String, Path, description = "Project id"),
        ("personId" = String, Path, description = "Person id"),
    ),
    responses(
        (status = 204, description = "Left the project"),
        (status = 404, description = "Unknown project, or the worker is not active in it", body = super::error::ErrorBody),
    )
)]
pub async fn leave(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((id, person_id)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let person = path_id("工人", &person_id)?;
    if !services::workers::leave_project(&app, project.id, person).await? {
        return Err(ApiError::NotFound(format!(
            "项目 {} 中的在场工人 {person}",
            project.id
        )));
    }
    tracing::info!(project = project.id, person, "worker left");
    Ok(StatusCode::NO_CONTENT)
}

/// The project's roster: its active, non-blacklisted workers (ID numbers masked).
#[utoipa::path(
    get,
    operation_id = "getProjectRoster",
    path = "/api/v1/projects/{id}/workers",
    tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "OK", body = Roster),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn roster(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<(Extension<AuditNote>, Json<Roster>), ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let ids = app.store.roster(project.id).await?;
    let workers = app.store.workers_by_ids(&ids).await?;
    let members = app.store.members(project.id).await?;
    let now = now_ms();
    let note = AuditNote(format!(
        "读取项目 {} 花名册 {} 人",
        project.id,
        workers.len()
    ));
    Ok((
        Extension(note),
        Json(Roster {
            project_id: project.id.to_string(),
            workers: workers
                .iter()
                .map(|w| {
                    let m = members.iter().find(|m| m.person_id == w.person_id);
                    RosterEntry {
                        worker: view(&app, w, now),
                        team_id: m.and_then(|m| m.team_id).map(|t| t.to_string()),
                        trade: m.and_then(|m| m.trade.clone()),
                    }
                })
                .collect(),
        }),
    ))
}

/// `PATCH /projects/{id}/workers/{personId}`: a member's team and trade.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateMember {
    /// The team (班组) id, or `null` for none.
    #[serde(default)]
    pub team_id: Option<String>,
    /// The trade (工种), or `null`.
    #[serde(default)]
    pub trade: Option<String>,
}

/// Sets a member's team and trade.
#[utoipa::path(
    patch,
    operation_id = "updateMember",
    path = "/api/v1/projects/{id}/workers/{personId}",
    tag = "projects",
    params(
        ("id" = String, Path, description = "Project id"),
        ("personId" = String, Path, description = "Person id"),
    ),
    request_body = UpdateMember,
    responses(
        (status = 204, description = "Changed"),
        (status = 404, description = "Unknown project or not a member", body = super::error::ErrorBody),
        (status = 422, description = "`unknown_team`", body = super::error::ErrorBody),
    )
)]
pub async fn update_member(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((id, person_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UpdateMember>,
) -> Result<StatusCode, ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let person = path_id("工人", &person_id)?;
    let team = match body.team_id.as_deref() {
        Some(raw) => {
            let team = parse_id("teamId", raw)?;
            if app
                .store
                .team(team)
                .await?
                .is_none_or(|t| t.project_id != project.id)
            {
                return Err(ApiError::invalid_field(
                    "unknown_team",
                    "teamId",
                    format!("班组 {team} 不属于项目 {}", project.id),
                ));
            }
            Some(team)
        }
        None => None,
    };
    let trade = optional_text("trade", body.trade.as_deref(), 32)?;
    if !app
        .store
        .set_member_details(project.id, person, team, trade.as_deref())
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "项目 {} 中的工人 {person}",
            project.id
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}
