//! `/api/v1/workers`: enrolment of workers (人员) with their face photo, reading them, and
//! editing them (`PATCH /workers/{personId}`: their own fields and their national data; the
//! edit reaches every device of the worker's active projects by merging into the pending
//! person update (ZJ-TASK-05), and their national report — docs/UPLINK.md).
//!
//! ID-card numbers are sensitive personal information (PIPL): they are validated with
//! [`IdCardNo::parse`], stored in full, and leave this API only masked
//! (`330102********1234`), in every answer. Face photos are checked with [`photo::inspect`]
//! (JPEG/PNG, `max_photo_bytes`), stored with `services::workers::store_face`, and shown as
//! signed, expiring URLs.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{Caller, visible_worker};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, QueryParams, optional_text, required_text};
use super::national::{NationalView, code_field, date_field, national_view};
use crate::accounts::Scope;
use crate::accounts::audit::AuditNote;
use crate::runtime::util::now_ms;
use crate::services;
use crate::services::workers::{EnrolError, Enrolment};
use crate::state::{App, AppState};
use crate::store::console::Member;
use crate::store::{Worker, WorkerNational, WorkerPatch};
use rollcall_rules::idcard;

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
        .route("/workers/{personId}", get(show).patch(update_worker))
        .route(
            "/workers/{personId}/blacklist",
            post(blacklist).delete(unblacklist),
        )
        .route("/blacklist", get(list_blacklist))
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
    /// The project the worker starts in (进场); required of project managers.
    #[serde(default)]
    pub project_id: Option<String>,
    /// Their team (班组) in that project.
    #[serde(default)]
    pub team_id: Option<String>,
    /// Their trade (工种) in that project, e.g. 钢筋工.
    #[serde(default)]
    pub trade: Option<String>,
    /// The ID card's issuing authority (签发机关), for the national platform.
    #[serde(default)]
    pub grant_org: Option<String>,
    /// The ID card's validity, `YYYY-MM-DD`; `idValidTo` may be `长期`. An expired card is
    /// enrolled and flagged (`idCardExpired`).
    #[serde(default)]
    pub id_valid_from: Option<String>,
    #[serde(default)]
    pub id_valid_to: Option<String>,
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
    /// The ID card's validity has ended (on enrolment and in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_card_expired: Option<bool>,
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
        id_card_expired: None,
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

/// `409 worker_exists`: with the existing `personId` only when the caller may see that
/// worker; otherwise the message says how to join them (by ID-card number and name).
fn worker_exists(person_id: Option<i64>) -> ApiError {
    match person_id {
        Some(id) => ApiError::Conflict {
            code: "worker_exists",
            message: "该身份证号的工人已存在".to_owned(),
            extra: serde_json::Map::new(),
        }
        .with("personId", serde_json::Value::from(id.to_string())),
        None => ApiError::Conflict {
            code: "worker_exists",
            message: "该身份证号的工人已存在；如需进场，请以身份证号和姓名加入项目（POST /projects/{id}/workers）"
                .to_owned(),
            extra: serde_json::Map::new(),
        },
    }
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
        (status = 409, description = "A worker with this ID-card number exists (`worker_exists`; with its `personId` only if the caller may see the worker)", body = super::error::ErrorBody),
        (status = 413, description = "Body over the limit", body = super::error::ErrorBody),
        (status = 422, description = "`invalid_idcard`, `invalid_photo` or another field error", body = super::error::ErrorBody),
    )
)]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWorker>,
) -> Result<(StatusCode, Json<WorkerView>), ApiError> {
    if body.face_photo.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "invalid_photo",
            "facePhoto",
            "字段 facePhoto 不能为空",
        ));
    }
    let photo = decode_photo(&body.face_photo).ok_or_else(|| {
        ApiError::invalid_field(
            "invalid_photo",
            "facePhoto",
            "字段 facePhoto 不是有效的 Base64",
        )
    })?;
    let project_id = body
        .project_id
        .as_deref()
        .map(|p| super::extract::parse_id("projectId", p))
        .transpose()?;
    let team_id = body
        .team_id
        .as_deref()
        .map(|t| super::extract::parse_id("teamId", t))
        .transpose()?;
    let grant_org = super::extract::optional_text("grantOrg", body.grant_org.as_deref(), 64)?;
    let id_valid_from = date_field("idValidFrom", body.id_valid_from.as_deref(), false)?;
    let id_valid_to = date_field("idValidTo", body.id_valid_to.as_deref(), true)?;
    let enrolment = Enrolment {
        idcard_no: body.idcard_no,
        name: body.name,
        gender: body.gender,
        nation: body.nation,
        address: body.address,
        phone: body.phone,
        photo,
        project_id,
        team_id,
        trade: body.trade,
    };
    let worker = services::workers::enrol(&app, &caller.0, enrolment)
        .await
        .map_err(enrol_error)?;
    let now = now_ms();
    let national = WorkerNational {
        person_id: worker.person_id,
        grant_org,
        id_valid_from,
        id_valid_to,
        updated_at: now,
        ..Default::default()
    };
    if national.grant_org.is_some()
        || national.id_valid_from.is_some()
        || national.id_valid_to.is_some()
    {
        app.store.put_worker_national(&national).await?;
    }
    let mut shown = view(&app, &worker, now);
    shown.id_card_expired = Some(crate::uplink::dictionaries::id_card_expired(
        &national,
        rollcall_protocol::time::today_beijing(now),
    ));
    Ok((StatusCode::CREATED, Json(shown)))
}

