//! Data at rest and response hardening: the data directory and every file the platform
//! creates are its alone; console pages and admin API answers carry the headers that keep
//! them out of frames, caches and content sniffing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::helpers::{FACE_JPG, TestApp, b64, next_idcard_number};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` is 0600 and every directory 0700; returns how many files.
fn assert_private_tree(dir: &Path) -> usize {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files = 0;
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files += assert_private_tree(&path);
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
    }
    files
}

/// The data dir is 0700 (also when it existed as 0755), and what the platform creates in it
/// is 0600: admin.token, url-signing.key, the SQLite database and its -wal/-shm files, face
/// photos and attendance segments.
#[tokio::test]
async fn the_data_dir_is_0700_and_the_files_the_platform_creates_0600() {
    let mut data_dir = None;
    let app = TestApp::spawn_with(|s| {
        let dir = s.data_dir.join("data");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        s.data_dir = dir.clone();
        // Without a configured token, one is generated into the data dir.
        s.admin_token = None;
        data_dir = Some(dir);
    })
    .await;
    let data_dir = data_dir.expect("the data dir");
    let token = std::fs::read_to_string(data_dir.join("admin.token")).expect("admin.token");
    let admin = app.api_as(token.trim());
    admin
        .post(
            "/workers",
            &json!({"idcardNo": next_idcard_number(), "name": "孙七", "facePhoto": b64(FACE_JPG)}),
        )
        .await
        .expect(201);

    assert_eq!(mode(&data_dir), 0o700);
    for name in ["admin.token", "url-signing.key"] {
        assert_eq!(mode(&data_dir.join(name)), 0o600, "{name}");
    }
    let files = assert_private_tree(&data_dir.join("files"));
    assert!(files >= 2, "a face photo and a segment: {files}");

    // The database (SQLite: beside the data dir in this harness, created by the store).
    if let Some(path) = app
        .state()
        .settings
        .database_url()
        .strip_prefix("sqlite://")
        .and_then(|rest| rest.split('?').next())
    {
        let db = Path::new(path);
        assert_eq!(mode(db), 0o600, "{}", db.display());
        for suffix in ["-wal", "-shm"] {
            let side = db.with_file_name(format!(
                "{}{suffix}",
                db.file_name().unwrap().to_string_lossy()
            ));
            if side.exists() {
                assert_eq!(mode(&side), 0o600, "{}", side.display());
            }
        }
    }
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("{} has no {name}: {:?}", r.url(), r.headers()))
}

/// Every console response (the sign-in form, a redirect, a page, an error) is not framed,
/// not sniffed, under a CSP without script, and not cached.
#[tokio::test]
async fn console_responses_carry_the_security_headers() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in ["/console/login", "/console/workers", "/console"] {
        let r = http
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .expect("get");
        assert_eq!(header(&r, "x-frame-options"), "DENY");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff");
        assert_eq!(header(&r, "cache-control"), "no-store");
        let csp = header(&r, "content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
    }
    // A failed sign-in (an error page) too.
    let r = http
        .post(format!("{}/console/login", app.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=nobody&password=wrong-password")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "x-frame-options"), "DENY");
    assert_eq!(header(&r, "cache-control"), "no-store");
}

/// The admin API's JSON is not sniffed and not cached (answers, errors, unknown paths).
#[tokio::test]
async fn admin_api_answers_are_nosniff_and_no_store() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    for (path, token) in [
        ("/api/v1/vendors", Some(crate::helpers::ADMIN_TOKEN)),
        ("/api/v1/vendors", None),
        ("/api/v1/no-such-thing", Some(crate::helpers::ADMIN_TOKEN)),
    ] {
        let mut req = http.get(format!("{}{path}", app.base_url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("get");
        assert_eq!(header(&r, "x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header(&r, "cache-control"), "no-store", "{path}");
    }
}

/// Expired console sessions and long-idle device tokens are deleted by the housekeeper.
#[tokio::test]
async fn expired_sessions_and_idle_device_tokens_are_purged() {
    use rollcall_platform::store::console::{SessionRow, User};
    let app = TestApp::spawn_with(|s| s.token_idle_secs = 1).await;
    let vendor = app.vendor().await;
    app.register_device("SN-PURGE", &vendor, None).await;
    let mut dev = app.http_device(&vendor, "SN-PURGE");
    let token = dev.auth().await;
    assert!(app.store().token(&token).await.expect("token").is_some());

    let now = crate::helpers::now_ms();
    let user = User {
        id: 4242,
        username: "expired".to_owned(),
        display_name: "过期".to_owned(),
        password_hash: "x".to_owned(),
        role: rollcall_platform::store::console::Role::Auditor,
        disabled: false,
        created_at: now,
    };
    app.store().create_user(&user).await.expect("user");
    let session = |hash: &str, expires_at: i64| SessionRow {
        token_hash: hash.to_owned(),
        user_id: 4242,
        csrf: "c".to_owned(),
        created_at: now - 10_000,
        expires_at,
    };
    app.store()
        .create_session(&session("expired-hash", now - 1))
        .await
        .expect("session");
    app.store()
        .create_session(&session("live-hash", now + 3_600_000))
        .await
        .expect("session");

    crate::helpers::eventually("the expired session and the idle token purged", || async {
        let gone = app
            .store()
            .session("expired-hash")
            .await
            .expect("read")
            .is_none()
            && app.store().token(&token).await.expect("read").is_none();
        gone.then_some(())
    })
    .await;
    assert!(
        app.store()
            .session("live-hash")
            .await
            .expect("read")
            .is_some(),
        "a live session stays"
    );
}
