//! Giving freed memory back to the system after a burst.
//!
//! glibc's allocator keeps what the program frees in its arenas for reuse and returns pages
//! only from the top of a heap. After a burst — a thousand gates connecting and
//! authenticating at once, a backlog drained — the burst's buffers and futures are free but
//! their pages stay resident, scattered below live allocations: the process looks as large as
//! at its peak, although nothing uses that memory (BENCHMARKS.md, "idle"). `malloc_trim(0)`
//! hands every whole free page of every arena back (`MADV_DONTNEED`); live allocations are
//! untouched.
//!
//! **When.** The housekeeper asks [`Reclaim::tick`] once a round. It trims once the resident
//! set has grown by [`GROWTH_BYTES`] since the last trim (or since it shrank) **and** has
//! stopped growing (less than [`SETTLED_BYTES`] since the round before): after a burst, not
//! during it — a trim in the middle of a connect storm gives back pages the rest of the storm
//! faults in again, and leaves what its end frees. Never in a steady state, where freed pages
//! are reused at once.
//!
//! Elsewhere than Linux with glibc (musl, macOS), allocators give memory back themselves or
//! have no such call: nothing is trimmed.

/// Growth of the resident set since the last trim that makes the next round trim.
pub const GROWTH_BYTES: u64 = 1024 * 1024;

/// Growth over one round below which the resident set counts as settled.
pub const SETTLED_BYTES: u64 = 256 * 1024;

/// The trim policy's memory of the resident set.
#[derive(Debug, Default)]
pub struct Reclaim {
    /// At the last trim, or its low point since.
    baseline: Option<u64>,
    /// At the previous round.
    last: Option<u64>,
}

impl Reclaim {
    /// One housekeeping round: trims when the resident set grew enough since the last trim
    /// and has settled. Whether it trimmed.
    pub fn tick(&mut self) -> bool {
        let Some(rss) = resident_bytes() else {
            return false;
        };
        if !self.due(rss) {
            return false;
        }
        release();
        // What is left after the trim, so the next trim waits for new growth.
        let left = resident_bytes().unwrap_or(rss);
        self.baseline = Some(left);
        self.last = Some(left);
        true
    }

    /// Whether a resident set of `rss` bytes calls for a trim; follows the set down.
    fn due(&mut self, rss: u64) -> bool {
        let settled = self
            .last
            .replace(rss)
            .is_some_and(|last| rss < last.saturating_add(SETTLED_BYTES));
        match self.baseline {
            Some(base) if rss >= base.saturating_add(GROWTH_BYTES) => settled,
            Some(base) => {
                self.baseline = Some(base.min(rss));
                false
            }
            // The first settled round trims what start-up left (migrations, first caches).
            None => settled,
        }
    }
}

/// The process's resident set in bytes (`VmRSS` of `/proc/self/status`); `None` where there
/// is no procfs.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Asks the allocator to give every free page back to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "glibc's malloc_trim has no safe binding; this is the workspace's one unsafe call"
)]
fn release() {
    // SAFETY: `malloc_trim` takes no pointer and touches only glibc's own free lists, under
    // the arenas' locks, like any other allocator call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() {}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn trims_once_start_up_has_settled() {
        let mut r = Reclaim::default();
        assert!(
            !r.due(30 * MIB),
            "one reading cannot tell whether it settled"
        );
        assert!(
            r.due(30 * MIB),
            "the first settled round trims start-up's leftovers"
        );
    }

    #[test]
    fn trims_after_growth_once_it_settles() {
        let mut r = Reclaim {
            baseline: Some(28 * MIB),
            last: Some(28 * MIB),
        };
        assert!(!r.due(28 * MIB + GROWTH_BYTES - 1), "not grown enough");
        // A burst: still growing, then settled.
        assert!(!r.due(30 * MIB), "growing");
        assert!(!r.due(31 * MIB), "still growing");
        assert!(
            r.due(31 * MIB + SETTLED_BYTES - 1),
            "settled after the burst"
        );
    }

    #[test]
    fn follows_the_resident_set_down() {
        let mut r = Reclaim {
            baseline: Some(40 * MIB),
            last: Some(40 * MIB),
        };
        assert!(!r.due(20 * MIB));
        assert_eq!(r.baseline, Some(20 * MIB));
        // Growth counts from the low point, not from the old baseline.
        assert!(!r.due(20 * MIB + GROWTH_BYTES), "grew within the round");
        assert!(r.due(20 * MIB + GROWTH_BYTES));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_burst_freed_is_given_back() {
        // 64 MiB in 64 KiB blocks (below glibc's mmap threshold, so they come from the heap),
        // touched, then freed except the last, which keeps the heap's top from shrinking.
        let mut blocks: Vec<Vec<u8>> = (0..1024).map(|_| vec![1u8; 64 * 1024]).collect();
        let keep = blocks.pop();
        let Some(before_free) = resident_bytes() else {
            panic!("no /proc/self/status on Linux");
        };
        drop(blocks);
        // The round before saw the heap after the free: settled.
        let mut r = Reclaim {
            baseline: Some(before_free.saturating_sub(64 << 20)),
            last: resident_bytes(),
        };
        assert!(r.tick(), "64 MiB of growth, settled, must trim");
        let after = r.baseline.unwrap_or(u64::MAX);
        // Other tests run beside this one in the same process; 32 MiB of the 64 freed is a
        // margin their allocations cannot eat.
        assert!(
            after + (32 << 20) <= before_free,
            "resident {before_free} B before the trim, {after} B after"
        );
        drop(keep);
    }
}
