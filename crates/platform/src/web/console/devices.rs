//! Devices: the list (online state, heartbeat, counts), a device's page (online history,
//! per-person sync state with the device's error codes, tasks) and the form that registers
//! a gate (or any device) through `services::devices::register`.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use super::error::ConsoleError;
use super::page::{
    Ctx, Nav, apicode_label, datetime, direction_label, enc, kind_label, opt_datetime, render,
    task_state_label,
};
use crate::runtime::util::now_ms;
use crate::services;
use crate::state::{App, AppState};
use crate::store::{Device, DeviceKind, Direction, StoreError};

/// Longest serial number, as on the admin API.
/// History, tasks shown on a device's page.
const HISTORY: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/devices", get(list))
        .route("/console/devices/new", get(new_form).post(create))
        .route("/console/devices/{sn}", get(show))
}

struct DeviceRow {
    sn: String,
    href: String,
    name: String,
    project: String,
    kind: &'static str,
    direction: &'static str,
    online: bool,
    enabled: bool,
    last_heartbeat: String,
    firmware: String,
    persons: String,
    faces: String,
    expected: usize,
}

#[derive(Template)]
#[template(path = "console/devices.html")]
struct ListPage {
    nav: Nav,
    devices: Vec<DeviceRow>,
}

async fn project_names(app: &App) -> Result<HashMap<i64, String>, ConsoleError> {
    Ok(app
        .store
        .projects()
        .await?
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect())
}

fn row(
    app: &App,
    d: &Device,
    names: &HashMap<i64, String>,
    expected: usize,
    now: i64,
) -> DeviceRow {
    DeviceRow {
        href: format!("/console/devices/{}", enc(&d.sn)),
        sn: d.sn.clone(),
        name: d.name.clone().unwrap_or_default(),
        project: d.project_id.map_or_else(
            || "未绑定".to_owned(),
            |p| names.get(&p).cloned().unwrap_or_else(|| p.to_string()),
        ),
        kind: kind_label(d.kind),
        direction: direction_label(d.direction),
        online: services::devices::is_online(app, d, now),
        enabled: d.enabled,
        last_heartbeat: opt_datetime(app.presence.last_heartbeat(&d.sn).max(d.last_heartbeat_at)),
        firmware: d.firmware_version.clone().unwrap_or_default(),
        persons: d
            .person_count
            .map_or_else(|| "—".to_owned(), |n| n.to_string()),
        faces: d
            .face_count
            .map_or_else(|| "—".to_owned(), |n| n.to_string()),
        expected,
    }
}

/// `GET /console/devices`.
pub async fn list(State(app): State<AppState>, ctx: Ctx) -> Result<Html<String>, ConsoleError> {
    let names = project_names(&app).await?;
    let mut devices = services::scope::devices(&app, &ctx.principal, None).await?;
    devices.sort_by(|a, b| a.sn.cmp(&b.sn));
    let mut rosters: HashMap<i64, usize> = HashMap::new();
    let now = now_ms();
    let mut rows = Vec::with_capacity(devices.len());
    for d in &devices {
        let expected = match d.project_id {
            Some(p) => match rosters.get(&p) {
                Some(n) => *n,
                None => {
                    let n = app.store.roster(p).await?.len();
                    rosters.insert(p, n);
                    n
                }
            },
            None => 0,
        };
        rows.push(row(&app, d, &names, expected, now));
    }
    render(&ListPage {
        nav: ctx.nav("devices"),
        devices: rows,
    })
}

struct PresenceRow {
    online: bool,
    at: String,
}

struct SyncRow {
    person_id: i64,
    name: String,
    person_ok: bool,
    person_err: String,
    face_ok: bool,
    face_err: String,
    updated_at: String,
}

struct TaskRow {
    taskid: i64,
    apicode: String,
    state: &'static str,
    failed: bool,
    created_at: String,
    delivered_at: String,
    finished_at: String,
    failures: String,
}

#[derive(Template)]
#[template(path = "console/device.html")]
struct DevicePage {
    nav: Nav,
    device: DeviceRow,
    history: Vec<PresenceRow>,
    sync: Vec<SyncRow>,
    sync_failed: usize,
    tasks: Vec<TaskRow>,
}

