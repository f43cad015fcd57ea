//! What the console and its access control keep: users and their roles and projects,
//! sessions, personal API tokens, the audit log, teams (班组), each member's team and trade,
//! the blacklist and firmware packages.
//!
//! A second trait beside [`super::Store`] (its supertrait) so that the device path's storage
//! and the console's stay apart; both are implemented once over `sqlx::Any` in
//! `sql/console.rs`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;

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

/// Storage of the console and of access control.
#[async_trait]
pub trait ConsoleStore: Send + Sync + 'static {
    // --- users ---------------------------------------------------------------------------
    /// Fails with `Conflict` if the username is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn user(&self, id: i64) -> StoreResult<Option<User>>;
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    async fn users(&self) -> StoreResult<Vec<User>>;
    async fn update_user(&self, id: i64, patch: &UserPatch) -> StoreResult<User>;
    /// Replaces the user's projects.
    async fn set_user_projects(&self, user_id: i64, project_ids: &[i64]) -> StoreResult<()>;
    async fn user_projects(&self, user_id: i64) -> StoreResult<Vec<i64>>;

    // --- sessions and API tokens ---------------------------------------------------------
    async fn create_session(&self, session: &SessionRow) -> StoreResult<()>;
    async fn session(&self, token_hash: &str) -> StoreResult<Option<SessionRow>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Ends every session of a user (disabled, password changed).
    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<()>;
    async fn delete_expired_sessions(&self, now: i64) -> StoreResult<u64>;
    async fn create_api_token(&self, token: &ApiTokenRow) -> StoreResult<()>;
    async fn api_token(&self, token_hash: &str) -> StoreResult<Option<ApiTokenRow>>;
    async fn api_tokens(&self, user_id: i64) -> StoreResult<Vec<ApiTokenRow>>;
    async fn touch_api_token(&self, id: i64, now: i64) -> StoreResult<()>;
    /// `false` if the user has no such unrevoked token.
    async fn revoke_api_token(&self, user_id: i64, id: i64, now: i64) -> StoreResult<bool>;

    // --- audit ---------------------------------------------------------------------------
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    async fn audit(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;

    // --- teams and memberships -----------------------------------------------------------
    /// Fails with `Conflict` if the project has a team of that name.
    async fn create_team(&self, team: &Team) -> StoreResult<()>;
    async fn team(&self, id: i64) -> StoreResult<Option<Team>>;
    async fn teams(&self, project_id: i64) -> StoreResult<Vec<Team>>;
    /// Every membership of the project (active and exited), by person id.
    async fn members(&self, project_id: i64) -> StoreResult<Vec<Member>>;
    /// Every membership of a worker.
    async fn memberships(&self, person_id: i64) -> StoreResult<Vec<Member>>;
    /// Sets the team and trade of an existing membership; `false` if there is none.
    async fn set_member_details(
        &self,
        project_id: i64,
        person_id: i64,
        team_id: Option<i64>,
        trade: Option<&str>,
    ) -> StoreResult<bool>;
    /// Workers who are (or were) members of any of the projects, in person-id order.
    async fn workers_in_projects(
        &self,
        project_ids: &[i64],
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<super::Worker>>;

    // --- blacklist -----------------------------------------------------------------------
    /// Lists the worker and takes them off every roster, in one transaction.
    async fn blacklist_worker(&self, entry: &BlacklistEntry) -> StoreResult<()>;
    /// `false` if the worker was not listed.
    async fn unblacklist_worker(&self, person_id: i64) -> StoreResult<bool>;
    async fn blacklist_entry(&self, person_id: i64) -> StoreResult<Option<BlacklistEntry>>;
    async fn blacklist(&self) -> StoreResult<Vec<BlacklistEntry>>;

    // --- firmware ------------------------------------------------------------------------
    /// Fails with `Conflict` if the vendor already has this version for this kind.
    async fn create_firmware(&self, firmware: &Firmware) -> StoreResult<()>;
    async fn firmware(&self, id: i64) -> StoreResult<Option<Firmware>>;
    async fn firmwares(&self) -> StoreResult<Vec<Firmware>>;
}
