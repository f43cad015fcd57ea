//! `rollcall migrate-data`: an embedded installation, populated through the [`Store`] trait
//! with a row in every table, is copied into another database, and everything the platform
//! can read through the trait must read back equal on the target — which then keeps working
//! (new presence rows, duplicate detection, new tasks).
//!
//! SQLite → SQLite always runs, so the copy is exercised without PostgreSQL. SQLite →
//! PostgreSQL (and back, PostgreSQL → SQLite) runs when `ROLLCALL_TEST_DATABASE_URL` is set
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`), in a schema of its own; schemas left by
//! earlier runs are dropped once they are stale.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

use rollcall_platform::rules::geo::{CoordinateSystem, Fence, Point};
use rollcall_platform::store::copy::{self, CopyError, Options, Progress, Summary, TABLES};
use rollcall_platform::store::sql::SqlStore;
use rollcall_platform::store::test_db::TestDb;
use rollcall_platform::store::*;
use rollcall_protocol::ids::Secret;

// --- fixtures ------------------------------------------------------------------------------

const SN_FACE: &str = "MIG-FACE-01";
const SN_GATE: &str = "MIG-GATE-02";
const SN_LOOSE: &str = "MIG-LOOSE-03";
const DEVICES: [&str; 3] = [SN_FACE, SN_GATE, SN_LOOSE];
const TOKENS: [&str; 2] = ["tok-migrate-a", "tok-migrate-b"];
/// Access ids ever issued (the first was rotated away).
const ACCESS_IDS: [&str; 3] = ["AK-MIG-1", "AK-MIG-1-ROTATED", "AK-MIG-2"];
const WORKERS: i64 = 40;
const RECORDS: i64 = 1_200;
const FIRST_PERSON: i64 = 500_000;
const PROJECTS: [i64; 3] = [71, 72, 73];
const NOW: i64 = 1_750_000_000_000;

fn person(i: i64) -> i64 {
    FIRST_PERSON + i
}

fn idcard(i: i64) -> String {
    format!("33010219900101{i:04}")
}

fn secret(s: &str) -> Secret {
    Secret::new(s)
}

/// A populated embedded installation: every table holds rows.
async fn populate(store: &SqlStore) {
    // Vendors and credentials: one with an RSA key whose credentials were rotated.
    store
        .create_vendor(&Vendor {
            id: 1,
            name: "海康 测试".into(),
            access_id: ACCESS_IDS[0].into(),
            access_key: secret("key-1"),
            access_secret: secret("secret-1"),
            rsa_public_key: Some(
                "-----BEGIN PUBLIC KEY-----\nMIIB…\n-----END PUBLIC KEY-----\n".into(),
            ),
            created_at: NOW,
        })
        .await
        .expect("vendor 1");
    store
        .rotate_credentials(
            1,
            &Credential {
                access_id: ACCESS_IDS[1].into(),
                access_key: secret("key-1b"),
                access_secret: secret("secret-1b"),
                vendor_id: 1,
                revoked_at: None,
            },
        )
        .await
        .expect("rotate");
    store
        .create_vendor(&Vendor {
            id: 2,
            name: "Acme \"quoted\" 'name'".into(),
            access_id: ACCESS_IDS[2].into(),
            access_key: secret("key-2"),
            access_secret: secret("secret-2"),
            rsa_public_key: None,
            created_at: NOW + 1,
        })
        .await
        .expect("vendor 2");

    // Projects, with both fence shapes and none.
    let fences = [
        Some(Fence::Circle {
            center: Point {
                longitude: 120.155_071,
                latitude: 30.274_084,
            },
            radius_meters: 250.5,
        }),
        Some(Fence::Polygon {
            polygon: vec![[120.1, 30.2], [120.2, 30.2], [120.2, 30.3], [120.1, 30.3]],
        }),
        None,
    ];
    for (i, (id, fence)) in PROJECTS.into_iter().zip(fences).enumerate() {
        store
            .create_project(&Project {
                id,
                name: format!("杭州工地 {id}"),
                code: (i != 2).then(|| format!("ZJ-{id}")),
                address: (i == 0).then(|| "浙江省杭州市西湖区".to_owned()),
                coordinate_system: if i == 1 {
                    CoordinateSystem::Wgs84
                } else {
                    CoordinateSystem::Gcj02
                },
                fence,
                created_at: NOW + 10 + i as i64,
            })
            .await
            .expect("project");
    }

    // Devices: bound face terminal, a disabled out-gate, an unbound collector.
    let device = |sn: &str, vendor_id, project_id, kind, direction| Device {
        sn: sn.into(),
        vendor_id,
        project_id,
        kind,
        direction,
        name: Some(format!("闸机 {sn}")),
        enabled: true,
        firmware_version: None,
        ip: None,
        last_heartbeat_at: None,
        person_count: None,
        face_count: None,
        created_at: NOW + 20,
    };
    store
        .create_device(&device(
            SN_FACE,
            1,
            Some(PROJECTS[0]),
            DeviceKind::Face,
            Direction::In,
        ))
        .await
        .expect("device");
    store
        .create_device(&device(
            SN_GATE,
            2,
            Some(PROJECTS[1]),
            DeviceKind::Gate,
            Direction::Out,
        ))
        .await
        .expect("device");
    store
        .create_device(&device(
            SN_LOOSE,
            2,
            None,
            DeviceKind::Collector,
            Direction::Both,
        ))
        .await
        .expect("device");
    store
        .update_device(
            SN_GATE,
            &DevicePatch {
                enabled: Some(false),
                name: Some(None),
                ..DevicePatch::default()
            },
        )
        .await
        .expect("patch");
    store
        .set_device_counts(SN_FACE, 20, 19)
        .await
        .expect("counts");

    // Which node holds the face terminal's connection (taken over once).
    store
        .claim_session(SN_FACE, "1-0a0b0c0d", NOW)
        .await
        .expect("a session");
    store
        .claim_session(SN_FACE, "2-0a0b0c0d", NOW + 1)
        .await
        .expect("a takeover");

    // Presence: heartbeats and transitions.
    for round in 0..3 {
        let at = NOW + 1_000 * (round + 1);
        store
            .record_presence(
                &[PresenceUpdate {
                    sn: SN_FACE.into(),
                    last_heartbeat_at: at,
                    firmware_version: Some(format!("v1.{round}")),
                    ip: Some("192.0.2.7".into()),
                }],
                &[
                    PresenceTransition {
                        sn: SN_FACE.into(),
                        online: true,
                        at,
                    },
                    PresenceTransition {
                        sn: SN_GATE.into(),
                        online: round % 2 == 0,
                        at,
                    },
                ],
            )
            .await
            .expect("presence");
    }

    // Tokens.
    store
        .insert_token(TOKENS[0], SN_FACE, ACCESS_IDS[1], NOW)
        .await
        .expect("token");
    store
        .insert_token(TOKENS[1], SN_GATE, ACCESS_IDS[2], NOW)
        .await
        .expect("token");
    store
        .touch_tokens(&[(TOKENS[0].into(), NOW + 5_000)])
        .await
        .expect("touch");

    // Workers and rosters.
    for i in 0..WORKERS {
        store
            .create_worker(&Worker {
                person_id: person(i),
                idcard_no: idcard(i),
                name: format!("工人{i:03}"),
                gender: (i % 3 != 0).then(|| if i % 2 == 0 { "男" } else { "女" }.to_owned()),
                nation: (i % 4 == 0).then(|| "汉".to_owned()),
                address: (i % 5 == 0).then(|| format!("浙江省 {i} 号")),
                phone: (i % 2 == 0).then(|| format!("138{i:08}")),
                face_key: (i % 7 != 0).then(|| format!("faces/{}.jpg", person(i))),
                created_at: NOW + i,
                updated_at: NOW + 2 * i,
            })
            .await
            .expect("worker");
    }
    let first: Vec<i64> = (0..25).map(person).collect();
    let second: Vec<i64> = (15..WORKERS).map(person).collect();
    store
        .add_project_workers(PROJECTS[0], &first, NOW + 100)
        .await
        .expect("roster");
    store
        .add_project_workers(PROJECTS[1], &second, NOW + 100)
        .await
        .expect("roster");
    assert!(
        store
            .remove_project_worker(PROJECTS[0], person(3), NOW + 200)
            .await
            .expect("exit")
    );

    // Tasks: a finished send with a sync report, a merged pending update, a delivered delete,
    // a reconciliation with pages, a cancelled one.
    let task = |taskid, sn: &str, apicode: &str, param: &str, persons: Vec<i64>| NewTask {
        taskid,
        sn: sn.into(),
        apicode: apicode.into(),
        param: param.into(),
        persons,
        supersede: apicode == "T_SEND_PERSON",
        created_at: NOW + taskid,
    };
    let roster = store.roster(PROJECTS[0]).await.expect("roster");
    store
        .create_task(&task(9001, SN_FACE, "T_SEND_PERSON", "{}", roster.clone()))
        .await
        .expect("task");
    store
        .mark_delivered(&[9001], NOW + 9_100)
        .await
        .expect("deliver");
    store
        .record_sync(&SyncReport {
            sn: SN_FACE.into(),
            taskid: 9001,
            persons: roster.clone(),
            failed_persons: vec![SyncFailure {
                person_id: person(4).to_string(),
                err_code: "E_PERSON".into(),
            }],
            failed_faces: vec![
                SyncFailure {
                    person_id: person(5).to_string(),
                    err_code: "E_FACE".into(),
                },
                SyncFailure {
                    person_id: person(6).to_string(),
                    err_code: "E_FACE_BLUR".into(),
                },
            ],
            at: NOW + 9_200,
        })
        .await
        .expect("sync");
    assert!(
        store
            .finish_task(9001, TaskState::Done, NOW + 9_300, None)
            .await
            .expect("finish")
    );
    store
        .create_task(&task(
            9002,
            SN_FACE,
            "T_UPDATE_DEVICE_PERSON",
            "{}",
            vec![person(30)],
        ))
        .await
        .expect("task");
    assert_eq!(
        store
            .merge_into_pending_update(SN_FACE, &[person(31), person(32)])
            .await
            .expect("merge"),
        Some(9002)
    );
    let removed = vec![person(20), person(21)];
    store
        .create_task(&task(
            9003,
            SN_GATE,
            "T_DEL_DEVICE_PERSON",
            &format!("{{\"personIds\":[\"{}\",\"{}\"]}}", removed[0], removed[1]),
            removed,
        ))
        .await
        .expect("task");
    store
        .mark_delivered(&[9003], NOW + 9_400)
        .await
        .expect("deliver");
    store
        .create_task(&task(9004, SN_GATE, "T_POST_DEVICE_PERSON", "{}", vec![]))
        .await
        .expect("task");
    for page in 1..=2 {
        store
            .put_reconcile_page(&ReconcilePage {
                taskid: 9004,
                page,
                total_page: 2,
                data: format!(
                    "[{{\"personId\":\"{}\",\"name\":\"工人\"}}]",
                    person(page.into())
                ),
            })
            .await
            .expect("page");
    }
    store
        .create_task(&task(
            9005,
            SN_LOOSE,
            "T_UPGRADE_FIRMWARE",
            "{\"url\":\"http://x/fw.bin\"}",
            vec![],
        ))
        .await
        .expect("task");
    assert!(
        store
            .finish_task(9005, TaskState::Cancelled, NOW + 9_500, None)
            .await
            .expect("cancel")
    );

    // Attendance with every optional member, in group-commit batches.
    let records: Vec<NewAttendance> = (0..RECORDS)
        .map(|i| {
            let mut flags = Vec::new();
            if i % 10 == 0 {
                flags.push("unknown_person".to_owned());
            }
            if i % 15 == 0 {
                flags.push("outside_fence".to_owned());
            }
            NewAttendance {
                record_id: 7_000_000 + i,
                sn: DEVICES[(i % 3) as usize].into(),
                person_id: person(i % WORKERS).to_string(),
                r#type: (i % 4) as u32,
                bit_type: (i % 2 == 0).then_some((i % 3) as u32),
                record_time: NOW + 60_000 * i,
                received_at: NOW + 60_000 * i + 350,
                project_id: (i % 3 != 2).then_some(PROJECTS[(i % 2) as usize]),
                direction: [Direction::In, Direction::Out, Direction::Both][(i % 3) as usize],
                photo_key: (i % 5 != 0).then(|| format!("s/000001/{}/{}", i * 1000, 900 + i)),
                flags,
                temperature: (i % 3 == 0).then_some(36.0 + (i % 10) as f64 / 10.0),
                extra: (i % 6 == 0).then(|| {
                    format!("{{\"coordinate\":{{\"longitude\":120.1,\"latitude\":30.{i}}}}}")
                }),
            }
        })
        .collect();
    // The second batch passes the mark of 500 and moves the queue into the per-person index;
    // the third stays queued: both of its tables hold rows.
    let indexed = store.clone().with_person_index_batch(500);
    for batch in records.chunks(400) {
        let inserted = indexed
            .insert_attendance(batch.to_vec())
            .await
            .expect("attendance");
        assert!(inserted.iter().all(|r| !r.duplicate));
    }
    populate_console(store).await;
    populate_uplink(store).await;
}

/// The uplink's and webhooks' tables: settings, outbox rows (a team accepted with its
/// `teamSysNo`), a worker's national data, a dictionary entry, an endpoint and a delivery.
async fn populate_uplink(store: &SqlStore) {
    use rollcall_platform::store::console::Team;
    store
        .create_webhook(&WebhookEndpoint {
            id: 900,
            url: "http://127.0.0.1:9/hook".into(),
            secret: secret("hook-secret"),
            events: vec!["*".into()],
            enabled: true,
            created_at: NOW,
            failures: 0,
            retry_at: 0,
        })
        .await
        .expect("a webhook");
    store
        .put_uplink_config(
            &UplinkConfig {
                project_id: PROJECTS[1],
                endpoint: "http://127.0.0.1:9/open.api".into(),
                appid: "330100000000000001".into(),
                appsecret: secret("0123456789abcdef0123456789abcdef"),
                corp_code: "c".into(),
                corp_name: "n".into(),
                enabled: true,
                updated_at: NOW,
                last_success_at: None,
                last_error: None,
                failures: 0,
                retry_at: 0,
            },
            NOW,
        )
        .await
        .expect("uplink settings");
    store
        .create_team(&Team {
            id: 77,
            project_id: PROJECTS[1],
            name: "上报班".into(),
            leader: None,
            created_at: NOW,
        })
        .await
        .expect("a team");
    let items = store.uplink_items_of(UplinkKind::Team, 77).await.unwrap();
    store
        .uplink_settle(
            &[items[0].id],
            &UplinkOutcome::Accepted,
            NOW,
            Some((77, 1001)),
        )
        .await
        .unwrap();
    store
        .put_worker_national(&WorkerNational {
            person_id: person(1),
            grant_org: Some("杭州市公安局".into()),
            id_valid_to: Some("长期".into()),
            updated_at: NOW,
            ..WorkerNational::default()
        })
        .await
        .unwrap();
    store
        .put_dictionary_entry(&DictionaryEntry {
            kind: "work_type".into(),
            code: "999".into(),
            name: "测量放线工".into(),
        })
        .await
        .unwrap();
    // A presence transition: a webhook delivery.
    store
        .record_presence(
            &[],
            &[PresenceTransition {
                sn: SN_LOOSE.into(),
                online: true,
                at: NOW,
            }],
        )
        .await
        .unwrap();
}

/// The console's tables: users with projects, a session, a token, audit lines, a team with
/// members, the blacklist and a firmware package.
async fn populate_console(store: &SqlStore) {
    use rollcall_platform::store::console::*;
    for (id, role) in [(1, Role::Administrator), (2, Role::ProjectManager)] {
        store
            .create_user(&User {
                id,
                username: format!("user{id}"),
                display_name: format!("用户{id}"),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                role,
                disabled: id == 3,
                created_at: NOW,
            })
            .await
            .expect("user");
    }
    store
        .set_user_projects(2, &PROJECTS[..2])
        .await
        .expect("user projects");
    store
        .create_session(&SessionRow {
            token_hash: "a".repeat(64),
            user_id: 2,
            csrf: "c".repeat(64),
            created_at: NOW,
            expires_at: NOW + 1000,
        })
        .await
        .expect("session");
    store
        .create_api_token(&ApiTokenRow {
            id: 1,
            user_id: 1,
            name: "对接".into(),
            token_hash: "b".repeat(64),
            created_at: NOW,
            last_used_at: Some(NOW + 5),
            revoked_at: None,
        })
        .await
        .expect("api token");
    for id in 1..=3 {
        store
            .append_audit(&AuditEntry {
                id,
                at: NOW + id,
                actor: "user1".into(),
                user_id: Some(1),
                action: "POST /api/v1/workers".into(),
                target: "/api/v1/workers".into(),
                detail: (id == 2).then(|| "读取工人列表 3 人".to_owned()),
                ip: Some("127.0.0.1".into()),
            })
            .await
            .expect("audit");
    }
    store
        .create_team(&Team {
            id: 1,
            project_id: PROJECTS[0],
            name: "钢筋班".into(),
            leader: Some("王班长".into()),
            created_at: NOW,
        })
        .await
        .expect("team");
    let member = store.members(PROJECTS[0]).await.expect("members")[0].person_id;
    assert!(
        store
            .set_member_details(PROJECTS[0], member, Some(1), Some("钢筋工"))
            .await
            .expect("member")
    );
    // A worker active in no project, so that no roster of the story changes.
    let mut loner = None;
    for i in 0..WORKERS {
        let memberships = store.memberships(person(i)).await.expect("memberships");
        if memberships.iter().all(|m| m.status != "active") {
            loner = Some(person(i));
            break;
        }
    }
    store
        .blacklist_worker(&BlacklistEntry {
            person_id: loner.expect("a worker active in no project"),
            reason: "违规".into(),
            created_by: "user1".into(),
            created_at: NOW,
        })
        .await
        .expect("blacklist");
    store
        .create_firmware(&Firmware {
            id: 1,
            vendor_id: 1,
            kind: "face".into(),
            version: "2.0.1".into(),
            file_key: "firmware/1/fw.bin".into(),
            sha256: "d".repeat(64),
            size: 1024,
            notes: None,
            created_at: NOW,
        })
        .await
        .expect("firmware");
}

/// Everything the platform can read through the [`Store`] trait.
#[derive(Debug, PartialEq)]
struct Snapshot {
    vendors: Vec<Vendor>,
    credentials: Vec<Option<Credential>>,
    tokens: Vec<Option<(String, String, i64)>>,
    projects: Vec<Project>,
    devices: Vec<Device>,
    devices_of_projects: Vec<Vec<Device>>,
    presence: Vec<Vec<PresenceTransition>>,
    workers: Vec<Worker>,
    worker_pages: Vec<Vec<Worker>>,
    by_idcard: Vec<Option<Worker>>,
    by_ids: Vec<Worker>,
    rosters: Vec<Vec<i64>>,
    on_roster: Vec<bool>,
    tasks: Vec<Vec<Task>>,
    due: Vec<Vec<Task>>,
    task_persons: Vec<(Vec<i64>, u32)>,
    failures: Vec<(Vec<SyncFailure>, Vec<SyncFailure>)>,
    person_sync: Vec<Vec<PersonSync>>,
    reconcile: Vec<ReconcilePage>,
    open_tasks: i64,
    attendance_pages: Vec<Vec<Attendance>>,
    attendance_filtered: Vec<Vec<Attendance>>,
    attendance_records: Vec<Option<Attendance>>,
}

async fn snapshot(store: &SqlStore) -> Snapshot {
    let mut credentials = Vec::new();
    for id in ACCESS_IDS {
        credentials.push(store.credential(id).await.expect("credential"));
    }
    let mut tokens = Vec::new();
    for t in TOKENS {
        tokens.push(store.token(t).await.expect("token"));
    }
    let mut devices_of_projects = Vec::new();
    for p in PROJECTS {
        devices_of_projects.push(store.devices(Some(p)).await.expect("devices"));
    }
    let mut presence = Vec::new();
    let mut tasks = Vec::new();
    let mut due = Vec::new();
    let mut person_sync = Vec::new();
    for sn in DEVICES {
        presence.push(store.presence_history(sn, 1000).await.expect("presence"));
        tasks.push(store.tasks_of_device(sn, 1000).await.expect("tasks"));
        due.push(store.due_tasks(sn, i64::MAX, 100).await.expect("due"));
        person_sync.push(store.person_sync(sn).await.expect("sync"));
    }
    let mut worker_pages = Vec::new();
    let mut after = None;
    loop {
        let page = store.workers(after, 7).await.expect("workers");
        let Some(last) = page.last() else { break };
        after = Some(last.person_id);
        worker_pages.push(page);
    }
    let mut by_idcard = Vec::new();
    for i in [0, 17, WORKERS - 1, WORKERS + 5] {
        by_idcard.push(store.worker_by_idcard(&idcard(i)).await.expect("idcard"));
    }
    let mut rosters = Vec::new();
    let mut on_roster = Vec::new();
    for p in PROJECTS {
        rosters.push(store.roster(p).await.expect("roster"));
        for i in [0, 3, 20, 39] {
            on_roster.push(store.on_roster(p, person(i)).await.expect("on roster"));
        }
    }
    let mut task_persons = Vec::new();
    let mut failures = Vec::new();
    for taskid in 9001..=9006 {
        for offset in [0, 7, 14, 21] {
            task_persons.push(
                store
                    .task_persons(taskid, offset, 7)
                    .await
                    .expect("task persons"),
            );
        }
        failures.push(store.task_failures(taskid).await.expect("failures"));
    }
    let mut attendance_pages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .attendance(&AttendanceQuery {
                before_record_id: before,
                limit: 250,
                ..AttendanceQuery::default()
            })
            .await
            .expect("attendance");
        let Some(last) = page.last() else { break };
        before = Some(last.record_id);
        attendance_pages.push(page);
    }
    let filters = [
        AttendanceQuery {
            project_id: Some(PROJECTS[0]),
            limit: 1000,
            ..AttendanceQuery::default()
        },
        AttendanceQuery {
            person_id: Some(person(7).to_string()),
            limit: 1000,
            ..AttendanceQuery::default()
        },
        AttendanceQuery {
            sn: Some(SN_GATE.into()),
            from: Some(NOW + 60_000 * 100),
            to: Some(NOW + 60_000 * 500),
            limit: 1000,
            ..AttendanceQuery::default()
        },
    ];
    let mut attendance_filtered = Vec::new();
    for q in &filters {
        attendance_filtered.push(store.attendance(q).await.expect("attendance"));
    }
    let mut attendance_records = Vec::new();
    for id in [7_000_000, 7_000_006, 7_000_000 + RECORDS - 1, 1] {
        attendance_records.push(store.attendance_record(id).await.expect("record"));
    }
    Snapshot {
        vendors: store.vendors().await.expect("vendors"),
        credentials,
        tokens,
        projects: store.projects().await.expect("projects"),
        devices: store.devices(None).await.expect("devices"),
        devices_of_projects,
        presence,
        workers: store.workers(None, 10_000).await.expect("workers"),
        worker_pages,
        by_idcard,
        by_ids: store
            .workers_by_ids(&[person(39), person(2), person(999)])
            .await
            .expect("by ids"),
        rosters,
        on_roster,
        tasks,
        due,
        task_persons,
        failures,
        person_sync,
        reconcile: store.reconcile_pages(9004).await.expect("pages"),
        open_tasks: store.open_task_count().await.expect("open tasks"),
        attendance_pages,
        attendance_filtered,
        attendance_records,
    }
}

/// The snapshot holds what [`populate`] stored (so equality on the target means something).
fn check_populated(s: &Snapshot) {
    assert_eq!(s.vendors.len(), 2);
    assert_eq!(s.vendors[0].access_id, ACCESS_IDS[1], "rotated");
    assert!(
        s.credentials[0]
            .as_ref()
            .is_some_and(|c| c.revoked_at.is_some()),
        "the rotated-away credential is revoked"
    );
    assert!(
        s.credentials[1]
            .as_ref()
            .is_some_and(|c| c.revoked_at.is_none())
    );
    assert_eq!(s.projects.len(), 3);
    assert!(s.projects[0].fence.is_some() && s.projects[1].fence.is_some());
    assert_eq!(s.devices.len(), 3);
    assert_eq!(s.presence[0].len(), 3);
    assert_eq!(s.workers.len(), WORKERS as usize);
    assert_eq!(s.rosters[0].len(), 24, "one of 25 exited");
    assert_eq!(s.tasks[0].len(), 2);
    assert_eq!(
        s.tasks[0][1].state,
        TaskState::Done,
        "oldest first is the send"
    );
    assert_eq!(
        s.task_persons[4].0,
        vec![person(30), person(31), person(32)]
    );
    assert_eq!(s.failures[0].0.len(), 1);
    assert_eq!(s.failures[0].1.len(), 2);
    assert_eq!(s.person_sync[0].len(), 24);
    assert_eq!(s.reconcile.len(), 2);
    assert_eq!(s.open_tasks, 3);
    let total: usize = s.attendance_pages.iter().map(Vec::len).sum();
    assert_eq!(total, RECORDS as usize);
    assert!(s.attendance_filtered.iter().all(|r| !r.is_empty()));
    assert!(s.attendance_records[0].is_some() && s.attendance_records[3].is_none());
}

/// The summary lists every table, each non-empty, with equal counts on both sides.
fn check_summary(summary: &Summary) {
    let names: Vec<&str> = summary.tables.iter().map(|t| t.table).collect();
    let expected: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    assert_eq!(names, expected);
    for t in &summary.tables {
        assert!(t.source_rows > 0, "{} holds rows", t.table);
        assert_eq!(t.source_rows, t.target_rows, "{}", t.table);
    }
    let attendance = summary
        .tables
        .iter()
        .find(|t| t.table == "attendance")
        .expect("attendance");
    assert_eq!(attendance.target_rows, RECORDS as u64);
}

/// The copy keeps working as a platform database: numbering continues, keys still dedupe.
async fn check_writable(store: &SqlStore) {
    let at = NOW + 99_000;
    store
        .record_presence(
            &[],
            &[PresenceTransition {
                sn: SN_LOOSE.into(),
                online: true,
                at,
            }],
        )
        .await
        .expect("a new transition gets a fresh id");
    assert_eq!(
        store.presence_history(SN_LOOSE, 1).await.expect("history")[0].at,
        at
    );
    let again = store
        .attendance_record(7_000_006)
        .await
        .expect("record")
        .expect("copied");
    let resent = NewAttendance {
        record_id: 8_000_000,
        ..again
    };
    let inserted = store.insert_attendance(vec![resent]).await.expect("resend");
    assert!(inserted[0].duplicate, "the idempotency key survived");
    assert_eq!(inserted[0].record_id, 7_000_006);
    let err = store
        .create_worker(&Worker {
            person_id: 1,
            idcard_no: idcard(0),
            name: "dup".into(),
            gender: None,
            nation: None,
            address: None,
            phone: None,
            face_key: None,
            created_at: 0,
            updated_at: 0,
        })
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    assert_eq!(
        store
            .merge_into_pending_update(SN_FACE, &[person(33)])
            .await
            .expect("merge"),
        Some(9002),
        "the pending update is still the one to merge into"
    );
}

fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}", dir.path().join(name).display())
}

/// Collects progress events into a log line per event.
fn recorder(log: &mut Vec<String>) -> impl FnMut(Progress<'_>) + Send + '_ {
    move |p| {
        log.push(match p {
            Progress::Cleared { rows } => format!("cleared {rows}"),
            Progress::Started { table, rows } => format!("start {table} {rows}"),
            Progress::Copied { table, copied, .. } => format!("copied {table} {copied}"),
            Progress::Verified(t) => format!("verified {} {}", t.table, t.target_rows),
        })
    }
}

// --- SQLite → SQLite ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_sqlite_copies_every_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let from_url = sqlite_url(&dir, "embedded.db");
    let to_url = sqlite_url(&dir, "copy.db");
    let source = SqlStore::connect(&from_url)
        .await
        .expect("source")
        .with_keys(test_db::test_keys());
    populate(&source).await;
    let before = snapshot(&source).await;
    check_populated(&before);
    source.close().await;

    let mut log = Vec::new();
    let options = Options {
        force: false,
        batch_rows: 100,
    };
    let summary = copy::copy_database(&from_url, &to_url, &options, &mut recorder(&mut log))
        .await
        .expect("migrate");
    check_summary(&summary);
    assert_eq!(
        (summary.source_backend, summary.target_backend),
        ("sqlite", "sqlite")
    );
    assert_eq!(summary.cleared_rows, 0);
    assert!(log.contains(&"copied attendance 100".to_owned()), "batches");
    assert!(log.contains(&format!("copied attendance {RECORDS}")));
    assert_eq!(
        log.iter().filter(|l| l.starts_with("verified")).count(),
        TABLES.len()
    );

    let target = SqlStore::connect(&to_url)
        .await
        .expect("target")
        .with_keys(test_db::test_keys());
    assert_eq!(snapshot(&target).await, before);
    check_writable(&target).await;
    target.close().await;

    // The source is untouched.
    let source = SqlStore::connect(&from_url)
        .await
        .expect("source")
        .with_keys(test_db::test_keys());
    assert_eq!(snapshot(&source).await, before);
    source.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_empty_target_is_refused_unless_forced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let from_url = sqlite_url(&dir, "embedded.db");
    let to_url = sqlite_url(&dir, "copy.db");
    let source = SqlStore::connect(&from_url)
        .await
        .expect("source")
        .with_keys(test_db::test_keys());
    populate(&source).await;
    let before = snapshot(&source).await;
    source.close().await;
    let options = Options::default();
    copy::copy_database(&from_url, &to_url, &options, &mut |_| {})
        .await
        .expect("first copy");

    // Again: the target is not empty.
    let err = copy::copy_database(&from_url, &to_url, &options, &mut |_| {})
        .await
        .expect_err("refused");
    match &err {
        CopyError::TargetNotEmpty(tables) => {
            assert!(tables.contains(&("attendance".to_owned(), RECORDS as u64)));
        }
        other => panic!("expected TargetNotEmpty, got {other:?}"),
    }
    assert!(err.to_string().contains("not empty"), "{err}");

    // Forced: the target's rows are replaced by the source's.
    let target = SqlStore::connect(&to_url)
        .await
        .expect("target")
        .with_keys(test_db::test_keys());
    check_writable(&target).await; // the target now differs from the source
    target.close().await;
    let forced = Options {
        force: true,
        ..options
    };
    let mut log = Vec::new();
    let summary = copy::copy_database(&from_url, &to_url, &forced, &mut recorder(&mut log))
        .await
        .expect("forced copy");
    assert!(summary.cleared_rows > RECORDS as u64);
    assert!(log[0].starts_with("cleared"), "{log:?}");
    check_summary(&summary);
    let target = SqlStore::connect(&to_url)
        .await
        .expect("target")
        .with_keys(test_db::test_keys());
    assert_eq!(snapshot(&target).await, before);
    target.close().await;

    // Never into itself, even forced and spelled differently.
    let err = copy::copy_database(&from_url, &from_url, &forced, &mut |_| {})
        .await
        .expect_err("same URL");
    assert!(matches!(err, CopyError::SameDatabase), "{err:?}");
    let alias = format!("{from_url}?mode=rw");
    let err = copy::copy_database(&from_url, &alias, &forced, &mut |_| {})
        .await
        .expect_err("same file");
    assert!(matches!(err, CopyError::SameDatabase), "{err:?}");
    let source = SqlStore::connect(&from_url)
        .await
        .expect("source")
        .with_keys(test_db::test_keys());
    assert_eq!(snapshot(&source).await, before, "the source is intact");
    source.close().await;

    // A missing source file is an error, not an empty installation.
    let err = copy::copy_database(
        &sqlite_url(&dir, "missing.db"),
        &sqlite_url(&dir, "other.db"),
        &options,
        &mut |_| {},
    )
    .await
    .expect_err("missing source");
    assert!(matches!(err, CopyError::SourceMissing(_)), "{err:?}");
    assert!(!dir.path().join("missing.db").exists());
}

// --- SQLite → PostgreSQL → SQLite ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The target: a fresh schema (its URL names it, as an operator would), created here.
    let db = TestDb::postgres("migrate");
    db.open_postgres().await.close().await;
    let from_url = sqlite_url(&dir, "embedded.db");
    let source = SqlStore::connect(&from_url)
        .await
        .expect("source")
        .with_keys(test_db::test_keys());
    populate(&source).await;
    let before = snapshot(&source).await;
    check_populated(&before);
    source.close().await;

    let to_url = db.url.clone();
    let options = Options {
        force: false,
        batch_rows: 100,
    };
    let summary = copy::copy_database(&from_url, &to_url, &options, &mut |_| {})
        .await
        .expect("migrate to PostgreSQL");
    check_summary(&summary);
    assert_eq!(summary.target_backend, "postgres");

    let target = SqlStore::connect(&to_url)
        .await
        .expect("target")
        .with_keys(test_db::test_keys());
    assert_eq!(snapshot(&target).await, before);

    // And back again: PostgreSQL as the source.
    let back = SqlStore::connect(&sqlite_url(&dir, "back.db"))
        .await
        .expect("back")
        .with_keys(test_db::test_keys());
    let summary = copy::copy_stores(&target, &back, &options, &mut |_| {})
        .await
        .expect("migrate back");
    check_summary(&summary);
    assert_eq!(summary.source_backend, "postgres");
    assert_eq!(snapshot(&back).await, before);
    back.close().await;

    check_writable(&target).await;
    target.close().await;
}
