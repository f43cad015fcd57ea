//! `/api/v1/projects/{id}/teams`: a project's teams (班组).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Caller, project_or_404};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, optional_text, required_text};
use crate::runtime::util::now_ms;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::console::Team;

pub fn routes() -> Router<AppState> {
    Router::new().route("/projects/{id}/teams", post(create_team).get(teams))
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
        (status = 409, description = "`team_exists`", body = super::error::ErrorBody),
    )
)]
pub async fn create_team(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
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
    ApiPath(id): ApiPath<String>,
) -> Result<Json<TeamList>, ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let teams = app.store.teams(project.id).await?;
    Ok(Json(TeamList {
        teams: teams.iter().map(team_view).collect(),
    }))
}
