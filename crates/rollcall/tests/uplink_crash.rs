//! The uplink survives a SIGKILL mid-upload (docs/UPLINK.md): the real binary reports a
//! site's attendance to a mock national platform; it is killed while a request is in flight
//! (the mock has taken it but its answer is slow), restarted on the same data dir, and in
//! the end every acknowledged attendance record was accepted by the mock exactly once, each
//! worker's in order — the request in doubt was resolved by querying, not by resending. And
//! two nodes over one PostgreSQL database: one sender per project, taken over when the
//! holder dies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

mod common;

#[path = "../../platform/tests/support/national.rs"]
mod national;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use common::{Device, admin, start_with, vendor};
use national::{Fault, National};
use rollcall_client::VendorCreated;
use rollcall_client::{Method, NewDevice, NewProject, NewWorker};
use rollcall_protocol::envelope::{Command, Response};
use rollcall_protocol::params::{self, SignInResponse};
use serde_json::{Value, json};

const APPID: &str = "330100000000000009";
const SECRET: &str = "fedcba9876543210fedcba9876543210";
const FACE: &[u8] = include_bytes!("../../platform/tests/data/face1.jpg");
const RECORDS: usize = 120;

fn config(dir: &Path) -> String {
    let path = dir.join("rollcall.toml");
    std::fs::write(
        &path,
        "[uplink]\npoll_ms = 20\nbatch_max = 10\nrequest_timeout_ms = 800\nbackoff_ms = 20\n\
         backoff_max_ms = 200\nblocked_retry_ms = 200\nlease_ms = 1500\n",
    )
    .unwrap();
    path.display().to_string()
}

