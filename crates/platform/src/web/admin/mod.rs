//! The admin REST API under `/api/v1` (docs/PRODUCT.md RC-PROD-08, RC-PROD-09), plus `/healthz` and
//! `/metrics`. JSON in and out, `Authorization: Bearer <admin token>`, errors as
//! `{"error": {"code", "message", …}}` ([`error::ApiError`]); ids are decimal strings and
//! times epoch milliseconds.
//!
//! One module per resource: [`vendors`], [`projects`], [`members`] (rosters), [`teams`], [`devices`],
//! [`workers`], [`tasks`], [`attendance`]; [`extract`] holds the shared request plumbing
//! (JSON bodies and query parameters whose errors are [`ApiError`]s) and [`openapi`] the
//! OpenAPI 3.1 document, served without authentication at `/api/v1/openapi.json`.

pub mod access;
pub mod attendance;
pub mod audit;
pub mod devices;
pub mod error;
pub mod extract;
pub mod firmware;
pub mod members;
pub mod national;
pub mod openapi;
pub mod projects;
pub mod reports;
pub mod tasks;
pub mod teams;
pub mod uplink;
pub mod users;
pub mod vendors;
pub mod webhooks;
pub mod workers;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;
use error::ApiError;

/// Health, metrics and the authenticated `/api/v1` routes.
pub fn routes(app: AppState) -> Router<AppState> {
    let max_photo_bytes = app.settings.max_photo_bytes;
    let api = Router::new()
        .route("/session", get(session))
        .merge(vendors::routes())
        .merge(projects::routes())
        .merge(members::routes())
        .merge(teams::routes())
        .merge(devices::routes())
        .merge(workers::routes(max_photo_bytes))
        .merge(tasks::routes())
        .merge(attendance::routes())
        .merge(users::routes())
        .merge(audit::routes())
        .merge(reports::routes())
        .merge(firmware::routes())
        .merge(uplink::routes())
        .merge(national::routes())
        .merge(webhooks::routes())
        .route_layer(middleware::from_fn_with_state(app, access::authenticate))
        // Added after the auth layer, so they need no token.
        .route("/openapi.json", get(openapi::serve))
        .merge(users::public_routes())
        .fallback(not_found)
        .layer(middleware::map_response(harden));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
}

/// Every `/api/v1` answer: not sniffed, and — unless it says otherwise (a download) — never
/// cached, as answers carry personal data.
async fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
    response
}

/// Unknown paths under `/api/v1` answer in the API's error shape.
async fn not_found() -> ApiError {
    ApiError::custom(StatusCode::NOT_FOUND, "not_found", "接口不存在")
}

/// Who the bearer token authenticates (the console checks its token with it).
#[utoipa::path(
    get,
    path = "/api/v1/session",
    operation_id = "getSession",
    tag = "session",
    responses((status = 200, description = "The token is valid: `{\"role\": \"administrator\"}` (the caller's role)", body = Object))
)]
pub async fn session(caller: access::Caller) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "role": caller.0.role() }))
}

async fn healthz(State(app): State<AppState>) -> Response {
    match app.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok", "backend": app.store.backend()})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}
