//! The device's own errCodes for `failedPersons` / `failedFaces` of T_UPDATE_TASKS_STATUS
//! (ZJ-STATUS-01, ZJ-STATUS-04: the platform records them as the device sent them). The
//! standard leaves their values to the device; these are ours, documented in the vendor guide.

/// errCode: the face photo could not be downloaded (HTTP error, expired URL, network).
pub const ERR_FACE_DOWNLOAD: &str = "404_1";
/// errCode: the face photo is not a JPEG/PNG.
pub const ERR_FACE_FORMAT: &str = "415_1";
/// errCode: the face photo is larger than `max_photo_bytes`.
pub const ERR_FACE_SIZE: &str = "413_1";
/// errCode: the person entry itself is unusable (no personId).
pub const ERR_PERSON_INVALID: &str = "400_1";
