//! Workers and their enrolment in projects (进场/退场), and the device tasks each change
//! makes (PROTOCOL.md §5): joining a project adds the workers to every device of the
//! project (merged into a pending update when there is one); leaving makes a
//! T_DEL_DEVICE_PERSON for each device.

use rollcall_protocol::ApiCode;
use sha2::{Digest, Sha256};

use crate::photo::PhotoInfo;
use crate::services::tasks;
use crate::state::App;
use crate::store::{StoreResult, Worker};

/// Stores a face photo and returns its file key.
pub async fn store_face(
    app: &App,
    person_id: i64,
    photo: &[u8],
    info: PhotoInfo,
) -> std::io::Result<String> {
    let digest = hex::encode(Sha256::digest(photo));
    let key = format!(
        "faces/{person_id}/{}.{}",
        &digest[..16],
        info.format.extension()
    );
    app.files.put(&key, photo).await?;
    Ok(key)
}

/// Stores a new worker. `Conflict(person_id)` if the ID-card number is taken.
pub async fn create(app: &App, worker: &Worker) -> StoreResult<()> {
    app.store.create_worker(worker).await
}

/// Workers join a project; every device of the project is told.
pub async fn join_project(app: &App, project_id: i64, person_ids: &[i64]) -> StoreResult<()> {
    let now = crate::util::now_ms();
    app.store
        .add_project_workers(project_id, person_ids, now)
        .await?;
    // Only those now on the roster (not blacklisted) go to devices.
    let roster = app.store.roster(project_id).await?;
    let joining: Vec<i64> = person_ids
        .iter()
        .copied()
        .filter(|p| roster.binary_search(p).is_ok())
        .collect();
    for device in app.store.devices(Some(project_id)).await? {
        tasks::enqueue_update(app, &device.sn, &joining).await?;
    }
    Ok(())
}

/// A worker leaves a project; every device of the project deletes them.
/// `false` if the worker was not active in the project.
pub async fn leave_project(app: &App, project_id: i64, person_id: i64) -> StoreResult<bool> {
    let now = crate::util::now_ms();
    if !app
        .store
        .remove_project_worker(project_id, person_id, now)
        .await?
    {
        return Ok(false);
    }
    let param = format!("{{\"personIds\":[\"{person_id}\"]}}");
    for device in app.store.devices(Some(project_id)).await? {
        tasks::create(
            app,
            &device.sn,
            ApiCode::DelDevicePerson,
            param.clone(),
            vec![person_id],
        )
        .await?;
    }
    Ok(true)
}
