//! `/api/v1/devices`: registering devices, binding them to projects, and what the platform
//! knows of them — online state, heartbeat, firmware, counts, presence history and the
//! per-person sync state.
//!
//! Registration and patches go through `services::devices`, which applies the binding rules
//! of ZJ-TASK-07 and ZJ-TASK-08: binding or rebinding makes a T_SEND_PERSON, unbinding a
//! T_CLEAR_DEVICE_PERSON. `projectId: null` in a patch unbinds; an absent `projectId` leaves
//! the binding alone.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::access::{Caller, device_or_404};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, QueryParams, echo, optional_text, parse_id};
use crate::accounts::Scope;
use crate::runtime::util::now_ms;
use crate::services;
use crate::state::{App, AppState};
use crate::store::{Device, DeviceKind, DevicePatch, Direction, StoreError};

/// Longest serial number accepted, in characters.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/devices", post(create).get(list))
        .route("/devices/{sn}", get(show).patch(update))
        .route("/devices/{sn}/presence", get(presence))
        .route("/devices/{sn}/persons", get(persons))
}

/// `POST /devices`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateDevice {
    /// Serial number, unique across the platform.
    pub sn: String,
    #[serde(deserialize_with = "rollcall_protocol::params::lenient::string")]
    #[schema(value_type = String)]
    pub vendor_id: String,
    /// A bound device gets the project's roster (T_SEND_PERSON) at once.
    #[serde(
        default,
        deserialize_with = "rollcall_protocol::params::lenient::opt_string"
    )]
    #[schema(value_type = Option<String>)]
    pub project_id: Option<String>,
    #[schema(value_type = DeviceKind)]
    pub kind: String,
    /// Default `both`.
    #[serde(default)]
    #[schema(value_type = Option<Direction>)]
    pub direction: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `PATCH /devices/{sn}`: absent members are left alone.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchDevice {
    /// A project id binds (or rebinds) the device; `null` unbinds it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub project_id: Option<Option<serde_json::Value>>,
    #[serde(default)]
    #[schema(value_type = Option<DeviceKind>)]
    pub kind: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Direction>)]
    pub direction: Option<String>,
    /// `null` or `""` clears the name.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<serde_json::Value>>,
    #[serde(
        default,
        deserialize_with = "rollcall_protocol::params::lenient::opt_bool"
    )]
    pub enabled: Option<bool>,
}

/// A member that is present (even as `null`) is `Some`; an absent one stays `None` (the
/// field's `default`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(Some((!v.is_null()).then_some(v)))
}

/// A device and what the platform knows of it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    pub sn: String,
    pub vendor_id: String,
    /// `null`: unbound.
    pub project_id: Option<String>,
    pub kind: DeviceKind,
    pub direction: Direction,
    pub name: Option<String>,
    pub enabled: bool,
    /// A heartbeat younger than `offline_after_secs`.
    pub online: bool,
    pub last_heartbeat_at: Option<i64>,
    pub firmware_version: Option<String>,
    pub ip: Option<String>,
    /// As last reported by the device (T_UPDATE_TASKS_STATUS).
    pub person_count: Option<i64>,
    pub face_count: Option<i64>,
    /// The roster size of its project (0 when unbound).
    pub expected_person_count: i64,
    pub created_at: i64,
    /// The node holding its TCP connection (`GET /devices/{sn}` only, while it is online
    /// over TCP; `null` otherwise and in lists).
    pub node: Option<String>,
}

/// `GET /devices`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<DeviceView>,
}

/// One online/offline transition.
#[derive(Debug, Serialize, ToSchema)]
pub struct PresenceEvent {
    pub online: bool,
    pub at: i64,
}

/// `GET /devices/{sn}/presence`: transitions newest first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceHistory {
    pub sn: String,
    pub online: bool,
    pub last_heartbeat_at: Option<i64>,
    pub history: Vec<PresenceEvent>,
}

/// Whether a device accepted a person and their face (from its task status reports).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonSyncView {
    pub person_id: String,
    pub person_ok: bool,
    /// The device's errCode when the person was refused.
    pub person_err: Option<String>,
    pub face_ok: bool,
    pub face_err: Option<String>,
    pub updated_at: i64,
}

/// `GET /devices/{sn}/persons`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonSyncList {
    pub sn: String,
    pub persons: Vec<PersonSyncView>,
}

