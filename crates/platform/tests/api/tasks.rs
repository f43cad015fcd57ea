//! Tasks (ZJ-CONN-07, ZJ-CONN-08 commands; ZJ-TASK-03 to ZJ-TASK-09): push on creation, binding and
//! superseding, the heartbeat's list, T_GET_TASKS, status reports, merging, redelivery.

use rollcall_protocol::params::TaskItem;
use rollcall_protocol::{ApiCode, ErrorCode};
use serde_json::json;

use crate::helpers::*;

fn ids(tasks: &[TaskInfo]) -> Vec<String> {
    tasks.iter().map(|t| t.taskid.clone()).collect()
}

fn kinds(tasks: &[TaskInfo]) -> Vec<(&str, &str)> {
    tasks
        .iter()
        .map(|t| (t.apicode.as_str(), t.status.as_str()))
        .collect()
}

/// The person ids a T_SEND_PERSON / T_UPDATE_DEVICE_PERSON carries, read as the device does.
async fn persons_of(dev: &HttpDevice, api: ApiCode, taskid: &str) -> Vec<i64> {
    let page = dev.page(api, taskid, 1, Some(100)).await;
    assert!(page.total_page <= 1);
    page.data
        .iter()
        .map(|p| p.person_id.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn enrolling_a_worker_pushes_a_signed_update_command_to_the_connected_device() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("SN-PUSH", &vendor, Some(&project))
        .await;
    let mut dev = app.device(&vendor, "SN-PUSH").await;
    dev.auth().await;
    // Binding made a roster task; it is pushed as soon as the connection binds.
    let roster = dev.expect_command().await;
    assert_eq!(roster.apicode, ApiCode::SendPerson);

    let worker = app.worker("王五").await;
    app.assign(&project, &[worker]).await;

    let cmd = dev.expect_command().await;
    assert_eq!(cmd.apicode, ApiCode::UpdateDevicePerson);
    assert_eq!(cmd.taskid.len(), 19, "a 19-digit task id");
    assert!(rollcall_protocol::time::Timestamp::parse_wire(&cmd.time_stamp).is_ok());
    let task = app.task_info("SN-PUSH", &cmd.taskid).await;
    assert_eq!(task.status, "delivered", "pushed is delivered");
    assert!(task.delivered_at.is_some());
    // The device runs it as if it had pulled it.
    let mut http = app.http_device(&vendor, "SN-PUSH");
    http.id.token = dev.id.token.clone();
    let page = http
        .page(ApiCode::UpdateDevicePerson, &cmd.taskid, 1, None)
        .await;
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].person_id, worker.to_string());
    assert_eq!(page.data[0].name, "王五");
}

#[tokio::test]
async fn a_task_made_for_a_disconnected_device_stays_pending() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("SN-GONE", &vendor, Some(&project))
        .await;
    {
        let mut dev = app.device(&vendor, "SN-GONE").await;
        dev.auth().await;
        dev.expect_command().await;
    }
    eventually("the closed connection to be forgotten", || async {
        (!app.state().registry.is_connected("SN-GONE")).then_some(())
    })
    .await;

    let worker = app.worker("离线").await;
    app.assign(&project, &[worker]).await;

    let tasks = app.tasks_of("SN-GONE").await;
    assert_eq!(tasks.last().unwrap().apicode, "T_UPDATE_DEVICE_PERSON");
    assert_eq!(tasks.last().unwrap().status, "pending");
}

#[tokio::test]
async fn binding_and_unbinding_a_connected_device_push_send_and_clear_commands() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    let mut dev = app.device(&vendor, "SN-BIND-PUSH").await;
    dev.auth().await;

    app.bind("SN-BIND-PUSH", Some(&project)).await;
    let send = dev.expect_command().await;
    app.bind("SN-BIND-PUSH", None).await;
    let clear = dev.expect_command().await;

    assert_eq!(send.apicode, ApiCode::SendPerson);
    assert_eq!(clear.apicode, ApiCode::ClearDevicePerson);
    assert_eq!(
        app.task_info("SN-BIND-PUSH", &send.taskid).await.status,
        "cancelled"
    );
    assert_eq!(
        app.task_info("SN-BIND-PUSH", &clear.taskid).await.status,
        "delivered"
    );
}

