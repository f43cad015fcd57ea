//! Projects: the list of the user's projects (roster size, devices, teams) and a project's
//! page with its teams (班组) and roster — who is on site, in which team, with which trade.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;

use super::error::ConsoleError;
use super::page::{Ctx, Nav, datetime, render};
use crate::state::AppState;
use rollcall_rules::idcard;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/projects", get(list))
        .route("/console/projects/{id}", get(show))
}

struct ProjectRow {
    id: i64,
    name: String,
    code: String,
    address: String,
    roster: usize,
    devices: usize,
    teams: usize,
}

#[derive(Template)]
#[template(path = "console/projects.html")]
struct ListPage {
    nav: Nav,
    projects: Vec<ProjectRow>,
}

/// `GET /console/projects`.
pub async fn list(State(app): State<AppState>, ctx: Ctx) -> Result<Html<String>, ConsoleError> {
    let devices = app.store.devices(None).await?;
    let mut rows = Vec::new();
    for p in ctx.projects(&app).await? {
        rows.push(ProjectRow {
            roster: app.store.roster(p.id).await?.len(),
            devices: devices
                .iter()
                .filter(|d| d.project_id == Some(p.id))
                .count(),
            teams: app.store.teams(p.id).await?.len(),
            id: p.id,
            name: p.name,
            code: p.code.unwrap_or_default(),
            address: p.address.unwrap_or_default(),
        });
    }
    render(&ListPage {
        nav: ctx.nav("projects"),
        projects: rows,
    })
}

struct TeamRow {
    name: String,
    leader: String,
    members: usize,
}

struct MemberRow {
    person_id: i64,
    name: String,
    idcard: String,
    team: String,
    trade: String,
    active: bool,
    blacklisted: bool,
    joined_at: String,
    exited_at: String,
}

#[derive(Template)]
#[template(path = "console/project.html")]
struct ProjectPage {
    nav: Nav,
    id: i64,
    name: String,
    code: String,
    address: String,
    teams: Vec<TeamRow>,
    members: Vec<MemberRow>,
    active: usize,
}

/// `GET /console/projects/{id}`: 404 outside the user's projects.
pub async fn show(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Html<String>, ConsoleError> {
    let id = id
        .trim()
        .parse::<i64>()
        .map_err(|_| ConsoleError::NotFound)?;
    let project = crate::services::scope::project(&app, &ctx.principal, id)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let teams = app.store.teams(id).await?;
    let members = app.store.members(id).await?;
    let ids: Vec<i64> = members.iter().map(|m| m.person_id).collect();
    let workers: HashMap<i64, (String, String)> = app
        .store
        .workers_by_ids(&ids)
        .await?
        .into_iter()
        .map(|w| (w.person_id, (w.name, idcard::mask(&w.idcard_no))))
        .collect();
    let team_names: HashMap<i64, &str> = teams.iter().map(|t| (t.id, t.name.as_str())).collect();
    let mut rows: Vec<MemberRow> = members
        .iter()
        .map(|m| {
            let (name, idcard) = workers.get(&m.person_id).cloned().unwrap_or_default();
            MemberRow {
                person_id: m.person_id,
                name,
                idcard,
                team: m
                    .team_id
                    .and_then(|t| team_names.get(&t).map(|n| (*n).to_owned()))
                    .unwrap_or_default(),
                trade: m.trade.clone().unwrap_or_default(),
                active: m.status == "active",
                blacklisted: m.blacklisted,
                joined_at: datetime(m.joined_at),
                exited_at: m.exited_at.map(datetime).unwrap_or_default(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.active
            .cmp(&a.active)
            .then(a.team.cmp(&b.team))
            .then(a.name.cmp(&b.name))
    });
    let team_rows = teams
        .iter()
        .map(|t| TeamRow {
            name: t.name.clone(),
            leader: t.leader.clone().unwrap_or_default(),
            members: members
                .iter()
                .filter(|m| m.team_id == Some(t.id) && m.status == "active")
                .count(),
        })
        .collect();
    ctx.audit(
        &app,
        "查看项目花名册",
        &format!("/console/projects/{id}"),
        Some(format!("{} 人", rows.len())),
    )
    .await;
    render(&ProjectPage {
        nav: ctx.nav("projects"),
        id,
        active: rows.iter().filter(|r| r.active).count(),
        name: project.name,
        code: project.code.unwrap_or_default(),
        address: project.address.unwrap_or_default(),
        teams: team_rows,
        members: rows,
    })
}
