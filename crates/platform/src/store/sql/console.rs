//! [`ConsoleStore`] over the same `sqlx::Any` pool and portability rules as the parent module.

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use sqlx::any::AnyRow;

use super::{
    Arg, FromRow, SqlStore, bind_all, col, col_bool, col_parsed, constraint, placeholders, unique,
};
use crate::store::console::*;
use crate::store::{StoreError, StoreResult, Worker};

const USER_COLUMNS: &str = "id, username, display_name, password_hash, role, disabled, created_at";
const TOKEN_COLUMNS: &str = "id, user_id, name, token_hash, created_at, last_used_at, revoked_at";
const AUDIT_COLUMNS: &str = "id, at, actor, user_id, action, target, detail, ip";
const MEMBER_COLUMNS: &str =
    "project_id, person_id, status, blacklisted, team_id, trade, joined_at, exited_at";
const FIRMWARE_COLUMNS: &str =
    "id, vendor_id, kind, version, file_key, sha256, size, notes, created_at";
/// The worker columns, qualified for a query over `workers w`.
const WORKER_COLUMNS_W: &str = "w.person_id, w.idcard_no, w.name, w.gender, w.nation, w.address, \
     w.phone, w.face_key, w.created_at, w.updated_at";
/// Largest page of [`ConsoleStore::audit`].
const MAX_AUDIT_PAGE: u32 = 1000;

impl FromRow for User {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(User {
            id: col(row, "id")?,
            username: col(row, "username")?,
            display_name: col(row, "display_name")?,
            password_hash: col(row, "password_hash")?,
            role: col_parsed(row, "role", Role::parse)?,
            disabled: col_bool(row, "disabled")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for SessionRow {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(SessionRow {
            token_hash: col(row, "token_hash")?,
            user_id: col(row, "user_id")?,
            csrf: col(row, "csrf")?,
            created_at: col(row, "created_at")?,
            expires_at: col(row, "expires_at")?,
        })
    }
}

impl FromRow for ApiTokenRow {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(ApiTokenRow {
            id: col(row, "id")?,
            user_id: col(row, "user_id")?,
            name: col(row, "name")?,
            token_hash: col(row, "token_hash")?,
            created_at: col(row, "created_at")?,
            last_used_at: col(row, "last_used_at")?,
            revoked_at: col(row, "revoked_at")?,
        })
    }
}

impl FromRow for AuditEntry {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(AuditEntry {
            id: col(row, "id")?,
            at: col(row, "at")?,
            actor: col(row, "actor")?,
            user_id: col(row, "user_id")?,
            action: col(row, "action")?,
            target: col(row, "target")?,
            detail: col(row, "detail")?,
            ip: col(row, "ip")?,
        })
    }
}

impl FromRow for Team {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Team {
            id: col(row, "id")?,
            project_id: col(row, "project_id")?,
            name: col(row, "name")?,
            leader: col(row, "leader")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for Member {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Member {
            project_id: col(row, "project_id")?,
            person_id: col(row, "person_id")?,
            status: col(row, "status")?,
            blacklisted: col_bool(row, "blacklisted")?,
            team_id: col(row, "team_id")?,
            trade: col(row, "trade")?,
            joined_at: col(row, "joined_at")?,
            exited_at: col(row, "exited_at")?,
        })
    }
}

impl FromRow for BlacklistEntry {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(BlacklistEntry {
            person_id: col(row, "person_id")?,
            reason: col(row, "reason")?,
            created_by: col(row, "created_by")?,
            created_at: col(row, "created_at")?,
        })
    }
}

impl FromRow for Firmware {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(Firmware {
            id: col(row, "id")?,
            vendor_id: col(row, "vendor_id")?,
            kind: col(row, "kind")?,
            version: col(row, "version")?,
            file_key: col(row, "file_key")?,
            sha256: col(row, "sha256")?,
            size: col(row, "size")?,
            notes: col(row, "notes")?,
            created_at: col(row, "created_at")?,
        })
    }
}

#[async_trait]
impl ConsoleStore for SqlStore {
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

    // --- teams and memberships -----------------------------------------------------------

