//! Two `rollcall serve` processes over one PostgreSQL database (issue 6): a command created
//! through node B's admin API reaches a device connected to node A within 2 s (cross-node
//! push over LISTEN/NOTIFY), and a record resent to node B after node A acknowledged it is
//! stored once. Runs when `ROLLCALL_TEST_DATABASE_URL` is set, in a schema of its own
//! (`TestDb`). A device that moves to another node is closed on the old one without a
//! presence flap (issue 15).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{Device, Server, admin, start_with, stored, vendor};
use rollcall_client::{DevicePatch, NewProject, NewWorker};
use rollcall_platform::store::test_db::{self, TestDb};
use rollcall_protocol::envelope::{Command, Response};
use rollcall_protocol::params::{self, SignInResponse};
use rollcall_protocol::{ApiCode, Packet};

const FACE: &[u8] = include_bytes!("../../platform/tests/data/face1.jpg");
/// The acceptance bound of issue 6 for a cross-node push.
const CROSS_NODE_PUSH: Duration = Duration::from_secs(2);

/// A node on its own data dir; nodes sharing a database share the secret key (SECURITY.md).
fn node(dir: &std::path::Path, url: &str, id: &str) -> Server {
    node_with(dir, url, id, &[])
}

/// Waits for the next command packet, skipping responses.
async fn next_command(device: &mut Device, within: Duration) -> Option<(Command, Packet)> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let packet = tokio::time::timeout(left, device.recv_packet())
            .await
            .ok()??;
        if let Some(cmd) = Command::from_packet(&packet) {
            return Some((cmd, packet));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database() {
    let db = TestDb::postgres("cluster");
    // Creates the schema and applies the migrations once, before either node starts.
    db.open_postgres().await.close().await;
    let url = db.url.clone();

    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = node(dir_a.path(), &url, "1");
    let mut b = node(dir_b.path(), &url, "2");

    // Everything administrative goes through node B.
    let admin = admin(&b.http);
    let vendor = vendor(&b.http, "two nodes").await;
    let project = admin
        .create_project(&NewProject {
            name: "工地".into(),
            ..NewProject::default()
        })
        .await
        .expect("create a project");
    let pid = project.id;

    // The device lives on node A (auto-registered, unbound).
    let mut device = Device::connect(&a.tcp, "NODE-A-1", &vendor).await;
    let secret = vendor.access_secret.clone();

    // Binding through node B makes a T_SEND_PERSON that node A must push.
    let started = Instant::now();
    let bind = DevicePatch {
        project_id: Some(Some(pid.clone())),
        ..DevicePatch::default()
    };
    admin.patch_device("NODE-A-1", &bind).await.expect("bind");
    let (cmd, packet) = next_command(&mut device, CROSS_NODE_PUSH)
        .await
        .expect("node A pushes the task node B created");
    assert_eq!(cmd.apicode, ApiCode::SendPerson);
    assert!(cmd.verify(&secret, &packet.sign), "the command is signed");
    eprintln!(
        "cross-node push (bind) arrived after {:?}",
        started.elapsed()
    );

    // Enrolment through node B reaches the device on node A too.
    let face = base64::engine::general_purpose::STANDARD.encode(FACE);
    let worker = admin
        .create_worker(&NewWorker {
            idcard_no: "11010519491231002X".into(),
            name: "张三".into(),
            face_photo: face,
            ..NewWorker::default()
        })
        .await
        .expect("enrol");
    let person = worker.person_id;
    let started = Instant::now();
    admin
        .join_project(&pid, std::slice::from_ref(&person))
        .await
        .expect("join");
    // Pushes are at-least-once: a second copy of the bind's T_SEND_PERSON (same task id) may
    // come first and is skipped, as a device does with a task it already has.
    let bind_taskid = cmd.taskid.clone();
    let cmd = loop {
        let (cmd, _) = next_command(&mut device, CROSS_NODE_PUSH)
            .await
            .expect("node A pushes the enrolment made on node B");
        if cmd.apicode == ApiCode::SendPerson && cmd.taskid == bind_taskid {
            eprintln!("the bind's T_SEND_PERSON was pushed again");
            continue;
        }
        break cmd;
    };
    assert_eq!(cmd.apicode, ApiCode::UpdateDevicePerson);
    eprintln!(
        "cross-node push (enrol) arrived after {:?}",
        started.elapsed()
    );

    // A sign-in acknowledged by node A, resent to node B over HTTP, is stored once.
    let record_time = 1_700_000_000_000_i64 + i64::from(std::process::id());
    let req = device.sign_in(person.parse().unwrap(), record_time);
    device.send(req.clone()).await.unwrap();
    let first = loop {
        let packet = device.recv_packet().await.expect("sign-in answer");
        if Command::from_packet(&packet).is_none() {
            break Response::from_packet(packet);
        }
    };
    let first: SignInResponse = params::parse(first.response_text().unwrap()).unwrap();
    assert!(!first.duplicate);

    let body = reqwest::Client::new()
        .post(format!("{}/device/api", b.http))
        .header("content-type", "application/json")
        .body(req.to_http_json())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let again = Response::from_http_body(&body).unwrap();
    assert!(again.verify(ApiCode::SignIn, &secret));
    let again: SignInResponse = params::parse(again.response_text().unwrap()).unwrap();
    assert!(again.duplicate, "node B recognises node A's record");
    assert_eq!(again.record_id, first.record_id);
    let records = stored(&b.http, "NODE-A-1").await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records.values().next().unwrap(),
        &vec![first.record_id.clone()]
    );

    for n in [&mut a, &mut b] {
        n.child.kill().unwrap();
        let _ = n.child.wait();
    }
}

