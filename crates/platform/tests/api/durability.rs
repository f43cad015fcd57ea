//! What survives a graceful restart on the same data directory: tokens, acknowledged
//! records (a resend is still a duplicate), tasks, and presence without a false flap.

use rollcall_protocol::ApiCode;

use crate::helpers::*;

#[tokio::test]
async fn a_token_and_an_acknowledged_record_survive_a_restart() {
    let mut app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-RESTART");
    dev.auth().await;
    let p = sign_in_param("31", 1, now_ms());
    let first = dev.sign_in(&p).await;

    app.restart().await;

    let dev = app.http_device_as(dev.id.clone());
    assert_eq!(
        dev.heartbeat().await,
        Vec::<String>::new(),
        "the token is still valid"
    );
    let again = dev.sign_in(&p).await;
    assert!(again.duplicate);
    assert_eq!(again.record_id, first.record_id);
    assert_eq!(app.records("SN-RESTART").await.len(), 1);
}

#[tokio::test]
async fn pending_tasks_survive_a_restart_and_are_pushed_when_the_device_connects() {
    let mut app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("SN-RESTART-TASK", &vendor, Some(&project))
        .await;
    let before = app.tasks_of("SN-RESTART-TASK").await;

    app.restart().await;

    let mut dev = app.device(&vendor, "SN-RESTART-TASK").await;
    dev.auth().await;
    let cmd = dev.expect_command().await;
    assert_eq!(cmd.apicode, ApiCode::SendPerson);
    assert_eq!(cmd.taskid, before[0].taskid);
}

#[tokio::test]
async fn a_restart_within_the_offline_window_records_no_presence_flap() {
    let mut app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-NO-FLAP");
    dev.auth().await;
    dev.heartbeat().await;

    app.restart().await;
    let dev = app.http_device_as(dev.id.clone());
    dev.heartbeat().await;
    assert!(app.device_info("SN-NO-FLAP").await.unwrap().online);
    app.shutdown().await;

    let history = app
        .store()
        .presence_history("SN-NO-FLAP", 10)
        .await
        .expect("history");
    assert_eq!(history.len(), 1, "one online transition: {history:?}");
    assert!(history[0].online);
}
