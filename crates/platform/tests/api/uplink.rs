//! The uplink to the national real-name platform (docs/UPLINK.md), end to end: settings
//! through the admin API, records signed in by a device over HTTP, and a mock national
//! platform (`tests/support/national.rs`, real HTTP on port 0) that checks signatures,
//! decrypts ID numbers, enforces the order and records what it accepted.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::national::{Fault, National};

const APPID: &str = "330100000000000001";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// Short intervals so a test runs in seconds.
fn fast(s: &mut rollcall_platform::Settings) {
    s.uplink.poll_ms = 20;
    s.uplink.request_timeout_ms = 400;
    s.uplink.backoff_ms = 20;
    s.uplink.backoff_max_ms = 100;
    s.uplink.blocked_retry_ms = 200;
    s.uplink.lease_ms = 2000;
    s.uplink.batch_max = 5;
}

fn settings_body(endpoint: &str) -> Value {
    json!({
        "endpoint": endpoint, "appid": APPID, "appsecret": SECRET,
        "corpCode": "91330100MA00000000", "corpName": "西湖建设有限公司", "enabled": true,
    })
}

async fn put(app: &TestApp, project: &str, body: &Value) -> ApiResponse {
    let r = app
        .admin()
        .0
        .send(
            rollcall_client::Method::PUT,
            &format!("/projects/{project}/uplink"),
            Some(body),
        )
        .await
        .expect("admin API");
    ApiResponse {
        status: r.status,
        body: r.body,
    }
}

/// What the national platform needs of a worker beyond enrolment (`PATCH /workers/{id}`).
async fn national_data(app: &TestApp, person: i64) -> Value {
    app.admin()
        .patch(
            &format!("/workers/{person}"),
            &json!({"grantOrg": "杭州市公安局西湖分局", "idValidTo": "长期"}),
        )
        .await
        .expect(200)
}

/// A site: a project with a team, a bound device, workers on the team.
struct Site {
    app: TestApp,
    national: National,
    project: String,
    device: HttpDevice,
    workers: Vec<i64>,
}

