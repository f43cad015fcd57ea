//! Vendors, the credentials they sign with, and their firmware packages.
//!
//! Rotating credentials is one transaction: the old ones are revoked (kept, so a revoked
//! access id is still recognised) and the new ones installed.
//!
//! `access_key` and `access_secret` are stored sealed ([`crate::store::sealing`]): sealed
//! here on the way in, opened here on the way out, so nothing above the store sees the
//! stored form and nothing below it sees the clear one.

use async_trait::async_trait;
use rollcall_protocol::ids::Secret;
use sqlx::{AnyConnection, AssertSqlSafe};

use rollcall_protocol::time::now_ms;

use super::{SqlStore, constraint};
use crate::store::console::*;
use crate::store::model::*;
use crate::store::sealing::Keyring;
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
        .bind(
            self.keys
                .seal(ACCESS_KEY, &vendor.access_id, &vendor.access_key)?,
        )
        .bind(
            self.keys
                .seal(ACCESS_SECRET, &vendor.access_id, &vendor.access_secret)?,
        )
        .bind(vendor.rsa_public_key.clone())
        .bind(vendor.created_at)
        .execute(tx.conn())
        .await
        .map_err(|e| constraint(e, conflict))?;
        insert_credential(
            tx.conn(),
            vendor.id,
            &vendor.access_id,
            seal_pair(
                &self.keys,
                &vendor.access_id,
                &vendor.access_key,
                &vendor.access_secret,
            )?,
        )
        .await
        .map_err(|e| constraint(e, conflict))?;
        tx.commit().await
    }

    async fn vendor(&self, id: i64) -> StoreResult<Option<Vendor>> {
        let vendor: Option<Vendor> = self
            .fetch_optional(sqlx::query(select!(vendor, "FROM vendors WHERE id = $1")).bind(id))
            .await?;
        vendor
            .map(|v| self.open_vendor(v).map(|(v, _)| v))
            .transpose()
    }

    async fn vendors(&self) -> StoreResult<Vec<Vendor>> {
        let vendors: Vec<Vendor> = self
            .fetch_all(sqlx::query(select!(vendor, "FROM vendors ORDER BY id")))
            .await?;
        vendors
            .into_iter()
            .map(|v| self.open_vendor(v).map(|(v, _)| v))
            .collect()
    }

    async fn credential(&self, access_id: &str) -> StoreResult<Option<Credential>> {
        let credential: Option<Credential> = self
            .fetch_optional(
                sqlx::query(select!(credential, "FROM credentials WHERE access_id = $1"))
                    .bind(access_id),
            )
            .await?;
        credential
            .map(|c| self.open_credential(c).map(|(c, _)| c))
            .transpose()
    }

    async fn reseal_secrets(&self) -> StoreResult<usize> {
        let vendors: Vec<Vendor> = self
            .fetch_all(sqlx::query(select!(vendor, "FROM vendors ORDER BY id")))
            .await?;
        let credentials: Vec<Credential> = self
            .fetch_all(sqlx::query(select!(
                credential,
                "FROM credentials ORDER BY access_id"
            )))
            .await?;
        // Every value is opened before anything is written: a value under a key this node
        // lacks fails the whole pass and changes nothing.
        let mut vendor_updates = Vec::new();
        for stored in vendors {
            let (key, secret) = (stored.access_key.clone(), stored.access_secret.clone());
            let (vendor, stale) = self.open_vendor(stored)?;
            if stale {
                vendor_updates.push((vendor, key, secret));
            }
        }
        let mut credential_updates = Vec::new();
        for stored in credentials {
            let (key, secret) = (stored.access_key.clone(), stored.access_secret.clone());
            let (credential, stale) = self.open_credential(stored)?;
            if stale {
                credential_updates.push((credential, key, secret));
            }
        }
        let uplink_updates = self.stale_uplink_secrets().await?;
        let count = vendor_updates.len() + credential_updates.len() + uplink_updates.len();
        if count == 0 {
            return Ok(0);
        }
        let mut tx = self.write().await?;
        // Each update names the stored values it replaces, so two nodes resealing at once
        // cannot overwrite each other's newer write.
        for (v, old_key, old_secret) in &vendor_updates {
            sqlx::query(
                "UPDATE vendors SET access_key = $2, access_secret = $3 \
                 WHERE id = $1 AND access_key = $4 AND access_secret = $5",
            )
            .bind(v.id)
            .bind(self.keys.seal(ACCESS_KEY, &v.access_id, &v.access_key)?)
            .bind(
                self.keys
                    .seal(ACCESS_SECRET, &v.access_id, &v.access_secret)?,
            )
            .bind(old_key.expose())
            .bind(old_secret.expose())
            .execute(tx.conn())
            .await?;
        }
        for (c, old_key, old_secret) in &credential_updates {
            sqlx::query(
                "UPDATE credentials SET access_key = $2, access_secret = $3 \
                 WHERE access_id = $1 AND access_key = $4 AND access_secret = $5",
            )
            .bind(c.access_id.clone())
            .bind(self.keys.seal(ACCESS_KEY, &c.access_id, &c.access_key)?)
            .bind(
                self.keys
                    .seal(ACCESS_SECRET, &c.access_id, &c.access_secret)?,
            )
            .bind(old_key.expose())
            .bind(old_secret.expose())
            .execute(tx.conn())
            .await?;
        }
        self.reseal_uplink_secrets(tx.conn(), &uplink_updates)
            .await?;
        tx.commit().await?;
        Ok(count)
    }

    async fn rotate_credentials(&self, vendor_id: i64, new: &Credential) -> StoreResult<()> {
        let conflict = || format!("access id {}", new.access_id);
        let mut tx = self.write().await?;
        let changed = sqlx::query(
            "UPDATE vendors SET access_id = $2, access_key = $3, access_secret = $4 WHERE id = $1",
        )
        .bind(vendor_id)
        .bind(new.access_id.clone())
        .bind(
            self.keys
                .seal(ACCESS_KEY, &new.access_id, &new.access_key)?,
        )
        .bind(
            self.keys
                .seal(ACCESS_SECRET, &new.access_id, &new.access_secret)?,
        )
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
            seal_pair(
                &self.keys,
                &new.access_id,
                &new.access_key,
                &new.access_secret,
            )?,
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

/// Column names, bound into each sealed value (see [`crate::store::sealing`]).
const ACCESS_KEY: &str = "access_key";
const ACCESS_SECRET: &str = "access_secret";

impl SqlStore {
    /// A vendor as read, with its secrets opened; `true` if they should be resealed.
    fn open_vendor(&self, mut v: Vendor) -> StoreResult<(Vendor, bool)> {
        let stale = self.open_pair(&v.access_id, &mut v.access_key, &mut v.access_secret)?;
        Ok((v, stale))
    }

    /// A credential as read, with its secrets opened; `true` if they should be resealed.
    fn open_credential(&self, mut c: Credential) -> StoreResult<(Credential, bool)> {
        let stale = self.open_pair(&c.access_id, &mut c.access_key, &mut c.access_secret)?;
        Ok((c, stale))
    }

    /// Replaces the stored forms of a credential's key and secret by their clear values;
    /// `true` if either should be resealed.
    fn open_pair(
        &self,
        access_id: &str,
        key: &mut Secret,
        secret: &mut Secret,
    ) -> StoreResult<bool> {
        let opened_key = self.keys.open(ACCESS_KEY, access_id, key.expose())?;
        let opened_secret = self.keys.open(ACCESS_SECRET, access_id, secret.expose())?;
        *key = opened_key.secret;
        *secret = opened_secret.secret;
        Ok(opened_key.stale || opened_secret.stale)
    }
}

/// Seals a credential's secrets for [`insert_credential`].
fn seal_pair(
    keys: &Keyring,
    access_id: &str,
    key: &Secret,
    secret: &Secret,
) -> StoreResult<[String; 2]> {
    Ok([
        keys.seal(ACCESS_KEY, access_id, key)?,
        keys.seal(ACCESS_SECRET, access_id, secret)?,
    ])
}

async fn insert_credential(
    conn: &mut AnyConnection,
    vendor_id: i64,
    access_id: &str,
    [access_key, access_secret]: [String; 2],
) -> Result<(), sqlx::Error> {
    sqlx::query(concat!(
        "INSERT INTO credentials (",
        columns!(credential),
        ") VALUES ($1, $2, $3, $4, NULL)"
    ))
    .bind(access_id)
    .bind(access_key)
    .bind(access_secret)
    .bind(vendor_id)
    .execute(conn)
    .await?;
    Ok(())
}