/// ZJ-TASK-06 (superseding), ZJ-TASK-07 (binding makes a T_SEND_PERSON).
#[tokio::test]
async fn binding_makes_a_t_send_person_that_supersedes_the_older_person_tasks() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let first = app.project(None).await;
    let second = app.project(None).await;
    let w1 = app.worker("甲").await;
    let w2 = app.worker("乙").await;
    let w3 = app.worker("丙").await;
    app.assign(&first, &[w1]).await;
    app.assign(&second, &[w3]).await;
    let mut dev = app.http_device(&vendor, "SN-REBIND");
    dev.auth().await;

    app.bind("SN-REBIND", Some(&first)).await;
    app.assign(&first, &[w2]).await;
    app.bind("SN-REBIND", Some(&second)).await;

    let tasks = app.tasks_of("SN-REBIND").await;
    assert_eq!(
        kinds(&tasks),
        vec![
            ("T_SEND_PERSON", "cancelled"),
            ("T_UPDATE_DEVICE_PERSON", "cancelled"),
            ("T_SEND_PERSON", "pending"),
        ]
    );
    assert_eq!(dev.heartbeat().await, vec![tasks[2].taskid.clone()]);
    // The new roster is the second project's, whole.
    assert_eq!(
        persons_of(&dev, ApiCode::SendPerson, &tasks[2].taskid).await,
        vec![w3]
    );
    // A cancelled task is not handed out, and its late report changes nothing.
    assert!(
        dev.get_tasks(&[tasks[0].taskid.clone()])
            .await
            .tasks
            .is_empty()
    );
    dev.update_status(&json!({
        "task": [{"taskid": tasks[0].taskid, "status": 1}],
        "personCount": 1, "faceCount": 1
    }))
    .await;
    assert_eq!(
        app.task_info("SN-REBIND", &tasks[0].taskid).await.status,
        "cancelled"
    );
}

#[tokio::test]
async fn the_heartbeat_lists_pending_tasks_oldest_first() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("SN-DUE", &vendor, Some(&project)).await;
    let mut dev = app.http_device(&vendor, "SN-DUE");
    dev.auth().await;
    let w = app.worker("丁").await;
    app.assign(&project, &[w]).await;
    app.task("SN-DUE", ApiCode::PostDevicePerson, None).await;

    let listed = dev.heartbeat().await;

    let tasks = app.tasks_of("SN-DUE").await;
    assert_eq!(
        kinds(&tasks),
        vec![
            ("T_SEND_PERSON", "pending"),
            ("T_UPDATE_DEVICE_PERSON", "pending"),
            ("T_POST_DEVICE_PERSON", "pending"),
        ]
    );
    assert_eq!(listed, ids(&tasks), "oldest first");
    assert!(tasks.windows(2).all(|w| w[0].created_at <= w[1].created_at));
}

/// ZJ-PERSON-01; ZJ-TASK-02: a returned task goes from pending to delivered.
#[tokio::test]
async fn t_get_tasks_returns_only_this_devices_open_tasks_and_marks_them_delivered() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("SN-GET", &vendor, Some(&project)).await;
    app.register_device("SN-GET-OTHER", &vendor, Some(&project))
        .await;
    let other = app.tasks_of("SN-GET-OTHER").await[0].clone();
    let mut dev = app.http_device(&vendor, "SN-GET");
    dev.auth().await;
    let roster = app.tasks_of("SN-GET").await[0].clone();
    let reconcile = app
        .task(
            "SN-GET",
            ApiCode::PostDevicePerson,
            Some(json!({"excludeFields": "img"})),
        )
        .await;
    // The roster task is finished by the device.
    dev.get_tasks(std::slice::from_ref(&roster.taskid)).await;
    dev.update_status(&json!({
        "task": [{"taskid": roster.taskid, "status": 1}], "personCount": 0, "faceCount": 0
    }))
    .await;
    assert_eq!(app.task_info("SN-GET", &roster.taskid).await.status, "done");

    let got = dev
        .get_tasks(&[
            reconcile.taskid.clone(),
            roster.taskid.clone(),
            other.taskid.clone(),
            "1234567890123456789".into(),
            "junk".into(),
        ])
        .await;

    assert_eq!(
        got.tasks,
        vec![TaskItem {
            taskid: reconcile.taskid.clone(),
            apicode: "T_POST_DEVICE_PERSON".into(),
            param: r#"{"excludeFields":"img"}"#.into(),
        }]
    );
    let after = app.task_info("SN-GET", &reconcile.taskid).await;
    assert_eq!(after.param, json!({"excludeFields": "img"}));
    assert_eq!(after.status, "delivered");
    assert!(after.delivered_at.is_some());
    assert_eq!(
        dev.heartbeat().await,
        Vec::<String>::new(),
        "delivered, not due"
    );
    assert_eq!(
        app.task_info("SN-GET-OTHER", &other.taskid).await.status,
        "pending"
    );
}

#[tokio::test]
async fn a_task_delivered_without_a_status_is_listed_again_after_redelivery_secs() {
    let app = TestApp::spawn_with(|s| s.redelivery_secs = 1).await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-REDELIVER");
    dev.auth().await;
    let task = app
        .task("SN-REDELIVER", ApiCode::PostDevicePerson, None)
        .await;
    assert_eq!(dev.heartbeat().await, vec![task.taskid.clone()]);
    dev.get_tasks(std::slice::from_ref(&task.taskid)).await;
    assert_eq!(dev.heartbeat().await, Vec::<String>::new());

    let listed = eventually("the task to be due again", || async {
        let l = dev.heartbeat().await;
        (!l.is_empty()).then_some(l)
    })
    .await;

    assert_eq!(listed, vec![task.taskid]);
}

