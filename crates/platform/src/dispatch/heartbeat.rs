//! C_HEARTBEAT (§2.2): presence in memory (written behind), and the tasks the device is due.

use rollcall_protocol::envelope::Request;
use rollcall_protocol::params::{HeartbeatParam, HeartbeatResponse};

use super::{Authed, param, reply};
use crate::error::DeviceError;
use crate::state::App;

/// At most this many task ids per heartbeat (§5).
const MAX_TASKIDS: u32 = 100;

pub(super) async fn handle(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    let p: HeartbeatParam = param(req)?;
    app.presence.heartbeat(
        &authed.device.sn,
        Some(p.device_version),
        Some(p.device_ip),
        authed.device.last_heartbeat_at,
        authed.now,
    );
    let redeliver_before = authed.now - app.settings.redelivery_secs as i64 * 1000;
    let due = app
        .store
        .due_tasks(&authed.device.sn, redeliver_before, MAX_TASKIDS)
        .await?;
    reply(&HeartbeatResponse {
        taskids: due.into_iter().map(|t| t.taskid.to_string()).collect(),
    })
}