/// The admin view of a device; `expected` is its project's roster size.
///
/// The node that sees the device's heartbeats answers with them at once (firmware version and
/// address included); other nodes answer what was last written behind, at most one flush
/// interval old.
pub fn device_view(app: &App, d: &Device, expected: i64, now: i64) -> DeviceView {
    let (firmware_version, ip) = match app.presence.live(&d.sn) {
        Some((at, fw, ip)) if d.last_heartbeat_at.is_none_or(|stored| at >= stored) => (
            fw.or_else(|| d.firmware_version.clone()),
            ip.or_else(|| d.ip.clone()),
        ),
        _ => (d.firmware_version.clone(), d.ip.clone()),
    };
    DeviceView {
        sn: d.sn.clone(),
        vendor_id: d.vendor_id.to_string(),
        project_id: d.project_id.map(|p| p.to_string()),
        kind: d.kind,
        direction: d.direction,
        name: d.name.clone(),
        enabled: d.enabled,
        online: services::devices::is_online(app, d, now),
        last_heartbeat_at: newer(app.presence.last_heartbeat(&d.sn), d.last_heartbeat_at),
        firmware_version,
        ip,
        person_count: d.person_count,
        face_count: d.face_count,
        expected_person_count: expected,
        created_at: d.created_at,
        node: None,
    }
}

fn newer(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The roster size of a device's project (0 unbound).
async fn expected(app: &App, project: Option<i64>) -> Result<i64, ApiError> {
    Ok(match project {
        Some(p) => app.store.roster(p).await?.len() as i64,
        None => 0,
    })
}

fn check_sn(sn: &str) -> Result<String, ApiError> {
    Ok(rollcall_rules::validate::sn(sn)?)
}

fn kind(value: &str) -> Result<DeviceKind, ApiError> {
    DeviceKind::parse(&value.trim().to_ascii_lowercase()).ok_or_else(|| {
        ApiError::invalid_field(
            "invalid_kind",
            "kind",
            format!(
                "字段 kind 应为 face、iris、mobile、qr、gate 或 collector，收到 {}",
                echo(value)
            ),
        )
    })
}

fn direction(value: &str) -> Result<Direction, ApiError> {
    Direction::parse(&value.trim().to_ascii_lowercase()).ok_or_else(|| {
        ApiError::invalid_field(
            "invalid_direction",
            "direction",
            format!("字段 direction 应为 in、out 或 both，收到 {}", echo(value)),
        )
    })
}

/// A project id that must name an existing project (422 otherwise).
async fn existing_project(app: &App, caller: &Caller, raw: &str) -> Result<i64, ApiError> {
    let id = parse_id("projectId", raw)?;
    // A project outside the caller's scope reads as unknown.
    if services::scope::project(app, &caller.0, id)
        .await?
        .is_none()
    {
        return Err(ApiError::invalid_field(
            "unknown_project",
            "projectId",
            format!("项目 {id} 不存在"),
        ));
    }
    Ok(id)
}

/// Register a device; a bound one gets its project's roster at once.
#[utoipa::path(
    post,
    operation_id = "createDevice",
    path = "/api/v1/devices",
    tag = "devices",
    request_body = CreateDevice,
    responses(
        (status = 201, description = "Created", body = DeviceView),
        (status = 409, description = "The sn is taken (`device_exists`)", body = super::error::ErrorBody),
        (status = 422, description = "Unknown vendor or project, bad kind or direction", body = super::error::ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateDevice>,
) -> Result<(StatusCode, Json<DeviceView>), ApiError> {
    let sn = check_sn(&body.sn)?;
    let kind = kind(&body.kind)?;
    let direction = match body.direction.as_deref().filter(|d| !d.trim().is_empty()) {
        Some(d) => direction(d)?,
        None => Direction::Both,
    };
    let name = optional_text("name", body.name.as_deref(), 100)?;
    let vendor_id = parse_id("vendorId", body.vendor_id.trim())?;
    if app.store.vendor(vendor_id).await?.is_none() {
        return Err(ApiError::invalid_field(
            "unknown_vendor",
            "vendorId",
            format!("厂商 {vendor_id} 不存在"),
        ));
    }
    let project_id = match body.project_id.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => Some(existing_project(&app, &caller, p).await?),
        // A project manager's device must land in one of their projects, or they would
        // lose sight of it.
        _ if caller.0.scope() != Scope::All => {
            return Err(ApiError::invalid_field(
                "invalid_field",
                "projectId",
                "项目管理员登记设备时须选择项目（projectId）",
            ));
        }
        _ => None,
    };
    let exists = || {
        ApiError::Conflict {
            code: "device_exists",
            message: format!("设备 {sn} 已存在"),
            extra: serde_json::Map::new(),
        }
        .with("sn", serde_json::Value::from(sn.clone()))
    };
    if app.store.device(&sn).await?.is_some() {
        return Err(exists());
    }
    let mut device = services::devices::unbound(&sn, vendor_id);
    device.project_id = project_id;
    device.kind = kind;
    device.direction = direction;
    device.name = name;
    let device = match services::devices::register(&app, device).await {
        Ok(d) => d,
        Err(StoreError::Conflict(_)) => return Err(exists()),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(sn = %device.sn, project = ?device.project_id, "device registered");
    let expected = expected(&app, device.project_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(device_view(&app, &device, expected, now_ms())),
    ))
}

/// Change a device; binding rules apply when `projectId` changes.
#[utoipa::path(
    patch,
    operation_id = "updateDevice",
    path = "/api/v1/devices/{sn}",
    tag = "devices",
    params(("sn" = String, Path, description = "Serial number")),
    request_body = PatchDevice,
    responses(
        (status = 200, description = "OK", body = DeviceView),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
        (status = 422, description = "Unknown project, bad kind or direction", body = super::error::ErrorBody),
    )
)]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(sn): ApiPath<String>,
    ApiJson(body): ApiJson<PatchDevice>,
) -> Result<Json<DeviceView>, ApiError> {
    device_or_404(&app, &caller, &sn).await?;
    let mut patch = DevicePatch {
        kind: body.kind.as_deref().map(kind).transpose()?,
        direction: body.direction.as_deref().map(direction).transpose()?,
        enabled: body.enabled,
        ..DevicePatch::default()
    };
    if let Some(project) = body.project_id {
        let text = project
            .map(|v| value_text("projectId", &v))
            .transpose()?
            .filter(|t| !t.trim().is_empty());
        patch.project_id = Some(match text {
            // `null` (or "") unbinds — an administrator's decision: an unbound device is
            // outside every project manager's scope.
            None if caller.0.scope() != Scope::All => {
                return Err(ApiError::invalid_field(
                    "invalid_field",
                    "projectId",
                    "项目管理员不能解绑设备",
                ));
            }
            None => None,
            Some(t) => Some(existing_project(&app, &caller, t.trim()).await?),
        });
    }
    if let Some(name) = body.name {
        patch.name = Some(match name {
            None => None,
            // A name is text: a number is refused, unlike the lenient ids.
            Some(serde_json::Value::String(v)) => optional_text("name", Some(&v), 100)?,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "invalid_json",
                    "name",
                    "字段 name 类型错误: 需要字符串",
                ));
            }
        });
    }
    let device = services::devices::update(&app, &sn, &patch).await?;
    tracing::info!(sn = %device.sn, project = ?device.project_id, "device updated");
    let expected = expected(&app, device.project_id).await?;
    Ok(Json(device_view(&app, &device, expected, now_ms())))
}

