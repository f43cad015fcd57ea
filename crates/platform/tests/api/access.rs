//! Accounts and access control through the admin API: roles, project scope, personal
//! tokens, sessions with CSRF, and the audit log.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_project_manager_sees_and_changes_only_their_projects() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let (a, b) = (app.project(None).await, app.project(None).await);
    app.register_device("GATE-A", &vendor, Some(&a)).await;
    app.register_device("GATE-B", &vendor, Some(&b)).await;
    let worker_b = app.worker("乙项目工人").await;
    app.assign(&b, &[worker_b]).await;
    let (_, manager) = app.user("li.a", "project_manager", &[&a]).await;

    // Lists are filtered.
    let projects = manager.get("/projects").await.expect(200);
    let ids: Vec<&str> = projects["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);
    let devices = manager.get("/devices").await.expect(200);
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1);
    assert_eq!(devices["devices"][0]["sn"], "GATE-A");
    assert!(
        manager.get("/workers").await.expect(200)["workers"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Another project's things read as missing, and cannot be changed.
    assert_eq!(manager.get(&format!("/projects/{b}")).await.status, 404);
    assert_eq!(manager.get("/devices/GATE-B").await.status, 404);
    assert_eq!(
        manager.get(&format!("/workers/{worker_b}")).await.status,
        404
    );
    assert_eq!(
        manager.get(&format!("/projects/{b}/workers")).await.status,
        404
    );
    let r = manager.get(&format!("/attendance?projectId={b}")).await;
    assert_eq!(r.status, 404);
    let r = manager
        .patch("/devices/GATE-A", &json!({"projectId": b}))
        .await;
    assert_eq!(r.expect(422)["error"]["field"], "projectId");

    // Administration is not theirs.
    assert_eq!(
        manager
            .post("/projects", &json!({"name": "新项目"}))
            .await
            .status,
        403
    );
    assert_eq!(manager.get("/users").await.status, 403);
    assert_eq!(manager.get("/audit").await.status, 403);

    // Enrolment needs one of their projects, and lands there.
    let body =
        json!({"idcardNo": next_idcard_number(), "name": "甲项目工人", "facePhoto": b64(FACE_JPG)});
    assert_eq!(
        manager.post("/workers", &body).await.expect(422)["error"]["field"],
        "projectId"
    );
    let mut body = body;
    body["projectId"] = json!(b);
    assert_eq!(manager.post("/workers", &body).await.status, 403);
    body["projectId"] = json!(a);
    let w = manager.post("/workers", &body).await.expect(201);
    let person = w["personId"].as_str().unwrap();
    let roster = manager
        .get(&format!("/projects/{a}/workers"))
        .await
        .expect(200);
    assert_eq!(roster["workers"][0]["personId"], person);
    let listed = manager.get("/workers").await.expect(200);
    assert_eq!(listed["workers"].as_array().unwrap().len(), 1);
    assert!(
        listed["workers"][0]["idcardNo"]
            .as_str()
            .unwrap()
            .contains("********"),
        "ID numbers are masked in lists"
    );
    // The gate of project A got the worker as a task.
    let tasks = app.tasks_of("GATE-A").await;
    assert!(tasks.iter().any(|t| t.apicode == "T_UPDATE_DEVICE_PERSON"));
}

#[tokio::test]
async fn auditors_read_everything_and_change_nothing() {
    let app = TestApp::spawn().await;
    let project = app.project(None).await;
    let (_, auditor) = app.user("audit.wang", "auditor", &[]).await;
    assert_eq!(
        auditor.get("/projects").await.expect(200)["projects"][0]["id"],
        project.as_str()
    );
    assert_eq!(auditor.get("/audit").await.status, 200);
    assert_eq!(
        auditor
            .post("/projects", &json!({"name": "x"}))
            .await
            .status,
        403
    );
    assert_eq!(
        auditor.post("/vendors", &json!({"name": "x"})).await.status,
        403
    );
    let r = auditor
        .post(
            &format!("/projects/{project}/teams"),
            &json!({"name": "木工班"}),
        )
        .await;
    assert_eq!(r.status, 403);
    // Their own tokens are theirs to manage.
    assert_eq!(
        auditor
            .post("/me/tokens", &json!({"name": "二号"}))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn cookie_sessions_need_the_csrf_token_for_changes_and_end_at_logout() {
    let app = TestApp::spawn().await;
    app.user("admin.zhao", "administrator", &[]).await;
    let (cookie, csrf) = app.login("admin.zhao", "密码-12345678").await;
    let url = format!("{}/api/v1/projects", app.base_url);

    let read = app
        .http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let body = json!({"name": "钱塘项目"});
    let forged = app
        .http
        .post(&url)
        .header("cookie", &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let e: Value = forged.json().await.unwrap();
    assert_eq!(e["error"]["code"], "csrf");
    let wrong = app
        .http
        .post(&url)
        .header("cookie", &cookie)
        .header("x-csrf-token", "0".repeat(64))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let ok = app
        .http
        .post(&url)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);

    let out = app
        .http
        .post(format!("{}/api/v1/logout", app.base_url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = app
        .http
        .get(&url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn sign_in_does_not_tell_unknown_users_from_wrong_passwords() {
    let app = TestApp::spawn().await;
    app.user("li.si", "auditor", &[]).await;
    for (user, password) in [("li.si", "wrong-password"), ("nobody", "密码-12345678")] {
        let r = app
            .http
            .post(format!("{}/api/v1/login", app.base_url))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_credentials");
        assert_eq!(e["error"]["message"], "用户名或密码错误");
    }
}

#[tokio::test]
async fn revoked_tokens_and_disabled_users_stop_at_once() {
    let app = TestApp::spawn().await;
    let (id, manager) = app.user("wang.wu", "auditor", &[]).await;
    assert_eq!(manager.get("/me").await.expect(200)["username"], "wang.wu");
    let second = manager
        .post("/me/tokens", &json!({"name": "备用"}))
        .await
        .expect(201);
    let second_api = app.api_as(second["token"].as_str().unwrap());
    assert_eq!(second_api.get("/me").await.status, 200);
    let tokens = manager.get("/me/tokens").await.expect(200);
    assert!(
        tokens["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("token").is_none())
    );
    manager
        .delete(&format!("/me/tokens/{}", second["id"].as_str().unwrap()))
        .await
        .expect(204);
    assert_eq!(second_api.get("/me").await.status, 401);

    app.admin()
        .patch(&format!("/users/{id}"), &json!({"disabled": true}))
        .await
        .expect(200);
    assert_eq!(manager.get("/me").await.status, 401);
    let r = app
        .http
        .post(format!("{}/api/v1/login", app.base_url))
        .json(&json!({"username": "wang.wu", "password": "密码-12345678"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn user_fields_are_checked_and_named() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let r = admin
        .post(
            "/users",
            &json!({"username": "a b", "password": "密码-12345678", "role": "auditor"}),
        )
        .await;
    assert_eq!(r.expect(422)["error"]["field"], "username");
    let r = admin
        .post(
            "/users",
            &json!({"username": "ab", "password": "short", "role": "auditor"}),
        )
        .await;
    assert_eq!(r.expect(422)["error"]["field"], "password");
    let r = admin
        .post("/users", &json!({"username": "ab", "password": "密码-12345678", "role": "project_manager", "projectIds": ["123"]}))
        .await;
    assert_eq!(r.expect(422)["error"]["field"], "projectIds");
    admin
        .post(
            "/users",
            &json!({"username": "ab", "password": "密码-12345678", "role": "auditor"}),
        )
        .await
        .expect(201);
    let r = admin
        .post(
            "/users",
            &json!({"username": "ab", "password": "密码-12345678", "role": "auditor"}),
        )
        .await;
    assert_eq!(r.expect(409)["error"]["code"], "username_taken");
    let listed = admin.get("/users").await.expect(200);
    assert!(
        !listed.to_string().contains("argon2"),
        "hashes never leave the API"
    );
}

#[tokio::test]
async fn changes_and_bulk_reads_are_audited_with_who_and_what() {
    let app = TestApp::spawn().await;
    let project = app.project(None).await;
    let (_, manager) = app.user("zhou.liu", "project_manager", &[&project]).await;
    let body = json!({"idcardNo": next_idcard_number(), "name": "审计工人",
                      "facePhoto": b64(FACE_JPG), "projectId": project});
    manager.post("/workers", &body).await.expect(201);
    manager.get("/workers").await.expect(200);
    manager.get("/projects").await.expect(200);

    let log = app.admin().get("/audit?actor=zhou.liu").await.expect(200);
    let entries = log["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"POST /api/v1/workers"), "{actions:?}");
    assert!(
        actions.contains(&"GET /api/v1/workers"),
        "bulk reads are audited: {actions:?}"
    );
    assert!(
        !actions.contains(&"GET /api/v1/projects"),
        "plain reads are not: {actions:?}"
    );
    let read = entries
        .iter()
        .find(|e| e["action"] == "GET /api/v1/workers")
        .unwrap();
    assert_eq!(read["detail"], "读取工人列表 1 人");
    assert!(
        entries
            .iter()
            .all(|e| e["actor"] == "zhou.liu" && e["ip"] == "127.0.0.1")
    );
    assert!(!log.to_string().contains(body["idcardNo"].as_str().unwrap()));

    // The export is a CSV download, audited itself.
    let (status, csv) = app.download("/audit?format=csv").await;
    assert_eq!(status, 200);
    let text = String::from_utf8(csv).unwrap();
    assert!(text.starts_with('\u{feff}') && text.contains("时间,操作人,操作"));
    assert!(text.contains("zhou.liu"));
    let log = app.admin().get("/audit?actor=root").await.expect(200);
    assert!(log["entries"].as_array().unwrap().iter().any(|e| {
        e["detail"]
            .as_str()
            .unwrap_or("")
            .starts_with("导出审计日志")
    }));
}
