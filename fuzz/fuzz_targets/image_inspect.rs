//! Arbitrary uploaded images: inspection (format by magic bytes, dimensions from the header)
//! and, for what it accepts, the enrolment face rules (full decode under limits, detection)
//! never panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rollcall_rules::face::FaceChecker;
use rollcall_rules::photo::inspect;

const MAX_PHOTO_BYTES: usize = 409_600;

static FACES: LazyLock<FaceChecker> =
    LazyLock::new(|| FaceChecker::new(MAX_PHOTO_BYTES).expect("the shipped face model loads"));

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = inspect(data, MAX_PHOTO_BYTES) {
        assert!(info.width > 0 && info.height > 0);
        let _ = FACES.check(data);
    }
});