#[tokio::test]
async fn due_tasks_are_pushed_again_when_the_device_reconnects() {
    let app = TestApp::spawn_with(|s| s.redelivery_secs = 0).await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("SN-REPUSH", &vendor, Some(&project))
        .await;
    let mut first = app.device(&vendor, "SN-REPUSH").await;
    first.auth().await;
    let pushed = first.expect_command().await;
    let http = app.http_device_as(first.id.clone());
    drop(first);
    // Delivered without a status, and redelivery_secs = 0: due again at once.
    eventually("the pushed task to be due again", || async {
        http.heartbeat()
            .await
            .contains(&pushed.taskid)
            .then_some(())
    })
    .await;

    let mut second = app.device(&vendor, "SN-REPUSH").await;
    second.auth().await;

    assert_eq!(second.expect_command().await.taskid, pushed.taskid);
}

/// ZJ-STATUS-03: entries for unknown or other devices' tasks are ignored, the rest applied.
#[tokio::test]
async fn a_status_report_records_failures_and_counts() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    let w1 = app.worker("赵").await;
    let w2 = app.worker("钱").await;
    app.assign(&project, &[w1, w2]).await;
    app.register_device("SN-STATUS", &vendor, Some(&project))
        .await;
    app.register_device("SN-STATUS-OTHER", &vendor, Some(&project))
        .await;
    let task = app.tasks_of("SN-STATUS").await[0].clone();
    let foreign = app.tasks_of("SN-STATUS-OTHER").await[0].clone();
    let mut dev = app.http_device(&vendor, "SN-STATUS");
    dev.auth().await;
    dev.get_tasks(std::slice::from_ref(&task.taskid)).await;

    dev.update_status(&json!({
        "task": [
            {
                "taskid": task.taskid,
                "status": 2,
                "failedPersons": [{"personId": w2.to_string(), "errCode": "E_FULL"}],
                "failedFaces": [{"personId": w1.to_string(), "errCode": "E_NO_FACE"}]
            },
            {"taskid": foreign.taskid, "status": 1},
            {"taskid": "1234567890123456789", "status": 1}
        ],
        "personCount": "1",
        "faceCount": 0
    }))
    .await;

    let row = app.task_info("SN-STATUS", &task.taskid).await;
    assert_eq!(row.status, "failed");
    assert!(row.finished_at.is_some());
    assert_eq!(
        row.failed_persons,
        vec![Failure {
            person_id: w2.to_string(),
            err_code: "E_FULL".into()
        }]
    );
    assert_eq!(
        row.failed_faces,
        vec![Failure {
            person_id: w1.to_string(),
            err_code: "E_NO_FACE".into()
        }]
    );
    let device = app.device_info("SN-STATUS").await.unwrap();
    assert_eq!((device.person_count, device.face_count), (Some(1), Some(0)));
    assert_eq!(device.expected_person_count, 2);
    let sync = app.person_sync("SN-STATUS").await;
    let of = |id: i64| {
        sync.iter()
            .find(|s| s["personId"].as_str().and_then(|p| p.parse().ok()) == Some(id))
            .unwrap_or_else(|| panic!("sync state of {id}: {sync:?}"))
    };
    assert_eq!(of(w1)["personOk"], true);
    assert_eq!(of(w1)["faceOk"], false);
    assert_eq!(of(w1)["faceErr"], "E_NO_FACE");
    assert_eq!(of(w2)["personOk"], false);
    assert_eq!(of(w2)["personErr"], "E_FULL");
    // The other device's task is untouched.
    assert_eq!(
        app.task_info("SN-STATUS-OTHER", &foreign.taskid)
            .await
            .status,
        "pending"
    );
    // A finished task is no longer handed out.
    assert!(dev.get_tasks(&[task.taskid]).await.tasks.is_empty());
}

/// ZJ-STATUS-02: personCount and faceCount are required.
#[tokio::test]
async fn a_status_report_without_its_counts_gets_400_02() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let mut dev = app.http_device(&vendor, "SN-STATUS-BAD");
    dev.auth().await;
    let param = json!({"task": []}).to_string();

    let resp = dev
        .call(&dev.id.signed(ApiCode::UpdateTasksStatus, Some(&param)))
        .await;

    let e = expect_err(&resp, ErrorCode::ParamInvalid);
    assert!(e.errormsg().contains("personCount"), "{}", e.errormsg());
}

