//! The per-device request budget of `429_01`: one token bucket per device (ZJ-ERR-07).
//!
//! Checked after the token (only authenticated devices spend a budget) and never applied to
//! C_SIGN_IN: attendance must always get through.
//!
//! On by default, so every authenticated request of a device passes here: a budget already
//! held is found without allocating its key, and a key's entry is the key once (a boxed
//! `str`) and its bucket. The map keeps std's keyed hasher, not the request path's faster
//! one: the per-address budgets are keyed by source addresses, which whoever sends the
//! requests chooses.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::RateLimit;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: i64,
}

#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<Box<str>, Bucket>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::default(),
        }
    }

    /// Whether `key` has a request left in its budget, without spending it (a source
    /// address's budget is spent only by its failures).
    pub fn has_budget(&self, key: &str, now_ms: i64) -> bool {
        let RateLimit::Bucket { per_sec, burst } = self.limit else {
            return true;
        };
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.get(key).is_none_or(|b| {
            let elapsed = (now_ms - b.updated).max(0) as f64 / 1000.0;
            (b.tokens + elapsed * per_sec).min(f64::from(burst)) >= 1.0
        })
    }

    /// Spends one request of `key`'s budget; `false` when it is exhausted.
    pub fn allow(&self, key: &str, now_ms: i64) -> bool {
        let RateLimit::Bucket { per_sec, burst } = self.limit else {
            return true;
        };
        let burst = f64::from(burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            // Forget buckets that have refilled completely; they carry no information.
            buckets
                .retain(|_, b| b.tokens + (now_ms - b.updated) as f64 / 1000.0 * per_sec < burst);
        }
        // The key is copied only for a budget not yet held.
        if let Some(b) = buckets.get_mut(key) {
            return b.spend(now_ms, per_sec, burst);
        }
        let mut b = Bucket {
            tokens: burst,
            updated: now_ms,
        };
        let allowed = b.spend(now_ms, per_sec, burst);
        buckets.insert(key.into(), b);
        allowed
    }
}

impl Bucket {
    /// Refills for the time since the last request, then spends one if there is one.
    fn spend(&mut self, now_ms: i64, per_sec: f64, burst: f64) -> bool {
        let elapsed = (now_ms - self.updated).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * per_sec).min(burst);
        self.updated = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let r = RateLimiter::new(RateLimit::Bucket {
            per_sec: 2.0,
            burst: 3,
        });
        assert!((0..3).all(|_| r.allow("a", 0)));
        assert!(!r.allow("a", 0));
        assert!(r.allow("b", 0), "budgets are per device");
        assert!(r.allow("a", 500), "half a second refills one request");
        assert!(!r.allow("a", 500));
        assert!(
            !r.has_budget("a", 500),
            "looking spends nothing, and finds nothing left"
        );
        assert!(r.has_budget("a", 1000));
        assert!(r.has_budget("a", 1000), "looking twice spends nothing");
        assert!(r.has_budget("c", 0), "an unseen key has its whole budget");
        let off = RateLimiter::new(RateLimit::Off);
        assert!((0..1000).all(|_| off.allow("a", 0)));
    }
}
