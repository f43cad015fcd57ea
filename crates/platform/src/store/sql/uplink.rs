//! The uplink's settings, outbox and sender lease (docs/UPLINK.md), and the `enqueue_*`
//! statements the other aggregates run **inside their own write transactions**, so that a
//! team, a membership or an attendance record is never stored without its outbox row (nor
//! the row without the thing).
//!
//! What is queued is decided here in SQL from the data just written: only projects whose
//! uplink is enabled queue anything, a team or an attendance record is queued once per
//! project (a partial unique index), a worker once per project, an entry on every (re)join
//! and an exit on every leave. The queue order is the outbox's identity column.

use async_trait::async_trait;
use rollcall_protocol::ids::Secret;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe};

use super::{
    Arg, Backend, FromRow, MAX_PARAMS, SqlStore, bind_all, col, col_bool, col_parsed, col_u32,
    ids_in, placeholders,
};
use crate::store::model::*;
use crate::store::{StoreError, StoreResult, UplinkStore};

/// The column (and associated-data label) the appsecret is sealed under.
const APPSECRET: &str = "uplink_appsecret";

const CONFIG_COLUMNS: &str = "project_id, endpoint, appid, appsecret, corp_code, corp_name, \
     enabled, updated_at, last_success_at, last_error, failures, retry_at";
const ITEM_COLUMNS: &str = "id, project_id, kind, ref_id, person_id, at, state, attempts, \
     next_at, solo, request, serial, message, created_at, sent_at, done_at";
const OUTBOX_INSERT: &str =
    "INSERT INTO uplink_outbox (project_id, kind, ref_id, person_id, at, state, created_at)";
/// Items whose request is not settled.
const UNFINISHED: &str = "('pending', 'sending', 'sent')";

impl FromRow for UplinkConfig {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(UplinkConfig {
            project_id: col(row, "project_id")?,
            endpoint: col(row, "endpoint")?,
            appid: col(row, "appid")?,
            // Opened by the store method that read it (needs the keyring).
            appsecret: col::<String>(row, "appsecret")?.as_str().into(),
            corp_code: col(row, "corp_code")?,
            corp_name: col(row, "corp_name")?,
            enabled: col_bool(row, "enabled")?,
            updated_at: col(row, "updated_at")?,
            last_success_at: col(row, "last_success_at")?,
            last_error: col(row, "last_error")?,
            failures: col_u32(row, "failures")?,
            retry_at: col(row, "retry_at")?,
        })
    }
}

impl FromRow for UplinkItem {
    fn from_row(row: &AnyRow) -> StoreResult<Self> {
        Ok(UplinkItem {
            id: col(row, "id")?,
            project_id: col(row, "project_id")?,
            kind: col_parsed(row, "kind", UplinkKind::parse)?,
            ref_id: col(row, "ref_id")?,
            person_id: col(row, "person_id")?,
            at: col(row, "at")?,
            state: col_parsed(row, "state", UplinkState::parse)?,
            attempts: col_u32(row, "attempts")?,
            next_at: col(row, "next_at")?,
            solo: col_bool(row, "solo")?,
            request: col(row, "request")?,
            serial: col(row, "serial")?,
            message: col(row, "message")?,
            created_at: col(row, "created_at")?,
            sent_at: col(row, "sent_at")?,
            done_at: col(row, "done_at")?,
        })
    }
}

impl SqlStore {
    fn open_uplink(&self, mut c: UplinkConfig) -> StoreResult<UplinkConfig> {
        let opened = self
            .keys
            .open(APPSECRET, &c.project_id.to_string(), c.appsecret.expose())?;
        c.appsecret = opened.secret;
        Ok(c)
    }

    /// Uplink secrets not sealed under the current key: `(project, stored form, secret)`.
    /// Fails (changing nothing) if one does not open.
    pub(super) async fn stale_uplink_secrets(&self) -> StoreResult<Vec<(i64, String, Secret)>> {
        let rows = sqlx::query("SELECT project_id, appsecret FROM uplink_configs")
            .fetch_all(&self.pool)
            .await?;
        let mut stale = Vec::new();
        for row in &rows {
            let project_id: i64 = col(row, "project_id")?;
            let stored: String = col(row, "appsecret")?;
            let opened = self
                .keys
                .open(APPSECRET, &project_id.to_string(), &stored)?;
            if opened.stale {
                stale.push((project_id, stored, opened.secret));
            }
        }
        Ok(stale)
    }

