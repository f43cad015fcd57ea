//! Tasks (ZJ-TASK-01 to ZJ-TASK-08): creation with merging and superseding, push to a
//! connected device, and the param a device receives.
//!
//! Rules, in one place (the store only executes them):
//! - **Order** (ZJ-TASK-04): ids are time-ordered, and devices are given tasks oldest first.
//! - **Person tasks** are those of [`ApiCode::is_person_task`] (T_SEND_PERSON,
//!   T_UPDATE_DEVICE_PERSON, T_DEL_DEVICE_PERSON, T_CLEAR_DEVICE_PERSON); a task is **open**
//!   while [`TaskState::is_open`] (pending or delivered). The store builds its statements from
//!   these two functions.
//! - **Merging** (ZJ-TASK-05): enrolment changes join the device's newest person task when that is a
//!   pending T_UPDATE_DEVICE_PERSON ([`enqueue_update`], through
//!   `TaskStore::merge_into_pending_update`); never past a newer person task.
//! - **Superseding** (ZJ-TASK-06): a task for which [`supersedes`] holds (T_SEND_PERSON and
//!   T_CLEAR_DEVICE_PERSON) cancels the device's older open person tasks, in the same
//!   transaction that creates it.
//! - **Push on creation** (ZJ-TASK-03): a task for a device connected to this node is sent at once as a
//!   signed command and marked delivered.

use std::sync::Arc;

use rollcall_protocol::envelope::Command;
use rollcall_protocol::params::{self, FirmwareInfo};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, PROTOCOL_VERSION};

use crate::runtime::util::now_ms;
use crate::state::App;
use crate::store::{NewTask, StoreResult, Task, TaskState};

/// ZJ-TASK-06: whether a new task of `api` cancels the device's older open person tasks:
/// those that replace the device's whole person list make every earlier change to it moot.
pub(crate) fn supersedes(api: ApiCode) -> bool {
    matches!(api, ApiCode::SendPerson | ApiCode::ClearDevicePerson)
}

/// Creates a task for a device and pushes it if the device is connected here.
pub async fn create(
    app: &App,
    sn: &str,
    api: ApiCode,
    param: String,
    persons: Vec<i64>,
) -> StoreResult<Task> {
    let now = now_ms();
    let new = NewTask {
        taskid: app.ids.next(),
        sn: sn.to_owned(),
        apicode: api.as_str().to_owned(),
        param,
        persons,
        supersede: supersedes(api),
        created_at: now,
    };
    app.store.create_task(&new).await?;
    // The device has an open task now: its heartbeats must query again (directory hints).
    app.directory.tasks_changed(sn);
    let mut task = Task {
        taskid: new.taskid,
        sn: new.sn,
        apicode: new.apicode,
        param: new.param,
        state: TaskState::Pending,
        created_at: now,
        delivered_at: None,
        finished_at: None,
    };
    if push(app, &task).await? {
        task.state = TaskState::Delivered;
        task.delivered_at = Some(now_ms());
    } else {
        // Another node may hold the device's connection.
        app.store.announce_tasks(sn).await?;
    }
    Ok(task)
}

/// ZJ-TASK-05: adds persons to the device's pending update task, or makes a new one;
/// returns its id.
pub async fn enqueue_update(app: &App, sn: &str, persons: &[i64]) -> StoreResult<i64> {
    if persons.is_empty() {
        return Ok(0);
    }
    if let Some(taskid) = app.store.merge_into_pending_update(sn, persons).await? {
        // Still pending means the device has not been given it: push it now if we can.
        if let Some(task) = app.store.task(taskid).await?
            && task.state == TaskState::Pending
            && !push(app, &task).await?
        {
            app.store.announce_tasks(sn).await?;
        }
        return Ok(taskid);
    }
    let task = create(
        app,
        sn,
        ApiCode::UpdateDevicePerson,
        "{}".into(),
        persons.to_vec(),
    )
    .await?;
    Ok(task.taskid)
}

/// Sends a task as a command if its device is connected to this node, marking it delivered.
/// `false` when the device is not connected here (it will see the task in a heartbeat);
/// `true` also when the task changed since `task` was read (another push claimed it first).
pub async fn push(app: &App, task: &Task) -> StoreResult<bool> {
    if !app.registry.is_connected(&task.sn) {
        return Ok(false);
    }
    let Ok(api) = task.apicode.parse::<ApiCode>() else {
        return Ok(false);
    };
    let Some(secret) = device_secret(app, &task.sn).await? else {
        return Ok(false);
    };
    let now = now_ms();
    let command = Command {
        version: PROTOCOL_VERSION.to_owned(),
        sn: task.sn.clone(),
        apicode: api,
        taskid: task.taskid.to_string(),
        time_stamp: Timestamp::from_epoch_ms(now).to_wire(),
        param: deliverable_param(app, task, now),
    };
    // Claimed before it is sent: the push after a device connects and the push of a task just
    // made may both read it pending, and only the one that claims it sends it (ZJ-TASK-03).
    let (state, delivered_at) = (task.state, task.delivered_at);
    let Some(claimed) = app
        .store
        .claim_delivery(task.taskid, state, delivered_at, now)
        .await?
    else {
        return Ok(true);
    };
    if !app.registry.send(&task.sn, command.to_packet(&secret)) {
        app.store
            .release_delivery(task.taskid, state, delivered_at, claimed)
            .await?;
        return Ok(false);
    }
    Ok(true)
}

