//! `POST /device/api` and `POST /device/api/{apicode}` (ZJ-TRANS-01 to ZJ-TRANS-04, ZJ-HTTP-01 to ZJ-HTTP-05).
//!
//! HTTP status is 200 for every answer with a protocol body — also for a body that is not
//! JSON (400_02). A body over `max_body_bytes` gets 413 with a `413_01` body.

use axum::Router;
use axum::body::Body;
use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::post;
use rollcall_protocol::code::{ErrorCode, ProtocolError};
use rollcall_protocol::envelope::{Request, Response, Transport};

use crate::pipeline;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/device/api", post(without_path))
        .route("/device/api/{apicode}", post(with_path))
}

async fn without_path(
    State(app): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> HttpResponse {
    device_api(app, None, peer.map(|p| p.0.0.ip()), body).await
}

async fn with_path(
    State(app): State<AppState>,
    Path(apicode): Path<String>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> HttpResponse {
    device_api(app, Some(apicode), peer.map(|p| p.0.0.ip()), body).await
}

async fn device_api(
    app: AppState,
    path_apicode: Option<String>,
    peer: Option<IpAddr>,
    body: Body,
) -> HttpResponse {
    let bytes = match axum::body::to_bytes(body, app.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            let detail = format!("请求体超过 {} 字节", app.settings.max_body_bytes);
            let resp = Response::to(
                &Request::default(),
                Err(ProtocolError::with_detail(ErrorCode::TooLarge, detail)),
            );
            return json(StatusCode::PAYLOAD_TOO_LARGE, resp);
        }
    };
    let mut req = match Request::from_http_body(&bytes) {
        Ok(r) => r,
        // ZJ-TRANS-03: a body that is not JSON gets 400_02, with HTTP status 200 all the same.
        Err(e) => {
            let mut blank = Request::default();
            if let Some(a) = &path_apicode {
                blank.apicode = a.clone();
            }
            return json(StatusCode::OK, Response::to(&blank, Err(e)));
        }
    };
    if let Some(a) = path_apicode
        && let Err(e) = req.apply_path_apicode(&a)
    {
        return json(StatusCode::OK, pipeline::refuse(&app, &req, e).await);
    }
    let resp = pipeline::handle(&app, req, Transport::Http, None, peer).await;
    json(StatusCode::OK, resp)
}

fn json(status: StatusCode, resp: Response) -> HttpResponse {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        resp.to_http_json(),
    )
        .into_response()
}
