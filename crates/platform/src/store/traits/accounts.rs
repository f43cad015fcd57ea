//! [`AccountStore`]: console users and their projects, sessions, personal API tokens and the
//! audit log.

use async_trait::async_trait;

use crate::store::StoreResult;
use crate::store::console::*;

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
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
}