/// The API's answer to a refused enrolment.
pub fn enrol_error(e: EnrolError) -> ApiError {
    match e {
        EnrolError::Field(f) => f.into(),
        EnrolError::Exists { person_id } => worker_exists(person_id),
        EnrolError::Forbidden => ApiError::Forbidden,
        EnrolError::Store(e) => e.into(),
        EnrolError::Io(e) => ApiError::Internal(format!("storing a face photo: {e}")),
    }
}

/// List workers in person-id order (ID-card numbers masked).
#[utoipa::path(
    get,
    operation_id = "listWorkers",
    path = "/api/v1/workers",
    tag = "workers",
    params(
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "Page size, default 100, at most 1000 (a larger one counts as 1000)"),
    ),
    responses(
        (status = 200, description = "OK", body = WorkerPage),
        (status = 422, description = "A bad `cursor` or `limit`", body = super::error::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    q: QueryParams,
) -> Result<(Extension<AuditNote>, Json<WorkerPage>), ApiError> {
    let limit = q.limit(DEFAULT_PAGE, MAX_PAGE)?;
    let after = q.id("cursor")?;
    let mut rows = match caller.0.scope() {
        Scope::All => app.store.workers(after, limit + 1).await?,
        Scope::Projects(ids) => app.store.workers_in_projects(ids, after, limit + 1).await?,
    };
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|w| w.person_id.to_string())
    } else {
        None
    };
    let now = now_ms();
    let note = AuditNote(format!("读取工人列表 {} 人", rows.len()));
    Ok((
        Extension(note),
        Json(WorkerPage {
            workers: with_expiry(&app, rows.iter().map(|w| view(&app, w, now)).collect(), now)
                .await?,
            next_cursor,
        }),
    ))
}

/// One worker (ID-card number masked, signed face URL).
#[utoipa::path(
    get,
    operation_id = "getWorker",
    path = "/api/v1/workers/{personId}",
    tag = "workers",
    params(("personId" = String, Path, description = "Person id")),
    responses(
        (status = 200, description = "OK", body = WorkerDetail),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
    )
)]
pub async fn show(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(person_id): ApiPath<String>,
) -> Result<Json<WorkerDetail>, ApiError> {
    let services::scope::VisibleWorker {
        worker,
        memberships,
    } = visible_worker(&app, &caller, &person_id).await?;
    let blacklist = app.store.blacklist_entry(worker.person_id).await?;
    Ok(Json(WorkerDetail {
        worker: view(&app, &worker, now_ms()),
        projects: memberships.iter().map(membership_view).collect(),
        blacklisted: blacklist.is_some(),
        blacklist_reason: blacklist.map(|b| b.reason),
        national: national_view(&app, &worker).await?,
    }))
}

