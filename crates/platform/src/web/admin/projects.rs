//! `/api/v1/projects`: construction projects (sites) with their coordinate system and
//! electronic fence, and their rosters — workers joining (进场) and leaving (退场).
//!
//! Fences are checked with [`Fence::validate`] when set. Joining and leaving go through
//! `services::workers`, which makes the device tasks (PROTOCOL.md §5): every device of the
//! project gets a T_UPDATE_DEVICE_PERSON (merged into a pending one) or a T_DEL_DEVICE_PERSON.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, echo, optional_text, parse_id, path_id, required_text};
use super::workers::{WorkerView, view};
use crate::accounts::audit::AuditNote;
use crate::rules::geo::{CoordinateSystem, Fence, Point};
use crate::runtime::util::now_ms;
use crate::services;
use crate::state::{App, AppState};
use crate::store::console::Team;
use crate::store::{Project, StoreError};

/// Most persons joined in one call.
const MAX_JOIN: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects", post(create).get(list))
        .route("/projects/{id}", get(show))
        .route("/projects/{id}/workers", post(join).get(roster))
        .route(
            "/projects/{id}/workers/{person_id}",
            delete(leave).patch(update_member),
        )
        .route("/projects/{id}/teams", post(create_team).get(teams))
}

/// The coordinate system of a project's fence and of its devices' coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CoordinateSystemName {
    /// GCJ-02 (火星坐标), what Chinese map SDKs use: the default.
    Gcj02,
    /// WGS-84, raw GPS.
    Wgs84,
}

/// A position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FencePoint {
    pub longitude: f64,
    pub latitude: f64,
}

/// An electronic fence: a circle or a polygon of `[longitude, latitude]` pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum FenceBody {
    Circle {
        center: FencePoint,
        /// Greater than 0, at most 100 km.
        #[serde(rename = "radiusMeters")]
        radius_meters: f64,
    },
    Polygon {
        /// 3 to 1000 points, open or closed.
        polygon: Vec<[f64; 2]>,
    },
}

impl From<&Fence> for FenceBody {
    fn from(f: &Fence) -> Self {
        match f {
            Fence::Circle {
                center,
                radius_meters,
            } => FenceBody::Circle {
                center: FencePoint {
                    longitude: center.longitude,
                    latitude: center.latitude,
                },
                radius_meters: *radius_meters,
            },
            Fence::Polygon { polygon } => FenceBody::Polygon {
                polygon: polygon.clone(),
            },
        }
    }
}

impl From<FenceBody> for Fence {
    fn from(f: FenceBody) -> Self {
        match f {
            FenceBody::Circle {
                center,
                radius_meters,
            } => Fence::Circle {
                center: Point {
                    longitude: center.longitude,
                    latitude: center.latitude,
                },
                radius_meters,
            },
            FenceBody::Polygon { polygon } => Fence::Polygon { polygon },
        }
    }
}

/// `POST /projects`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateProject {
    pub name: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    /// Default `gcj02`.
    #[serde(default)]
    #[schema(value_type = Option<CoordinateSystemName>)]
    pub coordinate_system: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<FenceBody>)]
    pub fence: Option<serde_json::Value>,
}

/// A project.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    pub id: String,
    pub name: String,
    pub code: Option<String>,
    pub address: Option<String>,
    pub coordinate_system: CoordinateSystemName,
    pub fence: Option<FenceBody>,
    pub created_at: i64,
}

/// `GET /projects`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectList {
    pub projects: Vec<ProjectView>,
}

/// `POST /projects/{id}/workers`: person ids (decimal strings).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinWorkers {
    #[serde(deserialize_with = "rollcall_protocol::params::lenient::strings")]
    pub person_ids: Vec<String>,
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

pub fn project_view(p: &Project) -> ProjectView {
    ProjectView {
        id: p.id.to_string(),
        name: p.name.clone(),
        code: p.code.clone(),
        address: p.address.clone(),
        coordinate_system: match p.coordinate_system {
            CoordinateSystem::Gcj02 => CoordinateSystemName::Gcj02,
            CoordinateSystem::Wgs84 => CoordinateSystemName::Wgs84,
        },
        fence: p.fence.as_ref().map(FenceBody::from),
        created_at: p.created_at,
    }
}

