//! [`WebhookStore`]: integrators' webhook endpoints and their deliveries — the outbox's
//! second profile. Deliveries are written by the other aggregates' own transactions (an
//! attendance record, a worker, a presence transition, a finished task); this trait reads
//! and moves them.

use async_trait::async_trait;

use crate::store::StoreResult;
use crate::store::model::*;

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores an endpoint (its secret sealed).
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    async fn webhook(&self, id: i64) -> StoreResult<Option<WebhookEndpoint>>;
    async fn webhooks(&self) -> StoreResult<Vec<WebhookEndpoint>>;
    /// Stops deliveries to an endpoint; `false` if there is none.
    async fn disable_webhook(&self, id: i64) -> StoreResult<bool>;
    /// Takes or renews the endpoint's delivery lease (as `take_uplink_lease`).
    async fn take_webhook_lease(
        &self,
        id: i64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool>;
    /// The endpoint's pending deliveries, oldest first.
    async fn webhook_due(&self, endpoint_id: i64, limit: u32) -> StoreResult<Vec<WebhookDelivery>>;
    /// Records an attempt: `delivered`, or still `pending` / `failed` with the status and
    /// error; the endpoint's backoff is reset (delivered) or set to `retry_at`.
    async fn record_webhook_attempt(
        &self,
        delivery: &WebhookDelivery,
        state: &str,
        now: i64,
        retry_at: i64,
    ) -> StoreResult<()>;
    /// The endpoint's delivery log, newest first.
    async fn webhook_deliveries(
        &self,
        endpoint_id: i64,
        before_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<WebhookDelivery>>;
}