/// Flags the expired ID cards of a page of workers.
async fn with_expiry(
    app: &App,
    mut views: Vec<WorkerView>,
    now: i64,
) -> Result<Vec<WorkerView>, ApiError> {
    let ids: Vec<i64> = views
        .iter()
        .filter_map(|v| v.person_id.parse().ok())
        .collect();
    let today = rollcall_protocol::time::today_beijing(now);
    let nationals = app.store.worker_nationals(&ids).await?;
    for v in &mut views {
        let expired = nationals
            .iter()
            .find(|n| n.person_id.to_string() == v.person_id)
            .is_some_and(|n| crate::uplink::dictionaries::id_card_expired(n, today));
        v.id_card_expired = Some(expired);
    }
    Ok(views)
}

fn membership_view(m: &Member) -> MembershipView {
    MembershipView {
        project_id: m.project_id.to_string(),
        status: m.status.clone(),
        team_id: m.team_id.map(|t| t.to_string()),
        trade: m.trade.clone(),
        joined_at: m.joined_at,
        exited_at: m.exited_at,
    }
}

/// `POST /workers/{personId}/blacklist`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BlacklistBody {
    /// Why (shown to administrators).
    pub reason: String,
}

/// Puts a worker on the platform-wide blacklist (administrators): they leave every roster,
/// every device of their projects deletes them (T_DEL_DEVICE_PERSON), and no project can
/// take them until they are removed from the list.
#[utoipa::path(
    post,
    operation_id = "blacklistWorker",
    path = "/api/v1/workers/{personId}/blacklist",
    tag = "workers",
    params(("personId" = String, Path, description = "Person id")),
    request_body = BlacklistBody,
    responses(
        (status = 204, description = "Listed"),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 404, description = "Not found", body = super::error::ErrorBody),
        (status = 422, description = "An empty or too long `reason`, named in `field`", body = super::error::ErrorBody),
    )
)]
pub async fn blacklist(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(person_id): ApiPath<String>,
    ApiJson(body): ApiJson<BlacklistBody>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let worker = visible_worker(&app, &caller, &person_id).await?.worker;
    let reason = super::extract::required_text("reason", &body.reason, 200)?;
    services::workers::blacklist(&app, worker.person_id, &reason, caller.0.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Takes a worker off the blacklist (administrators): their active memberships count again
/// and the devices of those projects get them back.
#[utoipa::path(
    delete,
    operation_id = "unblacklistWorker",
    path = "/api/v1/workers/{personId}/blacklist",
    tag = "workers",
    params(("personId" = String, Path, description = "Person id")),
    responses(
        (status = 204, description = "Removed from the list"),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 404, description = "Unknown worker, or not on the list", body = super::error::ErrorBody),
    )
)]
pub async fn unblacklist(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(person_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let worker = visible_worker(&app, &caller, &person_id).await?.worker;
    if services::workers::unblacklist(&app, worker.person_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!(
            "黑名单中的工人 {}",
            worker.person_id
        )))
    }
}

/// The blacklist (administrators and auditors).
#[utoipa::path(
    get,
    operation_id = "listBlacklist",
    path = "/api/v1/blacklist",
    tag = "workers",
    responses(
        (status = 200, description = "OK", body = BlacklistPage),
        (status = 403, description = "Project managers cannot read the blacklist", body = super::error::ErrorBody),
    )
)]
pub async fn list_blacklist(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<(Extension<AuditNote>, Json<BlacklistPage>), ApiError> {
    if caller.0.scope() != Scope::All {
        return Err(ApiError::Forbidden);
    }
    let entries = app.store.blacklist().await?;
    let ids: Vec<i64> = entries.iter().map(|e| e.person_id).collect();
    let workers = app.store.workers_by_ids(&ids).await?;
    let now = now_ms();
    let rows = entries
        .into_iter()
        .filter_map(|e| {
            let w = workers.iter().find(|w| w.person_id == e.person_id)?;
            Some(BlacklistView {
                worker: view(&app, w, now),
                reason: e.reason,
                created_by: e.created_by,
                created_at: e.created_at,
            })
        })
        .collect::<Vec<_>>();
    Ok((
        Extension(AuditNote(format!("读取黑名单 {} 人", rows.len()))),
        Json(BlacklistPage { workers: rows }),
    ))
}

/// A worker with their projects (those the caller sees) and blacklist state.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerDetail {
    #[serde(flatten)]
    pub worker: WorkerView,
    pub projects: Vec<MembershipView>,
    pub blacklisted: bool,
    pub blacklist_reason: Option<String>,
    /// What the national platform needs of the worker, and what it would refuse.
    pub national: NationalView,
}

