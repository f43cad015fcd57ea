//! C_HEARTBEAT (ZJ-HB-01 to ZJ-HB-04): presence in memory (written behind), and the tasks the device is due
//! ([`tasks::due`], which skips the query for devices known to have no open task).

use rollcall_protocol::envelope::Request;
use rollcall_protocol::params::{HeartbeatParam, HeartbeatResponse, NO_TASKS_JSON};

use super::{Authed, param, reply};
use crate::pipeline::error::DeviceError;
use crate::services::tasks;
use crate::state::App;

pub(super) async fn handle(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    let p: HeartbeatParam = param(req)?;
    let sn = &authed.sn;
    app.presence.heartbeat(
        sn,
        Some(p.device_version),
        Some(p.device_ip),
        authed.device.last_heartbeat_at,
        authed.now,
    );
    let due = tasks::due(app, sn, authed.now).await?;
    if due.is_empty() {
        return Ok(Some(NO_TASKS_JSON.to_owned()));
    }
    reply(&HeartbeatResponse {
        taskids: due.into_iter().map(|t| t.taskid.to_string()).collect(),
    })
}
