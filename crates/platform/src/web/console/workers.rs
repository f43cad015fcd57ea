//! Workers: the list (ID-card numbers masked; project managers see only the workers of
//! their projects), a worker's page (face photo by signed URL, projects, recent attendance)
//! and the enrolment form with a photo upload.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use super::error::ConsoleError;
use super::page::{Ctx, Nav, datetime, direction_label, flag_label, method_label, render};
use crate::accounts::Scope;
use crate::runtime::util::now_ms;
use crate::services;
use crate::services::workers::{EnrolError, Enrolment};
use crate::state::{App, AppState};
use crate::store::AttendanceQuery;
use rollcall_rules::idcard;

/// Workers per page of the list.
const PAGE: u32 = 50;
/// Records on a worker's page.
const RECENT: u32 = 20;

pub fn routes(max_photo_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/console/workers", get(list))
        .route(
            "/console/workers/new",
            get(new_form)
                .post(enrol)
                // The photo plus the text fields; every other form keeps axum's 2 MB.
                .layer(DefaultBodyLimit::max(
                    max_photo_bytes.saturating_add(64 * 1024),
                )),
        )
        .route("/console/workers/{id}", get(show))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    after: Option<String>,
}

struct WorkerRow {
    person_id: i64,
    name: String,
    idcard: String,
    gender: String,
    phone: String,
    projects: String,
    created_at: String,
}

#[derive(Template)]
#[template(path = "console/workers.html")]
struct ListPage {
    nav: Nav,
    workers: Vec<WorkerRow>,
    next: Option<i64>,
    first_page: bool,
}

/// The memberships of a worker visible to this user, as project names.
async fn visible_projects(
    app: &App,
    ctx: &Ctx,
    person_id: i64,
    names: &HashMap<i64, String>,
) -> Result<String, ConsoleError> {
    let members = services::scope::memberships(app, &ctx.principal, person_id).await?;
    let shown = members
        .iter()
        .map(|m| {
            let name = names
                .get(&m.project_id)
                .cloned()
                .unwrap_or_else(|| m.project_id.to_string());
            if m.status == "active" {
                name
            } else {
                format!("{name}（已退场）")
            }
        })
        .collect::<Vec<_>>()
        .join("、");
    Ok(shown)
}

