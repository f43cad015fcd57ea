//! C_HEARTBEAT (ZJ-HB-01 to ZJ-HB-04): the task list, and what a heartbeat records.

use rollcall_protocol::ApiCode;

use crate::helpers::*;

#[tokio::test]
async fn a_heartbeat_with_no_tasks_answers_an_empty_taskids_list_over_both_transports() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut tcp = app.device(&vendor, "SN-HB").await;
    tcp.auth().await;
    let mut http = app.http_device(&vendor, "SN-HB");
    http.auth().await;

    let over_tcp = tcp
        .call(tcp.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .await;
    let over_http = http
        .call(&http.id.signed(ApiCode::Heartbeat, Some(&heartbeat_param())))
        .await;

    for resp in [over_tcp, over_http] {
        assert_eq!(
            expect_ok(&resp, ApiCode::Heartbeat, &vendor.secret).as_deref(),
            Some(r#"{"taskids":[]}"#)
        );
    }
}

#[tokio::test]
async fn a_heartbeat_records_the_firmware_version_ip_and_time_behind() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-HB-STATE").await;
    dev.auth().await;
    let before = now_ms();

    dev.heartbeat().await;

    let row = eventually("the heartbeat state to be written", || async {
        app.device_info("SN-HB-STATE")
            .await
            .filter(|d| d.firmware_version.is_some())
    })
    .await;
    assert_eq!(row.firmware_version.as_deref(), Some("FW-1.2.3"));
    assert_eq!(row.ip.as_deref(), Some("10.1.2.3"));
    assert!(row.last_heartbeat_at.unwrap() >= before);
    assert!(row.online);
}

#[tokio::test]
async fn a_heartbeat_accepts_the_standards_lenient_param() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-HB-LENIENT");
    dev.auth().await;

    let resp = dev
        .call(&dev.id.signed(
            ApiCode::Heartbeat,
            Some("{deviceVersion: 'v2', deviceIp: \"192.168.1.20\"}"),
        ))
        .await;

    dev.id.ok(&resp, ApiCode::Heartbeat);
}

#[tokio::test]
async fn a_heartbeat_lists_at_most_100_task_ids() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-HB-100");
    dev.auth().await;
    for _ in 0..101 {
        app.task("SN-HB-100", ApiCode::PostDevicePerson, None).await;
    }

    let listed = dev.heartbeat().await;

    let tasks = app.tasks_of("SN-HB-100").await;
    assert_eq!(tasks.len(), 101);
    assert_eq!(listed.len(), 100);
    assert_eq!(
        listed[..],
        tasks[..100]
            .iter()
            .map(|t| t.taskid.clone())
            .collect::<Vec<_>>()[..]
    );
}

#[tokio::test]
async fn a_response_echoes_the_requests_version_and_seq() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.device(&vendor, "SN-ECHO").await;
    dev.auth().await;
    let mut req = dev.id.request(ApiCode::Heartbeat, Some(&heartbeat_param()));
    req.version = "v1.0.9".into();
    req.seq = 4_000_000_000_123;
    dev.id.sign(&mut req);

    let resp = dev.call(req).await;

    assert_eq!(resp.version, "v1.0.9");
    assert_eq!(resp.seq, 4_000_000_000_123);
    assert_eq!(resp.apicode, "C_HEARTBEAT");
    dev.id.ok(&resp, ApiCode::Heartbeat);
}
