//! [`DeviceStore`]: projects (sites), their devices, device tokens and presence.

use async_trait::async_trait;

use crate::store::StoreResult;
use crate::store::model::*;

#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    // --- tokens --------------------------------------------------------------------------
    async fn insert_token(
        &self,
        token: &str,
        sn: &str,
        access_id: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// `(sn, access_id, last_used_at)` of a token.
    async fn token(&self, token: &str) -> StoreResult<Option<(String, String, i64)>>;
    /// Writes sliding-expiry touches behind, in one transaction.
    async fn touch_tokens(&self, touches: &[(String, i64)]) -> StoreResult<()>;
    /// Deletes the tokens last used before `before` (long expired); how many.
    async fn delete_idle_tokens(&self, before: i64) -> StoreResult<u64>;

    // --- projects ------------------------------------------------------------------------
    async fn create_project(&self, project: &Project) -> StoreResult<()>;
    async fn project(&self, id: i64) -> StoreResult<Option<Project>>;
    async fn projects(&self) -> StoreResult<Vec<Project>>;

    // --- devices -------------------------------------------------------------------------
    /// Fails with `Conflict` if the sn is taken.
    async fn create_device(&self, device: &Device) -> StoreResult<()>;
    async fn device(&self, sn: &str) -> StoreResult<Option<Device>>;
    /// `node` takes over `sn`'s session: the epoch goes up by one and is returned, and every
    /// node sharing the store is told (PostgreSQL: `NOTIFY` on [`crate::store::SESSION_CHANNEL`],
    /// payload the sn), so the node that held it closes its connection.
    async fn claim_session(&self, sn: &str, node: &str, now: i64) -> StoreResult<i64>;
    /// Who holds `sn`'s session (`None`: it never connected over TCP).
    async fn device_session(&self, sn: &str) -> StoreResult<Option<DeviceSession>>;
    async fn devices(&self, project_id: Option<i64>) -> StoreResult<Vec<Device>>;
    /// Applies a patch and returns the device as it now is.
    async fn update_device(&self, sn: &str, patch: &DevicePatch) -> StoreResult<Device>;
    async fn set_device_counts(&self, sn: &str, persons: i64, faces: i64) -> StoreResult<()>;
    /// Heartbeat state and online/offline transitions, written behind in one transaction.
    async fn record_presence(
        &self,
        updates: &[PresenceUpdate],
        transitions: &[PresenceTransition],
    ) -> StoreResult<()>;
    /// A device's transitions, newest first.
    async fn presence_history(&self, sn: &str, limit: u32) -> StoreResult<Vec<PresenceTransition>>;
}
