//! Throttling of password sign-ins, per username and per source address, with backoff.
//!
//! A key (a username, or an address — an IPv6 address counts by its /64) that fails
//! `max` times in a row is locked for `lockout`; every further failure after a lockout
//! doubles it, up to `lockout_max`. While locked, sign-ins are answered at once, without a
//! password hash (so a flood costs no CPU) and without extending the lockout. A success
//! clears the username's failures (not the address's: one account of one's own must not
//! wash away the failures an address piled up against others). A key that has been quiet
//! for `lockout_max` is forgotten.
//!
//! Memory is bounded: each table holds at most [`MAX_KEYS`] keys. When one is full,
//! forgotten keys go first, then the key whose last failure is the oldest.
//!
//! The address is the TCP peer's: `X-Forwarded-For` is not trusted (anyone can write it).
//! Behind a reverse proxy every sign-in comes from the proxy, so raise
//! `login_max_failures_per_addr` there.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::config::Settings;

/// Most keys kept per table (usernames, addresses).
pub const MAX_KEYS: usize = 10_000;
/// Longest username kept as a key (longer ones share their first characters' key).
const MAX_USERNAME_CHARS: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// Failures in a row.
    count: u32,
    last_at: i64,
    locked_until: i64,
}

#[derive(Debug)]
struct Table<K> {
    max: u32,
    entries: HashMap<K, Failures>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(max: u32) -> Self {
        Table {
            max: max.max(1),
            entries: HashMap::new(),
        }
    }

    fn locked_until(&self, key: &K, now: i64) -> Option<i64> {
        self.entries
            .get(key)
            .map(|f| f.locked_until)
            .filter(|until| *until > now)
    }

    /// Counts a failure; the end of the lockout it starts, if it starts one.
    fn fail(&mut self, key: K, now: i64, policy: &Policy) -> Option<i64> {
        if !self.entries.contains_key(&key) && self.entries.len() >= MAX_KEYS {
            self.evict(now, policy);
        }
        let f = self.entries.entry(key).or_insert(Failures {
            count: 0,
            last_at: now,
            locked_until: 0,
        });
        if now - f.last_at > policy.forget_after_ms {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last_at = now;
        if f.count < self.max {
            return None;
        }
        f.locked_until = now.saturating_add(policy.lockout_ms(f.count - self.max));
        Some(f.locked_until)
    }

    fn forget(&mut self, key: &K) {
        self.entries.remove(key);
    }

    fn evict(&mut self, now: i64, policy: &Policy) {
        self.entries
            .retain(|_, f| now - f.last_at <= policy.forget_after_ms || f.locked_until > now);
        if self.entries.len() >= MAX_KEYS
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, f)| f.last_at)
                .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Policy {
    lockout_ms: i64,
    lockout_max_ms: i64,
    forget_after_ms: i64,
}

impl Policy {
    /// The lockout after `extra` failures beyond the threshold: doubled each time, capped.
    fn lockout_ms(&self, extra: u32) -> i64 {
        self.lockout_ms
            .saturating_mul(1i64 << extra.min(30))
            .min(self.lockout_max_ms)
    }
}

/// What a failed sign-in did to the throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// Set when this failure started a lockout (of the username, the address or both):
    /// when it ends, epoch ms.
    pub locked_until: Option<i64>,
}

#[derive(Debug)]
pub struct LoginThrottle {
    policy: Policy,
    tables: Mutex<(Table<String>, Table<IpAddr>)>,
}

impl LoginThrottle {
    pub fn new(settings: &Settings) -> Self {
        let secs = |s: u64| i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let lockout_ms = secs(settings.login_lockout_secs).max(1);
        let lockout_max_ms = secs(settings.login_lockout_max_secs).max(lockout_ms);
        LoginThrottle {
            policy: Policy {
                lockout_ms,
                lockout_max_ms,
                forget_after_ms: lockout_max_ms,
            },
            tables: Mutex::new((
                Table::new(settings.login_max_failures),
                Table::new(settings.login_max_failures_per_addr),
            )),
        }
    }

    /// When a sign-in of `username` from `addr` may be tried again (epoch ms), if either is
    /// locked now.
    pub fn locked_until(&self, username: &str, addr: Option<IpAddr>, now: i64) -> Option<i64> {
        let tables = self.lock();
        let user = tables.0.locked_until(&user_key(username), now);
        let addr = addr.and_then(|a| tables.1.locked_until(&addr_key(a), now));
        user.max(addr)
    }

