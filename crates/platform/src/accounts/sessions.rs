//! Console sessions: sign-in with a password, an opaque cookie, a CSRF token per session.
//!
//! The cookie (`rollcall_session`) holds 256 random bits; the store keeps only their SHA-256,
//! so a copy of the database does not sign anyone in. The cookie is `HttpOnly`,
//! `SameSite=Lax` and `Secure` when the public URL is https. Sessions last
//! [`SESSION_TTL_MS`] from sign-in; disabling a user or changing their password ends them.
//! Every unsafe request made with the cookie must carry the session's CSRF token (a hidden
//! form field `csrf`, or the `X-CSRF-Token` header for scripts) — SameSite alone does not
//! protect older browsers.

use axum::http::HeaderMap;
use axum::http::header;

use std::net::IpAddr;

use super::{Principal, audit, digest, random_hex256};
use crate::runtime::{login_throttle as throttle, password};
use crate::state::App;
use crate::store::StoreResult;
use crate::store::console::{SessionRow, User};

/// The session cookie's name.
pub const COOKIE: &str = "rollcall_session";
/// How long a session lasts: a working day.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// Why a sign-in failed. Unknown user, wrong password and disabled account read the same,
/// so that the answer does not reveal which usernames exist.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("用户名或密码错误")]
    Invalid,
    /// Too many failures of this username or from this address (`runtime::login_throttle`): 429
    /// with `Retry-After`. The password was not even checked.
    #[error("登录失败次数过多，请 {retry_after_secs} 秒后再试")]
    Locked { retry_after_secs: u64 },
    /// No password hasher was free in time: 503.
    #[error(transparent)]
    Busy(#[from] password::Busy),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A session just opened: the cookie value goes to the browser once.
#[derive(Debug)]
pub struct NewSession {
    pub cookie_value: String,
    pub csrf: String,
    pub user: User,
}

/// Checks a username and password and opens a session. Sign-ins are throttled per
/// username and per source address (`addr`), and every failure is written to the audit log
/// (`target` names the door: `/api/v1/login`, `/console/login`).
pub async fn login(
    app: &App,
    username: &str,
    password_text: &str,
    addr: Option<IpAddr>,
    target: &str,
    now: i64,
) -> Result<NewSession, LoginError> {
    let username = username.trim();
    if let Some(until) = app.login_throttle.locked_until(username, addr, now) {
        return Err(LoginError::Locked {
            retry_after_secs: throttle::retry_after_secs(until, now),
        });
    }
    let user = app.store.user_by_name(username).await?;
    let valid = match &user {
        Some(user) => {
            app.hasher
                .verify(password_text, &user.password_hash)
                .await?
                && !user.disabled
        }
        None => {
            app.hasher.waste_a_verification().await?;
            false
        }
    };
    // Sign-ins of one burst all pass the first check together: one that finds a lockout
    // set meanwhile (by the burst's other failures) is answered as locked whatever its
    // password, so a burst learns nothing past the threshold.
    let locked_meanwhile = app
        .login_throttle
        .locked_until(username, addr, now)
        .map(|until| LoginError::Locked {
            retry_after_secs: throttle::retry_after_secs(until, now),
        });
    let Some(user) = user.filter(|_| valid) else {
        let failed = app.login_throttle.failed(username, addr, now);
        let detail = match failed.locked_until {
            Some(until) => format!(
                "用户名或密码错误；此后锁定 {} 秒",
                throttle::retry_after_secs(until, now)
            ),
            None => "用户名或密码错误".to_owned(),
        };
        audit::record_failed_login(app, username, target, detail, addr).await;
        return Err(locked_meanwhile.unwrap_or(LoginError::Invalid));
    };
    if let Some(locked) = locked_meanwhile {
        return Err(locked);
    }
    app.login_throttle.succeeded(username);
    let cookie_value = random_hex256();
    let csrf = random_hex256();
    app.store
        .create_session(&SessionRow {
            token_hash: digest(&cookie_value),
            user_id: user.id,
            csrf: csrf.clone(),
            created_at: now,
            expires_at: now + SESSION_TTL_MS,
        })
        .await?;
    Ok(NewSession {
        cookie_value,
        csrf,
        user,
    })
}

/// The principal of a live session cookie; `None` if unknown, expired or the user is
/// disabled.
pub async fn resolve(app: &App, cookie_value: &str, now: i64) -> StoreResult<Option<Principal>> {
    let Some(session) = app.store.session(&digest(cookie_value)).await? else {
        return Ok(None);
    };
    if session.expires_at <= now {
        app.store.delete_session(&session.token_hash).await?;
        return Ok(None);
    }
    match app.store.user(session.user_id).await? {
        Some(user) if !user.disabled => Ok(Some(
            Principal::of_user(app, &user, Some(session.csrf)).await?,
        )),
        _ => Ok(None),
    }
}

/// Ends the session of a cookie (signing out).
pub async fn logout(app: &App, cookie_value: &str) -> StoreResult<()> {
    app.store.delete_session(&digest(cookie_value)).await
}

/// The session cookie's value in a request's `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(cookie_value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={cookie_value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SESSION_TTL_MS / 1000,
        if secure { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// Whether a presented CSRF token matches the session's (constant time).
pub fn csrf_matches(principal: &Principal, presented: &str) -> bool {
    match principal {
        Principal::User(u) => u
            .csrf
            .as_deref()
            .is_some_and(|expected| super::secret_eq(expected, presented)),
        Principal::Root => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; rollcall_session=abc; b=2"),
        );
        assert_eq!(cookie_value(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("rollcall_sessionx=1; x=rollcall_session"),
        );
        assert_eq!(cookie_value(&h), None);
        assert_eq!(cookie_value(&HeaderMap::new()), None);
    }

    #[test]
    fn csrf_tokens_are_compared_exactly() {
        let p = Principal::User(super::super::UserPrincipal {
            id: 1,
            username: "li".into(),
            display_name: "李".into(),
            role: crate::accounts::Role::Administrator,
            projects: vec![],
            csrf: Some("ab12cd".into()),
        });
        assert!(csrf_matches(&p, "ab12cd"));
        assert!(!csrf_matches(&p, "AB12CD"));
        assert!(!csrf_matches(&p, "ab12c"));
        assert!(!csrf_matches(&Principal::Root, ""));
    }

    #[test]
    fn cookies_are_http_only_and_secure_over_https() {
        let c = set_cookie("v", true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.ends_with("Secure"));
        assert!(!set_cookie("v", false).contains("Secure"));
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
