//! What every page shares: the request context ([`Ctx`]: who, from where), the navigation
//! bar ([`Nav`]), rendering, and formatting of times, ids and labels in Chinese.

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Html;
use rollcall_protocol::time::Timestamp;

use super::error::ConsoleError;
use crate::accounts::{Principal, audit, sessions};
use crate::state::App;
use crate::store::{Direction, Project};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// Beijing time is UTC+8 all year.
const BEIJING_OFFSET_MS: i64 = 8 * 3_600_000;

/// The signed-in user of a console request, put there by [`super::require_session`].
#[derive(Debug, Clone)]
pub struct Ctx {
    pub principal: Principal,
    pub ip: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or(ConsoleError::Unauthenticated)
    }
}

impl Ctx {
    /// The navigation bar, with `active` highlighted.
    pub fn nav(&self, active: &'static str) -> Nav {
        let name = match &self.principal {
            Principal::Root => "root".to_owned(),
            Principal::User(u) => u.display_name.clone(),
        };
        Nav {
            user: name,
            role: self.principal.role().label(),
            csrf: self.csrf().to_owned(),
            is_admin: self.principal.is_admin(),
            can_write: self.principal.can_write(),
            can_audit: self.principal.is_admin()
                || self.principal.role() == crate::accounts::Role::Auditor,
            active,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    pub fn csrf(&self) -> &str {
        match &self.principal {
            Principal::User(u) => u.csrf.as_deref().unwrap_or(""),
            Principal::Root => "",
        }
    }

    /// A change is allowed: the form echoed the session's CSRF token and the user may write.
    pub fn writable(&self, presented: &str) -> Result<(), ConsoleError> {
        if !sessions::csrf_matches(&self.principal, presented) {
            return Err(ConsoleError::Csrf);
        }
        if !self.principal.can_write() {
            return Err(ConsoleError::Forbidden);
        }
        Ok(())
    }

    /// 403 unless an administrator.
    pub fn require_admin(&self) -> Result<(), ConsoleError> {
        if self.principal.is_admin() {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden)
        }
    }

    /// Appends to the audit log (`action` says what in a few words, `target` what to).
    pub async fn audit(&self, app: &App, action: &str, target: &str, detail: Option<String>) {
        audit::record(
            app,
            &self.principal,
            action,
            target,
            detail,
            self.ip.clone(),
        )
        .await;
    }

    /// The projects this user sees, by name.
    pub async fn projects(&self, app: &App) -> Result<Vec<Project>, ConsoleError> {
        let mut projects = crate::services::scope::projects(app, &self.principal).await?;
        projects.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(projects)
    }
}

/// The navigation bar and user menu of every page.
#[derive(Debug, Clone)]
pub struct Nav {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    pub is_admin: bool,
    pub can_write: bool,
    pub can_audit: bool,
    pub active: &'static str,
    pub version: &'static str,
}

/// The message of a form field's error, if the field has one (form pages keep their
/// errors as `(field, message)` pairs).
pub fn field_error<'a>(errors: &'a [(&'static str, String)], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, m)| m.as_str())
}

/// Renders a template into a response.
pub fn render(t: &impl Template) -> Result<Html<String>, ConsoleError> {
    Ok(Html(t.render()?))
}

/// Percent-encodes a query-string or path value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `2026-11-28 09:30:05`, Beijing time.
pub fn datetime(ms: i64) -> String {
    let w = Timestamp::from_epoch_ms(ms).to_wire();
    match (
        w.get(0..4),
        w.get(4..6),
        w.get(6..8),
        w.get(8..10),
        w.get(10..12),
        w.get(12..14),
    ) {
        (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) => {
            format!("{y}-{mo}-{d} {h}:{mi}:{s}")
        }
        _ => w,
    }
}

/// An optional time, or a dash.
pub fn opt_datetime(ms: Option<i64>) -> String {
    ms.map_or_else(|| "—".to_owned(), datetime)
}

/// `2026-11-28`, Beijing time.
pub fn date(ms: i64) -> String {
    datetime(ms).chars().take(10).collect()
}

/// The Beijing day number (days since 1970-01-01 in Beijing time) of an instant.
pub fn beijing_day(ms: i64) -> i64 {
    (ms + BEIJING_OFFSET_MS).div_euclid(DAY_MS)
}

/// The instant a Beijing day starts.
pub fn day_start(day: i64) -> i64 {
    day * DAY_MS - BEIJING_OFFSET_MS
}

/// The Beijing day of `YYYY-MM-DD`, or `None`.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) || s.len() != 10 {
        return None;
    }
    let t = Timestamp::parse_wire(&format!("{digits}000000")).ok()?;
    Some(beijing_day(t.epoch_ms()))
}