/// `gcj02` (default) or `wgs84`, case-insensitive.
fn coordinate_system(value: Option<&str>) -> Result<CoordinateSystem, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(CoordinateSystem::Gcj02),
        Some(v) if v.eq_ignore_ascii_case("gcj02") => Ok(CoordinateSystem::Gcj02),
        Some(v) if v.eq_ignore_ascii_case("wgs84") => Ok(CoordinateSystem::Wgs84),
        Some(v) => Err(ApiError::invalid_field(
            "invalid_coordinate_system",
            "coordinateSystem",
            format!(
                "字段 coordinateSystem 应为 gcj02 或 wgs84，收到 {}",
                echo(v)
            ),
        )),
    }
}

/// A fence from its JSON (absent or `null`: none), validated.
fn fence(value: Option<serde_json::Value>) -> Result<Option<Fence>, ApiError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let body: FenceBody = serde_json::from_value(value).map_err(|_| {
        ApiError::invalid_field(
            "invalid_fence",
            "fence",
            "字段 fence 格式错误：应为 {center:{longitude,latitude}, radiusMeters} 或 {polygon:[[经度,纬度],…]}",
        )
    })?;
    let fence = Fence::from(body);
    fence.validate().map_err(|e| {
        ApiError::invalid_field("invalid_fence", "fence", format!("字段 fence：{e}"))
    })?;
    Ok(Some(fence))
}

/// A project the caller may see (404 otherwise, without revealing whether it exists).
pub async fn project_or_404(app: &App, caller: &Caller, raw: &str) -> Result<Project, ApiError> {
    let id = path_id("项目", raw)?;
    caller.require_project(id)?;
    app.store
        .project(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("项目 {id}")))
}

/// Create a project.
#[utoipa::path(
    post,
    operation_id = "createProject",
    path = "/api/v1/projects",
    tag = "projects",
    request_body = CreateProject,
    responses(
        (status = 201, description = "Created", body = ProjectView),
        (status = 422, description = "A bad field; a fence that breaks a rule names it", body = super::openapi::ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProject>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    caller.require_admin()?;
    let project = Project {
        id: app.ids.next(),
        name: required_text("name", &body.name, 100)?,
        code: optional_text("code", body.code.as_deref(), 64)?,
        address: optional_text("address", body.address.as_deref(), 200)?,
        coordinate_system: coordinate_system(body.coordinate_system.as_deref())?,
        fence: fence(body.fence)?,
        created_at: now_ms(),
    };
    app.store.create_project(&project).await?;
    tracing::info!(project = project.id, "project created");
    Ok((StatusCode::CREATED, Json(project_view(&project))))
}

/// List projects.
#[utoipa::path(
    get,
    operation_id = "listProjects",
    path = "/api/v1/projects",
    tag = "projects",
    responses((status = 200, description = "OK", body = ProjectList))
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<ProjectList>, ApiError> {
    let projects = app.store.projects().await?;
    Ok(Json(ProjectList {
        projects: projects
            .iter()
            .filter(|p| caller.0.sees_project(p.id))
            .map(project_view)
            .collect(),
    }))
}

/// One project.
#[utoipa::path(
    get,
    operation_id = "getProject",
    path = "/api/v1/projects/{id}",
    tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "OK", body = ProjectView),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    )
)]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(project_view(
        &project_or_404(&app, &caller, &id).await?,
    )))
}

/// Workers join the project; every device of the project gets a T_UPDATE_DEVICE_PERSON,
/// pushed at once to connected devices.
#[utoipa::path(
    post,
    operation_id = "joinProject",
    path = "/api/v1/projects/{id}/workers",
    tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    request_body = JoinWorkers,
    responses(
        (status = 200, description = "OK", body = Joined),
        (status = 404, description = "Unknown project", body = super::openapi::ErrorBody),
        (status = 422, description = "Empty or malformed list, or unknown person ids (`unknown_person`, listed in `personIds`)", body = super::openapi::ErrorBody),
    )
)]
pub async fn join(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<JoinWorkers>,
) -> Result<Json<Joined>, ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    if body.person_ids.is_empty() {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "personIds",
            "字段 personIds 不能为空",
        ));
    }
    if body.person_ids.len() > MAX_JOIN {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "personIds",
            format!("字段 personIds 一次最多 {MAX_JOIN} 人"),
        ));
    }
    let mut ids = Vec::with_capacity(body.person_ids.len());
    for raw in &body.person_ids {
        let id = parse_id("personIds", raw)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let known = app.store.workers_by_ids(&ids).await?;
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
    Ok(Json(Joined {
        project_id: project.id.to_string(),
        person_ids: ids.iter().map(i64::to_string).collect(),
    }))
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
        (status = 404, description = "Unknown project, or the worker is not active in it", body = super::openapi::ErrorBody),
    )
)]
pub async fn leave(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, person_id)): Path<(String, String)>,
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
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    )
)]
pub async fn roster(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
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
        (status = 404, description = "Unknown project or not a member", body = super::openapi::ErrorBody),
        (status = 422, description = "`unknown_team`", body = super::openapi::ErrorBody),
    )
)]
pub async fn update_member(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, person_id)): Path<(String, String)>,
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

