//! The HTTP device API (ZJ-TRANS-02 to ZJ-TRANS-04, ZJ-HTTP-01 to ZJ-HTTP-05, ZJ-JSON-01 to ZJ-JSON-04): status codes, the path alias, lenient
//! bodies and object params signed over their raw text.

use rollcall_protocol::envelope::Response;
use rollcall_protocol::{ApiCode, ErrorCode};

use crate::helpers::*;

async fn setup(sn: &str) -> (TestApp, VendorCreds, HttpDevice) {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.register_device(sn, &vendor, None).await;
    let mut dev = app.http_device(&vendor, sn);
    dev.auth().await;
    (app, vendor, dev)
}

/// ZJ-TRANS-03: a body that is not JSON gets 400_02 with HTTP status 200.
#[tokio::test]
async fn a_body_that_is_not_json_gets_http_200_with_400_02_unsigned() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let dev = app.http_device(&vendor, "SN-NOTJSON");
    for body in ["hello", "", "[1,2,3]", "{\"version\":"] {
        let resp = dev.post_body("", body).await;
        expect_err(&resp, ErrorCode::ParamInvalid);
        assert!(resp.sign.is_empty());
    }
}

#[tokio::test]
async fn a_body_over_max_body_bytes_gets_http_413_with_a_413_01_body() {
    let app = TestApp::spawn_with(|s| s.max_body_bytes = 4096).await;
    let vendor = app.vendor().await;
    let dev = app.http_device(&vendor, "SN-BIGBODY");
    let mut p = sign_in_param("1", 1, now_ms());
    p["img"] = b64(&vec![0u8; 8192]).into();
    let req = dev.id.signed(ApiCode::SignIn, Some(&p.to_string()));

    let (status, text) = dev.post_raw("", req.to_http_json()).await;

    assert_eq!(status, 413);
    let resp = Response::from_http_body(text.as_bytes()).expect("a protocol body");
    expect_err(&resp, ErrorCode::TooLarge);
    assert!(app.records("SN-BIGBODY").await.is_empty());
}

#[tokio::test]
async fn the_path_apicode_fills_in_a_body_without_one() {
    let (_app, vendor, dev) = setup("SN-PATH").await;
    let mut req = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    req.apicode.clear();

    let resp = dev.post_body("/C_HEARTBEAT", req.to_http_json()).await;

    assert_eq!(resp.apicode, "C_HEARTBEAT");
    assert_eq!(
        expect_ok(&resp, ApiCode::Heartbeat, &vendor.secret).as_deref(),
        Some(r#"{"taskids":[]}"#)
    );
}

#[tokio::test]
async fn a_body_apicode_equal_to_the_path_apicode_is_accepted() {
    let (_app, vendor, dev) = setup("SN-PATH-SAME").await;
    let req = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));

    let resp = dev.post_body("/C_HEARTBEAT", req.to_http_json()).await;

    expect_ok(&resp, ApiCode::Heartbeat, &vendor.secret);
}

#[tokio::test]
async fn a_body_apicode_that_contradicts_the_path_gets_400_01_signed() {
    let (_app, vendor, dev) = setup("SN-PATH-MISMATCH").await;
    let req = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));

    let resp = dev.post_body("/C_SIGN_IN", req.to_http_json()).await;

    let e = expect_err(&resp, ErrorCode::ApiCodeInvalid);
    assert!(e.errormsg().contains("C_SIGN_IN"), "{}", e.errormsg());
    assert!(resp.verify(ApiCode::Heartbeat, &vendor.secret));
}

/// ZJ-HTTP-02, ZJ-SIGN-03: an object param is signed over its raw text.
#[tokio::test]
async fn an_object_param_is_signed_over_its_raw_text_as_sent() {
    let (_app, vendor, dev) = setup("SN-RAWPARAM").await;
    let raw = r#"{ "deviceVersion" : "FW-2",   "deviceIp":"10.0.0.9" }"#;
    let req = dev.id.signed(ApiCode::Heartbeat, Some(raw));
    let body = format!(
        r#"{{"version":"{}","sn":"{}","token":"{}","apicode":"C_HEARTBEAT","timeStamp":"{}","param":{raw},"sign":"{}"}}"#,
        req.version, req.sn, req.token, req.time_stamp, req.sign
    );

    let resp = dev.post_body("", body).await;

    expect_ok(&resp, ApiCode::Heartbeat, &vendor.secret);
}

