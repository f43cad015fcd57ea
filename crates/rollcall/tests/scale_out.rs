//! Issue 15, from the outside: three `rollcall serve` nodes on one PostgreSQL database and one
//! S3-compatible store (SeaweedFS, `.ci/seaweedfs.sh`), behind HAProxy configured from the
//! shipped `deploy/haproxy.cfg` (TCP for devices, HTTP for the web), with SDK devices
//! connected through the proxy:
//!
//! - a worker enrolled through one node reaches a device held by another within 2 s;
//! - 60,000 sign-ins with photos stream in while one node is killed with SIGKILL; the devices
//!   reconnect through the proxy and resend what was in flight;
//! - afterwards every record is stored exactly once, and its photo (each one different)
//!   downloads byte for byte from every surviving node;
//! - the killed node restarts on its data dir and rejoins: the proxy sends it devices again.
//!
//! Needs PostgreSQL (`ROLLCALL_TEST_DATABASE_URL` or the machine's server), the test S3
//! server and `haproxy` (Debian); `.ci/run` provides all three. `ROLLCALL_SCALE_RECORDS`
//! changes the number of sign-ins (default 60,000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Device, JPEG, Server, admin, start_at, vendor};
use rollcall_client::{AttendanceQuery, DevicePatch, NewProject, NewWorker, VendorCreated};
use rollcall_device::{AttendanceRecord, Credentials, DeviceConfig, DeviceHandle};
use rollcall_platform::store::test_db::{self, TestDb};
use rollcall_platform::store::test_s3::TestS3;
use rollcall_protocol::ApiCode;
use rollcall_protocol::envelope::Command as WireCommand;
use tokio::sync::watch;

const FACE: &[u8] = include_bytes!("../../platform/tests/data/face1.jpg");
const NODES: usize = 3;
const DEVICES: usize = 24;
/// The acceptance bound of issue 15 for a worker enrolled on one node to reach a device
/// held by another.
const CROSS_NODE_PUSH: Duration = Duration::from_secs(2);
/// The URL-signing key every node shares (ROLLCALL_URL_SIGNING_KEY).
const URL_KEY: &str = "c2NhbGUtb3V0LXRlc3QtdXJsLXNpZ25pbmcta2V5ISE=";
/// How long the devices get to empty their queues after the kill.
const DRAIN: Duration = Duration::from_secs(300);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn haproxy_binary() -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin"])
    {
        let p = Path::new(dir).join("haproxy");
        if p.is_file() {
            return p;
        }
    }
    panic!("this test needs haproxy: apt-get install haproxy (.ci/run does)");
}

/// One node: its fixed addresses (a restart reuses them, as behind a real proxy).
struct Node {
    id: usize,
    dir: tempfile::TempDir,
    http_port: u16,
    tcp_port: u16,
    server: Option<Server>,
}

impl Node {
    fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    fn start(&mut self, db_url: &str, s3: &TestS3, public_url: &str) {
        let id = (self.id + 1).to_string();
        let mut env: Vec<(&str, String)> = vec![
            ("ROLLCALL_NODE_ID", id),
            ("ROLLCALL_SECRET_KEY", test_db::TEST_SECRET_KEY.to_owned()),
            ("ROLLCALL_URL_SIGNING_KEY", URL_KEY.to_owned()),
            ("ROLLCALL_PUBLIC_URL", public_url.to_owned()),
        ];
        env.extend(s3.env());
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.server = Some(start_at(
            self.dir.path(),
            &format!("127.0.0.1:{}", self.http_port),
            &format!("127.0.0.1:{}", self.tcp_port),
            &["--database-url", db_url],
            &env,
        ));
    }

