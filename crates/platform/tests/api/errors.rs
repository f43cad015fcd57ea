//! Every error code of ZJ-ERR-02, produced through a real socket. (413_01 and the
//! HTTP-only 400_01/400_02 cases are in `http` and `framing`; 400_06 and 401_02 in `auth`;
//! combined cases in `precedence`.)

use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, ErrorCode};
use serde_json::json;

use crate::helpers::*;

/// A platform, a vendor, a registered unbound device authenticated over HTTP.
async fn http_setup(sn: &str) -> (TestApp, VendorCreds, HttpDevice) {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.register_device(sn, &vendor, None).await;
    let mut dev = app.http_device(&vendor, sn);
    dev.auth().await;
    (app, vendor, dev)
}

// --- 400_01 -------------------------------------------------------------------------------

/// ZJ-ERR-03: a missing apicode is 400_01, never 402_04.
#[tokio::test]
async fn a_missing_apicode_gets_400_01_and_never_402_04_over_both_transports() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut tcp = app.device(&vendor, "SN-NOAPI").await;
    tcp.auth().await;
    let http = {
        let mut d = app.http_device(&vendor, "SN-NOAPI");
        d.auth().await;
        d
    };

    let mut req = tcp.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    req.apicode.clear();
    let over_tcp = tcp.call(req.clone()).await;
    let over_http = http.call(&req).await;

    for resp in [over_tcp, over_http] {
        let e = expect_err(&resp, ErrorCode::ApiCodeInvalid);
        assert_ne!(e.code, ErrorCode::ApiCodeMissing);
        assert!(
            resp.verify(ApiCode::Heartbeat, &vendor.secret),
            "a registered sn's error is signed"
        );
    }
}

/// ZJ-ERR-01: errormsg is the standard's text word for word, then `: ` and the detail.
#[tokio::test]
async fn an_unknown_apicode_gets_400_01_naming_it() {
    let (_app, _vendor, dev) = http_setup("SN-UNKAPI").await;
    let mut req = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    req.apicode = "C_DANCE".into();

    let resp = dev.call(&req).await;

    let e = expect_err(&resp, ErrorCode::ApiCodeInvalid);
    assert!(e.errormsg().starts_with("APICODE为空"), "{}", e.errormsg());
    assert!(e.errormsg().contains("C_DANCE"), "{}", e.errormsg());
}

