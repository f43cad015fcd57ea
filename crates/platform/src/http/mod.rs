//! Everything served over HTTP: the device API, signed files, the admin API, health and
//! metrics, assembled into one router.

pub mod device;
pub mod files;

use axum::Router;

use crate::state::AppState;

/// The whole HTTP surface of a platform instance.
pub fn router(app: AppState) -> Router {
    Router::new()
        .merge(device::routes())
        .merge(files::routes())
        .merge(crate::admin::routes(app.clone()))
        .merge(crate::console::routes(app.clone()))
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/console") }),
        )
        .with_state(app)
}
