//! What a busy TCP connection remembers of its device between requests.
//!
//! Every request of a device needs its device row, the credential its token was issued under
//! and its vendor (ZJ-ERR-04's checks). The directory caches them, but each lookup locks a
//! table that every connection shares and counts references on rows every device of a vendor
//! shares: cache lines the two cores pass back and forth on every request (BENCHMARKS.md,
//! session 15). A connection whose requests come close together keeps a copy of what its
//! last authentication found, and later requests that present the same token check against
//! the copy instead.
//!
//! **The same answers as the directory.** A copy holds exactly as long as the directory would
//! have given the same rows: while the oldest of them is fresh (the directory's TTL, measured
//! from when that row was stored) and no device or vendor row has been forgotten since the
//! copy was made ([`Directory::epoch`](crate::runtime::auth_cache::Directory::epoch), read
//! before the rows). The token is not copied: its idle expiry slides on every request through
//! the token cache, exactly as without a copy ([`Tokens::touch`](crate::runtime::device_tokens::Tokens::touch)).
//! The signature is checked on every request. Anything that does not match (another token,
//! another sn, an expired row) goes the whole way, which gives the refusal its code.
//!
//! **Memory.** A copy is made only by a connection bound to its device, on an authenticated
//! request that follows another one and arrives within [`BUSY_MS`] of the frame before: a gate
//! that sends a heartbeat every 30 s never has one (its rows would have expired between
//! requests anyway), so idle devices cost nothing more. A copy left behind when a connection
//! goes quiet is dropped by its next request, or with the connection.

use std::sync::Arc;

use crate::runtime::auth_cache::{CachedVendor, DeviceFacts};
use crate::runtime::device_tokens;

/// Frames closer together than this make a connection busy (ms).
pub const BUSY_MS: u64 = 1000;

/// A connection's copy of its device's rows.
pub struct Session {
    /// The token the rows were found for, as presented (compared byte for byte: decoding the
    /// presented token's hex was most of a request's check of its copy)…
    token_text: [u8; 32],
    /// …and its key in the token cache.
    token: u128,
    pub(super) device: Arc<DeviceFacts>,
    pub(super) vendor: Arc<CachedVendor>,
    /// When the oldest of the rows was stored in the directory.
    since: i64,
    /// The directory's epoch read before the rows.
    epoch: u64,
}

/// Without the token: it authenticates its device, so it is never printed.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("device", &self.device)
            .field("vendor_id", &self.vendor.row.id)
            .field("since", &self.since)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// `None` for a token that is not one as issued (32 lowercase hex digits), which the
    /// token cache does not hold either.
    pub(super) fn new(
        token_text: &str,
        device: Arc<DeviceFacts>,
        vendor: Arc<CachedVendor>,
        since: i64,
        epoch: u64,
    ) -> Option<Self> {
        Some(Session {
            token: device_tokens::key(token_text)?,
            token_text: token_text.as_bytes().try_into().ok()?,
            device,
            vendor,
            since,
            epoch,
        })
    }

    /// Whether the directory would still give these rows at `now` (its `epoch` and `ttl_ms`).
    pub(super) fn current(&self, now: i64, epoch: u64, ttl_ms: i64) -> bool {
        self.epoch == epoch && now >= self.since && now - self.since <= ttl_ms
    }

    /// Whether `token` is the one the rows were found for.
    pub(super) fn presented(&self, token: &str) -> bool {
        token.as_bytes() == self.token_text
    }

    /// The token's cache key, to slide its expiry.
    pub(super) fn token(&self) -> u128 {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DeviceKind, Direction, Vendor};

    fn session(token: &str) -> Option<Session> {
        let device = DeviceFacts {
            vendor_id: 7,
            project_id: None,
            kind: DeviceKind::Face,
            direction: Direction::In,
            enabled: true,
            last_heartbeat_at: None,
        };
        let vendor = CachedVendor {
            row: Vendor {
                id: 7,
                name: "v".into(),
                access_id: "AK".into(),
                access_key: "key".into(),
                access_secret: "secret".into(),
                rsa_public_key: None,
                created_at: 0,
            },
            heartbeat_sign: Default::default(),
        };
        Session::new(token, Arc::new(device), Arc::new(vendor), 1_000, 3)
    }

    #[test]
    fn a_copy_is_made_for_an_issued_token_and_never_prints_it() {
        let token = "0123456789abcdef0123456789abcdef";
        let s = session(token).expect("an issued token");
        assert_eq!(Some(s.token()), device_tokens::key(token));
        let shown = format!("{s:?}");
        assert!(!shown.contains(token) && !shown.contains(&s.token().to_string()));
        assert!(!shown.contains("secret"), "{shown}");
        assert!(session("0123456789ABCDEF0123456789ABCDEF").is_none());
        assert!(session("0123").is_none());
    }

    #[test]
    fn a_copy_holds_while_the_epoch_stands_and_its_oldest_row_is_fresh() {
        let s = session("0123456789abcdef0123456789abcdef").expect("a copy");
        assert!(s.current(1_000, 3, 500));
        assert!(s.current(1_500, 3, 500));
        assert!(!s.current(1_501, 3, 500), "the oldest row expired");
        assert!(!s.current(1_200, 4, 500), "a row was forgotten since");
        assert!(!s.current(999, 3, 500), "the clock went back");
    }
}
