//! [`VendorStore`]: device vendors, their credentials and firmware packages.

use async_trait::async_trait;

use crate::store::StoreResult;
use crate::store::console::*;
use crate::store::model::*;

#[async_trait]
pub trait VendorStore: Send + Sync + 'static {
    // --- vendors and credentials ---------------------------------------------------------
    async fn create_vendor(&self, vendor: &Vendor) -> StoreResult<()>;
    async fn vendor(&self, id: i64) -> StoreResult<Option<Vendor>>;
    async fn vendors(&self) -> StoreResult<Vec<Vendor>>;
    /// Any credential ever issued with this access id, current or revoked.
    async fn credential(&self, access_id: &str) -> StoreResult<Option<Credential>>;
    /// Revokes the vendor's current credentials and installs the new ones (one transaction).
    async fn rotate_credentials(&self, vendor_id: i64, new: &Credential) -> StoreResult<()>;
    /// Reseals every stored secret not sealed under the current key (an older key's, or
    /// none: written before sealing). Opens every value first and writes nothing if one
    /// does not open. Returns how many rows were resealed.
    async fn reseal_secrets(&self) -> StoreResult<usize>;

    // --- firmware ------------------------------------------------------------------------
    /// Fails with `Conflict` if the vendor already has this version for this kind.
    async fn create_firmware(&self, firmware: &Firmware) -> StoreResult<()>;
    async fn firmware(&self, id: i64) -> StoreResult<Option<Firmware>>;
    async fn firmwares(&self) -> StoreResult<Vec<Firmware>>;
}
