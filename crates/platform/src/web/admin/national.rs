//! What the national platform needs of a worker, and the dictionaries it is coded in
//! (docs/UPLINK.md):
//!
//! - a worker's `national` block ([`NationalView`], in `GET /workers/{personId}` and the
//!   answer of `PATCH /workers/{personId}`, both in `workers`): the ID card's issuing
//!   authority and validity, politics type, work type, team leader, an expired card flagged,
//!   and why the national platform would refuse the worker, before anything is sent; with the
//!   field checks its edits share ([`date_field`], [`code_field`]);
//! - `GET /dictionaries`, `PUT /dictionaries/{kind}/{code}` — the work types, politics types
//!   and nations: built-in defaults plus the operator's entries (administrators add them).
//!
//! It does not depend on `workers` (that module uses this one).

use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::Caller;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, echo, required_text};
use crate::runtime::util::now_ms;
use crate::state::{App, AppState};
use crate::store::{DictionaryEntry, Worker};
use crate::uplink::dictionaries;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dictionaries", get(list_dictionaries))
        .route("/dictionaries/{kind}/{code}", put(put_dictionary_entry))
}

/// A worker's national data, with what the national platform would refuse.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NationalView {
    pub grant_org: Option<String>,
    pub id_valid_from: Option<String>,
    pub id_valid_to: Option<String>,
    pub politics_type: Option<String>,
    pub work_type: Option<String>,
    pub team_leader: bool,
    /// The ID card's validity ended before today (Beijing time).
    pub id_card_expired: bool,
    /// Why the national platform would refuse the worker now (empty: nothing known).
    pub uplink_problems: Vec<String>,
}

pub async fn national_view(app: &App, worker: &Worker) -> Result<NationalView, ApiError> {
    let national = app.store.worker_national(worker.person_id).await?;
    let today = rollcall_protocol::time::today_beijing(now_ms());
    let problems = dictionaries::problems(national.as_ref(), worker.face_key.is_some(), today);
    let n = national.unwrap_or_default();
    Ok(NationalView {
        id_card_expired: dictionaries::id_card_expired(&n, today),
        grant_org: n.grant_org,
        id_valid_from: n.id_valid_from,
        id_valid_to: n.id_valid_to,
        politics_type: n.politics_type,
        work_type: n.work_type,
        team_leader: n.team_leader,
        uplink_problems: problems,
    })
}

pub fn date_field(
    field: &str,
    value: Option<&str>,
    forever: bool,
) -> Result<Option<String>, ApiError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if (forever && v == "长期") || dictionaries::date_number(v).is_some() {
        Ok(Some(v.to_owned()))
    } else {
        Err(ApiError::invalid_field(
            "invalid_field",
            field,
            format!("字段 {field} 应为 YYYY-MM-DD 日期，收到 {}", echo(v)),
        ))
    }
}

pub fn code_field(
    entries: &[DictionaryEntry],
    kind: &str,
    field: &str,
    value: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if dictionaries::has(entries, kind, v) {
        Ok(Some(v.to_owned()))
    } else {
        Err(ApiError::invalid_field(
            "unknown_code",
            field,
            format!("字段 {field} 不是字典 {kind} 中的代码：{}", echo(v)),
        ))
    }
}

/// `GET /dictionaries`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DictionaryList {
    pub entries: Vec<DictionaryEntry>,
}

/// The dictionaries (built-in defaults and the operator's entries).
#[utoipa::path(
    get,
    operation_id = "listDictionaries",
    path = "/api/v1/dictionaries",
    tag = "uplink",
    responses((status = 200, description = "OK", body = DictionaryList))
)]
pub async fn list_dictionaries(
    State(app): State<AppState>,
) -> Result<Json<DictionaryList>, ApiError> {
    let stored = app.store.dictionary_entries().await?;
    Ok(Json(DictionaryList {
        entries: dictionaries::merged(&stored),
    }))
}

/// `PUT /dictionaries/{kind}/{code}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutEntry {
    pub name: String,
}

/// Adds or renames a dictionary entry (administrators).
#[utoipa::path(
    put,
    operation_id = "putDictionaryEntry",
    path = "/api/v1/dictionaries/{kind}/{code}",
    tag = "uplink",
    params(
        ("kind" = String, Path, description = "`work_type`, `politics_type` or `nation`"),
        ("code" = String, Path, description = "The code (1 to 8 letters or digits)"),
    ),
    request_body = PutEntry,
    responses(
        (status = 200, description = "The entry", body = DictionaryEntry),
        (status = 403, description = "Not an administrator", body = super::error::ErrorBody),
        (status = 422, description = "Unknown kind or bad code", body = super::error::ErrorBody),
    )
)]
pub async fn put_dictionary_entry(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath((kind, code)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<PutEntry>,
) -> Result<Json<DictionaryEntry>, ApiError> {
    caller.require_admin()?;
    if !dictionaries::KINDS.contains(&kind.as_str()) {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "kind",
            format!(
                "字典应为 work_type、politics_type 或 nation，收到 {}",
                echo(&kind)
            ),
        ));
    }
    if code.is_empty() || code.len() > 8 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::invalid_field(
            "invalid_field",
            "code",
            format!("代码应为 1–8 个字母或数字，收到 {}", echo(&code)),
        ));
    }
    let entry = DictionaryEntry {
        kind,
        code,
        name: required_text("name", &body.name, 64)?,
    };
    app.store.put_dictionary_entry(&entry).await?;
    Ok(Json(entry))
}
