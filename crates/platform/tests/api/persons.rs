//! The task interfaces a device calls with a taskid (ZJ-PERSON-01 to ZJ-PERSON-06): roster pages and face
//! downloads, deletion, clear, reconciliation, firmware.

use rollcall_protocol::params::{self, DelPersonResponse, FirmwareInfo};
use rollcall_protocol::{ApiCode, ErrorCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::*;

/// A project with `n` workers and an authenticated HTTP device bound to it; returns the
/// device, the sorted person ids and the taskid of its T_SEND_PERSON.
async fn roster(app: &TestApp, sn: &str, n: usize) -> (HttpDevice, Vec<i64>, String, String) {
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    let mut persons = Vec::new();
    for i in 0..n {
        persons.push(app.worker(&format!("工人{i}")).await);
    }
    app.assign(&project, &persons).await;
    app.register_device(sn, &vendor, Some(&project)).await;
    let taskid = app.tasks_of(sn).await[0].taskid.clone();
    let mut dev = app.http_device(&vendor, sn);
    dev.auth().await;
    persons.sort_unstable();
    (dev, persons, taskid, project)
}

/// ZJ-PERSON-02; ZJ-PERSON-03: size default, clamp, echo, and a page past the end.
#[tokio::test]
async fn t_send_person_pages_through_the_roster_frozen_when_the_task_was_made() {
    let app = TestApp::spawn().await;
    let (dev, persons, taskid, project) = roster(&app, "SN-PAGES", 25).await;
    // Joining after the task was made does not change its roster.
    let late = app.worker("迟到").await;
    app.assign(&project, &[late]).await;

    let mut seen = Vec::new();
    for page in 1..=3 {
        let p = dev.page(ApiCode::SendPerson, &taskid, page, Some(10)).await;
        assert_eq!((p.current_page, p.total_page, p.size), (page, 3, 10));
        seen.extend(p.data.iter().map(|e| e.person_id.parse::<i64>().unwrap()));
        assert!(p.data.iter().all(|e| e.name.starts_with("工人")));
        assert!(p.data.iter().all(|e| e.img_urls.len() == 1));
    }
    assert_eq!(seen, persons, "every person once, in personId order");

    let past_end = dev.page(ApiCode::SendPerson, &taskid, 4, Some(10)).await;
    assert!(past_end.data.is_empty());
    assert_eq!(past_end.total_page, 3);

    let default = dev.page(ApiCode::SendPerson, &taskid, 1, None).await;
    assert_eq!(
        (default.size, default.total_page, default.data.len()),
        (10, 3, 10)
    );

    let clamped = dev.page(ApiCode::SendPerson, &taskid, 1, Some(500)).await;
    assert_eq!(
        (clamped.size, clamped.total_page, clamped.data.len()),
        (100, 1, 25)
    );
}

#[tokio::test]
async fn an_unbound_devices_roster_is_empty() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-EMPTY-ROSTER");
    dev.auth().await;
    let task = app.task("SN-EMPTY-ROSTER", ApiCode::SendPerson, None).await;

    let p = dev.page(ApiCode::SendPerson, &task.taskid, 1, None).await;

    assert!(p.data.is_empty());
    assert_eq!(p.total_page, 0);
}

/// ZJ-URL-02: photo URLs are signed; a tampered or unsigned one is refused.
#[tokio::test]
async fn a_face_is_downloaded_from_its_signed_img_url_and_a_tampered_one_is_403() {
    let app = TestApp::spawn().await;
    let (dev, _persons, taskid, _) = roster(&app, "SN-FACE", 1).await;
    let page = dev.page(ApiCode::SendPerson, &taskid, 1, None).await;
    let url = &page.data[0].img_urls[0];
    assert!(url.starts_with(&app.base_url), "absolute: {url}");

    let (status, bytes) = fetch(&app.http, url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, FACE_JPG);

    let tampered = url.replacen("sig=", "sig=0", 1);
    assert_eq!(fetch(&app.http, &tampered).await.0, 403);
    let unsigned = url.split('?').next().unwrap();
    assert_eq!(fetch(&app.http, unsigned).await.0, 403);
}