/// ZJ-CONN-04: over TCP a device sends only C_ apicodes.
#[tokio::test]
async fn a_task_apicode_sent_over_tcp_gets_400_01_and_the_connection_stays_usable() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-TCP-T").await;
    dev.auth().await;

    let resp = dev
        .call(dev.id.signed(ApiCode::GetTasks, Some(r#"{"taskids":[]}"#)))
        .await;

    let e = expect_err(&resp, ErrorCode::ApiCodeInvalid);
    assert!(e.errormsg().contains("T_GET_TASKS"), "{}", e.errormsg());
    assert_eq!(dev.heartbeat().await, Vec::<String>::new());
}

// --- 400_02 -------------------------------------------------------------------------------

#[tokio::test]
async fn a_param_that_is_not_json_gets_400_02() {
    let (_app, vendor, dev) = http_setup("SN-BADPARAM").await;

    let resp = dev
        .call(&dev.id.signed(ApiCode::Heartbeat, Some("deviceVersion=1")))
        .await;

    expect_err(&resp, ErrorCode::ParamInvalid);
    assert!(resp.verify(ApiCode::Heartbeat, &vendor.secret));
}

/// ZJ-JSON-02: non-numeric text where a number is needed is 400_02.
#[tokio::test]
async fn a_param_member_of_the_wrong_type_gets_400_02() {
    let (app, _vendor, dev) = http_setup("SN-WRONGTYPE").await;
    let param = json!({"personId": "1", "type": 1, "recordTime": "yesterday"});

    let resp = dev
        .call(&dev.id.signed(ApiCode::SignIn, Some(&param.to_string())))
        .await;

    let e = expect_err(&resp, ErrorCode::ParamInvalid);
    assert!(e.errormsg().contains("recordTime"), "{}", e.errormsg());
    assert!(app.records("SN-WRONGTYPE").await.is_empty());
}

/// ZJ-ERR-06: a required member missing inside param is 400_02 naming it.
#[tokio::test]
async fn a_missing_required_param_member_gets_400_02_naming_it() {
    let (_app, _vendor, dev) = http_setup("SN-MISSING-MEMBER").await;

    let hb = dev
        .call(
            &dev.id
                .signed(ApiCode::Heartbeat, Some(r#"{"deviceVersion":"FW-1"}"#)),
        )
        .await;
    let e = expect_err(&hb, ErrorCode::ParamInvalid);
    assert!(e.errormsg().contains("deviceIp"), "{}", e.errormsg());

    // A member missing inside a nested object: qrCodeInfo without its type.
    let mut p = sign_in_param("1", 16, now_ms());
    p["qrCodeInfo"] = json!({"codeColor": "green", "codeValue": "x"});
    let si = dev
        .call(&dev.id.signed(ApiCode::SignIn, Some(&p.to_string())))
        .await;
    let e = expect_err(&si, ErrorCode::ParamInvalid);
    assert!(e.errormsg().contains("type"), "{}", e.errormsg());
}

#[tokio::test]
async fn an_img_that_is_not_base64_gets_400_02_and_nothing_is_stored() {
    let (app, _vendor, dev) = http_setup("SN-BADIMG").await;
    let mut p = sign_in_param("1", 1, now_ms());
    p["img"] = "this is not base64!".into();

    let resp = dev
        .call(&dev.id.signed(ApiCode::SignIn, Some(&p.to_string())))
        .await;

    let e = expect_err(&resp, ErrorCode::ParamInvalid);
    assert!(e.errormsg().contains("img"), "{}", e.errormsg());
    assert!(app.records("SN-BADIMG").await.is_empty());
}

#[tokio::test]
async fn an_untokenizable_sign_in_param_gets_400_02_in_place_of_the_sign_check() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-UNTOK").await;
    dev.auth().await;
    let mut req = dev
        .id
        .request(ApiCode::SignIn, Some(r#"{"personId":"1","img":"#));
    // The device could not have signed it either: any sign will do.
    req.sign = "0123456789abcdef0123456789abcdef".into();

    let resp = dev.call(req).await;

    expect_err(&resp, ErrorCode::ParamInvalid);
}

// --- 400_04 -------------------------------------------------------------------------------

#[tokio::test]
async fn a_bad_sign_gets_400_04_over_both_transports() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut tcp = app.device(&vendor, "SN-BADSIG").await;
    tcp.auth().await;
    let mut req = tcp.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    req.sign = "ffffffffffffffffffffffffffffffff".into();

    let over_tcp = tcp.call(req.clone()).await;
    let over_http = app.http_device(&vendor, "SN-BADSIG").call(&req).await;

    for resp in [over_tcp, over_http] {
        expect_err(&resp, ErrorCode::AuthFailed);
        assert!(resp.verify(ApiCode::Heartbeat, &vendor.secret));
    }
}

#[tokio::test]
async fn an_uppercase_hex_sign_is_accepted() {
    let (_app, vendor, dev) = http_setup("SN-UPPER").await;
    let mut req = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    req.sign = req.sign.to_uppercase();

    let resp = dev.call(&req).await;

    expect_ok(&resp, ApiCode::Heartbeat, &vendor.secret);
}

/// ZJ-TOKEN-04: a token presented with another device's sn is 400_04.
#[tokio::test]
async fn the_token_of_another_device_gets_400_04() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.register_device("SN-A", &vendor, None).await;
    app.register_device("SN-B", &vendor, None).await;
    let mut a = app.http_device(&vendor, "SN-A");
    a.auth().await;
    let mut b = app.http_device(&vendor, "SN-B");
    b.id.token = a.id.token.clone();

    let resp = b
        .call(&b.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .await;

    expect_err(&resp, ErrorCode::AuthFailed);
}

/// ZJ-CONN-02: another device's request on a bound connection is 400_04.
#[tokio::test]
async fn a_connection_bound_to_another_device_refuses_its_requests_with_400_04() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut a = app.device(&vendor, "SN-CONN-A").await;
    a.auth().await;
    let mut b = app.http_device(&vendor, "SN-CONN-B");
    b.auth().await;

    // B's valid, signed heartbeat sent on A's connection.
    let resp = a
        .call(b.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .await;

    expect_err(&resp, ErrorCode::AuthFailed);
    assert_eq!(
        a.heartbeat().await,
        Vec::<String>::new(),
        "A is still served"
    );
}

// --- 400_05, 404_01 -------------------------------------------------------------------------

#[tokio::test]
async fn a_skewed_timestamp_gets_400_05_carrying_the_platform_time() {
    let (_app, vendor, dev) = http_setup("SN-SKEW").await;
    let mut req = dev.id.request(ApiCode::Heartbeat, Some(&heartbeat_param()));
    req.time_stamp = Timestamp::from_epoch_ms(now_ms() - 3_600_000).to_wire();
    dev.id.sign(&mut req);

    let resp = dev.call(&req).await;

    let e = expect_err(&resp, ErrorCode::TimestampSkew);
    assert!(resp.verify(ApiCode::Heartbeat, &vendor.secret));
    let msg = e.errormsg();
    let platform_time = msg
        .split("平台时间")
        .nth(1)
        .map(|s| s.trim_start_matches([' ', ':', '：']))
        .and_then(|s| s.get(..14))
        .unwrap_or_else(|| panic!("the platform time is in {msg:?}"));
    let t = Timestamp::parse_wire(platform_time).expect("yyyyMMddHHmmss");
    assert!((t.epoch_ms() - now_ms()).abs() < 60_000, "{msg}");
}

#[tokio::test]
async fn a_malformed_timestamp_gets_404_01() {
    let (_app, _vendor, dev) = http_setup("SN-BADTIME").await;
    for bad in ["2024-01-01 08:00:00", "20241301000000", "1700000000000"] {
        let mut req = dev.id.request(ApiCode::Heartbeat, Some(&heartbeat_param()));
        req.time_stamp = bad.into();
        dev.id.sign(&mut req);

        let resp = dev.call(&req).await;

        expect_err(&resp, ErrorCode::TimestampMalformed);
    }
}

// --- 401_01 -------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_token_gets_401_01_signed_for_a_registered_sn_and_unsigned_otherwise() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.register_device("SN-KNOWN", &vendor, None).await;
    for sn in ["SN-KNOWN", "SN-NEVER-SEEN"] {
        let mut dev = app.http_device(&vendor, sn);
        dev.id.token = "00000000000000000000000000000000".into();

        let resp = dev
            .call(&dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
            .await;

        expect_err(&resp, ErrorCode::TokenNotFound);
        if sn == "SN-KNOWN" {
            assert!(resp.verify(ApiCode::Heartbeat, &vendor.secret));
        } else {
            assert!(resp.sign.is_empty(), "unknown sn: unsigned");
        }
    }
}

#[tokio::test]
async fn a_token_idle_for_longer_than_token_idle_secs_gets_401_01() {
    let app = TestApp::spawn_with(|s| s.token_idle_secs = 1).await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-IDLE");
    dev.auth().await;

    // Each use slides the expiry: 1.2 s of use at 0.3 s intervals keeps it alive.
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        dev.heartbeat().await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;

    let resp = dev
        .call(&dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .await;
    expect_err(&resp, ErrorCode::TokenNotFound);
    dev.auth().await;
    dev.heartbeat().await;
}

/// ZJ-TIME-04: on T_ apicodes timeStamp is optional, unsigned, validated when present.
#[tokio::test]
async fn a_timestamp_on_a_task_interface_is_optional_unsigned_and_checked_when_present() {
    let (_app, vendor, dev) = http_setup("SN-T-STAMP").await;
    let param = r#"{"taskids":[]}"#;

    // Absent: fine.
    let r = dev.id.signed(ApiCode::GetTasks, Some(param));
    assert!(r.time_stamp.is_empty());
    expect_ok(&dev.call(&r).await, ApiCode::GetTasks, &vendor.secret);
    // Present and current: fine, and not part of the sign.
    let mut r = dev.id.signed(ApiCode::GetTasks, Some(param));
    r.time_stamp = now_stamp();
    expect_ok(&dev.call(&r).await, ApiCode::GetTasks, &vendor.secret);
    // Present but malformed or skewed: refused.
    r.time_stamp = "not-a-time".into();
    expect_err(&dev.call(&r).await, ErrorCode::TimestampMalformed);
    r.time_stamp = Timestamp::from_epoch_ms(now_ms() - 3_600_000).to_wire();
    expect_err(&dev.call(&r).await, ErrorCode::TimestampSkew);
}

// --- 402_0x -------------------------------------------------------------------------------

#[tokio::test]
async fn each_missing_envelope_field_gets_its_402_code() {
    let (_app, _vendor, dev) = http_setup("SN-402").await;
    type Clear = fn(&mut rollcall_protocol::envelope::Request);
    let cases: [(Clear, ErrorCode); 6] = [
        (|r| r.version.clear(), ErrorCode::VersionMissing),
        (|r| r.sn.clear(), ErrorCode::SnMissing),
        (|r| r.token.clear(), ErrorCode::TokenMissing),
        (|r| r.time_stamp.clear(), ErrorCode::TimestampMissing),
        (|r| r.param = None, ErrorCode::ParamMissing),
        (|r| r.sign.clear(), ErrorCode::SignMissing),
    ];
    for (clear, code) in cases {
        let mut req = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
        clear(&mut req);
        let resp = dev.call(&req).await;
        let e = expect_err(&resp, code);
        assert_eq!(
            e.errormsg(),
            code.message(),
            "the standard's message, word for word"
        );
    }
}

#[tokio::test]
async fn missing_envelope_fields_over_tcp_get_their_402_codes_too() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-402-TCP").await;
    dev.auth().await;

    let mut no_stamp = dev.id.signed(
        ApiCode::SignIn,
        Some(&sign_in_param("1", 1, now_ms()).to_string()),
    );
    no_stamp.time_stamp.clear();
    expect_err(&dev.call(no_stamp).await, ErrorCode::TimestampMissing);
    let no_param = dev.id.signed(ApiCode::SignIn, None);
    expect_err(&dev.call(no_param).await, ErrorCode::ParamMissing);
    let mut no_token = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    no_token.token.clear();
    expect_err(&dev.call(no_token).await, ErrorCode::TokenMissing);
}

#[tokio::test]
async fn a_task_interface_without_a_taskid_gets_402_08() {
    let (_app, _vendor, dev) = http_setup("SN-402-08").await;
    for (api, param) in [
        (ApiCode::SendPerson, Some(r#"{"currentPage":1}"#)),
        (ApiCode::ClearDevicePerson, None),
    ] {
        let resp = dev.call(&dev.id.signed(api, param)).await;
        expect_err(&resp, ErrorCode::TaskIdMissing);
    }
}

// --- 403_0x -------------------------------------------------------------------------------

/// ZJ-SIGNIN-02: `type` outside the dictionary.
#[tokio::test]
async fn an_attendance_type_outside_the_dictionary_gets_403_01() {
    let (app, _vendor, dev) = http_setup("SN-403-01").await;
    for ty in [0, 3, 128] {
        let p = sign_in_param("1", ty, now_ms());
        let resp = dev
            .call(&dev.id.signed(ApiCode::SignIn, Some(&p.to_string())))
            .await;
        expect_err(&resp, ErrorCode::AttendanceType);
    }
    assert!(app.records("SN-403-01").await.is_empty());
}

/// ZJ-SIGNIN-02: an invalid `bitType`.
#[tokio::test]
async fn an_invalid_composite_bit_type_gets_403_02() {
    let (app, _vendor, dev) = http_setup("SN-403-02").await;
    for bits in [1, 128, 3 | 256] {
        let mut p = sign_in_param("1", 1, now_ms());
        p["bitType"] = bits.into();
        let resp = dev
            .call(&dev.id.signed(ApiCode::SignIn, Some(&p.to_string())))
            .await;
        expect_err(&resp, ErrorCode::AttendanceBitType);
    }
    assert!(app.records("SN-403-02").await.is_empty());
}

/// ZJ-SIGNIN-02: an invalid `qrCodeInfo.type`.
#[tokio::test]
async fn a_qr_code_type_other_than_1_or_2_gets_403_03() {
    let (app, _vendor, dev) = http_setup("SN-403-03").await;
    let mut p = sign_in_param("1", 16, now_ms());
    p["qrCodeInfo"] = json!({"type": 3, "codeColor": "green", "codeValue": "abc"});

    let resp = dev
        .call(&dev.id.signed(ApiCode::SignIn, Some(&p.to_string())))
        .await;

    expect_err(&resp, ErrorCode::QrCodeType);
    assert!(app.records("SN-403-03").await.is_empty());
}

// --- 405_01 -------------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_task_another_devices_task_and_a_task_of_another_apicode_get_405_01() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("SN-405-MINE", &vendor, Some(&project))
        .await;
    app.register_device("SN-405-OTHER", &vendor, Some(&project))
        .await;
    let mine = app.tasks_of("SN-405-MINE").await[0].taskid.clone();
    let others = app.tasks_of("SN-405-OTHER").await[0].taskid.clone();
    let mut dev = app.http_device(&vendor, "SN-405-MINE");
    dev.auth().await;
    let page = Some(r#"{"currentPage":1}"#);

    for taskid in ["1234567890123456789", "not-a-number", others.as_str()] {
        let resp = dev.task(ApiCode::SendPerson, taskid, page).await;
        let e = expect_err(&resp, ErrorCode::TaskNotFound);
        assert!(e.errormsg().contains(taskid), "{}", e.errormsg());
        assert!(
            resp.verify(ApiCode::SendPerson, &vendor.secret),
            "signed with the T_SEND_PERSON response recipe"
        );
    }
    // Its own T_SEND_PERSON task, called as another interface.
    let resp = dev.task(ApiCode::DelDevicePerson, &mine, None).await;
    expect_err(&resp, ErrorCode::TaskNotFound);
    let resp = dev.task(ApiCode::UpdateDevicePerson, &mine, page).await;
    expect_err(&resp, ErrorCode::TaskNotFound);
    // And as itself it works.
    dev.page(ApiCode::SendPerson, &mine, 1, None).await;
}

// --- 429_01 -------------------------------------------------------------------------------

/// ZJ-ERR-07: the per-device budget, never applied to C_SIGN_IN.
#[tokio::test]
async fn a_device_over_its_budget_gets_429_01_but_its_sign_ins_always_pass() {
    let app = TestApp::spawn_with(|s| s.rate_limit = "2/s burst 2".parse().unwrap()).await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-429").await;
    dev.auth().await;

    // Ten heartbeats at once: the burst of two passes, and far from all the rest.
    let hb: Vec<_> = (0..10)
        .map(|_| dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .collect();
    dev.send_many(hb).await;
    let (mut passed, mut limited) = (0, 0);
    for _ in 0..10 {
        let resp = dev.recv().await;
        assert!(resp.verify(ApiCode::Heartbeat, &vendor.secret));
        match &resp.outcome {
            Ok(_) => passed += 1,
            Err(e) => {
                assert_eq!(e.code, ErrorCode::RateLimited);
                limited += 1;
            }
        }
    }
    assert!(passed >= 2, "the burst passes");
    assert!(limited >= 1, "over the budget");

    // Sign-ins are never limited.
    let now = now_ms();
    let si: Vec<_> = (0..10)
        .map(|i| {
            let p = sign_in_param("42", 1, now + i);
            dev.id.signed(ApiCode::SignIn, Some(&p.to_string()))
        })
        .collect();
    dev.send_many(si).await;
    for _ in 0..10 {
        let resp = dev.recv().await;
        dev.id.ok(&resp, ApiCode::SignIn);
    }
    assert_eq!(app.records("SN-429").await.len(), 10);
}

#[tokio::test]
async fn the_budget_is_per_device() {
    let app = TestApp::spawn_with(|s| s.rate_limit = "2/s burst 2".parse().unwrap()).await;
    let vendor = app.vendor().await;
    let mut a = app.http_device(&vendor, "SN-429-A");
    a.auth().await;
    let mut b = app.http_device(&vendor, "SN-429-B");
    b.auth().await;
    let mut a_limited = false;
    for _ in 0..10 {
        let resp = a
            .call(&a.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
            .await;
        if resp.outcome.is_err() {
            expect_err(&resp, ErrorCode::RateLimited);
            a_limited = true;
            break;
        }
    }
    assert!(a_limited);

    b.heartbeat().await;
}

#[tokio::test]
async fn refused_requests_never_spend_a_devices_budget() {
    let app = TestApp::spawn_with(|s| s.rate_limit = "1/s burst 2".parse().unwrap()).await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-429-SPOOFED").await;
    dev.auth().await;

    // Someone else floods with the device's sn: unknown tokens and bad signs.
    let flood = app.http_device(&vendor, "SN-429-SPOOFED");
    for i in 0..20 {
        let mut r = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
        if i % 2 == 0 {
            r.token = "ffffffffffffffffffffffffffffffff".into();
        } else {
            r.sign = "0".repeat(32);
        }
        let resp = flood.call(&r).await;
        // Refused, or limited by the flood's source address (never by the device's budget).
        assert!(resp.outcome.is_err());
    }

    // The device's own burst is intact.
    dev.heartbeat().await;
    dev.heartbeat().await;
}

/// ZJ-ERR-07: unauthenticated floods are limited per source address.
#[tokio::test]
async fn a_c_auth_flood_is_limited_per_source_address_and_spends_no_device_budget() {
    let app = TestApp::spawn_with(|s| s.rate_limit = "1/s burst 3".parse().unwrap()).await;
    let vendor = app.vendor().await;
    // A device authenticates first (from 127.0.0.1, spending one of the address's three).
    let mut dev = app.device(&vendor, "SN-FLOOD-OK").await;
    dev.auth().await;

    // The same address floods C_AUTH with wrong keys: the address budget runs out.
    let flood = app.http_device(&vendor, "SN-FLOOD");
    let mut codes = Vec::new();
    for _ in 0..6 {
        let mut r = flood.id.request(ApiCode::Auth, None);
        r.access_key = "0".repeat(32);
        flood.id.sign(&mut r);
        let resp = flood.call(&r).await;
        codes.push(resp.outcome.unwrap_err().code);
    }
    assert_eq!(&codes[..2], &[ErrorCode::AuthFailed, ErrorCode::AuthFailed]);
    assert!(
        codes[2..].iter().all(|c| *c == ErrorCode::RateLimited),
        "{codes:?}"
    );
    // The authenticated device's own budget is untouched.
    for _ in 0..3 {
        dev.heartbeat().await;
    }
}

/// ZJ-ERR-07 over TCP: a C_AUTH on an already bound connection still spends, and is refused
/// by, its source address's budget (the gateway asks the socket for the address only where a
/// budget applies), while the connection's other requests are not limited by the address.
#[tokio::test]
async fn a_c_auth_on_a_bound_tcp_connection_is_limited_by_its_source_address() {
    let app = TestApp::spawn_with(|s| s.rate_limit = "0.1/s burst 3".parse().unwrap()).await;
    let vendor = app.vendor().await;
    // Spends one of the address's three.
    let mut dev = app.device(&vendor, "SN-REAUTH-LIMIT").await;
    dev.auth().await;

    // The same address spends the rest with wrong keys.
    let flood = app.http_device(&vendor, "SN-REAUTH-FLOOD");
    for _ in 0..2 {
        let mut r = flood.id.request(ApiCode::Auth, None);
        r.access_key = "0".repeat(32);
        flood.id.sign(&mut r);
        expect_err(&flood.call(&r).await, ErrorCode::AuthFailed);
    }

    let again = dev.call(dev.id.signed(ApiCode::Auth, None)).await;
    expect_err(&again, ErrorCode::RateLimited);
    assert_eq!(dev.heartbeat().await, Vec::<String>::new());
}

// --- 500_01 -------------------------------------------------------------------------------

#[tokio::test]
async fn a_storage_fault_gets_500_01_and_half_writes_nothing() {
    let (app, faulty) = TestApp::spawn_faulty().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-500").await;
    dev.auth().await;
    let p = sign_in_param("7", 1, now_ms());

    faulty.fail_writes(true);
    let resp = dev
        .call(dev.id.signed(ApiCode::SignIn, Some(&p.to_string())))
        .await;
    let e = expect_err(&resp, ErrorCode::Internal);
    assert_eq!(e.errormsg(), "系统异常", "nothing internal leaks");
    assert!(resp.verify(ApiCode::SignIn, &vendor.secret));

    faulty.fail_all(true);
    // A request that must read the store (a heartbeat may not: a device known to have no open
    // task is answered from memory, see `services::tasks::due`).
    let resp = app
        .http_device(&vendor, "SN-500")
        .call(
            &dev.id
                .signed(ApiCode::GetTasks, Some(r#"{"taskids":["1"]}"#)),
        )
        .await;
    expect_err(&resp, ErrorCode::Internal);
    let auth = app
        .http_device(&vendor, "SN-500")
        .call(&dev.id.signed(ApiCode::Auth, None))
        .await;
    expect_err(&auth, ErrorCode::Internal);

    faulty.fail_all(false);
    faulty.fail_writes(false);
    assert!(
        app.records("SN-500").await.is_empty(),
        "nothing half-written"
    );
    let again = dev.sign_in(&p).await;
    assert!(!again.duplicate, "the retry is the first stored copy");
    assert_eq!(app.records("SN-500").await.len(), 1);
}
