//! X_COLLECT_PERSON (ZJ-COLLECT-01 to ZJ-COLLECT-06): a collection device enrols a worker over HTTP.

use rollcall_protocol::params::{self, CollectPersonResponse};
use rollcall_protocol::{ApiCode, ErrorCode};
use serde_json::{Value, json};

use crate::helpers::*;

fn collect_param(idcard_no: &str, face: &[u8]) -> Value {
    json!({
        "idcardNo": idcard_no,
        "name": "陈六",
        "gender": "男",
        "nation": "汉",
        "birthDate": "19850315",
        "address": "浙江省杭州市西湖区某路 1 号",
        "issuingAuthority": "杭州市公安局西湖分局",
        "validFrom": "20150101",
        "validTo": "长期",
        "facePhoto": b64(face),
        "idCardPhoto": b64(FACE_PNG),
        "phone": "13800000000",
        "faceMatchScore": 0.93
    })
}

async fn collector(app: &TestApp, project: Option<&str>) -> HttpDevice {
    let vendor = app.vendor().await;
    app.register_device_of_kind("SN-COLLECT", &vendor, project, "collector")
        .await;
    let mut dev = app.http_device(&vendor, "SN-COLLECT");
    dev.auth().await;
    dev
}

async fn collect(dev: &HttpDevice, param: &Value) -> rollcall_protocol::envelope::Response {
    dev.call(
        &dev.id
            .signed(ApiCode::CollectPerson, Some(&param.to_string())),
    )
    .await
}

/// ZJ-COLLECT-02 (signed without its images), ZJ-COLLECT-06.
#[tokio::test]
async fn a_collected_worker_with_a_valid_id_number_gets_a_person_id_and_joins_the_project() {
    let app = TestApp::spawn().await;
    let project = app.project(None).await;
    let dev = collector(&app, Some(&project)).await;
    let idcard = idcard_with_check("33010619850315123");

    let resp = collect(&dev, &collect_param(&idcard, FACE_JPG)).await;

    let text = dev
        .id
        .ok(&resp, ApiCode::CollectPerson)
        .expect("a person id");
    let r: CollectPersonResponse = params::parse(&text).unwrap();
    let worker = app
        .admin()
        .get(&format!("/workers/{}", r.person_id))
        .await
        .expect(200);
    assert_eq!(worker["name"], "陈六");
    assert_eq!(
        worker["idcardNo"],
        format!("{}********{}", &idcard[..6], &idcard[14..]),
        "masked"
    );
    let face_url = worker["faceUrl"].as_str().expect("a face");
    assert_eq!(fetch(&app.http, face_url).await.1, FACE_JPG);
    let roster = app
        .admin()
        .get(&format!("/projects/{project}/workers"))
        .await
        .expect(200);
    assert!(
        roster["workers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["personId"] == r.person_id.as_str()),
        "the collector's project has the worker: {roster}"
    );
    // The collector's own project devices are told (the collector is one of them).
    let tasks = app.tasks_of("SN-COLLECT").await;
    assert_eq!(tasks.last().unwrap().apicode, "T_UPDATE_DEVICE_PERSON");

    // Collected again: the same person.
    let again = collect(&dev, &collect_param(&idcard, FACE_JPG)).await;
    let r2: CollectPersonResponse =
        params::parse(&dev.id.ok(&again, ApiCode::CollectPerson).unwrap()).unwrap();
    assert_eq!(r2.person_id, r.person_id);
}

/// ZJ-COLLECT-07: a device that is not a collector cannot enrol: 400_01, and no worker is
/// stored.
#[tokio::test]
async fn a_device_that_is_not_a_collector_gets_400_01_and_enrols_nobody() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.register_device("SN-GATE", &vendor, None).await;
    let mut dev = app.http_device(&vendor, "SN-GATE");
    dev.auth().await;
    let idcard = idcard_with_check("33010619850315123");

    let resp = collect(&dev, &collect_param(&idcard, FACE_JPG)).await;

    let e = expect_err(&resp, ErrorCode::ApiCodeInvalid);
    assert!(
        e.errormsg().contains("X_COLLECT_PERSON"),
        "{}",
        e.errormsg()
    );
    let workers = app.admin().get("/workers").await.expect(200);
    assert_eq!(
        workers["workers"].as_array().map(Vec::len),
        Some(0),
        "{workers}"
    );
}

/// ZJ-COLLECT-05: a failed enrolment rule (RC-DEV-04) is 400_02 naming the field.
#[tokio::test]
async fn an_invalid_id_number_gets_400_02_naming_idcard_no() {
    let app = TestApp::spawn().await;
    let dev = collector(&app, None).await;
    let valid = idcard_with_check("33010619850315123");
    let wrong_check = format!(
        "{}{}",
        &valid[..17],
        if valid.ends_with('0') { '1' } else { '0' }
    );

    for bad in [wrong_check.as_str(), "12345", "990106198503151234"] {
        let resp = collect(&dev, &collect_param(bad, FACE_JPG)).await;
        let e = expect_err(&resp, ErrorCode::ParamInvalid);
        assert!(e.errormsg().contains("idcardNo"), "{}", e.errormsg());
        assert!(!e.errormsg().contains(bad), "the number is not echoed");
    }
}