    /// Counts a failed sign-in against the username and the address.
    pub fn failed(&self, username: &str, addr: Option<IpAddr>, now: i64) -> Failed {
        let mut tables = self.lock();
        let policy = self.policy;
        let user = tables.0.fail(user_key(username), now, &policy);
        let addr = addr.and_then(|a| tables.1.fail(addr_key(a), now, &policy));
        Failed {
            locked_until: user.max(addr),
        }
    }

    /// A successful sign-in clears the username's failures.
    pub fn succeeded(&self, username: &str) {
        self.lock().0.forget(&user_key(username));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Table<String>, Table<IpAddr>)> {
        // A panic while holding the lock cannot leave the tables inconsistent (every
        // update is a single insert or remove), so a poisoned lock is used as is.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn user_key(username: &str) -> String {
    username.trim().chars().take(MAX_USERNAME_CHARS).collect()
}

/// An IPv4 address as is (also when mapped into IPv6); an IPv6 address by its /64, which
/// one host usually holds whole.
fn addr_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(segments.into())
            }
        },
    }
}

/// Seconds until `until`, rounded up, at least 1 (for `Retry-After`).
pub fn retry_after_secs(until: i64, now: i64) -> u64 {
    u64::try_from((until - now).max(1)).map_or(1, |ms| ms.div_ceil(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max: u32, per_addr: u32) -> LoginThrottle {
        LoginThrottle::new(&Settings {
            login_max_failures: max,
            login_max_failures_per_addr: per_addr,
            login_lockout_secs: 10,
            login_lockout_max_secs: 60,
            ..Settings::default()
        })
    }

    const A: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const B: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    #[test]
    fn a_username_is_locked_after_max_failures_with_a_doubling_lockout() {
        let t = throttle(3, 100);
        assert_eq!(t.failed("li", A, 0).locked_until, None);
        assert_eq!(t.failed("li", B, 1).locked_until, None);
        assert_eq!(t.failed(" li ", A, 2).locked_until, Some(10_002));
        assert_eq!(t.locked_until("li", B, 3), Some(10_002), "from any address");
        assert_eq!(t.locked_until("wang", A, 3), None);
        assert_eq!(t.locked_until("li", B, 10_002), None, "the lockout ends");
        // The next failure doubles it, and so on up to the cap.
        assert_eq!(t.failed("li", A, 10_002).locked_until, Some(30_002));
        assert_eq!(t.failed("li", A, 30_002).locked_until, Some(70_002));
        assert_eq!(t.failed("li", A, 70_002).locked_until, Some(130_002));
        // A success clears it.
        t.succeeded("li");
        assert_eq!(t.failed("li", A, 130_003).locked_until, None);
    }

    #[test]
    fn an_address_is_locked_across_usernames() {
        let t = throttle(100, 2);
        assert_eq!(t.failed("a", A, 0).locked_until, None);
        assert_eq!(t.failed("b", A, 0).locked_until, Some(10_000));
        assert_eq!(t.locked_until("c", A, 1), Some(10_000));
        assert_eq!(t.locked_until("c", B, 1), None);
        assert_eq!(t.locked_until("c", None, 1), None);
        t.succeeded("c");
        assert_eq!(
            t.locked_until("d", A, 1),
            Some(10_000),
            "a success keeps it"
        );
    }

    #[test]
    fn quiet_keys_are_forgotten_and_memory_is_bounded() {
        let t = throttle(2, 1000);
        t.failed("li", None, 0);
        // Quiet for longer than the longest lockout: the count starts again.
        assert_eq!(t.failed("li", None, 60_001).locked_until, None);
        for i in 0..(MAX_KEYS + 50) {
            t.failed(&format!("user{i}"), None, 100_000 + i as i64);
        }
        assert!(t.lock().0.entries.len() <= MAX_KEYS);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(addr_key(a), addr_key(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(addr_key(mapped), A.unwrap());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(1_001, 0), 2);
        assert_eq!(retry_after_secs(1_000, 0), 1);
        assert_eq!(retry_after_secs(0, 5), 1);
    }
}
