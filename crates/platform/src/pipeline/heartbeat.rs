//! C_HEARTBEAT (ZJ-HB-01 to ZJ-HB-04): presence in memory (written behind), and the tasks the device is due
//! ([`tasks::due`], which skips the query for devices known to have no open task).
//!
//! **Answered at once** ([`answer_at_once`]). A gate's heartbeat on a busy connection whose
//! copy of its device's rows holds ([`super::session`]), with no task known to be open, is
//! checked and answered in the read that brought it, from the frame's bytes: no request is
//! built and nothing is allocated. (Building the request's seven strings, boxing its future,
//! reading its param into two more and the answer's text and sign into two others were about
//! a third of a heartbeat's instructions, BENCHMARKS.md session 17.) It runs the same checks
//! through the same functions as the whole pipeline, in its order. Whatever would not end in
//! that success (a refusal, a task to hand out, a vendor whose answers are encrypted, a param
//! only the lenient parse reads) goes the whole way instead, having changed nothing but the
//! token's idle expiry, which the whole way slides again.

use std::time::Instant;

use rollcall_protocol::ApiCode;
use rollcall_protocol::envelope::{Request, RequestView, Success, Transport};
use rollcall_protocol::params::{HeartbeatParam, HeartbeatResponse, NO_TASKS_JSON};
use rollcall_protocol::sign;
use rollcall_protocol::time::Timestamp;

use super::{Authed, ConnCtx, by_session, param, reply, verify_sign, within_budget};
use crate::pipeline::error::DeviceError;
use crate::runtime::metrics;
use crate::runtime::util::now_ms;
use crate::services::tasks;
use crate::state::App;

pub(super) async fn handle(
    app: &App,
    req: &Request,
    authed: &Authed,
) -> Result<Option<String>, DeviceError> {
    let p: HeartbeatParam = param(req)?;
    let sn = &authed.sn;
    app.presence.heartbeat(
        sn,
        Some(&p.device_version),
        Some(&p.device_ip),
        authed.device.last_heartbeat_at,
        authed.now,
    );
    let due = tasks::due(app, sn, authed.now).await?;
    if due.is_empty() {
        return Ok(Some(NO_TASKS_JSON.to_owned()));
    }
    reply(&HeartbeatResponse {
        taskids: due.into_iter().map(|t| t.taskid.to_string()).collect(),
    })
}

/// A heartbeat's answer given at once: its fields, borrowed from the request, and its sign.
#[derive(Debug)]
pub struct AtOnce<'a> {
    pub success: Success<'a>,
    sign: [u8; 32],
}

impl AtOnce<'_> {
    pub fn sign(&self) -> &str {
        sign::hex_str(&self.sign)
    }
}

/// The answer to `req` when it is a heartbeat the connection can answer from memory (see the
/// module's doc), its effects done (presence, the token's expiry, the rate limit, metrics);
/// `None`, having changed nothing the whole way would not change again, for any other request.
pub fn answer_at_once<'a>(app: &App, req: &RequestView<'a>, conn: &ConnCtx) -> Option<AtOnce<'a>> {
    if req.apicode != ApiCode::Heartbeat.as_str() || !conn.is_bound() {
        return None;
    }
    let started = Instant::now();
    let now = now_ms();
    req.check(
        Transport::Tcp,
        Timestamp::from_epoch_ms(now),
        app.settings.clock_skew_secs,
    )
    .ok()?;
    let epoch = app.directory.epoch();
    let (session, sn) = by_session(app, req, conn, now, epoch)?;
    let vendor = &session.vendor;
    // ZJ-JWE-02: a success to a vendor with a key is encrypted, on the whole way.
    if vendor.row.rsa_public_key.is_some() {
        return None;
    }
    let secret = vendor.row.access_secret.expose();
    verify_sign(ApiCode::Heartbeat, req, secret).ok()?;
    let p = HeartbeatParam::peek(req.param?)?;
    if !tasks::none_open_known(app, &sn, now) {
        return None;
    }
    // Last of the checks: a refusal spends nothing, so the whole way refuses it again alike.
    if !within_budget(app, ApiCode::Heartbeat, &sn, now) {
        return None;
    }
    app.presence.heartbeat(
        &sn,
        Some(p.device_version),
        Some(p.device_ip),
        session.device.last_heartbeat_at,
        now,
    );
    let success = Success::answering(req, Some(NO_TASKS_JSON));
    let sign =
        vendor
            .heartbeat_sign
            .sign_response_hex(ApiCode::Heartbeat, &success.sign_fields(), secret);
    app.metrics.request(
        Some(ApiCode::Heartbeat),
        Transport::Tcp,
        metrics::OK,
        started.elapsed(),
    );
    Some(AtOnce { success, sign })
}