/// ZJ-COLLECT-05: the face photo rule (RC-DEV-07).
#[tokio::test]
async fn a_face_photo_that_is_not_a_jpeg_or_png_gets_400_02_naming_face_photo() {
    let app = TestApp::spawn().await;
    let dev = collector(&app, None).await;

    let resp = collect(
        &dev,
        &collect_param(
            &idcard_with_check("33010619850315123"),
            b"GIF89a not a face",
        ),
    )
    .await;

    let e = expect_err(&resp, ErrorCode::ParamInvalid);
    assert!(e.errormsg().contains("facePhoto"), "{}", e.errormsg());
}

/// ZJ-COLLECT-01, ZJ-CONN-04: X_COLLECT_PERSON is HTTP only.
#[tokio::test]
async fn x_collect_person_over_tcp_gets_400_01() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-COLLECT-TCP").await;
    dev.auth().await;
    let p = collect_param(&idcard_with_check("33010619850315123"), FACE_JPG);

    let resp = dev
        .call(dev.id.signed(ApiCode::CollectPerson, Some(&p.to_string())))
        .await;

    expect_err(&resp, ErrorCode::ApiCodeInvalid);
}

/// A greyscale BMP of the given size.
fn grey_bmp(width: u32, height: u32) -> Vec<u8> {
    let img = image::GrayImage::from_pixel(width, height, image::Luma([128]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Bmp)
        .expect("encode BMP");
    out.into_inner()
}

/// ZJ-COLLECT-03, ZJ-COLLECT-04: every image member is checked and named.
#[tokio::test]
async fn every_image_member_is_checked_and_a_bad_one_gets_400_02_naming_it() {
    let app = TestApp::spawn().await;
    let dev = collector(&app, None).await;
    let idcard = idcard_with_check("33010619850315123");
    let base = collect_param(&idcard, FACE_JPG);
    let iris = include_bytes!("../data/iris.bmp");
    let cases = [
        ("idCardPhoto", json!("%%% not base64 %%%")),
        ("idCardFront", json!(b64(b"plain text, not a picture"))),
        ("irisLeft", json!(b64(&grey_bmp(320, 240)))),
        ("irisRight", json!(b64(FACE_JPG))),
    ];
    for (member, value) in cases {
        let mut p = base.clone();
        p["irisLeft"] = b64(iris).into();
        p[member] = value;

        let resp = collect(&dev, &p).await;

        let e = expect_err(&resp, ErrorCode::ParamInvalid);
        assert!(e.errormsg().contains(member), "{}", e.errormsg());
    }

    // The same enrolment with good images (a 640×480 8-bit iris) is accepted.
    let mut p = base.clone();
    p["irisLeft"] = b64(iris).into();
    p["irisRight"] = b64(&grey_bmp(640, 480)).into();
    p["idCardFront"] = b64(FACE_PNG).into();
    dev.id.ok(&collect(&dev, &p).await, ApiCode::CollectPerson);
}

/// A 1×1 JPEG: a picture, but no face.
fn tiny_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(1, 1, image::Rgb([200, 180, 160]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode JPEG");
    out.into_inner()
}

async fn assert_no_worker(app: &TestApp) {
    let workers = app.admin().get("/workers").await.expect(200);
    assert_eq!(
        workers["workers"].as_array().map(Vec::len),
        Some(0),
        "nothing stored: {workers}"
    );
}

/// ZJ-COLLECT-05: the face rules of enrolment (RC-DEV-09, RC-DEV-10) apply to a collected
/// face: a 1×1 picture gets 400_02 naming facePhoto, and nothing is stored.
#[tokio::test]
async fn a_collected_face_that_breaks_the_face_rules_gets_400_02_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let dev = collector(&app, None).await;

    let resp = collect(
        &dev,
        &collect_param(&idcard_with_check("33010619850315123"), &tiny_jpeg()),
    )
    .await;

    let e = expect_err(&resp, ErrorCode::ParamInvalid);
    assert!(e.errormsg().contains("facePhoto"), "{}", e.errormsg());
    assert_no_worker(&app).await;
}

/// ZJ-COLLECT-05: the text rules of enrolment apply to a collected worker's fields: too
/// long, or with control characters, gets 400_02 naming the field, and nothing is stored.
#[tokio::test]
async fn collected_text_fields_follow_the_enrolment_rules() {
    let app = TestApp::spawn().await;
    let dev = collector(&app, None).await;
    let base = collect_param(&idcard_with_check("33010619850315123"), FACE_JPG);
    let long_name = format!("陈\u{7}{}", "六".repeat(5004));
    let cases = [
        ("name", json!(long_name)),
        ("name", json!("陈\u{1b}[2J六")),
        ("name", json!("   ")),
        ("phone", json!("13800000000\r\nX-Injected: 1")),
        ("address", json!("杭".repeat(201))),
        ("nation", json!("汉\u{0}")),
        ("gender", json!("男男男男男男男男男")),
    ];
    for (member, value) in cases {
        let mut p = base.clone();
        p[member] = value;

        let resp = collect(&dev, &p).await;

        let e = expect_err(&resp, ErrorCode::ParamInvalid);
        assert!(e.errormsg().contains(member), "{member}: {}", e.errormsg());
    }
    assert_no_worker(&app).await;

    // Surrounding spaces are trimmed, as in the admin API.
    let mut p = base.clone();
    p["name"] = json!("  陈六  ");
    let text = dev
        .id
        .ok(&collect(&dev, &p).await, ApiCode::CollectPerson)
        .expect("a person id");
    let r: CollectPersonResponse = params::parse(&text).unwrap();
    let worker = app
        .admin()
        .get(&format!("/workers/{}", r.person_id))
        .await
        .expect(200);
    assert_eq!(worker["name"], "陈六");
}
