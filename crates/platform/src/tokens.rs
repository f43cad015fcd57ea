//! Device tokens with sliding idle expiry (PROTOCOL.md §3).
//!
//! A token is stored when issued (so it survives a restart and is valid on every node) and
//! cached here. Every use slides its expiry in memory; the touches are written behind by the
//! housekeeper, so a request costs no write.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{Store, StoreResult};
use crate::util::random_hex128;

#[derive(Debug, Clone)]
struct Entry {
    sn: String,
    access_id: String,
    last_used: i64,
    dirty: bool,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub sn: String,
    /// The credential it was issued under (revoked credentials revoke their tokens: 401_02).
    pub access_id: String,
}

#[derive(Debug)]
pub struct Tokens {
    idle_ms: i64,
    cache: Mutex<HashMap<String, Entry>>,
}

impl Tokens {
    pub fn new(idle_secs: u64) -> Self {
        Tokens {
            idle_ms: (idle_secs as i64).saturating_mul(1000),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues and stores a new token for a device.
    pub async fn issue(
        &self,
        store: &dyn Store,
        sn: &str,
        access_id: &str,
        now: i64,
    ) -> StoreResult<String> {
        let token = random_hex128();
        store.insert_token(&token, sn, access_id, now).await?;
        self.lock().insert(
            token.clone(),
            Entry {
                sn: sn.to_owned(),
                access_id: access_id.to_owned(),
                last_used: now,
                dirty: false,
            },
        );
        Ok(token)
    }

    /// The owner of a token that is known and not idle-expired; the use slides its expiry.
    pub async fn validate(
        &self,
        store: &dyn Store,
        token: &str,
        now: i64,
    ) -> StoreResult<Option<TokenOwner>> {
        if let Some(owner) = self.touch_cached(token, now) {
            return Ok(owner);
        }
        let Some((sn, access_id, last_used)) = store.token(token).await? else {
            return Ok(None);
        };
        if now - last_used > self.idle_ms {
            return Ok(None);
        }
        self.lock().insert(
            token.to_owned(),
            Entry {
                sn: sn.clone(),
                access_id: access_id.clone(),
                last_used: now,
                dirty: true,
            },
        );
        Ok(Some(TokenOwner { sn, access_id }))
    }

    /// `Some(result)` when the cache can answer: `Some(None)` for an expired token.
    fn touch_cached(&self, token: &str, now: i64) -> Option<Option<TokenOwner>> {
        let mut cache = self.lock();
        let e = cache.get_mut(token)?;
        if now - e.last_used > self.idle_ms {
            cache.remove(token);
            return Some(None);
        }
        e.last_used = now.max(e.last_used);
        e.dirty = true;
        Some(Some(TokenOwner {
            sn: e.sn.clone(),
            access_id: e.access_id.clone(),
        }))
    }

    /// Writes the touches behind and forgets expired tokens.
    pub async fn flush(&self, store: &dyn Store, now: i64) -> StoreResult<()> {
        let touches: Vec<(String, i64)> = {
            let mut cache = self.lock();
            cache.retain(|_, e| now - e.last_used <= self.idle_ms);
            cache
                .iter_mut()
                .filter(|(_, e)| e.dirty)
                .map(|(t, e)| {
                    e.dirty = false;
                    (t.clone(), e.last_used)
                })
                .collect()
        };
        if touches.is_empty() {
            return Ok(());
        }
        if let Err(e) = store.touch_tokens(&touches).await {
            // Mark them dirty again so the next flush retries.
            let mut cache = self.lock();
            for (t, _) in &touches {
                if let Some(entry) = cache.get_mut(t) {
                    entry.dirty = true;
                }
            }
            return Err(e);
        }
        Ok(())
    }
}
