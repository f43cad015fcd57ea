//! Administration: console users (create with a role and projects, disable, enable) for
//! administrators, and the audit log for administrators and auditors.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::error::ConsoleError;
use super::page::{Ctx, DAY_MS, Nav, datetime, day_start, enc, parse_date, render};
use crate::accounts::Role;
use crate::runtime::password;
use crate::runtime::util::now_ms;
use crate::state::{App, AppState};
use crate::store::StoreError;
use crate::store::console::{AuditQuery, User, UserPatch};

/// Audit-log lines per page.
const AUDIT_PAGE: u32 = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/users", get(list).post(create))
        .route("/console/users/{id}/disable", post(disable))
        .route("/console/users/{id}/enable", post(enable))
        .route("/console/audit", get(audit_log))
}

struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    role: &'static str,
    projects: String,
    disabled: bool,
    created_at: String,
    is_self: bool,
}

struct ProjectChoice {
    id: i64,
    name: String,
    checked: bool,
}

struct RoleChoice {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    /// Checked project ids (`projects=1&projects=2` — read by hand, see [`create`]).
    #[serde(skip)]
    projects: Vec<i64>,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<UserRow>,
    projects: Vec<ProjectChoice>,
    roles: Vec<RoleChoice>,
    form_username: String,
    form_display_name: String,
    errors: Vec<String>,
    created: Option<String>,
}

async fn users_page(
    app: &App,
    ctx: &Ctx,
    form: &NewUserForm,
    errors: Vec<String>,
    created: Option<String>,
) -> Result<UsersPage, ConsoleError> {
    let names: HashMap<i64, String> = app
        .store
        .projects()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    let mut users = Vec::new();
    for u in app.store.users().await? {
        let projects = app
            .store
            .user_projects(u.id)
            .await?
            .iter()
            .map(|p| names.get(p).cloned().unwrap_or_else(|| p.to_string()))
            .collect::<Vec<_>>()
            .join("、");
        users.push(UserRow {
            id: u.id,
            is_self: ctx.principal.user_id() == Some(u.id),
            username: u.username,
            display_name: u.display_name,
            role: u.role.label(),
            projects,
            disabled: u.disabled,
            created_at: datetime(u.created_at),
        });
    }
    let mut projects: Vec<ProjectChoice> = names
        .into_iter()
        .map(|(id, name)| ProjectChoice {
            id,
            name,
            checked: form.projects.contains(&id),
        })
        .collect();
    projects.sort_by(|a, b| a.name.cmp(&b.name));
    let role = Role::parse(&form.role).unwrap_or(Role::ProjectManager);
    Ok(UsersPage {
        nav: ctx.nav("users"),
        users,
        projects,
        roles: Role::ALL
            .into_iter()
            .map(|r| RoleChoice {
                value: r.as_str(),
                label: r.label(),
                selected: r == role,
            })
            .collect(),
        form_username: form.username.clone(),
        form_display_name: form.display_name.clone(),
        errors,
        created,
    })
}

#[derive(Debug, Deserialize)]
pub struct CreatedQuery {
    #[serde(default)]
    created: Option<String>,
}

/// `GET /console/users` (administrators).
pub async fn list(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<CreatedQuery>,
) -> Result<Html<String>, ConsoleError> {
    ctx.require_admin()?;
    let created = q.created.map(|c| c.chars().take(64).collect());
    render(&users_page(&app, &ctx, &NewUserForm::default(), Vec::new(), created).await?)
}

