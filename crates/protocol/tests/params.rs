//! Typed params and responses: lenient reading (ZJ-JSON-02), strict writing (ZJ-JSON-04),
//! member-naming errors (ZJ-ERR-06), the 403 rules of C_SIGN_IN (ZJ-SIGNIN-02), and round
//! trips through strict and relaxed JSON.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use proptest::prelude::*;
use rollcall_protocol::params::*;
use rollcall_protocol::{ApiCode, ErrorCode, ProtocolError};
use serde_json::Value;

const SIGN_JSON: &str = include_str!("data/sign.json");

fn vectors() -> Value {
    serde_json::from_str(SIGN_JSON).expect("sign.json is JSON")
}

/// The param text of a request vector: `paramText` (the exact text in the body) when given,
/// else the string param itself.
fn param_text(fields: &Value, entry: &Value) -> Option<String> {
    if let Some(t) = entry.get("paramText").and_then(Value::as_str) {
        return Some(t.to_owned());
    }
    match fields.get("param")? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Parses `text` as the param type of `apicode`, returning it back as a JSON value.
fn parse_param_as(apicode: ApiCode, text: &str) -> Result<Value, ProtocolError> {
    fn go<T: serde::de::DeserializeOwned + serde::Serialize>(
        text: &str,
    ) -> Result<Value, ProtocolError> {
        let v: T = parse(text)?;
        Ok(serde_json::from_str(&to_json(&v)).expect("to_json writes JSON"))
    }
    match apicode {
        ApiCode::Heartbeat => go::<HeartbeatParam>(text),
        ApiCode::SignIn => go::<SignInParam>(text),
        ApiCode::GetTasks => go::<GetTasksParam>(text),
        ApiCode::UpdateTasksStatus => go::<UpdateTasksStatusParam>(text),
        ApiCode::SendPerson | ApiCode::UpdateDevicePerson => go::<PageParam>(text),
        ApiCode::PostDevicePerson => go::<PostDevicePersonParam>(text),
        ApiCode::UpdateDeviceVersion => go::<FirmwareInfo>(text),
        ApiCode::CollectPerson => go::<CollectPersonParam>(text),
        other => panic!("{other} has no param"),
    }
}

fn detail(e: &ProtocolError) -> &str {
    e.detail.as_deref().unwrap_or("")
}

/// Asserts a 400_02 whose detail contains every one of `needles`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T, ProtocolError>, needles: &[&str]) {
    let e = r.expect_err("should be refused");
    assert_eq!(e.code, ErrorCode::ParamInvalid, "{e}");
    for n in needles {
        assert!(
            detail(&e).contains(n),
            "detail {:?} lacks {n:?}",
            detail(&e)
        );
    }
}

// ---- golden vectors --------------------------------------------------------------------

#[test]
fn every_param_of_sign_json_parses() {
    let v = vectors();
    let mut seen = 0;
    let entries = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["paramWithoutImg"].as_array().unwrap());
    for entry in entries {
        let fields = &entry["fields"];
        let apicode: ApiCode = fields["apicode"].as_str().unwrap().parse().unwrap();
        let Some(text) = param_text(fields, entry) else {
            continue;
        };
        let name = entry["name"].as_str().unwrap_or("?");
        parse_param_as(apicode, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
    }
    assert!(seen >= 15, "only {seen} params");
}

