//! A project's uplink to the national real-name platform (docs/UPLINK.md): the settings form
//! (administrators; the secret is never shown, left empty it stays), the queue's state and
//! the latest outbox rows with the platform's messages.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use rollcall_protocol::ids::Secret;
use serde::Deserialize;

use super::error::ConsoleError;
use super::page::{Ctx, Nav, datetime, opt_datetime, render};
use crate::runtime::util::now_ms;
use crate::state::AppState;
use crate::store::{Project, UplinkConfig};
use crate::uplink::codec;
use crate::uplink::sender::beijing_day;

pub fn routes() -> Router<AppState> {
    Router::new().route("/console/projects/{id}/uplink", get(show).post(save))
}

struct ItemRow {
    kind: &'static str,
    r#ref: String,
    state: &'static str,
    message: String,
    at: String,
}

#[derive(Template)]
#[template(path = "console/uplink.html")]
struct UplinkPage {
    nav: Nav,
    id: i64,
    name: String,
    endpoint: String,
    appid: String,
    corp_code: String,
    corp_name: String,
    enabled: bool,
    has_secret: bool,
    pending: i64,
    failed: i64,
    today_records: i64,
    today_uploaded: i64,
    last_success: String,
    last_error: String,
    items: Vec<ItemRow>,
    saved: bool,
}

#[derive(Debug, Deserialize)]
pub struct Saved {
    #[serde(default)]
    saved: Option<String>,
}

async fn project(app: &AppState, ctx: &Ctx, id: &str) -> Result<Project, ConsoleError> {
    ctx.require_admin()?;
    let id = id
        .trim()
        .parse::<i64>()
        .map_err(|_| ConsoleError::NotFound)?;
    crate::services::scope::project(app, &ctx.principal, id)
        .await?
        .ok_or(ConsoleError::NotFound)
}

fn state_label(s: crate::store::UplinkState) -> &'static str {
    use crate::store::UplinkState::*;
    match s {
        Pending => "待上报",
        Sending => "发送中",
        Sent => "待结果",
        Accepted => "已接受",
        Refused => "被拒绝",
    }
}

fn kind_label(k: crate::store::UplinkKind) -> &'static str {
    use crate::store::UplinkKind::*;
    match k {
        Team => "班组",
        Worker => "工人",
        WorkerUpdate => "工人变更",
        Entry => "进场",
        Exit => "退场",
        Attendance => "考勤",
    }
}

/// `GET /console/projects/{id}/uplink` (administrators).
pub async fn show(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Query(q): Query<Saved>,
) -> Result<Html<String>, ConsoleError> {
    let project = project(&app, &ctx, &id).await?;
    let config = app.store.uplink_config(project.id).await?;
    let stats = app
        .store
        .uplink_stats(project.id, beijing_day(now_ms()))
        .await?;
    let items = app
        .store
        .uplink_items(project.id, None, None, 50)
        .await?
        .into_iter()
        .map(|i| ItemRow {
            kind: kind_label(i.kind),
            r#ref: i.ref_id.to_string(),
            state: state_label(i.state),
            message: i.message.unwrap_or_default(),
            at: datetime(i.at),
        })
        .collect();
    let c = config.as_ref();
    render(&UplinkPage {
        nav: ctx.nav("projects"),
        id: project.id,
        name: project.name,
        endpoint: c.map(|c| c.endpoint.clone()).unwrap_or_default(),
        appid: c.map(|c| c.appid.clone()).unwrap_or_default(),
        corp_code: c.map(|c| c.corp_code.clone()).unwrap_or_default(),
        corp_name: c.map(|c| c.corp_name.clone()).unwrap_or_default(),
        enabled: c.is_none_or(|c| c.enabled),
        has_secret: c.is_some(),
        pending: stats.pending,
        failed: stats.refused,
        today_records: stats.today_records,
        today_uploaded: stats.today_accepted,
        last_success: opt_datetime(c.and_then(|c| c.last_success_at)),
        last_error: c.and_then(|c| c.last_error.clone()).unwrap_or_default(),
        items,
        saved: q.saved.is_some(),
    })
}

#[derive(Debug, Deserialize)]
pub struct UplinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    appid: String,
    #[serde(default)]
    appsecret: String,
    #[serde(default)]
    corp_code: String,
    #[serde(default)]
    corp_name: String,
    #[serde(default)]
    enabled: Option<String>,
}

fn text(label: &str, value: &str, max: usize) -> Result<String, ConsoleError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(ConsoleError::BadRequest(format!(
            "{label}不能为空，且不超过 {max} 个字符"
        )));
    }
    Ok(v.to_owned())
}

/// `POST /console/projects/{id}/uplink` (administrators; audited).
pub async fn save(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    Form(f): Form<UplinkForm>,
) -> Result<Response, ConsoleError> {
    ctx.writable(&f.csrf)?;
    let project = project(&app, &ctx, &id).await?;
    let endpoint = text("接口地址", &f.endpoint, 512)?;
    if !reqwest::Url::parse(&endpoint)
        .ok()
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
    {
        return Err(ConsoleError::BadRequest(
            "接口地址应为 http(s) 地址".to_owned(),
        ));
    }
    let existing = app.store.uplink_config(project.id).await?;
    let secret = f.appsecret.trim();
    let appsecret = match (&existing, secret.is_empty()) {
        (Some(old), true) => old.appsecret.clone(),
        (None, true) => {
            return Err(ConsoleError::BadRequest(
                "首次设置须填写 appsecret".to_owned(),
            ));
        }
        (_, false) if !codec::valid_secret(secret) => {
            return Err(ConsoleError::BadRequest(
                "appsecret 应为 32 个 ASCII 字符".to_owned(),
            ));
        }
        (_, false) => Secret::new(secret),
    };
    let now = now_ms();
    let config = UplinkConfig {
        project_id: project.id,
        endpoint,
        appid: text("项目编码（appid）", &f.appid, 64)?,
        appsecret,
        corp_code: text("总包单位统一社会信用代码", &f.corp_code, 64)?,
        corp_name: text("总包单位名称", &f.corp_name, 128)?,
        enabled: f.enabled.is_some(),
        updated_at: now,
        last_success_at: existing.as_ref().and_then(|c| c.last_success_at),
        last_error: None,
        failures: 0,
        retry_at: 0,
    };
    app.store
        .put_uplink_config(&config, beijing_day(now).0)
        .await?;
    ctx.audit(
        &app,
        "设置上报国家平台",
        &format!("/console/projects/{}/uplink", project.id),
        Some(if config.enabled { "启用" } else { "停用" }.to_owned()),
    )
    .await;
    Ok(Redirect::to(&format!("/console/projects/{}/uplink?saved=1", project.id)).into_response())
}
