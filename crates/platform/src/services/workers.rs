//! Workers and their enrolment in projects (进场/退场), and the device tasks each change
//! makes (ZJ-TASK-05, ZJ-PERSON-04, ZJ-PERSON-05): joining a project adds the workers to every device of the
//! project (merged into a pending update when there is one); leaving makes a
//! T_DEL_DEVICE_PERSON for each device.

use rollcall_protocol::ApiCode;
use rollcall_protocol::params::PersonIdsParam;
use rollcall_protocol::time::today_beijing;
use sha2::{Digest, Sha256};

use crate::accounts::Principal;
use crate::runtime::util::now_ms;
use crate::services::tasks;
use crate::state::App;
use crate::store::{StoreError, StoreResult, Worker};
use rollcall_rules::idcard::{Gender, IdCardNo};
use rollcall_rules::photo::{self, PhotoInfo};
use rollcall_rules::validate::{FieldError, optional_text, required_text};

/// What an enrolment form or `POST /workers` gives: the person, their face, and optionally
/// the project they start in (required of project managers), with team and trade.
#[derive(Debug, Clone, Default)]
pub struct Enrolment {
    pub idcard_no: String,
    pub name: String,
    pub gender: Option<String>,
    pub nation: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub photo: Vec<u8>,
    pub project_id: Option<i64>,
    pub team_id: Option<i64>,
    pub trade: Option<String>,
}

/// Why an enrolment was refused. Field errors name the field as `POST /workers` spells it.
#[derive(Debug, thiserror::Error)]
pub enum EnrolError {
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A worker with this ID-card number exists. Their person id is named only to a caller
    /// who may see them (`services::scope::worker`: administrators, auditors, and project
    /// managers of a project the worker is or was in); anyone else learns only that the
    /// number is enrolled, and joins the worker to their project by ID-card number and name
    /// (`POST /projects/{id}/workers` with `idcardNo` and `name`).
    #[error("该身份证号的工人已存在")]
    Exists { person_id: Option<i64> },
    /// The project is outside the caller's scope (or they may not change anything).
    #[error("无权在该项目登记工人")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storing a face photo: {0}")]
    Io(#[from] std::io::Error),
}

/// Enrols a worker: checks every field (ID number by GB 11643, the face photo's format,
/// size and face rules), stores the photo and the worker, and — with a project — makes them
/// an active member with team and trade, which sends them to every device of the project.
pub async fn enrol(app: &App, by: &Principal, e: Enrolment) -> Result<Worker, EnrolError> {
    if !by.can_write() {
        return Err(EnrolError::Forbidden);
    }
    let now = now_ms();
    // The project first: a project manager may only enrol into their own projects.
    match e.project_id {
        Some(project) => {
            if !by.sees_project(project) {
                return Err(EnrolError::Forbidden);
            }
            if app.store.project(project).await?.is_none() {
                return Err(FieldError::new(
                    "unknown_project",
                    "projectId",
                    format!("项目 {project} 不存在"),
                )
                .into());
            }
        }
        None if by.scope() != crate::accounts::Scope::All => {
            return Err(FieldError::new(
                "invalid_field",
                "projectId",
                "项目管理员登记工人时须选择项目（projectId）",
            )
            .into());
        }
        None => {}
    }
    if let Some(team) = e.team_id {
        let ok = app
            .store
            .team(team)
            .await?
            .is_some_and(|t| Some(t.project_id) == e.project_id);
        if !ok {
            return Err(FieldError::new(
                "unknown_team",
                "teamId",
                format!("班组 {team} 不属于所选项目"),
            )
            .into());
        }
    }
    let id = IdCardNo::parse(e.idcard_no.trim(), today_beijing(now))
        .map_err(|err| FieldError::new("invalid_idcard", "idcardNo", err.to_string()))?;
    let name = required_text("name", &e.name, 64)?;
    let gender = optional_text("gender", e.gender.as_deref(), 8)?.or_else(|| {
        Some(
            match id.gender() {
                Gender::Male => "男",
                Gender::Female => "女",
            }
            .to_owned(),
        )
    });
    let nation = optional_text("nation", e.nation.as_deref(), 32)?;
    let address = optional_text("address", e.address.as_deref(), 200)?;
    let phone = optional_text("phone", e.phone.as_deref(), 32)?;
    let trade = optional_text("trade", e.trade.as_deref(), 32)?;
    if e.photo.is_empty() {
        return Err(
            FieldError::new("invalid_photo", "facePhoto", "字段 facePhoto 不能为空").into(),
        );
    }
    let info = photo::inspect(&e.photo, app.settings.max_photo_bytes).map_err(|err| {
        FieldError::new(
            "invalid_photo",
            "facePhoto",
            format!("字段 facePhoto：{err}"),
        )
    })?;
    if let Some(existing) = app.store.worker_by_idcard(id.as_str()).await? {
        return Err(EnrolError::Exists {
            person_id: visible_id(app, by, existing.person_id).await?,
        });
    }
    let photo = std::sync::Arc::new(e.photo);
    check_face(app, &photo).await?;
    let person_id = app.ids.next();
    let face_key = store_face(app, person_id, &photo, info).await?;
    let worker = Worker {
        person_id,
        idcard_no: id.as_str().to_owned(),
        name,
        gender,
        nation,
        address,
        phone,
        face_key: Some(face_key.clone()),
        created_at: now,
        updated_at: now,
    };
    match create(app, &worker).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            // Lost a race with another enrolment of the same number.
            if let Err(err) = app.blobs.delete(&face_key).await {
                tracing::warn!(error = %err, "removing an orphan face photo failed");
            }
            let person_id = match app.store.worker_by_idcard(id.as_str()).await? {
                Some(w) => visible_id(app, by, w.person_id).await?,
                None => None,
            };
            return Err(EnrolError::Exists { person_id });
        }
        Err(err) => return Err(err.into()),
    }
    tracing::info!(person = person_id, idcard = %id, "worker enrolled");
    if let Some(project) = e.project_id {
        join_with_details(app, project, person_id, e.team_id, trade.as_deref()).await?;
    }
    Ok(worker)
}

