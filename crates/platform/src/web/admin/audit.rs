//! `/api/v1/audit`: the audit log, newest first; administrators and auditors read it and
//! export it as CSV (project managers are refused).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Caller;
use super::error::ApiError;
use super::extract::QueryParams;
use crate::accounts::Role;
use crate::accounts::audit::AuditNote;
use crate::state::AppState;
use crate::store::console::{AuditEntry, AuditQuery};

pub fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(audit_log))
}

/// One audit-log line.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
    pub ip: Option<String>,
}

/// `GET /audit`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub entries: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

fn audit_view(e: AuditEntry) -> AuditView {
    AuditView {
        id: e.id.to_string(),
        at: e.at,
        actor: e.actor,
        action: e.action,
        target: e.target,
        detail: e.detail,
        ip: e.ip,
    }
}

/// The audit log, newest first (administrators and auditors); `format=csv` exports it.
#[utoipa::path(get, operation_id = "listAudit", path = "/api/v1/audit", tag = "users",
    params(
        ("actor" = Option<String>, Query, description = "Username (`root` for the admin token)"),
        ("from" = Option<String>, Query, description = "Epoch ms or RFC 3339"),
        ("to" = Option<String>, Query, description = "Epoch ms or RFC 3339"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "Page size, default 100, at most 1000 (a larger one counts as 1000)"),
        ("format" = Option<String>, Query, description = "`csv` for a download"),
    ),
    responses((status = 200, description = "The page; with `format=csv`, the log as a CSV download", content(
                  (AuditPage = "application/json"),
                  (String = "text/csv"),
              )),
              (status = 403, description = "Project managers cannot read the audit log", body = super::error::ErrorBody)))]
pub async fn audit_log(
    State(app): State<AppState>,
    caller: Caller,
    q: QueryParams,
) -> Result<Response, ApiError> {
    if caller.0.role() == Role::ProjectManager {
        return Err(ApiError::Forbidden);
    }
    let limit = q.limit(100, 1000)?;
    let query = AuditQuery {
        actor: q.get("actor").map(str::to_owned),
        from: q.time("from")?,
        to: q.time("to")?,
        before_id: q.id("cursor")?,
        limit: limit + 1,
    };
    let mut entries = app.store.audit(&query).await?;
    let next_cursor = (entries.len() > limit as usize)
        .then(|| {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.id.to_string())
        })
        .flatten();
    if q.get("format") == Some("csv") {
        let mut out = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
        let csv_err = |e: csv::Error| ApiError::Internal(format!("writing csv: {e}"));
        out.write_record(["时间", "操作人", "操作", "对象", "详情", "IP"])
            .map_err(csv_err)?;
        for e in &entries {
            out.write_record([
                rollcall_protocol::time::Timestamp::from_epoch_ms(e.at)
                    .to_wire()
                    .as_str(),
                &e.actor,
                &e.action,
                &e.target,
                e.detail.as_deref().unwrap_or(""),
                e.ip.as_deref().unwrap_or(""),
            ])
            .map_err(csv_err)?;
        }
        let bytes = out
            .into_inner()
            .map_err(|e| ApiError::Internal(format!("writing csv: {e}")))?;
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit.csv\"",
                ),
            ],
            Extension(AuditNote(format!("导出审计日志 {} 条", entries.len()))),
            bytes,
        )
            .into_response());
    }
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(audit_view).collect(),
        next_cursor,
    })
    .into_response())
}
