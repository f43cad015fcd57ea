//! C_HEARTBEAT (§2.2): presence in memory (written behind), and the tasks the device is due.
//!
//! Almost every heartbeat is due nothing, and the due-task query was most of what a heartbeat
//! cost (BENCHMARKS.md, "heartbeat profile"). The query asks for every *open* task (pending,
//! or delivered and not finished) and filters the due ones here; when there is no open task at
//! all, the device is remembered in the directory's task hints and its next heartbeats skip
//! the query until a task is created for it or the hint ages out (see
//! [`crate::directory`]). A device with delivered, unfinished tasks is queried every time, so
//! redelivery after `redelivery_secs` works as before.

use rollcall_protocol::envelope::Request;
use rollcall_protocol::params::{HeartbeatParam, HeartbeatResponse};

use super::{Authed, param, reply};
use crate::error::DeviceError;
use crate::state::App;
use crate::store::{Task, TaskState};

/// At most this many task ids per heartbeat (§5).
const MAX_TASKIDS: u32 = 100;

pub(super) async fn handle(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    let p: HeartbeatParam = param(req)?;
    let sn = &authed.device.sn;
    let now = authed.now;
    app.presence.heartbeat(
        sn,
        Some(p.device_version),
        Some(p.device_ip),
        authed.device.last_heartbeat_at,
        now,
    );
    let redelivery_ms = (app.settings.redelivery_secs as i64).saturating_mul(1000);
    let redeliver_before = now - redelivery_ms;
    let backend = app.store.backend();
    if app.directory.no_open_tasks(backend, sn, now, redelivery_ms) {
        return reply(&HeartbeatResponse {
            taskids: Vec::new(),
        });
    }
    let epoch = app.directory.task_epoch();
    // `i64::MAX` as the redelivery bound: every delivered task counts, so the answer is every
    // open task (oldest first), of which the due ones are picked below.
    let open = app.store.due_tasks(sn, i64::MAX, MAX_TASKIDS).await?;
    if open.is_empty() {
        app.directory
            .note_no_open_tasks(sn, epoch, now, redelivery_ms);
        return reply(&HeartbeatResponse {
            taskids: Vec::new(),
        });
    }
    let full = open.len() >= MAX_TASKIDS as usize;
    let mut due: Vec<Task> = open
        .into_iter()
        .filter(|t| is_due(t, redeliver_before))
        .collect();
    if full && due.len() < MAX_TASKIDS as usize {
        // More open tasks than one answer holds: due ones may lie past the first page.
        due = app
            .store
            .due_tasks(sn, redeliver_before, MAX_TASKIDS)
            .await?;
    }
    reply(&HeartbeatResponse {
        taskids: due.into_iter().map(|t| t.taskid.to_string()).collect(),
    })
}

/// The due-task rule of the store's query: pending, or delivered before `redeliver_before`.
fn is_due(t: &Task, redeliver_before: i64) -> bool {
    match t.state {
        TaskState::Pending => true,
        TaskState::Delivered => t.delivered_at.is_some_and(|d| d < redeliver_before),
        _ => false,
    }
}
