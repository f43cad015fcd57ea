//! The web console (`/console`): server-rendered Chinese pages for site labour managers,
//! auditors and administrators, on top of the same services and store as the admin API.
//!
//! - Pages are askama templates compiled into the binary (`templates/console/*.html`,
//!   auto-escaped), styled by one embedded stylesheet ([`STYLESHEET`]) and usable without
//!   JavaScript: every action is a plain HTML form.
//! - [`require_session`] guards every page but the sign-in form and the stylesheet: no valid
//!   session cookie redirects to `/console/login`; auditors' changes are refused there, once.
//!   Every form carries the session's CSRF token, checked by [`page::Ctx::writable`].
//! - Scope follows the admin API's rules (`admin::access`): project managers see only their
//!   projects, their devices and the workers enrolled in them; anything else answers 404, so
//!   its existence is not revealed.
//! - Every change and every bulk read of personal data is written to the audit log.
//!
//! One module per page group: [`login`], [`dashboard`], [`devices`], [`workers`],
//! [`attendance`], [`projects`], [`reports`], [`users`]; [`page`] holds the shared context and
//! formatting, [`error`] the error page.

pub mod attendance;
pub mod dashboard;
pub mod devices;
pub mod error;
pub mod login;
pub mod page;
pub mod projects;
pub mod reports;
pub mod uplink;
pub mod users;
pub mod workers;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::accounts::sessions;
use crate::state::AppState;
use error::ConsoleError;
use page::Ctx;

/// The console's stylesheet, embedded so that the binary is the whole deployment.
pub const STYLESHEET: &str = include_str!("../../../templates/console/app.css");

/// Every console route, ready to merge into the platform's router.
pub fn routes(app: AppState) -> Router<AppState> {
    let max_photo_bytes = app.settings.max_photo_bytes;
    let csp = content_security_policy(app.signer.public_url());
    let pages = Router::new()
        .route("/console", get(dashboard::show))
        .route("/console/", get(dashboard::show))
        .route("/console/logout", axum::routing::post(login::logout))
        .merge(devices::routes())
        .merge(workers::routes(max_photo_bytes))
        .merge(attendance::routes())
        .merge(projects::routes())
        .merge(reports::routes())
        .merge(users::routes())
        .merge(uplink::routes())
        .route("/console/{*rest}", get(not_found))
        .route_layer(middleware::from_fn_with_state(app, require_session));
    Router::new()
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/static/app.css", get(stylesheet))
        .merge(pages)
        .layer(middleware::map_response_with_state(csp, harden))
}

/// The console's Content-Security-Policy: its own stylesheet, pictures from itself and from
/// the public URL photos are signed under, forms posted to itself, no script, no frame.
fn content_security_policy(public_url: &str) -> HeaderValue {
    let origin = public_url
        .split_once("://")
        .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)))
        .filter(|o| {
            o.bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        })
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; style-src 'self'; img-src 'self' {origin}; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::try_from(policy).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        )
    })
}

/// Every console response: not framed (clickjacking), not sniffed, its CSP, and — unless it
/// says otherwise (the stylesheet) — never cached, as pages show personal data.
async fn harden(State(csp): State<HeaderValue>, mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn not_found() -> ConsoleError {
    ConsoleError::NotFound
}

/// The stylesheet, cacheable for a day (its link carries the crate version, so an upgrade
/// is fetched at once).
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Resolves the session cookie into a [`Ctx`] for the handlers, or sends the browser to the
/// sign-in form. Auditors read only: their unsafe requests (other than signing out) are
/// refused here, so no handler can forget it.
pub async fn require_session(
    State(app): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ConsoleError> {
    let now = crate::runtime::util::now_ms();
    let principal = match sessions::cookie_value(req.headers()) {
        Some(cookie) => sessions::resolve(&app, cookie, now).await?,
        None => None,
    };
    let Some(principal) = principal else {
        if req.method() == Method::GET {
            let path = req.uri().path();
            let target = if path == "/console" || path == "/console/" {
                "/console/login".to_owned()
            } else {
                format!("/console/login?next={}", page::enc(path))
            };
            return Ok(Redirect::to(&target).into_response());
        }
        return Err(ConsoleError::Unauthenticated);
    };
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    if !safe && !principal.can_write() && req.uri().path() != "/console/logout" {
        return Err(ConsoleError::Forbidden);
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    req.extensions_mut().insert(Ctx { principal, ip });
    Ok(next.run(req).await)
}
