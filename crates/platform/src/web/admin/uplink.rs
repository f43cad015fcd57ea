//! `/api/v1/projects/{id}/uplink`: a project's reporting to the national real-name platform
//! (docs/UPLINK.md, UPLINK.md "Rollcall's contract").
//!
//! - `PUT` / `GET …/uplink` — the settings and the queue's state; administrators only (the
//!   settings name the national credentials). The `appsecret` is sealed at rest and never
//!   shown again (answers carry `"********"`); leaving it out of a `PUT` keeps the stored one.
//!   Changes are audited by the access layer, like every change.
//! - `GET …/uplink/items` — the outbox rows (per record state and the platform's message),
//!   for anyone who sees the project.
//! - `POST …/uplink/retry` — sends the refused items again, once the data is fixed
//!   (administrators).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use rollcall_protocol::ids::Secret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Caller, project_or_404};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, QueryParams, echo, required_text};
use crate::runtime::util::now_ms;
use crate::state::AppState;
use crate::store::{UplinkConfig, UplinkItem, UplinkKind, UplinkState};
use crate::uplink::codec;
use crate::uplink::sender::beijing_day;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/projects/{id}/uplink", get(show).put(put))
        .route("/projects/{id}/uplink/items", get(items))
        .route("/projects/{id}/uplink/retry", post(retry))
}

/// What a masked secret reads as.
const MASK: &str = "********";

/// `PUT /projects/{id}/uplink`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PutUplink {
    /// The national API's URL (`http(s)://…/open.api`).
    pub endpoint: String,
    /// The project's code on the national platform (`projectCode`).
    pub appid: String,
    /// The 32-character secret issued with the appid. Leave out to keep the stored one.
    #[serde(default)]
    pub appsecret: Option<String>,
    pub corp_code: String,
    pub corp_name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Today's attendance against the 24:00 deadline (Beijing time).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TodayView {
    /// Attendance records of today queued for the project.
    pub records: i64,
    /// Of those, accepted by the national platform.
    pub uploaded: i64,
    /// Today's 24:00, Beijing time (epoch ms).
    pub deadline: i64,
}

/// A project's uplink settings (the secret masked) and its queue.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UplinkView {
    pub project_id: String,
    /// `false` for a project whose uplink was never set: every other field is then empty
    /// and the queue is empty. A project exists with or without uplink settings, so `GET`
    /// answers 200 either way.
    pub configured: bool,
    pub endpoint: String,
    pub appid: String,
    /// `"********"` once set; empty while not configured.
    pub appsecret: String,
    pub corp_code: String,
    pub corp_name: String,
    pub enabled: bool,
    pub updated_at: i64,
    /// Items not yet accepted or refused.
    pub pending: i64,
    /// Items refused (by the platform, or before sending), with a message each.
    pub failed: i64,
    /// When the oldest pending item was queued.
    pub oldest_pending_at: Option<i64>,
    pub last_success_at: Option<i64>,
    /// The last request-level failure (cleared by a success).
    pub last_error: Option<String>,
    pub today: TodayView,
}

/// One outbox row.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UplinkItemView {
    pub id: String,
    pub kind: UplinkKind,
    /// The team id, person id or attendance record id.
    pub ref_id: String,
    pub person_id: Option<String>,
    pub at: i64,
    pub state: UplinkState,
    pub attempts: u32,
    /// The platform's message (a refusal), or why the item waits.
    pub message: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub done_at: Option<i64>,
}

/// `GET /projects/{id}/uplink/items`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UplinkItemList {
    pub items: Vec<UplinkItemView>,
}

/// `POST /projects/{id}/uplink/retry`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    pub requeued: u64,
}

pub fn item_view(i: &UplinkItem) -> UplinkItemView {
    UplinkItemView {
        id: i.id.to_string(),
        kind: i.kind,
        ref_id: i.ref_id.to_string(),
        person_id: i.person_id.clone(),
        at: i.at,
        state: i.state,
        attempts: i.attempts,
        message: i.message.clone(),
        created_at: i.created_at,
        sent_at: i.sent_at,
        done_at: i.done_at,
    }
}

async fn view(app: &AppState, c: &UplinkConfig) -> Result<UplinkView, ApiError> {
    let day = beijing_day(now_ms());
    let stats = app.store.uplink_stats(c.project_id, day).await?;
    Ok(UplinkView {
        project_id: c.project_id.to_string(),
        configured: true,
        endpoint: c.endpoint.clone(),
        appid: c.appid.clone(),
        appsecret: MASK.to_owned(),
        corp_code: c.corp_code.clone(),
        corp_name: c.corp_name.clone(),
        enabled: c.enabled,
        updated_at: c.updated_at,
        pending: stats.pending,
        failed: stats.refused,
        oldest_pending_at: stats.oldest_pending_at,
        last_success_at: c.last_success_at,
        last_error: c.last_error.clone(),
        today: TodayView {
            records: stats.today_records,
            uploaded: stats.today_accepted,
            deadline: day.1,
        },
    })
}