pub fn direction_label(d: Direction) -> &'static str {
    match d {
        Direction::In => "进",
        Direction::Out => "出",
        Direction::Both => "进出",
    }
}

pub fn kind_label(k: crate::store::DeviceKind) -> &'static str {
    use crate::store::DeviceKind::*;
    match k {
        Face => "人脸识别机",
        Iris => "虹膜识别机",
        Mobile => "移动考勤",
        Qr => "二维码",
        Gate => "闸机",
        Collector => "采集器",
    }
}

/// An attendance flag in Chinese.
pub fn flag_label(flag: &str) -> String {
    match flag {
        "unknown_person" => "未知人员",
        "not_authorised" => "未授权",
        "unbound_device" => "设备未绑定",
        "outside_fence" => "围栏外",
        "no_coordinate" => "无坐标",
        "no_qr_info" => "无二维码信息",
        "indirect_method" => "间接方式",
        "late_upload" => "延迟上传",
        "photo_rejected" => "照片无效",
        other => other,
    }
    .to_owned()
}

/// The attendance method of a record `type`.
pub fn method_label(t: u32) -> &'static str {
    match t {
        1 => "人脸",
        2 => "IC卡",
        4 => "健康码",
        8 => "身份证",
        16 => "二维码",
        32 => "虹膜",
        64 => "移动端",
        _ => "其他",
    }
}

/// A task apicode in Chinese.
pub fn apicode_label(code: &str) -> String {
    match code {
        "T_SEND_PERSON" => "下发全部人员",
        "T_UPDATE_DEVICE_PERSON" => "增量下发人员",
        "T_DEL_DEVICE_PERSON" => "删除人员",
        "T_CLEAR_DEVICE_PERSON" => "清空人员",
        "T_POST_DEVICE_PERSON" => "上传设备人员",
        "T_UPGRADE" | "T_UPDATE_FIRMWARE" => "固件升级",
        other => other,
    }
    .to_owned()
}

pub fn task_state_label(s: crate::store::TaskState) -> &'static str {
    use crate::store::TaskState::*;
    match s {
        Pending => "待下发",
        Delivered => "已下发",
        Done => "已完成",
        Failed => "失败",
        Unsupported => "不支持",
        Cancelled => "已取消",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_days_and_dates() {
        // 2024-05-01T00:00:00+08:00
        let t = 1_714_492_800_000;
        assert_eq!(datetime(t), "2024-05-01 00:00:00");
        assert_eq!(date(t - 1), "2024-04-30");
        assert_eq!(day_start(beijing_day(t + 5000)), t);
        assert_eq!(parse_date("2024-05-01"), Some(beijing_day(t)));
        for bad in ["2024-5-1", "", "20240501", "2024-13-01", "abcd-ef-gh"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn encoding_keeps_paths_and_escapes_the_rest() {
        assert_eq!(enc("/console/devices/A 1"), "/console/devices/A%201");
        assert_eq!(enc("a&b=c"), "a%26b%3Dc");
        assert_eq!(enc("工"), "%E5%B7%A5");
    }
}
