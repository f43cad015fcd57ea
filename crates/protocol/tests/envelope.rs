//! Transport-independent requests and responses: HTTP bodies read leniently with the param's
//! raw text kept for the signature, the stateless checks in ZJ-ERR-04's precedence order, and
//! responses written for both transports.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use rollcall_protocol::envelope::{Command, Request, Response, Transport};
use rollcall_protocol::sign;
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, ErrorCode, ProtocolError};

const SECRET: &str = "93f6218530984c32a3bf2b3d03dcb417";
/// 2021-03-28 03:16:08 Beijing time.
const NOW: &str = "20210328031608";

fn now() -> Timestamp {
    Timestamp::parse_wire(NOW).unwrap()
}

fn heartbeat() -> Request {
    let mut r = Request {
        version: "v1.0.0".into(),
        sn: "1388186".into(),
        token: "696e8019b6fe4dbcb7e5ced91a1c771c".into(),
        apicode: "C_HEARTBEAT".into(),
        time_stamp: NOW.into(),
        param: Some(r#"{"deviceVersion":"v1","deviceIp":"10.0.0.2"}"#.into()),
        ..Request::default()
    };
    r.sign_with(ApiCode::Heartbeat, SECRET).unwrap();
    r
}

fn code_of(r: &Request, t: Transport) -> Option<ErrorCode> {
    r.check(t, now(), 300).err().map(|e| e.code)
}

/// ZJ-HTTP-02, ZJ-SIGN-03: an object param keeps its raw text, byte for byte.
#[test]
fn an_object_param_is_signed_over_its_raw_text() {
    let body = r#"{"version":"v1.0.0","sn":"1388186","token":"696e8019b6fe4dbcb7e5ced91a1c771c","apicode":"T_GET_TASKS","param":{ "taskids" : ["6541951958563696640"] },"sign":"x"}"#;
    let req = Request::from_http_body(body.as_bytes()).unwrap();
    assert_eq!(
        req.param.as_deref(),
        Some(r#"{ "taskids" : ["6541951958563696640"] }"#)
    );
    assert_eq!(
        req.param_alt, None,
        "a strict envelope has one accepted form"
    );
}

/// ZJ-SIGN-04: a JSON5 envelope also accepts a sign over the compact strict param.
#[test]
fn a_json5_envelope_also_accepts_the_compact_form() {
    let body = "{version:'v1.0.0', sn: 1388186, apicode:'T_GET_TASKS', token:'t', \
                param: {taskids: ['6541951958563696640', ], }, sign:'x'}";
    let mut req = Request::from_http_body(body.as_bytes()).unwrap();
    assert_eq!(req.sn, "1388186", "a number where a string belongs");
    assert_eq!(
        req.param.as_deref(),
        Some("{taskids: ['6541951958563696640', ], }")
    );
    let compact = r#"{"taskids":["6541951958563696640"]}"#;
    assert_eq!(req.param_alt.as_deref(), Some(compact));
    // A device that signed the compact strict text is accepted.
    let signed = sign::sign_request(
        ApiCode::GetTasks,
        &sign::SignFields {
            param: Some(compact),
            ..req.sign_fields()
        },
        SECRET,
    )
    .unwrap();
    req.sign = signed;
    sign::verify_request(
        ApiCode::GetTasks,
        &req.sign_fields(),
        req.param_alt.as_deref(),
        SECRET,
        &req.sign,
    )
    .unwrap();
}

/// ZJ-HTTP-02, ZJ-SIGN-03: a string param contributes its value.
#[test]
fn a_string_param_is_its_value() {
    let body = r#"{"apicode":"C_HEARTBEAT","param":"{\"deviceVersion\":\"v1\"}"}"#;
    let req = Request::from_http_body(body.as_bytes()).unwrap();
    assert_eq!(req.param.as_deref(), Some(r#"{"deviceVersion":"v1"}"#));
}

/// ZJ-TRANS-03: a body that is not JSON gets 400_02.
#[test]
fn a_body_that_is_not_a_json_object_is_400_02() {
    for body in [&b"not json"[..], b"[1,2]", b"\xff\xfe", b"{\"sn\":{}}", b""] {
        let e = Request::from_http_body(body).unwrap_err();
        assert_eq!(e.code, ErrorCode::ParamInvalid, "{body:?}");
    }
}

#[test]
fn the_path_apicode_fills_in_or_must_agree() {
    let mut r = Request::default();
    r.apply_path_apicode("C_SIGN_IN").unwrap();
    assert_eq!(r.apicode, "C_SIGN_IN");
    let e = r.apply_path_apicode("C_HEARTBEAT").unwrap_err();
    assert_eq!(e.code, ErrorCode::ApiCodeInvalid);
}

#[test]
fn a_valid_request_passes_the_envelope_checks() {
    let r = heartbeat();
    let checked = r.check(Transport::Tcp, now(), 300).unwrap();
    assert_eq!(checked.api, ApiCode::Heartbeat);
    assert_eq!(checked.time, Some(now()));
}

/// ZJ-ERR-04: the envelope checks in precedence order.
#[test]
fn envelope_errors_come_in_the_order_of_section_4() {
    // Everything wrong at once: the apicode is reported first, and so on down the list.
    let mut r = Request {
        apicode: "C_HEARTBEAT".into(),
        time_stamp: "2021".into(),
        ..Request::default()
    };
    let order = [
        ErrorCode::VersionMissing,
        ErrorCode::SnMissing,
        ErrorCode::TokenMissing,
        ErrorCode::ParamMissing,
        ErrorCode::SignMissing,
        ErrorCode::TimestampMalformed,
        ErrorCode::TimestampSkew,
    ];
    for expected in order {
        assert_eq!(code_of(&r, Transport::Tcp), Some(expected));
        match expected {
            ErrorCode::VersionMissing => r.version = "v1.0.0".into(),
            ErrorCode::SnMissing => r.sn = "1".into(),
            ErrorCode::TokenMissing => r.token = "t".into(),
            ErrorCode::ParamMissing => r.param = Some("{}".into()),
            ErrorCode::SignMissing => r.sign = "s".into(),
            ErrorCode::TimestampMalformed => r.time_stamp = "20210328041608".into(),
            ErrorCode::TimestampSkew => r.time_stamp = NOW.into(),
            _ => unreachable!(),
        }
    }
    assert_eq!(code_of(&r, Transport::Tcp), None);
    // Ranks agree with the order the checks run in.
    assert!(order.windows(2).all(|w| w[0].rank() < w[1].rank()));
}

/// ZJ-ERR-03 (a missing apicode is 400_01) and ZJ-CONN-04 (T_ over TCP is 400_01).
#[test]
fn apicode_problems_are_400_01_and_win_over_everything_else() {
    let empty = Request::default();
    assert_eq!(
        code_of(&empty, Transport::Http),
        Some(ErrorCode::ApiCodeInvalid)
    );
    let unknown = Request {
        apicode: "C_NOPE".into(),
        ..Request::default()
    };
    assert_eq!(
        code_of(&unknown, Transport::Http),
        Some(ErrorCode::ApiCodeInvalid)
    );
    // A T_ apicode over TCP: 400_01; the same over HTTP goes on to the next check.
    let task = Request {
        apicode: "T_GET_TASKS".into(),
        ..Request::default()
    };
    assert_eq!(
        code_of(&task, Transport::Tcp),
        Some(ErrorCode::ApiCodeInvalid)
    );
    assert_eq!(
        code_of(&task, Transport::Http),
        Some(ErrorCode::VersionMissing)
    );
}

/// ZJ-TIME-04: timeStamp required on C_, optional but validated on T_.
#[test]
fn taskid_and_timestamp_rules_follow_the_apicode() {
    let base = Request {
        version: "v1.0.0".into(),
        sn: "1".into(),
        token: "t".into(),
        sign: "s".into(),
        ..Request::default()
    };
    // Task interface without taskid: 402_08; timeStamp optional there.
    let r = Request {
        apicode: "T_CLEAR_DEVICE_PERSON".into(),
        ..base.clone()
    };
    assert_eq!(code_of(&r, Transport::Http), Some(ErrorCode::TaskIdMissing));
    let r = Request {
        taskid: "1".into(),
        ..r
    };
    assert_eq!(code_of(&r, Transport::Http), None);
    // ...but validated when present.
    let r = Request {
        time_stamp: "2021-03-28".into(),
        ..r
    };
    assert_eq!(
        code_of(&r, Transport::Http),
        Some(ErrorCode::TimestampMalformed)
    );
    // C_ without timeStamp: 402_05. C_AUTH needs no token.
    let r = Request {
        apicode: "C_AUTH".into(),
        token: String::new(),
        ..base
    };
    assert_eq!(
        code_of(&r, Transport::Tcp),
        Some(ErrorCode::TimestampMissing)
    );
}

#[test]
fn the_skew_error_tells_the_platform_time() {
    let r = Request {
        time_stamp: "20210328041608".into(),
        ..heartbeat()
    };
    let e = r.check(Transport::Tcp, now(), 300).unwrap_err();
    assert_eq!(e.code, ErrorCode::TimestampSkew);
    assert!(e.errormsg().starts_with("timestamp验证错误: "));
    assert!(e.errormsg().contains(NOW), "{}", e.errormsg());
}

#[test]
fn packets_and_requests_convert_both_ways() {
    let r = Request {
        seq: 9,
        ..heartbeat()
    };
    assert_eq!(Request::from_packet(r.to_packet()), r);
    let via_http = Request::from_http_body(r.to_http_json().as_bytes()).unwrap();
    assert_eq!(via_http, Request { seq: 0, ..r });
}

/// ZJ-HTTP-03 (the response body), ZJ-HTTP-04 (an acknowledgement has no `response`),
/// ZJ-SIGN-09 and ZJ-SIGN-10 (the response sign over the text written).
#[test]
fn responses_are_signed_and_written_for_both_transports() {
    let req = Request {
        apicode: "C_AUTH".into(),
        version: "v1.0.0".into(),
        seq: 3,
        ..Request::default()
    };
    let mut ok = Response::to(
        &req,
        Ok(Some(
            r#"{"token":"696e8019b6fe4dbcb7e5ced91a1c771c"}"#.into(),
        )),
    );
    ok.sign_with(ApiCode::Auth, SECRET);
    // The golden vector "auth-ok".
    assert_eq!(ok.sign, "ef3f1afe6e726f16e69b6aad41fae3c3");
    let p = ok.to_packet();
    assert_eq!((p.seq, p.success, p.apicode.as_str()), (3, true, "C_AUTH"));
    assert_eq!(Response::from_packet(p), ok);
    let json = ok.to_http_json();
    assert_eq!(
        json,
        r#"{"version":"v1.0.0","success":true,"apicode":"C_AUTH","response":{"token":"696e8019b6fe4dbcb7e5ced91a1c771c"},"sign":"ef3f1afe6e726f16e69b6aad41fae3c3"}"#
    );
    let back = Response::from_http_body(json.as_bytes()).unwrap();
    assert_eq!(back.response_text(), ok.response_text());
    assert!(back.verify(ApiCode::Auth, SECRET));

    // An error: in clear, signed as version+false+secret (golden vector "failure").
    let mut err = Response::to(
        &Request {
            apicode: "T_GET_TASKS".into(),
            ..req.clone()
        },
        Err(ProtocolError::with_detail(ErrorCode::AuthFailed, "sign")),
    );
    err.sign_with(ApiCode::GetTasks, SECRET);
    assert_eq!(err.sign, "44e1afcea47aa116287479cf53092d19");
    let json = err.to_http_json();
    assert!(
        json.contains(r#""error":{"errorcode":"400_04","errormsg":"token或sign验证失败: sign"}"#),
        "{json}"
    );
    let back = Response::from_http_body(json.as_bytes()).unwrap();
    assert_eq!(back.outcome, err.outcome);

    // A JWE response is written as a string and read back as the same text.
    let jwe = Response::to(&req, Ok(Some("eyJhbGciOi.a.b.c.d".into())));
    let json = jwe.to_http_json();
    assert!(json.contains(r#""response":"eyJhbGciOi.a.b.c.d""#));
    assert_eq!(
        Response::from_http_body(json.as_bytes())
            .unwrap()
            .response_text(),
        Some("eyJhbGciOi.a.b.c.d")
    );

    // An acknowledgement has no response member.
    let ack = Response::to(&req, Ok(None));
    assert!(!ack.to_http_json().contains("response"));
}

#[test]
fn a_command_round_trips_and_is_verified() {
    let cmd = Command {
        version: "v1.0.0".into(),
        sn: "1388186".into(),
        apicode: ApiCode::UpdateDevicePerson,
        taskid: "6541951958563696640".into(),
        time_stamp: NOW.into(),
        param: "{}".into(),
    };
    let p = cmd.to_packet(SECRET);
    // The golden vector "command".
    assert_eq!(p.sign, "3847780ab45226a6ceba1ca3e8e693c5");
    let back = Command::from_packet(&p).unwrap();
    assert!(back.verify(SECRET, &p.sign));
    assert!(!back.verify("other", &p.sign));
    // A response packet is not a command.
    assert!(
        Command::from_packet(&rollcall_protocol::Packet {
            apicode: "C_AUTH".into(),
            ..p
        })
        .is_none()
    );
}

#[test]
fn debug_output_redacts_tokens_and_keys() {
    let r = Request {
        access_key: "a9f88d5b5f4e4c94962ee3feaa85cdc3".into(),
        ..heartbeat()
    };
    let dbg = format!("{r:?}");
    assert!(!dbg.contains("696e8019b6fe4dbcb7e5ced91a1c771c"), "{dbg}");
    assert!(!dbg.contains("a9f88d5b5f4e4c94962ee3feaa85cdc3"), "{dbg}");
    assert!(dbg.contains("1388186"));
}

proptest::proptest! {
    // ZJ-SIGN-02: the sign is the MD5 of the recipe's fields and the secret concatenated,
    // whatever their lengths, across MD5's 64-byte blocks.
    #[test]
    fn a_sign_is_the_md5_of_the_concatenation(
        version in "[a-z0-9.]{0,8}",
        sn in "[A-Z0-9]{0,300}",
        taskid in "[0-9]{0,20}",
        time_stamp in "[0-9]{0,14}",
        param in "[ -~]{0,1500}",
        secret in "[a-f0-9]{0,600}",
    ) {
        use md5::Digest as _;
        let fields = sign::SignFields {
            version: &version,
            sn: &sn,
            apicode: "C_SEND_PERSON",
            taskid: &taskid,
            time_stamp: &time_stamp,
            param: Some(&param),
            ..sign::SignFields::default()
        };
        let text = format!("{version}{sn}C_SEND_PERSON{taskid}{time_stamp}{param}{secret}");
        let expected = hex::encode(md5::Md5::digest(text.as_bytes()));
        proptest::prop_assert_eq!(sign::sign_command(&fields, &secret), expected);
    }
}
