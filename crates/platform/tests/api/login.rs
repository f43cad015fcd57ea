//! Secrets and sign-ins over HTTP: the root admin token and CSRF tokens are compared
//! exactly; password sign-ins (`POST /api/v1/login`, `POST /console/login`) are throttled
//! per username and per address, bounded in concurrency, and audited when they fail; the
//! console's `next` only ever names a console path.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use rollcall_platform::config::Settings;
use rollcall_protocol::ids::Secret;
use serde_json::{Value, json};

use crate::helpers::TestApp;

const PASSWORD: &str = "Zhejiang-2026-site";

/// Applies settings as a config file would (keys by name; the harness's data dir, database,
/// admin token and flush interval kept).
fn configure(s: &mut Settings, patch: Value) {
    let mut merged: Settings = serde_json::from_value(patch).expect("settings");
    merged.data_dir = s.data_dir.clone();
    merged.database_url = s.database_url.clone();
    merged.admin_token = s.admin_token.clone();
    merged.flush_interval_ms = s.flush_interval_ms;
    *s = merged;
}

async fn user(app: &TestApp, username: &str) {
    app.admin()
        .post(
            "/users",
            &json!({"username": username, "password": PASSWORD, "role": "administrator"}),
        )
        .await
        .expect(201);
}

/// A client whose connections come from `127.0.0.{last}` (all of 127/8 is loopback).
fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn api_login(
    http: &reqwest::Client,
    app: &TestApp,
    username: &str,
    password: &str,
) -> reqwest::Response {
    http.post(format!("{}/api/v1/login", app.base_url))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("login")
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After header: {:?}", r.headers()))
}

/// Secrets are compared exactly (constant time): an admin token with uppercase letters works
/// as configured, and the same letters in another case are not it.
#[tokio::test]
async fn an_admin_token_with_uppercase_letters_works_exactly_and_not_in_another_case() {
    const TOKEN: &str = "Rollcall-Admin-Token-7QkZ-x9Lm";
    let app = TestApp::spawn_with(|s| s.admin_token = Some(Secret::new(TOKEN))).await;

    app.api_as(TOKEN).get("/session").await.expect(200);
    app.api_as(TOKEN).get("/vendors").await.expect(200);
    app.api_as(&TOKEN.to_lowercase())
        .get("/session")
        .await
        .expect(401);
    app.api_as(&TOKEN.to_uppercase())
        .get("/session")
        .await
        .expect(401);
}

/// The session's CSRF token (lowercase hex) in uppercase is a different token: 403.
#[tokio::test]
async fn a_csrf_token_in_another_case_is_refused() {
    let app = TestApp::spawn().await;
    user(&app, "li").await;
    let (cookie, csrf) = app.login("li", PASSWORD).await;
    let post = |csrf: String| {
        let (http, url, cookie) = (
            app.http.clone(),
            format!("{}/api/v1/me/tokens", app.base_url),
            cookie.clone(),
        );
        async move {
            http.post(url)
                .header(reqwest::header::COOKIE, cookie)
                .header("x-csrf-token", csrf)
                .json(&json!({"name": "脚本"}))
                .send()
                .await
                .expect("post")
                .status()
        }
    };

    assert_eq!(post(csrf.to_uppercase()).await, StatusCode::FORBIDDEN);
    assert_eq!(post(csrf.clone()).await, StatusCode::CREATED);
}

