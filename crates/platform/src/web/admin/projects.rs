//! `/api/v1/projects`: construction projects (sites) with their coordinate system and
//! electronic fence (ZJ-SIGNIN-08). Fences are checked with [`Fence::validate`] when set.
//! Rosters are in `members`, teams in `teams`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Caller, project_or_404};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, echo, optional_text, required_text};
use crate::runtime::util::now_ms;
use crate::services;
use crate::state::AppState;
use crate::store::Project;
use rollcall_rules::geo::{CoordinateSystem, Fence, Point};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects", post(create).get(list))
        .route("/projects/{id}", get(show))
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

/// Create a project.
#[utoipa::path(
    post,
    operation_id = "createProject",
    path = "/api/v1/projects",
    tag = "projects",
    request_body = CreateProject,
    responses(
        (status = 201, description = "Created", body = ProjectView),
        (status = 422, description = "A bad field; a fence that breaks a rule names it", body = super::error::ErrorBody),
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
    let projects = services::scope::projects(&app, &caller.0).await?;
    Ok(Json(ProjectList {
        projects: projects.iter().map(project_view).collect(),
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
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ProjectView>, ApiError> {
    Ok(Json(project_view(
        &project_or_404(&app, &caller, &id).await?,
    )))
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
