//! Jittered exponential backoff and the small deterministic random source behind it.
//!
//! The session state machine must stay free of I/O and reproducible in tests, so it does
//! not read an OS random source: it owns an [`Rng`] seeded once (from the OS hash seed in
//! production, from a constant in tests).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with "equal jitter": attempt `n` waits a uniformly random time between
/// half and all of `min(max, initial × multiplier^n)`, so a fleet that lost the platform at
/// the same moment does not come back in lockstep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
}

impl Backoff {
    pub const fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            multiplier: 2.0,
        }
    }

    /// The ceiling of attempt `attempt` (0-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(attempt.min(64) as i32);
        let secs = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// The jittered delay of attempt `attempt` (0-based).
    pub fn delay(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + Duration::from_secs_f64((ceiling - half).as_secs_f64() * rng.next_f64())
    }
}

/// xorshift64* — small, fast, good enough for jitter and for the simulator's arrivals.
/// Not for anything secret.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a fixed seed (tests, reproducible simulations).
    pub fn seeded(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// A generator seeded from the process's random hash seed.
    pub fn from_entropy() -> Self {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        );
        Rng::seeded(h.finish())
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_jittered_and_capped() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut rng = Rng::seeded(7);
        for attempt in 0..20 {
            let ceiling = b.ceiling(attempt);
            let d = b.delay(attempt, &mut rng);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{attempt}: {d:?} of {ceiling:?}"
            );
        }
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(30), Duration::from_secs(5));
    }

    #[test]
    fn jitter_spreads() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let mut rng = Rng::seeded(1);
        let ds: Vec<Duration> = (0..50).map(|_| b.delay(0, &mut rng)).collect();
        let distinct: std::collections::BTreeSet<_> = ds.iter().collect();
        assert!(distinct.len() > 40);
    }
}