/// N wrong passwords in a row lock the username (from any address) and the address (for any
/// username), answered 429 with `Retry-After` without checking the password; when the
/// lockout has passed the right password works. Every failure is in the audit log, without
/// the password.
#[tokio::test]
async fn wrong_passwords_lock_the_username_and_the_address_until_the_lockout_passes() {
    let app = TestApp::spawn_with(|s| {
        configure(
            s,
            json!({"login_max_failures": 3, "login_max_failures_per_addr": 3,
                   "login_lockout_secs": 1, "login_lockout_max_secs": 60}),
        );
    })
    .await;
    user(&app, "li").await;
    user(&app, "wang").await;
    let (here, there) = (client_from(1), client_from(2));

    for _ in 0..3 {
        let r = api_login(&here, &app, "li", "wrong-password-123").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    // The username is locked, from another address too, even with the right password.
    let r = api_login(&there, &app, "li", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!((1..=60).contains(&retry_after(&r)));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_attempts", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("秒后再试")),
        "{body}"
    );
    // The address is locked, for another username too.
    let r = api_login(&here, &app, "wang", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another username from another address is not.
    let r = api_login(&there, &app, "wang", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = api_login(&here, &app, "li", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "after the lockout");

    let audit = app.admin().get("/audit?limit=1000").await.expect(200);
    let failed: Vec<&Value> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "登录失败")
        .collect();
    assert_eq!(failed.len(), 3, "{audit}");
    for e in &failed {
        assert_eq!(e["actor"], "li");
        assert_eq!(e["target"], "/api/v1/login");
        assert_eq!(e["ip"], "127.0.0.1");
    }
    assert!(!audit.to_string().contains("wrong-password-123"));
}

/// The console's sign-in form shares the throttle: 429 in Chinese with `Retry-After`, and
/// its failures are audited too.
#[tokio::test]
async fn the_console_sign_in_is_throttled_in_chinese() {
    let app = TestApp::spawn_with(|s| {
        configure(
            s,
            json!({"login_max_failures": 2, "login_lockout_secs": 30}),
        );
    })
    .await;
    user(&app, "zhao").await;
    let http = client_from(1);
    let submit = |password: &'static str| {
        let (http, url) = (http.clone(), format!("{}/console/login", app.base_url));
        async move {
            http.post(url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(format!("username=zhao&password={password}"))
                .send()
                .await
                .expect("post")
        }
    };
    assert_eq!(submit("wrong-1").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(submit("wrong-2").await.status(), StatusCode::UNAUTHORIZED);

    let r = submit("Zhejiang-2026-site").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!((1..=30).contains(&retry_after(&r)));
    let html = r.text().await.expect("html");
    assert!(html.contains("登录失败次数过多"), "{html}");

    let audit = app.admin().get("/audit?limit=1000").await.expect(200);
    let failed = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "登录失败" && e["target"] == "/console/login")
        .count();
    assert_eq!(failed, 2, "{audit}");
}

/// Password hashing is bounded: with one hasher and no wait, a burst of sign-ins gets 503
/// with `Retry-After` for those that find it busy, instead of a hash each.
#[tokio::test]
async fn sign_ins_beyond_the_hashing_bound_get_503_at_once() {
    let app = TestApp::spawn_with(|s| {
        configure(
            s,
            json!({"max_password_hashes": 1, "password_hash_wait_ms": 0,
                   "login_max_failures": 1000, "login_max_failures_per_addr": 1000}),
        );
    })
    .await;
    let http = client_from(1);
    let attempts = (0..16).map(|i| {
        let (http, app) = (&http, &app);
        async move { api_login(http, app, &format!("nobody{i}"), "wrong-password").await }
    });
    let answers = futures_util::future::join_all(attempts).await;

    let mut busy = 0;
    for r in &answers {
        match r.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(retry_after(r), 1);
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "some sign-ins found the one hasher busy");
    assert!(busy < answers.len(), "some were checked");
}

/// A `next` with a CR/LF (or anything but a console path of visible ASCII) is ignored: the
/// sign-in redirects to the console, with a well-formed `Location`.
#[tokio::test]
async fn a_sign_in_next_with_crlf_redirects_to_the_console() {
    let app = TestApp::spawn().await;
    user(&app, "qian").await;
    let http = client_from(1);
    for next in [
        "/console/workers%0D%0ASet-Cookie:%20x=1",
        "/console%0A",
        "//evil.example/console",
    ] {
        let r = http
            .post(format!("{}/console/login", app.base_url))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!(
                "username=qian&password=Zhejiang-2026-site&next={next}"
            ))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next}");
        assert_eq!(r.headers().get(LOCATION).unwrap(), "/console", "{next}");
        assert!(r.headers().get("x").is_none());
    }
    // A console path is kept.
    let r = http
        .post(format!("{}/console/login", app.base_url))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("username=qian&password=Zhejiang-2026-site&next=/console/workers")
        .send()
        .await
        .expect("post");
    assert_eq!(r.headers().get(LOCATION).unwrap(), "/console/workers");
}
