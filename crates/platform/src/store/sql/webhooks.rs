//! Webhook endpoints and their deliveries (the outbox's second profile, docs/UPLINK.md), and
//! the `enqueue_*` statements the other aggregates run **inside their own write
//! transactions**: an event is stored with the thing it is about, or not at all. An
//! endpoint's `events` is a comma list (or `*`); it is matched in SQL, so an installation
//! without endpoints pays one join over an empty table per commit.

use async_trait::async_trait;
use sqlx::{AnyConnection, AssertSqlSafe};

use super::{Arg, Backend, MAX_PARAMS, SqlStore, bind_all, col, col_bool, col_u32, ids_in};
use crate::store::model::*;
use crate::store::{StoreResult, WebhookStore};

/// The column (and associated-data label) an endpoint's secret is sealed under.
const SECRET: &str = "webhook_secret";
const ENDPOINT_COLUMNS: &str = "id, url, secret, events, enabled, created_at, failures, retry_at";
const DELIVERY_COLUMNS: &str = "id, endpoint_id, event, ref, state, attempts, last_status, \
     last_error, created_at, delivered_at";
/// The endpoints of `e` subscribed to the event bound as `$1`.
const SUBSCRIBED: &str = "e.enabled = 1 AND (e.events = '*' OR \
     (',' || e.events || ',') LIKE ('%,' || CAST($1 AS TEXT) || ',%'))";

/// Queues `event` about each of `refs` for every subscribed endpoint.
pub(super) async fn enqueue(
    conn: &mut AnyConnection,
    event: &str,
    refs: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    for r in refs {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO webhook_deliveries (endpoint_id, event, ref, state, created_at) \
             SELECT e.id, CAST($1 AS TEXT), CAST($2 AS TEXT), 'pending', CAST($3 AS BIGINT) \
             FROM webhook_endpoints e WHERE {SUBSCRIBED} ORDER BY e.id"
        )))
        .bind(event.to_owned())
        .bind(r.clone())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Queues `attendance` events for new records, in one statement per chunk. The endpoints are
/// the outer loop (SQLite keeps a `CROSS JOIN`'s order): a platform without subscribed
/// endpoints then looks up none of the chunk's records.
pub(super) async fn enqueue_attendance(
    conn: &mut AnyConnection,
    backend: Backend,
    record_ids: &[i64],
    now: i64,
) -> Result<(), sqlx::Error> {
    for chunk in record_ids.chunks(MAX_PARAMS) {
        let (new_records, ids) = ids_in(backend, "a.record_id", 3, chunk);
        let mut args = vec![
            Arg::Text(Some("attendance".to_owned())),
            Arg::Int(Some(now)),
        ];
        args.extend(ids);
        bind_all(
            sqlx::query(AssertSqlSafe(attendance_sql(&new_records, "$2"))),
            args,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The statement of [`enqueue_attendance`]: `$1` is the event (`attendance`), `now` the
/// placeholder of the creation time, `new_records` the condition naming the records.
pub(super) fn attendance_sql(new_records: &str, now: &str) -> String {
    format!(
        "INSERT INTO webhook_deliveries (endpoint_id, event, ref, state, created_at) \
         SELECT e.id, CAST($1 AS TEXT), CAST(a.record_id AS TEXT), 'pending', \
         CAST({now} AS BIGINT) FROM webhook_endpoints e CROSS JOIN attendance a \
         WHERE {SUBSCRIBED} AND {new_records} ORDER BY e.id, a.record_time, a.record_id"
    )
}

fn delivery(row: &sqlx::any::AnyRow) -> StoreResult<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: col(row, "id")?,
        endpoint_id: col(row, "endpoint_id")?,
        event: col(row, "event")?,
        r#ref: col(row, "ref")?,
        state: col(row, "state")?,
        attempts: col_u32(row, "attempts")?,
        last_status: col(row, "last_status")?,
        last_error: col(row, "last_error")?,
        created_at: col(row, "created_at")?,
        delivered_at: col(row, "delivered_at")?,
    })
}

impl SqlStore {
    fn endpoint(&self, row: &sqlx::any::AnyRow) -> StoreResult<WebhookEndpoint> {
        let id: i64 = col(row, "id")?;
        let stored: String = col(row, "secret")?;
        let events: String = col(row, "events")?;
        Ok(WebhookEndpoint {
            id,
            url: col(row, "url")?,
            secret: self.keys.open(SECRET, &id.to_string(), &stored)?.secret,
            events: events.split(',').map(str::to_owned).collect(),
            enabled: col_bool(row, "enabled")?,
            created_at: col(row, "created_at")?,
            failures: col_u32(row, "failures")?,
            retry_at: col(row, "retry_at")?,
        })
    }
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn create_webhook(&self, e: &WebhookEndpoint) -> StoreResult<()> {
        let sealed = self.keys.seal(SECRET, &e.id.to_string(), &e.secret)?;
        self.execute(
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, url, secret, events, enabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(e.id)
            .bind(e.url.clone())
            .bind(sealed)
            .bind(e.events.join(","))
            .bind(i64::from(e.enabled))
            .bind(e.created_at),
        )
        .await
        .map_err(|err| super::constraint(err, || format!("webhook {}", e.id)))?;
        Ok(())
    }

    async fn webhook(&self, id: i64) -> StoreResult<Option<WebhookEndpoint>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.endpoint(&r)).transpose()
    }

    async fn webhooks(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| self.endpoint(r)).collect()
    }

    async fn disable_webhook(&self, id: i64) -> StoreResult<bool> {
        let changed = self
            .execute(sqlx::query("UPDATE webhook_endpoints SET enabled = 0 WHERE id = $1").bind(id))
            .await?;
        Ok(changed == 1)
    }

    async fn take_webhook_lease(
        &self,
        id: i64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        let changed = self
            .execute(
                sqlx::query(
                    "UPDATE webhook_endpoints SET lease_owner = $2, lease_until = $4 \
                     WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 \
                     OR lease_until < $3)",
                )
                .bind(id)
                .bind(owner.to_owned())
                .bind(now)
                .bind(until),
            )
            .await?;
        Ok(changed == 1)
    }

    async fn webhook_due(&self, endpoint_id: i64, limit: u32) -> StoreResult<Vec<WebhookDelivery>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 \
             AND state = 'pending' ORDER BY id LIMIT $2"
        )))
        .bind(endpoint_id)
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    async fn record_webhook_attempt(
        &self,
        d: &WebhookDelivery,
        state: &str,
        now: i64,
        retry_at: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $2, attempts = attempts + 1, \
             last_status = $3, last_error = $4, \
             delivered_at = CASE WHEN $2 = 'delivered' THEN CAST($5 AS BIGINT) ELSE NULL END \
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(d.id)
        .bind(state.to_owned())
        .bind(d.last_status)
        .bind(d.last_error.clone())
        .bind(now)
        .execute(tx.conn())
        .await?;
        let endpoint = if state == "pending" {
            sqlx::query(
                "UPDATE webhook_endpoints SET failures = failures + 1, retry_at = $2 \
                 WHERE id = $1",
            )
            .bind(d.endpoint_id)
            .bind(retry_at)
        } else {
            sqlx::query("UPDATE webhook_endpoints SET failures = 0, retry_at = 0 WHERE id = $1")
                .bind(d.endpoint_id)
        };
        endpoint.execute(tx.conn()).await?;
        tx.commit().await
    }

    async fn webhook_deliveries(
        &self,
        endpoint_id: i64,
        before_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 \
             AND id < $2 ORDER BY id DESC LIMIT $3"
        )))
        .bind(endpoint_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }
}
