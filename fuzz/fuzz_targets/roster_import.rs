//! Arbitrary roster uploads (`.xlsx` by its zip magic, else `.csv`): reading must end in rows,
//! row errors or a whole-file error — never a panic, whatever the zip or the sheet holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall_rules::roster::read_roster;

fuzz_target!(|data: &[u8]| {
    if let Ok(roster) = read_roster(data, 20_261_204) {
        // Every accepted row names a worker; every error names its row.
        for row in &roster.rows {
            assert!(!row.name.is_empty());
        }
    }
});
