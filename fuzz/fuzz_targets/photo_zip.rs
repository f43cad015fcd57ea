//! Arbitrary photo archives (`.zip` of faces named by ID-card number): the reader's size and
//! entry bounds hold and it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rollcall_rules::roster::read_photo_zip;

const MAX_PHOTO_BYTES: u64 = 409_600;

fuzz_target!(|data: &[u8]| {
    if let Ok(zip) = read_photo_zip(data, MAX_PHOTO_BYTES) {
        for bytes in zip.photos.values() {
            assert!(bytes.len() as u64 <= MAX_PHOTO_BYTES);
        }
    }
});
