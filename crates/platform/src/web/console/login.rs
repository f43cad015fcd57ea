//! Signing in and out: `GET/POST /console/login` (a password form that opens a session and
//! sets its cookie) and `POST /console/logout` (with the CSRF token).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::error::ConsoleError;
use super::page::{Ctx, render};
use crate::accounts::sessions::{self, LoginError};
use crate::accounts::{Principal, audit};
use crate::runtime::util::now_ms;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Only a console path may be a redirect target (no open redirect to another site): a
/// relative path starting with a single `/`, of visible ASCII only — no control character
/// (a CR or LF would break the `Location` header), no space, no backslash.
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/console")
        && !next.starts_with("//")
        && !next.contains("://")
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !next.starts_with("/console/login");
    if ok { next } else { "/console" }
}

/// `GET /console/login`: the form; a signed-in user goes straight to the console.
pub async fn form(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Result<Response, ConsoleError> {
    let next = safe_next(q.next.as_deref().unwrap_or("")).to_owned();
    if let Some(cookie) = sessions::cookie_value(&headers)
        && sessions::resolve(&app, cookie, now_ms()).await?.is_some()
    {
        return Ok(Redirect::to(&next).into_response());
    }
    Ok(render(&LoginPage {
        next,
        username: String::new(),
        error: None,
    })?
    .into_response())
}

/// `POST /console/login`: checks the password, opens a session, sets the cookie.
pub async fn submit(
    State(app): State<AppState>,
    connect: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    Form(f): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let next = safe_next(&f.next).to_owned();
    let addr = connect.map(|axum::Extension(c)| c.0.ip());
    let ip = addr.map(|a| a.to_string());
    let now = now_ms();
    match sessions::login(&app, &f.username, &f.password, addr, "/console/login", now).await {
        Ok(s) => {
            let principal = Principal::of_user(&app, &s.user, Some(s.csrf.clone())).await?;
            audit::record(&app, &principal, "登录控制台", "/console", None, ip).await;
            let cookie = sessions::set_cookie(&s.cookie_value, app.settings.public_url_is_https());
            Ok((
                StatusCode::SEE_OTHER,
                [(header::SET_COOKIE, cookie), (header::LOCATION, next)],
            )
                .into_response())
        }
        Err(LoginError::Invalid) => {
            tracing::info!(ip = ?ip, "console sign-in refused");
            let page = render(&LoginPage {
                next,
                username: f.username.trim().chars().take(64).collect(),
                error: Some("用户名或密码错误".to_owned()),
            })?;
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
        Err(LoginError::Locked { retry_after_secs }) => {
            let page = render(&LoginPage {
                next,
                username: f.username.trim().chars().take(64).collect(),
                error: Some(format!("登录失败次数过多，请 {retry_after_secs} 秒后再试")),
            })?;
            Ok((
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                page,
            )
                .into_response())
        }
        Err(LoginError::Busy(b)) => Err(b.into()),
        Err(LoginError::Store(e)) => Err(e.into()),
    }
}

/// `POST /console/logout`: ends the session and clears the cookie.
pub async fn logout(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    if !sessions::csrf_matches(&ctx.principal, &f.csrf) {
        return Err(ConsoleError::Csrf);
    }
    if let Some(cookie) = sessions::cookie_value(&headers) {
        sessions::logout(&app, cookie).await?;
    }
    ctx.audit(&app, "退出控制台", "/console", None).await;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, sessions::clear_cookie()),
            (header::LOCATION, "/console/login".to_owned()),
        ],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_console_paths_are_redirect_targets() {
        assert_eq!(safe_next("/console/workers"), "/console/workers");
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example",
            "/api/v1",
            "/console/login",
            "/console\r\nSet-Cookie: x=1",
            "/console/workers\n",
            "/console/a b",
            "/console/\\evil",
            "/console/\u{7f}",
            "/console/工人",
        ] {
            assert_eq!(safe_next(bad), "/console", "{bad:?}");
        }
    }
}
