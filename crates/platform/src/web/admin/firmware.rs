//! `/api/v1/firmware`: firmware packages (administrators upload them: version + file, SHA-256
//! computed here) and their rollout as `T_UPDATE_DEVICE_VERSION` tasks to one device or to
//! every device of the package's vendor and kind. The task stores the package as
//! `/files/{key}`; the download URL is signed when the task is delivered
//! (`services::tasks::deliverable_param`), so a late delivery never carries an expired URL.
//! Per-device status is the status of those tasks (`GET /firmware/{id}`).

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use rollcall_protocol::ApiCode;
use rollcall_protocol::params::{self, FirmwareInfo};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::access::Caller;
use super::access::device_or_404;
use super::error::ApiError;
use super::extract::{ApiJson, ApiMultipart, ApiPath, echo, form_error, parse_id, path_id};
use crate::runtime::util::now_ms;
use crate::services;
use crate::state::{App, AppState};
use crate::store::console::Firmware;
use crate::store::{DeviceKind, StoreError, TaskState};

/// Largest firmware package.
const MAX_PACKAGE_BYTES: usize = 512 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/firmware",
            post(upload)
                .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES))
                .get(list),
        )
        .route("/firmware/{id}", get(show))
        .route("/firmware/{id}/deploy", post(deploy))
}

/// A firmware package.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirmwareView {
    pub id: String,
    pub vendor_id: String,
    /// The device kind it is for.
    pub kind: String,
    pub version: String,
    pub sha256: String,
    pub size: i64,
    pub notes: Option<String>,
    pub created_at: i64,
}

/// `GET /firmware`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FirmwareList {
    pub packages: Vec<FirmwareView>,
}

/// A package with the rollout status per device.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirmwareDetail {
    #[serde(flatten)]
    pub package: FirmwareView,
    pub devices: Vec<RolloutView>,
}

/// Where one device is with a package.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    pub sn: String,
    pub taskid: String,
    pub status: TaskState,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// The version the device reports now.
    pub firmware_version: Option<String>,
}

/// `POST /firmware/{id}/deploy`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Deploy {
    /// One device; without it, every device of the package's vendor and kind.
    #[serde(default)]
    pub sn: Option<String>,
}

/// The tasks made.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deployed {
    pub tasks: Vec<DeployedTask>,
}

/// One task made by a rollout.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeployedTask {
    pub sn: String,
    pub taskid: String,
}

fn view(f: &Firmware) -> FirmwareView {
    FirmwareView {
        id: f.id.to_string(),
        vendor_id: f.vendor_id.to_string(),
        kind: f.kind.clone(),
        version: f.version.clone(),
        sha256: f.sha256.clone(),
        size: f.size,
        notes: f.notes.clone(),
        created_at: f.created_at,
    }
}

async fn package_or_404(app: &App, raw: &str) -> Result<Firmware, ApiError> {
    let id = path_id("固件", raw)?;
    app.store
        .firmware(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("固件 {}", echo(raw))))
}

/// Uploads a package (administrators): multipart with `vendorId`, `kind`, `version`,
/// optional `notes`, and the `file`.
#[utoipa::path(post, operation_id = "uploadFirmware", path = "/api/v1/firmware", tag = "firmware",
    request_body(content_type = "multipart/form-data", description = "`vendorId`, `kind`, `version`, `notes`?, `file`"),
    responses((status = 201, description = "Stored", body = FirmwareView),
              (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
              (status = 409, description = "`firmware_exists`: this version of this vendor and kind", body = super::error::ErrorBody),
              (status = 422, description = "A missing or bad field, named", body = super::error::ErrorBody)))]
pub async fn upload(
    State(app): State<AppState>,
    caller: Caller,
    ApiMultipart(mut form): ApiMultipart,
) -> Result<(StatusCode, Json<FirmwareView>), ApiError> {
    caller.require_admin()?;
    let (mut vendor, mut kind, mut version, mut notes, mut file) = (None, None, None, None, None);
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => file = Some(field.bytes().await.map_err(form_error)?),
            "vendorId" | "kind" | "version" | "notes" => {
                let text = field.text().await.map_err(form_error)?;
                match name.as_str() {
                    "vendorId" => vendor = Some(text),
                    "kind" => kind = Some(text),
                    "version" => version = Some(text),
                    _ => notes = Some(text),
                }
            }
            _ => {}
        }
    }
    let vendor_id = parse_id("vendorId", vendor.as_deref().unwrap_or("").trim())?;
    if app.store.vendor(vendor_id).await?.is_none() {
        return Err(ApiError::invalid_field(
            "unknown_vendor",
            "vendorId",
            format!("厂商 {vendor_id} 不存在"),
        ));
    }
    let kind_text = kind.unwrap_or_default();
    let kind = DeviceKind::parse(kind_text.trim()).ok_or_else(|| {
        ApiError::invalid_field(
            "invalid_field",
            "kind",
            format!("字段 kind 无效：{}", echo(&kind_text)),
        )
    })?;
    let version = super::extract::required_text("version", version.as_deref().unwrap_or(""), 64)?;
    let notes = super::extract::optional_text("notes", notes.as_deref(), 500)?;
    let file = file.filter(|f| !f.is_empty()).ok_or_else(|| {
        ApiError::invalid_field("invalid_field", "file", "请上传固件文件（file）")
    })?;
    let id = app.ids.next();
    let sha256 = hex::encode(Sha256::digest(&file));
    let key = format!("firmware/{id}/{}.bin", &sha256[..16]);
    app.blobs
        .put(&key, &file)
        .await
        .map_err(|e| ApiError::Internal(format!("storing firmware: {e}")))?;
    let package = Firmware {
        id,
        vendor_id,
        kind: kind.as_str().to_owned(),
        version: version.clone(),
        file_key: key.clone(),
        sha256,
        size: file.len() as i64,
        notes,
        created_at: now_ms(),
    };
    if let Err(e) = app.store.create_firmware(&package).await {
        if let Err(err) = app.blobs.delete(&key).await {
            tracing::warn!(error = %err, "removing an orphan firmware file failed");
        }
        return Err(match e {
            StoreError::Conflict(_) => ApiError::Conflict {
                code: "firmware_exists",
                message: format!("该厂商的 {} 固件 {version} 已存在", kind.as_str()),
                extra: serde_json::Map::new(),
            },
            e => e.into(),
        });
    }
    Ok((StatusCode::CREATED, Json(view(&package))))
}

