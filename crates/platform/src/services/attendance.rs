//! Attendance records: stored and flagged, never rejected for business reasons
//! (ZJ-SIGNIN-07 flags, ZJ-SIGNIN-08 coordinates). This module decides the flags; [`crate::runtime::ingest`] stores.

use rollcall_protocol::params::{AttendanceType, BitType, SignInParam};

use crate::state::App;
use crate::store::StoreResult;
use rollcall_rules::geo::{Fence, Point};

/// A record received more than this long after it was taken is flagged `late_upload`
/// (devices must upload within 10 s while online, RC-DEV-19).
pub const LATE_UPLOAD_MS: i64 = 10_000;

/// Every flag a record can carry, as the admin API spells it.
pub mod flag {
    pub const UNKNOWN_PERSON: &str = "unknown_person";
    pub const NOT_AUTHORISED: &str = "not_authorised";
    pub const UNBOUND_DEVICE: &str = "unbound_device";
    pub const OUTSIDE_FENCE: &str = "outside_fence";
    pub const NO_COORDINATE: &str = "no_coordinate";
    pub const NO_QR_INFO: &str = "no_qr_info";
    pub const INDIRECT_METHOD: &str = "indirect_method";
    pub const LATE_UPLOAD: &str = "late_upload";
    pub const PHOTO_REJECTED: &str = "photo_rejected";
}

/// The flags of a record from a device bound to `project_id` (`None`: unbound), received at
/// `received_at`.
pub async fn flags(
    app: &App,
    project_id: Option<i64>,
    p: &SignInParam,
    photo_rejected: bool,
    received_at: i64,
) -> StoreResult<Vec<String>> {
    let mut flags: Vec<&str> = Vec::new();
    let methods: BitType = p.methods();

    // Through the directory's cache: a backlog asks the same few hundred persons thousands
    // of times (see `directory`, "sign-in facts").
    let dir = &app.directory;
    let store = app.store.as_ref();
    let person = match p.person_id.parse::<i64>() {
        Ok(id) if dir.enrolled(store, id, received_at).await? => Some(id),
        _ => None,
    };
    if person.is_none() {
        flags.push(flag::UNKNOWN_PERSON);
    }
    let project = match project_id {
        None => {
            flags.push(flag::UNBOUND_DEVICE);
            None
        }
        Some(pid) => {
            if let Some(person) = person
                && !dir.on_roster(store, pid, person, received_at).await?
            {
                flags.push(flag::NOT_AUTHORISED);
            }
            dir.project(store, pid, received_at).await?
        }
    };
    if methods.contains(AttendanceType::Mobile) {
        match &p.coordinate {
            None => flags.push(flag::NO_COORDINATE),
            Some(c) => {
                let point = Point {
                    longitude: c.longitude,
                    latitude: c.latitude,
                };
                // The project's coordinate system describes both its fence and its devices'
                // coordinates, so no conversion is needed (see geo).
                if project
                    .as_ref()
                    .and_then(|p| p.fence.as_ref())
                    .is_some_and(|f: &Fence| !f.contains(point))
                {
                    flags.push(flag::OUTSIDE_FENCE);
                }
            }
        }
    }
    let qr_based =
        methods.contains(AttendanceType::HealthCode) || methods.contains(AttendanceType::QrCode);
    if qr_based && p.qr_code_info.is_none() {
        flags.push(flag::NO_QR_INFO);
    }
    if !methods.is_real_name() {
        flags.push(flag::INDIRECT_METHOD);
    }
    if received_at - p.record_time > LATE_UPLOAD_MS {
        flags.push(flag::LATE_UPLOAD);
    }
    if photo_rejected {
        flags.push(flag::PHOTO_REJECTED);
    }
    Ok(flags.into_iter().map(str::to_owned).collect())
}
