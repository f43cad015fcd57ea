//! Device tokens with sliding idle expiry (ZJ-TOKEN-01, ZJ-TOKEN-02, ZJ-TOKEN-03; docs/PROTOCOL.md).
//!
//! A token is stored when issued (so it survives a restart and is valid on every node) and
//! cached here. Every use slides its expiry in memory; the touches are written behind by the
//! housekeeper, so a request costs no write. A token's touch is written once the store's time
//! lags its last use by a thirtieth of the idle time (a minute by default), and every touch
//! at shutdown: the store's copy only keeps the token alive on other nodes and across a
//! restart, with the whole idle time to spare, and purges wait twice the idle time. Written
//! every second instead, a thousand busy devices' touches were a thousand rows a second
//! (BENCHMARKS.md, session 18).
//!
//! The cache holds one entry per connected device, so it is kept compact (the idle-memory
//! target, BENCHMARKS.md): tokens are keyed by their 128 bits rather than their hex text, and
//! the owner's sn and credential id are shared `Arc<str>`s, so a request's lookup copies no
//! string either. The sn is the registry's too; credential ids are interned here, so the
//! devices of one vendor share one copy.

use std::sync::{Arc, Mutex};

use crate::runtime::util::{FastMap, FastSet, intern, random_hex128};
use crate::store::{Store, StoreResult};

#[derive(Debug, Clone)]
struct Entry {
    owner: TokenOwner,
    last_used: i64,
    /// The last use as the store has it (as far as this node wrote or read it).
    stored: i64,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub sn: Arc<str>,
    /// The credential it was issued under (revoked credentials revoke their tokens: 401_02).
    pub access_id: Arc<str>,
}

/// What a presented token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// Known and within its idle time; the use slid its expiry.
    Valid(TokenOwner),
    /// Known but idle-expired (until purged): the credential it was issued under, so that a
    /// token of since-revoked credentials answers 401_02, which precedes 401_01.
    Expired { access_id: Arc<str> },
    /// Never issued, or purged.
    Unknown,
}

/// The cache key of a token as issued (32 lowercase hex characters, [`random_hex128`]);
/// `None` for any other text, which can then only be looked up in the store. Strict on
/// purpose: a laxer parse (`u128::from_str_radix` takes a leading `+`) would let two
/// different strings name one token.
pub fn key(token: &str) -> Option<u128> {
    let b = token.as_bytes();
    if b.len() != 32 {
        return None;
    }
    // One pass that checks and decodes: every request asks, and checking first and then
    // parsing (`from_str_radix`, or `hex`) cost 700–800 instructions a heartbeat.
    let mut key: u128 = 0;
    for &c in b {
        let nibble = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        key = (key << 4) | u128::from(nibble);
    }
    Some(key)
}

/// The token's text back from its key.
fn text(key: u128) -> String {
    format!("{key:032x}")
}

#[derive(Debug)]
pub struct Tokens {
    idle_ms: i64,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    tokens: FastMap<u128, Entry>,
    /// One copy of each credential id in use (a vendor's devices share one); ids no token
    /// holds any more are dropped by [`Tokens::flush`].
    access_ids: FastSet<Arc<str>>,
}

impl Cache {
    fn insert(
        &mut self,
        key: u128,
        sn: Arc<str>,
        access_id: &str,
        now: i64,
        stored: i64,
    ) -> TokenOwner {
        let owner = TokenOwner {
            sn,
            access_id: intern(&mut self.access_ids, access_id),
        };
        self.tokens.insert(
            key,
            Entry {
                owner: owner.clone(),
                last_used: now,
                stored,
            },
        );
        owner
    }
}