/// Pushes every task the device is due (pending, or delivered too long ago without a status).
pub async fn push_due(app: &App, sn: &Arc<str>) -> StoreResult<()> {
    for task in due(app, sn, now_ms()).await? {
        if !push(app, &task).await? {
            break;
        }
    }
    Ok(())
}

/// At most this many due tasks at once (a heartbeat's answer, ZJ-HB-02).
pub const MAX_DUE: u32 = 100;

/// The device's due tasks (pending, or delivered and unfinished for `redelivery_secs`),
/// oldest first, at most [`MAX_DUE`].
///
/// Almost every device is due nothing almost always, and this query was most of what a
/// heartbeat cost (BENCHMARKS.md, "heartbeat profile"). The query asks for every *open* task
/// and filters the due ones here; when there is no open task at all, the device is remembered
/// in the directory's task hints and the next asks skip the query until a task is created for
/// it or the hint ages out (see [`crate::runtime::auth_cache`]). So the push after a device connects
/// also spares its first heartbeat the query (1,000 devices connecting at once made 1,000 such
/// queries queue on SQLite's readers). A device with delivered, unfinished tasks is queried
/// every time, so redelivery after `redelivery_secs` works as before.
pub async fn due(app: &App, sn: &Arc<str>, now: i64) -> StoreResult<Vec<Task>> {
    let redelivery_ms = redelivery_ms(app);
    let redeliver_before = now - redelivery_ms;
    if none_open_known(app, sn, now) {
        return Ok(Vec::new());
    }
    let epoch = app.directory.task_epoch();
    // `i64::MAX` as the redelivery bound: every delivered task counts, so the answer is every
    // open task (oldest first), of which the due ones are picked below.
    let open = app.store.due_tasks(sn, i64::MAX, MAX_DUE).await?;
    if open.is_empty() {
        app.directory
            .note_no_open_tasks(sn, epoch, now, redelivery_ms);
        return Ok(open);
    }
    let full = open.len() >= MAX_DUE as usize;
    let due: Vec<Task> = open
        .into_iter()
        .filter(|t| is_due(t, redeliver_before))
        .collect();
    if full && due.len() < MAX_DUE as usize {
        // More open tasks than one answer holds: due ones may lie past the first page.
        return app.store.due_tasks(sn, redeliver_before, MAX_DUE).await;
    }
    Ok(due)
}

/// Whether the device is known to have no open task, so none due, without asking the store
/// (the first step of [`due`]).
pub fn none_open_known(app: &App, sn: &str, now: i64) -> bool {
    app.directory
        .no_open_tasks(app.store.backend(), sn, now, redelivery_ms(app))
}

fn redelivery_ms(app: &App) -> i64 {
    (app.settings.redelivery_secs as i64).saturating_mul(1000)
}

/// The due-task rule of the store's query: pending, or delivered before `redeliver_before`.
fn is_due(t: &Task, redeliver_before: i64) -> bool {
    match t.state {
        TaskState::Pending => true,
        TaskState::Delivered => t.delivered_at.is_some_and(|d| d < redeliver_before),
        _ => false,
    }
}

/// The param a device receives for a task. Firmware URLs are signed when the task is
/// delivered (not when it is made), so they are fresh whenever the device gets them
/// (ZJ-FW-02). Only keys of firmware packages (`firmware/…`) are ever signed here: a task
/// made before firmware tasks had to name a package, whose URL names any other file (a
/// photo, a face), is delivered with its URL unsigned, which fetches nothing.
pub fn deliverable_param(app: &App, task: &Task, now: i64) -> String {
    if task.apicode != ApiCode::UpdateDeviceVersion.as_str() {
        return task.param.clone();
    }
    match params::parse::<FirmwareInfo>(&task.param) {
        Ok(mut info) => {
            if let Some(key) = info.download_url.strip_prefix("/files/")
                && is_firmware_key(key)
            {
                info.download_url = app.file_url(key, now);
            }
            params::to_json(&info)
        }
        Err(_) => task.param.clone(),
    }
}

/// Whether a file key is a stored firmware package (`firmware/{id}/{digest}.bin`, as
/// `POST /firmware` writes it): no `..`, no other folder.
fn is_firmware_key(key: &str) -> bool {
    key.strip_prefix("firmware/").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
    })
}

/// The current secret of the vendor of a device.
pub async fn device_secret(app: &App, sn: &str) -> StoreResult<Option<String>> {
    let Some(device) = app.store.device(sn).await? else {
        return Ok(None);
    };
    Ok(app
        .store
        .vendor(device.vendor_id)
        .await?
        .map(|v| v.access_secret.expose().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_firmware_keys_are_signed() {
        assert!(is_firmware_key("firmware/1/abc.bin"));
        assert!(!is_firmware_key("attendance/1.seg"));
        assert!(!is_firmware_key("faces/1.jpg"));
        assert!(!is_firmware_key("firmware/../faces/1.jpg"));
        assert!(!is_firmware_key("firmware/"));
    }
}