/// Sets a project's uplink (administrators). Enabling it for the first time queues the
/// project's teams, active workers and today's attendance.
#[utoipa::path(
    put,
    operation_id = "putUplink",
    path = "/api/v1/projects/{id}/uplink",
    tag = "uplink",
    params(("id" = String, Path, description = "Project id")),
    request_body = PutUplink,
    responses(
        (status = 200, description = "The settings, the secret masked", body = UplinkView),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 422, description = "An invalid field (`invalid_uplink`)", body = super::error::ErrorBody),
    )
)]
pub async fn put(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PutUplink>,
) -> Result<Json<UplinkView>, ApiError> {
    caller.require_admin()?;
    let project = project_or_404(&app, &caller, &id).await?;
    let endpoint = required_text("endpoint", &body.endpoint, 512)?;
    let parsed = reqwest::Url::parse(&endpoint).ok();
    if !parsed
        .as_ref()
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
    {
        return Err(ApiError::invalid_field(
            "invalid_uplink",
            "endpoint",
            format!("字段 endpoint 应为 http(s) 地址，收到 {}", echo(&endpoint)),
        ));
    }
    let appid = required_text("appid", &body.appid, 64)?;
    let corp_code = required_text("corpCode", &body.corp_code, 64)?;
    let corp_name = required_text("corpName", &body.corp_name, 128)?;
    let existing = app.store.uplink_config(project.id).await?;
    let appsecret = match (body.appsecret.as_deref().map(str::trim), &existing) {
        (Some(s), _) if !s.is_empty() => {
            if !codec::valid_secret(s) {
                return Err(ApiError::invalid_field(
                    "invalid_uplink",
                    "appsecret",
                    "字段 appsecret 应为 32 个 ASCII 字符",
                ));
            }
            Secret::new(s)
        }
        (_, Some(old)) => old.appsecret.clone(),
        (_, None) => {
            return Err(ApiError::invalid_field(
                "invalid_uplink",
                "appsecret",
                "首次设置时字段 appsecret 不能为空",
            ));
        }
    };
    let now = now_ms();
    let config = UplinkConfig {
        project_id: project.id,
        endpoint,
        appid,
        appsecret,
        corp_code,
        corp_name,
        enabled: body.enabled,
        updated_at: now,
        last_success_at: existing.as_ref().and_then(|c| c.last_success_at),
        last_error: None,
        failures: 0,
        retry_at: 0,
    };
    app.store
        .put_uplink_config(&config, beijing_day(now).0)
        .await?;
    tracing::info!(
        project = project.id,
        enabled = config.enabled,
        "uplink settings changed"
    );
    Ok(Json(view(&app, &config).await?))
}

/// A project's uplink settings (secret masked) and queue state (administrators).
#[utoipa::path(
    get,
    operation_id = "getUplink",
    path = "/api/v1/projects/{id}/uplink",
    tag = "uplink",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "OK", body = UplinkView),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 404, description = "No such project", body = super::error::ErrorBody),
    )
)]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<UplinkView>, ApiError> {
    caller.require_admin()?;
    let project = project_or_404(&app, &caller, &id).await?;
    match app.store.uplink_config(project.id).await? {
        Some(config) => Ok(Json(view(&app, &config).await?)),
        None => Ok(Json(unconfigured(project.id))),
    }
}

/// The view of a project whose uplink was never set.
fn unconfigured(project_id: i64) -> UplinkView {
    UplinkView {
        project_id: project_id.to_string(),
        configured: false,
        endpoint: String::new(),
        appid: String::new(),
        appsecret: String::new(),
        corp_code: String::new(),
        corp_name: String::new(),
        enabled: false,
        updated_at: 0,
        pending: 0,
        failed: 0,
        oldest_pending_at: None,
        last_success_at: None,
        last_error: None,
        today: TodayView {
            records: 0,
            uploaded: 0,
            deadline: beijing_day(now_ms()).1,
        },
    }
}

/// The project's outbox, newest first: each item's state and the platform's message.
#[utoipa::path(
    get,
    operation_id = "listUplinkItems",
    path = "/api/v1/projects/{id}/uplink/items",
    tag = "uplink",
    params(
        ("id" = String, Path, description = "Project id"),
        ("state" = Option<UplinkState>, Query, description = "Only items in this state"),
        ("before" = Option<String>, Query, description = "Items with a smaller id (paging)"),
        ("limit" = Option<i64>, Query, description = "At most this many (default 100, max 1000)"),
    ),
    responses((status = 200, description = "OK", body = UplinkItemList))
)]
pub async fn items(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    query: QueryParams,
) -> Result<Json<UplinkItemList>, ApiError> {
    let project = project_or_404(&app, &caller, &id).await?;
    let state = match query.get("state") {
        None => None,
        Some(s) => Some(UplinkState::parse(s).ok_or_else(|| {
            ApiError::invalid_field(
                "invalid_query",
                "state",
                format!(
                    "参数 state 应为 pending、sending、sent、accepted 或 refused，收到 {}",
                    echo(s)
                ),
            )
        })?),
    };
    let before = query.id("before")?;
    let limit = query.limit(100, 1000)?;
    let items = app
        .store
        .uplink_items(project.id, state, before, limit)
        .await?;
    Ok(Json(UplinkItemList {
        items: items.iter().map(item_view).collect(),
    }))
}

/// Sends the project's refused items again, each alone (administrators).
#[utoipa::path(
    post,
    operation_id = "retryUplink",
    path = "/api/v1/projects/{id}/uplink/retry",
    tag = "uplink",
    params(("id" = String, Path, description = "Project id")),
    responses(
        (status = 200, description = "How many were requeued", body = Requeued),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
    )
)]
pub async fn retry(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Requeued>, ApiError> {
    caller.require_admin()?;
    let project = project_or_404(&app, &caller, &id).await?;
    let requeued = app
        .store
        .uplink_requeue_refused(project.id, now_ms())
        .await?;
    Ok(Json(Requeued { requeued }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_never_in_a_view() {
        let view = UplinkView {
            configured: true,
            endpoint: "http://x/open.api".into(),
            appid: "330100000000000001".into(),
            appsecret: MASK.into(),
            enabled: true,
            ..unconfigured(1)
        };
        let json = serde_json::to_string(&view).unwrap();
        assert!(json.contains("\"appsecret\":\"********\""), "{json}");
    }
}
