//! The types the console and its access control keep: users and their roles and projects,
//! sessions, personal API tokens, the audit log, teams (班组), each member's team and trade,
//! the blacklist and firmware packages. Their storage is in [`super::traits`] (mostly
//! [`super::AccountStore`] and [`super::RosterStore`]).

use serde::{Deserialize, Serialize};

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Operator administrator: everything.
    Administrator,
    /// Sees and changes only the projects assigned to them.
    ProjectManager,
    /// Reads everything, changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Administrator, Role::ProjectManager, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::ProjectManager => "project_manager",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The role's name in the console.
    pub fn label(self) -> &'static str {
        match self {
            Role::Administrator => "平台管理员",
            Role::ProjectManager => "项目管理员",
            Role::Auditor => "审计员",
        }
    }
}

/// A console user. `password_hash` is an argon2 PHC string.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub password_hash: Option<String>,
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// A console session (the cookie value itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: i64,
    /// The session's anti-CSRF token, echoed by every form and unsafe API call.
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A personal API token (only its SHA-256 is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub token_hash: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    /// Username, or `root` for the admin token of `serve`.
    pub actor: String,
    pub user_id: Option<i64>,
    /// What was done, e.g. `POST /api/v1/workers` or `export monthly`.
    pub action: String,
    /// What it was done to (a path, a project).
    pub target: String,
    pub detail: Option<String>,
    pub ip: Option<String>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// A team (班组) inside a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    pub leader: Option<String>,
    pub created_at: i64,
}

/// A worker's membership of a project, with team and trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub project_id: i64,
    pub person_id: i64,
    /// `active` or `exited`.
    pub status: String,
    pub blacklisted: bool,
    pub team_id: Option<i64>,
    pub trade: Option<String>,
    pub joined_at: i64,
    pub exited_at: Option<i64>,
}

/// A blacklisted worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlacklistEntry {
    pub person_id: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
}

/// An uploaded firmware package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    pub id: i64,
    pub vendor_id: i64,
    /// Device kind it is for (`face`, `iris`, …).
    pub kind: String,
    pub version: String,
    pub file_key: String,
    pub sha256: String,
    pub size: i64,
    pub notes: Option<String>,
    pub created_at: i64,
}