/// ZJ-TASK-05: merging into the pending T_UPDATE_DEVICE_PERSON.
#[tokio::test]
async fn two_enrolments_while_the_device_is_offline_merge_into_one_pending_update_task() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    app.register_device("SN-MERGE", &vendor, Some(&project))
        .await;
    let mut dev = app.http_device(&vendor, "SN-MERGE");
    dev.auth().await;
    let w1 = app.worker("孙").await;
    let w2 = app.worker("李").await;

    app.assign(&project, &[w1]).await;
    app.assign(&project, &[w2]).await;

    let tasks = app.tasks_of("SN-MERGE").await;
    assert_eq!(
        kinds(&tasks),
        vec![
            ("T_SEND_PERSON", "pending"),
            ("T_UPDATE_DEVICE_PERSON", "pending")
        ]
    );
    let mut expected = vec![w1, w2];
    expected.sort_unstable();
    assert_eq!(
        persons_of(&dev, ApiCode::UpdateDevicePerson, &tasks[1].taskid).await,
        expected
    );
}

/// ZJ-TASK-05: never merged into a delivered task, nor past a newer person task.
#[tokio::test]
async fn an_enrolment_never_merges_into_a_delivered_task_or_past_a_newer_deletion() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    let w0 = app.worker("周").await;
    app.assign(&project, &[w0]).await;
    app.register_device("SN-NOMERGE", &vendor, Some(&project))
        .await;
    let mut dev = app.http_device(&vendor, "SN-NOMERGE");
    dev.auth().await;
    let w1 = app.worker("吴").await;
    let w2 = app.worker("郑").await;
    let w3 = app.worker("王").await;

    app.assign(&project, &[w1]).await;
    app.unassign(&project, w0).await;
    app.assign(&project, &[w2]).await;
    let first_update = app.tasks_of("SN-NOMERGE").await[3].taskid.clone();
    dev.get_tasks(std::slice::from_ref(&first_update)).await;
    app.assign(&project, &[w3]).await;

    let tasks = app.tasks_of("SN-NOMERGE").await;
    assert_eq!(
        kinds(&tasks),
        vec![
            ("T_SEND_PERSON", "pending"),
            ("T_UPDATE_DEVICE_PERSON", "pending"),
            ("T_DEL_DEVICE_PERSON", "pending"),
            ("T_UPDATE_DEVICE_PERSON", "delivered"),
            ("T_UPDATE_DEVICE_PERSON", "pending"),
        ]
    );
    assert_eq!(
        persons_of(&dev, ApiCode::UpdateDevicePerson, &tasks[3].taskid).await,
        vec![w2],
        "a delivered task is not changed under the device"
    );
    assert_eq!(
        persons_of(&dev, ApiCode::UpdateDevicePerson, &tasks[4].taskid).await,
        vec![w3]
    );
}

#[tokio::test]
async fn retrying_a_task_sends_its_failed_persons_and_faces_again() {
    let app = TestApp::spawn().await;
    let vendor = app.vendor().await;
    let project = app.project(None).await;
    let (w1, w2, w3) = (
        app.worker("孙").await,
        app.worker("李").await,
        app.worker("周").await,
    );
    app.assign(&project, &[w1, w2, w3]).await;
    app.register_device("SN-RETRY", &vendor, Some(&project))
        .await;
    let task = app.tasks_of("SN-RETRY").await[0].clone();
    let retry = format!("/devices/SN-RETRY/tasks/{}/retry", task.taskid);
    let open = app.admin().post(&retry, &json!({})).await;
    assert_eq!(open.expect(409)["error"]["code"], "task_open");

    let mut dev = app.http_device(&vendor, "SN-RETRY");
    dev.auth().await;
    dev.get_tasks(std::slice::from_ref(&task.taskid)).await;
    dev.update_status(&json!({"task": [{
        "taskid": task.taskid, "status": 2,
        "failedPersons": [{"personId": w2.to_string(), "errCode": "E_FULL"}],
        "failedFaces": [{"personId": w3.to_string(), "errCode": "E_NO_FACE"}]
    }], "personCount": 2, "faceCount": 1}))
        .await;
    let again = app.admin().post(&retry, &json!({})).await.expect(201);
    assert_eq!(again["apicode"], "T_UPDATE_DEVICE_PERSON");
    let taskid = again["taskid"].as_str().expect("taskid");
    let mut ids = persons_of(&dev, ApiCode::UpdateDevicePerson, taskid).await;
    ids.sort_unstable();
    let mut expected = vec![w2, w3];
    expected.sort_unstable();
    assert_eq!(ids, expected, "only the failed ones");
    let unknown = app
        .admin()
        .post(
            "/devices/SN-RETRY/tasks/1234567890123456789/retry",
            &json!({}),
        )
        .await;
    assert_eq!(unknown.status, 404);
}
