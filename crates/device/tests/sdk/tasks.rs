//! Every task apicode, pushed by the platform as it happens in operation, executed by the
//! SDK over HTTP and reported: the roster on binding (T_SEND_PERSON), a worker joining
//! (T_UPDATE_DEVICE_PERSON) and leaving (T_DEL_DEVICE_PERSON), reconciliation
//! (T_POST_DEVICE_PERSON with excludeFields), firmware (T_UPDATE_DEVICE_VERSION, good and
//! corrupt), unbinding (T_CLEAR_DEVICE_PERSON).

use std::time::Duration;

use rollcall_device::Device;
use rollcall_device::photo::sample::FACE_JPEG;
use rollcall_platform::store::console::Firmware;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{TestPlatform, eventually};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_apicode_runs_and_is_reported() {
    let platform = TestPlatform::spawn().await;
    let vendor = platform.vendor().await;
    let project = platform.project().await;
    let mut workers = Vec::new();
    for name in ["张三", "李四", "王五"] {
        workers.push(platform.enrol(name, FACE_JPEG).await);
    }
    platform
        .post(
            &format!("/projects/{project}/workers"),
            &json!({ "personIds": workers }),
            200,
        )
        .await;
    let sn = "SDK-TASKS-1";
    platform.register_device(sn, &vendor, Some(&project)).await;

    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(platform.config(sn, &vendor, dir.path())).unwrap();
    let handle = device.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(device.run(async move {
        let _ = stopped.await;
    }));
    let counts = |want: i64| {
        let platform = &platform;
        async move {
            eventually(&format!("personCount {want}"), WAIT, || async {
                let d = platform.device(sn).await;
                (d["personCount"].as_i64() == Some(want) && d["faceCount"].as_i64() == Some(want))
                    .then_some(())
            })
            .await
        }
    };

    // T_SEND_PERSON on binding.
    counts(3).await;
    let alice = handle.person(&workers[0]).await.unwrap().expect("stored");
    assert_eq!(alice.name, "张三");
    assert_eq!(alice.face.unwrap().photo.as_deref(), Some(FACE_JPEG));

    // T_UPDATE_DEVICE_PERSON: a worker joins (pushed within moments).
    let newcomer = platform.enrol("赵六", FACE_JPEG).await;
    platform
        .post(
            &format!("/projects/{project}/workers"),
            &json!({ "personIds": [newcomer] }),
            200,
        )
        .await;
    counts(4).await;
    assert!(handle.person(&newcomer).await.unwrap().is_some());

    // T_DEL_DEVICE_PERSON: a worker leaves.
    let status = platform
        .delete(&format!("/projects/{project}/workers/{}", workers[1]))
        .await;
    assert!((200..300).contains(&status));
    counts(3).await;
    assert!(handle.person(&workers[1]).await.unwrap().is_none());

    // T_POST_DEVICE_PERSON: the device uploads its list without phones (ZJ-RECON-03); the
    // platform finds it matches the roster.
    let task = platform
        .post(
            &format!("/devices/{sn}/tasks"),
            &json!({"apicode": "T_POST_DEVICE_PERSON", "param": {"excludeFields": "phone"}}),
            201,
        )
        .await;
    let taskid = task["taskid"].as_str().unwrap().to_owned();
    eventually("the reconciliation task to finish", WAIT, || async {
        (platform.task_status(sn, &taskid).await == "done").then_some(())
    })
    .await;
    let rec = platform
        .get(&format!("/devices/{sn}/tasks/{taskid}/reconciliation"))
        .await;
    assert_eq!(rec["missing"], json!([]), "{rec}");
    assert_eq!(rec["extra"], json!([]), "{rec}");
    assert_eq!(rec["faceless"], json!([]), "{rec}");

    // T_UPDATE_DEVICE_VERSION: a good package is installed and then reported in heartbeats.
    let package: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    platform
        .state()
        .blobs
        .put("firmware/fw-2.0.bin", &package)
        .await
        .unwrap();
    // Firmware tasks name a registered package (ZJ-FW-01); the packages are written to the
    // store directly, so the corrupt one below can carry a digest its file does not have.
    let package_row = |id: i64, version: &str, sha256: String| Firmware {
        id,
        vendor_id: vendor.id.parse().unwrap(),
        kind: "face".into(),
        version: version.into(),
        file_key: "firmware/fw-2.0.bin".into(),
        sha256,
        size: package.len() as i64,
        notes: None,
        created_at: 1,
    };
    let store = &platform.state().store;
    store
        .create_firmware(&package_row(
            9_000_001,
            "2.0",
            hex::encode(Sha256::digest(&package)),
        ))
        .await
        .unwrap();
    let good = json!({
        "apicode": "T_UPDATE_DEVICE_VERSION",
        "param": { "firmwareId": "9000001" }
    });
    let task = platform
        .post(&format!("/devices/{sn}/tasks"), &good, 201)
        .await;
    let taskid = task["taskid"].as_str().unwrap().to_owned();
    eventually("the firmware task to finish", WAIT, || async {
        (platform.task_status(sn, &taskid).await == "done").then_some(())
    })
    .await;
    assert_eq!(
        handle.firmware_version().await.unwrap().as_deref(),
        Some("2.0")
    );
    let installed = std::fs::read(dir.path().join("firmware/2.0.bin")).unwrap();
    assert_eq!(installed, package);
    eventually("heartbeats to report the new version", WAIT, || async {
        (platform.device(sn).await["firmwareVersion"] == "2.0").then_some(())
    })
    .await;

    // A package whose digest does not match the signed param is refused: status failed
    // (ZJ-FW-03).
    store
        .create_firmware(&package_row(9_000_002, "2.1", hex::encode([7u8; 32])))
        .await
        .unwrap();
    let mut bad = good.clone();
    bad["param"]["firmwareId"] = "9000002".into();
    let task = platform
        .post(&format!("/devices/{sn}/tasks"), &bad, 201)
        .await;
    let taskid = task["taskid"].as_str().unwrap().to_owned();
    eventually(
        "the corrupt firmware task to fail",
        Duration::from_secs(120),
        || async { (platform.task_status(sn, &taskid).await == "failed").then_some(()) },
    )
    .await;
    assert_eq!(
        handle.firmware_version().await.unwrap().as_deref(),
        Some("2.0")
    );

    // T_CLEAR_DEVICE_PERSON on unbinding.
    platform
        .patch(&format!("/devices/{sn}"), &json!({ "projectId": null }))
        .await;
    counts(0).await;
    assert_eq!(handle.counts().await.unwrap(), (0, 0));

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    platform.shutdown().await;
}

