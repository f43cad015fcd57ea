//! The TCP session and the offline queue as a **state machine without I/O** (after rumqtt's
//! `MqttState`): events in, actions out. It never touches a socket, a clock, a file or a
//! random source of its own; the driver ([`crate::device`]) feeds it [`Event`]s stamped with
//! the time, and carries out the [`Action`]s it returns. That makes every rule below testable
//! with plain function calls (see `tests.rs`).
//!
//! ## What it owns
//! - **Connection life**: `Connect` → C_AUTH → `Ready` (heartbeat timer, watchdog) →
//!   `Disconnected` → a jittered, growing reconnect delay → `Connect` again. A `401_01` on any
//!   request re-authenticates on the same connection; a `400_05` corrects the clock offset
//!   from the platform's time in the error detail and retries.
//! - **The queue window**: records are loaded from the durable store in id order
//!   ([`Action::LoadRecords`]) and up to `window` sign-ins are **in flight at once**, pipelined
//!   with the `seq` extension (responses come back in request order; each echoes its seq).
//!   A record leaves the queue only on an acknowledgement ([`Action::Ack`]) or a permanent
//!   refusal ([`Action::DeadLetter`]). When the connection drops, every in-flight record is
//!   **handed back** to the pending set and goes out first after the next authentication.
//! - **Failure classes** for a sign-in's answer:
//!   - session-level — `401_01` (re-auth), `400_05` (clock), `401_02` / `400_06` (credentials
//!     revoked, device disabled: stop, tell the app, reconnect slowly): the record is requeued;
//!   - transient — `500_01`, `429_01`, an answer whose signature does not verify: requeued, and
//!     the window pauses for a jittered backoff;
//!   - permanent ([`ErrorCode::is_permanent`](rollcall_protocol::ErrorCode::is_permanent), e.g. `400_02`, `403_0x`), with a verified
//!     signature: the record is dead-lettered and the queue moves on.
//! - **Commands**: a pushed task is checked against the vendor's secret (`Command::verify`)
//!   and handed out once ([`Action::RunTask`]); task ids from heartbeats are handed out for
//!   fetching ([`Action::FetchTasks`]); a task is not handed out again until it finishes.
//!
//! ## Ordering
//! Records are **sent** in queue order, and a record handed back after a disconnect goes out
//! before any newer one. A record that fails transiently while later records of its window
//! succeed is stored by the platform after them: pipelining trades strict storage order under
//! partial failure for throughput, and the platform's idempotency (sn, personId, recordTime,
//! type) makes every resend harmless.

//!
//! ## Files
//! - this file: the [`Session`] itself — connection life, timers, requests;
//! - `events.rs`: what goes in ([`Event`], [`Timer`]) and what comes out ([`Action`],
//!   [`Acked`], [`TaskOrder`], [`SessionState`]);
//! - `queue.rs`: the queue window — loading from the store, pipelined sign-ins, pauses;
//! - `answers.rs`: what the platform answers — auth, heartbeats, sign-ins, errors, commands.

mod answers;
mod events;
mod queue;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rollcall_protocol::envelope::Request;
use rollcall_protocol::jwe::JweDecrypter;
use rollcall_protocol::params::{self, HeartbeatParam};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, PROTOCOL_VERSION};

use crate::backoff::Rng;
pub use crate::config::SessionConfig;
use crate::record::QueuedRecord;
pub use events::{Acked, Action, Event, SessionState, TaskOrder, Timer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Auth,
    Heartbeat,
    SignIn(i64),
}

#[derive(Debug, Clone, Copy)]
struct Outstanding {
    kind: Kind,
    sent_at: i64,
}

/// Loading from the store: one request at a time; "exhausted" until something is enqueued.
#[derive(Debug, Default)]
struct Loader {
    requested: Option<(usize, u64)>,
    generation: u64,
    exhausted: bool,
    highest: i64,
}

