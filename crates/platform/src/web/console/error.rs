//! The console's error type: each variant names its status and is shown as a Chinese error
//! page; internal detail is logged, never shown.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No session (an unsafe request; pages redirect to the sign-in form instead).
    #[error("not signed in")]
    Unauthenticated,
    #[error("forbidden")]
    Forbidden,
    /// A form without the session's CSRF token.
    #[error("bad csrf token")]
    Csrf,
    /// Unknown, or outside the user's scope (not revealed).
    #[error("not found")]
    NotFound,
    /// A request the page cannot serve, with a message for the user.
    #[error("{0}")]
    BadRequest(String),
    /// No password hasher free in time: 503 with `Retry-After: 1`.
    #[error(transparent)]
    Busy(#[from] crate::runtime::password::Busy),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("render: {0}")]
    Render(#[from] askama::Error),
    #[error("{0}")]
    Internal(String),
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            ConsoleError::Unauthenticated => {
                return Redirect::to("/console/login").into_response();
            }
            ConsoleError::Forbidden => (
                StatusCode::FORBIDDEN,
                "无权操作",
                "您的账号没有执行此操作的权限。",
            ),
            ConsoleError::Csrf => (
                StatusCode::FORBIDDEN,
                "请求已失效",
                "表单校验失败（CSRF），请返回刷新页面后重试。",
            ),
            ConsoleError::NotFound => (
                StatusCode::NOT_FOUND,
                "页面不存在",
                "您访问的内容不存在或无权查看。",
            ),
            ConsoleError::BadRequest(m) => (StatusCode::BAD_REQUEST, "请求有误", m.as_str()),
            ConsoleError::Busy(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "系统繁忙",
                "登录请求过多，请稍后再试。",
            ),
            ConsoleError::Store(StoreError::NotFound(_)) => (
                StatusCode::NOT_FOUND,
                "页面不存在",
                "您访问的内容不存在或无权查看。",
            ),
            ConsoleError::Store(_) | ConsoleError::Render(_) | ConsoleError::Internal(_) => {
                tracing::error!(error = %self, "console request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "系统异常",
                    "系统异常，请稍后重试。",
                )
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            title,
            message,
        };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "rendering the error page failed");
                (status, title.to_owned()).into_response()
            }
        };
        if matches!(self, ConsoleError::Busy(_)) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, 1u64.into());
        }
        response
    }
}