/// A face the device cannot get (the platform lost the file) or cannot use (not a JPEG/PNG)
/// is reported in `failedFaces` with the device's errCode; the person is still taken, and
/// the counts say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faces_the_device_cannot_use_are_reported() {
    use rollcall_platform::store::Worker;
    let platform = TestPlatform::spawn().await;
    let vendor = platform.vendor().await;
    let project = platform.project().await;
    let good = platform.enrol("钱七", FACE_JPEG).await;
    let app = platform.state();
    app.blobs
        .put("faces/broken/not-a-photo.jpg", b"GIF89a not what it says")
        .await
        .unwrap();
    let mut odd = Vec::new();
    for (i, key) in ["faces/missing/gone.jpg", "faces/broken/not-a-photo.jpg"]
        .into_iter()
        .enumerate()
    {
        let now = rollcall_protocol::time::now_ms();
        let person_id = app.ids.next();
        app.store
            .create_worker(&Worker {
                person_id,
                idcard_no: crate::helpers::idcard(900_000 + i as u32),
                name: format!("孙{i}"),
                gender: None,
                nation: None,
                address: None,
                phone: None,
                face_key: Some(key.to_owned()),
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        odd.push(person_id.to_string());
    }
    let mut all = odd.clone();
    all.push(good.clone());
    platform
        .post(
            &format!("/projects/{project}/workers"),
            &json!({ "personIds": all }),
            200,
        )
        .await;
    let sn = "SDK-FACES-1";
    platform.register_device(sn, &vendor, Some(&project)).await;
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(platform.config(sn, &vendor, dir.path())).unwrap();
    let handle = device.handle();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(device.run(async move {
        let _ = stopped.await;
    }));

    let task = eventually("the roster task to finish", WAIT, || async {
        platform
            .tasks(sn)
            .await
            .into_iter()
            .find(|t| t["apicode"] == "T_SEND_PERSON" && t["status"] == "done")
    })
    .await;
    let mut failed: Vec<(String, String)> = task["failedFaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["personId"].as_str().unwrap().to_owned(),
                f["errCode"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    failed.sort();
    let mut want = vec![
        (
            odd[0].clone(),
            rollcall_device::tasks::ERR_FACE_DOWNLOAD.to_owned(),
        ),
        (
            odd[1].clone(),
            rollcall_device::tasks::ERR_FACE_FORMAT.to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(failed, want);
    assert_eq!(task["failedPersons"], json!([]));
    let d = platform.device(sn).await;
    assert_eq!(
        (d["personCount"].as_i64(), d["faceCount"].as_i64()),
        (Some(3), Some(1))
    );
    assert_eq!(handle.counts().await.unwrap(), (3, 1));

    let _ = stop.send(());
    running.await.unwrap().unwrap();
    platform.shutdown().await;
}
