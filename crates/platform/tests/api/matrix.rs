//! The authorization matrix of the admin API: every operation of the OpenAPI document the
//! server serves (`GET /api/v1/openapi.json`, assembled from the handlers' `#[utoipa::path]`)
//! × {anonymous, auditor, project manager of the object's project, project manager of
//! another project, administrator} → allowed or refused.
//!
//! The expectations are one table, [`MATRIX`]. An operation the server documents without a
//! row fails the test ("route X has no expectation"), and so does a row for an operation
//! that no longer exists: a new route cannot ship without deciding who may call it.
//!
//! What the cells mean (the API's conventions, `web::admin::access`):
//! - `A`, allowed: anything but 401 or 403 or a 404 `not_found` (a 404 with its own code,
//!   e.g. `reconciliation_pending`, or a 409/422 for the minimal body is the handler at
//!   work, not a refusal), and never a 5xx.
//! - `D`, refused: 401 (no credentials), 403 (the role may not), 404 (the object is outside
//!   the caller's scope and reads as missing), or 422 `unknown_project`/`unknown_person`
//!   (an object named in the body outside the scope reads as unknown).
//! - `P`, public (sign-in, sign-out): not behind the access layer; only "no 5xx" is checked.
//!
//! Objects: the auditor and both project managers act on the objects of project A (device,
//! worker, task, team…); the administrator on the same kind of objects of project B, so a
//! change made by one allowed role never hides the object from the next.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use rollcall_client::NewUser;
use serde_json::{Value, json};

use crate::helpers::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    /// Allowed.
    A,
    /// Refused.
    D,
    /// Public.
    P,
}
use Cell::{A, D, P};

/// A request's body: none, JSON (with the `$…` placeholders below), or a multipart form.
#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    Json(&'static str),
    Multipart,
}

/// Who calls, in the order of the cells.
const ROLES: [&str; 5] = ["anonymous", "auditor", "pm_own", "pm_other", "admin"];

