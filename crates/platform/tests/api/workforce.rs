//! The labour manager's data through the admin API: face rules on enrolment, teams and
//! trades, the blacklist reaching devices, the daily summary, the monthly sheet, roster
//! import with photos, and firmware rollout.

use std::io::{Cursor, Write};

use calamine::{Data, Reader, Xlsx};
use serde_json::{Value, json};

use crate::helpers::*;

const NO_FACE: &[u8] = include_bytes!("../data/faces/no_face.jpg");
const TWO_FACES: &[u8] = include_bytes!("../data/faces/two_faces.jpg");
const SMALL_IN_PICTURE: &[u8] = include_bytes!("../data/faces/face_small_in_picture.jpg");

/// 2026-11-02 at hh:mm Beijing time, epoch ms.
fn nov2(hour: i64, minute: i64) -> i64 {
    // 2026-11-02T00:00:00+08:00
    1_793_548_800_000 + (hour * 60 + minute) * 60_000
}

#[tokio::test]
async fn face_rules_refuse_photos_naming_the_rule() {
    let app = TestApp::spawn().await;
    for (photo, code) in [
        (NO_FACE, "no_face"),
        (TWO_FACES, "multiple_faces"),
        (SMALL_IN_PICTURE, "face_too_small_in_picture"),
    ] {
        let body =
            json!({"idcardNo": next_idcard_number(), "name": "王五", "facePhoto": b64(photo)});
        let e = app.admin().post("/workers", &body).await.expect(422);
        assert_eq!(e["error"]["code"], code, "{e}");
        assert_eq!(e["error"]["field"], "facePhoto");
    }
    assert!(
        app.admin().get("/workers").await.expect(200)["workers"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a refused enrolment stores nothing"
    );
}

#[tokio::test]
async fn teams_trades_and_the_blacklist_reach_rosters_and_devices() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("GATE-1", &vendor, Some(&project)).await;
    let admin = app.admin();
    let team = admin
        .post(
            &format!("/projects/{project}/teams"),
            &json!({"name": "钢筋班", "leader": "王班长"}),
        )
        .await
        .expect(201);
    let team_id = team["id"].as_str().unwrap();
    let again = admin
        .post(
            &format!("/projects/{project}/teams"),
            &json!({"name": "钢筋班"}),
        )
        .await;
    assert_eq!(again.expect(409)["error"]["code"], "team_exists");

    let person = app.worker("赵六").await;
    app.assign(&project, &[person]).await;
    admin
        .patch(
            &format!("/projects/{project}/workers/{person}"),
            &json!({"teamId": team_id, "trade": "钢筋工"}),
        )
        .await
        .expect(204);
    let roster = admin
        .get(&format!("/projects/{project}/workers"))
        .await
        .expect(200);
    assert_eq!(roster["workers"][0]["teamId"], team_id);
    assert_eq!(roster["workers"][0]["trade"], "钢筋工");
    let other = app.project(None).await;
    let foreign = admin
        .post(
            &format!("/projects/{other}/teams"),
            &json!({"name": "木工班"}),
        )
        .await
        .expect(201);
    let r = admin
        .patch(
            &format!("/projects/{project}/workers/{person}"),
            &json!({"teamId": foreign["id"]}),
        )
        .await;
    assert_eq!(r.expect(422)["error"]["code"], "unknown_team");

    // Blacklisting takes the worker off the roster and off the gate, and bars re-entry.
    admin
        .post(
            &format!("/workers/{person}/blacklist"),
            &json!({"reason": "严重违规"}),
        )
        .await
        .expect(204);
    let roster = admin
        .get(&format!("/projects/{project}/workers"))
        .await
        .expect(200);
    assert!(roster["workers"].as_array().unwrap().is_empty());
    let tasks = app.tasks_of("GATE-1").await;
    assert!(tasks.iter().any(|t| t.apicode == "T_DEL_DEVICE_PERSON"));
    let r = admin
        .post(
            &format!("/projects/{other}/workers"),
            &json!({"personIds": [person.to_string()]}),
        )
        .await;
    assert_eq!(r.expect(409)["error"]["code"], "worker_blacklisted");
    let detail = admin.get(&format!("/workers/{person}")).await.expect(200);
    assert_eq!(detail["blacklisted"], true);
    assert_eq!(detail["blacklistReason"], "严重违规");
    assert_eq!(
        admin.get("/blacklist").await.expect(200)["workers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Off the list: back on the roster and sent to the gate again.
    admin
        .delete(&format!("/workers/{person}/blacklist"))
        .await
        .expect(204);
    let roster = admin
        .get(&format!("/projects/{project}/workers"))
        .await
        .expect(200);
    assert_eq!(roster["workers"].as_array().unwrap().len(), 1);
    let tasks = app.tasks_of("GATE-1").await;
    assert!(tasks.iter().any(|t| t.apicode == "T_UPDATE_DEVICE_PERSON"));
    assert_eq!(
        admin
            .delete(&format!("/workers/{person}/blacklist"))
            .await
            .status,
        404
    );
}

/// A project with an entrance and an exit gate, two workers, and a day of punches.
async fn punched_site(app: &TestApp) -> (String, i64, i64) {
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    for (sn, direction) in [("GATE-IN", "in"), ("GATE-OUT", "out")] {
        app.admin()
            .post(
                "/devices",
                &json!({"sn": sn, "vendorId": vendor.id, "projectId": project, "kind": "face", "direction": direction}),
            )
            .await
            .expect(201);
    }
    let (full, single) = (app.worker("全天工人").await, app.worker("单次工人").await);
    app.assign(&project, &[full, single]).await;
    let mut entrance = app.http_device(&vendor, "GATE-IN");
    entrance.auth().await;
    let mut exit = app.http_device(&vendor, "GATE-OUT");
    exit.auth().await;
    entrance
        .sign_in(&sign_in_param(&full.to_string(), 1, nov2(7, 55)))
        .await;
    entrance
        .sign_in(&sign_in_param(&full.to_string(), 1, nov2(12, 0)))
        .await;
    exit.sign_in(&sign_in_param(&full.to_string(), 1, nov2(17, 31)))
        .await;
    entrance
        .sign_in(&sign_in_param(&single.to_string(), 1, nov2(8, 10)))
        .await;
    (project, full, single)
}

#[tokio::test]
async fn the_daily_summary_takes_first_in_and_last_out_by_device_direction() {
    let app = TestApp::spawn().await;
    let (project, full, single) = punched_site(&app).await;
    let day = app
        .admin()
        .get(&format!("/projects/{project}/daily?date=2026-11-02"))
        .await
        .expect(200);
    assert_eq!(day["headcount"], 2);
    let line = |p: i64| {
        day["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["personId"].as_str() == Some(p.to_string().as_str()))
            .cloned()
            .unwrap()
    };
    let f = line(full);
    assert_eq!(f["firstIn"], nov2(7, 55));
    assert_eq!(f["lastOut"], nov2(17, 31));
    assert_eq!(f["hours"], 9.6);
    assert_eq!(f["punches"], 3);
    assert!(f["idcardNo"].as_str().unwrap().contains("********"));
    let s = line(single);
    assert_eq!(s["hours"], Value::Null);
    assert_eq!(s["punches"], 1);
    let next = app
        .admin()
        .get(&format!("/projects/{project}/daily?date=2026-11-03"))
        .await
        .expect(200);
    assert_eq!(next["headcount"], 0);
    let bad = app
        .admin()
        .get(&format!("/projects/{project}/daily?date=11/02"))
        .await;
    assert_eq!(bad.expect(422)["error"]["field"], "date");
}

#[tokio::test]
async fn the_monthly_sheet_has_a_row_per_worker_and_a_column_per_day() {
    let app = TestApp::spawn().await;
    let (project, _, _) = punched_site(&app).await;
    let (status, bytes) = app
        .download(&format!(
            "/reports/monthly?month=2026-11&projectId={project}"
        ))
        .await;
    assert_eq!(status, 200);
    let mut book = Xlsx::new(Cursor::new(bytes)).expect("an xlsx workbook");
    let names = book.sheet_names();
    assert_eq!(names.len(), 1);
    let sheet = book.worksheet_range(&names[0]).expect("the sheet");
    let cells: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Float(f) => format!("{f}"),
                    Data::Int(i) => format!("{i}"),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let text = format!("{cells:?}");
    assert!(text.contains("2026年11月"), "{text}");
    let header = cells
        .iter()
        .find(|r| r.iter().any(|c| c == "姓名"))
        .expect("header row");
    let day2 = header
        .iter()
        .position(|c| c == "2")
        .expect("a column per day");
    assert!(header.iter().any(|c| c == "30") && !header.iter().any(|c| c == "31"));
    let full = cells
        .iter()
        .find(|r| r.iter().any(|c| c == "全天工人"))
        .expect("row");
    assert_eq!(full[day2], "9.6");
    assert!(
        full.iter().any(|c| c.contains("********")),
        "masked ID number"
    );
    let single = cells
        .iter()
        .find(|r| r.iter().any(|c| c == "单次工人"))
        .expect("row");
    assert_eq!(single[day2], "单", "the single-punch mark");

    let (status, _) = app.download("/reports/monthly?month=2026-13").await;
    assert_eq!(status, 422);
    let log = app.admin().get("/audit").await.expect(200);
    assert!(log.to_string().contains("导出 2026年11月考勤表"));
}

fn zip_of(files: &[(String, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in files {
        w.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[tokio::test]
async fn a_roster_import_enrols_joins_and_reports_refused_rows() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("GATE-IMP", &vendor, Some(&project))
        .await;
    let existing = next_idcard_number();
    app.admin()
        .post(
            "/workers",
            &json!({"idcardNo": existing, "name": "老工人", "facePhoto": b64(FACE_JPG)}),
        )
        .await
        .expect(201);
    let (new, no_photo, bad_face) = (
        next_idcard_number(),
        next_idcard_number(),
        next_idcard_number(),
    );
    let csv = format!(
        "\u{feff}姓名,身份证号,手机号,班组,工种\n\
         新工人,{new},13800001111,钢筋班,钢筋工\n\
         老工人,{existing},,木工班,木工\n\
         没照片,{no_photo},,,\n\
         坏照片,{bad_face},,,\n\
         错号码,110105194912310020,,,\n"
    );
    let photos = zip_of(&[
        (format!("{new}.jpg"), FACE_JPG),
        (format!("照片/{bad_face}.jpg"), NO_FACE),
    ]);
    let r = app
        .post_multipart(
            &format!("/projects/{project}/import"),
            &[
                ("roster", Some("花名册.csv"), csv.as_bytes()),
                ("photos", Some("photos.zip"), &photos),
            ],
        )
        .await
        .expect(200);
    assert_eq!(r["enrolled"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["joined"].as_array().unwrap().len(), 1, "{r}");
    let rows: Vec<(u64, &str)> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, vec![(4, "照片"), (5, "照片"), (6, "身份证号")], "{r}");
    assert!(
        !r.to_string().contains(&no_photo),
        "row errors never echo ID numbers"
    );

    // The report downloads through its signed URL.
    let url = r["errorReportCsv"].as_str().expect("a report URL");
    let report = app.http.get(url).send().await.unwrap();
    assert_eq!(report.status(), 200);
    let text = report.text().await.unwrap();
    assert!(text.contains("行号,字段,错误") && text.contains("6,身份证号"));

    // Both are on the roster with their teams; the teams were created by name.
    let roster = app
        .admin()
        .get(&format!("/projects/{project}/workers"))
        .await
        .expect(200);
    assert_eq!(roster["workers"].as_array().unwrap().len(), 2);
    let teams = app
        .admin()
        .get(&format!("/projects/{project}/teams"))
        .await
        .expect(200);
    let mut names: Vec<&str> = teams["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, vec!["木工班", "钢筋班"]);
    assert!(
        app.tasks_of("GATE-IMP")
            .await
            .iter()
            .any(|t| t.apicode == "T_UPDATE_DEVICE_PERSON")
    );

    // A file without the required columns is refused as a whole, naming the column.
    let r = app
        .post_multipart(
            &format!("/projects/{project}/import"),
            &[("roster", Some("x.csv"), "姓名,电话\n张三,1\n".as_bytes())],
        )
        .await;
    let e = r.expect(422);
    assert_eq!(e["error"]["field"], "roster");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("身份证号"),
        "{e}"
    );
}

/// ZJ-FW-02: firmware URLs are signed on delivery.
#[tokio::test]
async fn firmware_rolls_out_to_a_vendors_devices_with_urls_signed_on_delivery() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("FW-1", &vendor, Some(&project)).await;
    app.register_device("FW-2", &vendor, None).await;
    let package = b"\x7fELF firmware image v2.1.0";
    let vendor_id = vendor.id.to_string();
    let up = app
        .post_multipart(
            "/firmware",
            &[
                ("vendorId", None, vendor_id.as_bytes()),
                ("kind", None, b"face"),
                ("version", None, b"2.1.0"),
                ("file", Some("fw.bin"), package),
            ],
        )
        .await
        .expect(201);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(package))
    };
    assert_eq!(up["sha256"], sha);
    let again = app
        .post_multipart(
            "/firmware",
            &[
                ("vendorId", None, vendor_id.as_bytes()),
                ("kind", None, b"face"),
                ("version", None, b"2.1.0"),
                ("file", Some("fw.bin"), package),
            ],
        )
        .await;
    assert_eq!(again.expect(409)["error"]["code"], "firmware_exists");
    let missing = app
        .post_multipart(
            "/firmware",
            &[
                ("vendorId", None, vendor_id.as_bytes()),
                ("kind", None, b"face"),
            ],
        )
        .await;
    assert_eq!(missing.expect(422)["error"]["field"], "version");

    let id = up["id"].as_str().unwrap();
    let deployed = app
        .admin()
        .post(&format!("/firmware/{id}/deploy"), &json!({}))
        .await
        .expect(201);
    assert_eq!(deployed["tasks"].as_array().unwrap().len(), 2);
    let status = app
        .admin()
        .get(&format!("/firmware/{id}"))
        .await
        .expect(200);
    assert_eq!(status["devices"].as_array().unwrap().len(), 2);
    assert!(
        status["devices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "pending")
    );

    // The device gets a signed URL that downloads the exact package.
    let mut device = app.http_device(&vendor, "FW-1");
    device.auth().await;
    let taskid = deployed["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["sn"] == "FW-1")
        .unwrap()["taskid"]
        .as_str()
        .unwrap()
        .to_owned();
    let tasks = device.get_tasks(&[taskid]).await;
    let text = serde_json::to_value(&tasks).unwrap().to_string();
    let url = text
        .split("downloadUrl")
        .nth(1)
        .and_then(|rest| rest.split("http").nth(1))
        .and_then(|rest| rest.split(['"', '\\']).next())
        .map(|rest| format!("http{rest}"))
        .expect("a download URL");
    assert!(
        url.contains("sig") || url.contains("expires") || url.contains('?'),
        "{url}"
    );
    let body = app
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], &package[..]);
}
