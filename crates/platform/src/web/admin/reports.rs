//! Reports and bulk data: the daily summary of a project (`GET /projects/{id}/daily`), the
//! monthly attendance sheet as `.xlsx` (`GET /reports/monthly`), and roster import
//! (`POST /projects/{id}/import`, multipart). Every one of them reads or writes personal
//! data in bulk, so every one is audited.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Caller;
use super::access::project_or_404;
use super::error::ApiError;
use super::extract::{ApiMultipart, ApiPath, QueryParams, form_error};
use crate::accounts::audit::AuditNote;
use crate::runtime::util::now_ms;
use crate::services::import::{ImportFailure, import};
use crate::services::reports::{self, ReportFailure};
use crate::state::AppState;

/// Largest multipart body of an import (a roster and a zip of photos).
const MAX_IMPORT_BYTES: usize = 256 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{id}/daily", get(daily))
        .route("/reports/monthly", get(monthly))
        .route(
            "/projects/{id}/import",
            post(import_roster).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
}

/// One worker's day.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyLineView {
    pub person_id: String,
    pub name: String,
    /// Masked.
    pub idcard_no: String,
    pub team: Option<String>,
    pub trade: Option<String>,
    /// First in (epoch ms): the first punch at an entrance, else the first at a two-way
    /// device.
    pub first_in: Option<i64>,
    /// Last out: the last punch at an exit, else the last at a two-way device.
    pub last_out: Option<i64>,
    pub punches: u32,
    /// Hours from first in to last out (0.1 h); `null` when there is only one punch.
    pub hours: Option<f64>,
}

/// `GET /projects/{id}/daily`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailySummary {
    pub project_id: String,
    /// `YYYY-MM-DD`, Beijing time.
    pub date: String,
    /// Distinct workers who punched that day.
    pub headcount: usize,
    pub workers: Vec<DailyLineView>,
}

/// The outcome of an import.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportAnswer {
    /// Person ids enrolled by this import.
    pub enrolled: Vec<String>,
    /// Person ids already on the platform who joined the project.
    pub joined: Vec<String>,
    pub errors: Vec<ImportRowError>,
    pub photo_problems: Vec<PhotoProblemView>,
    /// Signed, expiring URLs of the error report (`null` without errors).
    pub error_report_csv: Option<String>,
    pub error_report_xlsx: Option<String>,
}

/// A refused row: its number as the user sees it, the column and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRowError {
    pub row: u32,
    pub field: String,
    pub message: String,
}

/// A file of the photo zip that matched no row or could not be used.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhotoProblemView {
    pub file: String,
    pub message: String,
}

fn report_error(e: ReportFailure) -> ApiError {
    match e {
        ReportFailure::Report(r) => ApiError::invalid("invalid_report", r.to_string()),
        ReportFailure::Store(s) => s.into(),
        ReportFailure::Writer(e) => ApiError::Internal(e),
    }
}

/// The daily summary of a project: first in, last out and hours per worker.
#[utoipa::path(get, operation_id = "getDailySummary", path = "/api/v1/projects/{id}/daily", tag = "reports",
    params(("id" = String, Path, description = "Project id"),
           ("date" = Option<String>, Query, description = "`YYYY-MM-DD` (Beijing); default today")),
    responses((status = 200, description = "OK", body = DailySummary),
              (status = 404, description = "Unknown project", body = super::error::ErrorBody),
              (status = 422, description = "A bad `date`", body = super::error::ErrorBody)))]
pub async fn daily(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    q: QueryParams,
) -> Result<(Extension<AuditNote>, Json<DailySummary>), ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let day = match q.get("date") {
        Some(d) => d.trim().parse::<jiff::civil::Date>().map_err(|_| {
            ApiError::invalid_field("invalid_query", "date", "参数 date 应为 YYYY-MM-DD")
        })?,
        None => rollcall_rules::reports::beijing_date(now_ms())
            .ok_or_else(|| ApiError::Internal("the clock is out of range".into()))?,
    };
    let lines = reports::daily(&app, project.id, day)
        .await
        .map_err(report_error)?;
    let note = AuditNote(format!(
        "读取项目 {} {day} 日汇总 {} 人",
        project.id,
        lines.len()
    ));
    Ok((
        Extension(note),
        Json(DailySummary {
            project_id: project.id.to_string(),
            date: day.to_string(),
            headcount: lines.len(),
            workers: lines
                .into_iter()
                .map(|l| DailyLineView {
                    person_id: l.person_id.to_string(),
                    name: l.name,
                    idcard_no: l.idcard,
                    team: l.team,
                    trade: l.trade,
                    first_in: l.summary.first_in_ms,
                    last_out: l.summary.last_out_ms,
                    punches: l.summary.punches,
                    hours: l.summary.hours,
                })
                .collect(),
        }),
    ))
}

