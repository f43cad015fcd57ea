//! The task interfaces a device calls with a taskid (ZJ-PERSON-02 to ZJ-PERSON-06, ZJ-FW-01, ZJ-RECON-01): person pages, deletions, clear,
//! firmware, and the reconciliation upload.

use rollcall_protocol::ApiCode;
use rollcall_protocol::envelope::Request;
use rollcall_protocol::params::{
    self, DelPersonResponse, FirmwareInfo, PageParam, PersonEntry, PersonPage,
    PostDevicePersonParam,
};

use super::{Authed, param, reply, taskid};
use crate::pipeline::error::DeviceError;
use crate::services::{reconcile, tasks::deliverable_param};
use crate::state::App;
use crate::store::{ReconcilePage, Task};
use rollcall_rules::photo;

/// The task a request names: this device's, and of this apicode; else 405_01.
async fn owned_task(
    app: &App,
    req: &Request,
    api: ApiCode,
    authed: &Authed,
) -> Result<Task, DeviceError> {
    let id = taskid(req)?;
    app.store
        .task(id)
        .await?
        .filter(|t| *t.sn == *authed.sn && t.apicode == api.as_str())
        .ok_or_else(|| DeviceError::TaskNotFound(req.taskid.clone()))
}

/// T_SEND_PERSON (the whole roster frozen at creation) and T_UPDATE_DEVICE_PERSON (the
/// persons of this task): one page, names and photos read now, photo URLs signed now, and
/// only persons on the device's project roster now.
pub(super) async fn page(
    app: &App,
    req: &Request,
    api: ApiCode,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    // 400_02 comes before 405_01 (ZJ-ERR-04).
    let p: PageParam = param(req)?;
    let task = owned_task(app, req, api, authed).await?;
    let size = p.effective_size();
    let offset = u32::try_from(p.offset()).unwrap_or(u32::MAX);
    let (ids, total) = app.store.task_persons(task.taskid, offset, size).await?;
    let mut workers = app.store.workers_by_ids(&ids).await?;
    // ZJ-PERSON-04, defence in depth: a device only ever receives workers on its project's
    // roster as it is when the page is read, whatever the task's frozen list says (a task
    // made before the roster check, a worker who left or was blacklisted since). Pages keep
    // their numbering; a left-out person is simply not in the page.
    let roster = match authed.device.project_id {
        Some(project) => app.store.roster(project).await?,
        None => Vec::new(),
    };
    workers.retain(|w| roster.binary_search(&w.person_id).is_ok());
    let data = workers
        .iter()
        .map(|w| PersonEntry {
            person_id: w.person_id.to_string(),
            name: w.name.clone(),
            img_urls: w
                .face_key
                .iter()
                .map(|k| app.file_url(k, authed.now))
                .collect(),
        })
        .collect();
    reply(&PersonPage {
        data,
        current_page: p.current_page,
        total_page: total.div_ceil(size),
        size,
    })
}

/// T_DEL_DEVICE_PERSON: the persons to delete.
pub(super) async fn delete(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    let task = owned_task(app, req, ApiCode::DelDevicePerson, authed).await?;
    let (ids, _) = app.store.task_persons(task.taskid, 0, u32::MAX).await?;
    reply(&DelPersonResponse {
        person_ids: ids.iter().map(i64::to_string).collect(),
    })
}

/// T_CLEAR_DEVICE_PERSON: an acknowledgement.
pub(super) async fn clear(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    owned_task(app, req, ApiCode::ClearDevicePerson, authed).await?;
    Ok(None)
}

/// T_UPDATE_DEVICE_VERSION: the firmware info with a freshly signed URL (ZJ-FW-02). Whatever
/// the device echoes as param is ignored.
pub(super) async fn firmware(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    let task = owned_task(app, req, ApiCode::UpdateDeviceVersion, authed).await?;
    let info: FirmwareInfo = params::parse(&deliverable_param(app, &task, authed.now))
        .map_err(|e| DeviceError::Internal(format!("task {} param: {e}", task.taskid)))?;
    reply(&info)
}

/// T_POST_DEVICE_PERSON: one page of the device's roster. Images are checked and not kept
/// (ZJ-RECON-04); a resent page replaces the old; when pages 1..totalPage are all present the
/// comparison with the roster runs (ZJ-RECON-02; and repairs, with `auto_repair`).
pub(super) async fn reconcile(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    // 400_02 comes before 405_01 (ZJ-ERR-04).
    let mut p: PostDevicePersonParam = param(req)?;
    if p.current_page == 0 || p.total_page == 0 || p.current_page > p.total_page {
        return Err(DeviceError::param(format!(
            "currentPage {} / totalPage {} 无效",
            p.current_page, p.total_page
        )));
    }
    let task = owned_task(app, req, ApiCode::PostDevicePerson, authed).await?;
    for row in &mut p.data {
        let usable = match row.img.take() {
            Some(b64) => params::decode_base64("img", &b64)
                .ok()
                .is_some_and(|bytes| photo::inspect(&bytes, app.settings.max_photo_bytes).is_ok()),
            None => row.has_img.unwrap_or(false),
        };
        row.has_img = Some(usable);
    }
    app.store
        .put_reconcile_page(&ReconcilePage {
            taskid: task.taskid,
            page: p.current_page,
            total_page: p.total_page,
            data: serde_json::to_string(&p.data).unwrap_or_else(|_| "[]".into()),
        })
        .await?;
    if let Some(report) = reconcile::report(app, &task).await? {
        tracing::info!(
            sn = %task.sn,
            taskid = task.taskid,
            missing = report.missing.len(),
            extra = report.extra.len(),
            faceless = report.faceless.len(),
            "reconciliation complete"
        );
        if app.settings.auto_repair {
            reconcile::repair(app, &task.sn, &report).await?;
        }
    }
    Ok(None)
}
