//! Console users and their projects, sessions, personal API tokens and the audit log.

use async_trait::async_trait;
use sqlx::AssertSqlSafe;

use super::{Arg, SqlStore, bind_all, col, constraint, unique};
use crate::store::console::*;
use crate::store::{AccountStore, StoreError, StoreResult};

const USER_COLUMNS: &str = "id, username, display_name, password_hash, role, disabled, created_at";
const TOKEN_COLUMNS: &str = "id, user_id, name, token_hash, created_at, last_used_at, revoked_at";
const AUDIT_COLUMNS: &str = "id, at, actor, user_id, action, target, detail, ip";
/// Largest page of [`AccountStore::audit`].
const MAX_AUDIT_PAGE: u32 = 1000;

#[async_trait]
impl AccountStore for SqlStore {
    // --- users ---------------------------------------------------------------------------

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        self.execute(
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            )))
            .bind(user.id)
            .bind(user.username.clone())
            .bind(user.display_name.clone())
            .bind(user.password_hash.clone())
            .bind(user.role.as_str())
            .bind(i64::from(user.disabled))
            .bind(user.created_at),
        )
        .await
        .map_err(|e| constraint(e, || format!("username {}", user.username)))?;
        Ok(())
    }

    async fn user(&self, id: i64) -> StoreResult<Option<User>> {
        self.fetch_optional(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
            )))
            .bind(id),
        )
        .await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
        self.fetch_optional(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM users WHERE username = $1"
            )))
            .bind(username.to_owned()),
        )
        .await
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        self.fetch_all(sqlx::query(AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY id"
        ))))
        .await
    }

    async fn update_user(&self, id: i64, patch: &UserPatch) -> StoreResult<User> {
        let mut sets = Vec::new();
        let mut args = Vec::new();
        let mut set = |column: &str, arg: Arg| {
            args.push(arg);
            sets.push(format!("{column} = ${}", args.len()));
        };
        if let Some(v) = &patch.display_name {
            set("display_name", Arg::Text(Some(v.clone())));
        }
        if let Some(v) = &patch.password_hash {
            set("password_hash", Arg::Text(Some(v.clone())));
        }
        if let Some(v) = patch.role {
            set("role", Arg::Text(Some(v.as_str().to_owned())));
        }
        if let Some(v) = patch.disabled {
            set("disabled", Arg::Int(Some(i64::from(v))));
        }
        if !sets.is_empty() {
            args.push(Arg::Int(Some(id)));
            let sql = format!(
                "UPDATE users SET {} WHERE id = ${}",
                sets.join(", "),
                args.len()
            );
            self.execute(bind_all(sqlx::query(AssertSqlSafe(sql)), args))
                .await?;
        }
        self.user(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))
    }

    async fn set_user_projects(&self, user_id: i64, project_ids: &[i64]) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM user_projects WHERE user_id = $1")
            .bind(user_id)
            .execute(tx.conn())
            .await?;
        for project_id in unique(project_ids) {
            sqlx::query("INSERT INTO user_projects (user_id, project_id) VALUES ($1, $2)")
                .bind(user_id)
                .bind(project_id)
                .execute(tx.conn())
                .await
                .map_err(|e| constraint(e, || format!("user {user_id} project {project_id}")))?;
        }
        tx.commit().await
    }

    async fn user_projects(&self, user_id: i64) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query(
            "SELECT project_id FROM user_projects WHERE user_id = $1 ORDER BY project_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| col(r, "project_id")).collect()
    }

    // --- sessions and API tokens ---------------------------------------------------------

    async fn create_session(&self, s: &SessionRow) -> StoreResult<()> {
        self.execute(
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(s.token_hash.clone())
            .bind(s.user_id)
            .bind(s.csrf.clone())
            .bind(s.created_at)
            .bind(s.expires_at),
        )
        .await
        .map_err(|e| constraint(e, || "session".to_owned()))?;
        Ok(())
    }

    async fn session(&self, token_hash: &str) -> StoreResult<Option<SessionRow>> {
        self.fetch_optional(
            sqlx::query(
                "SELECT token_hash, user_id, csrf, created_at, expires_at FROM sessions \
                 WHERE token_hash = $1",
            )
            .bind(token_hash.to_owned()),
        )
        .await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        self.execute(
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash.to_owned()),
        )
        .await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<()> {
        self.execute(sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id))
            .await?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: i64) -> StoreResult<u64> {
        Ok(self
            .execute(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now))
            .await?)
    }

    async fn create_api_token(&self, t: &ApiTokenRow) -> StoreResult<()> {
        self.execute(
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            )))
            .bind(t.id)
            .bind(t.user_id)
            .bind(t.name.clone())
            .bind(t.token_hash.clone())
            .bind(t.created_at)
            .bind(t.last_used_at)
            .bind(t.revoked_at),
        )
        .await
        .map_err(|e| constraint(e, || format!("api token {}", t.id)))?;
        Ok(())
    }

    async fn api_token(&self, token_hash: &str) -> StoreResult<Option<ApiTokenRow>> {
        self.fetch_optional(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1"
            )))
            .bind(token_hash.to_owned()),
        )
        .await
    }

    async fn api_tokens(&self, user_id: i64) -> StoreResult<Vec<ApiTokenRow>> {
        self.fetch_all(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id"
            )))
            .bind(user_id),
        )
        .await
    }

    async fn touch_api_token(&self, id: i64, now: i64) -> StoreResult<()> {
        self.execute(
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id),
        )
        .await?;
        Ok(())
    }

    async fn revoke_api_token(&self, user_id: i64, id: i64, now: i64) -> StoreResult<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1 \
                     WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .bind(user_id),
            )
            .await?;
        Ok(changed > 0)
    }

    // --- audit ---------------------------------------------------------------------------

    async fn append_audit(&self, e: &AuditEntry) -> StoreResult<()> {
        self.execute(
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            )))
            .bind(e.id)
            .bind(e.at)
            .bind(e.actor.clone())
            .bind(e.user_id)
            .bind(e.action.clone())
            .bind(e.target.clone())
            .bind(e.detail.clone())
            .bind(e.ip.clone()),
        )
        .await
        .map_err(|err| constraint(err, || format!("audit {}", e.id)))?;
        Ok(())
    }

    async fn audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
        let mut filters = Vec::new();
        let mut args = Vec::new();
        let mut filter = |clause: &str, arg: Arg| {
            args.push(arg);
            filters.push(clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(v) = &q.actor {
            filter("actor = ?", Arg::Text(Some(v.clone())));
        }
        if let Some(v) = q.from {
            filter("at >= ?", Arg::Int(Some(v)));
        }
        if let Some(v) = q.to {
            filter("at < ?", Arg::Int(Some(v)));
        }
        if let Some(v) = q.before_id {
            filter("id < ?", Arg::Int(Some(v)));
        }
        let filters = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log {filters} ORDER BY id DESC LIMIT {}",
            q.limit.clamp(1, MAX_AUDIT_PAGE)
        );
        self.fetch_all(bind_all(sqlx::query(AssertSqlSafe(sql)), args))
            .await
    }
}