/// Polls `f` every 50 ms for at most 60 s.
async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A site set up through the admin API at `http`: a project reporting to the mock, a team,
/// two workers on it (with the data the national platform needs), devices bound to it.
async fn site(
    http: &str,
    national: &National,
    sns: &[&str],
) -> (String, Vec<String>, VendorCreated) {
    let api = admin(http);
    // A site: a project reporting to the mock, a team, two workers on it, a bound device.
    let project = api
        .create_project(&NewProject {
            name: "拱墅工地".into(),
            ..NewProject::default()
        })
        .await
        .unwrap()
        .id;
    let put = api
        .send(
            Method::PUT,
            &format!("/projects/{project}/uplink"),
            Some(&json!({
                "endpoint": national.endpoint, "appid": APPID, "appsecret": SECRET,
                "corpCode": "91330100MA00000001", "corpName": "拱墅建设", "enabled": true,
            })),
        )
        .await
        .unwrap();
    assert_eq!(put.status, 200, "{}", put.body);
    let team = api
        .send(
            Method::POST,
            &format!("/projects/{project}/teams"),
            Some(&json!({"name": "泥工班"})),
        )
        .await
        .unwrap()
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut persons = Vec::new();
    for (i, id) in ["330102198001010018", "330102198001020013"]
        .iter()
        .enumerate()
    {
        let w = api
            .create_worker(&NewWorker {
                idcard_no: (*id).into(),
                name: format!("工人{i}"),
                face_photo: base64::engine::general_purpose::STANDARD.encode(FACE),
                ..NewWorker::default()
            })
            .await
            .unwrap();
        persons.push(w.person_id);
    }
    api.join_project(&project, &persons).await.unwrap();
    for p in &persons {
        let r = api
            .send(
                Method::PATCH,
                &format!("/projects/{project}/workers/{p}"),
                Some(&json!({"teamId": team})),
            )
            .await
            .unwrap();
        assert!(r.status < 300, "{}", r.body);
        let r = api
            .send(
                Method::PATCH,
                &format!("/workers/{p}"),
                Some(&json!({"grantOrg": "杭州市公安局拱墅分局", "idValidTo": "长期"})),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let vendor = vendor(http, "uplink").await;
    for sn in sns {
        api.create_device(&NewDevice {
            sn: (*sn).into(),
            vendor_id: vendor.id.clone(),
            project_id: Some(project.clone()),
            kind: "face".into(),
            ..NewDevice::default()
        })
        .await
        .unwrap();
    }
    (project, persons, vendor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_record_is_accepted_once_and_in_order_despite_sigkill_mid_upload() {
    let national = National::start().await;
    national.project(APPID, SECRET);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let conf = config(dir.path());
    let args = ["--config", conf.as_str()];
    let mut server = start_with(&data, &args, &[]);

    let (project, persons, vendor) = site(&server.http, &national, &["UPLINK-CRASH-1"]).await;
    eventually("the workers' entries", || {
        (national.rows("WorkerEntryExit.Add").len() == 2).then_some(())
    })
    .await;

    // Sign in, acknowledged one by one; the records of a person are in time order.
    let mut device = Device::connect(&server.tcp, "UPLINK-CRASH-1", &vendor).await;
    let base = rollcall_platform::util::now_ms() - 3_600_000;
    let mut acked: Vec<(String, i64)> = Vec::new();
    for i in 0..RECORDS {
        let person = &persons[i % 2];
        let t = base + i as i64 * 1000;
        let req = device.sign_in(person.parse().unwrap(), t);
        device.send(req).await.unwrap();
        // Skip the person tasks the platform pushes to a bound device.
        let resp = loop {
            let packet = device.recv_packet().await.expect("sign-in answer");
            if Command::from_packet(&packet).is_none() {
                break Response::from_packet(packet);
            }
        };
        assert!(resp.success(), "{:?}", resp.outcome);
        let _: SignInResponse = params::parse(resp.response_text().unwrap()).unwrap();
        acked.push((person.clone(), t));
        if i == RECORDS / 2 {
            // Mid-upload: the next attendance request is taken by the mock, but its answer
            // comes too late; the binary is killed while it waits.
            national.inject("WorkerAttendance.Add", Fault::Slow(Duration::from_secs(3)));
        }
    }
    eventually("a request in flight", || {
        (national.faults_left() == 0).then_some(())
    })
    .await;
    let taken_before_kill = national.rows("WorkerAttendance.Add").len();
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    assert!(taken_before_kill > 0, "the kill came mid-upload");

    // Restart on the same data dir: everything acknowledged ends up accepted.
    let mut server = start_with(&data, &args, &[]);
    let rows = eventually("every acknowledged record accepted", || {
        let rows = national.rows("WorkerAttendance.Add");
        (rows.len() >= RECORDS).then_some(rows)
    })
    .await;
    // Nothing more arrives once the queue is empty.
    let status = eventually("the queue to drain", || {
        let s = futures_block(&server.http, &project);
        (s["pending"] == 0).then_some(s)
    })
    .await;
    assert_eq!(status["failed"], 0, "{status}");
    let rows_after = national.rows("WorkerAttendance.Add");
    assert_eq!(rows_after.len(), rows.len());

    let id_of: HashMap<String, String> = HashMap::from([
        (persons[0].clone(), "330102198001010018".to_owned()),
        (persons[1].clone(), "330102198001020013".to_owned()),
    ]);
    let accepted: Vec<(String, String)> = rows_after
        .iter()
        .map(|r| {
            (
                r.item["idCardNumber"].as_str().unwrap().to_owned(),
                r.item["date"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut count: HashMap<&(String, String), usize> = HashMap::new();
    for a in &accepted {
        *count.entry(a).or_default() += 1;
    }
    assert!(count.values().all(|&n| n == 1), "accepted twice: {count:?}");
    for (person, t) in &acked {
        let key = (
            id_of[person].clone(),
            rollcall_platform::uplink::codec::beijing_datetime(*t),
        );
        assert!(
            count.contains_key(&key),
            "acknowledged {key:?} not accepted"
        );
    }
    assert_eq!(accepted.len(), acked.len());
    // The request in doubt was looked up, not blindly sent again.
    assert!(national.calls("WorkerAttendance.Query") >= 1);
    let mut last: HashMap<&str, &str> = HashMap::new();
    for (id, date) in &accepted {
        if let Some(prev) = last.insert(id, date) {
            assert!(prev < date.as_str(), "{id}: {date} after {prev}");
        }
    }
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// `GET /projects/{id}/uplink`, blocking on the current runtime's handle.
fn futures_block(http: &str, project: &str) -> Value {
    let http = http.to_owned();
    let path = format!("/projects/{project}/uplink");
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(async move {
            admin(&http)
                .send(Method::GET, &path, None)
                .await
                .map(|r| r.body)
                .unwrap_or(Value::Null)
        })
    })
}

/// Two nodes over one PostgreSQL database both run the sender: one sends per project at a
/// time (the lease), and when the node holding it is SIGKILLed the other takes the project
/// over once the lease lapses (or keeps it, if it held it). Every acknowledged record, from either node, is accepted
/// exactly once, each worker's in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_send_each_record_once_and_take_over_a_dead_nodes_project() {
    use rollcall_platform::store::test_db::{self, TestDb};
    let national = National::start().await;
    national.project(APPID, SECRET);
    let db = TestDb::postgres("uplinknodes");
    db.open_postgres().await.close().await;
    let dir = tempfile::tempdir().unwrap();
    let conf = config(dir.path());
    let node = |name: &str, id: &str| {
        start_with(
            &dir.path().join(name),
            &["--database-url", db.url.as_str(), "--config", conf.as_str()],
            &[
                ("ROLLCALL_NODE_ID", id),
                ("ROLLCALL_SECRET_KEY", test_db::TEST_SECRET_KEY),
            ],
        )
    };
    // Node B alone first: faces are files of the node that stored them (README, "Several
    // nodes"), so the workers' head images go from B; then node A joins for attendance.
    let mut b = node("b", "2");
    let (_, persons, vendor) = site(&b.http, &national, &["TWO-A", "TWO-B"]).await;
    eventually("the workers' entries", || {
        (national.rows("WorkerEntryExit.Add").len() == 2).then_some(())
    })
    .await;
    let mut a = node("a", "1");
    let mut on_a = Device::connect(&a.tcp, "TWO-A", &vendor).await;
    let mut on_b = Device::connect(&b.tcp, "TWO-B", &vendor).await;
    let base = rollcall_platform::util::now_ms() - 7_200_000;
    let mut acked: Vec<(String, i64)> = Vec::new();
    for i in 0..60usize {
        let person = &persons[i % 2];
        let t = base + i as i64 * 1000;
        // Alternate nodes; once node B (the lease holder: it started first) is killed,
        // node A takes everything, and the project once B's lease lapses.
        let device = if i >= 30 || i % 2 == 0 {
            &mut on_a
        } else {
            &mut on_b
        };
        let req = device.sign_in(person.parse().unwrap(), t);
        device.send(req).await.unwrap();
        let resp = loop {
            let packet = device.recv_packet().await.expect("sign-in answer");
            if Command::from_packet(&packet).is_none() {
                break Response::from_packet(packet);
            }
        };
        assert!(resp.success(), "{:?}", resp.outcome);
        acked.push((person.clone(), t));
        if i == 30 {
            b.child.kill().expect("SIGKILL node B");
            let _ = b.child.wait();
        }
    }
    let rows = eventually("every acknowledged record accepted", || {
        let rows = national.rows("WorkerAttendance.Add");
        (rows.len() >= acked.len()).then_some(rows)
    })
    .await;
    let mut count: HashMap<(String, String), usize> = HashMap::new();
    for r in &rows {
        let key = (
            r.item["idCardNumber"].as_str().unwrap().to_owned(),
            r.item["date"].as_str().unwrap().to_owned(),
        );
        *count.entry(key).or_default() += 1;
    }
    assert!(count.values().all(|&n| n == 1), "accepted twice: {count:?}");
    assert_eq!(rows.len(), acked.len());
    let mut last: HashMap<String, String> = HashMap::new();
    for r in &rows {
        let id = r.item["idCardNumber"].as_str().unwrap().to_owned();
        let date = r.item["date"].as_str().unwrap().to_owned();
        if let Some(prev) = last.insert(id.clone(), date.clone()) {
            assert!(prev < date, "{id}: {date} after {prev}");
        }
    }
    // One team, two workers, two entries: nothing sent twice by two senders.
    assert_eq!(national.rows("Team.Add").len(), 1);
    assert_eq!(national.rows("ProjectWorker.Add").len(), 2);
    a.child.kill().unwrap();
    let _ = a.child.wait();
}
