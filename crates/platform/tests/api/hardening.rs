//! Data at rest and response hardening: the data directory and every file the platform
//! creates are its alone; console pages and admin API answers carry the headers that keep
//! them out of frames, caches and content sniffing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rollcall_platform::store::sealing::Keyring;
use rollcall_platform::store::test_db::TEST_SECRET_KEY;
use rollcall_platform::{Platform, StartupError};
use rollcall_protocol::ids::Secret;
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
/// is 0600: admin.token, url-signing.key, secret.key, the SQLite database and its -wal/-shm files, face
/// photos and attendance segments.
#[tokio::test]
async fn the_data_dir_is_0700_and_the_files_the_platform_creates_0600() {
    let mut data_dir = None;
    let app = TestApp::spawn_from_settings(|s| {
        let dir = s.data_dir.join("data");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        s.data_dir = dir.clone();
        // Without a configured token or secret key, both are generated into the data dir.
        s.admin_token = None;
        s.secret_key = None;
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
    for name in ["admin.token", "url-signing.key", "secret.key"] {
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

// --- vendor secrets at rest (sealed under the secret key) ---------------------------------

/// Every stored `access_key` and `access_secret`, vendors' and credentials', read with SQL
/// from the database itself (what a stolen copy of it shows).
async fn stored_secrets(app: &TestApp) -> Vec<String> {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&app.settings().database_url())
        .await
        .expect("open the database");
    let mut values = Vec::new();
    for sql in [
        "SELECT access_key, access_secret FROM vendors",
        "SELECT access_key, access_secret FROM credentials",
    ] {
        for row in sqlx::query(sql).fetch_all(&mut conn).await.expect(sql) {
            values.push(row.get::<String, _>(0));
            values.push(row.get::<String, _>(1));
        }
    }
    conn.close().await.expect("close");
    values
}

/// Asserts that every stored secret is sealed under the key `key_id`, and that none of
/// `clear` appears.
fn assert_sealed(values: &[String], key_id: &str, clear: &[&str]) {
    assert!(!values.is_empty());
    for value in values {
        assert!(
            value.starts_with(&format!("sealed:v1:{key_id}:")),
            "not sealed under {key_id}: {value}"
        );
        for c in clear {
            assert!(!value.contains(c), "clear secret in {value}");
        }
    }
}

fn key_id(keys: &str) -> String {
    Keyring::parse(keys)
        .expect("keys")
        .current_id()
        .expect("a key")
        .to_owned()
}

/// Regression (trust review, finding 9): vendor secrets were stored in clear. They are
/// sealed, and devices still sign with them; rotated credentials are sealed too.
#[tokio::test]
async fn vendor_secrets_are_sealed_at_rest_and_devices_still_sign_with_them() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-SEALED-1");
    dev.auth().await;
    let test_key = key_id(TEST_SECRET_KEY);
    assert_sealed(
        &stored_secrets(&app).await,
        &test_key,
        &[&vendor.access_key, &vendor.secret],
    );

    let rotated = app.rotate(&vendor).await;
    let mut dev = app.http_device(&rotated, "SN-SEALED-1");
    dev.auth().await;
    let values = stored_secrets(&app).await;
    assert_eq!(values.len(), 6, "the vendor row and two credentials");
    assert_sealed(
        &values,
        &test_key,
        &[
            &vendor.access_key,
            &vendor.secret,
            &rotated.access_key,
            &rotated.secret,
        ],
    );
}

/// Rotation as SECURITY.md gives it: a new key first and the old one after it reseals every
/// value at startup; then the old key can go. A node without the key that sealed the values
/// refuses to start, naming the key, instead of failing every device.
#[tokio::test]
async fn a_new_key_reseals_every_secret_at_startup_and_a_missing_key_stops_the_start() {
    let mut app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let new_key = Keyring::generate_key().expect("a key");

    app.restart_with(|s| s.secret_key = Some(Secret::new(format!("{new_key},{TEST_SECRET_KEY}"))))
        .await;
    assert_sealed(
        &stored_secrets(&app).await,
        &key_id(&new_key),
        &[&vendor.access_key, &vendor.secret],
    );
    app.restart_with(|s| s.secret_key = Some(Secret::new(new_key.clone())))
        .await;
    let mut dev = app.http_device(&vendor, "SN-SEALED-2");
    dev.auth().await;

    app.shutdown().await;
    let mut settings = app.settings().clone();
    settings.secret_key = Some(Secret::new(TEST_SECRET_KEY));
    let Err(StartupError::SecretKey(message)) =
        Platform::build(settings, "http://127.0.0.1:1").await
    else {
        panic!("a node without the sealing key must not start");
    };
    assert!(message.contains(&key_id(&new_key)), "{message}");
}

/// Secrets written before sealing existed (a database from an earlier release) are sealed
/// at the next start, and still work.
#[tokio::test]
async fn clear_secrets_from_an_earlier_release_are_sealed_at_the_next_start() {
    use sqlx::Connection;
    let mut app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.shutdown().await;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&app.settings().database_url())
        .await
        .expect("open the database");
    for table in ["vendors", "credentials"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET access_key = $1, access_secret = $2"
        )))
        .bind(vendor.access_key.clone())
        .bind(vendor.secret.clone())
        .execute(&mut conn)
        .await
        .expect("write clear secrets");
    }
    conn.close().await.expect("close");
    assert!(stored_secrets(&app).await.contains(&vendor.secret));

    app.restart().await;
    assert_sealed(
        &stored_secrets(&app).await,
        &key_id(TEST_SECRET_KEY),
        &[&vendor.access_key, &vendor.secret],
    );
    let mut dev = app.http_device(&vendor, "SN-SEALED-3");
    dev.auth().await;
}

/// Without a configured key, one is generated into `secret.key` (0600) and reused; a key
/// file others can read, or one that is not a key, stops the start with a clear message.
#[tokio::test]
async fn the_generated_key_file_is_private_reused_and_checked() {
    let mut app = TestApp::spawn_from_settings(|s| s.secret_key = None).await;
    let path = app.settings().data_dir.join("secret.key");
    assert_eq!(mode(&path), 0o600);
    let first = std::fs::read_to_string(&path).expect("secret.key");
    let vendor = app.vendor().await;
    assert_sealed(
        &stored_secrets(&app).await,
        &key_id(&first),
        &[&vendor.secret],
    );

    app.restart().await;
    assert_eq!(std::fs::read_to_string(&path).expect("secret.key"), first);
    let mut dev = app.http_device(&vendor, "SN-SEALED-4");
    dev.auth().await;
    app.shutdown().await;

    let settings = app.settings().clone();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let Err(StartupError::SecretKey(message)) =
        Platform::build(settings.clone(), "http://127.0.0.1:1").await
    else {
        panic!("a key file others can read must stop the start");
    };
    assert!(message.contains("chmod 600"), "{message}");

    std::fs::write(&path, "not a key\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let Err(StartupError::SecretKey(message)) =
        Platform::build(settings, "http://127.0.0.1:1").await
    else {
        panic!("a key file without a key must stop the start");
    };
    assert!(
        message.contains("secret.key") && message.contains("base64"),
        "{message}"
    );
}
