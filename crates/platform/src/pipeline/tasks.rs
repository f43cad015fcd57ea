//! T_GET_TASKS and T_UPDATE_TASKS_STATUS (ZJ-PERSON-01, ZJ-STATUS-01 to ZJ-STATUS-04): handing out task params and taking outcomes.

use rollcall_protocol::ApiCode;
use rollcall_protocol::envelope::Request;
use rollcall_protocol::params::{
    GetTasksParam, GetTasksResponse, TaskItem, TaskOutcome, UpdateTasksStatusParam,
};

use super::{Authed, param, reply};
use crate::pipeline::error::DeviceError;
use crate::services::tasks::deliverable_param;
use crate::state::App;
use crate::store::{SyncFailure, SyncReport, TaskState};

/// Only this device's unfinished tasks; unknown, finished and cancelled ids are skipped.
/// Returning a task delivers it (pending → delivered, ZJ-TASK-02).
pub(super) async fn get_tasks(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    let p: GetTasksParam = param(req)?;
    let mut tasks = Vec::new();
    for id in p.taskids.iter().filter_map(|t| t.parse::<i64>().ok()) {
        if let Some(task) = app.store.task(id).await?
            && *task.sn == *authed.sn
            && task.state.is_open()
        {
            tasks.push(task);
        }
    }
    let ids: Vec<i64> = tasks.iter().map(|t| t.taskid).collect();
    app.store.mark_delivered(&ids, authed.now).await?;
    reply(&GetTasksResponse {
        tasks: tasks
            .iter()
            .map(|t| TaskItem {
                taskid: t.taskid.to_string(),
                apicode: t.apicode.clone(),
                param: deliverable_param(app, t, authed.now),
            })
            .collect(),
    })
}

/// Applies each entry for this device's open tasks; others are logged and ignored (ZJ-STATUS-03;
/// a late report for a cancelled task is acknowledged and changes nothing).
pub(super) async fn update_status(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    let p: UpdateTasksStatusParam = param(req)?;
    let sn: &str = &authed.sn;
    // The counts first: a task's finish (and its webhook) is what readers act on, so whoever
    // sees a task of this report finished also sees the counts it produced (the report's
    // statements are not one transaction; each finish carries its own persons' outcome).
    app.store
        .set_device_counts(sn, clamp(p.person_count), clamp(p.face_count))
        .await?;
    for entry in &p.task {
        let task = match entry.taskid.parse::<i64>() {
            Ok(id) => app.store.task(id).await?,
            Err(_) => None,
        };
        let Some(task) = task.filter(|t| t.sn == sn) else {
            tracing::info!(%sn, taskid = %entry.taskid, "status for an unknown or foreign task ignored");
            continue;
        };
        let ignored = || {
            tracing::debug!(%sn, taskid = task.taskid, "status for a finished or cancelled task ignored");
        };
        if !task.state.is_open() {
            ignored();
            continue;
        }
        let state = match entry.status {
            TaskOutcome::Done => TaskState::Done,
            TaskOutcome::Failed => TaskState::Failed,
            TaskOutcome::Unsupported => TaskState::Unsupported,
        };
        let carries_persons = task.apicode == ApiCode::SendPerson.as_str()
            || task.apicode == ApiCode::UpdateDevicePerson.as_str();
        let sync = if carries_persons && state != TaskState::Unsupported {
            let (persons, _) = app.store.task_persons(task.taskid, 0, u32::MAX).await?;
            let failures = |items: &[rollcall_protocol::params::FailedItem]| {
                items
                    .iter()
                    .map(|f| SyncFailure {
                        person_id: f.person_id.clone(),
                        err_code: f.err_code.clone(),
                    })
                    .collect()
            };
            Some(SyncReport {
                sn: sn.to_owned(),
                taskid: task.taskid,
                persons,
                failed_persons: failures(&entry.failed_persons),
                failed_faces: failures(&entry.failed_faces),
                at: authed.now,
            })
        } else {
            None
        };
        // One transaction: whoever sees the task finished also sees what the device refused.
        if !app
            .store
            .finish_task(task.taskid, state, authed.now, sync.as_ref())
            .await?
        {
            ignored();
        }
    }
    Ok(None)
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