/// `POST /console/users`: a new user with a role (and projects for a project manager).
/// The body is read as pairs because a form repeats `projects` once per checked box.
pub async fn create(
    State(app): State<AppState>,
    ctx: Ctx,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let mut form = NewUserForm::default();
    let mut bad_project = false;
    for (k, v) in pairs {
        match k.as_str() {
            "csrf" => form.csrf = v,
            "username" => form.username = v,
            "display_name" => form.display_name = v,
            "password" => form.password = v,
            "role" => form.role = v,
            "projects" => match v.trim().parse::<i64>() {
                Ok(id) => form.projects.push(id),
                Err(_) => bad_project = true,
            },
            _ => {}
        }
    }
    ctx.writable(&form.csrf)?;
    ctx.require_admin()?;
    let mut errors = Vec::new();
    let username = form.username.trim().to_owned();
    if username.is_empty()
        || username.chars().count() > 64
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        errors.push("用户名不能为空、不能含空白，最多 64 个字符".to_owned());
    }
    let display_name = match form.display_name.trim() {
        "" => username.clone(),
        d => d.to_owned(),
    };
    if display_name.chars().count() > 64 {
        errors.push("姓名最多 64 个字符".to_owned());
    }
    if let Err(e) = password::check_new(&form.password) {
        errors.push(format!("密码：{e}"));
    }
    let role = Role::parse(form.role.trim());
    if role.is_none() {
        errors.push("请选择角色".to_owned());
    }
    if bad_project {
        errors.push("项目无效".to_owned());
    }
    for p in &form.projects {
        if app.store.project(*p).await?.is_none() {
            errors.push(format!("项目 {p} 不存在"));
        }
    }
    if role == Some(Role::ProjectManager) && form.projects.is_empty() {
        errors.push("项目管理员至少需要一个项目".to_owned());
    }
    let Some(role) = role.filter(|_| errors.is_empty()) else {
        let page = users_page(&app, &ctx, &form, errors, None).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    let user = User {
        id: app.ids.next(),
        username: username.clone(),
        display_name,
        password_hash: app.hasher.hash(&form.password).await?,
        role,
        disabled: false,
        created_at: now_ms(),
    };
    match app.store.create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            let page =
                users_page(&app, &ctx, &form, vec!["用户名已被使用".to_owned()], None).await?;
            return Ok((StatusCode::CONFLICT, render(&page)?).into_response());
        }
        Err(e) => return Err(e.into()),
    }
    let projects = if role == Role::ProjectManager {
        form.projects.clone()
    } else {
        Vec::new()
    };
    app.store.set_user_projects(user.id, &projects).await?;
    ctx.audit(
        &app,
        "创建用户",
        &format!("/console/users/{}", user.id),
        Some(format!(
            "{} 角色 {} 项目 {:?}",
            username,
            role.as_str(),
            projects
        )),
    )
    .await;
    Ok(Redirect::to(&format!("/console/users?created={}", enc(&username))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn set_disabled(
    app: &App,
    ctx: &Ctx,
    id: &str,
    csrf: &str,
    disabled: bool,
) -> Result<Response, ConsoleError> {
    ctx.writable(csrf)?;
    ctx.require_admin()?;
    let id = id
        .trim()
        .parse::<i64>()
        .map_err(|_| ConsoleError::NotFound)?;
    if ctx.principal.user_id() == Some(id) {
        return Err(ConsoleError::BadRequest("不能停用自己的账号".to_owned()));
    }
    let user = app.store.user(id).await?.ok_or(ConsoleError::NotFound)?;
    app.store
        .update_user(
            id,
            &UserPatch {
                disabled: Some(disabled),
                ..UserPatch::default()
            },
        )
        .await?;
    if disabled {
        // A disabled user's open sessions end now, not when they expire.
        app.store.delete_user_sessions(id).await?;
    }
    ctx.audit(
        app,
        if disabled {
            "停用用户"
        } else {
            "启用用户"
        },
        &format!("/console/users/{id}"),
        Some(user.username),
    )
    .await;
    Ok(Redirect::to("/console/users").into_response())
}

/// `POST /console/users/{id}/disable`.
pub async fn disable(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    set_disabled(&app, &ctx, &id, &f.csrf, true).await
}

/// `POST /console/users/{id}/enable`.
pub async fn enable(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    set_disabled(&app, &ctx, &id, &f.csrf, false).await
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditFilters {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    target: String,
    detail: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Nav,
    actor: String,
    date: String,
    entries: Vec<AuditRow>,
    next_href: Option<String>,
    error: Option<String>,
}

/// `GET /console/audit` (administrators and auditors): newest first.
pub async fn audit_log(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(f): Query<AuditFilters>,
) -> Result<Html<String>, ConsoleError> {
    if !ctx.nav("audit").can_audit {
        return Err(ConsoleError::Forbidden);
    }
    let actor = f.actor.as_deref().map(str::trim).unwrap_or("").to_owned();
    let date = f.date.as_deref().map(str::trim).unwrap_or("").to_owned();
    let day = if date.is_empty() {
        None
    } else {
        parse_date(&date)
    };
    let error = (!date.is_empty() && day.is_none()).then(|| "日期格式应为 YYYY-MM-DD".to_owned());
    let before = f
        .before
        .as_deref()
        .and_then(|b| b.trim().parse::<i64>().ok());
    let mut rows = app
        .store
        .audit(&AuditQuery {
            actor: (!actor.is_empty()).then(|| actor.clone()),
            from: day.map(day_start),
            to: day.map(|d| day_start(d) + DAY_MS),
            before_id: before,
            limit: AUDIT_PAGE + 1,
        })
        .await?;
    let next_href = if rows.len() > AUDIT_PAGE as usize {
        rows.truncate(AUDIT_PAGE as usize);
        rows.last().map(|e| {
            format!(
                "/console/audit?actor={}&date={}&before={}",
                enc(&actor),
                enc(&date),
                e.id
            )
        })
    } else {
        None
    };
    render(&AuditPage {
        nav: ctx.nav("audit"),
        entries: rows
            .into_iter()
            .map(|e| AuditRow {
                at: datetime(e.at),
                actor: e.actor,
                action: e.action,
                target: e.target,
                detail: e.detail.unwrap_or_default(),
                ip: e.ip.unwrap_or_default(),
            })
            .collect(),
        actor,
        date,
        next_href,
        error,
    })
}
