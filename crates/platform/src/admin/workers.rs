//! `/api/v1/workers`: enrolment of workers (人员) with their face photo, and reading them.
//!
//! ID-card numbers are sensitive personal information (PIPL): they are validated with
//! [`IdCardNo::parse`], stored in full, and leave this API only masked
//! (`330102********1234`), in every answer. Face photos are checked with [`photo::inspect`]
//! (JPEG/PNG, `max_photo_bytes`), stored with `services::workers::store_face`, and shown as
//! signed, expiring URLs.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{ApiJson, QueryParams, echo, optional_text, path_id, required_text};
use crate::idcard::{self, Gender, IdCardNo};
use crate::photo;
use crate::services;
use crate::state::{App, AppState};
use crate::store::{StoreError, Worker};
use crate::util::{now_ms, today_beijing};

/// Default and largest page of `GET /workers`.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

/// The body limit of `POST /workers`: a base64 photo of `max_photo_bytes` plus 64 KB for
/// the rest (axum's default 2 MB stays on every other route).
pub fn body_limit(max_photo_bytes: usize) -> usize {
    max_photo_bytes.saturating_mul(4) / 3 + 64 * 1024
}

pub fn routes(max_photo_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/workers",
            post(create)
                .layer(DefaultBodyLimit::max(body_limit(max_photo_bytes)))
                .get(list),
        )
        .route("/workers/{person_id}", get(show))
}

/// `POST /workers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateWorker {
    /// 18-character citizen ID-card number (GB 11643-1999); answered masked.
    pub idcard_no: String,
    pub name: String,
    /// Default: from the ID-card number (男 / 女).
    #[serde(default)]
    pub gender: Option<String>,
    #[serde(default)]
    pub nation: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// The face photo, base64 (JPEG or PNG, at most `max_photo_bytes`, default 400 KB); a
    /// `data:image/...;base64,` prefix is accepted.
    pub face_photo: String,
}

/// A worker as the admin API shows it: the ID-card number masked, the face as a signed URL.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    pub person_id: String,
    /// Masked: first 6 and last 4 characters (`330102********1234`).
    pub idcard_no: String,
    pub name: String,
    pub gender: Option<String>,
    pub nation: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    /// Signed, expiring URL of the face photo.
    pub face_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// `GET /workers`: a page in person-id order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerPage {
    pub workers: Vec<WorkerView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The admin view of a worker (masked ID number, signed face URL).
pub fn view(app: &App, w: &Worker, now: i64) -> WorkerView {
    worker_view(w, w.face_key.as_deref().map(|k| app.file_url(k, now)))
}

/// The admin view of a worker with a given face URL: the ID-card number masked.
pub fn worker_view(w: &Worker, face_url: Option<String>) -> WorkerView {
    WorkerView {
        person_id: w.person_id.to_string(),
        idcard_no: idcard::mask(&w.idcard_no),
        name: w.name.clone(),
        gender: w.gender.clone(),
        nation: w.nation.clone(),
        address: w.address.clone(),
        phone: w.phone.clone(),
        face_url,
        created_at: w.created_at,
        updated_at: w.updated_at,
    }
}

/// Decodes a base64 photo: standard or URL-safe alphabet, padding optional, whitespace and a
/// `data:` URL prefix ignored.
fn decode_photo(text: &str) -> Option<Vec<u8>> {
    let text = match text.trim().strip_prefix("data:") {
        Some(rest) => rest.split_once(',')?.1,
        None => text.trim(),
    };
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return None;
    }
    let lenient = base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent);
    let standard = base64::engine::GeneralPurpose::new(&base64::alphabet::STANDARD, lenient);
    let url_safe = base64::engine::GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient);
    standard
        .decode(&compact)
        .or_else(|_| url_safe.decode(&compact))
        .ok()
}

fn worker_exists(person_id: i64) -> ApiError {
    ApiError::Conflict {
        code: "worker_exists",
        message: "该身份证号的工人已存在".to_owned(),
        extra: serde_json::Map::new(),
    }
    .with("personId", serde_json::Value::from(person_id.to_string()))
}