#[tokio::test]
async fn a_page_with_a_bad_param_gets_400_02() {
    let app = TestApp::spawn().await;
    let (dev, _persons, taskid, _) = roster(&app, "SN-BADPAGE", 1).await;
    for bad in [r#"{"size":10}"#, r#"{"currentPage":"first"}"#, "[]"] {
        let resp = dev.task(ApiCode::SendPerson, &taskid, Some(bad)).await;
        expect_err(&resp, ErrorCode::ParamInvalid);
    }
}

#[tokio::test]
async fn removing_a_worker_makes_a_t_del_device_person_naming_them() {
    let app = TestApp::spawn().await;
    let (dev, persons, _taskid, project) = roster(&app, "SN-DEL", 2).await;

    app.unassign(&project, persons[0]).await;

    let del = app
        .tasks_of("SN-DEL")
        .await
        .into_iter()
        .find(|t| t.apicode == "T_DEL_DEVICE_PERSON")
        .expect("a deletion task");
    let resp = dev.task(ApiCode::DelDevicePerson, &del.taskid, None).await;
    let text = dev
        .id
        .ok(&resp, ApiCode::DelDevicePerson)
        .expect("a response");
    let body: DelPersonResponse = params::parse(&text).unwrap();
    assert_eq!(body.person_ids, vec![persons[0].to_string()]);
    assert_eq!(resp.taskid, del.taskid, "the taskid is echoed");
}

/// ZJ-HTTP-04: T_CLEAR_DEVICE_PERSON is answered with an acknowledgement.
#[tokio::test]
async fn unbinding_a_device_makes_a_t_clear_device_person_answered_with_an_acknowledgement() {
    let app = TestApp::spawn().await;
    let (dev, _persons, send_taskid, _) = roster(&app, "SN-CLEAR", 1).await;

    app.bind("SN-CLEAR", None).await;

    let tasks = app.tasks_of("SN-CLEAR").await;
    let clear = tasks.last().unwrap();
    assert_eq!(clear.apicode, "T_CLEAR_DEVICE_PERSON");
    assert_eq!(
        app.task_info("SN-CLEAR", &send_taskid).await.status,
        "cancelled",
        "clearing supersedes the roster"
    );
    let resp = dev
        .task(ApiCode::ClearDevicePerson, &clear.taskid, None)
        .await;
    assert_eq!(dev.id.ok(&resp, ApiCode::ClearDevicePerson), None);
}

/// ZJ-RECON-02 (a resent page replaces the old; complete when every page is in) and
/// ZJ-RECON-04 (uploaded images are checked).
#[tokio::test]
async fn t_post_device_person_pages_complete_a_reconciliation_that_repairs_the_device() {
    let app = TestApp::spawn_with(|s| s.auto_repair = true).await;
    let (dev, persons, _send, _) = roster(&app, "SN-RECON", 3).await;
    let task = app.task("SN-RECON", ApiCode::PostDevicePerson, None).await;
    let taskid = task.taskid.clone();
    let report_path = format!("/devices/SN-RECON/tasks/{taskid}/reconciliation");
    let (w1, w2, w3) = (persons[0], persons[1], persons[2]);
    let upload = |page: u32, data: serde_json::Value| {
        let param = json!({"currentPage": page, "totalPage": 2, "data": data}).to_string();
        let (dev, taskid) = (&dev, &taskid);
        async move {
            dev.task(ApiCode::PostDevicePerson, taskid, Some(&param))
                .await
        }
    };

    // Page 1, then page 1 again (replacing it), then page 2.
    let resp = upload(
        1,
        json!([{"personId": w3.to_string(), "name": "x", "hasImg": true}]),
    )
    .await;
    assert_eq!(
        dev.id.ok(&resp, ApiCode::PostDevicePerson),
        None,
        "an acknowledgement"
    );
    let pending = app.admin().get(&report_path).await;
    assert_eq!(pending.status, 404, "incomplete: {}", pending.body);
    assert_eq!(pending.body["error"]["code"], "reconciliation_pending");
    let resp = upload(
        1,
        json!([
            {"personId": w1.to_string(), "name": "a", "img": b64(FACE_JPG)},
            {"personId": "777", "name": "stranger", "hasImg": true}
        ]),
    )
    .await;
    dev.id.ok(&resp, ApiCode::PostDevicePerson);
    let resp = upload(
        2,
        json!([{"personId": w2.to_string(), "name": "b", "img": b64(b"not a photo")}]),
    )
    .await;
    dev.id.ok(&resp, ApiCode::PostDevicePerson);

    let report = app.admin().get(&report_path).await.expect(200);
    assert_eq!(
        report["missing"],
        json!([w3.to_string()]),
        "page 1 was replaced"
    );
    assert_eq!(report["extra"], json!(["777"]));
    assert_eq!(
        report["faceless"],
        json!([w2.to_string()]),
        "an unusable image is no face"
    );
    // auto_repair: an update for the missing and face-less, a deletion for the extra.
    let tasks = app.tasks_of("SN-RECON").await;
    let update = tasks
        .iter()
        .find(|t| t.apicode == "T_UPDATE_DEVICE_PERSON")
        .expect("an update");
    let del = tasks
        .iter()
        .find(|t| t.apicode == "T_DEL_DEVICE_PERSON")
        .expect("a deletion");
    let page = dev
        .page(ApiCode::UpdateDevicePerson, &update.taskid, 1, None)
        .await;
    let mut expected = vec![w2.to_string(), w3.to_string()];
    expected.sort();
    assert_eq!(
        page.data
            .iter()
            .map(|p| p.person_id.clone())
            .collect::<Vec<_>>(),
        expected
    );
    let resp = dev.task(ApiCode::DelDevicePerson, &del.taskid, None).await;
    let body: DelPersonResponse =
        params::parse(&dev.id.ok(&resp, ApiCode::DelDevicePerson).unwrap()).unwrap();
    assert_eq!(body.person_ids, vec!["777"]);
}

