//! A device killed mid-backlog (SIGKILL of a separate process: its store thread dies
//! mid-transaction, acknowledgements are lost in flight) and started again on the same data
//! dir: nothing lost, nothing stored twice.
//!
//! The killed device is this very test binary, re-run as a child with the ignored test
//! [`device_child_process`] selected and its configuration in an environment variable.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rollcall_device::{Credentials, Device};
use serde_json::json;

use crate::backlog::{keys, offline_records};
use crate::helpers::{TestPlatform, assert_exactly_once_in_order, eventually, scaled};

const CHILD_ENV: &str = "ROLLCALL_SDK_CRASH_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_killed_mid_backlog_loses_nothing_and_duplicates_nothing() {
    let n = scaled(60_000);
    let platform = TestPlatform::spawn().await;
    let vendor = platform.vendor().await;
    let sn = "SDK-CRASH-1";
    platform.register_device(sn, &vendor, None).await;
    let dir = tempfile::tempdir().unwrap();
    let persons: Vec<String> = (1..=7).map(|i| format!("{}", 9_000_000 + i)).collect();
    let records = offline_records(n, &persons);
    let expected = keys(&records);
    {
        let device = Device::open(platform.config(sn, &vendor, dir.path())).unwrap();
        let handle = device.handle();
        for chunk in records.chunks(2000) {
            handle.enqueue_many(chunk.to_vec()).await.unwrap();
        }
        handle.store().flush().await.unwrap();
    }

    // The device runs in another process…
    let spec = json!({
        "sn": sn,
        "accessId": vendor.creds.access_id,
        "accessKey": vendor.creds.access_key.expose(),
        "accessSecret": vendor.creds.access_secret.expose(),
        "tcp": platform.tcp_addr.to_string(),
        "http": platform.base_url,
        "dir": dir.path(),
    });
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::device_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, spec.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the device process");

    // …and is killed once a third of its backlog is on the platform.
    let started = Instant::now();
    let at_kill = eventually(
        "a third of the backlog to arrive",
        Duration::from_secs(300),
        || async {
            let count = platform
                .get(&format!("/attendance?sn={sn}&limit=1000"))
                .await["records"]
                .as_array()
                .map_or(0, Vec::len);
            // The admin page caps at 1000: good enough to know it is under way; then count.
            if count < 1000.min(n / 3) {
                return None;
            }
            let all = platform.records(sn).await.len();
            (all >= n / 3).then_some(all)
        },
    )
    .await;
    child.kill().expect("SIGKILL the device");
    let _ = child.wait();
    let stored_at_kill = platform.records(sn).await.len();
    eprintln!(
        "killed after {:?} with {at_kill}..{stored_at_kill} of {n} records stored",
        started.elapsed()
    );
    assert!(stored_at_kill < n, "killed mid-backlog");

    // Restarted on the same data dir, in this process.
    let mut device = Device::open(platform.config(sn, &vendor, dir.path())).unwrap();
    let _events = device.subscribe();
    let handle = device.handle();
    let left = handle.queue_len().await.unwrap();
    assert!(
        left as usize >= n - stored_at_kill,
        "nothing acknowledged was lost from the queue early"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(device.run(async move {
        let _ = stopped.await;
    }));
    eventually(
        "the rest of the queue to drain",
        Duration::from_secs(600),
        || async { (handle.queue_len().await.unwrap() == 0).then_some(()) },
    )
    .await;
    let dups = handle
        .stats()
        .duplicates
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("after restart: {left} queued, {dups} of them already stored (duplicates)");
    assert_eq!(handle.dead_letter_count().await.unwrap(), 0);
    assert_exactly_once_in_order(&platform, sn, &expected).await;

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    platform.shutdown().await;
}

/// The device process of the crash test; does nothing unless spawned by it.
#[test]
#[ignore = "run by the crash test as a separate process"]
fn device_child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).expect("child spec");
    let s = |k: &str| spec[k].as_str().expect(k).to_owned();
    let creds = Credentials::new(s("accessId"), s("accessKey"), s("accessSecret"));
    let config = rollcall_device::DeviceConfig::new(s("sn"), creds, s("tcp"), s("http"), s("dir"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let device = Device::open(config).expect("open the device");
        // Runs until killed.
        let _ = device.run(std::future::pending::<()>()).await;
    });
}
