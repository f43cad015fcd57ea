//! A short-lived read cache for the authentication path.
//!
//! Every device request needs its device row, the credential its token was issued under and
//! its vendor. Reading them from the database on every heartbeat was most of a heartbeat's
//! cost (BENCHMARKS.md), so they are kept here for [`TTL_MS`]. Changes made through this node
//! (binding, enabling, registering a device, rotating credentials) forget the affected entries
//! at once; a change made through another node sharing the database is seen within [`TTL_MS`].
//! Absent rows are never cached, so a device registered elsewhere is found on its first
//! request.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use crate::store::{Credential, Device, Store, StoreResult, Vendor};

/// How long a cached row is trusted.
pub const TTL_MS: i64 = 1000;

#[derive(Debug)]
struct Cache<K, V> {
    entries: Mutex<HashMap<K, (i64, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Cache<K, V> {
    fn new() -> Self {
        Cache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (i64, V)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &K, now: i64) -> Option<V> {
        let entries = self.lock();
        let (at, v) = entries.get(key)?;
        (now - at <= TTL_MS && now >= *at).then(|| v.clone())
    }

    fn put(&self, key: K, value: V, now: i64) {
        self.lock().insert(key, (now, value));
    }

    fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    fn clear(&self) {
        self.lock().clear();
    }
}

/// The cache; one per platform instance, in its state.
#[derive(Debug)]
pub struct Directory {
    devices: Cache<String, Device>,
    credentials: Cache<String, Credential>,
    vendors: Cache<i64, Vendor>,
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            devices: Cache::new(),
            credentials: Cache::new(),
            vendors: Cache::new(),
        }
    }
}

impl Directory {
    pub async fn device(
        &self,
        store: &dyn Store,
        sn: &str,
        now: i64,
    ) -> StoreResult<Option<Device>> {
        if let Some(d) = self.devices.get(&sn.to_owned(), now) {
            return Ok(Some(d));
        }
        let d = store.device(sn).await?;
        if let Some(d) = &d {
            self.devices.put(sn.to_owned(), d.clone(), now);
        }
        Ok(d)
    }

    pub async fn credential(
        &self,
        store: &dyn Store,
        access_id: &str,
        now: i64,
    ) -> StoreResult<Option<Credential>> {
        if let Some(c) = self.credentials.get(&access_id.to_owned(), now) {
            return Ok(Some(c));
        }
        let c = store.credential(access_id).await?;
        if let Some(c) = &c {
            self.credentials.put(access_id.to_owned(), c.clone(), now);
        }
        Ok(c)
    }

    pub async fn vendor(
        &self,
        store: &dyn Store,
        id: i64,
        now: i64,
    ) -> StoreResult<Option<Vendor>> {
        if let Some(v) = self.vendors.get(&id, now) {
            return Ok(Some(v));
        }
        let v = store.vendor(id).await?;
        if let Some(v) = &v {
            self.vendors.put(id, v.clone(), now);
        }
        Ok(v)
    }

    /// A device row changed (or was created) through this node.
    pub fn forget_device(&self, sn: &str) {
        self.devices.forget(&sn.to_owned());
    }

    /// A vendor's credentials changed through this node.
    pub fn forget_vendor(&self, id: i64) {
        self.vendors.forget(&id);
        // Rotation revokes a credential by access id; drop them all rather than track which.
        self.credentials.clear();
    }
}