/// `uplink_first`: the uplink is set before the team and workers exist (queued as they are
/// made) or after (queued by the first setting, "backfill").
async fn site(workers: usize, uplink_first: bool) -> Site {
    let national = National::start().await;
    national.project(APPID, SECRET);
    let app = TestApp::spawn_with(fast).await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    if uplink_first {
        put(&app, &project, &settings_body(&national.endpoint))
            .await
            .expect(200);
    }
    let team = app
        .admin()
        .post(
            &format!("/projects/{project}/teams"),
            &json!({"name": "钢筋班", "leader": "工人0"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ids = Vec::new();
    for i in 0..workers {
        ids.push(app.worker(&format!("工人{i}")).await);
    }
    app.assign(&project, &ids).await;
    for id in &ids {
        app.admin()
            .patch(
                &format!("/projects/{project}/workers/{id}"),
                &json!({"teamId": team, "trade": "010"}),
            )
            .await
            .expect(204);
        national_data(&app, *id).await;
    }
    if !uplink_first {
        put(&app, &project, &settings_body(&national.endpoint))
            .await
            .expect(200);
    }
    app.register_device("SN-UPLINK", &vendor, Some(&project))
        .await;
    let mut device = app.http_device(&vendor, "SN-UPLINK");
    device.auth().await;
    Site {
        app,
        national,
        project,
        device,
        workers: ids,
    }
}

impl Site {
    /// Signs in `n` records round-robin over the workers; their record times, in order.
    async fn sign_ins(&self, n: usize, base: i64) -> Vec<i64> {
        let mut times = Vec::new();
        for i in 0..n {
            let person = self.workers[i % self.workers.len()];
            let t = base + i as i64 * 1000;
            self.device
                .sign_in(&sign_in_param(&person.to_string(), 1, t))
                .await;
            times.push(t);
        }
        times
    }

    async fn status(&self) -> Value {
        self.app
            .admin()
            .get(&format!("/projects/{}/uplink", self.project))
            .await
            .expect(200)
    }

    async fn items(&self, query: &str) -> Vec<Value> {
        self.app
            .admin()
            .get(&format!("/projects/{}/uplink/items?{query}", self.project))
            .await
            .expect(200)["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until nothing is pending.
    async fn drained(&self) -> Value {
        eventually("the uplink queue to drain", || async {
            let s = self.status().await;
            (s["pending"] == 0).then_some(s)
        })
        .await
    }
}

/// Every attendance row the mock accepted: (ID number, date), in arrival order.
fn accepted_attendance(national: &National) -> Vec<(String, String)> {
    national
        .rows("WorkerAttendance.Add")
        .iter()
        .map(|r| {
            (
                r.item["idCardNumber"].as_str().unwrap().to_owned(),
                r.item["date"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Each record exactly once, and each worker's records in time order.
fn assert_once_in_order(national: &National, expected: usize) {
    let rows = accepted_attendance(national);
    let mut seen = HashMap::new();
    for r in &rows {
        *seen.entry(r.clone()).or_insert(0) += 1;
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "a record was accepted twice: {seen:?}"
    );
    assert_eq!(rows.len(), expected, "every record accepted");
    let mut last: HashMap<&str, &str> = HashMap::new();
    for (id, date) in &rows {
        if let Some(prev) = last.insert(id, date) {
            assert!(prev <= date.as_str(), "{id}: {date} after {prev}");
        }
    }
}

fn beijing(ms: i64) -> String {
    rollcall_platform::uplink::codec::beijing_datetime(ms)
}

#[tokio::test]
async fn a_sites_records_reach_the_national_platform_once_and_in_order() {
    let s = site(3, true).await;
    let base = now_ms() - 60_000;
    let times = s.sign_ins(12, base).await;
    let status = s.drained().await;
    assert_eq!(status["failed"], 0, "{status}");
    assert_once_in_order(&s.national, 12);

    // Team → worker → entry → attendance, as the platform needs them (per worker: one
    // waiting for its team does not hold up the others).
    let rows = s.national.all_rows();
    assert_eq!(rows[0].method, "Team.Add");
    let at = |m: &str, id: &Value| {
        rows.iter()
            .position(|r| r.method == m && r.item["idCardNumber"] == *id)
            .unwrap()
    };
    for w in s.national.rows("ProjectWorker.Add") {
        let id = &w.item["idCardNumber"];
        assert!(at("ProjectWorker.Add", id) < at("WorkerEntryExit.Add", id));
        assert!(at("WorkerEntryExit.Add", id) < at("WorkerAttendance.Add", id));
    }

    // What the mock decrypted is what the platform holds.
    let workers = s.national.rows("ProjectWorker.Add");
    assert_eq!(workers.len(), 3);
    let leader = workers
        .iter()
        .find(|w| w.item["workerName"] == "工人0")
        .unwrap();
    assert_eq!(leader.item["isTeamLeader"], 1);
    assert_eq!(leader.item["workType"], "010");
    let person = s
        .app
        .admin()
        .get(&format!("/workers/{}", s.workers[0]))
        .await
        .expect(200);
    let masked = person["idcardNo"].as_str().unwrap_or_default().to_owned();
    let plain = leader.item["idCardNumber"].as_str().unwrap();
    assert_eq!(plain.len(), 18);
    assert_eq!(&plain[..3], &masked[..3.min(masked.len())]);
    let dates: Vec<String> = accepted_attendance(&s.national)
        .into_iter()
        .map(|r| r.1)
        .collect();
    for t in &times {
        assert!(dates.contains(&beijing(*t)), "{} reported", beijing(*t));
    }

    // Per record and per project, visible.
    let accepted = s.items("state=accepted&limit=1000").await;
    assert_eq!(
        accepted
            .iter()
            .filter(|i| i["kind"] == "attendance")
            .count(),
        12
    );
    assert_eq!(status["today"]["records"], 12);
    assert_eq!(status["today"]["uploaded"], 12);
    assert!(status["today"]["deadline"].as_i64().unwrap() > now_ms());
    assert!(status["lastSuccessAt"].as_i64().is_some());
    assert_eq!(status["appsecret"], "********");

    // Metrics: the queue's depth and age per project.
    let metrics = eventually("the uplink gauges", || async {
        let (_, body) = fetch(&s.app.http, &format!("{}/metrics", s.app.base_url)).await;
        let text = String::from_utf8_lossy(&body).into_owned();
        let line = format!("rollcall_uplink_queue_depth{{project=\"{}\"}} 0", s.project);
        text.contains(&line).then_some(text)
    })
    .await;
    assert!(metrics.contains("rollcall_uplink_oldest_pending_seconds"));
    assert!(metrics.contains("rollcall_uplink_requests_total"));

    // The console's dashboard: today's records against the 24:00 deadline.
    let html = dashboard(&s.app).await;
    let row = html
        .split(&format!("<tr id=\"uplink-{}\"", s.project))
        .nth(1)
        .expect("the project's uplink row")
        .split("</tr>")
        .next()
        .unwrap()
        .to_owned();
    assert!(row.contains("<td class=\"uploaded\">12</td>"), "{row}");
    assert!(row.contains("<td class=\"waiting\">0</td>"), "{row}");
    assert!(html.contains("24:00 截止"), "{html}");
}

/// A console session of a new administrator: the client and the session cookie.
async fn console_admin(app: &TestApp, username: &str) -> (reqwest::Client, String) {
    const PASSWORD: &str = "Zhejiang-2026-uplink";
    app.admin()
        .post(
            "/users",
            &json!({"username": username, "password": PASSWORD, "role": "administrator", "projectIds": []}),
        )
        .await
        .expect(201);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/console/login", app.base_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={username}&password={PASSWORD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    (http, cookie)
}

async fn console_get(
    app: &TestApp,
    session: &(reqwest::Client, String),
    path: &str,
) -> (u16, String) {
    let r = session
        .0
        .get(format!("{}{path}", app.base_url))
        .header("cookie", &session.1)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The console's dashboard as an administrator sees it.
async fn dashboard(app: &TestApp) -> String {
    let session = console_admin(app, "uplink-admin").await;
    console_get(app, &session, "/console").await.1
}

#[tokio::test]
async fn what_a_project_had_before_its_uplink_is_reported_when_it_is_set() {
    let s = site(2, false).await;
    let times = s.sign_ins(4, now_ms() - 30_000).await;
    s.drained().await;
    assert_eq!(s.national.rows("Team.Add").len(), 1);
    assert_eq!(s.national.rows("ProjectWorker.Add").len(), 2);
    assert_once_in_order(&s.national, times.len());
}

#[tokio::test]
async fn failures_are_retried_and_resolved_without_resending_what_was_taken() {
    let s = site(2, true).await;
    // Let the team, workers and entries through first.
    eventually("the workers' entries", || async {
        (s.national.rows("WorkerEntryExit.Add").len() == 2).then_some(())
    })
    .await;
    // HTTP 503, a request-level refusal, a refused async job (a batch split and resent
    // alone), and a slow answer: processed, but the answer comes after the timeout.
    s.national
        .inject("WorkerAttendance.Add", Fault::Unavailable);
    s.national.inject(
        "WorkerAttendance.Add",
        Fault::Refuse(500, "Internal Error".into()),
    );
    s.national.inject(
        "WorkerAttendance.Add",
        Fault::AsyncFailed("系统繁忙".into()),
    );
    s.national.inject(
        "WorkerAttendance.Add",
        Fault::Slow(Duration::from_millis(900)),
    );
    // An async job the platform has forgotten: its items are looked up, not resent.
    s.national.inject(
        "AsyncHandleResult.Query",
        Fault::Refuse(1, "[requestSerialCode]值超出范围或无效".into()),
    );
    s.sign_ins(10, now_ms() - 50_000).await;
    let status = s.drained().await;
    assert_eq!(s.national.faults_left(), 0, "every fault was met");
    // The slow request was resolved by asking, not by sending it again.
    assert!(s.national.calls("WorkerAttendance.Query") >= 1);
    // The async failure of a whole batch split it; each item then went alone and was taken.
    assert_eq!(status["failed"], 0, "{status}");
    assert_once_in_order(&s.national, 10);
}

#[tokio::test]
async fn a_refused_record_shows_the_platforms_message_and_can_be_sent_again() {
    let s = site(1, true).await;
    eventually("the worker's entry", || async {
        (s.national.rows("WorkerEntryExit.Add").len() == 1).then_some(())
    })
    .await;
    s.national.inject(
        "WorkerAttendance.Add",
        Fault::Refuse(1, "[date]不能大于当天!".into()),
    );
    s.sign_ins(1, now_ms() - 10_000).await;
    let refused = eventually("the refusal", || async {
        let items = s.items("state=refused").await;
        items.into_iter().next()
    })
    .await;
    assert_eq!(refused["kind"], "attendance");
    assert_eq!(refused["message"], "[date]不能大于当天!");
    assert_eq!(s.status().await["failed"], 1);
    // After the operator fixed the data: sent again, accepted once.
    let r = s
        .app
        .admin()
        .post(&format!("/projects/{}/uplink/retry", s.project), &json!({}))
        .await
        .expect(200);
    assert_eq!(r["requeued"], 1);
    s.drained().await;
    assert_eq!(s.status().await["failed"], 0);
    assert_once_in_order(&s.national, 1);
}

#[tokio::test]
async fn a_worker_without_a_team_waits_with_the_reason_and_goes_once_assigned() {
    let national = National::start().await;
    national.project(APPID, SECRET);
    let app = TestApp::spawn_with(fast).await;
    let project = app.project(None).await;
    put(&app, &project, &settings_body(&national.endpoint))
        .await
        .expect(200);
    let person = app.worker("无班组").await;
    national_data(&app, person).await;
    app.assign(&project, &[person]).await;
    let waiting = eventually("the worker to wait with a reason", || async {
        let items = app
            .admin()
            .get(&format!("/projects/{project}/uplink/items?state=pending"))
            .await
            .expect(200)["items"]
            .as_array()
            .unwrap()
            .clone();
        items
            .into_iter()
            .find(|i| i["kind"] == "worker" && i["message"].as_str().is_some())
    })
    .await;
    assert!(
        waiting["message"].as_str().unwrap().contains("班组"),
        "{waiting}"
    );
    assert_eq!(national.rows("ProjectWorker.Add").len(), 0);
    let team = app
        .admin()
        .post(
            &format!("/projects/{project}/teams"),
            &json!({"name": "木工班"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.admin()
        .patch(
            &format!("/projects/{project}/workers/{person}"),
            &json!({"teamId": team}),
        )
        .await
        .expect(204);
    eventually("the worker and the entry to be accepted", || async {
        (national.rows("WorkerEntryExit.Add").len() == 1).then_some(())
    })
    .await;
    let worker = &national.rows("ProjectWorker.Add")[0];
    // The head image the mock took is a JPEG within the national limit (checked there too).
    assert_eq!(worker.item["workType"], "900");
}

#[tokio::test]
async fn uplink_settings_are_for_administrators_masked_and_audited() {
    let app = TestApp::spawn_with(fast).await;
    let project = app.project(None).await;
    // Never set: the project has no uplink yet, which is a state, not a missing resource.
    let unset = app
        .admin()
        .get(&format!("/projects/{project}/uplink"))
        .await
        .expect(200);
    assert_eq!(unset["configured"], false, "{unset}");
    assert_eq!(unset["enabled"], false);
    assert_eq!(unset["appsecret"], "");
    assert_eq!(unset["pending"], 0);
    app.admin()
        .get("/projects/1234567/uplink")
        .await
        .expect(404);
    // No secret the first time: refused.
    let mut body = settings_body("http://127.0.0.1:9/open.api");
    body["appsecret"] = Value::Null;
    assert_eq!(put(&app, &project, &body).await.status, 422);
    body["appsecret"] = json!("too short");
    assert_eq!(put(&app, &project, &body).await.status, 422);
    body["appsecret"] = json!(SECRET);
    body["endpoint"] = json!("ftp://example/open.api");
    assert_eq!(put(&app, &project, &body).await.status, 422);

    let body = settings_body("http://127.0.0.1:9/open.api");
    let saved = put(&app, &project, &body).await.expect(200);
    assert_eq!(saved["configured"], true);
    assert_eq!(saved["appsecret"], "********");
    assert!(!saved.to_string().contains(SECRET));
    // Kept when left out; never shown again.
    let mut again = body.clone();
    again.as_object_mut().unwrap().remove("appsecret");
    again["enabled"] = json!(false);
    let saved = put(&app, &project, &again).await.expect(200);
    assert_eq!(saved["enabled"], false);
    let shown = app
        .admin()
        .get(&format!("/projects/{project}/uplink"))
        .await
        .expect(200);
    assert!(!shown.to_string().contains(SECRET), "{shown}");
    let stored = app
        .store()
        .uplink_config(project.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.appsecret.expose(), SECRET);

    // A project manager of the project may not read or change them.
    let (_, pm) = app.user("pm-uplink", "project_manager", &[&project]).await;
    assert_eq!(
        pm.get(&format!("/projects/{project}/uplink")).await.status,
        403
    );
    let r =
        pm.0.send(
            rollcall_client::Method::PUT,
            &format!("/projects/{project}/uplink"),
            Some(&body),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);

    // Audited.
    let audit = app.admin().get("/audit?limit=100").await.expect(200);
    let text = audit.to_string();
    assert!(
        text.contains(&format!("PUT /api/v1/projects/{project}/uplink")),
        "{text}"
    );
    assert!(!text.contains(SECRET));
}

#[tokio::test]
async fn editing_a_worker_reaches_the_devices_and_the_national_platform() {
    let national = National::start().await;
    national.project(APPID, SECRET);
    let app = TestApp::spawn_with(fast).await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    put(&app, &project, &settings_body(&national.endpoint))
        .await
        .expect(200);
    let team = app
        .admin()
        .post(
            &format!("/projects/{project}/teams"),
            &json!({"name": "电工班"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.register_device("SN-EDIT", &vendor, Some(&project))
        .await;
    let person = app.worker("待补全").await;
    app.assign(&project, &[person]).await;
    app.admin()
        .patch(
            &format!("/projects/{project}/workers/{person}"),
            &json!({"teamId": team}),
        )
        .await
        .expect(204);

    // What the national platform would refuse is shown before anything is sent.
    let shown = app
        .admin()
        .get(&format!("/workers/{person}"))
        .await
        .expect(200);
    let problems = shown["national"]["uplinkProblems"].to_string();
    assert!(problems.contains("grantOrg"), "{shown}");
    let waiting = eventually("the worker to wait with the reason", || async {
        let items = app
            .admin()
            .get(&format!("/projects/{project}/uplink/items?state=pending"))
            .await
            .expect(200)["items"]
            .as_array()
            .unwrap()
            .clone();
        items.into_iter().find(|i| {
            i["kind"] == "worker"
                && i["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("grantOrg"))
        })
    })
    .await;
    assert_eq!(waiting["state"], "pending");

    // An expired card is flagged; a code outside the dictionaries is refused.
    let expired = app
        .admin()
        .patch(
            &format!("/workers/{person}"),
            &json!({"grantOrg": "杭州市公安局", "idValidTo": "2020-01-01"}),
        )
        .await
        .expect(200);
    assert_eq!(expired["national"]["idCardExpired"], true);
    assert!(
        expired["national"]["uplinkProblems"]
            .to_string()
            .contains("身份证已过期")
    );
    let bad = app
        .admin()
        .patch(&format!("/workers/{person}"), &json!({"workType": "xyz"}))
        .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.body["error"]["code"], "unknown_code");
    assert_eq!(
        national.rows("ProjectWorker.Add").len(),
        0,
        "nothing sent yet"
    );

    // Fixed: sent with the new data; the edit reached the device as one merged update.
    let updates_before = app
        .tasks_of("SN-EDIT")
        .await
        .iter()
        .filter(|t| t.apicode == "T_UPDATE_DEVICE_PERSON")
        .count();
    let fixed = app
        .admin()
        .patch(
            &format!("/workers/{person}"),
            &json!({"name": "已补全", "idValidFrom": "2020-01-01", "idValidTo": "2040-01-01",
                    "politicsType": "01", "workType": "020", "teamLeader": true,
                    "phone": "13800000000"}),
        )
        .await
        .expect(200);
    assert_eq!(fixed["name"], "已补全");
    assert_eq!(fixed["national"]["uplinkProblems"], json!([]));
    app.admin()
        .patch(
            &format!("/workers/{person}"),
            &json!({"address": "杭州市西湖区"}),
        )
        .await
        .expect(200);
    let updates: Vec<_> = app
        .tasks_of("SN-EDIT")
        .await
        .into_iter()
        .filter(|t| t.apicode == "T_UPDATE_DEVICE_PERSON")
        .collect();
    assert!(!updates.is_empty(), "the edit reached the device");
    assert!(
        updates.len() <= updates_before + 1,
        "two edits merged into one pending update ({} before, {} after)",
        updates_before,
        updates.len()
    );
    eventually("the worker accepted", || async {
        (national.rows("WorkerEntryExit.Add").len() == 1).then_some(())
    })
    .await;
    let sent = &national.rows("ProjectWorker.Add")[0].item;
    assert_eq!(sent["workerName"], "已补全");
    assert_eq!(sent["grantOrg"], "杭州市公安局");
    assert_eq!(sent["politicsType"], "01");
    assert_eq!(sent["workType"], "020");
    assert_eq!(sent["isTeamLeader"], 1);
    assert_eq!(sent["expiryDate"], "2040-01-01");
    assert_eq!(sent["cellPhone"], "13800000000");
}

#[tokio::test]
async fn dictionaries_are_listed_to_all_and_extended_by_administrators() {
    let app = TestApp::spawn().await;
    let project = app.project(None).await;
    let all = app.admin().get("/dictionaries").await.expect(200);
    let entries = all["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["kind"] == "politics_type" && e["code"] == "13")
    );
    let r = app
        .admin()
        .0
        .send(
            rollcall_client::Method::PUT,
            "/dictionaries/work_type/999",
            Some(&json!({"name": "测量放线工"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let all = app.admin().get("/dictionaries").await.expect(200);
    assert!(
        all["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["code"] == "999")
    );
    let (_, pm) = app.user("pm-dict", "project_manager", &[&project]).await;
    assert_eq!(pm.get("/dictionaries").await.status, 200);
    let r =
        pm.0.send(
            rollcall_client::Method::PUT,
            "/dictionaries/work_type/998",
            Some(&json!({"name": "x"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    let r = app
        .admin()
        .0
        .send(
            rollcall_client::Method::PUT,
            "/dictionaries/colour/1",
            Some(&json!({"name": "x"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 422);
}

#[tokio::test]
async fn an_expired_id_card_is_flagged_at_enrolment_and_in_lists() {
    let app = TestApp::spawn().await;
    let enrolled = app
        .admin()
        .post(
            "/workers",
            &json!({"idcardNo": next_idcard_number(), "name": "过期证件", "facePhoto": b64(FACE_JPG),
                    "grantOrg": "杭州市公安局", "idValidFrom": "2000-01-01", "idValidTo": "2020-01-01"}),
        )
        .await
        .expect(201);
    assert_eq!(enrolled["idCardExpired"], true);
    let fine = app
        .admin()
        .post(
            "/workers",
            &json!({"idcardNo": next_idcard_number(), "name": "长期证件", "facePhoto": b64(FACE_JPG),
                    "grantOrg": "杭州市公安局", "idValidTo": "长期"}),
        )
        .await
        .expect(201);
    assert_eq!(fine["idCardExpired"], false);
    let bad = app
        .admin()
        .post(
            "/workers",
            &json!({"idcardNo": next_idcard_number(), "name": "坏日期", "facePhoto": b64(FACE_JPG),
                    "idValidTo": "2020-02-30"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    let list = app.admin().get("/workers?limit=100").await.expect(200);
    let flags: HashMap<String, bool> = list["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["personId"].as_str().unwrap().to_owned(),
                w["idCardExpired"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(flags[enrolled["personId"].as_str().unwrap()]);
    assert!(!flags[fine["personId"].as_str().unwrap()]);
}

#[tokio::test]
async fn the_console_sets_a_projects_uplink_without_showing_the_secret() {
    let app = TestApp::spawn_with(fast).await;
    let project = app.project(None).await;
    let session = console_admin(&app, "uplink-console").await;
    let (status, html) = console_get(
        &app,
        &session,
        &format!("/console/projects/{project}/uplink"),
    )
    .await;
    assert_eq!(status, 200);
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let csrf = html[start..].split('"').next().unwrap().to_owned();
    let form = format!(
        "csrf={csrf}&endpoint=http%3A%2F%2F127.0.0.1%3A9%2Fopen.api&appid={APPID}&appsecret={SECRET}\
         &corp_code=91330100MA00000000&corp_name=%E8%A5%BF%E6%B9%96&enabled=1"
    );
    let r = session
        .0
        .post(format!(
            "{}/console/projects/{project}/uplink",
            app.base_url
        ))
        .header("cookie", &session.1)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, html) = console_get(
        &app,
        &session,
        &format!("/console/projects/{project}/uplink?saved=1"),
    )
    .await;
    assert!(html.contains("id=\"saved\""), "{html}");
    assert!(html.contains(APPID));
    assert!(!html.contains(SECRET), "the secret is never shown");
    let shown = app
        .admin()
        .get(&format!("/projects/{project}/uplink"))
        .await
        .expect(200);
    assert_eq!(shown["corpName"], "西湖");
    assert_eq!(shown["enabled"], true);
    // Without the CSRF token: refused.
    let r = session
        .0
        .post(format!(
            "{}/console/projects/{project}/uplink",
            app.base_url
        ))
        .header("cookie", &session.1)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("endpoint=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// The platform's log lines (INFO and above, plain text), captured for the thread the test
/// runs on: `#[tokio::test]` is single-threaded, so the server's tasks log here too.
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Log {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let log = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || log.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A gauge's value for a project in the `/metrics` text.
async fn project_gauge(app: &TestApp, name: &str, project: &str) -> Option<f64> {
    let (_, body) = fetch(&app.http, &format!("{}/metrics", app.base_url)).await;
    let text = String::from_utf8_lossy(&body).into_owned();
    let prefix = format!("{name}{{project=\"{project}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn a_late_project_is_alerted_once_in_the_log_and_shown_in_the_gauges() {
    let log = Log::default();
    let _guard = log.capture();
    let app = TestApp::spawn_with(|s| {
        fast(s);
        s.uplink.alert_after_ms = 300;
    })
    .await;
    // The national endpoint is down: nothing listens on it.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/open.api", l.local_addr().unwrap())
    };
    let project = app.project(None).await;
    put(&app, &project, &settings_body(&down)).await.expect(200);
    let team = app
        .admin()
        .post(
            &format!("/projects/{project}/teams"),
            &json!({"name": "木工班"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let idcard = next_idcard_number();
    let person = app.worker_with_idcard("迟报工人", &idcard).await;
    app.assign(&project, &[person]).await;
    app.admin()
        .patch(
            &format!("/projects/{project}/workers/{person}"),
            &json!({"teamId": team}),
        )
        .await
        .expect(204);
    national_data(&app, person).await;

    let alert_of = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.contains(&format!("uplink alert: project {project} ")))
            .cloned()
            .collect()
    };
    let first = eventually("the late alert", || async {
        alert_of(&log.lines()).into_iter().next()
    })
    .await;
    assert!(first.contains(" WARN "), "{first}");
    assert!(first.contains("(西湖工地) is late"), "{first}");
    assert!(first.contains("oldest_pending_ms="), "{first}");
    assert!(first.contains("(alert after 0.300s)"), "{first}");

    // The gauges: items queued, the oldest one's age; they keep growing while the endpoint
    // is down, and the alert is not repeated (several observations pass meanwhile).
    eventually("the queue's gauges", || async {
        let depth = project_gauge(&app, "rollcall_uplink_queue_depth", &project).await?;
        let age = project_gauge(&app, "rollcall_uplink_oldest_pending_seconds", &project).await?;
        (depth >= 3.0 && age > 1.5).then_some(())
    })
    .await;
    assert_eq!(alert_of(&log.lines()).len(), 1, "{:#?}", log.lines());

    // The endpoint back: everything is accepted and the project is no longer late.
    let national = National::start().await;
    national.project(APPID, SECRET);
    put(&app, &project, &settings_body(&national.endpoint))
        .await
        .expect(200);
    let over = format!("uplink alert over: project {project} ");
    let recovered = eventually("the alert's end", || async {
        log.lines().into_iter().find(|l| l.contains(&over))
    })
    .await;
    assert!(recovered.contains(" INFO "), "{recovered}");
    assert_eq!(national.rows("ProjectWorker.Add").len(), 1);
    eventually("the depth back to 0", || async {
        let depth = project_gauge(&app, "rollcall_uplink_queue_depth", &project).await?;
        (depth == 0.0).then_some(())
    })
    .await;
    let all = log.lines();
    assert_eq!(alert_of(&all).len(), 1, "{all:#?}");
    let text = all.join("\n");
    assert!(!text.contains(SECRET), "the secret is never logged");
    assert!(!text.contains(&idcard), "ID numbers are never logged");
}

const ADDS: [&str; 4] = [
    "Team.Add",
    "ProjectWorker.Add",
    "WorkerEntryExit.Add",
    "WorkerAttendance.Add",
];

#[tokio::test]
async fn an_edit_after_acceptance_is_sent_once_as_an_update() {
    let s = site(2, true).await;
    s.sign_ins(2, now_ms() - 60_000).await;
    eventually("both records accepted", || async {
        (accepted_attendance(&s.national).len() == 2).then_some(())
    })
    .await;
    s.drained().await;
    assert_eq!(s.national.calls("ProjectWorker.Update"), 0);
    let before = s.national.all_rows();
    let adds_before: Vec<usize> = ADDS.iter().map(|m| s.national.calls(m)).collect();

    let person = s.workers[0];
    s.app
        .admin()
        .patch(
            &format!("/workers/{person}"),
            &json!({"name": "改名工人", "phone": "13900000000", "workType": "020",
                    "politicsType": "01"}),
        )
        .await
        .expect(200);
    let update = eventually("the update accepted", || async {
        s.national.rows("ProjectWorker.Update").into_iter().next()
    })
    .await;
    let status = s.drained().await;
    assert_eq!(status["failed"], 0, "{status}");

    // Once, with the new values, for that worker, and after their add.
    assert_eq!(s.national.rows("ProjectWorker.Update").len(), 1);
    let added = before
        .iter()
        .find(|r| r.method == "ProjectWorker.Add" && r.item["workerName"] == "工人0")
        .expect("the worker's add");
    assert_eq!(update.item["idCardNumber"], added.item["idCardNumber"]);
    assert_eq!(update.item["workerName"], "改名工人");
    assert_eq!(update.item["cellPhone"], "13900000000");
    assert_eq!(update.item["workType"], "020");
    assert_eq!(update.item["politicsType"], "01");
    assert_eq!(update.item["grantOrg"], "杭州市公安局西湖分局");
    assert_eq!(update.team_sys_no, added.team_sys_no);

    // Nothing else was sent again.
    let after = s.national.all_rows();
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(after[..before.len()], before[..]);
    let adds_after: Vec<usize> = ADDS.iter().map(|m| s.national.calls(m)).collect();
    assert_eq!(adds_after, adds_before);
    let updates: Vec<Value> = s
        .items("limit=1000")
        .await
        .into_iter()
        .filter(|i| i["kind"] == "worker_update")
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["state"], "accepted");
}
