//! `GET /console/attendance`: attendance records, newest first, filtered by project and
//! Beijing day, with photos (signed URLs), flags and cursor paging. Project managers always
//! look at one of their projects.

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::get;
use serde::Deserialize;

use super::error::ConsoleError;
use super::page::{
    Ctx, DAY_MS, Nav, date, datetime, day_start, direction_label, enc, flag_label, method_label,
    parse_date, render,
};
use crate::accounts::Scope;
use crate::runtime::util::now_ms;
use crate::state::AppState;
use crate::store::AttendanceQuery;

/// Records per page.
const PAGE: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/attendance", get(list))
}

#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

struct Row {
    record_id: i64,
    time: String,
    person_id: String,
    worker_href: Option<String>,
    name: String,
    project: String,
    sn: String,
    direction: &'static str,
    method: &'static str,
    flags: Vec<String>,
    photo_url: Option<String>,
    latency: String,
}

struct ProjectChoice {
    id: String,
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/attendance.html")]
struct ListPage {
    nav: Nav,
    projects: Vec<ProjectChoice>,
    all_allowed: bool,
    date: String,
    /// Shown as the date field's placeholder.
    today: String,
    records: Vec<Row>,
    next_href: Option<String>,
    first_href: Option<String>,
    error: Option<String>,
}

/// `GET /console/attendance?project=&date=YYYY-MM-DD&before=`.
pub async fn list(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(f): Query<Filters>,
) -> Result<Html<String>, ConsoleError> {
    let projects = ctx.projects(&app).await?;
    let all_allowed = matches!(ctx.principal.scope(), Scope::All);
    let mut error = None;
    let asked = f
        .project
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    let project_id = match asked {
        Some(p) => match p.parse::<i64>() {
            Ok(id) if projects.iter().any(|x| x.id == id) => Some(id),
            _ => return Err(ConsoleError::NotFound),
        },
        // A project manager sees one of their projects at a time.
        None if !all_allowed => projects.first().map(|p| p.id),
        None => None,
    };
    let date_text = f.date.as_deref().map(str::trim).unwrap_or("").to_owned();
    let day = if date_text.is_empty() {
        None
    } else {
        let d = parse_date(&date_text);
        if d.is_none() {
            error = Some("日期格式应为 YYYY-MM-DD".to_owned());
        }
        d
    };
    let before = f
        .before
        .as_deref()
        .and_then(|b| b.trim().parse::<i64>().ok());
    let now = now_ms();
    let mut rows = Vec::new();
    let mut next_href = None;
    if all_allowed || project_id.is_some() {
        let mut records = app
            .store
            .attendance(&AttendanceQuery {
                project_id,
                from: day.map(day_start),
                to: day.map(|d| day_start(d) + DAY_MS),
                before_record_id: before,
                limit: PAGE + 1,
                ..AttendanceQuery::default()
            })
            .await?;
        if records.len() > PAGE as usize {
            records.truncate(PAGE as usize);
            next_href = records
                .last()
                .map(|r| href(project_id, &date_text, Some(r.record_id)));
        }
        let ids: Vec<i64> = records
            .iter()
            .filter_map(|r| r.person_id.parse().ok())
            .collect();
        let names: HashMap<i64, String> = app
            .store
            .workers_by_ids(&ids)
            .await?
            .into_iter()
            .map(|w| (w.person_id, w.name))
            .collect();
        let project_names: HashMap<i64, &str> =
            projects.iter().map(|p| (p.id, p.name.as_str())).collect();
        for r in records {
            let known = r
                .person_id
                .parse::<i64>()
                .ok()
                .and_then(|id| names.get(&id).map(|n| (id, n)));
            rows.push(Row {
                record_id: r.record_id,
                time: datetime(r.record_time),
                worker_href: known.map(|(id, _)| format!("/console/workers/{id}")),
                name: known.map(|(_, n)| n.clone()).unwrap_or_default(),
                person_id: r.person_id,
                project: r
                    .project_id
                    .map(|p| {
                        project_names
                            .get(&p)
                            .map_or_else(|| p.to_string(), |n| (*n).to_owned())
                    })
                    .unwrap_or_else(|| "未绑定".to_owned()),
                sn: r.sn,
                direction: direction_label(r.direction),
                method: method_label(r.r#type),
                flags: r.flags.iter().map(|f| flag_label(f)).collect(),
                photo_url: r.photo_key.as_deref().map(|k| app.file_url(k, now)),
                latency: format!(
                    "{:.1} 秒",
                    r.received_at.saturating_sub(r.record_time) as f64 / 1000.0
                ),
            });
        }
        ctx.audit(
            &app,
            "查看考勤记录",
            "/console/attendance",
            Some(format!(
                "项目 {} 日期 {} 共 {} 条",
                project_id.map_or_else(|| "全部".to_owned(), |p| p.to_string()),
                if date_text.is_empty() {
                    "全部"
                } else {
                    date_text.as_str()
                },
                rows.len()
            )),
        )
        .await;
    }
    let choices = projects
        .iter()
        .map(|p| ProjectChoice {
            id: p.id.to_string(),
            name: p.name.clone(),
            selected: Some(p.id) == project_id,
        })
        .collect();
    render(&ListPage {
        nav: ctx.nav("attendance"),
        projects: choices,
        all_allowed,
        date: date_text.clone(),
        today: date(now),
        first_href: before.map(|_| href(project_id, &date_text, None)),
        records: rows,
        next_href,
        error,
    })
}

/// The URL of a page with these filters.
fn href(project: Option<i64>, date: &str, before: Option<i64>) -> String {
    let mut q = Vec::new();
    if let Some(p) = project {
        q.push(format!("project={p}"));
    }
    if !date.is_empty() {
        q.push(format!("date={}", enc(date)));
    }
    if let Some(b) = before {
        q.push(format!("before={b}"));
    }
    if q.is_empty() {
        "/console/attendance".to_owned()
    } else {
        format!("/console/attendance?{}", q.join("&"))
    }
}
