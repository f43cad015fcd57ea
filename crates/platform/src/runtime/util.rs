//! Small shared helpers: the wall clock (the protocol crate's), random secrets, id generation.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// The maps every device request reads (caches, tokens, presence, bindings, metrics): keys are
/// short strings and numbers, for which foldhash is several times cheaper than std's SipHash
/// (it showed in a heartbeat's profile). Still seeded per map, and their keys are sns and
/// tokens the platform issued or registered, never inserted unauthenticated.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// A set with [`FastMap`]'s hasher.
pub type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// The shared copy of `text` in `set`, added if missing: for strings that many long-lived
/// entries repeat (a vendor's credential id, a firmware version), so each is held once.
/// Callers drop the copies only `set` still holds (`Arc::strong_count == 1`) when they sweep.
/// `T` is a shared handle on the text (`Arc<str>`, or a thinner one where every entry holds
/// one).
pub fn intern<T>(set: &mut FastSet<T>, text: &str) -> T
where
    T: Borrow<str> + for<'a> From<&'a str> + Clone + Eq + Hash,
{
    if let Some(shared) = set.get(text) {
        return shared.clone();
    }
    let shared = T::from(text);
    set.insert(shared.clone());
    shared
}

/// Milliseconds since the Unix epoch, now: the protocol crate's one clock read, here because
/// the platform's modules and tests import it from here.
pub use rollcall_protocol::time::now_ms;

/// 128 random bits as 32 lowercase hex characters (credentials, tokens).
pub fn random_hex128() -> String {
    let mut b = [0u8; 16];
    fill_random(&mut b);
    hex::encode(b)
}

/// Fills `buf` from the operating system's random source.
#[allow(
    clippy::expect_used,
    reason = "a server that mints credentials cannot go on without the OS random source"
)]
pub fn fill_random(buf: &mut [u8]) {
    // The OS random source failing is unrecoverable for a server that mints credentials.
    getrandom::fill(buf).expect("the operating system's random source is unavailable");
}

/// Generates 64-bit, time-ordered, unique ids (task ids are 19 digits, as in the standard).
pub struct IdGen(snowflaked::sync::Generator);

impl IdGen {
    /// `instance` distinguishes nodes sharing a database (0..1024).
    pub fn new(instance: u16) -> Self {
        IdGen(snowflaked::sync::Generator::new(instance & 0x3ff))
    }

    pub fn next(&self) -> i64 {
        self.0.generate::<i64>()
    }
}

impl std::fmt::Debug for IdGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdGen")
    }
}

/// A database URL with any password removed, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