impl Tokens {
    pub fn new(idle_secs: u64) -> Self {
        Tokens {
            idle_ms: (idle_secs as i64).saturating_mul(1000),
            cache: Mutex::new(Cache::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues and stores a new token for a device.
    pub async fn issue(
        &self,
        store: &dyn Store,
        sn: &Arc<str>,
        access_id: &str,
        now: i64,
    ) -> StoreResult<String> {
        let token = random_hex128();
        store.insert_token(&token, sn, access_id, now).await?;
        if let Some(k) = key(&token) {
            self.lock().insert(k, Arc::clone(sn), access_id, now, now);
        }
        Ok(token)
    }

    /// What `token` is; a valid token's use slides its expiry.
    pub async fn validate(
        &self,
        store: &dyn Store,
        token: &str,
        now: i64,
    ) -> StoreResult<TokenCheck> {
        if let Some(check) = self.touch_cached(token, now) {
            return Ok(check);
        }
        let Some((sn, access_id, last_used)) = store.token(token).await? else {
            return Ok(TokenCheck::Unknown);
        };
        if now - last_used > self.idle_ms {
            return Ok(TokenCheck::Expired {
                access_id: access_id.into(),
            });
        }
        let sn: Arc<str> = sn.into();
        Ok(TokenCheck::Valid(match key(token) {
            Some(k) => self.lock().insert(k, sn, &access_id, now, last_used),
            None => TokenOwner {
                sn,
                access_id: access_id.into(),
            },
        }))
    }

    /// Slides the expiry of the cached token `key` as [`Tokens::validate`] does; `false` when
    /// it is not cached or has expired (then `validate` gives the answer). Copies nothing:
    /// for a connection that already knows the token's owner (`pipeline::session`).
    pub fn touch(&self, key: u128, now: i64) -> bool {
        let mut cache = self.lock();
        match cache.tokens.get_mut(&key) {
            Some(e) if now - e.last_used <= self.idle_ms => {
                e.last_used = now.max(e.last_used);
                true
            }
            _ => false,
        }
    }

    /// `Some(check)` when the cache can answer.
    fn touch_cached(&self, token: &str, now: i64) -> Option<TokenCheck> {
        let k = key(token)?;
        let mut cache = self.lock();
        let e = cache.tokens.get_mut(&k)?;
        if now - e.last_used > self.idle_ms {
            let access_id = Arc::clone(&e.owner.access_id);
            cache.tokens.remove(&k);
            return Some(TokenCheck::Expired { access_id });
        }
        e.last_used = now.max(e.last_used);
        Some(TokenCheck::Valid(e.owner.clone()))
    }

    /// How far the store's time of a token may lag its last use before the touch is written.
    fn write_lag_ms(&self) -> i64 {
        self.idle_ms / 30
    }

    /// Writes behind the touches whose stored time lags by the write lag (`all`: every touch
    /// not yet written, at shutdown) and forgets expired tokens.
    pub async fn flush(&self, store: &dyn Store, now: i64, all: bool) -> StoreResult<()> {
        let lag = if all { 1 } else { self.write_lag_ms().max(1) };
        // Each with the stored time it replaces, put back if the write fails.
        let (touches, replaced): (Vec<(String, i64)>, Vec<i64>) = {
            let mut cache = self.lock();
            cache
                .tokens
                .retain(|_, e| now - e.last_used <= self.idle_ms);
            // An id only this set holds belongs to no cached token any more.
            cache.access_ids.retain(|a| Arc::strong_count(a) > 1);
            cache
                .tokens
                .iter_mut()
                .filter(|(_, e)| e.last_used.saturating_sub(e.stored) >= lag)
                .map(|(&k, e)| {
                    let replaced = std::mem::replace(&mut e.stored, e.last_used);
                    ((text(k), e.last_used), replaced)
                })
                .unzip()
        };
        if touches.is_empty() {
            return Ok(());
        }
        if let Err(e) = store.touch_tokens(&touches).await {
            // The next flush retries them.
            let mut cache = self.lock();
            for ((t, _), stored) in touches.iter().zip(replaced) {
                if let Some(entry) = key(t).and_then(|k| cache.tokens.get_mut(&k)) {
                    entry.stored = entry.stored.min(stored);
                }
            }
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_token_as_issued_has_a_cache_key() {
        let issued = random_hex128();
        let k = key(&issued).expect("an issued token has a key");
        assert_eq!(text(k), issued, "the key gives the token back");
        // One token, one text: nothing else may name the same entry.
        let signed = format!("+{}", &issued[1..]);
        assert_eq!(key(&signed), None);
        assert_eq!(
            key("0123456789ABCDEF0123456789ABCDEF"),
            None,
            "issued in lowercase"
        );
        assert_eq!(key(&issued[..31]), None);
        assert_eq!(key(&format!("{issued}0")), None);
        assert_eq!(key(""), None);
    }

    /// A vendor's devices share one copy of its credential id, and the device's sn is the one
    /// the caller passed (the registry's); the id goes when no cached token holds it.
    #[tokio::test]
    async fn a_vendors_devices_share_one_credential_id_until_their_tokens_expire() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_db::TestDb::sqlite(dir.path())
            .open()
            .await
            .unwrap();
        let tokens = Tokens::new(60);
        let (a, b): (Arc<str>, Arc<str>) = ("SN-A".into(), "SN-B".into());
        let ta = tokens.issue(&store, &a, "AK-1", 1_000).await.unwrap();
        let tb = tokens.issue(&store, &b, "AK-1", 1_000).await.unwrap();
        let TokenCheck::Valid(oa) = tokens.validate(&store, &ta, 2_000).await.unwrap() else {
            panic!("a valid token")
        };
        let TokenCheck::Valid(ob) = tokens.validate(&store, &tb, 2_000).await.unwrap() else {
            panic!("a valid token")
        };
        assert!(Arc::ptr_eq(&oa.access_id, &ob.access_id), "one copy");
        assert!(Arc::ptr_eq(&oa.sn, &a), "the caller's sn");
        drop((oa, ob));
        tokens.flush(&store, 2_000, false).await.unwrap();
        assert_eq!(tokens.lock().access_ids.len(), 1, "still in use");
        // Both idle past the window: the flush forgets them and then the id.
        tokens.flush(&store, 70_000, false).await.unwrap();
        let cache = tokens.lock();
        assert!(cache.tokens.is_empty() && cache.access_ids.is_empty());
    }

    /// ZJ-TOKEN-02 across nodes and restarts: a use is written behind once the stored time
    /// lags by a thirtieth of the idle time (2 s of 60 here), and every use at shutdown.
    #[tokio::test]
    async fn a_touch_is_written_once_the_stored_time_lags_and_all_at_shutdown() {
        use crate::store::DeviceStore as _;
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_db::TestDb::sqlite(dir.path())
            .open()
            .await
            .unwrap();
        let tokens = Tokens::new(60);
        let sn: Arc<str> = "SN-A".into();
        let t = tokens.issue(&store, &sn, "AK-1", 1_000).await.unwrap();
        let stored = || async { store.token(&t).await.unwrap().map(|row| row.2) };

        assert!(matches!(
            tokens.validate(&store, &t, 2_000).await.unwrap(),
            TokenCheck::Valid(_)
        ));
        tokens.flush(&store, 2_000, false).await.unwrap();
        assert_eq!(stored().await, Some(1_000), "1 s behind: not yet written");

        assert!(tokens.touch(key(&t).unwrap(), 3_500));
        tokens.flush(&store, 3_500, false).await.unwrap();
        assert_eq!(stored().await, Some(3_500), "2.5 s behind: written");

        assert!(tokens.touch(key(&t).unwrap(), 4_000));
        tokens.flush(&store, 4_000, false).await.unwrap();
        assert_eq!(stored().await, Some(3_500));
        tokens.flush(&store, 4_000, true).await.unwrap();
        assert_eq!(stored().await, Some(4_000), "at shutdown: every use");
    }
}