/// The monthly attendance sheet (.xlsx): one worksheet per project — the one asked for, or
/// every project the caller sees.
#[utoipa::path(get, operation_id = "getMonthlySheet", path = "/api/v1/reports/monthly", tag = "reports",
    params(("month" = String, Query, description = "`YYYY-MM`"),
           ("projectId" = Option<String>, Query, description = "One project; default every visible project")),
    responses((status = 200, description = "The workbook", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
              (status = 404, description = "`projectId` names no project the caller sees", body = super::error::ErrorBody),
              (status = 422, description = "A bad `month` or `projectId`", body = super::error::ErrorBody)))]
pub async fn monthly(
    State(app): State<AppState>,
    caller: Caller,
    q: QueryParams,
) -> Result<Response, ApiError> {
    let month = q
        .get("month")
        .and_then(reports::parse_month)
        .ok_or_else(|| {
            ApiError::invalid_field("invalid_query", "month", "参数 month 应为 YYYY-MM")
        })?;
    let projects = match q.get("projectId") {
        Some(raw) => vec![project_or_404(&app, &caller, raw).await?],
        None => crate::services::scope::projects(&app, &caller.0).await?,
    };
    let bytes = reports::monthly(&app, &projects, month)
        .await
        .map_err(report_error)?;
    let (y, m) = month;
    let filename = format!("attendance-{y}-{m:02}.xlsx");
    let note = AuditNote(format!(
        "导出 {y}年{m}月考勤表（{} 个项目）",
        projects.len()
    ));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Extension(note),
        bytes,
    )
        .into_response())
}

/// Imports a roster into the project: multipart with `roster` (.xlsx or .csv with columns
/// 姓名, 身份证号, 手机号, 班组, 工种) and optionally `photos` (.zip of files named by ID number).
#[utoipa::path(post, operation_id = "importRoster", path = "/api/v1/projects/{id}/import", tag = "reports",
    params(("id" = String, Path, description = "Project id")),
    request_body(content_type = "multipart/form-data", description = "`roster` file, optional `photos` zip"),
    responses((status = 200, description = "Imported; refused rows are listed", body = ImportAnswer),
              (status = 403, description = "The caller may not enrol workers", body = super::error::ErrorBody),
              (status = 404, description = "Unknown project", body = super::error::ErrorBody),
              (status = 422, description = "A whole-file problem (`invalid_file`), naming it, or a form that cannot be read (`invalid_form`)", body = super::error::ErrorBody)))]
pub async fn import_roster(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiMultipart(mut form): ApiMultipart,
) -> Result<(Extension<AuditNote>, Json<ImportAnswer>), ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let (mut roster, mut photos) = (None, None);
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        match field.name() {
            Some("roster") => roster = Some(field.bytes().await.map_err(form_error)?),
            Some("photos") => photos = Some(field.bytes().await.map_err(form_error)?),
            _ => {}
        }
    }
    let roster = roster.filter(|r| !r.is_empty()).ok_or_else(|| {
        ApiError::invalid_field("invalid_file", "roster", "请上传花名册文件（roster）")
    })?;
    let photos = photos.filter(|p| !p.is_empty());
    let outcome = import(&app, &caller.0, project.id, roster, photos)
        .await
        .map_err(|e| match e {
            ImportFailure::File(f) => {
                ApiError::invalid_field("invalid_file", "roster", f.to_string())
            }
            ImportFailure::Photos(p) => {
                ApiError::invalid_field("invalid_file", "photos", p.to_string())
            }
            ImportFailure::Forbidden => ApiError::Forbidden,
            ImportFailure::Store(s) => s.into(),
            ImportFailure::Io(e) => ApiError::Internal(e.to_string()),
        })?;
    let now = now_ms();
    let note = AuditNote(format!(
        "导入花名册到项目 {}：新登记 {} 人，进场 {} 人，错误 {} 行",
        project.id,
        outcome.enrolled.len(),
        outcome.joined.len(),
        outcome.errors.len()
    ));
    let ids = |v: &[i64]| v.iter().map(i64::to_string).collect();
    Ok((
        Extension(note),
        Json(ImportAnswer {
            enrolled: ids(&outcome.enrolled),
            joined: ids(&outcome.joined),
            errors: outcome
                .errors
                .into_iter()
                .map(|e| ImportRowError {
                    row: e.row,
                    field: e.field,
                    message: e.message,
                })
                .collect(),
            photo_problems: outcome
                .photo_problems
                .into_iter()
                .map(|(file, message)| PhotoProblemView { file, message })
                .collect(),
            error_report_csv: outcome
                .report_keys
                .as_ref()
                .map(|(c, _)| app.file_url(c, now)),
            error_report_xlsx: outcome
                .report_keys
                .as_ref()
                .map(|(_, x)| app.file_url(x, now)),
        }),
    ))
}