/// Enrol a worker with a face photo.
#[utoipa::path(
    post,
    operation_id = "createWorker",
    path = "/api/v1/workers",
    tag = "workers",
    request_body = CreateWorker,
    responses(
        (status = 201, description = "Created", body = WorkerView),
        (status = 409, description = "A worker with this ID-card number exists (`worker_exists`, with its `personId`)", body = super::openapi::ErrorBody),
        (status = 413, description = "Body over the limit", body = super::openapi::ErrorBody),
        (status = 422, description = "`invalid_idcard`, `invalid_photo` or another field error", body = super::openapi::ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    ApiJson(body): ApiJson<CreateWorker>,
) -> Result<(StatusCode, Json<WorkerView>), ApiError> {
    let now = now_ms();
    let id = IdCardNo::parse(body.idcard_no.trim(), today_beijing(now))
        .map_err(|e| ApiError::invalid_field("invalid_idcard", "idcardNo", e.to_string()))?;
    let name = required_text("name", &body.name, 64)?;
    let gender = optional_text("gender", body.gender.as_deref(), 8)?.or_else(|| {
        Some(
            match id.gender() {
                Gender::Male => "男",
                Gender::Female => "女",
            }
            .to_owned(),
        )
    });
    let nation = optional_text("nation", body.nation.as_deref(), 32)?;
    let address = optional_text("address", body.address.as_deref(), 200)?;
    let phone = optional_text("phone", body.phone.as_deref(), 32)?;
    if body.face_photo.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "invalid_photo",
            "facePhoto",
            "字段 facePhoto 不能为空",
        ));
    }
    let bytes = decode_photo(&body.face_photo).ok_or_else(|| {
        ApiError::invalid_field(
            "invalid_photo",
            "facePhoto",
            "字段 facePhoto 不是有效的 Base64",
        )
    })?;
    let info = photo::inspect(&bytes, app.settings.max_photo_bytes).map_err(|e| {
        ApiError::invalid_field("invalid_photo", "facePhoto", format!("字段 facePhoto：{e}"))
    })?;

    if let Some(existing) = app.store.worker_by_idcard(id.as_str()).await? {
        return Err(worker_exists(existing.person_id));
    }
    let person_id = app.ids.next();
    let face_key = services::workers::store_face(&app, person_id, &bytes, info)
        .await
        .map_err(|e| ApiError::Internal(format!("storing a face photo: {e}")))?;
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
    match services::workers::create(&app, &worker).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            // Lost a race with another enrolment of the same number.
            if let Err(e) = app.files.delete(&face_key).await {
                tracing::warn!(error = %e, "removing an orphan face photo failed");
            }
            return match app.store.worker_by_idcard(id.as_str()).await? {
                Some(existing) => Err(worker_exists(existing.person_id)),
                None => Err(ApiError::Conflict {
                    code: "worker_exists",
                    message: "该身份证号的工人已存在".to_owned(),
                    extra: serde_json::Map::new(),
                }),
            };
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(person = person_id, idcard = %id, "worker enrolled");
    Ok((StatusCode::CREATED, Json(view(&app, &worker, now))))
}

/// List workers in person-id order (ID-card numbers masked).
#[utoipa::path(
    get,
    operation_id = "listWorkers",
    path = "/api/v1/workers",
    tag = "workers",
    params(
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Page size, default 100, at most 1000"),
    ),
    responses(
        (status = 200, description = "OK", body = WorkerPage),
        (status = 422, description = "A bad `cursor` or `limit`", body = super::openapi::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    q: QueryParams,
) -> Result<Json<WorkerPage>, ApiError> {
    let limit = q.limit(DEFAULT_PAGE, MAX_PAGE)?;
    let after = q.id("cursor")?;
    let mut rows = app.store.workers(after, limit + 1).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|w| w.person_id.to_string())
    } else {
        None
    };
    let now = now_ms();
    Ok(Json(WorkerPage {
        workers: rows.iter().map(|w| view(&app, w, now)).collect(),
        next_cursor,
    }))
}

/// One worker (ID-card number masked, signed face URL).
#[utoipa::path(
    get,
    operation_id = "getWorker",
    path = "/api/v1/workers/{personId}",
    tag = "workers",
    params(("personId" = String, Path, description = "Person id")),
    responses(
        (status = 200, description = "OK", body = WorkerView),
        (status = 404, description = "Not found", body = super::openapi::ErrorBody),
    )
)]
pub async fn show(
    State(app): State<AppState>,
    Path(person_id): Path<String>,
) -> Result<Json<WorkerView>, ApiError> {
    let id = path_id("工人", &person_id)?;
    let worker = app
        .store
        .worker(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("工人 {}", echo(&person_id))))?;
    Ok(Json(view(&app, &worker, now_ms())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY_JPEG_B64: &str = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDA0NDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==";

    #[test]
    fn photos_decode_in_every_common_spelling() {
        let plain = decode_photo(TINY_JPEG_B64).unwrap();
        assert!(plain.starts_with(&[0xFF, 0xD8, 0xFF]));
        let unpadded = TINY_JPEG_B64.trim_end_matches('=');
        assert_eq!(decode_photo(unpadded).unwrap(), plain);
        let wrapped: String = TINY_JPEG_B64
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
            .collect();
        assert_eq!(decode_photo(&wrapped).unwrap(), plain);
        let data_url = format!("data:image/jpeg;base64,{TINY_JPEG_B64}");
        assert_eq!(decode_photo(&data_url).unwrap(), plain);
        let url_safe = TINY_JPEG_B64.replace('+', "-").replace('/', "_");
        assert_eq!(decode_photo(&url_safe).unwrap(), plain);
        assert_eq!(decode_photo("not base64!"), None);
        assert_eq!(decode_photo("   "), None);
        assert_eq!(decode_photo("data:image/png"), None);
    }

    #[test]
    fn views_mask_the_idcard_number() {
        let w = Worker {
            person_id: 7,
            idcard_no: "11010519491231002X".into(),
            name: "李四".into(),
            gender: Some("女".into()),
            nation: None,
            address: None,
            phone: Some("13800000000".into()),
            face_key: Some("faces/7/ab.jpg".into()),
            created_at: 1,
            updated_at: 2,
        };
        let v = serde_json::to_value(worker_view(&w, Some("https://x/f?sig".into()))).unwrap();
        assert_eq!(v["personId"], "7");
        assert_eq!(v["idcardNo"], "110105********002X");
        assert!(!v.to_string().contains("19491231"));
        assert_eq!(v["faceUrl"], "https://x/f?sig");
        assert_eq!(v["updatedAt"], 2);
    }

    #[test]
    fn body_limit_fits_a_max_photo() {
        assert_eq!(body_limit(409_600), 409_600 * 4 / 3 + 65_536);
        assert!(body_limit(usize::MAX) > 0);
    }
}