/// (method, path as documented, query, body, [anonymous, auditor, PM of the object's
/// project, PM of another project, administrator]). Rows run in this order, once per
/// role, so destructive rows (leaving, blacklisting, revoking) come after the reads and
/// changes that need their object. Placeholders: `{id}` (the object of the path's
/// resource), `{sn}`, `{personId}`, `{taskid}`, and in bodies and queries `$project`,
/// `$vendor`, `$sn`, `$person`, `$role`, `$idcard`, `$face`.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, &str, Body, [Cell; 5])] = &[
    //  method    path                                                   query                         body                                                                                    anon aud own oth adm
    ("GET",    "/api/v1/session",                                      "",                           Body::None,                                                                            [D, A, A, A, A]),
    // Vendors: credentials are the administrators'; reading (no secrets) is everyone's.
    ("POST",   "/api/v1/vendors",                                      "",                           Body::Json(r#"{"name":"矩阵厂商"}"#),                                                  [D, D, D, D, A]),
    ("GET",    "/api/v1/vendors",                                      "",                           Body::None,                                                                            [D, A, A, A, A]),
    ("GET",    "/api/v1/vendors/{id}",                                 "",                           Body::None,                                                                            [D, A, A, A, A]),
    ("POST",   "/api/v1/vendors/{id}/rotate-credentials",              "",                           Body::None,                                                                            [D, D, D, D, A]),
    // Projects, rosters, teams.
    ("POST",   "/api/v1/projects",                                     "",                           Body::Json(r#"{"name":"矩阵项目"}"#),                                                  [D, D, D, D, A]),
    ("GET",    "/api/v1/projects",                                     "",                           Body::None,                                                                            [D, A, A, A, A]),
    ("GET",    "/api/v1/projects/{id}",                                "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("POST",   "/api/v1/projects/{id}/workers",                        "",                           Body::Json(r#"{"personIds":["$person"]}"#),                                            [D, D, A, D, A]),
    ("GET",    "/api/v1/projects/{id}/workers",                        "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("POST",   "/api/v1/projects/{id}/teams",                          "",                           Body::Json(r#"{"name":"木工班-$role"}"#),                                             [D, D, A, D, A]),
    ("GET",    "/api/v1/projects/{id}/teams",                          "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("PATCH",  "/api/v1/projects/{id}/workers/{personId}",             "",                           Body::Json(r#"{"trade":"钢筋工"}"#),                                                  [D, D, A, D, A]),
    ("GET",    "/api/v1/projects/{id}/daily",                          "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("POST",   "/api/v1/projects/{id}/import",                         "",                           Body::Multipart,                                                                       [D, D, A, D, A]),
    ("GET",    "/api/v1/reports/monthly",                              "?month=2026-01&projectId=$project", Body::None,                                                                     [D, A, A, D, A]),
    ("GET",    "/api/v1/attendance",                                   "?projectId=$project",        Body::None,                                                                            [D, A, A, D, A]),
    // Devices and their tasks.
    ("POST",   "/api/v1/devices",                                      "",                           Body::Json(r#"{"sn":"MX-NEW-$role","vendorId":"$vendor","kind":"face","projectId":"$project"}"#),    [D, D, A, D, A]),
    ("GET",    "/api/v1/devices",                                      "",                           Body::None,                                                                            [D, A, A, A, A]),
    ("GET",    "/api/v1/devices/{sn}",                                 "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("PATCH",  "/api/v1/devices/{sn}",                                 "",                           Body::Json(r#"{"name":"矩阵门禁"}"#),                                                 [D, D, A, D, A]),
    ("GET",    "/api/v1/devices/{sn}/presence",                        "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("GET",    "/api/v1/devices/{sn}/persons",                         "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("POST",   "/api/v1/devices/{sn}/tasks",                           "",                           Body::Json(r#"{"apicode":"T_UPDATE_DEVICE_PERSON","param":{"personIds":["$person"]}}"#), [D, D, A, D, A]),
    ("GET",    "/api/v1/devices/{sn}/tasks",                           "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("GET",    "/api/v1/devices/{sn}/tasks/{taskid}/reconciliation",   "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("POST",   "/api/v1/devices/{sn}/tasks/{taskid}/retry",            "",                           Body::None,                                                                            [D, D, A, D, A]),
    // Workers.
    ("POST",   "/api/v1/workers",                                      "",                           Body::Json(r#"{"idcardNo":"$idcard","name":"矩阵工人","facePhoto":"$face","projectId":"$project"}"#), [D, D, A, D, A]),
    ("GET",    "/api/v1/workers",                                      "",                           Body::None,                                                                            [D, A, A, A, A]),
    ("GET",    "/api/v1/workers/{personId}",                           "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("PATCH",  "/api/v1/workers/{personId}",                           "",                           Body::Json(r#"{"phone":"13900000000"}"#),                                             [D, D, A, D, A]),
    ("DELETE", "/api/v1/projects/{id}/workers/{personId}",             "",                           Body::None,                                                                            [D, D, A, D, A]),
    ("POST",   "/api/v1/workers/{personId}/blacklist",                 "",                           Body::Json(r#"{"reason":"矩阵"}"#),                                                   [D, D, D, D, A]),
    ("GET",    "/api/v1/blacklist",                                    "",                           Body::None,                                                                            [D, A, D, D, A]),
    ("DELETE", "/api/v1/workers/{personId}/blacklist",                 "",                           Body::None,                                                                            [D, D, D, D, A]),
    // Firmware: administrators change, administrators and auditors read.
    ("POST",   "/api/v1/firmware",                                     "",                           Body::Multipart,                                                                       [D, D, D, D, A]),
    ("GET",    "/api/v1/firmware",                                     "",                           Body::None,                                                                            [D, A, D, D, A]),
    ("GET",    "/api/v1/firmware/{id}",                                "",                           Body::None,                                                                            [D, A, D, D, A]),
    ("POST",   "/api/v1/firmware/{id}/deploy",                         "",                           Body::Json(r#"{"sn":"$sn"}"#),                                                        [D, D, D, D, A]),
    // Users, the caller's own account, the audit log.
    ("POST",   "/api/v1/users",                                        "",                           Body::Json(r#"{"username":"mx-new-$role","password":"密码-12345678","role":"auditor"}"#), [D, D, D, D, A]),
    ("GET",    "/api/v1/users",                                        "",                           Body::None,                                                                            [D, D, D, D, A]),
    ("PATCH",  "/api/v1/users/{id}",                                   "",                           Body::Json(r#"{"displayName":"矩阵"}"#),                                              [D, D, D, D, A]),
    ("GET",    "/api/v1/me",                                           "",                           Body::None,                                                                            [D, A, A, A, A]),
    ("POST",   "/api/v1/me/password",                                  "",                           Body::Json(r#"{"currentPassword":"错误","newPassword":"另一个密码-12345678"}"#),     [D, A, A, A, A]),
    ("POST",   "/api/v1/me/tokens",                                    "",                           Body::Json(r#"{"name":"矩阵"}"#),                                                     [D, A, A, A, A]),
    ("GET",    "/api/v1/me/tokens",                                    "",                           Body::None,                                                                            [D, A, A, A, A]),
    ("DELETE", "/api/v1/me/tokens/{id}",                               "",                           Body::None,                                                                            [D, A, A, A, A]),
    ("GET",    "/api/v1/audit",                                        "",                           Body::None,                                                                            [D, A, D, D, A]),
    ("POST",   "/api/v1/login",                                        "",                           Body::Json(r#"{"username":"nobody","password":"x"}"#),                                [P, P, P, P, P]),
    ("POST",   "/api/v1/logout",                                       "",                           Body::None,                                                                            [P, P, P, P, P]),
    // Uplink to the national platform: settings are the administrators'; items are read by whoever sees the project.
    ("PUT",    "/api/v1/projects/{id}/uplink",                         "",                           Body::Json(r#"{"endpoint":"http://127.0.0.1:9/open.api","appid":"330100000000000001","appsecret":"0123456789abcdef0123456789abcdef","corpCode":"c","corpName":"n","enabled":false}"#), [D, D, D, D, A]),
    ("GET",    "/api/v1/projects/{id}/uplink",                         "",                           Body::None,                                                                            [D, D, D, D, A]),
    ("GET",    "/api/v1/projects/{id}/uplink/items",                   "",                           Body::None,                                                                            [D, A, A, D, A]),
    ("POST",   "/api/v1/projects/{id}/uplink/retry",                   "",                           Body::None,                                                                            [D, D, D, D, A]),
    ("GET",    "/api/v1/dictionaries",                                 "",                           Body::None,                                                                            [D, A, A, A, A]),
    ("PUT",    "/api/v1/dictionaries/{kind}/{code}",                   "",                           Body::Json(r#"{"name":"矩阵工种"}"#),                                                 [D, D, D, D, A]),
    // Webhooks: the administrators'.
    ("POST",   "/api/v1/webhooks",                                     "",                           Body::Json(r#"{"url":"http://127.0.0.1:9/hook-$role","events":["worker"]}"#),          [D, D, D, D, A]),
    ("GET",    "/api/v1/webhooks",                                     "",                           Body::None,                                                                            [D, D, D, D, A]),
    ("GET",    "/api/v1/webhooks/{id}/deliveries",                     "",                           Body::None,                                                                            [D, D, D, D, A]),
    ("DELETE", "/api/v1/webhooks/{id}",                                "",                           Body::None,                                                                            [D, D, D, D, A]),
];

/// The objects one caller acts on.
#[derive(Debug, Clone)]
struct Objects {
    project: String,
    sn: String,
    person: String,
    taskid: String,
}

/// Fixed objects of the whole run.
struct World {
    vendor: String,
    firmware: String,
    spare_user: String,
    webhook: String,
}

const PASSWORD: &str = "密码-12345678";

/// A user with a personal token: the token's text.
async fn token_of(app: &TestApp, username: &str, role: &str, projects: &[&str]) -> String {
    let root = app.admin().0;
    root.create_user(&NewUser {
        username: username.to_owned(),
        display_name: None,
        password: PASSWORD.to_owned(),
        role: role.to_owned(),
        project_ids: projects.iter().map(|p| (*p).to_owned()).collect(),
    })
    .await
    .expect("a user");
    root.personal_token(username, PASSWORD, "矩阵")
        .await
        .expect("a token")
        .token
        .expect("its text")
}

/// A bound device with a worker on its project's roster and an open T_POST_DEVICE_PERSON.
async fn objects(app: &TestApp, vendor: &VendorCreds, sn: &str) -> Objects {
    let project = app.project(None).await;
    app.register_device(sn, vendor, Some(&project)).await;
    let person = app.worker("矩阵工人").await;
    app.assign(&project, &[person]).await;
    let task = app
        .task(sn, rollcall_protocol::ApiCode::PostDevicePerson, None)
        .await;
    Objects {
        project,
        sn: sn.to_owned(),
        person: person.to_string(),
        taskid: task.taskid,
    }
}

/// The id a `{id}` stands for in this path.
fn path_id(path: &str, objects: &Objects, world: &World, token_id: &str) -> String {
    if path.starts_with("/api/v1/vendors/") {
        world.vendor.clone()
    } else if path.starts_with("/api/v1/firmware/") {
        world.firmware.clone()
    } else if path.starts_with("/api/v1/webhooks/") {
        world.webhook.clone()
    } else if path.starts_with("/api/v1/users/") {
        world.spare_user.clone()
    } else if path.starts_with("/api/v1/me/tokens/") {
        token_id.to_owned()
    } else {
        objects.project.clone()
    }
}

#[tokio::test]
async fn every_route_answers_every_role_as_the_matrix_says() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let a = objects(&app, &vendor, "MX-A").await;
    let b = objects(&app, &vendor, "MX-B").await;
    let package = b"\x7fELF matrix".repeat(8);
    let firmware = app
        .post_multipart(
            "/firmware",
            &[
                ("vendorId", None, vendor.id.as_bytes()),
                ("kind", None, b"face"),
                ("version", None, b"1.0"),
                ("file", Some("fw.bin"), &package),
            ],
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_project = app.project(None).await;
    let spare = app
        .admin()
        .post(
            "/users",
            &json!({"username": "mx-spare", "password": PASSWORD, "role": "auditor"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let webhook = app
        .admin()
        .post(
            "/webhooks",
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["task"]}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let world = World {
        vendor: vendor.id.clone(),
        firmware,
        spare_user: spare,
        webhook,
    };
    // Callers: (token, objects they act on).
    let tokens: [Option<String>; 5] = [
        None,
        Some(token_of(&app, "mx-auditor", "auditor", &[]).await),
        Some(token_of(&app, "mx-pm-own", "project_manager", &[&a.project]).await),
        Some(token_of(&app, "mx-pm-other", "project_manager", &[&other_project]).await),
        Some(token_of(&app, "mx-admin", "administrator", &[]).await),
    ];
    let acts_on = [&a, &a, &a, &a, &b];
    // A token of each caller for `DELETE /me/tokens/{id}` to revoke.
    let mut spare_tokens = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let id = match token {
            Some(t) => {
                let r = app
                    .api_as(t)
                    .post("/me/tokens", &json!({"name": "待撤销"}))
                    .await;
                r.expect(201)["id"].as_str().unwrap().to_owned()
            }
            None => "1".to_owned(),
        };
        spare_tokens.push((i, id));
    }

    // The routes the server documents, and the table's rows.
    let (status, doc) = fetch(&app.http, &format!("{}/api/v1/openapi.json", app.base_url)).await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&doc).unwrap();
    let mut served = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            served.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let rows: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, ..)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let mut problems: Vec<String> = served
        .difference(&rows)
        .map(|(m, p)| format!("route {m} {p} has no expectation"))
        .collect();
    problems.extend(
        rows.difference(&served)
            .map(|(m, p)| format!("row {m} {p} names no served route")),
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(rows.len(), MATRIX.len(), "one row per route");

    let mut wrong = BTreeMap::new();
    for (method, template, query, body, cells) in MATRIX {
        for (i, role) in ROLES.iter().enumerate() {
            let o = acts_on[i];
            let path = template
                .replace("{id}", &path_id(template, o, &world, &spare_tokens[i].1))
                .replace("{sn}", &o.sn)
                .replace("{personId}", &o.person)
                .replace("{taskid}", &o.taskid)
                .replace("{kind}", "work_type")
                .replace("{code}", "990");
            let fill = |text: &str| {
                text.replace("$project", &o.project)
                    .replace("$vendor", &world.vendor)
                    .replace("$sn", &o.sn)
                    .replace("$person", &o.person)
                    .replace("$role", &role.replace('_', "-"))
                    .replace("$idcard", &next_idcard_number())
                    .replace("$face", &b64(FACE_JPG))
            };
            let url = format!("{}{}{}", app.base_url, path, fill(query));
            let mut req = app
                .http
                .request(Method::from_bytes(method.as_bytes()).unwrap(), &url);
            if let Some(token) = &tokens[i] {
                req = req.bearer_auth(token);
            }
            req = match body {
                Body::None => req,
                Body::Json(text) => req
                    .header("content-type", "application/json")
                    .body(fill(text)),
                Body::Multipart => {
                    let (content_type, bytes) = multipart(&[("notes", None, &b"matrix"[..])]);
                    req.header("content-type", content_type).body(bytes)
                }
            };
            let resp = req.send().await.expect("a response");
            let status = resp.status().as_u16();
            let answer: Value = resp.json().await.unwrap_or(Value::Null);
            let code = answer["error"]["code"].as_str().unwrap_or("");
            let ok = match cells[i] {
                A => {
                    let refused =
                        matches!(status, 401 | 403) || (status == 404 && code == "not_found");
                    !refused && status < 500
                }
                D => {
                    matches!(status, 401 | 403 | 404)
                        || (status == 422 && matches!(code, "unknown_project" | "unknown_person"))
                }
                P => status < 500,
            };
            if !ok {
                wrong.insert(
                    format!("{method} {template} as {role}"),
                    format!("expected {:?}, got {status} {answer}", cells[i]),
                );
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells disagree:\n{}",
        wrong.len(),
        wrong
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
