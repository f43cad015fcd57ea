//! Pure rules without I/O: what a value must be, decided from the value alone. Every other
//! layer calls these; they call nothing above them.
//!
//! - [`geo`]: electronic fences and GCJ-02/WGS-84 coordinates (mobile attendance flags).
//! - [`idcard`]: GB 11643 ID-card numbers and their masking.
//! - [`validate`]: text fields of enrolment (length, control characters).
//! - [`photo`]: what an uploaded image is (format, dimensions) without decoding it twice.
//! - [`face`]: the enrolment face rules, with the detector shipped in the binary.
//! - [`signed_url`]: HMAC-signed, expiring URLs for faces, photos and firmware.
//! - [`reports`]: daily and monthly attendance sheets from punches.
//! - [`roster`]: roster files (.xlsx/.csv, photo .zip) read into rows.

pub mod face;
pub mod geo;
pub mod idcard;
pub mod photo;
pub mod reports;
pub mod roster;
pub mod signed_url;
pub mod validate;
