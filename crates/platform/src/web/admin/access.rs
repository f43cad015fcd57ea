//! Authentication, authorisation and auditing of every `/api/v1` request, in one layer.
//!
//! [`authenticate`] turns the `Authorization: Bearer` header (root admin token or a personal
//! `rcp_` token) or the console session cookie into a [`Principal`], refuses unsafe methods
//! to auditors and to cookie requests without the session's `X-CSRF-Token`, and, after the
//! handler ran, writes the audit log: every successful change, and every read whose handler
//! attached an [`AuditNote`] (bulk reads of personal data). Handlers take a [`Caller`] and
//! check scope with its helpers, which answer 403/404 in the API's error shape.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::extract::{echo, path_id};
use crate::accounts::audit::{self, AuditNote};
use crate::accounts::{Principal, personal_tokens, sessions};
use crate::services::scope::{self, VisibleWorker};
use crate::state::App;
use crate::state::AppState;
use crate::store::{Device, Project};

/// The authenticated caller, for handlers.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Caller)
            .ok_or(ApiError::Unauthorized)
    }
}

impl Caller {
    /// 403 unless the caller is an administrator.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.is_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// Whether a method changes something (and so needs write rights and, with a cookie, CSRF).
fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The middleware of every authenticated `/api/v1` route; see the module docs.
pub async fn authenticate(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let now = crate::runtime::util::now_ms();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let unsafe_method = is_unsafe(req.method());
    let principal = match bearer {
        Some(presented) => {
            // Exact and constant-time: a token is a secret, not a hex sign (whose case
            // ZJ-SIGN-13 ignores).
            if crate::accounts::secret_eq(app.admin_token.expose(), presented) {
                Principal::Root
            } else {
                personal_tokens::resolve(&app, presented, now)
                    .await?
                    .ok_or(ApiError::Unauthorized)?
            }
        }
        None => {
            let cookie = sessions::cookie_value(req.headers()).ok_or(ApiError::Unauthorized)?;
            let principal = sessions::resolve(&app, cookie, now)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            if unsafe_method {
                let presented = req
                    .headers()
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !sessions::csrf_matches(&principal, presented) {
                    return Err(ApiError::custom(
                        axum::http::StatusCode::FORBIDDEN,
                        "csrf",
                        "缺少或错误的 X-CSRF-Token",
                    ));
                }
            }
            principal
        }
    };
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| req.uri().path().to_owned(), |u| u.path().to_owned());
    // Auditors read; the one thing they may change is their own tokens and password.
    if unsafe_method && !principal.can_write() && !path.starts_with("/api/v1/me") {
        return Err(ApiError::Forbidden);
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let method = req.method().clone();
    req.extensions_mut().insert(principal.clone());
    let response = next.run(req).await;
    let note = response.extensions().get::<AuditNote>().cloned();
    if response.status().is_success() && (unsafe_method || note.is_some()) {
        audit::record(
            &app,
            &principal,
            &format!("{method} {path}"),
            &path,
            note.map(|n| n.0),
            ip,
        )
        .await;
    }
    Ok(response)
}

/// A device by the sn in a path, or 404 — also for a device outside the caller's scope.
pub async fn device_or_404(app: &App, caller: &Caller, sn: &str) -> Result<Device, ApiError> {
    scope::device(app, &caller.0, sn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("设备 {}", echo(sn))))
}

/// A project the caller may see (404 otherwise, without revealing whether it exists).
pub async fn project_or_404(app: &App, caller: &Caller, raw: &str) -> Result<Project, ApiError> {
    let id = path_id("项目", raw)?;
    scope::project(app, &caller.0, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("项目 {id}")))
}

/// A worker the caller may see, with the memberships the caller sees (404 otherwise,
/// without revealing whether they exist).
pub async fn visible_worker(
    app: &App,
    caller: &Caller,
    person_id: &str,
) -> Result<VisibleWorker, ApiError> {
    let id = path_id("工人", person_id)?;
    scope::worker(app, &caller.0, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("工人 {}", echo(person_id))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_safe_and_changes_are_not() {
        assert!(!is_unsafe(&Method::GET));
        assert!(!is_unsafe(&Method::HEAD));
        for m in [Method::POST, Method::PATCH, Method::PUT, Method::DELETE] {
            assert!(is_unsafe(&m));
        }
    }
}
