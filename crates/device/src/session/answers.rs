//! What the platform answers: C_AUTH, heartbeats, sign-ins (acknowledged, requeued or
//! dead-lettered), the errors that concern the whole session (re-auth, the clock, refusal),
//! and pushed commands.

use rollcall_protocol::envelope::{Command, Response};
use rollcall_protocol::ids::Secret;
use rollcall_protocol::params::{self, AuthResponse, HeartbeatResponse};
use rollcall_protocol::time::platform_time_in_detail;
use rollcall_protocol::{ApiCode, ErrorCode, Packet, ProtocolError};

use super::{Acked, Action, Kind, Session, SessionState, TaskOrder, Timer};

impl Session {
    pub(super) fn on_packet(&mut self, now: i64, p: Packet) {
        if !self.connected() {
            return;
        }
        if !p.sn.is_empty() && !p.taskid.is_empty() {
            self.on_command(&p);
            return;
        }
        let key = if p.seq != 0 {
            Some(p.seq)
        } else {
            // A platform that does not echo seq answers in request order anyway.
            self.outstanding.keys().next().copied()
        };
        let Some(out) = key.and_then(|k| self.outstanding.remove(&k)) else {
            tracing::debug!(sn = %self.cfg.sn, seq = p.seq, "an answer to nothing outstanding");
            return;
        };
        let resp = Response::from_packet(p);
        match out.kind {
            Kind::Auth => self.on_auth(now, resp),
            Kind::Heartbeat => self.on_heartbeat(now, resp),
            Kind::SignIn(id) => self.on_sign_in(now, id, resp),
        }
    }

    /// The verified text of a success: `Ok(text)`; `Err(None)` when the sign does not verify
    /// or a JWE cannot be opened; `Err(Some(e))` for a protocol error (with whether its sign
    /// verified).
    fn open(&self, resp: &Response, api: ApiCode) -> Opened {
        let verified = resp.verify(api, self.cfg.access_secret.expose());
        match &resp.outcome {
            Ok(text) if verified => match text.as_deref() {
                Some(t) if is_jwe(t) => match &self.decrypter {
                    Some(d) => match d.decrypt(t).map(String::from_utf8) {
                        Ok(Ok(plain)) => Opened::Ok(Some(plain)),
                        _ => Opened::Unusable,
                    },
                    None => Opened::Unusable,
                },
                other => Opened::Ok(other.map(str::to_owned)),
            },
            Ok(_) => Opened::Unusable,
            Err(e) => Opened::Err(e.clone(), verified),
        }
    }

    fn on_auth(&mut self, now: i64, resp: Response) {
        match self.open(&resp, ApiCode::Auth) {
            Opened::Ok(text) => {
                let token = text
                    .as_deref()
                    .and_then(|t| params::parse::<AuthResponse>(t).ok())
                    .map(|a| a.token)
                    .filter(|t| !t.is_empty());
                let Some(token) = token else {
                    tracing::warn!(sn = %self.cfg.sn, "C_AUTH answered without a token");
                    self.actions.push(Action::Close);
                    return;
                };
                self.token = Some(token.clone());
                self.refused = false;
                self.reconnects = 0;
                let was_ready = self.state == SessionState::Ready;
                self.state = SessionState::Ready;
                self.actions.push(Action::Token(Secret::new(token)));
                if !was_ready {
                    self.actions.push(Action::State(SessionState::Ready));
                }
                self.send_heartbeat(now);
                self.actions.push(Action::Schedule(
                    Timer::Heartbeat,
                    self.cfg.heartbeat_interval,
                ));
                self.pump(now);
            }
            Opened::Unusable => {
                tracing::warn!(sn = %self.cfg.sn, "C_AUTH answer does not verify");
                self.actions.push(Action::Close);
            }
            Opened::Err(e, _) => match e.code {
                ErrorCode::TimestampSkew if self.correct_clock(now, &e) => self.send_auth(now),
                ErrorCode::Internal | ErrorCode::RateLimited | ErrorCode::TimestampSkew => {
                    self.actions.push(Action::Close);
                }
                _ => {
                    tracing::error!(sn = %self.cfg.sn, error = %e, "the platform refused C_AUTH");
                    self.refused = true;
                    self.actions.push(Action::Refused(e));
                    self.actions.push(Action::Close);
                }
            },
        }
    }

