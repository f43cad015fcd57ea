//! Reports in the console (报表): a project's daily summary (first in, last out, hours), the
//! monthly attendance sheet as an `.xlsx` download, and roster import (花名册导入) from an
//! `.xlsx`/`.csv` with a `.zip` of photos, whose refused rows can be downloaded as a report.
//! The rules live in `services::reports` and `services::import`, shared with the admin API.

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use super::error::ConsoleError;
use super::page::{Ctx, Nav, datetime, render};
use crate::runtime::util::now_ms;
use crate::services::import::{ImportFailure, import};
use crate::services::reports::{self, ReportFailure};
use crate::state::AppState;
use crate::store::Project;

/// Largest import upload (a roster and a zip of photos).
const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/reports", get(show))
        .route("/console/reports/monthly.xlsx", get(monthly))
        .route(
            "/console/reports/import",
            axum::routing::post(import_roster).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
}

#[derive(Debug, Default, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    project: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    month: String,
}

struct ProjectOption {
    id: i64,
    name: String,
    selected: bool,
}

struct DailyRow {
    person_id: i64,
    name: String,
    idcard: String,
    team: String,
    trade: String,
    first_in: String,
    last_out: String,
    punches: u32,
    hours: String,
}

struct ImportResult {
    enrolled: usize,
    joined: usize,
    errors: Vec<(u32, String, String)>,
    photo_problems: Vec<(String, String)>,
    report_csv: String,
    report_xlsx: String,
}

#[derive(Template)]
#[template(path = "console/reports.html")]
struct ReportsPage {
    nav: Nav,
    projects: Vec<ProjectOption>,
    project_id: i64,
    date: String,
    month: String,
    rows: Vec<DailyRow>,
    result: Option<ImportResult>,
    error: String,
}

/// The project asked for, if the user sees it, else their first project.
fn pick(projects: &[Project], asked: &str) -> Option<i64> {
    asked
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|id| projects.iter().any(|p| p.id == *id))
        .or_else(|| projects.first().map(|p| p.id))
}

fn report_error(e: ReportFailure) -> ConsoleError {
    match e {
        ReportFailure::Report(r) => ConsoleError::BadRequest(r.to_string()),
        ReportFailure::Store(s) => s.into(),
        ReportFailure::Writer(e) => ConsoleError::Internal(e),
    }
}

async fn page(
    app: &AppState,
    ctx: &Ctx,
    q: &ReportQuery,
    result: Option<ImportResult>,
    error: String,
) -> Result<Html<String>, ConsoleError> {
    let projects = ctx.projects(app).await?;
    let selected = pick(&projects, &q.project);
    let today = rollcall_rules::reports::beijing_date(now_ms())
        .ok_or_else(|| ConsoleError::Internal("the clock is out of range".into()))?;
    let day = match q.date.trim() {
        "" => today,
        d => d
            .parse::<jiff::civil::Date>()
            .map_err(|_| ConsoleError::BadRequest("日期格式应为 YYYY-MM-DD".into()))?,
    };
    let month = match q.month.trim() {
        "" => format!("{:04}-{:02}", today.year(), today.month()),
        m => m.to_owned(),
    };
    let mut rows = Vec::new();
    if let Some(project) = selected {
        let lines = reports::daily(app, project, day)
            .await
            .map_err(report_error)?;
        ctx.audit(
            app,
            "查看日汇总",
            &format!("project:{project}"),
            Some(format!("{day} 共 {} 人", lines.len())),
        )
        .await;
        rows = lines
            .into_iter()
            .map(|l| DailyRow {
                person_id: l.person_id,
                name: l.name,
                idcard: l.idcard,
                team: l.team.unwrap_or_default(),
                trade: l.trade.unwrap_or_default(),
                first_in: l.summary.first_in_ms.map(datetime).unwrap_or_default(),
                last_out: l.summary.last_out_ms.map(datetime).unwrap_or_default(),
                punches: l.summary.punches,
                hours: l
                    .summary
                    .hours
                    .map_or_else(|| "单".to_owned(), |h| format!("{h:.1}")),
            })
            .collect();
    }
    render(&ReportsPage {
        nav: ctx.nav("reports"),
        projects: projects
            .iter()
            .map(|p| ProjectOption {
                id: p.id,
                name: p.name.clone(),
                selected: Some(p.id) == selected,
            })
            .collect(),
        project_id: selected.unwrap_or_default(),
        date: day.to_string(),
        month,
        rows,
        result,
        error,
    })
}