#[test]
fn sign_json_params_read_to_the_expected_values() {
    let v = vectors();
    let req = |name: &str| {
        let entry = v["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no vector {name}"))
            .clone();
        param_text(&entry["fields"], &entry).unwrap()
    };

    let face: SignInParam = parse(&req("sign-in-face")).unwrap();
    assert_eq!(face.person_id, "4508004291609636864");
    assert_eq!((face.r#type, face.record_time), (1, 1_609_744_974_000));
    let jpeg = face.decode_img().unwrap().unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);

    let mobile: SignInParam = parse(&req("sign-in-no-img")).unwrap();
    assert_eq!(mobile.r#type, 64);
    assert_eq!(mobile.record_time, 1_609_744_974_000);
    assert_eq!(
        mobile.coordinate,
        Some(Coordinate {
            longitude: 120.15507,
            latitude: 30.274084
        })
    );
    assert_eq!(mobile.decode_img(), Ok(None));
    mobile.validate().unwrap();

    let qr: SignInParam = parse(&req("sign-in-qr")).unwrap();
    assert_eq!(
        (qr.r#type, qr.bit_type, qr.temperature),
        (16, Some(17), Some(36.7))
    );
    let info = qr.qr_code_info.as_ref().unwrap();
    assert_eq!(info.r#type, 2);
    assert_eq!(info.code_color.as_deref(), Some("green"));
    assert_eq!(info.city_code.as_deref(), Some("330100"));
    qr.validate().unwrap();
    assert!(qr.is_real_name(), "17 contains face");

    let hb: HeartbeatParam = parse(&req("heartbeat-relaxed-json")).unwrap();
    assert_eq!(hb, parse::<HeartbeatParam>(&req("heartbeat")).unwrap());
    assert_eq!(hb.device_ip, "192.168.1.11");

    let page: PageParam = parse(&req("update-person")).unwrap();
    assert_eq!(page, parse::<PageParam>(&req("send-person")).unwrap());
    assert_eq!(page.effective_size(), 10);

    let status: UpdateTasksStatusParam = parse(&req("update-tasks-status")).unwrap();
    assert_eq!((status.person_count, status.face_count), (300, 200));
    assert_eq!(status.task[0].status, TaskOutcome::Done);
    assert_eq!(status.task[0].failed_faces.len(), 2);
    assert_eq!(status.task[0].failed_faces[1].err_code, "404_2");

    let post: PostDevicePersonParam = parse(&req("post-device-person")).unwrap();
    assert_eq!((post.current_page, post.total_page), (1, 10));
    assert_eq!(post.data[0].name.as_deref(), Some("张三"));
    assert_eq!(post.data[0].has_img, Some(true));
    assert_eq!(post.data[1].phone.as_deref(), Some("13800000000"));
}

#[test]
fn responses_written_match_the_golden_texts() {
    let v = vectors();
    for entry in v["responses"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let Some(text) = entry["fields"]["response"].as_str() else {
            continue;
        };
        let apicode: ApiCode = entry["apicode"].as_str().unwrap().parse().unwrap();
        let written = match apicode {
            ApiCode::Auth => to_json(&parse::<AuthResponse>(text).unwrap()),
            ApiCode::Heartbeat => to_json(&parse::<HeartbeatResponse>(text).unwrap()),
            ApiCode::SignIn => to_json(&parse::<SignInResponse>(text).unwrap()),
            ApiCode::GetTasks => to_json(&parse::<GetTasksResponse>(text).unwrap()),
            ApiCode::SendPerson => {
                // The vector omits `size` (as the standard's example does): it reads as 0
                // and we always write it.
                let page: PersonPage = parse(text).unwrap();
                assert_eq!(page.size, 0);
                let mut w = to_json(&page);
                assert!(w.ends_with(",\"size\":0}"), "{w}");
                w.truncate(w.len() - ",\"size\":0}".len());
                w.push('}');
                w
            }
            other => panic!("{name}: unexpected {other}"),
        };
        assert_eq!(written, text, "{name}");
    }
}

#[test]
fn writing_is_compact_strict_and_in_field_order() {
    let p = SignInParam {
        person_id: "4508004291609636864".into(),
        r#type: 16,
        bit_type: Some(17),
        qr_code_info: Some(QrCodeInfo {
            r#type: 2,
            code_color: Some("green".into()),
            code_value: None,
            city_code: Some("330100".into()),
        }),
        img: None,
        record_time: 1_609_744_974_000,
        temperature: Some(36.7),
        iris_info: None,
        coordinate: Some(Coordinate {
            longitude: 120.15507,
            latitude: 30.274084,
        }),
    };
    assert_eq!(
        to_json(&p),
        r#"{"personId":"4508004291609636864","type":16,"bitType":17,"qrCodeInfo":{"type":2,"codeColor":"green","cityCode":"330100"},"recordTime":1609744974000,"temperature":36.7,"coordinate":{"longitude":120.15507,"latitude":30.274084}}"#
    );
    let status = UpdateTasksStatusParam {
        task: vec![TaskStatus {
            taskid: "6541951958563696640".into(),
            status: TaskOutcome::Unsupported,
            failed_persons: vec![],
            failed_faces: vec![FailedItem {
                person_id: "1".into(),
                err_code: "404_1".into(),
            }],
        }],
        person_count: 3,
        face_count: 2,
    };
    assert_eq!(
        to_json(&status),
        r#"{"task":[{"taskid":"6541951958563696640","status":3,"failedPersons":[],"failedFaces":[{"personId":"1","errCode":"404_1"}]}],"personCount":3,"faceCount":2}"#
    );
    let fw = FirmwareInfo {
        version: "1.2.3".into(),
        size: 42,
        download_url: "https://p.example/f?sig=x".into(),
        sha256: "ab".repeat(32),
    };
    let text = to_json(&fw);
    assert!(
        text.starts_with(r#"{"version":"1.2.3","size":42,"downloadUrl":"#),
        "{text}"
    );
    assert_eq!(parse::<FirmwareInfo>(&text).unwrap(), fw);
    assert_eq!(fw.sha256_bytes(), Some([0xAB; 32]));
    assert!(fw.matches(42, &[0xAB; 32]));
    assert!(!fw.matches(41, &[0xAB; 32]));
    assert_eq!(
        to_json(&DelPersonResponse {
            person_ids: vec!["1".into(), "2".into()]
        }),
        r#"{"personIds":["1","2"]}"#
    );
    assert_eq!(
        to_json(&CollectPersonResponse {
            person_id: "7".into()
        }),
        r#"{"personId":"7"}"#
    );
}

// ---- the standard's relaxed forms ------------------------------------------------------

/// ZJ-JSON-02: numbers as strings and strings as numbers read as the strict forms.
#[test]
fn relaxed_forms_read_as_the_strict_ones() {
    fn same<T>(relaxed: &str, strict: &str)
    where
        T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let a: T = parse(relaxed).unwrap_or_else(|e| panic!("{relaxed}: {e}"));
        let b: T = parse(strict).unwrap_or_else(|e| panic!("{strict}: {e}"));
        assert_eq!(a, b, "{relaxed} vs {strict}");
    }
    same::<GetTasksParam>(
        r#"{taskids:["6541951958563696640","6541951958626611200"]}"#,
        r#"{"taskids":["6541951958563696640","6541951958626611200"]}"#,
    );
    same::<GetTasksParam>(
        "{taskids:[6541951958563696640, '6541951958626611200',],}",
        r#"{"taskids":["6541951958563696640","6541951958626611200"]}"#,
    );
    same::<PageParam>(
        "{currentPage: 1,size: 10}",
        r#"{"currentPage":1,"size":10}"#,
    );
    same::<PageParam>(
        r#"{"currentPage":"1","size":"10"}"#,
        r#"{"currentPage":1,"size":10}"#,
    );
    same::<SignInParam>(
        r#"{personId:4508004291609636864,type:"64",recordTime:"1609744974000"}"#,
        r#"{"personId":"4508004291609636864","type":64,"recordTime":1609744974000}"#,
    );
    same::<SignInParam>(
        "{'personId':'1', type: 1, recordTime: 1609744974000.0, temperature: '36.7', // c\n bitType: null, img: null}",
        r#"{"personId":"1","type":1,"recordTime":1609744974000,"temperature":36.7}"#,
    );
    same::<SignInParam>(
        r#"{"personId":"1","type":16,"recordTime":1,"qrCodeInfo":{"type":"1","codeValue":330100}}"#,
        r#"{"personId":"1","type":16,"recordTime":1,"qrCodeInfo":{"type":1,"codeValue":"330100"}}"#,
    );
    same::<UpdateTasksStatusParam>(
        "{task:[{taskid:6541951958563696640,status:'2',failedPersons:null,failedFaces:[{personId:1,errCode:404}]}],personCount:'300',faceCount:200}",
        r#"{"task":[{"taskid":"6541951958563696640","status":2,"failedFaces":[{"personId":"1","errCode":"404"}]}],"personCount":300,"faceCount":200}"#,
    );
    same::<PostDevicePersonParam>(
        r#"{currentPage:1,totalPage:'1',data:[{personId:1,hasImg:'0'},{personId:'2',hasImg:true,phone:13800000000}]}"#,
        r#"{"currentPage":1,"totalPage":1,"data":[{"personId":"1","hasImg":false},{"personId":"2","hasImg":true,"phone":"13800000000"}]}"#,
    );
    same::<GetTasksResponse>(
        r#"{tasks:[{taskid:"1",apicode:"T_UPDATE_DEVICE_PERSON"}]}"#,
        r#"{"tasks":[{"taskid":"1","apicode":"T_UPDATE_DEVICE_PERSON","param":""}]}"#,
    );
    // An object where the task param's text belongs is kept as its compact text.
    same::<GetTasksResponse>(
        r#"{"tasks":[{"taskid":"1","apicode":"T_POST_DEVICE_PERSON","param":{"excludeFields":"img"}}]}"#,
        r#"{"tasks":[{"taskid":"1","apicode":"T_POST_DEVICE_PERSON","param":"{\"excludeFields\":\"img\"}"}]}"#,
    );
    // Unknown members are ignored.
    same::<HeartbeatParam>(
        r#"{"deviceVersion":"1","deviceIp":"10.0.0.2","extra":{"x":[1,2]}}"#,
        r#"{"deviceVersion":"1","deviceIp":"10.0.0.2"}"#,
    );
}

/// ZJ-JSON-03: 64-bit ids keep every digit.
#[test]
fn ids_given_as_numbers_keep_every_digit() {
    let p: SignInParam =
        parse(r#"{"personId":18446744073709551615,"type":1,"recordTime":0}"#).unwrap();
    assert_eq!(p.person_id, "18446744073709551615");
    let p: SignInParam = parse(r#"{"personId":-12,"type":1,"recordTime":0}"#).unwrap();
    assert_eq!(p.person_id, "-12");
    let p: DelPersonResponse = parse(r#"{"personIds":[4508004291609636864, 7]}"#).unwrap();
    assert_eq!(p.person_ids, ["4508004291609636864", "7"]);
}

/// The apicode of a task item; `excludeFields` (ZJ-RECON-03).
#[test]
fn task_items_know_their_apicode() {
    let r: GetTasksResponse =
        parse(r#"{"tasks":[{"taskid":"1","apicode":"T_CLEAR_DEVICE_PERSON","param":""}]}"#)
            .unwrap();
    assert_eq!(r.tasks[0].api_code(), Some(ApiCode::ClearDevicePerson));
    let excl: PostDevicePersonTaskParam =
        parse(r#"{excludeFields:" img , phone，idcardNo"}"#).unwrap();
    assert!(excl.excludes("img") && excl.excludes("phone") && excl.excludes("idcardNo"));
    assert!(!excl.excludes("name") && !excl.excludes(""));
    assert!(!PostDevicePersonTaskParam::default().excludes("img"));
    assert_eq!(
        parse::<PostDevicePersonTaskParam>("{}").unwrap(),
        Default::default()
    );
}

/// ZJ-PERSON-03: `size` defaults to 10 and is clamped to 100.
#[test]
fn page_size_defaults_and_clamps() {
    let size = |s: Option<u32>| {
        PageParam {
            current_page: 1,
            size: s,
            total_page: None,
        }
        .effective_size()
    };
    assert_eq!(size(None), DEFAULT_PAGE_SIZE);
    assert_eq!(size(Some(0)), 1);
    assert_eq!(size(Some(37)), 37);
    assert_eq!(size(Some(100_000)), MAX_PAGE_SIZE);
    let p: PageParam = parse(r#"{"currentPage":3,"size":20}"#).unwrap();
    assert_eq!(p.offset(), 40);
    let page: PersonPage = parse(r#"{"data":[],"currentPage":2,"totalPage":2,"size":10}"#).unwrap();
    assert!(page.is_last());
}

// ---- errors name the member ------------------------------------------------------------

/// ZJ-ERR-06: a missing required member is 400_02 naming it (ZJ-STATUS-02: the counts).
#[test]
fn a_missing_required_member_is_named() {
    assert_invalid(
        parse::<SignInParam>(r#"{"type":1,"recordTime":1}"#),
        &["缺少字段 personId"],
    );
    assert_invalid(
        parse::<SignInParam>(r#"{"personId":"1","type":1}"#),
        &["缺少字段 recordTime"],
    );
    assert_invalid(
        parse::<SignInParam>("{personId:'1',type:1,recordTime:1,qrCodeInfo:{codeValue:'x'}}"),
        &["缺少字段 qrCodeInfo.type"],
    );
    assert_invalid(
        parse::<SignInParam>(
            r#"{"personId":"1","type":64,"recordTime":1,"coordinate":{"longitude":120.1}}"#,
        ),
        &["缺少字段 coordinate.latitude"],
    );
    assert_invalid(
        parse::<HeartbeatParam>(r#"{"deviceVersion":"1"}"#),
        &["缺少字段 deviceIp"],
    );
    assert_invalid(
        parse::<UpdateTasksStatusParam>(r#"{"task":[{"taskid":"1","status":1}],"faceCount":1}"#),
        &["缺少字段 personCount"],
    );
    assert_invalid(
        parse::<UpdateTasksStatusParam>(
            r#"{"task":[{"taskid":"1","status":1},{"taskid":"2"}],"personCount":1,"faceCount":1}"#,
        ),
        &["缺少字段 task[1].status"],
    );
    assert_invalid(
        parse::<PostDevicePersonParam>(r#"{"currentPage":1,"totalPage":1,"data":[{"name":"x"}]}"#),
        &["缺少字段 data[0].personId"],
    );
    assert_invalid(parse::<PageParam>("{}"), &["缺少字段 currentPage"]);
    assert_invalid(
        parse::<CollectPersonParam>(r#"{"idcardNo":"1","name":"x"}"#),
        &["缺少字段 facePhoto"],
    );
    // null is absent: for a required member, that is still a named error.
    assert_invalid(
        parse::<SignInParam>(r#"{"personId":null,"type":1,"recordTime":1}"#),
        &["personId", "null"],
    );
}

#[test]
fn a_member_of_the_wrong_type_is_named() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"personId":"1","type":"abc","recordTime":1}"#,
            "字段 type 类型错误",
        ),
        (
            r#"{"personId":"1","type":1,"recordTime":"soon"}"#,
            "字段 recordTime 类型错误",
        ),
        (
            r#"{"personId":"1","type":1,"recordTime":true}"#,
            "字段 recordTime",
        ),
        (r#"{"personId":"1","type":1.5,"recordTime":1}"#, "字段 type"),
        (r#"{"personId":"1","type":-1,"recordTime":1}"#, "字段 type"),
        (
            r#"{"personId":"1","type":4294967296,"recordTime":1}"#,
            "字段 type 取值错误",
        ),
        (
            r#"{"personId":{},"type":1,"recordTime":1}"#,
            "字段 personId 类型错误",
        ),
        (
            r#"{"personId":[1],"type":1,"recordTime":1}"#,
            "字段 personId 类型错误",
        ),
        (
            r#"{"personId":true,"type":1,"recordTime":1}"#,
            "字段 personId 类型错误",
        ),
        (
            r#"{"personId":"1","type":1,"recordTime":1,"temperature":"hot"}"#,
            "字段 temperature",
        ),
        (
            r#"{"personId":"1","type":1,"recordTime":1,"temperature":"NaN"}"#,
            "字段 temperature",
        ),
        (
            r#"{"personId":"1","type":1,"recordTime":1,"bitType":" 3"}"#,
            "字段 bitType",
        ),
        (
            r#"{"personId":"1","type":1,"recordTime":1,"coordinate":5}"#,
            "字段 coordinate 类型错误",
        ),
        (
            r#"{"personId":"1","type":1,"recordTime":1,"coordinate":{"longitude":"east","latitude":1}}"#,
            "字段 coordinate.longitude",
        ),
        (
            r#"{"personId":"1","type":16,"recordTime":1,"qrCodeInfo":{"type":"x"}}"#,
            "字段 qrCodeInfo.type",
        ),
    ];
    for (text, needle) in cases {
        assert_invalid(parse::<SignInParam>(text), &[needle]);
    }
    assert_invalid(
        parse::<PageParam>(r#"{"currentPage":0}"#),
        &["字段 currentPage", "≥ 1"],
    );
    assert_invalid(
        parse::<PageParam>(r#"{"currentPage":"0","size":10}"#),
        &["currentPage"],
    );
    assert_invalid(
        parse::<PageParam>(r#"{"currentPage":1,"size":"ten"}"#),
        &["字段 size"],
    );
    assert_invalid(
        parse::<GetTasksParam>(r#"{"taskids":"1"}"#),
        &["字段 taskids 类型错误"],
    );
    assert_invalid(
        parse::<GetTasksParam>(r#"{"taskids":["1",{}]}"#),
        &["字段 taskids[1]"],
    );
    assert_invalid(
        parse::<UpdateTasksStatusParam>(
            r#"{"task":[{"taskid":"1","status":1},{"taskid":"2","status":4}],"personCount":1,"faceCount":1}"#,
        ),
        &["字段 task[1].status", "1、2 或 3"],
    );
    assert_invalid(
        parse::<UpdateTasksStatusParam>(
            r#"{"task":[{"taskid":"1","status":"done"}],"personCount":1,"faceCount":1}"#,
        ),
        &["字段 task[0].status"],
    );
    assert_invalid(
        parse::<UpdateTasksStatusParam>(
            r#"{"task":[{"taskid":"1","status":1,"failedFaces":[{"personId":"1","errCode":false}]}],"personCount":1,"faceCount":1}"#,
        ),
        &["字段 task[0].failedFaces[0].errCode"],
    );
    assert_invalid(
        parse::<UpdateTasksStatusParam>(r#"{"task":{},"personCount":1,"faceCount":1}"#),
        &["字段 task 类型错误", "数组"],
    );
    assert_invalid(
        parse::<PostDevicePersonParam>(
            r#"{"currentPage":1,"totalPage":1,"data":[{"personId":"1","hasImg":2}]}"#,
        ),
        &["字段 data[0].hasImg"],
    );
    assert_invalid(
        parse::<FirmwareInfo>(r#"{"version":"1","size":"big","downloadUrl":"u","sha256":"x"}"#),
        &["字段 size"],
    );
    assert_invalid(
        parse::<SignInParam>(r#"{"personId":"1","type":1,"personId":"2","recordTime":1}"#),
        &["字段 personId 重复"],
    );
    assert_invalid(
        parse::<SignInParam>(
            r#"{"personId":"1","type":16,"recordTime":1,"qrCodeInfo":{"type":1,"type":2}}"#,
        ),
        &["字段 qrCodeInfo.type 重复"],
    );
    // Relaxed text is diagnosed after its rewrite, still naming the member.
    assert_invalid(
        parse::<SignInParam>("{personId:'1', type:'face', recordTime:1}"),
        &["字段 type 类型错误", "face"],
    );
    // The whole param of the wrong shape.
    assert_invalid(parse::<SignInParam>("5"), &["类型错误", "对象"]);
    assert_invalid(parse::<SignInParam>("[1,2]"), &["长度错误"]);
}

#[test]
fn text_that_is_not_json_is_a_syntax_error() {
    for bad in [
        "",
        "{",
        "{personId:}",
        "not json",
        "{\"a\":1}}",
        "{a:NaN}",
        "[".repeat(5000).as_str(),
    ] {
        assert_invalid(parse::<SignInParam>(bad), &["JSON 语法错误: 第"]);
    }
}

#[test]
fn unicode_whitespace_and_odd_characters_terminate() {
    // An earlier tokenizer looped (and ate all memory) on U+2028, U+FEFF and U+3000; the
    // proptest below found it. Keep the inputs as a regression.
    for text in [
        "\u{feff}{}",
        "{\u{2028}personId:'1',type:1,recordTime:1}",
        "\u{3000}",
        "{a\u{a0}:1}",
        "{é:1}",
        "{'a':1}\u{2029}",
    ] {
        if let Err(e) = parse::<SignInParam>(text) {
            assert_eq!(e.code, ErrorCode::ParamInvalid, "{text:?}");
        }
    }
}

#[test]
fn long_values_are_cut_in_the_detail() {
    let text = format!(
        r#"{{"personId":"1","type":"{}","recordTime":1}}"#,
        "x".repeat(100_000)
    );
    let e = parse::<SignInParam>(&text).unwrap_err();
    assert!(detail(&e).chars().count() <= 201, "{}", detail(&e).len());
    assert!(detail(&e).contains("字段 type"));
}

#[test]
fn booleans_are_lenient() {
    let read = |v: &str| {
        parse::<DevicePerson>(&format!(r#"{{"personId":"1","hasImg":{v}}}"#)).map(|p| p.has_img)
    };
    for (v, want) in [
        ("1", Some(true)),
        ("0", Some(false)),
        ("\"1\"", Some(true)),
        ("\"0\"", Some(false)),
        ("true", Some(true)),
        ("false", Some(false)),
        ("null", None),
        ("\"\"", None),
    ] {
        assert_eq!(read(v), Ok(want), "{v}");
    }
    for v in ["2", "\"yes\"", "[]", "0.5"] {
        assert_invalid(read(v), &["hasImg"]);
    }
}

// ---- 403 rules -----------------------------------------------------------------------

fn sign_in(r#type: u32, bit_type: Option<u32>, qr: Option<u32>) -> SignInParam {
    SignInParam {
        person_id: "1".into(),
        r#type,
        bit_type,
        qr_code_info: qr.map(|t| QrCodeInfo {
            r#type: t,
            code_color: None,
            code_value: Some("v".into()),
            city_code: None,
        }),
        img: None,
        record_time: 1_609_744_974_000,
        temperature: None,
        iris_info: None,
        coordinate: None,
    }
}

/// ZJ-SIGNIN-02: the dictionary checks, 403_01 → 403_02 → 403_03.
#[test]
fn validate_answers_403_per_the_rules() {
    use ErrorCode::{AttendanceBitType as B, AttendanceType as T, QrCodeType as Q};
    /// type, bitType, qrCodeInfo.type, the expected error.
    type Row = (u32, Option<u32>, Option<u32>, Option<ErrorCode>);
    let table: &[Row] = &[
        (1, None, None, None),
        (2, None, None, None),
        (4, None, Some(2), None),
        (8, None, None, None),
        (16, None, Some(1), None),
        (32, None, None, None),
        (64, None, None, None),
        (0, None, None, Some(T)),
        (3, None, None, Some(T)),
        (128, None, None, Some(T)),
        (5, Some(1), Some(9), Some(T)), // 403_01 wins over 403_02 and 403_03
        (1, Some(3), None, None),
        (1, Some(13), None, None),
        (16, Some(17), Some(2), None),
        (1, Some(127), None, None),
        (1, Some(1), None, Some(B)),
        (1, Some(128), None, Some(B)),
        (1, Some(0), None, Some(B)),
        (1, Some(129), None, Some(B)),
        (1, Some(64), None, Some(B)),
        (1, Some(1), Some(3), Some(B)), // 403_02 wins over 403_03
        (16, None, Some(0), Some(Q)),
        (16, None, Some(3), Some(Q)),
        (16, Some(17), Some(4), Some(Q)),
    ];
    for &(t, bits, qr, want) in table {
        let got = sign_in(t, bits, qr).validate().err().map(|e| e.code);
        assert_eq!(got, want, "type {t} bitType {bits:?} qr {qr:?}");
    }
    let e = sign_in(5, None, None).validate().unwrap_err();
    assert_eq!(e.errormsg(), "考勤类型有误，请参考数据字典传值: type=5");
}

#[test]
fn attendance_methods_and_real_name() {
    assert!(BitType(3).is_valid_composite());
    assert!(BitType(13).is_valid_composite());
    assert!(BitType(17).is_valid_composite());
    assert!(!BitType(1).is_valid_composite());
    assert!(!BitType(128).is_valid_composite());
    assert!(!BitType(0).is_valid_composite());
    assert!(BitType(13).contains(AttendanceType::HealthCode));
    assert_eq!(
        BitType(13).methods().collect::<Vec<_>>(),
        [
            AttendanceType::Face,
            AttendanceType::HealthCode,
            AttendanceType::IdCard
        ]
    );
    for t in AttendanceType::ALL {
        assert_eq!(AttendanceType::from_code(t.code()), Some(t));
        assert_eq!(
            sign_in(t.code(), None, None).is_real_name(),
            matches!(t.code(), 1 | 32 | 64)
        );
    }
    assert!(!sign_in(2, Some(10), None).is_real_name(), "IC + ID card");
    assert!(sign_in(2, Some(3), None).is_real_name(), "IC + face");
    assert_eq!(sign_in(2, Some(3), None).methods(), BitType(3));
    assert_eq!(
        sign_in(64, None, None).methods(),
        AttendanceType::Mobile.into()
    );
    assert_eq!(AttendanceType::Iris.label(), "虹膜");
    assert_eq!(parse::<BitType>("\"13\""), Ok(BitType(13)));
    assert_eq!(parse::<AttendanceType>("'64'"), Ok(AttendanceType::Mobile));
    assert_eq!(to_json(&AttendanceType::QrCode), "16");
    assert_invalid(parse::<AttendanceType>("5"), &["5 不是考勤类型"]);
}

/// ZJ-SIGNIN-03, ZJ-COLLECT-04: an image that is not base64 is 400_02 naming it.
#[test]
fn images_are_decoded_or_refused_by_name() {
    let mut p = sign_in(1, None, None);
    p.img = Some("aGVsbG8=".into());
    assert_eq!(p.decode_img(), Ok(Some(b"hello".to_vec())));
    p.img = Some(String::new());
    assert_eq!(p.decode_img(), Ok(None));
    p.img = Some("data:image/jpeg;base64,aGVs\nbG8".into());
    assert_eq!(p.decode_img(), Ok(Some(b"hello".to_vec())));
    p.img = Some("人脸照base64".into());
    assert_invalid(p.decode_img(), &["img", "base64"]);

    let c: CollectPersonParam = parse(
        r#"{"idcardNo":"11010519491231002X","name":"张三","facePhoto":"aGk=","irisLeft":"","idCardFront":"!!"}"#,
    )
    .unwrap();
    assert_eq!(
        c.images().iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["idCardFront", "facePhoto"]
    );
    assert_invalid(c.decode_images(), &["idCardFront"]);
}

// ---- property tests --------------------------------------------------------------------

/// Writes `v` as the relaxed JSON devices send: unquoted keys, numbers as strings, decimal
/// ids as bare numbers, optional spaces and trailing commas.
#[derive(Debug, Clone, Copy)]
struct Relax {
    quote_keys: bool,
    numbers_as_strings: bool,
    ids_as_numbers: bool,
    spaced: bool,
    trailing_commas: bool,
}

impl Relax {
    fn write(&self, v: &Value, out: &mut String) {
        let sp = if self.spaced { " " } else { "" };
        match v {
            Value::Object(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(sp);
                    }
                    if self.quote_keys {
                        out.push_str(&serde_json::to_string(k).unwrap());
                    } else {
                        out.push_str(k);
                    }
                    out.push(':');
                    out.push_str(sp);
                    self.write(v, out);
                }
                if self.trailing_commas && !m.is_empty() {
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(sp);
                    }
                    self.write(v, out);
                }
                if self.trailing_commas && !a.is_empty() {
                    out.push(',');
                }
                out.push(']');
            }
            Value::Number(n) if self.numbers_as_strings => {
                out.push('"');
                out.push_str(&n.to_string());
                out.push('"');
            }
            Value::String(s)
                if self.ids_as_numbers && s.parse::<u64>().is_ok_and(|n| n.to_string() == *s) =>
            {
                out.push_str(s);
            }
            other => out.push_str(&other.to_string()),
        }
    }

    fn text<T: serde::Serialize>(&self, v: &T) -> String {
        let value: Value = serde_json::from_str(&to_json(v)).unwrap();
        let mut out = String::new();
        self.write(&value, &mut out);
        out
    }
}

fn relax() -> impl Strategy<Value = Relax> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(quote_keys, numbers_as_strings, ids_as_numbers, spaced, trailing_commas)| Relax {
                quote_keys,
                numbers_as_strings,
                ids_as_numbers,
                spaced,
                trailing_commas,
            },
        )
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9]{1,24}",
        any::<String>(),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        any::<String>(),
        "[0-9]{1,20}",
        "[A-Za-z0-9+/]{0,40}={0,2}"
    ])
}

/// Decimals as devices send them (≤ 15 significant digits), which JSON carries exactly.
fn decimal(max_units: i64, scale: f64) -> impl Strategy<Value = f64> {
    (-max_units..=max_units).prop_map(move |n| n as f64 / scale)
}

fn sign_in_param() -> impl Strategy<Value = SignInParam> {
    let qr =
        (any::<u32>(), opt_text(), opt_text(), opt_text()).prop_map(|(t, a, b, c)| QrCodeInfo {
            r#type: t,
            code_color: a,
            code_value: b,
            city_code: c,
        });
    let coordinate =
        (decimal(180_000_000, 1e6), decimal(90_000_000, 1e6)).prop_map(|(longitude, latitude)| {
            Coordinate {
                longitude,
                latitude,
            }
        });
    (
        (id(), any::<u32>(), proptest::option::of(any::<u32>())),
        (proptest::option::of(qr), opt_text(), any::<i64>()),
        (
            proptest::option::of(decimal(1_000, 10.0)),
            opt_text(),
            proptest::option::of(coordinate),
        ),
    )
        .prop_map(
            |(
                (person_id, r#type, bit_type),
                (qr_code_info, img, record_time),
                (temperature, iris_info, coordinate),
            )| {
                SignInParam {
                    person_id,
                    r#type,
                    bit_type,
                    qr_code_info,
                    img,
                    record_time,
                    temperature,
                    iris_info,
                    coordinate,
                }
            },
        )
}

fn failed_item() -> impl Strategy<Value = FailedItem> {
    (
        id(),
        prop_oneof![any::<String>(), "[0-9]{1,6}", "[0-9]{3}_[0-9]"],
    )
        .prop_map(|(person_id, err_code)| FailedItem {
            person_id,
            err_code,
        })
}

fn update_tasks_status_param() -> impl Strategy<Value = UpdateTasksStatusParam> {
    let outcome = prop_oneof![
        Just(TaskOutcome::Done),
        Just(TaskOutcome::Failed),
        Just(TaskOutcome::Unsupported)
    ];
    let status = (
        id(),
        outcome,
        proptest::collection::vec(failed_item(), 0..3),
        proptest::collection::vec(failed_item(), 0..3),
    )
        .prop_map(
            |(taskid, status, failed_persons, failed_faces)| TaskStatus {
                taskid,
                status,
                failed_persons,
                failed_faces,
            },
        );
    (
        proptest::collection::vec(status, 0..4),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(task, person_count, face_count)| UpdateTasksStatusParam {
            task,
            person_count,
            face_count,
        })
}

fn page_param() -> impl Strategy<Value = PageParam> {
    (
        1..=u32::MAX,
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
    )
        .prop_map(|(current_page, size, total_page)| PageParam {
            current_page,
            size,
            total_page,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sign_in_round_trips(v in sign_in_param(), r in relax()) {
        prop_assert_eq!(&parse::<SignInParam>(&to_json(&v)).unwrap(), &v);
        let relaxed = r.text(&v);
        prop_assert_eq!(&parse::<SignInParam>(&relaxed).map_err(|e| format!("{relaxed}: {e}")), &Ok(v));
    }

    #[test]
    fn update_tasks_status_round_trips(v in update_tasks_status_param(), r in relax()) {
        prop_assert_eq!(&parse::<UpdateTasksStatusParam>(&to_json(&v)).unwrap(), &v);
        let relaxed = r.text(&v);
        prop_assert_eq!(
            &parse::<UpdateTasksStatusParam>(&relaxed).map_err(|e| format!("{relaxed}: {e}")),
            &Ok(v)
        );
    }

    #[test]
    fn page_param_round_trips(v in page_param(), r in relax()) {
        prop_assert_eq!(&parse::<PageParam>(&to_json(&v)).unwrap(), &v);
        let relaxed = r.text(&v);
        prop_assert_eq!(&parse::<PageParam>(&relaxed).map_err(|e| format!("{relaxed}: {e}")), &Ok(v));
    }

    #[test]
    fn parse_never_panics(text in any::<String>()) {
        let _ = parse::<SignInParam>(&text);
        let _ = parse::<UpdateTasksStatusParam>(&text);
        let _ = parse::<PostDevicePersonParam>(&text);
    }

    #[test]
    fn parse_never_panics_on_json_like_text(
        text in r#"[{}\[\]:,"'a-zA-Z0-9 .+\-\\/\n]{0,80}"#
    ) {
        for r in [
            parse::<SignInParam>(&text).err(),
            parse::<UpdateTasksStatusParam>(&text).err(),
            parse::<PageParam>(&text).err(),
            parse::<GetTasksResponse>(&text).err(),
        ].into_iter().flatten() {
            prop_assert_eq!(r.code, ErrorCode::ParamInvalid);
        }
    }

    #[test]
    fn member_errors_name_the_member(garbage in "[a-z]{1,8}") {
        let text = format!(r#"{{"personId":"1","type":1,"recordTime":"{garbage}"}}"#);
        let e = parse::<SignInParam>(&text).unwrap_err();
        prop_assert!(detail(&e).contains("字段 recordTime"), "{}", detail(&e));
    }
}

/// A heartbeat param as devices (or a fuzzer) might write one: each member a string with or
/// without escapes, a number, or missing; sometimes repeated, with extra members, relaxed
/// quoting or trailing garbage.
fn heartbeat_text() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "[a-zA-Z0-9._ -]{0,12}".prop_map(|s| format!("\"{s}\"")),
        "[a-z0-9\\\\\"\u{4e00}-\u{4e10}]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        any::<u32>().prop_map(|n| n.to_string()),
        Just("null".to_owned()),
        Just("'v1'".to_owned()),
    ];
    let member = (
        prop_oneof![
            Just("\"deviceVersion\""),
            Just("\"deviceIp\""),
            Just("deviceIp"),
            Just("\"other\"")
        ],
        value,
    )
        .prop_map(|(k, v)| format!("{k}:{v}"));
    (
        prop::collection::vec(member, 0..5),
        prop_oneof![Just(""), Just(" "), Just(","), Just("}")],
    )
        .prop_map(|(members, tail)| format!("{{{}}}{tail}", members.join(",")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // What a peek reads in place is what parse reads, and parse accepts it.
    #[test]
    fn a_heartbeat_peek_agrees_with_parse(text in heartbeat_text()) {
        if let Some(seen) = HeartbeatParam::peek(&text) {
            let parsed = parse::<HeartbeatParam>(&text).map_err(|e| format!("{text}: {e}"));
            prop_assert_eq!(
                parsed.map(|p| (p.device_version, p.device_ip)),
                Ok((seen.device_version.to_owned(), seen.device_ip.to_owned()))
            );
        }
    }
}