    /// Reseals them under the current key, each only if unchanged since it was read.
    pub(super) async fn reseal_uplink_secrets(
        &self,
        conn: &mut AnyConnection,
        stale: &[(i64, String, Secret)],
    ) -> StoreResult<()> {
        for (project_id, old, secret) in stale {
            sqlx::query(
                "UPDATE uplink_configs SET appsecret = $2 WHERE project_id = $1 AND appsecret = $3",
            )
            .bind(*project_id)
            .bind(self.keys.seal(APPSECRET, &project_id.to_string(), secret)?)
            .bind(old.clone())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Runs `sql` (an `UPDATE … WHERE id IN (…)`) over `ids` in chunks; `$1..$fixed` are
    /// `fixed_args`, the ids follow.
    async fn update_items(
        &self,
        conn: &mut AnyConnection,
        sql: &str,
        fixed_args: impl Fn() -> Vec<Arg>,
        ids: &[i64],
    ) -> StoreResult<u64> {
        let mut changed = 0;
        for chunk in ids.chunks(MAX_PARAMS) {
            let mut args = fixed_args();
            let first = args.len() + 1;
            args.extend(chunk.iter().map(|&id| Arg::Int(Some(id))));
            let statement = sql.replace("{ids}", &placeholders(first, chunk.len()));
            changed += bind_all(sqlx::query(AssertSqlSafe(statement)), args)
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
        Ok(changed)
    }
}

// --- queueing, inside other aggregates' transactions --------------------------------------

/// Queues the new attendance records among `record_ids` whose project reports.
pub(super) async fn enqueue_attendance(
    conn: &mut AnyConnection,
    backend: Backend,
    record_ids: &[i64],
    now: i64,
) -> Result<(), sqlx::Error> {
    for chunk in record_ids.chunks(MAX_PARAMS) {
        let (new_records, ids) = ids_in(backend, "a.record_id", 2, chunk);
        let mut args = vec![Arg::Int(Some(now))];
        args.extend(ids);
        bind_all(
            sqlx::query(AssertSqlSafe(attendance_sql(&new_records, "$1"))),
            args,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The statement of [`enqueue_attendance`]: `now` is the placeholder of the creation time,
/// `new_records` the condition naming the records (as `a`).
pub(super) fn attendance_sql(new_records: &str, now: &str) -> String {
    format!(
        "{OUTBOX_INSERT} SELECT a.project_id, 'attendance', a.record_id, a.person_id, \
         a.record_time, 'pending', CAST({now} AS BIGINT) FROM attendance a JOIN uplink_configs c \
         ON c.project_id = a.project_id WHERE c.enabled = 1 AND {new_records} \
         ORDER BY a.record_time, a.record_id"
    )
}

/// Queues a new team when its project reports.
pub(super) async fn enqueue_team(
    conn: &mut AnyConnection,
    team_id: i64,
    project_id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "{OUTBOX_INSERT} SELECT project_id, 'team', CAST($2 AS BIGINT), NULL, CAST($3 AS BIGINT), 'pending', \
         CAST($3 AS BIGINT) \
         FROM uplink_configs WHERE project_id = $1 AND enabled = 1 ON CONFLICT DO NOTHING"
    )))
    .bind(project_id)
    .bind(team_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Queues the workers who joined `project_id` at `joined_at` (the memberships just made or
/// renewed): the worker once per project, an entry every time.
pub(super) async fn enqueue_joins(
    conn: &mut AnyConnection,
    project_id: i64,
    joined_at: i64,
) -> Result<(), sqlx::Error> {
    for (kind, once) in [
        (
            "worker",
            "AND NOT EXISTS (SELECT 1 FROM uplink_outbox o WHERE o.project_id = pw.project_id \
             AND o.kind = 'worker' AND o.ref_id = pw.person_id)",
        ),
        ("entry", ""),
    ] {
        sqlx::query(AssertSqlSafe(format!(
            "{OUTBOX_INSERT} SELECT pw.project_id, '{kind}', pw.person_id, \
             CAST(pw.person_id AS TEXT), pw.joined_at, 'pending', CAST($2 AS BIGINT) \
             FROM project_workers pw \
             JOIN uplink_configs c ON c.project_id = pw.project_id WHERE c.enabled = 1 \
             AND pw.project_id = $1 AND pw.joined_at = $2 AND pw.status = 'active' {once} \
             ORDER BY pw.person_id"
        )))
        .bind(project_id)
        .bind(joined_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Queues a worker's exit from a project that reports.
pub(super) async fn enqueue_exit(
    conn: &mut AnyConnection,
    project_id: i64,
    person_id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "{OUTBOX_INSERT} SELECT project_id, 'exit', CAST($2 AS BIGINT), CAST($3 AS TEXT), \
         CAST($4 AS BIGINT), 'pending', CAST($4 AS BIGINT) \
         FROM uplink_configs WHERE project_id = $1 AND enabled = 1"
    )))
    .bind(project_id)
    .bind(person_id)
    .bind(person_id.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Queues what a project already has when its uplink is first set up: teams, active
/// workers and their entries, attendance from `from` on — in that order.
async fn backfill(
    conn: &mut AnyConnection,
    project_id: i64,
    from: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    let teams = format!(
        "{OUTBOX_INSERT} SELECT project_id, 'team', id, NULL, created_at, 'pending', CAST($2 AS BIGINT) \
         FROM teams WHERE project_id = $1 ORDER BY id ON CONFLICT DO NOTHING"
    );
    let members = |kind: &str| {
        format!(
            "{OUTBOX_INSERT} SELECT pw.project_id, '{kind}', pw.person_id, \
             CAST(pw.person_id AS TEXT), pw.joined_at, 'pending', CAST($2 AS BIGINT) \
             FROM project_workers pw WHERE pw.project_id = $1 AND pw.status = 'active' \
             ORDER BY pw.person_id"
        )
    };
    for sql in [teams, members("worker"), members("entry")] {
        sqlx::query(AssertSqlSafe(sql))
            .bind(project_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(AssertSqlSafe(format!(
        "{OUTBOX_INSERT} SELECT project_id, 'attendance', record_id, person_id, \
         record_time, 'pending', CAST($2 AS BIGINT) FROM attendance WHERE project_id = $1 \
         AND record_time >= $3 ORDER BY record_time, record_id ON CONFLICT DO NOTHING"
    )))
    .bind(project_id)
    .bind(now)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Queues `ProjectWorker.Update` for an edited worker in each reporting project whose
/// `ProjectWorker.Add` already left (sending, sent or accepted): an add still pending
/// carries the new data anyway. One pending update per worker and project at most: a
/// second edit merges into it (the data is read when it is sent). Its queue id orders it
/// after the add, and the sender holds it until the add is accepted.
async fn enqueue_worker_update(
    conn: &mut AnyConnection,
    person_id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(AssertSqlSafe(format!(
        "{OUTBOX_INSERT} SELECT c.project_id, 'worker_update', CAST($1 AS BIGINT),          CAST($2 AS TEXT), CAST($3 AS BIGINT), 'pending', CAST($3 AS BIGINT)          FROM uplink_configs c WHERE c.enabled = 1          AND EXISTS (SELECT 1 FROM uplink_outbox a WHERE a.project_id = c.project_id            AND a.kind = 'worker' AND a.ref_id = $1 AND a.state IN ('sending', 'sent', 'accepted'))          AND NOT EXISTS (SELECT 1 FROM uplink_outbox u WHERE u.project_id = c.project_id            AND u.kind = 'worker_update' AND u.ref_id = $1 AND u.state = 'pending')          ORDER BY c.project_id"
    )))
    .bind(person_id)
    .bind(person_id.to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes a worker's national data and makes their waiting uplink items due.
async fn write_worker_national(conn: &mut AnyConnection, d: &WorkerNational) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO worker_national (person_id, grant_org, id_valid_from, id_valid_to, \
         politics_type, work_type, team_leader, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (person_id) DO UPDATE SET \
         grant_org = excluded.grant_org, id_valid_from = excluded.id_valid_from, \
         id_valid_to = excluded.id_valid_to, politics_type = excluded.politics_type, \
         work_type = excluded.work_type, team_leader = excluded.team_leader, \
         updated_at = excluded.updated_at",
    )
    .bind(d.person_id)
    .bind(d.grant_org.clone())
    .bind(d.id_valid_from.clone())
    .bind(d.id_valid_to.clone())
    .bind(d.politics_type.clone())
    .bind(d.work_type.clone())
    .bind(i64::from(d.team_leader))
    .bind(d.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(|e| super::constraint(e, || format!("worker {}", d.person_id)))?;
    sqlx::query("UPDATE uplink_outbox SET next_at = 0 WHERE person_id = $1 AND state = 'pending'")
        .bind(d.person_id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[async_trait]
impl UplinkStore for SqlStore {
    // --- settings ------------------------------------------------------------------------

    async fn put_uplink_config(&self, c: &UplinkConfig, backfill_from: i64) -> StoreResult<()> {
        let sealed = self
            .keys
            .seal(APPSECRET, &c.project_id.to_string(), &c.appsecret)?;
        let mut tx = self.write().await?;
        let existed = sqlx::query("SELECT project_id FROM uplink_configs WHERE project_id = $1")
            .bind(c.project_id)
            .fetch_optional(tx.conn())
            .await?
            .is_some();
        sqlx::query(
            "INSERT INTO uplink_configs (project_id, endpoint, appid, appsecret, corp_code, \
             corp_name, enabled, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (project_id) DO UPDATE SET endpoint = excluded.endpoint, \
             appid = excluded.appid, appsecret = excluded.appsecret, \
             corp_code = excluded.corp_code, corp_name = excluded.corp_name, \
             enabled = excluded.enabled, updated_at = excluded.updated_at, \
             failures = 0, retry_at = 0",
        )
        .bind(c.project_id)
        .bind(c.endpoint.clone())
        .bind(c.appid.clone())
        .bind(sealed)
        .bind(c.corp_code.clone())
        .bind(c.corp_name.clone())
        .bind(i64::from(c.enabled))
        .bind(c.updated_at)
        .execute(tx.conn())
        .await
        .map_err(|e| super::constraint(e, || format!("uplink of project {}", c.project_id)))?;
        if !existed && c.enabled {
            backfill(tx.conn(), c.project_id, backfill_from, c.updated_at).await?;
        }
        tx.commit().await
    }

    async fn uplink_config(&self, project_id: i64) -> StoreResult<Option<UplinkConfig>> {
        let config: Option<UplinkConfig> = self
            .fetch_optional(
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {CONFIG_COLUMNS} FROM uplink_configs WHERE project_id = $1"
                )))
                .bind(project_id),
            )
            .await?;
        config.map(|c| self.open_uplink(c)).transpose()
    }

    async fn enabled_uplinks(&self) -> StoreResult<Vec<UplinkConfig>> {
        let configs: Vec<UplinkConfig> = self
            .fetch_all(sqlx::query(AssertSqlSafe(format!(
                "SELECT {CONFIG_COLUMNS} FROM uplink_configs WHERE enabled = 1 \
                 ORDER BY project_id"
            ))))
            .await?;
        configs.into_iter().map(|c| self.open_uplink(c)).collect()
    }

    async fn take_uplink_lease(
        &self,
        project_id: i64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        // Compare-and-set: one statement, so two nodes cannot both win.
        let changed = self
            .execute(
                sqlx::query(
                    "UPDATE uplink_configs SET lease_owner = $2, lease_until = $4 \
                     WHERE project_id = $1 AND (lease_owner IS NULL OR lease_owner = $2 \
                     OR lease_until < $3)",
                )
                .bind(project_id)
                .bind(owner.to_owned())
                .bind(now)
                .bind(until),
            )
            .await?;
        Ok(changed == 1)
    }

    async fn record_uplink_attempt(
        &self,
        project_id: i64,
        result: Result<i64, (String, i64)>,
    ) -> StoreResult<()> {
        let query = match result {
            Ok(at) => sqlx::query(
                "UPDATE uplink_configs SET last_success_at = $2, failures = 0, retry_at = 0, \
                 last_error = NULL WHERE project_id = $1",
            )
            .bind(project_id)
            .bind(at),
            Err((message, retry_at)) => sqlx::query(
                "UPDATE uplink_configs SET failures = failures + 1, retry_at = $2, \
                 last_error = $3 WHERE project_id = $1",
            )
            .bind(project_id)
            .bind(retry_at)
            .bind(message),
        };
        self.execute(query).await?;
        Ok(())
    }

    // --- the outbox ----------------------------------------------------------------------

    async fn uplink_in_flight(&self, project_id: i64) -> StoreResult<Vec<UplinkItem>> {
        self.fetch_all(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {ITEM_COLUMNS} FROM uplink_outbox WHERE project_id = $1 \
                 AND state IN ('sending', 'sent') ORDER BY id"
            )))
            .bind(project_id),
        )
        .await
    }

    async fn uplink_due(
        &self,
        project_id: i64,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<UplinkItem>> {
        self.fetch_all(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {ITEM_COLUMNS} FROM uplink_outbox WHERE project_id = $1 \
                 AND state = 'pending' AND next_at <= $2 ORDER BY id LIMIT $3"
            )))
            .bind(project_id)
            .bind(now)
            .bind(i64::from(limit.clamp(1, 1000))),
        )
        .await
    }

    async fn uplink_mark_sending(&self, ids: &[i64], request: &str, now: i64) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let request = request.to_owned();
        let changed = self
            .update_items(
                tx.conn(),
                "UPDATE uplink_outbox SET state = 'sending', request = $1, sent_at = $2 \
                 WHERE state = 'pending' AND id IN ({ids})",
                || vec![Arg::Text(Some(request.clone())), Arg::Int(Some(now))],
                ids,
            )
            .await?;
        if changed != ids.len() as u64 {
            // Another sender moved an item: send nothing (the transaction rolls back).
            return Err(StoreError::Conflict(format!(
                "uplink items of request {request} are no longer pending"
            )));
        }
        tx.commit().await
    }

    async fn uplink_mark_sent(&self, ids: &[i64], request: &str, serial: &str) -> StoreResult<()> {
        let mut tx = self.write().await?;
        let (request, serial) = (request.to_owned(), serial.to_owned());
        self.update_items(
            tx.conn(),
            "UPDATE uplink_outbox SET state = 'sent', serial = $2 \
             WHERE state = 'sending' AND request = $1 AND id IN ({ids})",
            || {
                vec![
                    Arg::Text(Some(request.clone())),
                    Arg::Text(Some(serial.clone())),
                ]
            },
            ids,
        )
        .await?;
        tx.commit().await
    }

    async fn uplink_settle(
        &self,
        ids: &[i64],
        outcome: &UplinkOutcome,
        now: i64,
        team_sys_no: Option<(i64, i64)>,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        if let Some((team_id, sys_no)) = team_sys_no {
            sqlx::query(
                "INSERT INTO uplink_teams (team_id, project_id, team_sys_no) \
                 SELECT id, project_id, $2 FROM teams WHERE id = $1 \
                 ON CONFLICT (team_id) DO UPDATE SET team_sys_no = excluded.team_sys_no",
            )
            .bind(team_id)
            .bind(sys_no)
            .execute(tx.conn())
            .await?;
        }
        let unfinished = format!("state IN {UNFINISHED} AND id IN ({{ids}})");
        match outcome {
            UplinkOutcome::Accepted => {
                self.update_items(
                    tx.conn(),
                    &format!(
                        "UPDATE uplink_outbox SET state = 'accepted', done_at = $1, \
                         message = NULL WHERE {unfinished}"
                    ),
                    || vec![Arg::Int(Some(now))],
                    ids,
                )
                .await?;
                // What waited for these (the same workers' next items; for a team, the
                // project's) is due at once.
                self.update_items(
                    tx.conn(),
                    "UPDATE uplink_outbox SET next_at = 0 WHERE state = 'pending' \
                     AND next_at > 0 AND EXISTS (SELECT 1 FROM uplink_outbox d \
                     WHERE d.id IN ({ids}) AND d.project_id = uplink_outbox.project_id \
                     AND (d.kind = 'team' OR d.person_id = uplink_outbox.person_id))",
                    Vec::new,
                    ids,
                )
                .await?;
            }
            UplinkOutcome::InDoubt => {
                self.update_items(
                    tx.conn(),
                    "UPDATE uplink_outbox SET state = 'sending', serial = NULL \
                     WHERE state = 'sent' AND id IN ({ids})",
                    Vec::new,
                    ids,
                )
                .await?;
            }
            UplinkOutcome::Refused(message) => {
                self.update_items(
                    tx.conn(),
                    &format!(
                        "UPDATE uplink_outbox SET state = 'refused', done_at = $1, \
                         message = $2 WHERE {unfinished}"
                    ),
                    || vec![Arg::Int(Some(now)), Arg::Text(Some(message.clone()))],
                    ids,
                )
                .await?;
            }
            UplinkOutcome::Retry {
                next_at,
                solo,
                message,
            } => {
                self.update_items(
                    tx.conn(),
                    &format!(
                        "UPDATE uplink_outbox SET state = 'pending', attempts = attempts + 1, \
                         next_at = $1, solo = CASE WHEN CAST($2 AS BIGINT) = 1 THEN 1 ELSE solo END, \
                         message = $3, request = NULL, serial = NULL WHERE {unfinished}"
                    ),
                    || {
                        vec![
                            Arg::Int(Some(*next_at)),
                            Arg::Int(Some(i64::from(*solo))),
                            Arg::Text(message.clone()),
                        ]
                    },
                    ids,
                )
                .await?;
            }
        }
        tx.commit().await
    }

    async fn uplink_team_sys_no(&self, team_id: i64) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT team_sys_no FROM uplink_teams WHERE team_id = $1")
            .bind(team_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| col(&r, "team_sys_no")).transpose()
    }

    async fn uplink_items(
        &self,
        project_id: i64,
        state: Option<UplinkState>,
        before_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<UplinkItem>> {
        let mut args = vec![
            Arg::Int(Some(project_id)),
            Arg::Int(Some(before_id.unwrap_or(i64::MAX))),
        ];
        let mut filter = String::new();
        if let Some(state) = state {
            args.push(Arg::Text(Some(state.as_str().to_owned())));
            filter = format!("AND state = ${}", args.len());
        }
        args.push(Arg::Int(Some(i64::from(limit.clamp(1, 1000)))));
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM uplink_outbox WHERE project_id = $1 AND id < $2 \
             {filter} ORDER BY id DESC LIMIT ${}",
            args.len()
        );
        self.fetch_all(bind_all(sqlx::query(AssertSqlSafe(sql)), args))
            .await
    }

    async fn uplink_items_of(&self, kind: UplinkKind, ref_id: i64) -> StoreResult<Vec<UplinkItem>> {
        self.fetch_all(
            sqlx::query(AssertSqlSafe(format!(
                "SELECT {ITEM_COLUMNS} FROM uplink_outbox WHERE kind = $1 AND ref_id = $2 \
                 ORDER BY id"
            )))
            .bind(kind.as_str())
            .bind(ref_id),
        )
        .await
    }

    async fn uplink_stats(&self, project_id: i64, day: (i64, i64)) -> StoreResult<UplinkStats> {
        let queue = sqlx::query(AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(MIN(created_at) AS BIGINT) AS oldest \
             FROM uplink_outbox WHERE project_id = $1 AND state IN {UNFINISHED}"
        )))
        .bind(project_id)
        .fetch_one(&self.pool)
        .await?;
        let refused = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM uplink_outbox \
             WHERE project_id = $1 AND state = 'refused'",
        )
        .bind(project_id)
        .fetch_one(&self.pool)
        .await?;
        let today = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, \
             CAST(SUM(CASE WHEN state = 'accepted' THEN 1 ELSE 0 END) AS BIGINT) AS accepted \
             FROM uplink_outbox WHERE project_id = $1 AND kind = 'attendance' \
             AND at >= $2 AND at < $3",
        )
        .bind(project_id)
        .bind(day.0)
        .bind(day.1)
        .fetch_one(&self.pool)
        .await?;
        Ok(UplinkStats {
            pending: col(&queue, "n")?,
            oldest_pending_at: col(&queue, "oldest")?,
            refused: col(&refused, "n")?,
            today_records: col(&today, "n")?,
            today_accepted: col::<Option<i64>>(&today, "accepted")?.unwrap_or(0),
        })
    }

    async fn uplink_requeue_refused(&self, project_id: i64, now: i64) -> StoreResult<u64> {
        Ok(self
            .execute(
                sqlx::query(
                    "UPDATE uplink_outbox SET state = 'pending', next_at = $2, done_at = NULL, \
                     solo = 1, request = NULL, serial = NULL \
                     WHERE project_id = $1 AND state = 'refused'",
                )
                .bind(project_id)
                .bind(now),
            )
            .await?)
    }

    async fn uplink_wake_person(&self, person_id: i64) -> StoreResult<()> {
        self.execute(
            sqlx::query(
                "UPDATE uplink_outbox SET next_at = 0 WHERE person_id = $1 AND state = 'pending'",
            )
            .bind(person_id.to_string()),
        )
        .await?;
        Ok(())
    }

    // --- worker data and dictionaries --------------------------------------------------

    async fn worker_national(&self, person_id: i64) -> StoreResult<Option<WorkerNational>> {
        Ok(self
            .worker_nationals(&[person_id])
            .await?
            .into_iter()
            .next())
    }

    async fn worker_nationals(&self, person_ids: &[i64]) -> StoreResult<Vec<WorkerNational>> {
        let mut out = Vec::new();
        for chunk in person_ids.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT person_id, grant_org, id_valid_from, id_valid_to, politics_type, \
                 work_type, team_leader, updated_at FROM worker_national \
                 WHERE person_id IN ({}) ORDER BY person_id",
                placeholders(1, chunk.len())
            );
            let args = chunk.iter().map(|&id| Arg::Int(Some(id))).collect();
            let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), args)
                .fetch_all(&self.pool)
                .await?;
            for r in &rows {
                out.push(WorkerNational {
                    person_id: col(r, "person_id")?,
                    grant_org: col(r, "grant_org")?,
                    id_valid_from: col(r, "id_valid_from")?,
                    id_valid_to: col(r, "id_valid_to")?,
                    politics_type: col(r, "politics_type")?,
                    work_type: col(r, "work_type")?,
                    team_leader: col_bool(r, "team_leader")?,
                    updated_at: col(r, "updated_at")?,
                });
            }
        }
        Ok(out)
    }

    async fn put_worker_national(&self, d: &WorkerNational) -> StoreResult<()> {
        let mut tx = self.write().await?;
        write_worker_national(tx.conn(), d).await?;
        tx.commit().await
    }

    async fn edit_worker(
        &self,
        person_id: i64,
        patch: &WorkerPatch,
        d: &WorkerNational,
    ) -> StoreResult<Option<Worker>> {
        let mut tx = self.write().await?;
        if !super::workers::patch_worker(tx.conn(), person_id, patch).await? {
            return Ok(None);
        }
        write_worker_national(tx.conn(), d).await?;
        enqueue_worker_update(tx.conn(), person_id, d.updated_at).await?;
        tx.commit().await?;
        crate::store::WorkerStore::worker(self, person_id).await
    }

    async fn dictionary_entries(&self) -> StoreResult<Vec<DictionaryEntry>> {
        let rows = sqlx::query("SELECT kind, code, name FROM dictionaries ORDER BY kind, code")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DictionaryEntry {
                    kind: col(r, "kind")?,
                    code: col(r, "code")?,
                    name: col(r, "name")?,
                })
            })
            .collect()
    }

    async fn put_dictionary_entry(&self, e: &DictionaryEntry) -> StoreResult<()> {
        self.execute(
            sqlx::query(
                "INSERT INTO dictionaries (kind, code, name) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, code) DO UPDATE SET name = excluded.name",
            )
            .bind(e.kind.clone())
            .bind(e.code.clone())
            .bind(e.name.clone()),
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::test_db::TestDb;
    use crate::store::{DeviceStore, VendorStore};

    /// A project's uplink settings, pointing at a port nothing listens on.
    pub(in crate::store::sql) fn config(project_id: i64, enabled: bool) -> UplinkConfig {
        UplinkConfig {
            project_id,
            endpoint: "http://127.0.0.1:9/open.api".into(),
            appid: "330100000000000001".into(),
            appsecret: "0123456789abcdef0123456789abcdef".into(),
            corp_code: "c".into(),
            corp_name: "n".into(),
            enabled,
            updated_at: 1,
            last_success_at: None,
            last_error: None,
            failures: 0,
            retry_at: 0,
        }
    }

    async fn store_with_project(dir: &std::path::Path) -> (SqlStore, i64) {
        let store = TestDb::new("uplink", dir).open().await.unwrap();
        let project = Project {
            id: 42,
            name: "p".into(),
            code: None,
            address: None,
            coordinate_system: Default::default(),
            fence: None,
            created_at: 1,
        };
        store.create_project(&project).await.unwrap();
        (store, 42)
    }

    /// An edit queues one update per reporting project once the worker's add has left; a
    /// second edit while it is pending merges into it; an add still pending needs none.
    #[tokio::test]
    async fn an_edit_queues_one_update_after_the_add_has_left() {
        let dir = tempfile::tempdir().unwrap();
        let (store, project) = store_with_project(dir.path()).await;
        store
            .put_uplink_config(&config(project, true), 0)
            .await
            .unwrap();
        let mut conn = store.pool.acquire().await.unwrap();
        for (person, state) in [(5, "accepted"), (6, "pending"), (7, "sending")] {
            sqlx::query(AssertSqlSafe(format!(
                "{OUTBOX_INSERT} VALUES ($1, 'worker', $2, $3, 1, $4, 1)"
            )))
            .bind(project)
            .bind(person)
            .bind(person.to_string())
            .bind(state)
            .execute(&mut *conn)
            .await
            .unwrap();
        }
        for person in [5, 6, 7, 5] {
            enqueue_worker_update(&mut conn, person, 10).await.unwrap();
        }
        let updates = |person: i64| {
            let store = &store;
            async move {
                store
                    .uplink_items_of(UplinkKind::WorkerUpdate, person)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(updates(5).await.len(), 1, "merged into the pending one");
        assert!(
            updates(6).await.is_empty(),
            "the pending add carries the edit"
        );
        assert_eq!(
            updates(7).await.len(),
            1,
            "the add in flight may carry old data"
        );
        // Once the update has left, a new edit queues another, after it.
        let first = updates(5).await[0].id;
        store.uplink_mark_sending(&[first], "r", 11).await.unwrap();
        enqueue_worker_update(&mut conn, 5, 12).await.unwrap();
        let again = updates(5).await;
        assert_eq!(again.len(), 2);
        assert!(again[1].id > first);
        assert_eq!(again[1].state, UplinkState::Pending);
    }

    /// One sender per project: a second node cannot take a held lease until it lapses.
    #[tokio::test]
    async fn the_sender_lease_is_held_by_one_node_until_it_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let (store, project) = store_with_project(dir.path()).await;
        store
            .put_uplink_config(&config(project, true), 0)
            .await
            .unwrap();
        assert!(
            store
                .take_uplink_lease(project, "a", 1000, 2000)
                .await
                .unwrap()
        );
        assert!(
            !store
                .take_uplink_lease(project, "b", 1500, 2500)
                .await
                .unwrap()
        );
        // The holder renews.
        assert!(
            store
                .take_uplink_lease(project, "a", 1900, 2900)
                .await
                .unwrap()
        );
        assert!(
            !store
                .take_uplink_lease(project, "b", 2800, 3800)
                .await
                .unwrap()
        );
        // Lapsed: another node takes over.
        assert!(
            store
                .take_uplink_lease(project, "b", 3000, 4000)
                .await
                .unwrap()
        );
        assert!(
            !store
                .take_uplink_lease(project, "a", 3100, 4100)
                .await
                .unwrap()
        );
    }

    /// The secret is sealed at rest and opens again; a settle moves only unsettled items.
    #[tokio::test]
    async fn the_secret_is_sealed_and_settled_items_stay_settled() {
        let dir = tempfile::tempdir().unwrap();
        let (store, project) = store_with_project(dir.path()).await;
        store
            .put_uplink_config(&config(project, true), 0)
            .await
            .unwrap();
        let raw: String = sqlx::query_scalar("SELECT appsecret FROM uplink_configs")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert!(raw.starts_with("sealed:v1:"), "{raw}");
        assert!(!raw.contains("0123456789abcdef"));
        let opened = store.uplink_config(project).await.unwrap().unwrap();
        assert_eq!(
            opened.appsecret.expose(),
            "0123456789abcdef0123456789abcdef"
        );
        // A new current key: resealed at startup, still opening to the same secret.
        let rotated = crate::store::sealing::Keyring::parse(&format!(
            "{},{}",
            crate::store::sealing::Keyring::generate_key().unwrap(),
            crate::store::test_db::TEST_SECRET_KEY
        ))
        .unwrap();
        let store = store.with_keys(rotated);
        assert!(store.reseal_secrets().await.unwrap() >= 1);
        let again: String = sqlx::query_scalar("SELECT appsecret FROM uplink_configs")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_ne!(again, raw);
        let opened = store.uplink_config(project).await.unwrap().unwrap();
        assert_eq!(
            opened.appsecret.expose(),
            "0123456789abcdef0123456789abcdef"
        );

        let team = crate::store::console::Team {
            id: 7,
            project_id: project,
            name: "班".into(),
            leader: None,
            created_at: 5,
        };
        crate::store::RosterStore::create_team(&store, &team)
            .await
            .unwrap();
        let due = store.uplink_due(project, 10, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].kind, UplinkKind::Team);
        let id = due[0].id;
        store.uplink_mark_sending(&[id], "req-1", 10).await.unwrap();
        // Marking twice fails: another sender moved it.
        assert!(store.uplink_mark_sending(&[id], "req-2", 11).await.is_err());
        store
            .uplink_settle(&[id], &UplinkOutcome::Accepted, 12, Some((7, 1001)))
            .await
            .unwrap();
        assert_eq!(store.uplink_team_sys_no(7).await.unwrap(), Some(1001));
        // An accepted item is never moved back to pending.
        let retry = UplinkOutcome::Retry {
            next_at: 0,
            solo: false,
            message: None,
        };
        store.uplink_settle(&[id], &retry, 13, None).await.unwrap();
        let items = store.uplink_items_of(UplinkKind::Team, 7).await.unwrap();
        assert_eq!(items[0].state, UplinkState::Accepted);
        assert!(store.uplink_due(project, 100, 10).await.unwrap().is_empty());
    }
}
