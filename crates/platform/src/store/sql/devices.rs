//! Projects (sites), the devices installed at them, device tokens and presence.

use async_trait::async_trait;
use sqlx::AssertSqlSafe;

use super::{
    Arg, FromRow, JSON_ROWS_PER_STATEMENT, JsonCol, SqlStore, bind_all, col, constraint,
    insert_rows, json_rows,
};
use crate::store::model::*;
use crate::store::{DeviceStore, StoreError, StoreResult};

/// What the `tokens` table keeps of a device token: its SHA-256 (lowercase hex), so a copy of
/// the database signs no device in. Tokens are 128 random bits, so no salt or slow hash is
/// needed; the callers of [`DeviceStore`] keep passing the token itself.
fn token_digest(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Rows for [`json_rows`] as their JSON text.
fn to_json(rows: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(format!("rows as JSON: {e}")))
}

#[async_trait]
impl DeviceStore for SqlStore {
    // --- sessions ------------------------------------------------------------------------

    async fn claim_session(&self, sn: &str, node: &str, now: i64) -> StoreResult<i64> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "INSERT INTO device_sessions (sn, node, epoch, claimed_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (sn) DO UPDATE SET node = excluded.node, \
             epoch = device_sessions.epoch + 1, claimed_at = excluded.claimed_at \
             RETURNING epoch",
        )
        .bind(sn)
        .bind(node)
        .bind(now)
        .fetch_one(tx.conn())
        .await?;
        let epoch: i64 = col(&row, "epoch")?;
        if matches!(self.backend, super::Backend::Postgres) {
            // Delivered at commit, so a node that hears it reads the new holder.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::store::SESSION_CHANNEL)
                .bind(sn)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await?;
        Ok(epoch)
    }

    async fn device_session(&self, sn: &str) -> StoreResult<Option<DeviceSession>> {
        let row =
            sqlx::query("SELECT sn, node, epoch, claimed_at FROM device_sessions WHERE sn = $1")
                .bind(sn)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok(DeviceSession {
                sn: col(&row, "sn")?,
                node: col(&row, "node")?,
                epoch: col(&row, "epoch")?,
                claimed_at: col(&row, "claimed_at")?,
            })
        })
        .transpose()
    }

    // --- tokens --------------------------------------------------------------------------

    async fn insert_token(
        &self,
        token: &str,
        sn: &str,
        access_id: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.execute(
            sqlx::query(
                "INSERT INTO tokens (token, sn, access_id, last_used_at, created_at) \
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(token_digest(token))
            .bind(sn)
            .bind(access_id)
            .bind(now),
        )
        .await
        .map_err(|e| constraint(e, || "token".to_owned()))?;
        Ok(())
    }

    async fn token(&self, token: &str) -> StoreResult<Option<(String, String, i64)>> {
        let row = sqlx::query("SELECT sn, access_id, last_used_at FROM tokens WHERE token = $1")
            .bind(token_digest(token))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok((
                col(&row, "sn")?,
                col(&row, "access_id")?,
                col(&row, "last_used_at")?,
            ))
        })
        .transpose()
    }

    async fn delete_idle_tokens(&self, before: i64) -> StoreResult<u64> {
        Ok(self
            .execute(sqlx::query("DELETE FROM tokens WHERE last_used_at < $1").bind(before))
            .await?)
    }

    async fn touch_tokens(&self, touches: &[(String, i64)]) -> StoreResult<()> {
        if touches.is_empty() {
            return Ok(());
        }
        let rows = json_rows(
            self.backend,
            1,
            &[("token", JsonCol::Text), ("at", JsonCol::Int)],
        );
        // Never moves backwards (touches may arrive out of order from several nodes).
        let sql = format!(
            "UPDATE tokens SET last_used_at = t.at FROM ({rows}) AS t \
             WHERE tokens.token = t.token AND tokens.last_used_at < t.at"
        );
        let mut tx = self.write().await?;
        for chunk in touches.chunks(JSON_ROWS_PER_STATEMENT) {
            let rows: Vec<(String, i64)> = chunk
                .iter()
                .map(|(token, at)| (token_digest(token), *at))
                .collect();
            sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(to_json(&rows)?)
                .execute(tx.conn())
                .await?;
        }
        tx.commit().await
    }

    // --- projects ------------------------------------------------------------------------

    async fn create_project(&self, project: &Project) -> StoreResult<()> {
        let fence = project
            .fence
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("fence: {e}")))?;
        self.execute(
            sqlx::query(concat!(
                "INSERT INTO projects (",
                columns!(project),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ))
            .bind(project.id)
            .bind(project.name.clone())
            .bind(project.code.clone())
            .bind(project.address.clone())
            .bind(project.coordinate_system.as_str())
            .bind(fence)
            .bind(project.created_at),
        )
        .await
        .map_err(|e| constraint(e, || format!("project {}", project.id)))?;
        Ok(())
    }

    async fn project(&self, id: i64) -> StoreResult<Option<Project>> {
        self.fetch_optional(sqlx::query(select!(project, "FROM projects WHERE id = $1")).bind(id))
            .await
    }

    async fn projects(&self) -> StoreResult<Vec<Project>> {
        self.fetch_all(sqlx::query(select!(project, "FROM projects ORDER BY id")))
            .await
    }

    // --- devices -------------------------------------------------------------------------

    async fn create_device(&self, device: &Device) -> StoreResult<()> {
        self.execute(
            sqlx::query(concat!(
                "INSERT INTO devices (",
                columns!(device),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .bind(device.sn.clone())
            .bind(device.vendor_id)
            .bind(device.project_id)
            .bind(device.kind.as_str())
            .bind(device.direction.as_str())
            .bind(device.name.clone())
            .bind(i64::from(device.enabled))
            .bind(device.firmware_version.clone())
            .bind(device.ip.clone())
            .bind(device.last_heartbeat_at)
            .bind(device.person_count)
            .bind(device.face_count)
            .bind(device.created_at),
        )
        .await
        .map_err(|e| constraint(e, || format!("device {}", device.sn)))?;
        Ok(())
    }

    async fn device(&self, sn: &str) -> StoreResult<Option<Device>> {
        self.fetch_optional(sqlx::query(select!(device, "FROM devices WHERE sn = $1")).bind(sn))
            .await
    }

    async fn devices(&self, project_id: Option<i64>) -> StoreResult<Vec<Device>> {
        let query = match project_id {
            Some(id) => sqlx::query(select!(
                device,
                "FROM devices WHERE project_id = $1 ORDER BY sn"
            ))
            .bind(id),
            None => sqlx::query(select!(device, "FROM devices ORDER BY sn")),
        };
        self.fetch_all(query).await
    }

    async fn update_device(&self, sn: &str, patch: &DevicePatch) -> StoreResult<Device> {
        let mut sets = Vec::new();
        let mut args = vec![Arg::Text(Some(sn.to_owned()))];
        let mut set = |column: &str, arg: Arg| {
            args.push(arg);
            sets.push(format!("{column} = ${}", args.len()));
        };
        if let Some(project_id) = patch.project_id {
            set("project_id", Arg::Int(project_id));
        }
        if let Some(kind) = patch.kind {
            set("kind", Arg::Text(Some(kind.as_str().to_owned())));
        }
        if let Some(direction) = patch.direction {
            set("direction", Arg::Text(Some(direction.as_str().to_owned())));
        }
        if let Some(name) = &patch.name {
            set("name", Arg::Text(name.clone()));
        }
        if let Some(enabled) = patch.enabled {
            set("enabled", Arg::Int(Some(i64::from(enabled))));
        }
        let device = if sets.is_empty() {
            self.device(sn).await?
        } else {
            let sql = format!(
                "UPDATE devices SET {} WHERE sn = $1 RETURNING {}",
                sets.join(", "),
                columns!(device)
            );
            let _slot = self.write_slot().await;
            bind_all(sqlx::query(AssertSqlSafe(sql)), args)
                .fetch_optional(&self.writes)
                .await
                .map_err(|e| constraint(e, || format!("device {sn}")))?
                .as_ref()
                .map(Device::from_row)
                .transpose()?
        };
        device.ok_or_else(|| StoreError::NotFound(format!("device {sn}")))
    }

    async fn set_device_counts(&self, sn: &str, persons: i64, faces: i64) -> StoreResult<()> {
        let changed = self
            .execute(
                sqlx::query("UPDATE devices SET person_count = $2, face_count = $3 WHERE sn = $1")
                    .bind(sn)
                    .bind(persons)
                    .bind(faces),
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("device {sn}")));
        }
        Ok(())
    }

    async fn record_presence(
        &self,
        updates: &[PresenceUpdate],
        transitions: &[PresenceTransition],
    ) -> StoreResult<()> {
        if updates.is_empty() && transitions.is_empty() {
            return Ok(());
        }
        let rows = json_rows(
            self.backend,
            1,
            &[
                ("sn", JsonCol::Text),
                ("at", JsonCol::Int),
                ("version", JsonCol::Text),
                ("addr", JsonCol::Text),
            ],
        );
        // Unknown devices are skipped; the last heartbeat never moves backwards; a missing
        // version or IP keeps the one recorded.
        let sql = format!(
            "UPDATE devices SET last_heartbeat_at = u.at, \
             firmware_version = COALESCE(u.version, devices.firmware_version), \
             ip = COALESCE(u.addr, devices.ip) FROM ({rows}) AS u \
             WHERE devices.sn = u.sn \
             AND (devices.last_heartbeat_at IS NULL OR devices.last_heartbeat_at <= u.at)"
        );
        let mut tx = self.write().await?;
        for chunk in updates.chunks(JSON_ROWS_PER_STATEMENT) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|u| (&u.sn, u.last_heartbeat_at, &u.firmware_version, &u.ip))
                .collect();
            sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(to_json(&rows)?)
                .execute(tx.conn())
                .await?;
        }
        let rows = transitions
            .iter()
            .map(|t| {
                vec![
                    Arg::Text(Some(t.sn.clone())),
                    Arg::Int(Some(i64::from(t.online))),
                    Arg::Int(Some(t.at)),
                ]
            })
            .collect();
        insert_rows(
            tx.conn(),
            "INSERT INTO presence_transitions (sn, online, at)",
            "",
            3,
            rows,
        )
        .await?;
        // Online/offline events for webhooks, in the same transaction.
        let refs: Vec<String> = transitions
            .iter()
            .map(|t| format!("{}|{}|{}", t.sn, i32::from(t.online), t.at))
            .collect();
        let now = transitions.iter().map(|t| t.at).max().unwrap_or_default();
        super::webhooks::enqueue(tx.conn(), "device", &refs, now).await?;
        tx.commit().await
    }

    async fn presence_history(&self, sn: &str, limit: u32) -> StoreResult<Vec<PresenceTransition>> {
        self.fetch_all(
            sqlx::query(
                "SELECT sn, online, at FROM presence_transitions WHERE sn = $1 \
                 ORDER BY at DESC, id DESC LIMIT $2",
            )
            .bind(sn)
            .bind(i64::from(limit)),
        )
        .await
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use crate::store::test_db::TestDb;

    /// Device tokens are stored as their SHA-256 only (on the suite's backend: SQLite, or
    /// PostgreSQL with `ROLLCALL_TEST_DATABASE_URL`), and found, touched and purged by the
    /// token itself.
    #[tokio::test]
    async fn device_tokens_are_stored_as_their_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let db = TestDb::new("tokens", dir.path());
        let store = db.open().await.unwrap();
        let token = "0123456789abcdef0123456789abcdef";
        store
            .insert_token(token, "SN-1", "AK", 1_000)
            .await
            .unwrap();

        let raw: Vec<String> = sqlx::query_scalar("SELECT token FROM tokens")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(raw, vec![token_digest(token)]);
        assert!(!raw[0].contains(token));

        store
            .touch_tokens(&[(token.to_owned(), 5_000)])
            .await
            .unwrap();
        assert_eq!(
            store.token(token).await.unwrap(),
            Some(("SN-1".to_owned(), "AK".to_owned(), 5_000))
        );
        assert_eq!(store.token(&token_digest(token)).await.unwrap(), None);
        assert_eq!(store.delete_idle_tokens(5_000).await.unwrap(), 0);
        assert_eq!(store.delete_idle_tokens(5_001).await.unwrap(), 1);
        assert_eq!(store.token(token).await.unwrap(), None);
    }
}