#[tokio::test]
async fn a_reconciliation_page_out_of_range_gets_400_02() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-RECON-BAD");
    dev.auth().await;
    let task = app
        .task("SN-RECON-BAD", ApiCode::PostDevicePerson, None)
        .await;
    for (page, total) in [(0, 1), (3, 2), (1, 0)] {
        let param = json!({"currentPage": page, "totalPage": total, "data": []}).to_string();
        let resp = dev
            .task(ApiCode::PostDevicePerson, &task.taskid, Some(&param))
            .await;
        expect_err(&resp, ErrorCode::ParamInvalid);
    }
}

/// ZJ-FW-02: the downloadUrl is signed at delivery.
#[tokio::test]
async fn t_update_device_version_answers_a_freshly_signed_download_url() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let firmware = b"\x7fELF firmware image v2.0".repeat(100);
    let sha = hex::encode(Sha256::digest(&firmware));
    // A registered package (ZJ-FW-01): tasks name it by id, never by a raw URL.
    let package = app
        .post_multipart(
            "/firmware",
            &[
                ("vendorId", None, vendor.id.as_bytes()),
                ("kind", None, b"face"),
                ("version", None, b"2.0"),
                ("file", Some("fw.bin"), &firmware),
            ],
        )
        .await
        .expect(201);
    let param = json!({ "firmwareId": package["id"] });
    let mut tcp = app.device(&vendor, "SN-FW").await;
    tcp.auth().await;

    let task = app
        .task("SN-FW", ApiCode::UpdateDeviceVersion, Some(param))
        .await;
    assert_eq!(task.param["sha256"], sha.as_str());

    // Pushed with the URL signed at delivery, in the signed command param.
    let cmd = tcp.expect_command().await;
    assert_eq!(cmd.taskid, task.taskid);
    let pushed: FirmwareInfo = params::parse(&cmd.param).unwrap();
    assert!(
        pushed.download_url.starts_with(&app.base_url),
        "{}",
        pushed.download_url
    );
    // The interface answers the same info, the sign covering only the taskid.
    let mut http = app.http_device(&vendor, "SN-FW");
    http.id.token = tcp.id.token.clone();
    let echo = json!({"version": "2.0", "size": 1, "downloadUrl": "x"}).to_string();
    let resp = http
        .task(ApiCode::UpdateDeviceVersion, &cmd.taskid, Some(&echo))
        .await;
    let info: FirmwareInfo =
        params::parse(&http.id.ok(&resp, ApiCode::UpdateDeviceVersion).unwrap()).unwrap();
    assert_eq!(info.version, "2.0");
    assert_eq!(info.sha256, sha);
    let (status, bytes) = fetch(&app.http, &info.download_url).await;
    assert_eq!(status, 200);
    assert!(info.matches(bytes.len() as u64, &Sha256::digest(&bytes).into()));
}
