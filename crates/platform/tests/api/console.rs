//! The web console over plain HTTP: sign-in, the session guard, CSRF, the auditor's read-only
//! view and project managers' scope (another project's device or worker answers 404).

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::helpers::{FACE_JPG, TestApp, multipart, next_idcard_number};

const PASSWORD: &str = "Zhejiang-2026-site";
const FORM: &str = "application/x-www-form-urlencoded";

/// An `application/x-www-form-urlencoded` body, as a browser sends a form.
fn encode(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn form(fields: &[(&str, &str)]) -> String {
    encode(fields)
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Creates a console user through the admin API.
async fn user(app: &TestApp, username: &str, role: &str, projects: &[&str]) {
    app.admin()
        .post(
            "/users",
            &json!({"username": username, "password": PASSWORD, "role": role, "projectIds": projects}),
        )
        .await
        .expect(201);
}

/// A signed-in console session: its cookie and CSRF token (read from a page's form).
struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Session {
    async fn login(app: &TestApp, username: &str) -> Session {
        let http = client();
        let r = http
            .post(format!("{}/console/login", app.base_url))
            .header(CONTENT_TYPE, FORM)
            .body(form(&[("username", username), ("password", PASSWORD)]))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in of {username}");
        let cookie = r
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a session cookie")
            .to_owned();
        Session {
            http,
            base: app.base_url.clone(),
            cookie,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("get");
        (r.status(), r.text().await.unwrap_or_default())
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(CONTENT_TYPE, FORM)
            .body(encode(fields))
            .send()
            .await
            .expect("post");
        (r.status(), r.text().await.unwrap_or_default())
    }

    /// The CSRF token of the session, from the sign-out form every page carries.
    async fn csrf(&self) -> String {
        let (_, html) = self.get("/console").await;
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).expect("a csrf field") + marker.len();
        html[start..]
            .split('"')
            .next()
            .expect("csrf value")
            .to_owned()
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_pages_need_a_session() {
    let app = TestApp::spawn().await;
    user(&app, "wang", "administrator", &[]).await;
    let http = client();
    let r = http
        .post(format!("{}/console/login", app.base_url))
        .header(CONTENT_TYPE, FORM)
        .body(form(&[
            ("username", "wang"),
            ("password", "not-the-password"),
        ]))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(
        r.text()
            .await
            .unwrap_or_default()
            .contains("用户名或密码错误")
    );

    for path in [
        "/console",
        "/console/workers",
        "/console/devices/X1",
        "/console/attendance",
    ] {
        let r = http
            .get(format!("{}{path}", app.base_url))
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        let to = r
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(to.starts_with("/console/login"), "{path} → {to}");
    }
    // A forged cookie is no session either.
    let r = http
        .get(format!("{}/console/workers", app.base_url))
        .header(COOKIE, "rollcall_session=00ff")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The root of the site leads to the console, and the stylesheet is public and cached.
    let r = http
        .get(format!("{}/", app.base_url))
        .send()
        .await
        .expect("get");
    assert!(r.status().is_redirection());
    let r = http
        .get(format!("{}/console/static/app.css", app.base_url))
        .send()
        .await
        .expect("css");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("cache-control").is_some());

    let admin = Session::login(&app, "wang").await;
    let (status, html) = admin.get("/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("设备在线"));
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    user(&app, "wang", "administrator", &[]).await;
    let s = Session::login(&app, "wang").await;
    let form = [
        ("username", "li"),
        ("password", PASSWORD),
        ("role", "auditor"),
    ];
    let (status, html) = s.post("/console/users", &form).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("CSRF"));
    let mut wrong = form.to_vec();
    wrong.push(("csrf", "0000"));
    assert_eq!(
        s.post("/console/users", &wrong).await.0,
        StatusCode::FORBIDDEN
    );
    // Nothing was created (the first start may have made an `admin` besides `wang`); with
    // the token it is.
    let users = |v: serde_json::Value| {
        v["users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["username"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert!(!users(app.admin().get("/users").await.expect(200)).contains(&"li".to_owned()));
    let csrf = s.csrf().await;
    let mut right = form.to_vec();
    right.push(("csrf", &csrf));
    assert_eq!(
        s.post("/console/users", &right).await.0,
        StatusCode::SEE_OTHER
    );
    assert!(users(app.admin().get("/users").await.expect(200)).contains(&"li".to_owned()));
    // Signing out needs the token too.
    assert_eq!(
        s.post("/console/logout", &[("csrf", "x")]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post("/console/logout", &[("csrf", &csrf)]).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(s.get("/console").await.0, StatusCode::SEE_OTHER);
    // The changes are in the audit log.
    let log = app.admin().get("/audit").await.expect(200);
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"创建用户"), "{actions:?}");
}

#[tokio::test]
async fn auditors_get_no_change_forms_and_their_posts_are_refused() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("AUD-1", &vendor, Some(&project)).await;
    user(&app, "shen", "auditor", &[]).await;
    let s = Session::login(&app, "shen").await;
    for path in [
        "/console",
        "/console/devices",
        "/console/devices/AUD-1",
        "/console/workers",
        "/console/attendance",
        "/console/audit",
    ] {
        let (status, html) = s.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        // The only form an auditor gets is signing out.
        assert_eq!(html.matches("method=\"post\"").count(), 1, "{path}");
    }
    assert_eq!(s.get("/console/devices/new").await.0, StatusCode::FORBIDDEN);
    assert_eq!(s.get("/console/users").await.0, StatusCode::FORBIDDEN);
    let csrf = s.csrf().await;
    let (status, _) = s
        .post(
            "/console/devices/new",
            &[
                ("csrf", &csrf),
                ("sn", "AUD-2"),
                ("vendor_id", &vendor.id),
                ("kind", "gate"),
                ("project_id", &project),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(app.device_info("AUD-2").await.is_none());
}

#[tokio::test]
async fn project_managers_see_only_their_projects() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let a = app.project(None).await;
    let b = app.project(None).await;
    app.register_device("PM-A", &vendor, Some(&a)).await;
    app.register_device("PM-B", &vendor, Some(&b)).await;
    let wa = app.worker("甲工人").await;
    let wb = app.worker("乙工人").await;
    app.assign(&a, &[wa]).await;
    app.assign(&b, &[wb]).await;
    user(&app, "pm_a", "project_manager", &[&a]).await;
    let s = Session::login(&app, "pm_a").await;

    assert_eq!(s.get("/console/devices/PM-A").await.0, StatusCode::OK);
    assert_eq!(
        s.get("/console/devices/PM-B").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/console/workers/{wa}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.get(&format!("/console/workers/{wb}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/console/projects/{b}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/console/attendance?project={b}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, list) = s.get("/console/workers").await;
    assert!(list.contains("甲工人") && !list.contains("乙工人"));
    // ID-card numbers are masked in lists.
    assert!(list.contains("********"));
    let (_, devices) = s.get("/console/devices").await;
    assert!(devices.contains("PM-A") && !devices.contains("PM-B"));
    // A gate can be registered only into their own project.
    let csrf = s.csrf().await;
    let (status, _) = s
        .post(
            "/console/devices/new",
            &[
                ("csrf", &csrf),
                ("sn", "PM-C"),
                ("vendor_id", &vendor.id),
                ("kind", "gate"),
                ("project_id", &b),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = s
        .post(
            "/console/devices/new",
            &[
                ("csrf", &csrf),
                ("sn", "PM-C"),
                ("vendor_id", &vendor.id),
                ("kind", "gate"),
                ("project_id", &a),
                ("direction", "in"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let d = app.device_info("PM-C").await.expect("registered");
    assert_eq!(d.project_id.as_deref(), Some(a.as_str()));
    // Reading the worker list is audited.
    let log = app.admin().get("/audit").await.expect(200);
    assert!(log.to_string().contains("查看工人列表"));
}

#[tokio::test]
async fn the_reports_page_imports_a_roster_and_exports_only_the_users_projects() {
    let app = TestApp::spawn().await;
    let (mine, theirs) = (app.project(None).await, app.project(None).await);
    user(&app, "li.reports", "project_manager", &[&mine]).await;
    let s = Session::login(&app, "li.reports").await;
    let (status, html) = s.get("/console/reports").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"monthly\"") && html.contains("id=\"import\""));

    // Import through the form: one good row, one refused row with a report to download.
    let good = next_idcard_number();
    let csv = format!("姓名,身份证号,班组\n钱七,{good},瓦工班\n孙八,110105194912310020,\n");
    let zip = {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file(
            format!("{good}.jpg"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        w.write_all(FACE_JPG).unwrap();
        w.finish().unwrap().into_inner()
    };
    let csrf = s.csrf().await;
    let (content_type, body) = multipart(&[
        ("csrf", None, csrf.as_bytes()),
        ("project", None, mine.as_bytes()),
        ("roster", Some("花名册.csv"), csv.as_bytes()),
        ("photos", Some("照片.zip"), &zip),
    ]);
    let r = s
        .http
        .post(format!("{}/console/reports/import", s.base))
        .header(COOKIE, &s.cookie)
        .header(CONTENT_TYPE, content_type.clone())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("新登记 1 人"), "{html}");
    assert!(
        html.contains("错误 1 行") && html.contains("下载错误报告"),
        "{html}"
    );
    let roster = app
        .admin()
        .get(&format!("/projects/{mine}/workers"))
        .await
        .expect(200);
    assert_eq!(roster["workers"][0]["name"], "钱七");

    // Another project is out of reach: import and export both answer 404.
    let (content_type, body) = multipart(&[
        ("csrf", None, csrf.as_bytes()),
        ("project", None, theirs.as_bytes()),
        ("roster", Some("花名册.csv"), csv.as_bytes()),
    ]);
    let r = s
        .http
        .post(format!("{}/console/reports/import", s.base))
        .header(COOKIE, &s.cookie)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let month = "2026-11";
    let (status, _) = s
        .get(&format!(
            "/console/reports/monthly.xlsx?month={month}&project={theirs}"
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r = s
        .http
        .get(format!(
            "{}/console/reports/monthly.xlsx?month={month}",
            s.base
        ))
        .header(COOKIE, &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK"), "an xlsx workbook");
}
