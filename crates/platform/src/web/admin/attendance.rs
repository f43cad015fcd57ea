//! `GET /api/v1/attendance`: attendance records, newest first, filtered by project, person,
//! device and time, paged by a cursor (the last `recordId` of a page). Photos are signed,
//! expiring URLs; flags are the strings of `services::attendance::flag`.

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::Caller;
use super::error::ApiError;
use super::extract::QueryParams;
use crate::accounts::Scope;
use crate::accounts::audit::AuditNote;
use crate::runtime::util::now_ms;
use crate::state::{App, AppState};
use crate::store::{Attendance, AttendanceQuery, Direction};

/// Default and largest page.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/attendance", get(list))
}

/// One attendance record.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttendanceView {
    pub record_id: String,
    /// As the device sent it (may name no known worker: flag `unknown_person`).
    pub person_id: String,
    pub sn: String,
    /// The device's project when the record arrived; `null` if it was unbound.
    pub project_id: Option<String>,
    /// 1 face | 2 IC card | 4 health code | 8 ID card | 16 QR code | 32 iris | 64 mobile.
    #[serde(rename = "type")]
    pub kind: u32,
    /// Composite bitmask of the methods used.
    pub bit_type: Option<u32>,
    /// When the record was taken (device clock).
    pub record_time: i64,
    /// When the platform received it.
    pub received_at: i64,
    pub direction: Direction,
    /// Signed, expiring URL of the photo; `null` without one (or when it was rejected).
    pub photo_url: Option<String>,
    /// `unknown_person`, `not_authorised`, `unbound_device`, `outside_fence`,
    /// `no_coordinate`, `no_qr_info`, `indirect_method`, `late_upload`, `photo_rejected`.
    pub flags: Vec<String>,
    /// °C.
    pub temperature: Option<f64>,
    /// Upload latency: receivedAt − recordTime.
    pub latency_ms: i64,
    /// `{longitude, latitude}` of mobile attendance.
    #[schema(value_type = Option<Object>)]
    pub coordinate: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub qr_code_info: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub iris_info: Option<serde_json::Value>,
}

/// `GET /attendance`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttendancePage {
    pub records: Vec<AttendanceView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The admin view of a record; `photo_url` signs a stored photo key.
pub fn attendance_view(r: Attendance, photo_url: impl FnOnce(&str) -> String) -> AttendanceView {
    let extra: serde_json::Map<String, serde_json::Value> = r
        .extra
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default();
    let member = |name: &str| extra.get(name).cloned().filter(|v| !v.is_null());
    AttendanceView {
        record_id: r.record_id.to_string(),
        photo_url: r.photo_key.as_deref().map(photo_url),
        latency_ms: r.received_at.saturating_sub(r.record_time),
        coordinate: member("coordinate"),
        qr_code_info: member("qrCodeInfo"),
        iris_info: member("irisInfo"),
        person_id: r.person_id,
        sn: r.sn,
        project_id: r.project_id.map(|p| p.to_string()),
        kind: r.r#type,
        bit_type: r.bit_type,
        record_time: r.record_time,
        received_at: r.received_at,
        direction: r.direction,
        flags: r.flags,
        temperature: r.temperature,
    }
}

/// The store query a query string asks for (`limit` clamped to 1000).
fn query(q: &QueryParams) -> Result<AttendanceQuery, ApiError> {
    let from = q.time("from")?;
    let to = q.time("to")?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::invalid_field(
            "invalid_query",
            "from",
            "参数 from 不能晚于 to",
        ));
    }
    Ok(AttendanceQuery {
        project_id: q.id("projectId")?,
        person_id: q.get("personId").map(str::to_owned),
        sn: q.get("sn").map(str::to_owned),
        from,
        to,
        before_record_id: q.id("cursor")?,
        limit: q.limit(DEFAULT_PAGE, MAX_PAGE)?,
    })
}