    fn kill(&mut self) {
        if let Some(mut s) = self.server.take() {
            s.child.kill().expect("SIGKILL");
            let _ = s.child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// HAProxy with the shipped configuration, its addresses pointed at this test's nodes.
struct Proxy {
    child: Child,
    tcp: String,
    http: String,
}

impl Proxy {
    fn start(nodes: &[Node], dir: &Path) -> Proxy {
        let shipped = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/haproxy.cfg"),
        )
        .expect("deploy/haproxy.cfg");
        let (tcp_port, http_port) = (free_port(), free_port());
        let mut cfg = shipped
            .replace("bind :7700", &format!("bind 127.0.0.1:{tcp_port}"))
            .replace("bind :8080", &format!("bind 127.0.0.1:{http_port}"));
        for n in nodes {
            let ip = format!("10.0.0.1{}", n.id + 1);
            let (t, h) = (n.tcp_port, n.http_port);
            let tcp_line = format!("{ip}:7700 check port 8080");
            assert!(
                cfg.contains(&tcp_line),
                "deploy/haproxy.cfg names {tcp_line}"
            );
            cfg = cfg.replace(&tcp_line, &format!("127.0.0.1:{t} check port {h}"));
            cfg = cfg.replace(&format!("{ip}:8080 check"), &format!("127.0.0.1:{h} check"));
        }
        assert!(
            !cfg.contains("10.0.0."),
            "every server line rewritten:\n{cfg}"
        );
        // A test process may not raise its descriptor limit to the shipped maxconn.
        let cfg = cfg.replace("maxconn 100000", "maxconn 4000");
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let log = std::fs::File::create(dir.join("haproxy.log")).unwrap();
        let child = Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start haproxy");
        Proxy {
            child,
            tcp: format!("127.0.0.1:{tcp_port}"),
            http: format!("http://127.0.0.1:{http_port}"),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms until it gives a value, at most `within`.
async fn until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status(url: &str) -> Option<u16> {
    let resp = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    Some(resp.status().as_u16())
}

/// The photo of record `i` of device `d`: the 1×1 JPEG with a comment naming the record, so
/// that every photo is different and a wrong one is caught.
fn photo(d: usize, i: usize) -> Vec<u8> {
    let base = base64::engine::general_purpose::STANDARD
        .decode(JPEG)
        .unwrap();
    let text = format!("rollcall scale-out device {d} record {i}");
    let len = u16::try_from(text.len() + 2).unwrap();
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xFE];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&base[2..]);
    out
}

const BASE_TIME: i64 = 1_790_000_000_000;

fn record_time(i: usize) -> i64 {
    BASE_TIME + (i as i64) * 1_000
}

/// Which node holds `sn`'s connection, by the name every node shows ("{node id}-…").
async fn holder(http: &str, sn: &str) -> Option<usize> {
    let d = admin(http).device(sn).await.ok()?;
    let node = d.node?;
    node.split('-')
        .next()?
        .parse::<usize>()
        .ok()
        .map(|id| id - 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_haproxy_survive_a_sigkill_under_load() {
    let records_total: usize = std::env::var("ROLLCALL_SCALE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let per_device = records_total.div_ceil(DEVICES);
    let db = TestDb::postgres("scale");
    db.open_postgres().await.close().await;
    let s3 = TestS3::new("scale");
    s3.require().await;
    let work = tempfile::tempdir().unwrap();

    let mut nodes: Vec<Node> = (0..NODES)
        .map(|id| Node {
            id,
            dir: tempfile::tempdir().unwrap(),
            http_port: free_port(),
            tcp_port: free_port(),
            server: None,
        })
        .collect();
    let proxy = Proxy::start(&nodes, work.path());
    for n in &mut nodes {
        n.start(&db.url, &s3, &proxy.http);
    }
    until(
        "the proxy to see a healthy node",
        Duration::from_secs(20),
        || async { (status(&format!("{}/healthz", proxy.http)).await == Some(200)).then_some(()) },
    )
    .await;

    // --- set-up through the proxy --------------------------------------------------------
    let lb = admin(&proxy.http);
    let vendor = vendor(&proxy.http, "scale-out").await;
    let project = lb
        .create_project(&NewProject {
            name: "三节点工地".into(),
            ..NewProject::default()
        })
        .await
        .expect("create a project");

    // --- a worker enrolled on one node reaches a device held by another within 2 s -------
    let mut watcher = Device::connect(&proxy.tcp, "WATCH-1", &vendor).await;
    // Online (one heartbeat) before it is bound: the holder is shown for online devices.
    let req = watcher.heartbeat();
    watcher.send(req).await.unwrap();
    assert!(watcher.recv().await.expect("heartbeat answer").success());
    lb.patch_device(
        "WATCH-1",
        &DevicePatch {
            project_id: Some(Some(project.id.clone())),
            ..DevicePatch::default()
        },
    )
    .await
    .expect("bind the watcher");
    let held_by = until(
        "the watcher's holder to be known",
        Duration::from_secs(5),
        || holder(&proxy.http, "WATCH-1"),
    )
    .await;
    let other = (held_by + 1) % NODES;
    let other_admin = admin(&nodes[other].http());
    let worker = other_admin
        .create_worker(&NewWorker {
            idcard_no: "11010519491231002X".into(),
            name: "张三".into(),
            face_photo: base64::engine::general_purpose::STANDARD.encode(FACE),
            ..NewWorker::default()
        })
        .await
        .expect("enrol on another node");
    let started = Instant::now();
    other_admin
        .join_project(&project.id, std::slice::from_ref(&worker.person_id))
        .await
        .expect("join the project");
    let reached = tokio::time::timeout(CROSS_NODE_PUSH, async {
        loop {
            let packet = watcher.recv_packet().await?;
            if let Some(cmd) = WireCommand::from_packet(&packet)
                && cmd.apicode == ApiCode::UpdateDevicePerson
            {
                return Some(cmd);
            }
        }
    })
    .await;
    assert!(
        matches!(reached, Ok(Some(_))),
        "the enrolment on node {} reached the device held by node {} within 2 s",
        other + 1,
        held_by + 1
    );
    eprintln!(
        "enrolment on node {} reached node {}'s device after {:?}",
        other + 1,
        held_by + 1,
        started.elapsed()
    );
    drop(watcher);

    // --- 60,000 sign-ins with photos, a node killed midway --------------------------------
    let started = Instant::now();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut handles: Vec<(String, DeviceHandle)> = Vec::new();
    let mut runs = Vec::new();
    for d in 0..DEVICES {
        let sn = format!("SCALE-{d:03}");
        let (device, handle) = sdk_device(&sn, &vendor, &proxy, work.path());
        let records: Vec<AttendanceRecord> = (0..per_device)
            .map(|i| {
                AttendanceRecord::face(
                    (1000 + i % 97).to_string(),
                    record_time(i),
                    Some(photo(d, i)),
                )
            })
            .collect();
        handle
            .enqueue_many(records)
            .await
            .expect("queue the records");
        let mut stop = stop_rx.clone();
        runs.push(tokio::spawn(device.run(async move {
            let _ = stop.wait_for(|s| *s).await;
        })));
        handles.push((sn, handle));
    }
    let acked = |handles: &[(String, DeviceHandle)]| -> u64 {
        handles
            .iter()
            .map(|(_, h)| h.stats().acked.load(Ordering::Relaxed))
            .sum()
    };
    let kill_at = (records_total / 3) as u64;
    until(
        "a third of the records to be acknowledged",
        DRAIN,
        || async { (acked(&handles) >= kill_at).then_some(()) },
    )
    .await;
    let victim = 1;
    nodes[victim].kill();
    eprintln!(
        "node {} killed after {:?} with {} records acknowledged",
        victim + 1,
        started.elapsed(),
        acked(&handles)
    );
    until("every device queue to drain", DRAIN, || async {
        for (_, h) in &handles {
            if h.queue_len().await.ok()? > 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    let elapsed = started.elapsed();
    eprintln!(
        "{records_total} records drained in {elapsed:?} ({:.0}/s)",
        records_total as f64 / elapsed.as_secs_f64()
    );
    let sessions: u64 = handles
        .iter()
        .map(|(_, h)| h.stats().sessions.load(Ordering::Relaxed))
        .sum();
    assert!(
        sessions > DEVICES as u64,
        "devices of the killed node authenticated again ({sessions} sessions)"
    );
    for (sn, h) in &handles {
        assert_eq!(
            h.dead_letter_count().await.unwrap(),
            0,
            "{sn}: nothing refused"
        );
    }

    // --- every record exactly once; photos from every surviving node ---------------------
    let survivors: Vec<usize> = (0..NODES).filter(|&i| i != victim).collect();
    let reader = nodes[survivors[0]].http();
    let mut total = 0;
    for (d, (sn, _)) in handles.iter().enumerate() {
        let records = admin(&reader)
            .attendance_all(&AttendanceQuery {
                sn: Some(sn.clone()),
                limit: Some(1000),
                ..AttendanceQuery::default()
            })
            .await
            .expect("attendance");
        let mut seen: HashMap<i64, usize> = HashMap::new();
        for r in &records {
            *seen.entry(r.record_time).or_default() += 1;
        }
        assert_eq!(records.len(), per_device, "{sn}: every record stored");
        assert!(
            (0..per_device).all(|i| seen.get(&record_time(i)) == Some(&1)),
            "{sn}: each record exactly once"
        );
        total += records.len();
        // A sample of photos, from every surviving node, byte for byte.
        for r in records.iter().step_by(per_device.div_ceil(4)) {
            let i = ((r.record_time - BASE_TIME) / 1_000) as usize;
            let url = r.photo_url.clone().expect("a photo URL");
            let path = url.strip_prefix(&proxy.http).expect("signed for the proxy");
            for &n in &survivors {
                let got = reqwest::get(format!("{}{path}", nodes[n].http()))
                    .await
                    .unwrap();
                assert_eq!(got.status(), 200, "{sn} record {i} from node {}", n + 1);
                assert_eq!(
                    got.bytes().await.unwrap().as_ref(),
                    photo(d, i).as_slice(),
                    "{sn} record {i}: its own photo from node {}",
                    n + 1
                );
            }
        }
    }
    assert_eq!(total, per_device * DEVICES);

    // --- the killed node restarts and rejoins ----------------------------------------------
    nodes[victim].start(&db.url, &s3, &proxy.http);
    until(
        "the restarted node to be healthy",
        Duration::from_secs(20),
        || async {
            (status(&format!("{}/healthz", nodes[victim].http())).await == Some(200)).then_some(())
        },
    )
    .await;
    // Least-connections: once the proxy has it up again, new devices go to it.
    let mut n = 0;
    until(
        "a new device to be held by the restarted node",
        Duration::from_secs(20),
        || {
            n += 1;
            let (tcp, http, vendor) = (proxy.tcp.clone(), proxy.http.clone(), vendor.clone());
            async move {
                let sn = format!("REJOIN-{n}");
                let mut d = Device::connect(&tcp, &sn, &vendor).await;
                let req = d.heartbeat();
                d.send(req).await.ok()?;
                d.recv().await?;
                let held = until("its holder", Duration::from_secs(5), || holder(&http, &sn)).await;
                (held == victim).then_some(())
            }
        },
    )
    .await;

    stop_tx.send(true).unwrap();
    for r in runs {
        let _ = tokio::time::timeout(Duration::from_secs(10), r).await;
    }
    for n in &mut nodes {
        n.kill();
    }
}

fn sdk_device(
    sn: &str,
    vendor: &VendorCreated,
    proxy: &Proxy,
    dir: &Path,
) -> (rollcall_device::Device, DeviceHandle) {
    let credentials = Credentials::new(
        vendor.access_id.clone(),
        vendor.access_key.clone(),
        vendor.access_secret.clone(),
    );
    let config = DeviceConfig::new(
        sn,
        credentials,
        proxy.tcp.clone(),
        proxy.http.clone(),
        dir.join(sn),
    );
    let device = rollcall_device::Device::open(config).expect("open the device store");
    let handle = device.handle();
    (device, handle)
}
