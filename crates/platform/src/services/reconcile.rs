//! Reconciliation (ZJ-RECON-05, ZJ-RECON-06): the device's uploaded list compared
//! with its roster — missing, extra and face-less persons — and the tasks that repair it.

use rollcall_protocol::ApiCode;
use rollcall_protocol::params::{DevicePerson, PersonIdsParam};

use crate::services::tasks;
use crate::state::App;
use crate::store::{StoreResult, Task};

/// What a complete upload shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// On the roster, not on the device.
    pub missing: Vec<i64>,
    /// On the device, not on the roster (ids as the device sent them).
    pub extra: Vec<String>,
    /// On both, but the device has no usable face.
    pub faceless: Vec<i64>,
}

/// The report of a T_POST_DEVICE_PERSON task, once pages 1..totalPage are all present with
/// the same totalPage; `None` while incomplete.
pub async fn report(app: &App, task: &Task) -> StoreResult<Option<Report>> {
    let pages = app.store.reconcile_pages(task.taskid).await?;
    let Some(total) = pages.first().map(|p| p.total_page) else {
        return Ok(None);
    };
    let complete = pages.iter().all(|p| p.total_page == total)
        && (1..=total).all(|n| pages.iter().any(|p| p.page == n));
    if !complete {
        return Ok(None);
    }
    let mut on_device: Vec<DevicePerson> = Vec::new();
    for p in pages.iter().filter(|p| p.page <= total) {
        on_device.extend(serde_json::from_str::<Vec<DevicePerson>>(&p.data).unwrap_or_default());
    }
    let roster = match app.store.device(&task.sn).await?.and_then(|d| d.project_id) {
        Some(project) => app.store.roster(project).await?,
        None => Vec::new(),
    };
    let mut report = Report::default();
    let device_ids: std::collections::HashSet<String> =
        on_device.iter().map(|d| d.person_id.clone()).collect();
    for id in &roster {
        if !device_ids.contains(&id.to_string()) {
            report.missing.push(*id);
        }
    }
    for d in &on_device {
        match d.person_id.parse::<i64>() {
            Ok(id) if roster.binary_search(&id).is_ok() => {
                if d.has_img != Some(true) {
                    report.faceless.push(id);
                }
            }
            _ => report.extra.push(d.person_id.clone()),
        }
    }
    report.extra.sort();
    report.extra.dedup();
    report.faceless.sort_unstable();
    report.faceless.dedup();
    Ok(Some(report))
}

/// Makes the tasks that fix what a report shows: an update for the missing and face-less,
/// a deletion for the extra.
pub async fn repair(app: &App, sn: &str, report: &Report) -> StoreResult<()> {
    let mut update: Vec<i64> = report
        .missing
        .iter()
        .chain(&report.faceless)
        .copied()
        .collect();
    update.sort_unstable();
    update.dedup();
    tasks::enqueue_update(app, sn, &update).await?;
    let extra: Vec<i64> = report.extra.iter().filter_map(|p| p.parse().ok()).collect();
    if !extra.is_empty() {
        let param = PersonIdsParam::new(&extra).to_text();
        tasks::create(app, sn, ApiCode::DelDevicePerson, param, extra).await?;
    }
    Ok(())
}
