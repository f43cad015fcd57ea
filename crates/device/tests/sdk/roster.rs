//! 10,000 persons with face photos onto one device (a tenth by default): the device pages
//! through T_SEND_PERSON, downloads and checks every photo, stores them, and reports
//! personCount/faceCount, which the platform shows.

use std::time::{Duration, Instant};

use rollcall_device::Device;
use rollcall_device::photo::sample::SMALL_JPEG;

use crate::helpers::{TestPlatform, eventually, scaled};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_holds_a_roster_of_ten_thousand_with_faces() {
    let n = scaled(10_000);
    let platform = TestPlatform::spawn().await;
    let vendor = platform.vendor().await;
    let project = platform.project().await;
    let started = Instant::now();
    platform.enrol_fast(n, &project).await;
    let enrolled = started.elapsed();

    // Binding makes one T_SEND_PERSON with the whole roster; the device is not connected yet.
    let sn = "SDK-ROSTER-1";
    platform.register_device(sn, &vendor, Some(&project)).await;
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(platform.config(sn, &vendor, dir.path())).unwrap();
    let handle = device.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(device.run(async move {
        let _ = stopped.await;
    }));

    // The platform writes a status report's counts before it finishes the task, so once the
    // task reads done its counts are there too (ARCHITECTURE.md, task status).
    let synced = Instant::now();
    let want = n as i64;
    let tasks = eventually(
        "the roster task to finish",
        Duration::from_secs(900),
        || async {
            let tasks = platform.tasks(sn).await;
            tasks
                .iter()
                .any(|t| t["apicode"] == "T_SEND_PERSON" && t["status"] == "done")
                .then_some(tasks)
        },
    )
    .await;
    let sync_time = synced.elapsed();
    eprintln!("roster of {n}: enrolment {enrolled:?}, device sync {sync_time:?}");

    let d = platform.device(sn).await;
    assert_eq!(
        (d["personCount"].as_i64(), d["faceCount"].as_i64()),
        (Some(want), Some(want)),
        "{tasks:?}"
    );
    assert_eq!(handle.counts().await.unwrap(), (n as u64, n as u64));
    let first = handle.persons(None, 1).await.unwrap().remove(0);
    let stored = handle.person(&first.person_id).await.unwrap().unwrap();
    assert_eq!(stored.face.unwrap().photo.as_deref(), Some(SMALL_JPEG));
    let d = platform.device(sn).await;
    assert_eq!(d["expectedPersonCount"].as_i64(), Some(want));
    assert_eq!(d["online"], true);

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    platform.shutdown().await;
}