/// Attendance records, newest first.
#[utoipa::path(
    get,
    operation_id = "listAttendance",
    path = "/api/v1/attendance",
    tag = "attendance",
    params(
        ("projectId" = Option<String>, Query, description = "Records of this project"),
        ("personId" = Option<String>, Query, description = "Records of this person"),
        ("sn" = Option<String>, Query, description = "Records of this device"),
        ("from" = Option<String>, Query, description = "recordTime at or after: epoch ms or RFC 3339"),
        ("to" = Option<String>, Query, description = "recordTime before: epoch ms or RFC 3339"),
        ("limit" = Option<i64>, Query, minimum = 1, description = "Page size, default 100, at most 1000 (a larger one counts as 1000)"),
        ("cursor" = Option<String>, Query, description = "`nextCursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "OK", body = AttendancePage),
        (status = 404, description = "`projectId` names a project outside the caller's scope", body = super::error::ErrorBody),
        (status = 422, description = "A bad query value (`invalid_query`, naming it in `field`; a project manager of several projects must give `projectId`)", body = super::error::ErrorBody),
    )
)]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    q: QueryParams,
) -> Result<(Extension<AuditNote>, Json<AttendancePage>), ApiError> {
    let mut query = query(&q)?;
    // A project manager reads the records of their projects only: of the project asked
    // for, or of their one project.
    if let Scope::Projects(ids) = caller.0.scope() {
        match query.project_id {
            Some(p) if ids.contains(&p) => {}
            Some(p) => return Err(ApiError::NotFound(format!("项目 {p}"))),
            None if ids.len() == 1 => query.project_id = ids.first().copied(),
            None => {
                return Err(ApiError::invalid_field(
                    "invalid_query",
                    "projectId",
                    "管理多个项目时须指定 projectId",
                ));
            }
        }
    }
    let limit = query.limit;
    // One more than asked tells whether there is a next page (up to the store's cap).
    query.limit = (limit + 1).min(MAX_PAGE);
    let mut rows = app.store.attendance(&query).await?;
    let more = rows.len() > limit as usize || (limit == MAX_PAGE && rows.len() == limit as usize);
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.record_id.to_string())
    } else {
        None
    };
    let now = now_ms();
    let app: &App = &app;
    let note = AuditNote(format!("读取考勤记录 {} 条", rows.len()));
    Ok((
        Extension(note),
        Json(AttendancePage {
            records: rows
                .into_iter()
                .map(|r| attendance_view(r, |key| app.file_url(key, now)))
                .collect(),
            next_cursor,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        QueryParams(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn queries() {
        let q = query(&params(&[])).unwrap();
        assert_eq!(q.limit, 100);
        assert_eq!(q.from, None);
        let q = query(&params(&[
            ("projectId", "12"),
            ("personId", "p1"),
            ("sn", "SN1"),
            ("from", "2024-05-01T08:00:00+08:00"),
            ("to", "1714608000000"),
            ("limit", "5000"),
            ("cursor", "99"),
        ]))
        .unwrap();
        assert_eq!(q.project_id, Some(12));
        assert_eq!(q.person_id.as_deref(), Some("p1"));
        assert_eq!(q.from, Some(1_714_521_600_000));
        assert_eq!(q.to, Some(1_714_608_000_000));
        assert_eq!(q.limit, 1000);
        assert_eq!(q.before_record_id, Some(99));
        for (name, bad) in [
            ("from", "yesterday"),
            ("to", "2024-13-01T00:00:00Z"),
            ("limit", "0"),
            ("limit", "ten"),
            ("projectId", "x"),
            ("cursor", "-1"),
        ] {
            let err = query(&params(&[(name, bad)])).unwrap_err();
            let body = format!("{err}");
            assert!(body.contains(name), "{name}={bad}: {body}");
        }
        assert!(query(&params(&[("from", "2000"), ("to", "1000")])).is_err());
    }

    #[test]
    fn records_map_to_views() {
        let r = Attendance {
            record_id: 42,
            sn: "SN1".into(),
            person_id: "7".into(),
            r#type: 64,
            bit_type: Some(65),
            record_time: 1000,
            received_at: 1250,
            project_id: Some(3),
            direction: Direction::In,
            photo_key: Some("attendance/0/0/10".into()),
            flags: vec!["late_upload".into()],
            temperature: Some(36.5),
            extra: Some(r#"{"coordinate":{"longitude":120.1,"latitude":30.2}}"#.into()),
        };
        let v = serde_json::to_value(attendance_view(r, |k| format!("https://x/files/{k}?sig")))
            .unwrap();
        assert_eq!(v["recordId"], "42");
        assert_eq!(v["projectId"], "3");
        assert_eq!(v["type"], 64);
        assert_eq!(v["bitType"], 65);
        assert_eq!(v["direction"], "in");
        assert_eq!(v["latencyMs"], 250);
        assert_eq!(v["photoUrl"], "https://x/files/attendance/0/0/10?sig");
        assert_eq!(v["flags"], serde_json::json!(["late_upload"]));
        assert_eq!(v["coordinate"]["longitude"], 120.1);
        assert_eq!(v["qrCodeInfo"], serde_json::Value::Null);
    }
}
