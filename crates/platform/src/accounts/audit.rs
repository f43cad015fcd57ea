//! The audit log: who did what, when, from where. Every change made through the admin API
//! or the console is recorded, and so is every bulk read of personal data (worker lists,
//! rosters, attendance pages, exports). A failure to write the log is logged loudly but does
//! not undo the change it describes, which has already happened.

use super::Principal;
use crate::state::App;
use crate::store::console::AuditEntry;

/// What a handler adds to its response so that the request is audited with a description
/// (reads are audited only when they carry one).
#[derive(Debug, Clone)]
pub struct AuditNote(pub String);

/// Appends one line to the audit log.
pub async fn record(
    app: &App,
    principal: &Principal,
    action: &str,
    target: &str,
    detail: Option<String>,
    ip: Option<String>,
) {
    let entry = AuditEntry {
        id: app.ids.next(),
        at: crate::runtime::util::now_ms(),
        actor: principal.actor().to_owned(),
        user_id: principal.user_id(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail,
        ip,
    };
    append(app, entry).await;
}

/// The action of a failed sign-in in the audit log.
pub const FAILED_LOGIN: &str = "登录失败";

/// Records a failed sign-in. The actor is the username as typed (without control
/// characters, at most 64 characters); the password is never written.
pub async fn record_failed_login(
    app: &App,
    username: &str,
    target: &str,
    detail: String,
    ip: Option<std::net::IpAddr>,
) {
    let actor: String = username
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    let entry = AuditEntry {
        id: app.ids.next(),
        at: crate::runtime::util::now_ms(),
        actor,
        user_id: None,
        action: FAILED_LOGIN.to_owned(),
        target: target.to_owned(),
        detail: Some(detail),
        ip: ip.map(|ip| ip.to_string()),
    };
    append(app, entry).await;
}

async fn append(app: &App, entry: AuditEntry) {
    if let Err(e) = app.store.append_audit(&entry).await {
        tracing::error!(error = %e, actor = %entry.actor, action = %entry.action, "writing the audit log failed");
    }
}
