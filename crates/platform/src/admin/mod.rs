//! The admin REST API under `/api/v1` (PRODUCT.md "Admin REST API"), plus `/healthz` and
//! `/metrics`. JSON in and out, `Authorization: Bearer <admin token>`, errors as
//! `{"error": {"code", "message", …}}` ([`error::ApiError`]); ids are decimal strings and
//! times epoch milliseconds.

pub mod error;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;
use error::ApiError;

/// Health, metrics and the authenticated `/api/v1` routes.
pub fn routes(app: AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/session", get(session))
        .route_layer(middleware::from_fn_with_state(app, require_admin));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
}

/// Who the bearer token authenticates (the console checks its token with it).
async fn session() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "role": "administrator" }))
}

async fn require_admin(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !rollcall_protocol::sign::matches(app.admin_token.expose(), presented)
        || presented.len() != app.admin_token.expose().len()
    {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(req).await)
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
