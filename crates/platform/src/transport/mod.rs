//! How bytes reach the platform: the device TCP gateway, the HTTP surface (device API, signed
//! files, and the web layer's admin API and console mounted into one router), and cross-node
//! push.
//!
//! - [`gateway`]: one task per TCP connection, pipelined requests, pushed commands.
//! - [`device_http`]: `POST /device/api` and its `{apicode}` alias.
//! - [`files`]: signed, expiring downloads of stored photos and firmware.
//! - [`http`]: serves the router with header and request timeouts and connection caps, over
//!   TLS when configured ([`tls`]: certificate and key into a rustls configuration).
//! - [`cluster`]: PostgreSQL `LISTEN/NOTIFY` so a task made on any node reaches its device.

pub(crate) mod cluster;
pub(crate) mod device_http;
pub(crate) mod files;
pub(crate) mod gateway;
pub(crate) mod http;
pub(crate) mod tls;

use axum::Router;

use crate::state::AppState;

/// The whole HTTP surface of a platform instance.
pub fn router(app: AppState) -> Router {
    Router::new()
        .merge(device_http::routes())
        .merge(files::routes())
        .merge(crate::web::admin::routes(app.clone()))
        .merge(crate::web::console::routes(app.clone()))
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/console") }),
        )
        .with_state(app)
}
