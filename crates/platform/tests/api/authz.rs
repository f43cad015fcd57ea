//! Authorization findings of the outside review, each reproduced over the socket: vendor
//! credentials (administrators only), firmware tasks as a signing oracle (ZJ-FW-01,
//! ZJ-FW-02), person tasks carrying workers of other projects (ZJ-PERSON-04), and the
//! `409 worker_exists` answer naming workers a project manager may not see.

use rollcall_protocol::ApiCode;
use rollcall_protocol::params::{self, FirmwareInfo};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::*;

/// Finding 1: creating vendors and rotating their credentials hands out the `accessSecret`
/// with which any device of the vendor, in any project, can be impersonated — so only
/// administrators may; everyone may list and read vendors, never with a key or secret.
#[tokio::test]
async fn vendor_credentials_are_the_administrators_alone() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    let (_, manager) = app.user("pm.vendor", "project_manager", &[&project]).await;
    let (_, auditor) = app.user("audit.vendor", "auditor", &[]).await;

    let r = manager.post("/vendors", &json!({"name": "伪造厂商"})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.to_string().contains("accessSecret"));
    let rotate = format!("/vendors/{}/rotate-credentials", vendor.id);
    let r = manager.post(&rotate, &json!({})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.body.to_string().contains("accessSecret"));
    assert_eq!(auditor.post(&rotate, &json!({})).await.status, 403);

    // Nothing changed: the vendor's devices still authenticate with the old credentials,
    // and no vendor was made.
    let mut dev = app.http_device(&vendor, "VENDOR-SN-1");
    dev.auth().await;
    let listed = app.admin().get("/vendors").await.expect(200);
    assert_eq!(listed["vendors"].as_array().unwrap().len(), 1);

    // Reading: ids and names for everyone (a manager registers devices by vendor id),
    // never a key or a secret.
    for who in [&manager, &auditor] {
        let list = who.get("/vendors").await.expect(200);
        assert_eq!(list["vendors"][0]["id"], vendor.id.as_str());
        let one = who
            .get(&format!("/vendors/{}", vendor.id))
            .await
            .expect(200);
        for text in [list.to_string(), one.to_string()] {
            assert!(!text.contains("accessSecret") && !text.contains("accessKey"));
            assert!(!text.contains(&vendor.secret) && !text.contains(&vendor.access_key));
        }
    }

    // Administrators still rotate.
    let r = app.admin().post(&rotate, &json!({})).await.expect(200);
    assert!(r["accessSecret"].as_str().is_some_and(|s| !s.is_empty()));
}

