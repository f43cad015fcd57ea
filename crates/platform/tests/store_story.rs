//! One storage story, told to every backend: SQLite (in a temp dir) always, PostgreSQL when
//! `ROLLCALL_TEST_DATABASE_URL` is set (e.g. `postgres://postgres@127.0.0.1:5432/test`; the
//! story runs in a fresh schema that is dropped afterwards).
//!
//! Each chapter covers one group of `Store` methods; the chapters share one database, so the
//! ids they use are distinct.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use rollcall_platform::rules::geo::{CoordinateSystem, Fence, Point};
use rollcall_platform::store::faulty::FaultyStore;
use rollcall_platform::store::sql::SqlStore;
use rollcall_platform::store::*;
use rollcall_protocol::ids::Secret;
use sqlx::{Connection, Executor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_story() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("rollcall.db").display());
    let store = SqlStore::connect(&url)
        .await
        .expect("connect sqlite")
        .with_keys(rollcall_platform::store::test_db::test_keys());
    assert_eq!(store.backend(), "sqlite");
    story(&store).await;
    assert!(
        dir.path().join("rollcall.db-wal").exists(),
        "journal_mode=WAL"
    );
    store.close().await;

    // Reopening runs the migrations again (a no-op) and finds everything stored.
    let reopened = SqlStore::connect(&url)
        .await
        .expect("reopen sqlite")
        .with_keys(rollcall_platform::store::test_db::test_keys());
    assert_eq!(reopened.vendor(1).await.unwrap().unwrap().name, "Acme");
    assert_eq!(
        reopened
            .attendance_record(1)
            .await
            .unwrap()
            .unwrap()
            .person_id,
        "1"
    );
    reopened.close().await;
}

/// An in-memory SQLite database is refused with a message that says to give a file: the
/// group commit writes through a connection of its own, which a private in-memory database
/// cannot have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_is_refused_with_the_reason() {
    for url in ["sqlite::memory:", "sqlite://rollcall.db?mode=memory"] {
        let err = SqlStore::connect(url).await.expect_err(url).to_string();
        assert!(
            err.contains("in-memory SQLite database is not supported"),
            "{url}: {err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_story() {
    // PostgreSQL-only: never skipped (the machine's server unless the variable names one).
    let url = test_db::postgres_server_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("story_{}_{nanos}", std::process::id());
    let store = SqlStore::connect_with_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| panic!("{}", test_db::postgres_missing(&url, &e)))
        .with_keys(test_db::test_keys());
    assert_eq!(store.backend(), "postgres");
    story(&store).await;
    store.close().await;

    // Best effort: a leftover schema only costs disk.
    if let Ok(mut conn) = sqlx::AnyConnection::connect(&url).await {
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        if let Err(e) = conn.execute(sqlx::AssertSqlSafe(sql)).await {
            eprintln!("could not drop schema {schema}: {e}");
        }
        let _ = conn.close().await;
    }
}

async fn story(store: &SqlStore) {
    store.ping().await.expect("ping");
    vendors_and_credentials(store).await;
    tokens(store).await;
    projects(store).await;
    devices_and_presence(store).await;
    workers_and_rosters(store).await;
    task_merging_and_superseding(store).await;
    task_delivery(store).await;
    sync_reports_and_reconciliation(store).await;
    attendance_batches(store).await;
    concurrent_attendance(store).await;
    attendance_queries(store).await;
    injected_faults(store).await;
}

// --- fixtures ------------------------------------------------------------------------------

fn vendor(id: i64, access_id: &str) -> Vendor {
    Vendor {
        id,
        name: "Acme".into(),
        access_id: access_id.into(),
        access_key: Secret::new(format!("key-{access_id}")),
        access_secret: Secret::new(format!("secret-{access_id}")),
        rsa_public_key: None,
        created_at: 1_000,
    }
}

fn credential(vendor_id: i64, access_id: &str) -> Credential {
    Credential {
        access_id: access_id.into(),
        access_key: Secret::new(format!("key-{access_id}")),
        access_secret: Secret::new(format!("secret-{access_id}")),
        vendor_id,
        revoked_at: None,
    }
}

fn project(id: i64, fence: Option<Fence>, coordinate_system: CoordinateSystem) -> Project {
    Project {
        id,
        name: format!("项目 {id}"),
        code: Some(format!("P{id}")),
        address: None,
        coordinate_system,
        fence,
        created_at: 2_000,
    }
}

fn device(sn: &str, project_id: Option<i64>) -> Device {
    Device {
        sn: sn.into(),
        vendor_id: 1,
        project_id,
        kind: DeviceKind::Face,
        direction: Direction::Both,
        name: Some(format!("gate {sn}")),
        enabled: true,
        firmware_version: None,
        ip: None,
        last_heartbeat_at: None,
        person_count: None,
        face_count: None,
        created_at: 3_000,
    }
}

fn worker(person_id: i64, idcard_no: &str) -> Worker {
    Worker {
        person_id,
        idcard_no: idcard_no.into(),
        name: format!("工人{person_id}"),
        gender: Some("男".into()),
        nation: None,
        address: None,
        phone: Some("13800000000".into()),
        face_key: Some(format!("faces/{person_id}.jpg")),
        created_at: 4_000,
        updated_at: 4_000,
    }
}

fn new_task(taskid: i64, sn: &str, apicode: &str, persons: &[i64], supersede: bool) -> NewTask {
    NewTask {
        taskid,
        sn: sn.into(),
        apicode: apicode.into(),
        param: "{}".into(),
        persons: persons.to_vec(),
        supersede,
        created_at: taskid * 10,
    }
}

fn record(
    record_id: i64,
    sn: &str,
    person_id: &str,
    record_time: i64,
    r#type: u32,
) -> NewAttendance {
    NewAttendance {
        record_id,
        sn: sn.into(),
        person_id: person_id.into(),
        r#type,
        bit_type: None,
        record_time,
        received_at: record_time + 5,
        project_id: Some(10),
        direction: Direction::In,
        photo_key: None,
        flags: Vec::new(),
        temperature: None,
        extra: None,
    }
}