/// The person id, if the caller may see that worker (the `worker_exists` rule above).
async fn visible_id(app: &App, by: &Principal, person_id: i64) -> StoreResult<Option<i64>> {
    Ok(crate::services::scope::worker(app, by, person_id)
        .await?
        .map(|w| w.worker.person_id))
}

/// One worker joins a project (devices told, as [`join_project`]) with their team and trade.
pub async fn join_with_details(
    app: &App,
    project_id: i64,
    person_id: i64,
    team_id: Option<i64>,
    trade: Option<&str>,
) -> StoreResult<()> {
    join_project(app, project_id, &[person_id]).await?;
    app.store
        .set_member_details(project_id, person_id, team_id, trade)
        .await?;
    Ok(())
}

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
    app.blobs.put(&key, photo).await?;
    Ok(key)
}

/// Stores a new worker. `Conflict(person_id)` if the ID-card number is taken.
pub async fn create(app: &App, worker: &Worker) -> StoreResult<()> {
    app.store.create_worker(worker).await
}

/// Workers join a project; every device of the project is told.
pub async fn join_project(app: &App, project_id: i64, person_ids: &[i64]) -> StoreResult<()> {
    let now = crate::runtime::util::now_ms();
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
    let now = crate::runtime::util::now_ms();
    if !app
        .store
        .remove_project_worker(project_id, person_id, now)
        .await?
    {
        return Ok(false);
    }
    app.directory.forget_rosters();
    let param = PersonIdsParam::new([person_id]).to_text();
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

/// Applies the face rules (docs/DEVICES.md RC-DEV-07 to RC-DEV-12) to an enrolment photo, on the blocking pool: the
/// detector takes a good part of a second of CPU.
pub async fn check_face(app: &App, photo: &std::sync::Arc<Vec<u8>>) -> Result<(), FieldError> {
    let Some(checker) = app.faces.clone() else {
        return Ok(());
    };
    let bytes = photo.clone();
    let verdict = tokio::task::spawn_blocking(move || checker.check(&bytes)).await;
    match verdict {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(FieldError::new(
            e.code(),
            "facePhoto",
            format!("字段 facePhoto：{e}"),
        )),
        Err(e) => {
            tracing::error!(error = %e, "the face detector failed");
            Err(FieldError::new(
                "undecodable",
                "facePhoto",
                "字段 facePhoto：无法检测人脸",
            ))
        }
    }
}

/// Puts a worker on the blacklist: off every roster at once, and every device of their
/// active projects deletes them.
pub async fn blacklist(app: &App, person_id: i64, reason: &str, by: &str) -> StoreResult<()> {
    let entry = crate::store::console::BlacklistEntry {
        person_id,
        reason: reason.to_owned(),
        created_by: by.to_owned(),
        created_at: now_ms(),
    };
    app.store.blacklist_worker(&entry).await?;
    app.directory.forget_rosters();
    let param = PersonIdsParam::new([person_id]).to_text();
    for m in app.store.memberships(person_id).await? {
        if m.status != "active" {
            continue;
        }
        for device in app.store.devices(Some(m.project_id)).await? {
            tasks::create(
                app,
                &device.sn,
                ApiCode::DelDevicePerson,
                param.clone(),
                vec![person_id],
            )
            .await?;
        }
    }
    Ok(())
}

/// Takes a worker off the blacklist; the devices of their active projects get them back.
/// `false` if they were not listed.
pub async fn unblacklist(app: &App, person_id: i64) -> StoreResult<bool> {
    if !app.store.unblacklist_worker(person_id).await? {
        return Ok(false);
    }
    for m in app.store.memberships(person_id).await? {
        if m.status == "active" {
            for device in app.store.devices(Some(m.project_id)).await? {
                tasks::enqueue_update(app, &device.sn, &[person_id]).await?;
            }
        }
    }
    Ok(true)
}

/// Those of `person_ids` who are on the blacklist.
pub async fn blacklisted_among(app: &App, person_ids: &[i64]) -> StoreResult<Vec<i64>> {
    let mut listed = Vec::new();
    for &p in person_ids {
        if app.store.blacklist_entry(p).await?.is_some() {
            listed.push(p);
        }
    }
    Ok(listed)
}