/// `GET /console/devices/{sn}`.
pub async fn show(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(sn): Path<String>,
) -> Result<Html<String>, ConsoleError> {
    let device = services::scope::device(&app, &ctx.principal, &sn)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let names = project_names(&app).await?;
    let expected = match device.project_id {
        Some(p) => app.store.roster(p).await?.len(),
        None => 0,
    };
    let now = now_ms();
    let history = app
        .store
        .presence_history(&device.sn, HISTORY)
        .await?
        .into_iter()
        .map(|t| PresenceRow {
            online: t.online,
            at: datetime(t.at),
        })
        .collect();
    let sync_rows = app.store.person_sync(&device.sn).await?;
    let ids: Vec<i64> = sync_rows.iter().map(|s| s.person_id).collect();
    let workers: HashMap<i64, String> = app
        .store
        .workers_by_ids(&ids)
        .await?
        .into_iter()
        .map(|w| (w.person_id, w.name))
        .collect();
    let mut sync: Vec<SyncRow> = sync_rows
        .into_iter()
        .map(|s| SyncRow {
            person_id: s.person_id,
            name: workers.get(&s.person_id).cloned().unwrap_or_default(),
            person_ok: s.person_ok,
            person_err: s.person_err.unwrap_or_default(),
            face_ok: s.face_ok,
            face_err: s.face_err.unwrap_or_default(),
            updated_at: datetime(s.updated_at),
        })
        .collect();
    // Failures first: they are what the manager has to act on.
    sync.sort_by_key(|s| (s.person_ok && s.face_ok, s.person_id));
    let sync_failed = sync.iter().filter(|s| !(s.person_ok && s.face_ok)).count();
    let mut tasks = Vec::new();
    for t in app.store.tasks_of_device(&device.sn, HISTORY).await? {
        let failures = if t.state == crate::store::TaskState::Failed || t.state.is_open() {
            let (persons, faces) = app.store.task_failures(t.taskid).await?;
            persons
                .iter()
                .map(|f| format!("人员 {}：{}", f.person_id, f.err_code))
                .chain(
                    faces
                        .iter()
                        .map(|f| format!("人脸 {}：{}", f.person_id, f.err_code)),
                )
                .collect::<Vec<_>>()
                .join("；")
        } else {
            String::new()
        };
        tasks.push(TaskRow {
            taskid: t.taskid,
            apicode: apicode_label(&t.apicode),
            state: task_state_label(t.state),
            failed: t.state == crate::store::TaskState::Failed,
            created_at: datetime(t.created_at),
            delivered_at: opt_datetime(t.delivered_at),
            finished_at: opt_datetime(t.finished_at),
            failures,
        });
    }
    if !sync.is_empty() {
        ctx.audit(
            &app,
            "查看设备人员同步",
            &format!("/console/devices/{}", device.sn),
            Some(format!("{} 人", sync.len())),
        )
        .await;
    }
    render(&DevicePage {
        nav: ctx.nav("devices"),
        device: row(&app, &device, &names, expected, now),
        history,
        sync,
        sync_failed,
        tasks,
    })
}

/// The form's fields, as typed (an invalid submission is shown again with them).
#[derive(Debug, Default, Deserialize)]
pub struct NewDeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sn: String,
    #[serde(default)]
    vendor_id: String,
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    direction: String,
    #[serde(default)]
    name: String,
}