/// The session state machine. See the module docs.
pub struct Session {
    cfg: SessionConfig,
    decrypter: Option<std::sync::Arc<JweDecrypter>>,
    state: SessionState,
    network: bool,
    started: bool,
    token: Option<String>,
    clock_offset_ms: i64,
    next_seq: u64,
    outstanding: BTreeMap<u64, Outstanding>,
    in_flight: BTreeMap<i64, QueuedRecord>,
    /// Photo bytes of the records in flight.
    in_flight_bytes: usize,
    pending: BTreeMap<i64, QueuedRecord>,
    loader: Loader,
    paused: bool,
    transient_failures: u32,
    reconnects: u32,
    refused: bool,
    tasks: BTreeSet<String>,
    rng: Rng,
    actions: Vec<Action>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("sn", &self.cfg.sn)
            .field("state", &self.state)
            .field("pending", &self.pending.len())
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn new(cfg: SessionConfig, rng: Rng) -> Self {
        Session {
            cfg,
            decrypter: None,
            state: SessionState::Offline,
            network: true,
            started: false,
            token: None,
            clock_offset_ms: 0,
            next_seq: 1,
            outstanding: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            in_flight_bytes: 0,
            pending: BTreeMap::new(),
            loader: Loader::default(),
            paused: false,
            transient_failures: 0,
            reconnects: 0,
            refused: false,
            tasks: BTreeSet::new(),
            rng,
            actions: Vec::new(),
        }
    }