#[tokio::test]
async fn a_json5_body_with_unquoted_keys_and_numbers_as_strings_is_accepted() {
    let (app, vendor, dev) = setup("SN-JSON5").await;
    let now = now_ms();
    // The standard's own style: unquoted keys, numbers written as strings and vice versa.
    let raw = format!(r#"{{personId: 9001, type: "1", recordTime: "{now}"}}"#);
    let req = dev.id.signed(ApiCode::SignIn, Some(&raw));
    let body = format!(
        r#"{{version: 'v1.0.0', sn: '{}', token: '{}', apicode: 'C_SIGN_IN', timeStamp: {}, param: {raw}, sign: '{}'}}"#,
        req.sn, req.token, req.time_stamp, req.sign
    );

    let resp = dev.post_body("", body).await;

    expect_ok(&resp, ApiCode::SignIn, &vendor.secret);
    let records = app.records("SN-JSON5").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].person_id, "9001");
    assert_eq!(records[0].record_time, now);
}

/// ZJ-TRANS-03, ZJ-HTTP-03: errors travel in the body, with HTTP status 200.
#[tokio::test]
async fn every_error_answer_is_http_200_with_a_protocol_body() {
    let (_app, _vendor, dev) = setup("SN-200").await;
    let mut req = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    req.sign = "0".repeat(32);

    let (status, text) = dev.post_raw("", req.to_http_json()).await;

    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&text).expect("strict JSON");
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["errorcode"], "400_04");
    assert_eq!(body["error"]["errormsg"], "token或sign验证失败");
    assert_eq!(body["apicode"], "C_HEARTBEAT");
}

/// ZJ-SIGN-04: the compact strict form of a JSON5 object param.
#[tokio::test]
async fn a_json5_object_param_may_be_signed_over_its_compact_strict_form() {
    let (_app, vendor, dev) = setup("SN-JSON5-ALT").await;
    // What the device signed: the object written compactly as strict JSON.
    let strict = r#"{"deviceVersion":"v2","deviceIp":"10.0.0.7"}"#;
    let req = dev.id.signed(ApiCode::Heartbeat, Some(strict));
    // What it sent: the same object in the standard's JSON5 style.
    let body = format!(
        r#"{{version:"v1.0.0",sn:"{}",token:"{}",apicode:"C_HEARTBEAT",timeStamp:"{}",param:{{deviceVersion:'v2', deviceIp:"10.0.0.7"}},sign:"{}"}}"#,
        req.sn, req.token, req.time_stamp, req.sign
    );

    let resp = dev.post_body("", body).await;

    expect_ok(&resp, ApiCode::Heartbeat, &vendor.secret);
}

/// ZJ-SIGN-06, ZJ-SIGN-08: C_SIGN_IN is signed over its param without `img`.
#[tokio::test]
async fn a_sign_in_object_param_is_signed_without_its_img_and_the_photo_is_kept() {
    let (app, vendor, dev) = setup("SN-OBJ-IMG").await;
    let now = now_ms();
    // Spaces, the img in the middle: the device signs form A (img cut, whitespace dropped).
    let raw = format!(
        r#"{{ "personId": "55", "img": "{}", "type": 1, "recordTime": {now} }}"#,
        b64(FACE_JPG)
    );
    let req = dev.id.signed(ApiCode::SignIn, Some(&raw));
    let body = format!(
        r#"{{"version":"v1.0.0","sn":"{}","token":"{}","apicode":"C_SIGN_IN","timeStamp":"{}","param":{raw},"sign":"{}"}}"#,
        req.sn, req.token, req.time_stamp, req.sign
    );

    let resp = dev.post_body("", body).await;

    expect_ok(&resp, ApiCode::SignIn, &vendor.secret);
    let records = app.records("SN-OBJ-IMG").await;
    assert_eq!(records.len(), 1);
    let (status, bytes) = fetch(&app.http, records[0].photo_url.as_deref().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, FACE_JPG);
}