/// Lists packages (administrators and auditors).
#[utoipa::path(get, operation_id = "listFirmware", path = "/api/v1/firmware", tag = "firmware",
    responses((status = 200, description = "OK", body = FirmwareList),
              (status = 403, description = "Project managers cannot read firmware packages", body = super::error::ErrorBody)))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<FirmwareList>, ApiError> {
    if caller.0.scope() != crate::accounts::Scope::All {
        return Err(ApiError::Forbidden);
    }
    let packages = app.store.firmwares().await?;
    Ok(Json(FirmwareList {
        packages: packages.iter().map(view).collect(),
    }))
}

/// A package and its rollout status per device.
#[utoipa::path(get, operation_id = "getFirmware", path = "/api/v1/firmware/{id}", tag = "firmware",
    params(("id" = String, Path, description = "Package id")),
    responses((status = 200, description = "OK", body = FirmwareDetail),
              (status = 403, description = "Project managers cannot read firmware packages", body = super::error::ErrorBody),
              (status = 404, description = "Not found", body = super::error::ErrorBody)))]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FirmwareDetail>, ApiError> {
    if caller.0.scope() != crate::accounts::Scope::All {
        return Err(ApiError::Forbidden);
    }
    let package = package_or_404(&app, &id).await?;
    let url = format!("/files/{}", package.file_key);
    let mut devices = Vec::new();
    for device in app.store.devices(None).await? {
        if device.vendor_id != package.vendor_id || device.kind.as_str() != package.kind {
            continue;
        }
        // The newest task of this device that carries this package.
        let task = app
            .store
            .tasks_of_device(&device.sn, 200)
            .await?
            .into_iter()
            .find(|t| {
                t.apicode == ApiCode::UpdateDeviceVersion.as_str()
                    && params::parse::<FirmwareInfo>(&t.param).is_ok_and(|i| i.download_url == url)
            });
        if let Some(t) = task {
            devices.push(RolloutView {
                sn: device.sn.clone(),
                taskid: t.taskid.to_string(),
                status: t.state,
                created_at: t.created_at,
                finished_at: t.finished_at,
                firmware_version: device.firmware_version.clone(),
            });
        }
    }
    Ok(Json(FirmwareDetail {
        package: view(&package),
        devices,
    }))
}

/// Sends the package to one device, or to every device of its vendor and kind
/// (administrators): one `T_UPDATE_DEVICE_VERSION` task each, pushed at once to online ones.
#[utoipa::path(post, operation_id = "deployFirmware", path = "/api/v1/firmware/{id}/deploy", tag = "firmware",
    params(("id" = String, Path, description = "Package id")),
    request_body = Deploy,
    responses((status = 201, description = "Tasks made", body = Deployed),
              (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
              (status = 404, description = "No such package, or no such device `sn`", body = super::error::ErrorBody),
              (status = 422, description = "`wrong_device`: the device's vendor or kind differs", body = super::error::ErrorBody)))]
pub async fn deploy(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Deploy>,
) -> Result<(StatusCode, Json<Deployed>), ApiError> {
    caller.require_admin()?;
    let package = package_or_404(&app, &id).await?;
    let targets = match body.sn.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(sn) => {
            let device = device_or_404(&app, &caller, sn).await?;
            if device.vendor_id != package.vendor_id || device.kind.as_str() != package.kind {
                return Err(ApiError::invalid_field(
                    "wrong_device",
                    "sn",
                    format!("设备 {} 的厂商或类型与固件不符", device.sn),
                ));
            }
            vec![device]
        }
        None => app
            .store
            .devices(None)
            .await?
            .into_iter()
            .filter(|d| d.vendor_id == package.vendor_id && d.kind.as_str() == package.kind)
            .collect(),
    };
    let info = FirmwareInfo {
        version: package.version.clone(),
        size: package.size as u64,
        download_url: format!("/files/{}", package.file_key),
        sha256: package.sha256.clone(),
    };
    let param = params::to_json(&info);
    let mut tasks = Vec::with_capacity(targets.len());
    for device in targets {
        let task = services::tasks::create(
            &app,
            &device.sn,
            ApiCode::UpdateDeviceVersion,
            param.clone(),
            Vec::new(),
        )
        .await?;
        tasks.push(DeployedTask {
            sn: device.sn,
            taskid: task.taskid.to_string(),
        });
    }
    Ok((StatusCode::CREATED, Json(Deployed { tasks })))
}
