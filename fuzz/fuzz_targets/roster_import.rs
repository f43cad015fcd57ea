//! Arbitrary roster uploads (`.xlsx` by its zip magic, else `.csv`): reading must end in rows,
//! row errors or a whole-file error — never a panic, whatever the zip or the sheet holds.
//!
//! calamine can panic on a damaged sheet (an overflowing multiplication in its cell reference
//! parser); `read_roster_xlsx` catches that, as it does in the platform, and answers a
//! whole-file error. libfuzzer-sys's panic hook aborts *before* unwinding, so it would report
//! that handled panic as a crash: the target puts the default hook back. A panic that escapes
//! `read_roster` still aborts (libfuzzer-sys aborts on any unwind out of the target), so it is
//! still found. The input that showed it is in `fuzz/regressions/roster_import/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall_rules::roster::read_roster;

fuzz_target!(init: drop(std::panic::take_hook()), |data: &[u8]| {
    if let Ok(roster) = read_roster(data, 20_261_204) {
        // Every accepted row names a worker; every error names its row.
        for row in &roster.rows {
            assert!(!row.name.is_empty());
        }
    }
});
