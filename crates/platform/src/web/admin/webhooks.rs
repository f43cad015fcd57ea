//! `/api/v1/webhooks`: integrators' signed webhooks (docs/UPLINK.md, "Webhooks"), the
//! administrators' alone. The signing secret is generated here, shown once on creation and
//! sealed at rest; `DELETE` stops deliveries (the log stays readable).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use rollcall_protocol::ids::Secret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, QueryParams, echo, path_id, required_text};
use crate::runtime::util::{now_ms, random_hex128};
use crate::state::AppState;
use crate::store::{WebhookDelivery, WebhookEndpoint};

/// The events an endpoint may subscribe to.
pub const EVENTS: &[&str] = &["attendance", "worker", "device", "task"];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(create).get(list))
        .route("/webhooks/{id}", delete(disable))
        .route("/webhooks/{id}/deliveries", get(deliveries))
}

/// `POST /webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed (`http(s)://…`).
    pub url: String,
    /// `attendance`, `worker`, `device`, `task`; empty or absent: all of them.
    #[serde(default)]
    pub events: Vec<String>,
}

/// An endpoint as lists show it (no secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub created_at: i64,
}

/// A new endpoint with its signing secret, shown only now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The HMAC-SHA256 key of `X-Rollcall-Signature`.
    pub secret: String,
}

/// `GET /webhooks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// One row of an endpoint's delivery log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: String,
    pub event: String,
    pub r#ref: String,
    /// `pending`, `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// `GET /webhooks/{id}/deliveries`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryLog {
    pub deliveries: Vec<DeliveryView>,
}

fn view(e: &WebhookEndpoint) -> WebhookView {
    WebhookView {
        id: e.id.to_string(),
        url: e.url.clone(),
        events: e.events.clone(),
        enabled: e.enabled,
        created_at: e.created_at,
    }
}

fn delivery_view(d: &WebhookDelivery) -> DeliveryView {
    DeliveryView {
        id: d.id.to_string(),
        event: d.event.clone(),
        r#ref: d.r#ref.clone(),
        state: d.state.clone(),
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    }
}

/// Creates a webhook endpoint (administrators).
#[utoipa::path(
    post,
    operation_id = "createWebhook",
    path = "/api/v1/webhooks",
    tag = "uplink",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; the secret is shown only now", body = WebhookCreated),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 422, description = "A bad URL or event", body = super::error::ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    caller.require_admin()?;
    let url = required_text("url", &body.url, 512)?;
    let ok = reqwest::Url::parse(&url)
        .ok()
        .is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !ok {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "url",
            format!("字段 url 应为 http(s) 地址，收到 {}", echo(&url)),
        ));
    }
    let mut events: Vec<String> = Vec::new();
    for e in &body.events {
        if !EVENTS.contains(&e.as_str()) {
            return Err(ApiError::invalid_field(
                "invalid_field",
                "events",
                format!(
                    "事件应为 attendance、worker、device 或 task，收到 {}",
                    echo(e)
                ),
            ));
        }
        if !events.contains(e) {
            events.push(e.clone());
        }
    }
    if events.is_empty() {
        events.push("*".to_owned());
    }
    let secret = format!("whsec_{}", random_hex128());
    let endpoint = WebhookEndpoint {
        id: app.ids.next(),
        url,
        secret: Secret::new(secret.clone()),
        events,
        enabled: true,
        created_at: now_ms(),
        failures: 0,
        retry_at: 0,
    };
    app.store.create_webhook(&endpoint).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            webhook: view(&endpoint),
            secret,
        }),
    ))
}

/// The webhook endpoints (administrators; no secrets).
#[utoipa::path(
    get,
    operation_id = "listWebhooks",
    path = "/api/v1/webhooks",
    tag = "uplink",
    responses(
        (status = 200, description = "OK", body = WebhookList),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<WebhookList>, ApiError> {
    caller.require_admin()?;
    let all = app.store.webhooks().await?;
    Ok(Json(WebhookList {
        webhooks: all.iter().map(view).collect(),
    }))
}

/// Stops deliveries to an endpoint (administrators).
#[utoipa::path(
    delete,
    operation_id = "deleteWebhook",
    path = "/api/v1/webhooks/{id}",
    tag = "uplink",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn disable(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = path_id("webhook", &id)?;
    if app.store.disable_webhook(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("webhook {id}")))
    }
}

/// An endpoint's delivery log, newest first (administrators).
#[utoipa::path(
    get,
    operation_id = "listWebhookDeliveries",
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "uplink",
    params(
        ("id" = String, Path, description = "Webhook id"),
        ("before" = Option<String>, Query, description = "Deliveries with a smaller id (paging)"),
        ("limit" = Option<i64>, Query, description = "At most this many (default 100, max 1000)"),
    ),
    responses(
        (status = 200, description = "OK", body = DeliveryLog),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn deliveries(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    query: QueryParams,
) -> Result<Json<DeliveryLog>, ApiError> {
    caller.require_admin()?;
    let id = path_id("webhook", &id)?;
    if app.store.webhook(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("webhook {id}")));
    }
    let before = query.id("before")?;
    let limit = query.limit(100, 1000)?;
    let log = app.store.webhook_deliveries(id, before, limit).await?;
    Ok(Json(DeliveryLog {
        deliveries: log.iter().map(delivery_view).collect(),
    }))
}