    async fn create_team(&self, t: &Team) -> StoreResult<()> {
        self.execute(
            sqlx::query(
                "INSERT INTO teams (id, project_id, name, leader, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(t.id)
            .bind(t.project_id)
            .bind(t.name.clone())
            .bind(t.leader.clone())
            .bind(t.created_at),
        )
        .await
        .map_err(|e| constraint(e, || format!("team {}", t.name)))?;
        Ok(())
    }

    async fn team(&self, id: i64) -> StoreResult<Option<Team>> {
        self.fetch_optional(
            sqlx::query("SELECT id, project_id, name, leader, created_at FROM teams WHERE id = $1")
                .bind(id),
        )
        .await
    }

    async fn teams(&self, project_id: i64) -> StoreResult<Vec<Team>> {
        self.fetch_all(
            sqlx::query(
                "SELECT id, project_id, name, leader, created_at FROM teams \
                 WHERE project_id = $1 ORDER BY id",
            )
            .bind(project_id),
        )
        .await
    }

    async fn members(&self, project_id: i64) -> StoreResult<Vec<Member>> {
        self.fetch_all(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {MEMBER_COLUMNS} FROM project_workers WHERE project_id = $1 \
                 ORDER BY person_id"
            )))
            .bind(project_id),
        )
        .await
    }

    async fn memberships(&self, person_id: i64) -> StoreResult<Vec<Member>> {
        self.fetch_all(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {MEMBER_COLUMNS} FROM project_workers WHERE person_id = $1 \
                 ORDER BY project_id"
            )))
            .bind(person_id),
        )
        .await
    }

    async fn set_member_details(
        &self,
        project_id: i64,
        person_id: i64,
        team_id: Option<i64>,
        trade: Option<&str>,
    ) -> StoreResult<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "UPDATE project_workers SET team_id = $1, trade = $2 \
                     WHERE project_id = $3 AND person_id = $4",
                )
                .bind(team_id)
                .bind(trade.map(str::to_owned))
                .bind(project_id)
                .bind(person_id),
            )
            .await?;
        Ok(changed > 0)
    }

    async fn workers_in_projects(
        &self,
        project_ids: &[i64],
        after: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Worker>> {
        let ids = unique(project_ids);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM workers w WHERE w.person_id > $1 AND EXISTS (SELECT 1 FROM \
             project_workers pw WHERE pw.person_id = w.person_id AND pw.project_id IN ({})) \
             ORDER BY w.person_id LIMIT {}",
            WORKER_COLUMNS_W,
            placeholders(2, ids.len()),
            limit.clamp(1, 1000)
        );
        let mut args = vec![Arg::Int(Some(after.unwrap_or(i64::MIN)))];
        args.extend(ids.into_iter().map(|id| Arg::Int(Some(id))));
        self.fetch_all(bind_all(sqlx::query(AssertSqlSafe(sql)), args))
            .await
    }

    // --- blacklist -----------------------------------------------------------------------

    async fn blacklist_worker(&self, e: &BlacklistEntry) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO blacklist (person_id, reason, created_by, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (person_id) DO UPDATE SET reason = excluded.reason",
        )
        .bind(e.person_id)
        .bind(e.reason.clone())
        .bind(e.created_by.clone())
        .bind(e.created_at)
        .execute(tx.conn())
        .await
        .map_err(|err| constraint(err, || format!("worker {}", e.person_id)))?;
        sqlx::query("UPDATE project_workers SET blacklisted = 1 WHERE person_id = $1")
            .bind(e.person_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await
    }

    async fn unblacklist_worker(&self, person_id: i64) -> StoreResult<bool> {
        let mut tx = self.write().await?;
        let removed = sqlx::query("DELETE FROM blacklist WHERE person_id = $1")
            .bind(person_id)
            .execute(tx.conn())
            .await?
            .rows_affected();
        sqlx::query("UPDATE project_workers SET blacklisted = 0 WHERE person_id = $1")
            .bind(person_id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(removed > 0)
    }

    async fn blacklist_entry(&self, person_id: i64) -> StoreResult<Option<BlacklistEntry>> {
        self.fetch_optional(
            sqlx::query(
                "SELECT person_id, reason, created_by, created_at FROM blacklist \
                 WHERE person_id = $1",
            )
            .bind(person_id),
        )
        .await
    }

    async fn blacklist(&self) -> StoreResult<Vec<BlacklistEntry>> {
        self.fetch_all(sqlx::query(
            "SELECT person_id, reason, created_by, created_at FROM blacklist \
             ORDER BY created_at DESC",
        ))
        .await
    }

    // --- firmware ------------------------------------------------------------------------

    async fn create_firmware(&self, f: &Firmware) -> StoreResult<()> {
        self.execute(
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO firmware ({FIRMWARE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )))
            .bind(f.id)
            .bind(f.vendor_id)
            .bind(f.kind.clone())
            .bind(f.version.clone())
            .bind(f.file_key.clone())
            .bind(f.sha256.clone())
            .bind(f.size)
            .bind(f.notes.clone())
            .bind(f.created_at),
        )
        .await
        .map_err(|e| constraint(e, || format!("firmware {} {}", f.kind, f.version)))?;
        Ok(())
    }

    async fn firmware(&self, id: i64) -> StoreResult<Option<Firmware>> {
        self.fetch_optional(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {FIRMWARE_COLUMNS} FROM firmware WHERE id = $1"
            )))
            .bind(id),
        )
        .await
    }

    async fn firmwares(&self) -> StoreResult<Vec<Firmware>> {
        self.fetch_all(sqlx::query(AssertSqlSafe(format!(
            "SELECT {FIRMWARE_COLUMNS} FROM firmware ORDER BY created_at DESC"
        ))))
        .await
    }
}
