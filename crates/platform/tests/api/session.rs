//! A busy TCP connection's copy of its device's rows (`pipeline::session`): every answer is
//! the one the whole check of ZJ-ERR-04 gives. Each test first sends heartbeats close
//! together, so the connection keeps a copy, then changes what the copy holds and expects the
//! change on the very next request.

use std::time::Duration;

use rollcall_protocol::{ApiCode, ErrorCode};

use crate::helpers::*;

/// Heartbeats close together: the second one on the binding makes the copy, the third uses it.
async fn busy(dev: &mut TestDevice) {
    for _ in 0..3 {
        assert_eq!(dev.heartbeat().await, Vec::<String>::new());
    }
}

/// ZJ-DEV-04 on a busy connection: disabling the device refuses its next request (400_06,
/// signed), and enabling it lets the next one through.
#[tokio::test]
async fn a_busy_connection_sees_its_device_disabled_and_enabled_at_once() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.register_device("SN-BUSY-OFF", &vendor, None).await;
    let mut dev = app.device(&vendor, "SN-BUSY-OFF").await;
    dev.auth().await;
    busy(&mut dev).await;

    app.set_enabled("SN-BUSY-OFF", false).await;
    let hb = dev
        .call(dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .await;
    expect_err(&hb, ErrorCode::DeviceUnavailable);
    assert!(hb.verify(ApiCode::Heartbeat, &vendor.secret), "signed");

    app.set_enabled("SN-BUSY-OFF", true).await;
    busy(&mut dev).await;
}

/// ZJ-CRED-03 on a busy connection: rotating the vendor's credentials refuses the next request
/// of a token issued under the old pair (401_02), signed with the new secret.
#[tokio::test]
async fn a_busy_connection_sees_its_vendors_credentials_rotated_at_once() {
    let app = TestApp::spawn().await;
    let old = app.vendor().await;
    let mut dev = app.device(&old, "SN-BUSY-ROT").await;
    dev.auth().await;
    busy(&mut dev).await;

    let new = app.rotate(&old).await;
    let hb = dev
        .call(dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .await;
    expect_err(&hb, ErrorCode::CredentialsRevoked);
    assert!(hb.verify(ApiCode::Heartbeat, &new.secret), "the new secret");
}

/// ZJ-TOKEN-02 on a busy connection: each request still slides the token's expiry, and a
/// token left unused past `token_idle_secs` is refused (401_01) although the rows are fresh.
#[tokio::test]
async fn a_busy_connections_token_slides_while_used_and_expires_when_idle() {
    let app = TestApp::spawn_with(|s| s.token_idle_secs = 1).await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-BUSY-IDLE").await;
    dev.auth().await;
    busy(&mut dev).await;
    // 1.6 s of use at 0.4 s intervals, longer than the idle time: kept alive by every use.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(dev.heartbeat().await, Vec::<String>::new());
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let hb = dev
        .call(dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .await;
    expect_err(&hb, ErrorCode::TokenNotFound);
}

/// ZJ-ERR-04 on a busy connection: a wrong sign (400_04), a token never issued (401_01) and
/// another device's sn (400_04, ZJ-CONN-02) get the codes they get without the copy, and the
/// connection goes on serving its device.
#[tokio::test]
async fn a_busy_connection_refuses_a_wrong_sign_an_unknown_token_and_another_sn() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-BUSY-ERR").await;
    dev.auth().await;
    busy(&mut dev).await;

    let mut bad_sign = dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    bad_sign.sign = "0".repeat(32);
    expect_err(&dev.call(bad_sign).await, ErrorCode::AuthFailed);

    let mut stranger = dev.id.clone();
    stranger.token = "0123456789abcdef0123456789abcdef".to_owned();
    let unknown = stranger.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    expect_err(&dev.call(unknown).await, ErrorCode::TokenNotFound);

    let mut other = dev.id.clone();
    other.sn = "SN-BUSY-OTHER".to_owned();
    let other_sn = other.signed(ApiCode::Heartbeat, Some(&heartbeat_param()));
    expect_err(&dev.call(other_sn).await, ErrorCode::AuthFailed);

    busy(&mut dev).await;
}