    fn on_heartbeat(&mut self, now: i64, resp: Response) {
        match self.open(&resp, ApiCode::Heartbeat) {
            Opened::Ok(text) => {
                let ids = text
                    .as_deref()
                    .and_then(|t| params::parse::<HeartbeatResponse>(t).ok())
                    .map(|h| h.taskids)
                    .unwrap_or_default();
                let fresh: Vec<String> = ids
                    .into_iter()
                    .filter(|id| self.tasks.insert(id.clone()))
                    .collect();
                if !fresh.is_empty() {
                    self.actions.push(Action::FetchTasks(fresh));
                }
            }
            Opened::Unusable => {
                tracing::warn!(sn = %self.cfg.sn, "a heartbeat answer does not verify");
            }
            Opened::Err(e, _) => {
                self.session_error(now, &e);
            }
        }
    }

    /// Errors that concern the session rather than one request. `true` if handled.
    fn session_error(&mut self, now: i64, e: &ProtocolError) -> bool {
        match e.code {
            ErrorCode::TokenNotFound | ErrorCode::TokenMissing => {
                self.reauth(now);
                true
            }
            ErrorCode::TimestampSkew => {
                self.correct_clock(now, e);
                true
            }
            ErrorCode::CredentialsRevoked | ErrorCode::DeviceUnavailable => {
                if !self.refused {
                    self.refused = true;
                    self.actions.push(Action::Refused(e.clone()));
                    self.actions.push(Action::Close);
                }
                true
            }
            _ => false,
        }
    }

    fn on_sign_in(&mut self, now: i64, id: i64, resp: Response) {
        let Some(record) = self.in_flight.remove(&id) else {
            return;
        };
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(record.photo_len());
        match self.open(&resp, ApiCode::SignIn) {
            Opened::Ok(text) => {
                let parsed = text
                    .as_deref()
                    .and_then(|t| params::parse::<params::SignInResponse>(t).ok());
                self.transient_failures = 0;
                self.actions.push(Action::Ack(Acked {
                    id,
                    record_time: record.record_time(),
                    record_id: parsed
                        .as_ref()
                        .map(|r| r.record_id.clone())
                        .unwrap_or_default(),
                    duplicate: parsed.is_some_and(|r| r.duplicate),
                }));
            }
            Opened::Unusable => {
                self.pending.insert(id, record);
                self.pause();
            }
            Opened::Err(e, verified) => {
                if self.session_error(now, &e) {
                    self.pending.insert(id, record);
                } else if e.code.is_permanent() && verified {
                    tracing::warn!(sn = %self.cfg.sn, id, error = %e, "record refused for good");
                    self.actions.push(Action::DeadLetter { id, error: e });
                } else {
                    self.pending.insert(id, record);
                    self.pause();
                }
            }
        }
        self.pump(now);
    }

    /// Reads the platform's time from a 400_05 detail and sets the clock offset.
    fn correct_clock(&mut self, now: i64, e: &ProtocolError) -> bool {
        let Some(platform) = e.detail.as_deref().and_then(platform_time_in_detail) else {
            return false;
        };
        // The wire has one-second resolution; aim for the middle of the platform's second.
        let offset = platform.epoch_ms() + 500 - now;
        if offset == self.clock_offset_ms {
            return false;
        }
        self.clock_offset_ms = offset;
        tracing::warn!(sn = %self.cfg.sn, offset_ms = offset, "clock corrected from the platform's time");
        self.actions
            .push(Action::ClockCorrected { offset_ms: offset });
        true
    }

    fn on_command(&mut self, p: &Packet) {
        let Some(cmd) = Command::from_packet(p) else {
            tracing::debug!(sn = %self.cfg.sn, apicode = %p.apicode, "not a command");
            return;
        };
        if cmd.sn != self.cfg.sn || !cmd.verify(self.cfg.access_secret.expose(), &p.sign) {
            tracing::warn!(sn = %self.cfg.sn, taskid = %cmd.taskid, "a command whose sign does not verify; ignored");
            return;
        }
        if self.tasks.insert(cmd.taskid.clone()) {
            self.actions.push(Action::RunTask(TaskOrder {
                taskid: cmd.taskid,
                apicode: cmd.apicode.as_str().to_owned(),
                param: cmd.param,
            }));
        }
    }
}

enum Opened {
    Ok(Option<String>),
    Unusable,
    Err(ProtocolError, bool),
}

fn is_jwe(text: &str) -> bool {
    !matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
}