/// A JSON string (or number, for ids) as text.
fn value_text(field: &str, v: &serde_json::Value) -> Result<String, ApiError> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        _ => Err(ApiError::invalid_field(
            "invalid_json",
            field,
            format!("字段 {field} 类型错误: 需要字符串"),
        )),
    }
}

/// One device.
#[utoipa::path(
    get,
    operation_id = "getDevice",
    path = "/api/v1/devices/{sn}",
    tag = "devices",
    params(("sn" = String, Path, description = "Serial number")),
    responses(
        (status = 200, description = "OK", body = DeviceView),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(sn): ApiPath<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let device = device_or_404(&app, &caller, &sn).await?;
    let expected = expected(&app, device.project_id).await?;
    let now = now_ms();
    let mut view = device_view(&app, &device, expected, now);
    if view.online {
        view.node = app.store.device_session(&sn).await?.map(|s| s.node);
    }
    Ok(Json(view))
}

/// List devices, optionally of one project.
#[utoipa::path(
    get,
    operation_id = "listDevices",
    path = "/api/v1/devices",
    tag = "devices",
    params(("projectId" = Option<String>, Query, description = "Only the devices of this project")),
    responses(
        (status = 200, description = "OK", body = DeviceList),
        (status = 422, description = "A malformed `projectId`", body = super::error::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    q: QueryParams,
) -> Result<Json<DeviceList>, ApiError> {
    let project = q.id("projectId")?;
    let devices = services::scope::devices(&app, &caller.0, project).await?;
    let mut rosters: HashMap<i64, i64> = HashMap::new();
    let now = now_ms();
    let mut out = Vec::with_capacity(devices.len());
    for d in &devices {
        let expected = match d.project_id {
            Some(p) => match rosters.get(&p) {
                Some(n) => *n,
                None => {
                    let n = expected(&app, Some(p)).await?;
                    rosters.insert(p, n);
                    n
                }
            },
            None => 0,
        };
        out.push(device_view(&app, d, expected, now));
    }
    Ok(Json(DeviceList { devices: out }))
}

/// A device's online/offline transitions, newest first.
#[utoipa::path(
    get,
    operation_id = "getDevicePresence",
    path = "/api/v1/devices/{sn}/presence",
    tag = "devices",
    params(
        ("sn" = String, Path, description = "Serial number"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "Most transitions, default 100, at most 1000 (a larger one counts as 1000)"),
    ),
    responses(
        (status = 200, description = "OK", body = PresenceHistory),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn presence(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(sn): ApiPath<String>,
    q: QueryParams,
) -> Result<Json<PresenceHistory>, ApiError> {
    let limit = q.limit(100, 1000)?;
    let device = device_or_404(&app, &caller, &sn).await?;
    let history = app.store.presence_history(&device.sn, limit).await?;
    Ok(Json(PresenceHistory {
        online: services::devices::is_online(&app, &device, now_ms()),
        last_heartbeat_at: newer(
            app.presence.last_heartbeat(&device.sn),
            device.last_heartbeat_at,
        ),
        sn: device.sn,
        history: history
            .into_iter()
            .map(|t| PresenceEvent {
                online: t.online,
                at: t.at,
            })
            .collect(),
    }))
}

/// Per-person sync state of a device: whether it accepted each person and face.
#[utoipa::path(
    get,
    operation_id = "getDevicePersonSync",
    path = "/api/v1/devices/{sn}/persons",
    tag = "devices",
    params(("sn" = String, Path, description = "Serial number")),
    responses(
        (status = 200, description = "OK", body = PersonSyncList),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn persons(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(sn): ApiPath<String>,
) -> Result<Json<PersonSyncList>, ApiError> {
    let device = device_or_404(&app, &caller, &sn).await?;
    let rows = app.store.person_sync(&device.sn).await?;
    Ok(Json(PersonSyncList {
        sn: device.sn,
        persons: rows
            .into_iter()
            .map(|p| PersonSyncView {
                person_id: p.person_id.to_string(),
                person_ok: p.person_ok,
                person_err: p.person_err,
                face_ok: p.face_ok,
                face_err: p.face_err,
                updated_at: p.updated_at,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tells_absent_from_null() {
        let p: PatchDevice = serde_json::from_str(r#"{"projectId": null}"#).unwrap();
        assert_eq!(p.project_id, Some(None));
        let p: PatchDevice = serde_json::from_str(r#"{"projectId": "12"}"#).unwrap();
        assert_eq!(p.project_id, Some(Some(serde_json::json!("12"))));
        let p: PatchDevice = serde_json::from_str(r#"{"enabled": "0"}"#).unwrap();
        assert_eq!(p.project_id, None);
        assert_eq!(p.name, None);
        assert_eq!(p.enabled, Some(false));
    }

    #[test]
    fn serial_numbers() {
        assert_eq!(check_sn(" SN-001 ").unwrap(), "SN-001");
        for bad in ["", "  ", "a b", "a/b", "a%2F", &"x".repeat(65)] {
            assert!(check_sn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kinds_and_directions() {
        assert_eq!(kind("gate").unwrap(), DeviceKind::Gate);
        assert_eq!(kind("Gate").unwrap(), DeviceKind::Gate);
        assert!(kind("camera").is_err());
        assert_eq!(direction("in").unwrap(), Direction::In);
        assert!(direction("up").is_err());
    }

    #[test]
    fn newer_heartbeat_wins() {
        assert_eq!(newer(Some(5), Some(3)), Some(5));
        assert_eq!(newer(None, Some(3)), Some(3));
        assert_eq!(newer(Some(4), None), Some(4));
        assert_eq!(newer(None, None), None);
    }
}