pub async fn project_names(app: &App) -> Result<HashMap<i64, String>, ConsoleError> {
    Ok(app
        .store
        .projects()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

/// `GET /console/workers`: a page in person-id order.
pub async fn list(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ListQuery>,
) -> Result<Html<String>, ConsoleError> {
    let after = q
        .after
        .as_deref()
        .and_then(|a| a.trim().parse::<i64>().ok());
    let mut rows = match ctx.principal.scope() {
        Scope::All => app.store.workers(after, PAGE + 1).await?,
        Scope::Projects(ids) => app.store.workers_in_projects(ids, after, PAGE + 1).await?,
    };
    let next = if rows.len() > PAGE as usize {
        rows.truncate(PAGE as usize);
        rows.last().map(|w| w.person_id)
    } else {
        None
    };
    let names = project_names(&app).await?;
    let mut out = Vec::with_capacity(rows.len());
    for w in &rows {
        let projects = visible_projects(&app, &ctx, w.person_id, &names).await?;
        out.push(WorkerRow {
            person_id: w.person_id,
            name: w.name.clone(),
            idcard: idcard::mask(&w.idcard_no),
            gender: w.gender.clone().unwrap_or_default(),
            phone: w.phone.clone().unwrap_or_default(),
            projects,
            created_at: datetime(w.created_at),
        });
    }
    ctx.audit(
        &app,
        "查看工人列表",
        "/console/workers",
        Some(format!("{} 人，起始 {:?}", out.len(), after)),
    )
    .await;
    render(&ListPage {
        nav: ctx.nav("workers"),
        workers: out,
        next,
        first_page: after.is_none(),
    })
}

struct MembershipRow {
    project: String,
    project_id: i64,
    status: String,
    team: String,
    trade: String,
    joined_at: String,
    exited_at: String,
}

struct RecordRow {
    time: String,
    sn: String,
    direction: &'static str,
    method: &'static str,
    flags: Vec<String>,
    photo_url: Option<String>,
}

#[derive(Template)]
#[template(path = "console/worker.html")]
struct WorkerPage {
    nav: Nav,
    person_id: i64,
    name: String,
    idcard: String,
    gender: String,
    nation: String,
    address: String,
    phone: String,
    face_url: Option<String>,
    created_at: String,
    memberships: Vec<MembershipRow>,
    records: Vec<RecordRow>,
}

/// A worker this user may see (`services::scope::worker`), or 404.
pub async fn visible_worker(
    app: &App,
    ctx: &Ctx,
    raw_id: &str,
) -> Result<services::scope::VisibleWorker, ConsoleError> {
    let id = raw_id
        .trim()
        .parse::<i64>()
        .map_err(|_| ConsoleError::NotFound)?;
    services::scope::worker(app, &ctx.principal, id)
        .await?
        .ok_or(ConsoleError::NotFound)
}

/// `GET /console/workers/{id}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Html<String>, ConsoleError> {
    let services::scope::VisibleWorker {
        worker: w,
        memberships: visible,
    } = visible_worker(&app, &ctx, &id).await?;
    let now = now_ms();
    let names = project_names(&app).await?;
    let mut team_names: HashMap<i64, String> = HashMap::new();
    let mut memberships = Vec::new();
    for m in visible {
        let team = match m.team_id {
            Some(t) => match team_names.get(&t) {
                Some(n) => n.clone(),
                None => {
                    let n = app.store.team(t).await?.map(|t| t.name).unwrap_or_default();
                    team_names.insert(t, n.clone());
                    n
                }
            },
            None => String::new(),
        };
        memberships.push(MembershipRow {
            project: names
                .get(&m.project_id)
                .cloned()
                .unwrap_or_else(|| m.project_id.to_string()),
            project_id: m.project_id,
            status: if m.status == "active" {
                "在场"
            } else {
                "已退场"
            }
            .to_owned()
                + if m.blacklisted { "（黑名单）" } else { "" },
            team,
            trade: m.trade.unwrap_or_default(),
            joined_at: datetime(m.joined_at),
            exited_at: m.exited_at.map(datetime).unwrap_or_default(),
        });
    }
    let records = app
        .store
        .attendance(&AttendanceQuery {
            person_id: Some(w.person_id.to_string()),
            limit: RECENT,
            ..AttendanceQuery::default()
        })
        .await?
        .into_iter()
        .filter(|r| r.project_id.is_some_and(|p| ctx.principal.sees_project(p)))
        .map(|r| RecordRow {
            time: datetime(r.record_time),
            sn: r.sn,
            direction: direction_label(r.direction),
            method: method_label(r.r#type),
            flags: r.flags.iter().map(|f| flag_label(f)).collect(),
            photo_url: r.photo_key.as_deref().map(|k| app.file_url(k, now)),
        })
        .collect();
    ctx.audit(
        &app,
        "查看工人",
        &format!("/console/workers/{}", w.person_id),
        None,
    )
    .await;
    render(&WorkerPage {
        nav: ctx.nav("workers"),
        person_id: w.person_id,
        idcard: idcard::mask(&w.idcard_no),
        name: w.name,
        gender: w.gender.unwrap_or_default(),
        nation: w.nation.unwrap_or_default(),
        address: w.address.unwrap_or_default(),
        phone: w.phone.unwrap_or_default(),
        face_url: w.face_key.as_deref().map(|k| app.file_url(k, now)),
        created_at: datetime(w.created_at),
        memberships,
        records,
    })
}

/// The enrolment form's text fields, as typed (shown again after an error).
#[derive(Debug, Default)]
pub struct EnrolForm {
    csrf: String,
    idcard_no: String,
    name: String,
    gender: String,
    nation: String,
    address: String,
    phone: String,
    project_id: String,
    team_id: String,
    trade: String,
}

struct TeamChoice {
    id: String,
    label: String,
}

struct ProjectChoice {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "console/worker_new.html")]
struct EnrolPage {
    nav: Nav,
    form: EnrolForm,
    projects: Vec<ProjectChoice>,
    teams: Vec<TeamChoice>,
    /// (form field, message); field `""` is a message for the whole form.
    errors: Vec<(&'static str, String)>,
    existing: Option<i64>,
}

impl EnrolPage {
    fn error(&self, field: &str) -> Option<&str> {
        super::page::field_error(&self.errors, field)
    }
}

async fn enrol_page(
    app: &App,
    ctx: &Ctx,
    form: EnrolForm,
    errors: Vec<(&'static str, String)>,
    existing: Option<i64>,
) -> Result<EnrolPage, ConsoleError> {
    let projects = ctx.projects(app).await?;
    let mut teams = Vec::new();
    for p in &projects {
        for t in app.store.teams(p.id).await? {
            teams.push(TeamChoice {
                id: t.id.to_string(),
                label: format!("{} / {}", p.name, t.name),
            });
        }
    }
    Ok(EnrolPage {
        nav: ctx.nav("workers"),
        form,
        projects: projects
            .into_iter()
            .map(|p| ProjectChoice {
                id: p.id.to_string(),
                name: p.name,
            })
            .collect(),
        teams,
        errors,
        existing,
    })
}

/// `GET /console/workers/new`.
pub async fn new_form(State(app): State<AppState>, ctx: Ctx) -> Result<Html<String>, ConsoleError> {
    if !ctx.principal.can_write() {
        return Err(ConsoleError::Forbidden);
    }
    render(&enrol_page(&app, &ctx, EnrolForm::default(), Vec::new(), None).await?)
}

/// The form field a service error names (the service names API fields).
fn form_field(field: &str) -> &'static str {
    match field {
        "idcardNo" | "idcard_no" => "idcard_no",
        "name" => "name",
        "gender" => "gender",
        "nation" => "nation",
        "address" => "address",
        "phone" => "phone",
        "facePhoto" | "photo" => "photo",
        "projectId" | "project_id" => "project_id",
        "teamId" | "team_id" => "team_id",
        "trade" => "trade",
        _ => "",
    }
}

fn optional(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// `POST /console/workers/new` (multipart, with the face photo): enrols the worker through
/// `services::workers::enrol` — which validates, stores the photo and joins the project —
/// and shows their page.
pub async fn enrol(
    State(app): State<AppState>,
    ctx: Ctx,
    mut multipart: Multipart,
) -> Result<Response, ConsoleError> {
    let mut form = EnrolForm::default();
    let mut photo = Vec::new();
    let bad_upload = |e: axum::extract::multipart::MultipartError| {
        tracing::info!(error = %e, "a bad enrolment upload");
        ConsoleError::BadRequest("上传失败：表单数据无效或照片过大".to_owned())
    };
    while let Some(field) = multipart.next_field().await.map_err(bad_upload)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "photo" {
            photo = field.bytes().await.map_err(bad_upload)?.to_vec();
            continue;
        }
        let value = field.text().await.map_err(bad_upload)?;
        let slot = match name.as_str() {
            "csrf" => &mut form.csrf,
            "idcard_no" => &mut form.idcard_no,
            "name" => &mut form.name,
            "gender" => &mut form.gender,
            "nation" => &mut form.nation,
            "address" => &mut form.address,
            "phone" => &mut form.phone,
            "project_id" => &mut form.project_id,
            "team_id" => &mut form.team_id,
            "trade" => &mut form.trade,
            _ => continue,
        };
        *slot = value;
    }
    ctx.writable(&form.csrf)?;
    let mut errors: Vec<(&'static str, String)> = Vec::new();
    let project_id = match form.project_id.trim() {
        "" => None,
        p => match p.parse::<i64>() {
            Ok(id) if ctx.principal.sees_project(id) => Some(id),
            _ => {
                errors.push(("project_id", "项目不存在".to_owned()));
                None
            }
        },
    };
    let team_id = match form.team_id.trim() {
        "" => None,
        t => match t.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(("team_id", "班组不存在".to_owned()));
                None
            }
        },
    };
    if photo.is_empty() {
        errors.push(("photo", "请选择人脸照片".to_owned()));
    }
    if !errors.is_empty() {
        let page = enrol_page(&app, &ctx, form, errors, None).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    }
    let enrolment = Enrolment {
        idcard_no: form.idcard_no.trim().to_owned(),
        name: form.name.trim().to_owned(),
        gender: optional(&form.gender),
        nation: optional(&form.nation),
        address: optional(&form.address),
        phone: optional(&form.phone),
        photo,
        project_id,
        team_id,
        trade: optional(&form.trade),
    };
    match services::workers::enrol(&app, &ctx.principal, enrolment).await {
        Ok(worker) => {
            ctx.audit(
                &app,
                "登记工人",
                &format!("/console/workers/{}", worker.person_id),
                Some(format!(
                    "{} {} 项目 {:?}",
                    worker.name,
                    idcard::mask(&worker.idcard_no),
                    project_id
                )),
            )
            .await;
            Ok(Redirect::to(&format!("/console/workers/{}", worker.person_id)).into_response())
        }
        Err(EnrolError::Field(f)) => {
            let page = enrol_page(
                &app,
                &ctx,
                form,
                vec![(form_field(&f.field), f.message)],
                None,
            )
            .await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response())
        }
        Err(EnrolError::Exists { person_id }) => {
            let page = enrol_page(
                &app,
                &ctx,
                form,
                vec![("idcard_no", "该身份证号的工人已登记".to_owned())],
                person_id,
            )
            .await?;
            Ok((StatusCode::CONFLICT, render(&page)?).into_response())
        }
        Err(EnrolError::Forbidden) => Err(ConsoleError::Forbidden),
        Err(e) => Err(ConsoleError::Internal(format!("enrolment: {e}"))),
    }
}