/// Finding 2 (ZJ-FW-01, ZJ-FW-02): a firmware task names a registered package; a raw
/// `downloadUrl` (which the platform would sign on delivery) is refused, and admin views of
/// tasks never carry a signed URL.
#[tokio::test]
async fn firmware_tasks_name_registered_packages_and_sign_nothing_else() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("FW-GATE", &vendor, Some(&project))
        .await;
    let (_, manager) = app.user("pm.fw", "project_manager", &[&project]).await;
    // Someone else's file: a face of another project.
    app.state()
        .blobs
        .put("faces/999/secret.jpg", FACE_JPG)
        .await
        .unwrap();
    let sha = hex::encode(Sha256::digest(FACE_JPG));
    for url in [
        "/files/faces/999/secret.jpg",
        "https://evil.example/fw.bin",
        "/files/firmware/1/x.bin",
    ] {
        let raw = json!({"apicode": "T_UPDATE_DEVICE_VERSION", "param": {
            "version": "9.9", "size": FACE_JPG.len(), "downloadUrl": url, "sha256": sha}});
        for who in [&manager, &app.admin()] {
            let r = who.post("/devices/FW-GATE/tasks", &raw).await;
            assert_ne!(r.status, 201, "a raw downloadUrl made a task: {}", r.body);
        }
        let r = app.admin().post("/devices/FW-GATE/tasks", &raw).await;
        assert_eq!(r.expect(422)["error"]["field"], "param.downloadUrl");
    }
    assert!(
        app.tasks_of("FW-GATE")
            .await
            .iter()
            .all(|t| t.apicode != "T_UPDATE_DEVICE_VERSION")
    );

    // A registered package, by id.
    let package = b"\x7fELF firmware 3.0".repeat(64);
    let up = app
        .post_multipart(
            "/firmware",
            &[
                ("vendorId", None, vendor.id.as_bytes()),
                ("kind", None, b"face"),
                ("version", None, b"3.0"),
                ("file", Some("fw.bin"), &package),
            ],
        )
        .await
        .expect(201);
    let firmware_id = up["id"].as_str().unwrap().to_owned();
    let by_id = json!({"apicode": "T_UPDATE_DEVICE_VERSION", "param": {"firmwareId": firmware_id}});
    // Firmware is the administrators' (as upload and deploy).
    assert_eq!(
        manager.post("/devices/FW-GATE/tasks", &by_id).await.status,
        403
    );
    let unknown = json!({"apicode": "T_UPDATE_DEVICE_VERSION", "param": {"firmwareId": "12345"}});
    let r = app.admin().post("/devices/FW-GATE/tasks", &unknown).await;
    assert_eq!(r.expect(422)["error"]["field"], "param.firmwareId");
    let task = app
        .admin()
        .post("/devices/FW-GATE/tasks", &by_id)
        .await
        .expect(201);
    assert_eq!(task["param"]["version"], "3.0");
    assert_eq!(
        task["param"]["sha256"],
        hex::encode(Sha256::digest(&package))
    );
    let shown = task["param"]["downloadUrl"].as_str().unwrap();
    assert!(
        shown.starts_with("/files/firmware/"),
        "unsigned in views: {shown}"
    );

    // No admin view carries a fetchable, signed URL.
    let listed = app.admin().get("/devices/FW-GATE/tasks").await.expect(200);
    let text = listed.to_string();
    assert!(!text.contains(&app.base_url), "{text}");
    assert!(!text.contains("sig="), "{text}");

    // The device gets the package's URL signed at delivery, and it downloads the package.
    let mut dev = app.http_device(&vendor, "FW-GATE");
    dev.auth().await;
    let taskid = task["taskid"].as_str().unwrap();
    let resp = dev.task(ApiCode::UpdateDeviceVersion, taskid, None).await;
    let info: FirmwareInfo =
        params::parse(&dev.id.ok(&resp, ApiCode::UpdateDeviceVersion).unwrap()).unwrap();
    assert!(info.download_url.starts_with(&app.base_url));
    let (status, bytes) = fetch(&app.http, &info.download_url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, package);
}

/// Finding 3 (ZJ-PERSON-04): a device only ever receives workers on its project's roster —
/// when the task is made, and again when each page is read.
#[tokio::test]
async fn person_tasks_carry_only_the_devices_roster() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let (a, b) = (app.project(None).await, app.project(None).await);
    app.register_device("ROSTER-A", &vendor, Some(&a)).await;
    let worker_b = app.worker("乙项目工人").await;
    app.assign(&b, &[worker_b]).await;
    let worker_a = app.worker("甲项目工人").await;
    app.assign(&a, &[worker_a]).await;
    let (_, manager) = app.user("pm.roster", "project_manager", &[&a]).await;

    let foreign = json!({"apicode": "T_UPDATE_DEVICE_PERSON",
                         "param": {"personIds": [worker_b.to_string(), worker_a.to_string()]}});
    for who in [&manager, &app.admin()] {
        let r = who.post("/devices/ROSTER-A/tasks", &foreign).await;
        let body = r.expect(422);
        assert_eq!(body["error"]["code"], "unknown_person");
        assert_eq!(body["error"]["personIds"], json!([worker_b.to_string()]));
        assert!(!body.to_string().contains("乙项目工人"));
    }

    // Their own worker goes, and the audit log names who sent whom.
    let own = json!({"apicode": "T_UPDATE_DEVICE_PERSON",
                     "param": {"personIds": [worker_a.to_string()]}});
    let task = manager
        .post("/devices/ROSTER-A/tasks", &own)
        .await
        .expect(201);
    let taskid = task["taskid"].as_str().unwrap().to_owned();
    let log = app.admin().get("/audit?actor=pm.roster").await.expect(200);
    let entry = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "POST /api/v1/devices/ROSTER-A/tasks")
        .expect("the task creation is audited")
        .clone();
    let detail = entry["detail"].as_str().unwrap_or("");
    assert!(detail.contains(&worker_a.to_string()), "{entry}");

    // Defence in depth: a worker who left the roster since is not handed out by the pages
    // of a task that still lists them.
    let mut dev = app.http_device(&vendor, "ROSTER-A");
    dev.auth().await;
    let page = dev
        .page(ApiCode::UpdateDevicePerson, &taskid, 1, Some(100))
        .await;
    assert_eq!(page.data.len(), 1);
    app.unassign(&a, worker_a).await;
    let page = dev
        .page(ApiCode::UpdateDevicePerson, &taskid, 1, Some(100))
        .await;
    assert!(
        page.data.is_empty(),
        "{:?}",
        page.data.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
}