fn failure(person_id: &str, err_code: &str) -> SyncFailure {
    SyncFailure {
        person_id: person_id.into(),
        err_code: err_code.into(),
    }
}

async fn state_of(store: &SqlStore, taskid: i64) -> TaskState {
    store
        .task(taskid)
        .await
        .unwrap()
        .expect("task exists")
        .state
}

async fn persons_of(store: &SqlStore, taskid: i64) -> Vec<i64> {
    store.task_persons(taskid, 0, 1000).await.unwrap().0
}

// --- chapters ------------------------------------------------------------------------------

async fn vendors_and_credentials(store: &SqlStore) {
    let acme = vendor(1, "AK1");
    store.create_vendor(&acme).await.unwrap();
    store.create_vendor(&vendor(2, "AK-OTHER")).await.unwrap();
    assert_eq!(store.vendor(1).await.unwrap(), Some(acme.clone()));
    assert_eq!(store.vendor(99).await.unwrap(), None);
    let ids: Vec<i64> = store
        .vendors()
        .await
        .unwrap()
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(
        store.credential("AK1").await.unwrap(),
        Some(credential(1, "AK1"))
    );
    assert_eq!(store.credential("nope").await.unwrap(), None);

    // The id and the access id are both unique.
    let taken_id = store.create_vendor(&vendor(1, "AK-NEW")).await;
    assert!(
        matches!(taken_id, Err(StoreError::Conflict(_))),
        "{taken_id:?}"
    );
    let taken_access_id = store.create_vendor(&vendor(3, "AK1")).await;
    assert!(
        matches!(taken_access_id, Err(StoreError::Conflict(_))),
        "{taken_access_id:?}"
    );
    assert_eq!(store.vendor(3).await.unwrap(), None, "nothing half-created");

    // Rotation revokes the old pair and installs the new one.
    store
        .rotate_credentials(1, &credential(1, "AK2"))
        .await
        .unwrap();
    let rotated = store.vendor(1).await.unwrap().unwrap();
    assert_eq!(rotated.access_id, "AK2");
    assert_eq!(rotated.access_key.expose(), "key-AK2");
    assert_eq!(rotated.access_secret.expose(), "secret-AK2");
    let old = store.credential("AK1").await.unwrap().unwrap();
    assert!(old.revoked_at.is_some(), "old credentials revoked");
    assert_eq!(
        old.access_secret.expose(),
        "secret-AK1",
        "revoked rows stay readable"
    );
    assert_eq!(
        store.credential("AK2").await.unwrap(),
        Some(credential(1, "AK2"))
    );

    store
        .rotate_credentials(1, &credential(1, "AK3"))
        .await
        .unwrap();
    assert!(
        store
            .credential("AK2")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert_eq!(
        store.credential("AK1").await.unwrap(),
        Some(old),
        "earlier revocation kept"
    );
    assert_eq!(
        store.credential("AK3").await.unwrap().unwrap().revoked_at,
        None
    );

    // A rotation onto an access id ever used fails and changes nothing.
    for reused in ["AK1", "AK-OTHER"] {
        let r = store.rotate_credentials(1, &credential(1, reused)).await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    }
    assert_eq!(store.vendor(1).await.unwrap().unwrap().access_id, "AK3");
    assert_eq!(
        store.credential("AK3").await.unwrap().unwrap().revoked_at,
        None
    );
    let unknown = store.rotate_credentials(99, &credential(99, "AK99")).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
    assert_eq!(store.credential("AK99").await.unwrap(), None);
}

async fn tokens(store: &SqlStore) {
    store
        .insert_token("tok-1", "SN-T", "AK3", 1_000)
        .await
        .unwrap();
    assert_eq!(
        store.token("tok-1").await.unwrap(),
        Some(("SN-T".to_owned(), "AK3".to_owned(), 1_000))
    );
    assert_eq!(store.token("tok-missing").await.unwrap(), None);
    let dup = store.insert_token("tok-1", "SN-T", "AK3", 1_001).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

    store
        .touch_tokens(&[("tok-1".into(), 5_000), ("tok-missing".into(), 6_000)])
        .await
        .unwrap();
    assert_eq!(store.token("tok-1").await.unwrap().unwrap().2, 5_000);
    // A late touch never moves the time backwards.
    store
        .touch_tokens(&[("tok-1".into(), 3_000)])
        .await
        .unwrap();
    assert_eq!(store.token("tok-1").await.unwrap().unwrap().2, 5_000);
    store.touch_tokens(&[]).await.unwrap();
    // A token past the first statement's rows is touched too.
    let mut many: Vec<(String, i64)> = (0..1_000).map(|i| (format!("tok-x{i}"), 7_000)).collect();
    many.push(("tok-1".into(), 8_000));
    store.touch_tokens(&many).await.unwrap();
    assert_eq!(store.token("tok-1").await.unwrap().unwrap().2, 8_000);
}

async fn projects(store: &SqlStore) {
    let circle = Fence::Circle {
        center: Point {
            longitude: 120.155,
            latitude: 30.274,
        },
        radius_meters: 500.0,
    };
    let square = Fence::Polygon {
        polygon: vec![
            [120.0, 30.0],
            [120.01, 30.0],
            [120.01, 30.01],
            [120.0, 30.01],
        ],
    };
    let p10 = project(10, Some(circle), CoordinateSystem::Wgs84);
    let p11 = project(11, None, CoordinateSystem::Gcj02);
    let p12 = project(12, Some(square), CoordinateSystem::Gcj02);
    for p in [&p10, &p11, &p12] {
        store.create_project(p).await.unwrap();
    }
    assert_eq!(store.project(10).await.unwrap(), Some(p10.clone()));
    assert_eq!(store.project(12).await.unwrap(), Some(p12.clone()));
    assert_eq!(store.project(99).await.unwrap(), None);
    assert_eq!(store.projects().await.unwrap(), vec![p10.clone(), p11, p12]);
    let dup = store.create_project(&p10).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
}

async fn devices_and_presence(store: &SqlStore) {
    let d1 = device("SN-D1", Some(10));
    let d2 = device("SN-D2", None);
    store.create_device(&d1).await.unwrap();
    store.create_device(&d2).await.unwrap();
    let dup = store.create_device(&device("SN-D1", None)).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let no_vendor = store
        .create_device(&Device {
            vendor_id: 99,
            ..device("SN-NOVENDOR", None)
        })
        .await;
    assert!(
        matches!(no_vendor, Err(StoreError::NotFound(_))),
        "{no_vendor:?}"
    );

    assert_eq!(store.device("SN-D1").await.unwrap(), Some(d1.clone()));
    assert_eq!(store.device("SN-NONE").await.unwrap(), None);
    assert_eq!(
        store.devices(None).await.unwrap(),
        vec![d1.clone(), d2.clone()]
    );
    assert_eq!(store.devices(Some(10)).await.unwrap(), vec![d1.clone()]);
    assert_eq!(store.devices(Some(11)).await.unwrap(), vec![]);

    // Patches: None leaves a field, Some(None) clears it.
    let patched = store
        .update_device(
            "SN-D2",
            &DevicePatch {
                project_id: Some(Some(11)),
                kind: Some(DeviceKind::Gate),
                direction: Some(Direction::Out),
                name: Some(None),
                enabled: Some(false),
            },
        )
        .await
        .unwrap();
    let expected = Device {
        project_id: Some(11),
        kind: DeviceKind::Gate,
        direction: Direction::Out,
        name: None,
        enabled: false,
        ..d2.clone()
    };
    assert_eq!(patched, expected);
    assert_eq!(store.device("SN-D2").await.unwrap(), Some(expected.clone()));
    let unbound = store
        .update_device(
            "SN-D2",
            &DevicePatch {
                project_id: Some(None),
                ..DevicePatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(unbound.project_id, None);
    assert_eq!(unbound.kind, DeviceKind::Gate, "untouched fields stay");
    let same = store
        .update_device("SN-D2", &DevicePatch::default())
        .await
        .unwrap();
    assert_eq!(same, unbound);
    let missing = store
        .update_device("SN-NONE", &DevicePatch::default())
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let missing = store
        .update_device(
            "SN-NONE",
            &DevicePatch {
                enabled: Some(true),
                ..DevicePatch::default()
            },
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let no_project = store
        .update_device(
            "SN-D2",
            &DevicePatch {
                project_id: Some(Some(99)),
                ..DevicePatch::default()
            },
        )
        .await;
    assert!(
        matches!(no_project, Err(StoreError::NotFound(_))),
        "{no_project:?}"
    );

    store.set_device_counts("SN-D1", 7, 6).await.unwrap();
    let counted = store.device("SN-D1").await.unwrap().unwrap();
    assert_eq!(
        (counted.person_count, counted.face_count),
        (Some(7), Some(6))
    );
    let missing = store.set_device_counts("SN-NONE", 1, 1).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );

    // Heartbeats written behind: newest wins, missing version/IP keep the recorded ones.
    let beat = |sn: &str, at: i64, version: Option<&str>| PresenceUpdate {
        sn: sn.into(),
        last_heartbeat_at: at,
        firmware_version: version.map(str::to_owned),
        ip: version.map(|_| "10.0.0.7".to_owned()),
    };
    let moved = |sn: &str, online: bool, at: i64| PresenceTransition {
        sn: sn.into(),
        online,
        at,
    };
    store
        .record_presence(
            &[
                beat("SN-D1", 100, Some("v1.0.0")),
                beat("SN-GONE", 100, None),
            ],
            &[
                moved("SN-D1", true, 100),
                moved("SN-D2", true, 150),
                moved("SN-D1", false, 200),
            ],
        )
        .await
        .unwrap();
    store
        .record_presence(&[beat("SN-D1", 300, None)], &[])
        .await
        .unwrap();
    store
        .record_presence(&[beat("SN-D1", 50, Some("v0.9"))], &[])
        .await
        .unwrap();
    store.record_presence(&[], &[]).await.unwrap();
    let d = store.device("SN-D1").await.unwrap().unwrap();
    assert_eq!(d.last_heartbeat_at, Some(300));
    assert_eq!(d.firmware_version.as_deref(), Some("v1.0.0"));
    assert_eq!(d.ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(
        store.presence_history("SN-D1", 10).await.unwrap(),
        vec![moved("SN-D1", false, 200), moved("SN-D1", true, 100)]
    );
    assert_eq!(
        store.presence_history("SN-D1", 1).await.unwrap(),
        vec![moved("SN-D1", false, 200)]
    );
    assert_eq!(
        store.presence_history("SN-D2", 10).await.unwrap(),
        vec![moved("SN-D2", true, 150)]
    );

    // A write-behind goes as JSON rows, many to a statement: text that JSON escapes arrives
    // as sent, and a device past the first statement's rows is written too.
    let odd = "v2 \"门禁\" \\ 'x'\n";
    let mut many: Vec<PresenceUpdate> = (0..1_000)
        .map(|i| beat(&format!("SN-UNKNOWN-{i}"), 400, None))
        .collect();
    many.push(beat("SN-D1", 400, Some(odd)));
    store.record_presence(&many, &[]).await.unwrap();
    let d = store.device("SN-D1").await.unwrap().unwrap();
    assert_eq!(d.last_heartbeat_at, Some(400));
    assert_eq!(d.firmware_version.as_deref(), Some(odd));
}

async fn workers_and_rosters(store: &SqlStore) {
    let w = [
        worker(101, "330102199001011234"),
        worker(102, "330102199001021234"),
        worker(103, "330102199001031234"),
    ];
    for x in &w {
        store.create_worker(x).await.unwrap();
    }
    // A taken ID-card number names the worker who has it; a taken id names itself.
    match store
        .create_worker(&worker(104, "330102199001011234"))
        .await
    {
        Err(StoreError::Conflict(existing)) => assert_eq!(existing, "101"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    match store
        .create_worker(&worker(102, "330102199001991234"))
        .await
    {
        Err(StoreError::Conflict(existing)) => assert_eq!(existing, "102"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(store.worker(104).await.unwrap(), None);

    assert_eq!(store.worker(101).await.unwrap(), Some(w[0].clone()));
    assert_eq!(
        store.worker_by_idcard("330102199001031234").await.unwrap(),
        Some(w[2].clone())
    );
    assert_eq!(store.worker_by_idcard("x").await.unwrap(), None);
    assert_eq!(
        store.workers_by_ids(&[103, 101, 999, 101]).await.unwrap(),
        vec![w[0].clone(), w[2].clone()]
    );
    assert_eq!(store.workers_by_ids(&[]).await.unwrap(), vec![]);
    assert_eq!(
        store.workers(None, 2).await.unwrap(),
        vec![w[0].clone(), w[1].clone()]
    );
    assert_eq!(
        store.workers(Some(102), 10).await.unwrap(),
        vec![w[2].clone()]
    );

    store
        .add_project_workers(10, &[103, 101, 102, 101], 5_000)
        .await
        .unwrap();
    store.add_project_workers(10, &[], 5_000).await.unwrap();
    assert_eq!(store.roster(10).await.unwrap(), [101, 102, 103]);
    assert_eq!(store.roster(11).await.unwrap(), Vec::<i64>::new());
    assert!(store.on_roster(10, 102).await.unwrap());
    assert!(!store.on_roster(11, 102).await.unwrap());

    assert!(store.remove_project_worker(10, 102, 6_000).await.unwrap());
    assert!(
        !store.remove_project_worker(10, 102, 6_001).await.unwrap(),
        "already exited"
    );
    assert!(
        !store.remove_project_worker(11, 101, 6_002).await.unwrap(),
        "never a member"
    );
    assert_eq!(store.roster(10).await.unwrap(), [101, 103]);
    assert!(!store.on_roster(10, 102).await.unwrap());

    // Re-adding re-activates; adding an active worker again is harmless.
    store
        .add_project_workers(10, &[102, 101], 7_000)
        .await
        .unwrap();
    assert_eq!(store.roster(10).await.unwrap(), [101, 102, 103]);
    let unknown = store.add_project_workers(10, &[999], 7_000).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
    let unknown = store.add_project_workers(99, &[101], 7_000).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
    assert_eq!(store.roster(10).await.unwrap(), [101, 102, 103]);
}

async fn task_merging_and_superseding(store: &SqlStore) {
    const SN: &str = "SN-D1";
    // A full resync freezes its (sorted, deduplicated) person list.
    store
        .create_task(&new_task(
            1001,
            SN,
            "T_SEND_PERSON",
            &[103, 101, 102, 102],
            true,
        ))
        .await
        .unwrap();
    assert_eq!(
        store.task_persons(1001, 0, 2).await.unwrap(),
        (vec![101, 102], 3)
    );
    assert_eq!(
        store.task_persons(1001, 2, 10).await.unwrap(),
        (vec![103], 3)
    );
    assert_eq!(store.task_persons(1001, 5, 10).await.unwrap(), (vec![], 3));
    let task = store.task(1001).await.unwrap().unwrap();
    assert_eq!(
        task,
        Task {
            taskid: 1001,
            sn: SN.into(),
            apicode: "T_SEND_PERSON".into(),
            param: "{}".into(),
            state: TaskState::Pending,
            created_at: 10_010,
            delivered_at: None,
            finished_at: None,
        }
    );
    assert_eq!(store.task(9999).await.unwrap(), None);

    // Nothing to merge into: the newest person task is a T_SEND_PERSON.
    assert_eq!(
        store.merge_into_pending_update(SN, &[104]).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .merge_into_pending_update("SN-NONE", &[104])
            .await
            .unwrap(),
        None
    );

    // Enrolments join the newest pending T_UPDATE_DEVICE_PERSON.
    store
        .create_task(&new_task(1002, SN, "T_UPDATE_DEVICE_PERSON", &[104], false))
        .await
        .unwrap();
    assert_eq!(
        store
            .merge_into_pending_update(SN, &[105, 104])
            .await
            .unwrap(),
        Some(1002)
    );
    assert_eq!(persons_of(store, 1002).await, [104, 105]);
    assert_eq!(
        state_of(store, 1001).await,
        TaskState::Pending,
        "no supersede"
    );

    // Never past a newer delete; other apicodes do not count as person tasks.
    store
        .create_task(&new_task(1003, SN, "T_DEL_DEVICE_PERSON", &[101], false))
        .await
        .unwrap();
    store
        .create_task(&new_task(1004, SN, "T_UPDATE_DEVICE_VERSION", &[], false))
        .await
        .unwrap();
    assert_eq!(
        store.merge_into_pending_update(SN, &[106]).await.unwrap(),
        None
    );
    assert_eq!(persons_of(store, 1002).await, [104, 105]);

    // Only into a pending task, not a delivered one.
    store
        .create_task(&new_task(1005, SN, "T_UPDATE_DEVICE_PERSON", &[106], false))
        .await
        .unwrap();
    assert_eq!(
        store.merge_into_pending_update(SN, &[107]).await.unwrap(),
        Some(1005)
    );
    assert_eq!(store.mark_delivered(&[1005], 20_000).await.unwrap(), [1005]);
    assert_eq!(
        store.merge_into_pending_update(SN, &[108]).await.unwrap(),
        None
    );
    assert_eq!(persons_of(store, 1005).await, [106, 107]);

    // A new full resync cancels the older open person tasks, and only those.
    store
        .finish_task(1002, TaskState::Done, 20_500, None)
        .await
        .unwrap();
    store
        .create_task(&new_task(1006, SN, "T_SEND_PERSON", &[101, 102], true))
        .await
        .unwrap();
    for cancelled in [1001, 1003, 1005] {
        let t = store.task(cancelled).await.unwrap().unwrap();
        assert_eq!(t.state, TaskState::Cancelled, "task {cancelled}");
        assert_eq!(t.finished_at, Some(10_060), "task {cancelled}");
    }
    assert_eq!(
        state_of(store, 1002).await,
        TaskState::Done,
        "finished tasks stay"
    );
    assert_eq!(
        state_of(store, 1004).await,
        TaskState::Pending,
        "firmware is not a person task"
    );
    assert_eq!(state_of(store, 1006).await, TaskState::Pending);
    // A cancelled task cannot be finished by a late report.
    assert!(
        !store
            .finish_task(1003, TaskState::Done, 21_000, None)
            .await
            .unwrap()
    );
    assert_eq!(state_of(store, 1003).await, TaskState::Cancelled);

    // Another device's tasks are untouched by D1's supersede.
    store
        .create_task(&new_task(
            2001,
            "SN-D2",
            "T_UPDATE_DEVICE_PERSON",
            &[101],
            false,
        ))
        .await
        .unwrap();
    store
        .create_task(&new_task(1007, SN, "T_CLEAR_DEVICE_PERSON", &[], true))
        .await
        .unwrap();
    assert_eq!(
        state_of(store, 1006).await,
        TaskState::Cancelled,
        "clear supersedes"
    );
    assert_eq!(state_of(store, 2001).await, TaskState::Pending);
    assert_eq!(
        store
            .merge_into_pending_update("SN-D2", &[102])
            .await
            .unwrap(),
        Some(2001)
    );

    let dup = store
        .create_task(&new_task(1007, SN, "T_CLEAR_DEVICE_PERSON", &[], true))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(
        state_of(store, 1007).await,
        TaskState::Pending,
        "failed insert rolled back"
    );
    let no_device = store
        .create_task(&new_task(1999, "SN-NONE", "T_SEND_PERSON", &[1], true))
        .await;
    assert!(
        matches!(no_device, Err(StoreError::NotFound(_))),
        "{no_device:?}"
    );

    let newest: Vec<i64> = store
        .tasks_of_device(SN, 3)
        .await
        .unwrap()
        .iter()
        .map(|t| t.taskid)
        .collect();
    assert_eq!(newest, [1007, 1006, 1005]);
}

async fn task_delivery(store: &SqlStore) {
    const SN: &str = "SN-D3";
    store.create_device(&device(SN, Some(10))).await.unwrap();
    for (taskid, apicode) in [
        (3001, "T_SEND_PERSON"),
        (3002, "T_UPDATE_DEVICE_VERSION"),
        (3003, "T_POST_DEVICE_PERSON"),
    ] {
        store
            .create_task(&new_task(taskid, SN, apicode, &[101], false))
            .await
            .unwrap();
    }
    let due = |before: i64, limit: u32| async move {
        store
            .due_tasks(SN, before, limit)
            .await
            .unwrap()
            .iter()
            .map(|t| t.taskid)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        due(0, 100).await,
        [3001, 3002, 3003],
        "pending, oldest first"
    );
    assert_eq!(due(0, 2).await, [3001, 3002]);

    // Compare-and-set: only open tasks are delivered; unknown and finished ids are skipped.
    store
        .finish_task(3003, TaskState::Unsupported, 900, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .mark_delivered(&[3002, 3001, 3003, 9999, 3001], 1_000)
            .await
            .unwrap(),
        [3001, 3002]
    );
    assert_eq!(
        store.mark_delivered(&[], 1_000).await.unwrap(),
        Vec::<i64>::new()
    );
    let t = store.task(3001).await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.delivered_at),
        (TaskState::Delivered, Some(1_000))
    );
    assert_eq!(
        due(1_000, 100).await,
        Vec::<i64>::new(),
        "delivered just now"
    );
    assert_eq!(due(1_001, 100).await, [3001, 3002], "due for redelivery");

    // Redelivery moves delivered_at.
    assert_eq!(store.mark_delivered(&[3002], 2_000).await.unwrap(), [3002]);
    assert_eq!(
        store.task(3002).await.unwrap().unwrap().delivered_at,
        Some(2_000)
    );
    assert_eq!(due(1_500, 100).await, [3001]);

    // Finishing is compare-and-set too.
    assert!(
        store
            .finish_task(3001, TaskState::Done, 3_000, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_task(3001, TaskState::Failed, 3_001, None)
            .await
            .unwrap(),
        "twice"
    );
    let t = store.task(3001).await.unwrap().unwrap();
    assert_eq!((t.state, t.finished_at), (TaskState::Done, Some(3_000)));
    assert!(
        !store
            .finish_task(9999, TaskState::Done, 3_000, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.mark_delivered(&[3001], 4_000).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(
        store.task(3001).await.unwrap().unwrap().delivered_at,
        Some(1_000)
    );
    assert_eq!(state_of(store, 3003).await, TaskState::Unsupported);

    // ZJ-TASK-03: a push claims a task as it read it before sending it, so of two pushes that
    // read it alike (the one after the device connected, the one after the task was made)
    // only one sends it; a send that fails gives it back as it was.
    store
        .create_task(&new_task(3004, SN, "T_UPDATE_DEVICE_VERSION", &[], false))
        .await
        .unwrap();
    let pending = (TaskState::Pending, None);
    assert_eq!(
        store
            .claim_delivery(3004, pending.0, pending.1, 6_000)
            .await
            .unwrap(),
        Some(6_000)
    );
    assert_eq!(
        store
            .claim_delivery(3004, pending.0, pending.1, 6_000)
            .await
            .unwrap(),
        None,
        "read alike, claimed once"
    );
    let t = store.task(3004).await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.delivered_at),
        (TaskState::Delivered, Some(6_000))
    );
    store
        .release_delivery(3004, pending.0, pending.1, 6_000)
        .await
        .unwrap();
    let t = store.task(3004).await.unwrap().unwrap();
    assert_eq!((t.state, t.delivered_at), pending, "given back");
    // A redelivery claims a delivered task by its delivery time; a release whose claim was
    // overtaken changes nothing.
    assert_eq!(
        store
            .claim_delivery(3004, pending.0, pending.1, 6_100)
            .await
            .unwrap(),
        Some(6_100)
    );
    assert_eq!(
        store
            .claim_delivery(3004, TaskState::Delivered, Some(6_000), 6_200)
            .await
            .unwrap(),
        None,
        "not as read"
    );
    assert_eq!(
        store
            .claim_delivery(3004, TaskState::Delivered, Some(6_100), 6_200)
            .await
            .unwrap(),
        Some(6_200)
    );
    store
        .release_delivery(3004, pending.0, pending.1, 6_100)
        .await
        .unwrap();
    assert_eq!(
        store.task(3004).await.unwrap().unwrap().delivered_at,
        Some(6_200)
    );
    // Overtaken within the claim's own millisecond (or with the clock set back): the second
    // claim marks the task past the first, so the first one's release still finds nothing.
    assert_eq!(
        store
            .claim_delivery(3004, TaskState::Delivered, Some(6_200), 6_200)
            .await
            .unwrap(),
        Some(6_201),
        "one past the delivery it replaces"
    );
    store
        .release_delivery(3004, TaskState::Delivered, Some(6_100), 6_200)
        .await
        .unwrap();
    let t = store.task(3004).await.unwrap().unwrap();
    assert_eq!(
        (t.state, t.delivered_at),
        (TaskState::Delivered, Some(6_201)),
        "the overtaken claim's release changes nothing"
    );
    // A heartbeat's delivery in that millisecond is marked past it too.
    assert_eq!(store.mark_delivered(&[3004], 6_201).await.unwrap(), [3004]);
    store
        .release_delivery(3004, TaskState::Delivered, Some(6_200), 6_201)
        .await
        .unwrap();
    assert_eq!(
        store.task(3004).await.unwrap().unwrap().delivered_at,
        Some(6_202)
    );
    // A finished task is never claimed.
    assert!(
        store
            .finish_task(3004, TaskState::Done, 6_300, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .claim_delivery(3004, TaskState::Delivered, Some(6_202), 6_400)
            .await
            .unwrap(),
        None
    );
    assert_eq!(state_of(store, 3004).await, TaskState::Done);

    // Open across all devices: D1's 1004 and 1007, D2's 2001, D3's 3002.
    assert_eq!(store.open_task_count().await.unwrap(), 4);
}

async fn sync_reports_and_reconciliation(store: &SqlStore) {
    const SN: &str = "SN-D3";
    store
        .create_task(&new_task(3010, SN, "T_SEND_PERSON", &[101, 102, 103], true))
        .await
        .unwrap();
    let report = SyncReport {
        sn: SN.into(),
        taskid: 3010,
        persons: vec![103, 101, 102],
        failed_persons: vec![failure("102", "E_PERSON")],
        failed_faces: vec![failure("103", "E_FACE"), failure("102", "E_FACE2")],
        at: 8_000,
    };
    store.record_sync(&report).await.unwrap();
    let sync = |person_id, person_err: Option<&str>, face_err: Option<&str>, at| PersonSync {
        person_id,
        person_ok: person_err.is_none(),
        person_err: person_err.map(str::to_owned),
        face_ok: person_err.is_none() && face_err.is_none(),
        face_err: face_err.map(str::to_owned),
        updated_at: at,
    };
    assert_eq!(
        store.person_sync(SN).await.unwrap(),
        vec![
            sync(101, None, None, 8_000),
            sync(102, Some("E_PERSON"), Some("E_FACE2"), 8_000),
            sync(103, None, Some("E_FACE"), 8_000),
        ]
    );
    assert!(
        !store.person_sync(SN).await.unwrap()[1].face_ok,
        "a refused person has no face"
    );
    assert_eq!(
        store.task_failures(3010).await.unwrap(),
        (
            vec![failure("102", "E_PERSON")],
            vec![failure("102", "E_FACE2"), failure("103", "E_FACE")]
        )
    );
    assert_eq!(store.task_failures(9999).await.unwrap(), (vec![], vec![]));
    assert_eq!(store.person_sync("SN-D1").await.unwrap(), vec![]);

    // A later report updates the per-person state; a task's report replaces its failures.
    store
        .create_task(&new_task(3011, SN, "T_UPDATE_DEVICE_PERSON", &[102], false))
        .await
        .unwrap();
    store
        .record_sync(&SyncReport {
            taskid: 3011,
            persons: vec![102],
            failed_persons: vec![],
            failed_faces: vec![],
            at: 9_000,
            ..report.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store.person_sync(SN).await.unwrap()[1],
        sync(102, None, None, 9_000)
    );
    assert_eq!(store.task_failures(3011).await.unwrap(), (vec![], vec![]));
    assert_eq!(
        store.task_failures(3010).await.unwrap().0.len(),
        1,
        "kept per task"
    );
    store
        .record_sync(&SyncReport {
            failed_persons: vec![failure("101", "E_AGAIN")],
            failed_faces: vec![],
            at: 9_500,
            ..report.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store.task_failures(3010).await.unwrap(),
        (vec![failure("101", "E_AGAIN")], vec![])
    );

    // Finishing a task records the device's report with it; a report for a task that is no
    // longer open changes nothing.
    store
        .create_task(&new_task(3012, SN, "T_SEND_PERSON", &[104], false))
        .await
        .unwrap();
    let finished = SyncReport {
        taskid: 3012,
        persons: vec![104],
        failed_persons: vec![],
        failed_faces: vec![failure("104", "E_FACE")],
        at: 9_600,
        ..report.clone()
    };
    assert!(
        store
            .finish_task(3012, TaskState::Done, 9_600, Some(&finished))
            .await
            .unwrap()
    );
    assert_eq!(
        store.task_failures(3012).await.unwrap(),
        (vec![], vec![failure("104", "E_FACE")])
    );
    assert_eq!(
        store.person_sync(SN).await.unwrap()[3],
        sync(104, None, Some("E_FACE"), 9_600)
    );
    let late = SyncReport {
        failed_faces: vec![],
        at: 9_700,
        ..finished.clone()
    };
    assert!(
        !store
            .finish_task(3012, TaskState::Failed, 9_700, Some(&late))
            .await
            .unwrap()
    );
    assert_eq!(state_of(store, 3012).await, TaskState::Done);
    assert_eq!(
        store.task_failures(3012).await.unwrap(),
        (vec![], vec![failure("104", "E_FACE")]),
        "a report for a finished task is not recorded"
    );

    // Reconciliation pages: a resent page replaces the old one.
    store
        .create_task(&new_task(3020, SN, "T_POST_DEVICE_PERSON", &[], false))
        .await
        .unwrap();
    let page = |page, total_page, data: &str| ReconcilePage {
        taskid: 3020,
        page,
        total_page,
        data: data.into(),
    };
    store.put_reconcile_page(&page(2, 2, "[2]")).await.unwrap();
    store.put_reconcile_page(&page(1, 3, "[1]")).await.unwrap();
    store
        .put_reconcile_page(&page(1, 2, "[1bis]"))
        .await
        .unwrap();
    assert_eq!(
        store.reconcile_pages(3020).await.unwrap(),
        vec![page(1, 2, "[1bis]"), page(2, 2, "[2]")]
    );
    assert_eq!(store.reconcile_pages(9999).await.unwrap(), vec![]);
    let orphan = store
        .put_reconcile_page(&ReconcilePage {
            taskid: 9999,
            ..page(1, 1, "[]")
        })
        .await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
}

async fn attendance_batches(store: &SqlStore) {
    let mut first = record(1, "SN-D1", "1", 100_000, 1);
    first.bit_type = Some(3);
    first.photo_key = Some("seg/1:0:100".into());
    first.flags = vec!["late_upload".into(), "photo_rejected".into()];
    first.temperature = Some(36.6);
    first.extra = Some(r#"{"coordinate":{"longitude":120.1,"latitude":30.2}}"#.into());
    let second = record(2, "SN-D1", "2", 100_000, 1);
    let resent_in_batch = record(3, "SN-D1", "1", 100_000, 1);
    let other_type = record(4, "SN-D1", "1", 100_000, 2);

    let inserted = store
        .insert_attendance(vec![
            first.clone(),
            second.clone(),
            resent_in_batch,
            other_type,
        ])
        .await
        .unwrap();
    let new = |record_id| Inserted {
        record_id,
        duplicate: false,
    };
    let dup = |record_id| Inserted {
        record_id,
        duplicate: true,
    };
    assert_eq!(inserted, [new(1), new(2), dup(1), new(4)]);
    assert_eq!(
        store.attendance_record(1).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.attendance_record(3).await.unwrap(),
        None,
        "duplicate not stored"
    );

    // A later batch resending stored keys gets their ids back.
    let resent = record(5, "SN-D1", "2", 100_000, 1);
    let fresh = record(6, "SN-D2", "2", 100_000, 1);
    let inserted = store
        .insert_attendance(vec![resent.clone(), fresh.clone(), resent])
        .await
        .unwrap();
    assert_eq!(inserted, [dup(2), new(6), dup(2)]);
    assert_eq!(store.attendance_record(6).await.unwrap(), Some(fresh));
    assert_eq!(store.insert_attendance(vec![]).await.unwrap(), vec![]);

    // A record id reused under another key is refused, and the batch with it.
    let clash = store
        .insert_attendance(vec![
            record(7, "SN-D2", "7", 1, 1),
            record(1, "SN-D2", "9", 1, 1),
        ])
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    assert_eq!(
        store.attendance_record(7).await.unwrap(),
        None,
        "batch rolled back"
    );
}

/// Several writers with overlapping keys store each key exactly once, and every writer learns
/// the one stored record id of each key.
async fn concurrent_attendance(store: &SqlStore) {
    const WRITERS: i64 = 4;
    const KEYS: i64 = 60;
    let store = Arc::new(store.clone());
    let mut handles = Vec::new();
    for writer in 0..WRITERS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            // Each writer covers 30 keys, overlapping its neighbours, in its own order.
            let mut keys: Vec<i64> = (0..30).map(|k| (writer * 10 + k) % KEYS).collect();
            if writer % 2 == 1 {
                keys.reverse();
            }
            let mut seen = Vec::new();
            for chunk in keys.chunks(7) {
                let batch: Vec<NewAttendance> = chunk
                    .iter()
                    .map(|&k| NewAttendance {
                        project_id: None,
                        ..record(
                            10_000 + writer * 1_000 + k,
                            "SN-C",
                            &format!("c{k}"),
                            1_000 + k,
                            1,
                        )
                    })
                    .collect();
                let inserted = store
                    .insert_attendance(batch.clone())
                    .await
                    .expect("concurrent insert");
                seen.extend(chunk.iter().copied().zip(inserted));
            }
            seen
        }));
    }
    let mut ids_of_key: BTreeMap<i64, HashSet<i64>> = BTreeMap::new();
    let mut new_of_key: BTreeMap<i64, usize> = BTreeMap::new();
    for handle in handles {
        for (key, inserted) in handle.await.unwrap() {
            ids_of_key
                .entry(key)
                .or_default()
                .insert(inserted.record_id);
            *new_of_key.entry(key).or_default() += usize::from(!inserted.duplicate);
        }
    }
    let stored = store
        .attendance(&AttendanceQuery {
            sn: Some("SN-C".into()),
            limit: 1000,
            ..AttendanceQuery::default()
        })
        .await
        .unwrap();
    let covered = ids_of_key.len();
    assert_eq!(stored.len(), covered, "each key stored once");
    for r in &stored {
        let key: i64 = r.person_id.trim_start_matches('c').parse().unwrap();
        assert_eq!(ids_of_key[&key], HashSet::from([r.record_id]), "key {key}");
        assert_eq!(
            new_of_key[&key], 1,
            "key {key} inserted by exactly one writer"
        );
    }
}

async fn attendance_queries(store: &SqlStore) {
    // Stored so far outside SN-C: 1, 2, 4 (SN-D1, project 10) and 6 (SN-D2, project 10).
    let mut elsewhere = record(50, "SN-D9", "2", 200_000, 1);
    elsewhere.project_id = Some(11);
    let mut unbound = record(51, "SN-D9", "3", 300_000, 1);
    unbound.project_id = None;
    store
        .insert_attendance(vec![elsewhere, unbound])
        .await
        .unwrap();

    let ids = |query: AttendanceQuery| async move {
        store
            .attendance(&query)
            .await
            .unwrap()
            .iter()
            .map(|r| r.record_id)
            .collect::<Vec<_>>()
    };
    let q = |limit| AttendanceQuery {
        limit,
        ..AttendanceQuery::default()
    };
    assert_eq!(
        ids(AttendanceQuery {
            project_id: Some(10),
            ..q(100)
        })
        .await,
        [6, 4, 2, 1],
        "newest first"
    );
    assert_eq!(
        ids(AttendanceQuery {
            person_id: Some("2".into()),
            ..q(100)
        })
        .await,
        [50, 6, 2]
    );
    assert_eq!(
        ids(AttendanceQuery {
            sn: Some("SN-D1".into()),
            person_id: Some("1".into()),
            ..q(100)
        })
        .await,
        [4, 1]
    );
    assert_eq!(
        ids(AttendanceQuery {
            sn: Some("SN-D9".into()),
            from: Some(200_000),
            to: Some(300_000),
            ..q(100)
        })
        .await,
        [50],
        "from inclusive, to exclusive"
    );
    assert_eq!(
        ids(AttendanceQuery {
            from: Some(300_000),
            ..q(100)
        })
        .await,
        [51]
    );

    // Cursor paging walks every record once, newest first.
    let everything = ids(q(1000)).await;
    assert!(everything.windows(2).all(|w| w[0] > w[1]));
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = ids(AttendanceQuery {
            before_record_id: cursor,
            ..q(7)
        })
        .await;
        assert!(page.len() <= 7);
        let Some(&last) = page.last() else { break };
        paged.extend(page);
        cursor = Some(last);
    }
    assert_eq!(paged, everything);

    // The limit is clamped to 1..=1000.
    assert_eq!(ids(q(0)).await.len(), 1);
    assert_eq!(ids(q(1_000_000)).await.len(), everything.len());
}

async fn injected_faults(store: &SqlStore) {
    let faulty = FaultyStore::new(store.clone());
    assert_eq!(faulty.backend(), store.backend());
    faulty.fail_writes(true);
    let write = faulty
        .create_project(&project(90, None, CoordinateSystem::Gcj02))
        .await;
    assert!(matches!(write, Err(StoreError::Injected)), "{write:?}");
    assert!(
        faulty.vendor(1).await.unwrap().is_some(),
        "reads still work"
    );
    faulty.fail_all(true);
    assert!(matches!(faulty.ping().await, Err(StoreError::Injected)));
    assert!(matches!(faulty.vendor(1).await, Err(StoreError::Injected)));
    faulty.fail_all(false);
    faulty.fail_writes(false);
    faulty
        .create_project(&project(90, None, CoordinateSystem::Gcj02))
        .await
        .unwrap();
    assert!(store.project(90).await.unwrap().is_some());
}

/// Regression (sqlx 0.9.0, PostgreSQL): a record without a temperature followed by one with a
/// temperature in the same batch must both store (a NULL float was typed as 4 bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_then_present_temperature_stores_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let sqlite = SqlStore::connect(&url)
        .await
        .unwrap()
        .with_keys(rollcall_platform::store::test_db::test_keys());
    temperatures(&sqlite).await;
    // Set but empty is unset, as everywhere else (`test_db::postgres_server_url`).
    if let Some(base) = std::env::var(rollcall_platform::store::test_db::TEST_DATABASE_URL)
        .ok()
        .filter(|url| !url.is_empty())
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let schema = format!("story_{}_{nanos}", std::process::id());
        let pg = SqlStore::connect_with_schema(&base, &schema)
            .await
            .unwrap()
            .with_keys(rollcall_platform::store::test_db::test_keys());
        temperatures(&pg).await;
        pg.close().await;
        if let Ok(mut conn) = sqlx::AnyConnection::connect(&base).await {
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            let _ = conn.execute(sqlx::AssertSqlSafe(sql)).await;
        }
    }
}

async fn temperatures(store: &SqlStore) {
    let record = |id: i64, temperature: Option<f64>| NewAttendance {
        record_id: id,
        sn: "T-1".into(),
        person_id: id.to_string(),
        r#type: 1,
        bit_type: None,
        record_time: 1_000 + id,
        received_at: 2_000,
        project_id: None,
        direction: Direction::Both,
        photo_key: None,
        flags: Vec::new(),
        temperature,
        extra: None,
    };
    store
        .insert_attendance(vec![record(1, None), record(2, Some(36.5))])
        .await
        .expect("a missing then a present temperature");
    store
        .insert_attendance(vec![record(3, Some(36.7)), record(4, None)])
        .await
        .expect("a present then a missing temperature");
    let got = store.attendance_record(2).await.unwrap().unwrap();
    assert_eq!(got.temperature, Some(36.5));
    assert_eq!(
        store
            .attendance_record(4)
            .await
            .unwrap()
            .unwrap()
            .temperature,
        None
    );
}