struct Choice {
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "console/device_new.html")]
struct NewPage {
    nav: Nav,
    form: NewDeviceForm,
    vendors: Vec<Choice>,
    projects: Vec<Choice>,
    kinds: Vec<Choice>,
    directions: Vec<Choice>,
    errors: Vec<(&'static str, String)>,
}

impl NewPage {
    fn error(&self, field: &str) -> Option<&str> {
        super::page::field_error(&self.errors, field)
    }
}

async fn new_page(
    app: &App,
    ctx: &Ctx,
    form: NewDeviceForm,
    errors: Vec<(&'static str, String)>,
) -> Result<NewPage, ConsoleError> {
    let vendors = app
        .store
        .vendors()
        .await?
        .into_iter()
        .map(|v| Choice {
            value: v.id.to_string(),
            label: v.name,
        })
        .collect();
    let projects = ctx
        .projects(app)
        .await?
        .into_iter()
        .map(|p| Choice {
            value: p.id.to_string(),
            label: p.name,
        })
        .collect();
    let kinds = [
        DeviceKind::Gate,
        DeviceKind::Face,
        DeviceKind::Iris,
        DeviceKind::Qr,
        DeviceKind::Mobile,
        DeviceKind::Collector,
    ]
    .into_iter()
    .map(|k| Choice {
        value: k.as_str().to_owned(),
        label: kind_label(k).to_owned(),
    })
    .collect();
    let directions = [Direction::Both, Direction::In, Direction::Out]
        .into_iter()
        .map(|d| Choice {
            value: d.as_str().to_owned(),
            label: direction_label(d).to_owned(),
        })
        .collect();
    Ok(NewPage {
        nav: ctx.nav("devices"),
        form,
        vendors,
        projects,
        kinds,
        directions,
        errors,
    })
}

/// `GET /console/devices/new`.
pub async fn new_form(State(app): State<AppState>, ctx: Ctx) -> Result<Html<String>, ConsoleError> {
    if !ctx.principal.can_write() {
        return Err(ConsoleError::Forbidden);
    }
    let form = NewDeviceForm {
        kind: "gate".into(),
        direction: "both".into(),
        ..NewDeviceForm::default()
    };
    render(&new_page(&app, &ctx, form, Vec::new()).await?)
}

/// The admin API's serial-number rule (`validate::sn`), as a message for the form.
fn check_sn(sn: &str) -> Result<String, String> {
    rollcall_rules::validate::sn(sn).map_err(|e| e.message)
}

/// `POST /console/devices/new`: registers the device; a bound one gets its roster at once.
pub async fn create(
    State(app): State<AppState>,
    ctx: Ctx,
    Form(form): Form<NewDeviceForm>,
) -> Result<Response, ConsoleError> {
    ctx.writable(&form.csrf)?;
    let mut errors: Vec<(&'static str, String)> = Vec::new();
    let sn = check_sn(&form.sn).map_err(|e| errors.push(("sn", e))).ok();
    let kind = DeviceKind::parse(form.kind.trim());
    if kind.is_none() {
        errors.push(("kind", "请选择设备类型".into()));
    }
    let direction = match form.direction.trim() {
        "" => Some(Direction::Both),
        d => Direction::parse(d),
    };
    if direction.is_none() {
        errors.push(("direction", "请选择通行方向".into()));
    }
    let name = form.name.trim();
    if name.chars().count() > 100 {
        errors.push(("name", "名称过长，最多 100 个字符".into()));
    }
    let vendor_id = form.vendor_id.trim().parse::<i64>().ok();
    let vendor = match vendor_id {
        Some(id) => app.store.vendor(id).await?,
        None => None,
    };
    if vendor.is_none() {
        errors.push(("vendor_id", "请选择厂商".into()));
    }
    let project_id = match form.project_id.trim() {
        "" => None,
        p => match p.parse::<i64>() {
            Ok(id)
                if services::scope::project(&app, &ctx.principal, id)
                    .await?
                    .is_some() =>
            {
                Some(id)
            }
            _ => {
                errors.push(("project_id", "项目不存在".into()));
                None
            }
        },
    };
    // Project managers register devices only into their own projects (an unbound device
    // would be outside their scope at once).
    if project_id.is_none()
        && !ctx.principal.is_admin()
        && !errors.iter().any(|e| e.0 == "project_id")
    {
        errors.push(("project_id", "请选择项目".into()));
    }
    let (Some(sn), Some(kind), Some(direction), Some(vendor), true) =
        (sn, kind, direction, vendor, errors.is_empty())
    else {
        let page = new_page(&app, &ctx, form, errors).await?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, render(&page)?).into_response());
    };
    if app.store.device(&sn).await?.is_some() {
        return taken(&app, &ctx, form).await;
    }
    let mut device = services::devices::unbound(&sn, vendor.id);
    device.project_id = project_id;
    device.kind = kind;
    device.direction = direction;
    device.name = (!name.is_empty()).then(|| name.to_owned());
    match services::devices::register(&app, device).await {
        Ok(_) => {}
        Err(StoreError::Conflict(_)) => return taken(&app, &ctx, form).await,
        Err(e) => return Err(e.into()),
    }
    tracing::info!(sn = %sn, project = ?project_id, "device registered from the console");
    ctx.audit(
        &app,
        "登记设备",
        &format!("/console/devices/{sn}"),
        Some(format!(
            "厂商 {} 项目 {:?} 类型 {}",
            vendor.id,
            project_id,
            kind.as_str()
        )),
    )
    .await;
    Ok(Redirect::to(&format!("/console/devices/{}", enc(&sn))).into_response())
}

/// The form again, saying that the serial number is taken.
async fn taken(app: &App, ctx: &Ctx, form: NewDeviceForm) -> Result<Response, ConsoleError> {
    let page = new_page(
        app,
        ctx,
        form,
        vec![("sn", "该序列号的设备已存在".to_owned())],
    )
    .await?;
    Ok((axum::http::StatusCode::CONFLICT, render(&page)?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_follow_the_admin_rule() {
        assert_eq!(check_sn(" G-01 ").as_deref(), Ok("G-01"));
        for bad in ["", " ", "a b", "a/b", "a%b", &"x".repeat(65)] {
            assert!(check_sn(bad).is_err(), "{bad}");
        }
    }
}
