//! Devices: registration, binding to projects and the roster tasks binding makes
//! (PROTOCOL.md §5 "Binding").
//!
//! Binding a device to a project, or rebinding it, makes one T_SEND_PERSON (which supersedes
//! its older person tasks: the device replaces its whole list). Unbinding makes a
//! T_CLEAR_DEVICE_PERSON. An unbound device has an empty roster.

use rollcall_protocol::ApiCode;

use crate::runtime::util::now_ms;
use crate::services::tasks;
use crate::state::App;
use crate::store::{Device, DeviceKind, DevicePatch, Direction, StoreError, StoreResult, Task};

/// Registers a device (sn unique across the platform); a bound one gets its roster.
pub async fn register(app: &App, device: Device) -> StoreResult<Device> {
    app.store.create_device(&device).await?;
    app.directory.forget_device(&device.sn);
    if let Some(project) = device.project_id {
        send_roster(app, &device.sn, project).await?;
    }
    Ok(device)
}

/// The device a valid C_AUTH of an unknown sn registers: unbound, enabled, kind `face`
/// (the most common terminal; an administrator corrects it when binding).
pub fn unbound(sn: &str, vendor_id: i64) -> Device {
    Device {
        sn: sn.to_owned(),
        vendor_id,
        project_id: None,
        kind: DeviceKind::Face,
        direction: Direction::Both,
        name: None,
        enabled: true,
        firmware_version: None,
        ip: None,
        last_heartbeat_at: None,
        person_count: None,
        face_count: None,
        created_at: now_ms(),
    }
}

/// Applies a patch, then the binding rules if the project changed.
pub async fn update(app: &App, sn: &str, patch: &DevicePatch) -> StoreResult<Device> {
    let before = app
        .store
        .device(sn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("device {sn}")))?;
    let after = app.store.update_device(sn, patch).await?;
    app.directory.forget_device(sn);
    if before.project_id != after.project_id {
        match after.project_id {
            Some(project) => {
                send_roster(app, sn, project).await?;
            }
            None => {
                tasks::create(app, sn, ApiCode::ClearDevicePerson, "{}".into(), Vec::new()).await?;
            }
        }
    }
    Ok(after)
}

/// A T_SEND_PERSON carrying the project's whole roster, frozen now.
pub async fn send_roster(app: &App, sn: &str, project_id: i64) -> StoreResult<Task> {
    let roster = app.store.roster(project_id).await?;
    tasks::create(app, sn, ApiCode::SendPerson, "{}".into(), roster).await
}

/// Whether a device is online: by this node's heartbeats, else by its stored last heartbeat.
pub fn is_online(app: &App, device: &Device, now: i64) -> bool {
    app.presence.is_online(&device.sn).unwrap_or_else(|| {
        device
            .last_heartbeat_at
            .is_some_and(|t| now - t <= app.settings.offline_after_secs as i64 * 1000)
    })
}
