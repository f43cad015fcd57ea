//! `GET /files/{key}?expires=…&sig=…`: photos and firmware behind signed, expiring URLs.
//! Faces are sensitive personal information: no valid signature, no bytes.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::runtime::util::now_ms;
use crate::state::AppState;
use rollcall_rules::photo::PhotoFormat;

pub fn routes() -> Router<AppState> {
    Router::new().route("/files/{*key}", get(file))
}

#[derive(Debug, Deserialize)]
struct Signed {
    #[serde(default)]
    expires: String,
    #[serde(default)]
    sig: String,
}

async fn file(
    State(app): State<AppState>,
    Path(key): Path<String>,
    Query(q): Query<Signed>,
) -> Response {
    let now = (now_ms() / 1000).max(0) as u64;
    if let Err(e) = app
        .signer
        .verify(&format!("/files/{key}"), &q.expires, &q.sig, now)
    {
        tracing::debug!(error = %e, "file URL refused");
        return (StatusCode::FORBIDDEN, "链接无效或已过期").into_response();
    }
    let bytes = app.blobs.get(&key).await;
    match bytes {
        Ok(bytes) => {
            let mime = PhotoFormat::sniff(&bytes).map_or("application/octet-stream", |f| f.mime());
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "private, max-age=300"),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (StatusCode::NOT_FOUND, "文件不存在").into_response()
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            (StatusCode::NOT_FOUND, "文件不存在").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "reading a stored file failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "系统异常").into_response()
        }
    }
}
