//! What a caller may see: the one place that decides it, for the admin API and the console
//! alike. Both map `None` to their own "not found", so something outside a caller's scope
//! is answered exactly like something that does not exist, and its existence is never
//! revealed.
//!
//! The rules themselves ([`Principal::sees_project`], [`Principal::sees_device`],
//! [`Principal::sees_member_of`]) belong to accounts; this module applies them to what the
//! store holds. A read that a handler makes on behalf of a caller goes through here.

use crate::accounts::Principal;
use crate::state::App;
use crate::store::console::Member;
use crate::store::{Device, Project, StoreResult, Worker};

/// A project the caller may see.
pub(crate) async fn project(app: &App, by: &Principal, id: i64) -> StoreResult<Option<Project>> {
    if !by.sees_project(id) {
        return Ok(None);
    }
    app.store.project(id).await
}

/// Every project the caller may see, in the store's order.
pub(crate) async fn projects(app: &App, by: &Principal) -> StoreResult<Vec<Project>> {
    let mut projects = app.store.projects().await?;
    projects.retain(|p| by.sees_project(p.id));
    Ok(projects)
}

/// A device the caller may see.
pub(crate) async fn device(app: &App, by: &Principal, sn: &str) -> StoreResult<Option<Device>> {
    Ok(app
        .store
        .device(sn)
        .await?
        .filter(|device| by.sees_device(device)))
}

/// The devices the caller may see, of one project or of all.
pub(crate) async fn devices(
    app: &App,
    by: &Principal,
    project: Option<i64>,
) -> StoreResult<Vec<Device>> {
    let mut devices = app.store.devices(project).await?;
    devices.retain(|d| by.sees_device(d));
    Ok(devices)
}

/// A worker and the memberships the caller may see.
#[derive(Debug)]
pub(crate) struct VisibleWorker {
    pub worker: Worker,
    /// Only the memberships of projects the caller sees.
    pub memberships: Vec<Member>,
}

/// A worker the caller may see: a project manager sees the workers who are or were members
/// of one of their projects; administrators and auditors see everyone.
pub(crate) async fn worker(
    app: &App,
    by: &Principal,
    person_id: i64,
) -> StoreResult<Option<VisibleWorker>> {
    let Some(worker) = app.store.worker(person_id).await? else {
        return Ok(None);
    };
    let memberships = app.store.memberships(person_id).await?;
    let projects: Vec<i64> = memberships.iter().map(|m| m.project_id).collect();
    if !by.sees_member_of(&projects) {
        return Ok(None);
    }
    Ok(Some(VisibleWorker {
        worker,
        memberships: visible_memberships(by, memberships),
    }))
}

/// The memberships of a worker in the projects the caller sees.
pub(crate) async fn memberships(
    app: &App,
    by: &Principal,
    person_id: i64,
) -> StoreResult<Vec<Member>> {
    Ok(visible_memberships(
        by,
        app.store.memberships(person_id).await?,
    ))
}

fn visible_memberships(by: &Principal, mut memberships: Vec<Member>) -> Vec<Member> {
    memberships.retain(|m| by.sees_project(m.project_id));
    memberships
}