/// Issue 15: a device that reconnects to another node takes its session over: the node that
/// held it closes its socket at once, its presence never flaps offline, and every node names
/// the new holder. Short offline windows (2 s), so a flap would show within the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_moves_to_another_node_is_closed_on_the_old_one_without_a_flap() {
    let db = TestDb::postgres("sessions");
    db.open_postgres().await.close().await;
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let short = [
        ("ROLLCALL_OFFLINE_AFTER_SECS", "2"),
        ("ROLLCALL_FLUSH_INTERVAL_MS", "100"),
    ];
    let mut a = node_with(dir_a.path(), &db.url, "1", &short);
    let mut b = node_with(dir_b.path(), &db.url, "2", &short);
    let vendor = vendor(&a.http, "moving").await;
    let sn = "MOVER-1";

    let mut on_a = Device::connect(&a.tcp, sn, &vendor).await;
    let req = on_a.heartbeat();
    on_a.send(req).await.unwrap();
    assert!(on_a.recv().await.expect("heartbeat answer").success());
    let holder = holder_seen_by(&b.http, sn, "1-").await;
    eprintln!("held by {holder}");

    let started = Instant::now();
    let mut on_b = Device::connect(&b.tcp, sn, &vendor).await;
    // Node A closes the stale connection (it may first answer nothing more).
    let closed = tokio::time::timeout(CROSS_NODE_PUSH, async {
        while on_a.recv_packet().await.is_some() {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "node A closed its connection of the moved device"
    );
    eprintln!("stale connection closed after {:?}", started.elapsed());
    holder_seen_by(&a.http, sn, "2-").await;

    // Heartbeats on node B for twice the offline window: node A's window passes meanwhile.
    for _ in 0..8 {
        let req = on_b.heartbeat();
        on_b.send(req).await.unwrap();
        assert!(on_b.recv().await.expect("heartbeat answer").success());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for node in [&a, &b] {
        let history = presence(&node.http, sn).await;
        assert!(history["online"].as_bool().unwrap(), "{history}");
        let events = history["history"].as_array().unwrap();
        assert!(
            events.iter().all(|e| e["online"] == true),
            "no offline transition while the device moved: {history}"
        );
    }

    for n in [&mut a, &mut b] {
        n.child.kill().unwrap();
        let _ = n.child.wait();
    }
}

/// A node sharing the database, with extra environment.
fn node_with(dir: &std::path::Path, url: &str, id: &str, env: &[(&str, &str)]) -> Server {
    let mut envs = vec![
        ("ROLLCALL_NODE_ID", id),
        ("ROLLCALL_SECRET_KEY", test_db::TEST_SECRET_KEY),
    ];
    envs.extend_from_slice(env);
    start_with(dir, &["--database-url", url], &envs)
}

/// Waits (≤ 5 s) until `http`'s view of `sn` names a holder whose name starts with `prefix`.
async fn holder_seen_by(http: &str, sn: &str, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let d = admin(http).device(sn).await.expect("the device");
        if let Some(node) = d.node.filter(|n| n.starts_with(prefix)) {
            return node;
        }
        assert!(
            Instant::now() < deadline,
            "{sn} never shown as held by node {prefix}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET /devices/{sn}/presence`.
async fn presence(http: &str, sn: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{http}/api/v1/devices/{sn}/presence"))
        .bearer_auth(common::ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
