//! Vendors, the credentials they sign with, and their firmware packages.
//!
//! Rotating credentials is one transaction: the old ones are revoked (kept, so a revoked
//! access id is still recognised) and the new ones installed.

use async_trait::async_trait;
use rollcall_protocol::ids::Secret;
use sqlx::{AnyConnection, AssertSqlSafe};

use rollcall_protocol::time::now_ms;

use super::{SqlStore, constraint};
use crate::store::console::*;
use crate::store::model::*;
use crate::store::{StoreError, StoreResult, VendorStore};

const FIRMWARE_COLUMNS: &str =
    "id, vendor_id, kind, version, file_key, sha256, size, notes, created_at";

#[async_trait]
impl VendorStore for SqlStore {
    // --- vendors and credentials ---------------------------------------------------------

    async fn create_vendor(&self, vendor: &Vendor) -> StoreResult<()> {
        let conflict = || format!("vendor {} or access id {}", vendor.id, vendor.access_id);
        let mut tx = self.write().await?;
        sqlx::query(concat!(
            "INSERT INTO vendors (",
            columns!(vendor),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(vendor.id)
        .bind(vendor.name.clone())
        .bind(vendor.access_id.clone())
        .bind(vendor.access_key.expose())
        .bind(vendor.access_secret.expose())
        .bind(vendor.rsa_public_key.clone())
        .bind(vendor.created_at)
        .execute(tx.conn())
        .await
        .map_err(|e| constraint(e, conflict))?;
        insert_credential(
            tx.conn(),
            vendor.id,
            &vendor.access_id,
            &vendor.access_key,
            &vendor.access_secret,
        )
        .await
        .map_err(|e| constraint(e, conflict))?;
        tx.commit().await
    }

    async fn vendor(&self, id: i64) -> StoreResult<Option<Vendor>> {
        self.fetch_optional(sqlx::query(select!(vendor, "FROM vendors WHERE id = $1")).bind(id))
            .await
    }

    async fn vendors(&self) -> StoreResult<Vec<Vendor>> {
        self.fetch_all(sqlx::query(select!(vendor, "FROM vendors ORDER BY id")))
            .await
    }

    async fn credential(&self, access_id: &str) -> StoreResult<Option<Credential>> {
        self.fetch_optional(
            sqlx::query(select!(credential, "FROM credentials WHERE access_id = $1"))
                .bind(access_id),
        )
        .await
    }

    async fn rotate_credentials(&self, vendor_id: i64, new: &Credential) -> StoreResult<()> {
        let conflict = || format!("access id {}", new.access_id);
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE vendors SET access_id = $2, access_key = $3, access_secret = $4 WHERE id = $1",
        )
        .bind(vendor_id)
        .bind(new.access_id.clone())
        .bind(new.access_key.expose())
        .bind(new.access_secret.expose())
        .execute(tx.conn())
        .await
        .map_err(|e| constraint(e, conflict))?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::NotFound(format!("vendor {vendor_id}")));
        }
        sqlx::query(
            "UPDATE credentials SET revoked_at = $2 WHERE vendor_id = $1 AND revoked_at IS NULL",
        )
        .bind(vendor_id)
        .bind(now_ms())
        .execute(tx.conn())
        .await?;
        insert_credential(
            tx.conn(),
            vendor_id,
            &new.access_id,
            &new.access_key,
            &new.access_secret,
        )
        .await
        .map_err(|e| constraint(e, conflict))?;
        tx.commit().await
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

async fn insert_credential(
    conn: &mut AnyConnection,
    vendor_id: i64,
    access_id: &str,
    access_key: &Secret,
    access_secret: &Secret,
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO credentials (",
        columns!(credential),
        ") VALUES ($1, $2, $3, $4, NULL)"
    ))
    .bind(access_id)
    .bind(access_key.expose())
    .bind(access_secret.expose())
    .bind(vendor_id)
    .execute(conn)
    .await?;
    Ok(())
}
