//! C_SIGN_IN (ZJ-SIGNIN-01 to ZJ-SIGNIN-09): validate, flag, and store durably before answering. Idempotent on
//! (sn, personId, recordTime, type): a resend answers success with the first record's id.

use bytes::Bytes;
use rollcall_protocol::envelope::Request;
use rollcall_protocol::params::{SignInParam, SignInResponse};

use super::order::Ticket;
use super::{Authed, param, reply};
use crate::pipeline::error::DeviceError;
use crate::services::attendance;
use crate::state::App;
use crate::store::NewAttendance;
use rollcall_rules::photo;

pub(super) async fn handle(
    app: &App,
    req: &Request,
    authed: &Authed,
    ticket: Option<Ticket>,
) -> Result<Option<String>, DeviceError> {
    // The param lives in this block only: kept past it, it was 216 bytes of every sign-in's
    // future across the waits below, which put the future's box past the allocator's
    // per-thread cache (BENCHMARKS.md, session 19).
    let (record, photo) = {
        let p: SignInParam = param(req)?;
        // Not base64: 400_02 (ZJ-SIGNIN-03, before the 403_0x checks of ZJ-ERR-04). Base64 of
        // something that is not an acceptable photo: stored without it, flagged photo_rejected.
        let img = p.decode_img()?;
        p.validate()?;
        let (photo, rejected) = match img {
            None => (None, false),
            Some(bytes) => match photo::inspect(&bytes, app.settings.max_photo_bytes) {
                Ok(_) => (Some(Bytes::from(bytes)), false),
                Err(e) => {
                    tracing::debug!(sn = %authed.sn, reason = %e, "photo rejected");
                    (None, true)
                }
            },
        };
        let flags =
            attendance::flags(app, authed.device.project_id, &p, rejected, authed.now).await?;
        let extra = extra_members(&p);
        let record = NewAttendance {
            record_id: authed.arrival_id,
            sn: authed.sn.to_string(),
            person_id: p.person_id,
            r#type: p.r#type,
            bit_type: p.bit_type,
            record_time: p.record_time,
            received_at: authed.now,
            project_id: authed.device.project_id,
            direction: authed.device.direction,
            photo_key: None,
            flags,
            temperature: p.temperature,
            extra,
        };
        (record, photo)
    };
    // Records of one connection enter the commit queue in the order they arrived.
    if let Some(t) = &ticket {
        t.wait_turn().await;
    }
    let durable = app.ingest.enqueue(record, photo).await?;
    if let Some(t) = ticket {
        t.pass();
    }
    let inserted = durable.await?;
    reply(&SignInResponse {
        record_id: inserted.record_id.to_string(),
        duplicate: inserted.duplicate,
    })
}

/// coordinate, qrCodeInfo and irisInfo, kept together as JSON text.
fn extra_members(p: &SignInParam) -> Option<String> {
    let mut map = serde_json::Map::new();
    if let Some(c) = &p.coordinate {
        map.insert("coordinate".into(), serde_json::to_value(c).ok()?);
    }
    if let Some(q) = &p.qr_code_info {
        map.insert("qrCodeInfo".into(), serde_json::to_value(q).ok()?);
    }
    if let Some(i) = &p.iris_info {
        map.insert("irisInfo".into(), i.clone().into());
    }
    (!map.is_empty()).then(|| serde_json::Value::Object(map).to_string())
}
