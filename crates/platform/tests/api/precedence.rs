//! Which error wins when several apply (ZJ-ERR-04, ZJ-ERR-05): 413_01 → 400_01 → 402_0x, 402_08
//! → 404_01 → 400_05 → 400_06 → 401_02 → 401_01 → 400_04 → 429_01 → 400_02 → 405_01 →
//! 403_0x.

use rollcall_protocol::envelope::Request;
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, ErrorCode};

use crate::helpers::*;

const BAD_SIGN: &str = "0123456789abcdef0123456789abcdef";

async fn setup(sn: &str) -> (TestApp, VendorCreds, HttpDevice) {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.register_device(sn, &vendor, None).await;
    let mut dev = app.http_device(&vendor, sn);
    dev.auth().await;
    (app, vendor, dev)
}

fn heartbeat(dev: &HttpDevice) -> Request {
    dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()))
}

#[tokio::test]
async fn envelope_errors_win_in_the_order_of_section_4() {
    let (_app, _vendor, dev) = setup("SN-PREC-ENV").await;

    // Nothing at all: 400_01 (and never 402_04).
    expect_err(&dev.post_body("", "{}").await, ErrorCode::ApiCodeInvalid);

    // An unknown apicode without version or sign: 400_01.
    let mut r = heartbeat(&dev);
    r.apicode = "C_UNKNOWN".into();
    r.version.clear();
    r.sign.clear();
    expect_err(&dev.call(&r).await, ErrorCode::ApiCodeInvalid);

    // Missing version and a malformed timeStamp: 402_01.
    let mut r = heartbeat(&dev);
    r.version.clear();
    r.time_stamp = "yesterday".into();
    expect_err(&dev.call(&r).await, ErrorCode::VersionMissing);

    // Missing token and timeStamp: 402_03; missing param and sign: 402_06.
    let mut r = heartbeat(&dev);
    r.token.clear();
    r.time_stamp.clear();
    expect_err(&dev.call(&r).await, ErrorCode::TokenMissing);
    let mut r = heartbeat(&dev);
    r.param = None;
    r.sign.clear();
    expect_err(&dev.call(&r).await, ErrorCode::ParamMissing);

    // A task interface without a taskid and with a malformed timeStamp: 402_08.
    let mut r = dev
        .id
        .signed(ApiCode::SendPerson, Some(r#"{"currentPage":1}"#));
    r.time_stamp = "2024".into();
    expect_err(&dev.call(&r).await, ErrorCode::TaskIdMissing);

    // Malformed timeStamp and a bad sign: 404_01; skewed timeStamp and a bad sign: 400_05.
    let mut r = heartbeat(&dev);
    r.time_stamp = "2024-13-45".into();
    r.sign = BAD_SIGN.into();
    expect_err(&dev.call(&r).await, ErrorCode::TimestampMalformed);
    let mut r = heartbeat(&dev);
    r.time_stamp = Timestamp::from_epoch_ms(now_ms() + 86_400_000).to_wire();
    r.sign = BAD_SIGN.into();
    expect_err(&dev.call(&r).await, ErrorCode::TimestampSkew);
}

#[tokio::test]
async fn timestamp_errors_win_over_a_disabled_device_which_wins_over_token_errors() {
    let (app, _vendor, dev) = setup("SN-PREC-DEV").await;
    app.set_enabled("SN-PREC-DEV", false).await;

    let mut r = heartbeat(&dev);
    r.time_stamp = "20241301000000".into();
    expect_err(&dev.call(&r).await, ErrorCode::TimestampMalformed);
    let mut r = heartbeat(&dev);
    r.time_stamp = Timestamp::from_epoch_ms(now_ms() - 86_400_000).to_wire();
    expect_err(&dev.call(&r).await, ErrorCode::TimestampSkew);
    let mut r = heartbeat(&dev);
    r.token = "ffffffffffffffffffffffffffffffff".into();
    r.sign = BAD_SIGN.into();
    expect_err(&dev.call(&r).await, ErrorCode::DeviceUnavailable);
}

#[tokio::test]
async fn token_errors_win_over_a_bad_sign() {
    let (app, vendor, dev) = setup("SN-PREC-TOKEN").await;

    // An unknown token and a bad sign: 401_01.
    let mut r = heartbeat(&dev);
    r.token = "ffffffffffffffffffffffffffffffff".into();
    r.sign = BAD_SIGN.into();
    expect_err(&dev.call(&r).await, ErrorCode::TokenNotFound);

    // A token of revoked credentials and a bad sign: 401_02.
    app.rotate(&vendor).await;
    let mut r = heartbeat(&dev);
    r.sign = BAD_SIGN.into();
    expect_err(&dev.call(&r).await, ErrorCode::CredentialsRevoked);
}

#[tokio::test]
async fn a_bad_sign_wins_over_a_bad_param() {
    let (_app, vendor, dev) = setup("SN-PREC-SIGN").await;
    let mut r = dev.id.signed(ApiCode::Heartbeat, Some("not json"));
    r.sign = BAD_SIGN.into();

    let resp = dev.call(&r).await;

    expect_err(&resp, ErrorCode::AuthFailed);
    assert!(resp.verify(ApiCode::Heartbeat, &vendor.secret));
}

#[tokio::test]
async fn a_bad_sign_wins_over_the_rate_limit_which_wins_over_a_bad_param() {
    let app = TestApp::spawn_with(|s| s.rate_limit = "1/s burst 1".parse().unwrap()).await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-PREC-429");
    dev.auth().await;
    dev.heartbeat().await;

    // The budget is spent (one per second): a bad sign still says 400_04...
    let mut r = heartbeat(&dev);
    r.sign = BAD_SIGN.into();
    expect_err(&dev.call(&r).await, ErrorCode::AuthFailed);
    // ...and a well-signed bad param says 429_01. Retry while the budget refills between
    // requests on a slow machine: what must never come back is 400_02.
    eventually("a 429_01", || async {
        let r = dev.id.signed(ApiCode::Heartbeat, Some("not json"));
        let resp = dev.call(&r).await;
        let code = resp.outcome.as_ref().err().map(|e| e.code);
        assert_ne!(code, None);
        (code == Some(ErrorCode::RateLimited)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_bad_param_wins_over_an_unknown_task() {
    let (_app, _vendor, dev) = setup("SN-PREC-405").await;

    let resp = dev
        .task(
            ApiCode::SendPerson,
            "1234567890123456789",
            Some(r#"{"page":"x"}"#),
        )
        .await;

    expect_err(&resp, ErrorCode::ParamInvalid);
}

#[tokio::test]
async fn a_bad_param_wins_over_an_invalid_attendance_type() {
    let (app, _vendor, dev) = setup("SN-PREC-403").await;

    // Not base64, and type 3.
    let mut p = sign_in_param("1", 3, now_ms());
    p["img"] = "%%%".into();
    let resp = dev
        .call(&dev.id.signed(ApiCode::SignIn, Some(&p.to_string())))
        .await;
    expect_err(&resp, ErrorCode::ParamInvalid);

    // recordTime missing, and a bitType of one method.
    let mut p = sign_in_param("1", 1, 0);
    p.as_object_mut().unwrap().remove("recordTime");
    p["bitType"] = 1.into();
    let resp = dev
        .call(&dev.id.signed(ApiCode::SignIn, Some(&p.to_string())))
        .await;
    let e = expect_err(&resp, ErrorCode::ParamInvalid);
    assert!(e.errormsg().contains("recordTime"), "{}", e.errormsg());
    assert!(app.records("SN-PREC-403").await.is_empty());
}
