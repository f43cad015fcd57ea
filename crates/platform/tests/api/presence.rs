//! Presence (ZJ-HB-03, ZJ-HB-04): online while heartbeats are recent, offline after
//! `offline_after_secs`, and a durable online/offline history.

use crate::helpers::*;

#[tokio::test]
async fn a_heartbeating_device_is_online() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    app.register_device("SN-ONLINE", &vendor, None).await;
    assert!(
        !app.device_info("SN-ONLINE").await.unwrap().online,
        "never heard of"
    );
    let mut dev = app.device(&vendor, "SN-ONLINE").await;
    dev.auth().await;

    dev.heartbeat().await;

    assert!(app.device_info("SN-ONLINE").await.unwrap().online);
    let presence = eventually("the online transition to be written", || async {
        let p = app.presence("SN-ONLINE").await;
        (!p.history.is_empty()).then_some(p)
    })
    .await;
    assert!(presence.online);
    assert!(presence.last_heartbeat_at.is_some());
    assert_eq!(presence.history.len(), 1);
    assert!(presence.history[0].online);
    assert_eq!(Some(presence.history[0].at), presence.last_heartbeat_at);
}

#[tokio::test]
async fn a_silent_device_goes_offline_and_its_history_is_durable() {
    let app = TestApp::spawn_with(|s| {
        s.offline_after_secs = 1;
        s.flush_interval_ms = 20;
    })
    .await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-OFFLINE");
    dev.auth().await;
    let first = now_ms();
    dev.heartbeat().await;

    // Offline after a second of silence, and the transition is written behind: read it
    // from the store itself.
    let history = eventually("the offline transition to be stored", || async {
        let h = app
            .store()
            .presence_history("SN-OFFLINE", 10)
            .await
            .expect("history");
        (h.len() >= 2).then_some(h)
    })
    .await;
    // Newest first: offline, then online.
    assert!(!history[0].online);
    assert!(history[1].online);
    assert!(history[1].at >= first);
    assert!(history[0].at > history[1].at);
    assert!(!app.device_info("SN-OFFLINE").await.unwrap().online);
    assert!(!app.presence("SN-OFFLINE").await.online);

    // Back online: a third transition.
    dev.heartbeat().await;
    assert!(app.device_info("SN-OFFLINE").await.unwrap().online);
    let presence = eventually("the online transition to be listed", || async {
        let p = app.presence("SN-OFFLINE").await;
        (p.history.len() >= 3).then_some(p)
    })
    .await;
    assert!(presence.history[0].online);
}

#[tokio::test]
async fn presence_is_written_by_the_final_flush_of_a_graceful_shutdown() {
    let mut app = TestApp::spawn_with(|s| s.flush_interval_ms = 60_000).await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-FLUSH-AT-EXIT");
    dev.auth().await;
    dev.heartbeat().await;

    // The flush interval is a minute: only the final flush at shutdown can have written it.
    app.shutdown().await;

    let store = app.store();
    let history = store
        .presence_history("SN-FLUSH-AT-EXIT", 10)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    let row = store.device("SN-FLUSH-AT-EXIT").await.unwrap().unwrap();
    assert_eq!(row.firmware_version.as_deref(), Some("FW-1.2.3"));
}

/// Issue 15: the node that sees a device's heartbeats answers the admin view with them at
/// once — firmware version and address included — not after the next write-behind flush;
/// what is written behind reaches the database (and so every other node) within the flush
/// interval. The TCP connection's holder is named in the device's own view.
#[tokio::test]
async fn the_holding_node_shows_the_last_heartbeat_at_once_and_the_store_within_the_flush() {
    let app = TestApp::spawn_with(|s| s.flush_interval_ms = 400).await;
    let vendor = app.vendor().await;
    app.register_device("SN-LIVE", &vendor, None).await;
    let mut dev = app.device(&vendor, "SN-LIVE").await;
    dev.auth().await;
    dev.heartbeat().await;

    let view = app.device_info("SN-LIVE").await.unwrap();
    assert!(view.online);
    assert_eq!(view.firmware_version.as_deref(), Some("FW-1.2.3"));
    assert_eq!(view.ip.as_deref(), Some("10.1.2.3"));
    // This node holds the connection.
    let node = app.state().node.to_string();
    let holder = eventually("the session to be claimed", || async {
        app.admin().0.device("SN-LIVE").await.unwrap().node
    })
    .await;
    assert_eq!(holder, node);
    // Lists do not name the node (one lookup per device would be needed).
    let listed = app.admin().get("/devices").await.expect(200);
    let listed = listed["devices"].as_array().unwrap();
    assert!(!listed.is_empty() && listed.iter().all(|d| d["node"].is_null()));

    let stored = eventually("the heartbeat to be written behind", || async {
        app.store()
            .device("SN-LIVE")
            .await
            .unwrap()
            .filter(|d| d.firmware_version.is_some())
    })
    .await;
    assert_eq!(stored.firmware_version.as_deref(), Some("FW-1.2.3"));
    assert_eq!(stored.ip.as_deref(), Some("10.1.2.3"));
    assert_eq!(stored.last_heartbeat_at, view.last_heartbeat_at);
}
