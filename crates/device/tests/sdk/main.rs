//! The device SDK against the real platform: one test binary, one module per story; the
//! harness is in `helpers`.
//!
//! Sizes: the roster and backlog stories run at a tenth of the sizes of RC-DEV-17 and
//! RC-DEV-18 (1,000 persons, 6,000 records) unless `ROLLCALL_FULL_SIZE=1` (10,000 persons,
//! 60,000 records).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed step is a failed test

mod backlog;
mod crash;
mod helpers;
mod kinds;
mod roster;
mod tasks;
mod tls;