    /// Decrypts JWE responses (vendors that registered an RSA key, ZJ-JWE-01, ZJ-JWE-02).
    pub fn with_decrypter(mut self, decrypter: std::sync::Arc<JweDecrypter>) -> Self {
        self.decrypter = Some(decrypter);
        self
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    /// Records sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Records loaded and waiting for a slot in the window.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// Handles one event at device time `now` (epoch ms); returns what to do, in order.
    pub fn handle(&mut self, now: i64, event: Event) -> Vec<Action> {
        match event {
            Event::Start => {
                self.started = true;
                self.connect_if_due();
            }
            Event::Connected => self.on_connected(now),
            Event::ConnectFailed | Event::Disconnected => self.on_disconnected(),
            Event::Packet(p) => self.on_packet(now, *p),
            Event::Timer(t) => self.on_timer(now, t),
            Event::RecordsEnqueued => {
                self.loader.generation += 1;
                self.loader.exhausted = false;
                self.pump(now);
            }
            Event::RecordsLoaded(records) => self.on_loaded(now, records),
            Event::LoadFailed => {
                self.loader.requested = None;
                self.pause();
            }
            Event::TaskFinished(taskid) => {
                self.tasks.remove(&taskid);
            }
            Event::Network(on) => self.on_network(on),
            Event::FirmwareInstalled(version) => self.cfg.device_version = version,
        }
        std::mem::take(&mut self.actions)
    }

    // --- connection ------------------------------------------------------------------------

    fn connect_if_due(&mut self) {
        if self.started && self.network && self.state == SessionState::Offline {
            self.state = SessionState::Connecting;
            self.actions.push(Action::Cancel(Timer::Reconnect));
            self.actions.push(Action::Connect);
        }
    }

    fn on_network(&mut self, on: bool) {
        self.network = on;
        if on {
            self.reconnects = 0;
            self.connect_if_due();
        } else {
            self.actions.push(Action::Cancel(Timer::Reconnect));
            if self.state != SessionState::Offline {
                self.actions.push(Action::Close);
            }
        }
    }

    fn on_connected(&mut self, now: i64) {
        if self.state != SessionState::Connecting {
            // A stale attempt (the network went off meanwhile): drop it.
            self.actions.push(Action::Close);
            return;
        }
        self.state = SessionState::Authenticating;
        self.send_auth(now);
        self.actions
            .push(Action::Schedule(Timer::Watchdog, self.watchdog_period()));
    }

    fn on_disconnected(&mut self) {
        let was_ready = self.state == SessionState::Ready;
        // Hand back every record in flight: it goes out first next time.
        self.pending.append(&mut self.in_flight);
        self.in_flight_bytes = 0;
        self.outstanding.clear();
        self.token = None;
        self.state = SessionState::Offline;
        for t in [Timer::Heartbeat, Timer::Watchdog, Timer::Resume] {
            self.actions.push(Action::Cancel(t));
        }
        self.paused = false;
        if was_ready {
            self.actions.push(Action::State(SessionState::Offline));
        }
        if self.started && self.network {
            let delay = if self.refused {
                self.cfg.refused_backoff
            } else {
                self.cfg.reconnect.delay(self.reconnects, &mut self.rng)
            };
            self.reconnects = self.reconnects.saturating_add(1);
            self.actions.push(Action::Schedule(Timer::Reconnect, delay));
        }
    }

    fn watchdog_period(&self) -> Duration {
        (self.cfg.response_timeout / 4).max(Duration::from_millis(100))
    }

    fn connected(&self) -> bool {
        matches!(
            self.state,
            SessionState::Authenticating | SessionState::Ready
        )
    }

    // --- timers ----------------------------------------------------------------------------

    fn on_timer(&mut self, now: i64, t: Timer) {
        match t {
            Timer::Reconnect => self.connect_if_due(),
            Timer::Heartbeat => {
                if self.state == SessionState::Ready {
                    self.send_heartbeat(now);
                }
                if self.connected() {
                    self.actions.push(Action::Schedule(
                        Timer::Heartbeat,
                        self.cfg.heartbeat_interval,
                    ));
                }
            }
            Timer::Watchdog => {
                if !self.connected() {
                    return;
                }
                let limit = self.cfg.response_timeout.as_millis() as i64;
                let oldest = self.outstanding.values().map(|o| o.sent_at).min();
                if oldest.is_some_and(|t| now - t > limit) {
                    tracing::warn!(sn = %self.cfg.sn, "no answer in time; closing the connection");
                    self.actions.push(Action::Close);
                } else {
                    self.actions
                        .push(Action::Schedule(Timer::Watchdog, self.watchdog_period()));
                }
            }
            Timer::Resume => {
                self.paused = false;
                self.pump(now);
            }
        }
    }

    // --- requests --------------------------------------------------------------------------

    fn stamp(&self, now: i64) -> String {
        Timestamp::from_epoch_ms(now + self.clock_offset_ms).to_wire()
    }

    fn request(&self, api: ApiCode, now: i64) -> Request {
        Request {
            version: PROTOCOL_VERSION.to_owned(),
            sn: self.cfg.sn.clone(),
            apicode: api.as_str().to_owned(),
            time_stamp: self.stamp(now),
            token: self.token.clone().unwrap_or_default(),
            ..Request::default()
        }
    }

    /// Signs, numbers and sends a request; `false` if it could not be signed.
    fn send(&mut self, mut req: Request, api: ApiCode, kind: Kind, now: i64) -> bool {
        req.seq = self.next_seq;
        if let Err(e) = req.sign_with(api, self.cfg.access_secret.expose()) {
            tracing::error!(sn = %self.cfg.sn, %api, error = %e, "cannot sign a request");
            return false;
        }
        self.next_seq += 1;
        self.outstanding
            .insert(req.seq, Outstanding { kind, sent_at: now });
        self.actions.push(Action::Send(Box::new(req.to_packet())));
        true
    }

    fn send_auth(&mut self, now: i64) {
        let mut req = self.request(ApiCode::Auth, now);
        req.token.clear();
        req.access_id = self.cfg.access_id.clone();
        req.access_key = self.cfg.access_key.expose().to_owned();
        self.send(req, ApiCode::Auth, Kind::Auth, now);
    }

    fn send_heartbeat(&mut self, now: i64) {
        let mut req = self.request(ApiCode::Heartbeat, now);
        req.param = Some(params::to_json(&HeartbeatParam {
            device_version: self.cfg.device_version.clone(),
            device_ip: self.cfg.device_ip.clone(),
        }));
        self.send(req, ApiCode::Heartbeat, Kind::Heartbeat, now);
    }

    fn reauth(&mut self, now: i64) {
        if self.state == SessionState::Ready {
            self.state = SessionState::Authenticating;
            self.token = None;
            self.send_auth(now);
        }
    }
}