/// Finding 3, enrol once: `409 worker_exists` names the existing worker only to a caller who
/// may see them; a project manager takes on a worker of another project by ID-card number
/// and name, never by a person id they were not shown.
#[tokio::test]
async fn worker_exists_names_the_worker_only_to_those_who_see_them() {
    let app = TestApp::spawn().await;
    let (a, b) = (app.project(None).await, app.project(None).await);
    let (_, manager) = app.user("pm.enrol", "project_manager", &[&a]).await;
    let idcard = next_idcard_number();
    let enrol = |project: &str| json!({"idcardNo": idcard, "name": "王五", "facePhoto": b64(FACE_JPG), "projectId": project});
    let w = app.admin().post("/workers", &enrol(&b)).await.expect(201);
    let person = w["personId"].as_str().unwrap().to_owned();

    // Administrators are told whom.
    let r = app.admin().post("/workers", &enrol(&b)).await;
    let body = r.expect(409);
    assert_eq!(body["error"]["code"], "worker_exists");
    assert_eq!(body["error"]["personId"], person.as_str());

    // A project manager who does not see the worker is not.
    let body = manager.post("/workers", &enrol(&a)).await.expect(409);
    assert_eq!(body["error"]["code"], "worker_exists");
    assert!(body["error"].get("personId").is_none(), "{body}");
    assert!(!body.to_string().contains(&person), "{body}");

    // Nor can they pull the worker in by a person id they were not shown.
    let r = manager
        .post(
            &format!("/projects/{a}/workers"),
            &json!({"personIds": [person]}),
        )
        .await;
    assert_eq!(r.expect(422)["error"]["code"], "unknown_person");
    assert_eq!(manager.get(&format!("/workers/{person}")).await.status, 404);

    // Nor by a roster import row whose name is not the enrolled one (the import joins
    // enrolled workers by ID-card number).
    let (content_type, form) = multipart(&[(
        "roster",
        Some("花名册.csv"),
        format!("\u{feff}姓名,身份证号,手机号,班组,工种\n李四,{idcard},,,\n").as_bytes(),
    )]);
    let r = manager
        .0
        .send_bytes(
            reqwest::Method::POST,
            &format!("/projects/{a}/import"),
            &content_type,
            form,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["joined"], json!([]), "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "姓名", "{}", r.body);
    assert_eq!(manager.get(&format!("/workers/{person}")).await.status, 404);

    // By ID-card number and name they can (the worker stands before them with the card).
    let join = |name: &str| json!({"idcardNo": idcard, "name": name});
    let r = manager
        .post(&format!("/projects/{a}/workers"), &join("李四"))
        .await;
    assert_eq!(r.expect(422)["error"]["code"], "unknown_person");
    let joined = manager
        .post(&format!("/projects/{a}/workers"), &join("王五"))
        .await
        .expect(200);
    assert_eq!(joined["personIds"], json!([person]));
    manager.get(&format!("/workers/{person}")).await.expect(200);
    // Now visible to them, the conflict names the worker.
    let body = manager.post("/workers", &enrol(&a)).await.expect(409);
    assert_eq!(body["error"]["personId"], person.as_str());
    let log = app.admin().get("/audit?actor=pm.enrol").await.expect(200);
    assert!(log["entries"].as_array().unwrap().iter().any(|e| {
        e["action"] == format!("POST /api/v1/projects/{a}/workers")
            && e["detail"].as_str().unwrap_or("").contains(&person)
    }));
}