/// `POST /projects/{id}/teams`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTeam {
    pub name: String,
    /// The team leader (班组长), free text.
    #[serde(default)]
    pub leader: Option<String>,
}

/// A team (班组).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamView {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub leader: Option<String>,
    pub created_at: i64,
}

/// `GET /projects/{id}/teams`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamList {
    pub teams: Vec<TeamView>,
}

fn team_view(t: &Team) -> TeamView {
    TeamView {
        id: t.id.to_string(),
        project_id: t.project_id.to_string(),
        name: t.name.clone(),
        leader: t.leader.clone(),
        created_at: t.created_at,
    }
}

/// Creates a team in the project.
#[utoipa::path(
    post,
    operation_id = "createTeam",
    path = "/api/v1/projects/{id}/teams",
    tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    request_body = CreateTeam,
    responses(
        (status = 201, description = "Created", body = TeamView),
        (status = 409, description = "`team_exists`", body = super::openapi::ErrorBody),
    )
)]
pub async fn create_team(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateTeam>,
) -> Result<(StatusCode, Json<TeamView>), ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let team = Team {
        id: app.ids.next(),
        project_id: project.id,
        name: required_text("name", &body.name, 64)?,
        leader: optional_text("leader", body.leader.as_deref(), 64)?,
        created_at: now_ms(),
    };
    app.store.create_team(&team).await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::Conflict {
            code: "team_exists",
            message: format!("项目中已有名为 {} 的班组", team.name),
            extra: serde_json::Map::new(),
        },
        e => e.into(),
    })?;
    Ok((StatusCode::CREATED, Json(team_view(&team))))
}

/// The project's teams.
#[utoipa::path(
    get,
    operation_id = "listTeams",
    path = "/api/v1/projects/{id}/teams",
    tag = "projects",
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, description = "OK", body = TeamList))
)]
pub async fn teams(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TeamList>, ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let teams = app.store.teams(project.id).await?;
    Ok(Json(TeamList {
        teams: teams.iter().map(team_view).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinate_systems() {
        assert_eq!(coordinate_system(None).unwrap(), CoordinateSystem::Gcj02);
        assert_eq!(
            coordinate_system(Some("")).unwrap(),
            CoordinateSystem::Gcj02
        );
        assert_eq!(
            coordinate_system(Some("WGS84")).unwrap(),
            CoordinateSystem::Wgs84
        );
        assert!(coordinate_system(Some("bd09")).is_err());
    }

    #[test]
    fn fences_round_trip_and_validate() {
        let circle = serde_json::json!({"center": {"longitude": 120.1, "latitude": 30.2}, "radiusMeters": 500});
        let f = fence(Some(circle.clone())).unwrap().unwrap();
        assert_eq!(serde_json::to_value(FenceBody::from(&f)).unwrap(), {
            let mut c = circle;
            c["radiusMeters"] = serde_json::json!(500.0);
            c
        });
        let square = serde_json::json!({"polygon": [[120.0, 30.0], [120.1, 30.0], [120.1, 30.1], [120.0, 30.1]]});
        let f = fence(Some(square.clone())).unwrap().unwrap();
        assert_eq!(serde_json::to_value(FenceBody::from(&f)).unwrap(), square);
        assert_eq!(fence(None).unwrap(), None);
        assert_eq!(fence(Some(serde_json::Value::Null)).unwrap(), None);

        let bad_radius = serde_json::json!({"center": {"longitude": 120.1, "latitude": 30.2}, "radiusMeters": 0});
        let err = fence(Some(bad_radius)).unwrap_err().to_string();
        assert!(err.contains("半径"), "{err}");
        let line = serde_json::json!({"polygon": [[120.0, 30.0], [120.1, 30.0], [120.2, 30.0]]});
        assert!(fence(Some(line)).unwrap_err().to_string().contains("共线"));
        let shape = serde_json::json!({"square": 1});
        assert!(fence(Some(shape)).unwrap_err().to_string().contains("格式"));
    }
}
