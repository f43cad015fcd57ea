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

/// ZJ-HB-01, ZJ-HB-04 on a busy connection, whose heartbeats are answered from the frame's
/// bytes (`pipeline::answer_at_once`): each records what it reports, and a param only the
/// lenient parse reads (an escape, JSON5) is read as the device meant it.
#[tokio::test]
async fn a_busy_connections_heartbeats_record_what_they_report() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-BUSY-HB").await;
    dev.auth().await;
    for (param, version, ip) in [
        (
            r#"{"deviceVersion":"FW-2.0","deviceIp":"10.9.8.7"}"#,
            "FW-2.0",
            "10.9.8.7",
        ),
        (
            r#"{"deviceVersion":"FW-\u0033","deviceIp":"10.9.8.6"}"#,
            "FW-3",
            "10.9.8.6",
        ),
        (
            "{deviceVersion: 'FW-4', deviceIp: '10.9.8.5'}",
            "FW-4",
            "10.9.8.5",
        ),
    ] {
        busy(&mut dev).await;
        let resp = dev
            .call(dev.id.signed(ApiCode::Heartbeat, Some(param)))
            .await;
        assert_eq!(
            expect_ok(&resp, ApiCode::Heartbeat, &vendor.secret).as_deref(),
            Some(r#"{"taskids":[]}"#),
            "{param}"
        );
        let row = eventually("the reported version to be written", || async {
            app.device_info("SN-BUSY-HB")
                .await
                .filter(|d| d.firmware_version.as_deref() == Some(version))
        })
        .await;
        assert_eq!(row.ip.as_deref(), Some(ip), "{param}");
    }
    // A param the lenient parse refuses gets its 400_02 on a busy connection too.
    busy(&mut dev).await;
    let bad = dev
        .call(
            dev.id
                .signed(ApiCode::Heartbeat, Some(r#"{"deviceVersion":"FW-5"}"#)),
        )
        .await;
    expect_err(&bad, ErrorCode::ParamInvalid);
}

/// ZJ-HB-02 on a busy connection: a task open for the device is listed by its heartbeat once
/// due, although the heartbeats before it were answered from memory.
#[tokio::test]
async fn a_busy_connections_heartbeat_lists_a_task_once_it_is_due() {
    let app = TestApp::spawn_with(|s| s.redelivery_secs = 1).await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-BUSY-TASK").await;
    dev.auth().await;
    busy(&mut dev).await;
    let task = app
        .task("SN-BUSY-TASK", ApiCode::PostDevicePerson, None)
        .await;
    // Pushed over the connection, so delivered: due again after `redelivery_secs`, while the
    // connection stays busy (a heartbeat every 20 ms).
    assert_eq!(dev.expect_command().await.taskid, task.taskid);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let listed = loop {
        let l = dev.heartbeat().await;
        if !l.is_empty() {
            break l;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivered task is due again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(listed, vec![task.taskid]);
}

/// ZJ-ERR-07 on a busy connection: the device's budget is spent once per heartbeat, whether
/// answered from memory or the whole way, and a refusal spends nothing.
#[tokio::test]
async fn a_busy_connection_spends_one_request_of_its_budget_per_heartbeat() {
    // A slow refill: what is spent stays spent for the length of the test.
    let app = TestApp::spawn_with(|s| s.rate_limit = "0.01/s burst 6".parse().unwrap()).await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-BUSY-BUDGET").await;
    dev.auth().await;
    busy(&mut dev).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let resp = dev
            .call(dev.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
            .await;
        codes.push(resp.outcome.map(drop).map_err(|e| e.code));
    }
    assert_eq!(
        codes,
        vec![
            Ok(()),
            Ok(()),
            Ok(()),
            Err(ErrorCode::RateLimited),
            Err(ErrorCode::RateLimited)
        ]
    );
}