/// A worker's membership of a project.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MembershipView {
    pub project_id: String,
    /// `active` (进场) or `exited` (退场).
    pub status: String,
    pub team_id: Option<String>,
    pub trade: Option<String>,
    pub joined_at: i64,
    pub exited_at: Option<i64>,
}

/// A blacklisted worker.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlacklistView {
    pub worker: WorkerView,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

/// `GET /blacklist`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlacklistPage {
    pub workers: Vec<BlacklistView>,
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

/// `PATCH /workers/{personId}`: every field optional; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWorker {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nation: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// The ID card's issuing authority (签发机关).
    #[serde(default)]
    pub grant_org: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub id_valid_from: Option<String>,
    /// `YYYY-MM-DD` or `长期`.
    #[serde(default)]
    pub id_valid_to: Option<String>,
    /// A `politics_type` dictionary code.
    #[serde(default)]
    pub politics_type: Option<String>,
    /// A `work_type` dictionary code.
    #[serde(default)]
    pub work_type: Option<String>,
    #[serde(default)]
    pub team_leader: Option<bool>,
}

/// `PATCH /workers/{personId}` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatchedWorker {
    #[serde(flatten)]
    pub worker: WorkerView,
    pub national: NationalView,
}

/// Edits a worker; the change reaches their devices and their national report.
#[utoipa::path(
    patch,
    operation_id = "updateWorker",
    path = "/api/v1/workers/{personId}",
    tag = "workers",
    params(("personId" = String, Path, description = "Person id")),
    request_body = PatchWorker,
    responses(
        (status = 200, description = "The worker as it now is", body = PatchedWorker),
        (status = 422, description = "`invalid_field`, `unknown_code`", body = super::error::ErrorBody),
    )
)]
pub async fn update_worker(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(person_id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchWorker>,
) -> Result<Json<PatchedWorker>, ApiError> {
    let visible = visible_worker(&app, &caller, &person_id).await?;
    let id = visible.worker.person_id;
    let now = now_ms();
    let patch = WorkerPatch {
        name: match body.name.as_deref() {
            Some(n) => Some(required_text("name", n, 64)?),
            None => None,
        },
        nation: optional_text("nation", body.nation.as_deref(), 32)?,
        address: optional_text("address", body.address.as_deref(), 200)?,
        phone: optional_text("phone", body.phone.as_deref(), 32)?,
        updated_at: now,
    };
    let entries = crate::uplink::dictionaries::merged(&app.store.dictionary_entries().await?);
    let old = app.store.worker_national(id).await?.unwrap_or_default();
    let national = WorkerNational {
        person_id: id,
        grant_org: optional_text("grantOrg", body.grant_org.as_deref(), 64)?.or(old.grant_org),
        id_valid_from: date_field("idValidFrom", body.id_valid_from.as_deref(), false)?
            .or(old.id_valid_from),
        id_valid_to: date_field("idValidTo", body.id_valid_to.as_deref(), true)?
            .or(old.id_valid_to),
        politics_type: code_field(
            &entries,
            "politics_type",
            "politicsType",
            body.politics_type.as_deref(),
        )?
        .or(old.politics_type),
        work_type: code_field(&entries, "work_type", "workType", body.work_type.as_deref())?
            .or(old.work_type),
        team_leader: body.team_leader.unwrap_or(old.team_leader),
        updated_at: now,
    };
    let worker = services::workers::edit(&app, id, &patch, &national)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("工人 {id}")))?;
    tracing::info!(person = id, "worker edited");
    Ok(Json(PatchedWorker {
        worker: view(&app, &worker, now),
        national: national_view(&app, &worker).await?,
    }))
}