/// `GET /console/reports`: the daily summary of a project and the export and import forms.
pub async fn show(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ReportQuery>,
) -> Result<Html<String>, ConsoleError> {
    page(&app, &ctx, &q, None, String::new()).await
}

/// `GET /console/reports/monthly.xlsx?month=YYYY-MM[&project=ID]`: the monthly sheet of one
/// project, or of every project the user sees.
pub async fn monthly(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ConsoleError> {
    let month = reports::parse_month(&q.month)
        .ok_or_else(|| ConsoleError::BadRequest("月份格式应为 YYYY-MM".into()))?;
    let mut projects = ctx.projects(&app).await?;
    if let Ok(id) = q.project.trim().parse::<i64>() {
        projects.retain(|p| p.id == id);
        if projects.is_empty() {
            return Err(ConsoleError::NotFound);
        }
    }
    let bytes = reports::monthly(&app, &projects, month)
        .await
        .map_err(report_error)?;
    let (y, m) = month;
    ctx.audit(
        &app,
        "导出月度考勤表",
        &format!("{y}-{m:02}"),
        Some(format!("{} 个项目", projects.len())),
    )
    .await;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"attendance-{y}-{m:02}.xlsx\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `POST /console/reports/import` (multipart: `csrf`, `project`, `roster`, `photos`).
pub async fn import_roster(
    State(app): State<AppState>,
    ctx: Ctx,
    mut multipart: Multipart,
) -> Result<Html<String>, ConsoleError> {
    let (mut csrf, mut project, mut roster, mut photos) =
        (String::new(), String::new(), Bytes::new(), Bytes::new());
    let bad_upload = |e: axum::extract::multipart::MultipartError| {
        tracing::info!(error = %e, "a bad import upload");
        ConsoleError::BadRequest("上传失败：表单数据无效或文件过大".to_owned())
    };
    while let Some(field) = multipart.next_field().await.map_err(bad_upload)? {
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.map_err(bad_upload)?,
            "project" => project = field.text().await.map_err(bad_upload)?,
            "roster" => roster = field.bytes().await.map_err(bad_upload)?,
            "photos" => photos = field.bytes().await.map_err(bad_upload)?,
            _ => {}
        }
    }
    ctx.writable(&csrf)?;
    let q = ReportQuery {
        project: project.clone(),
        ..ReportQuery::default()
    };
    let project_id = project
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|id| ctx.principal.sees_project(*id))
        .ok_or(ConsoleError::NotFound)?;
    if roster.is_empty() {
        return page(&app, &ctx, &q, None, "请选择花名册文件".into()).await;
    }
    let photos = (!photos.is_empty()).then_some(photos);
    let outcome = match import(&app, &ctx.principal, project_id, roster, photos).await {
        Ok(o) => o,
        Err(ImportFailure::File(e)) => return page(&app, &ctx, &q, None, e.to_string()).await,
        Err(ImportFailure::Photos(e)) => return page(&app, &ctx, &q, None, e.to_string()).await,
        Err(ImportFailure::Forbidden) => return Err(ConsoleError::Forbidden),
        Err(ImportFailure::Store(e)) => return Err(e.into()),
        Err(ImportFailure::Io(e)) => return Err(ConsoleError::Internal(e.to_string())),
    };
    ctx.audit(
        &app,
        "导入花名册",
        &format!("project:{project_id}"),
        Some(format!(
            "新登记 {} 人，进场 {} 人，错误 {} 行",
            outcome.enrolled.len(),
            outcome.joined.len(),
            outcome.errors.len()
        )),
    )
    .await;
    let now = now_ms();
    let (report_csv, report_xlsx) = outcome
        .report_keys
        .as_ref()
        .map(|(c, x)| (app.file_url(c, now), app.file_url(x, now)))
        .unwrap_or_default();
    let result = ImportResult {
        enrolled: outcome.enrolled.len(),
        joined: outcome.joined.len(),
        errors: outcome
            .errors
            .into_iter()
            .map(|e| (e.row, e.field, e.message))
            .collect(),
        photo_problems: outcome.photo_problems,
        report_csv,
        report_xlsx,
    };
    page(&app, &ctx, &q, Some(result), String::new()).await
}
