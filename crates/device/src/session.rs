//! The TCP session and the offline queue as a **state machine without I/O** (after rumqtt's
//! `MqttState`): events in, actions out. It never touches a socket, a clock, a file or a
//! random source of its own; the driver ([`crate::device`]) feeds it [`Event`]s stamped with
//! the time, and carries out the [`Action`]s it returns. That makes every rule below testable
//! with plain function calls (see the tests at the bottom).
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
//!   - permanent ([`ErrorCode::is_permanent`], e.g. `400_02`, `403_0x`), with a verified
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

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rollcall_protocol::envelope::{Command, Request, Response};
use rollcall_protocol::ids::Secret;
use rollcall_protocol::jwe::JweDecrypter;
use rollcall_protocol::params::{self, AuthResponse, HeartbeatParam, HeartbeatResponse};
use rollcall_protocol::time::Timestamp;
use rollcall_protocol::{ApiCode, ErrorCode, PROTOCOL_VERSION, Packet, ProtocolError};

use crate::backoff::{Backoff, Rng};
use crate::record::QueuedRecord;

/// What the session needs to know; no I/O handles.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub sn: String,
    pub access_id: String,
    pub access_key: Secret,
    pub access_secret: Secret,
    /// Reported in every heartbeat (`deviceVersion`).
    pub device_version: String,
    /// Reported in every heartbeat (`deviceIp`).
    pub device_ip: String,
    pub heartbeat_interval: Duration,
    /// An unanswered request older than this means the connection is dead.
    pub response_timeout: Duration,
    /// Sign-ins in flight at once.
    pub window: usize,
    /// Photo bytes in flight at once (one record is always let through, however large).
    pub window_bytes: usize,
    /// Records asked of the store at once.
    pub load_batch: usize,
    /// Between reconnect attempts.
    pub reconnect: Backoff,
    /// Pause of the window after a transient failure.
    pub retry: Backoff,
    /// Before reconnecting after the platform refused the device itself (401_02, 400_06,
    /// 400_04 on C_AUTH).
    pub refused_backoff: Duration,
}

impl SessionConfig {
    /// Defaults for everything but identity and credentials.
    pub fn new(
        sn: impl Into<String>,
        access_id: impl Into<String>,
        access_key: Secret,
        access_secret: Secret,
    ) -> Self {
        SessionConfig {
            sn: sn.into(),
            access_id: access_id.into(),
            access_key,
            access_secret,
            device_version: "rollcall-device/0.1".into(),
            device_ip: "127.0.0.1".into(),
            heartbeat_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(30),
            window: 256,
            window_bytes: 8 * 1024 * 1024,
            load_batch: 256,
            reconnect: Backoff::new(Duration::from_millis(500), Duration::from_secs(30)),
            retry: Backoff::new(Duration::from_millis(200), Duration::from_secs(10)),
            refused_backoff: Duration::from_secs(60),
        }
    }
}

/// The timers the session asks for. One instance of each at a time: scheduling one again
/// replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Send a heartbeat.
    Heartbeat,
    /// Check for unanswered requests.
    Watchdog,
    /// Try to connect again.
    Reconnect,
    /// End of the window's pause after a transient failure (or a failed load).
    Resume,
}

/// What happened, as the driver saw it.
#[derive(Debug, Clone)]
pub enum Event {
    /// Start working (connect when the network is on).
    Start,
    /// The TCP connection is up.
    Connected,
    /// A connection attempt failed.
    ConnectFailed,
    /// A complete packet arrived.
    Packet(Box<Packet>),
    /// The connection ended (EOF, error, or after an [`Action::Close`]).
    Disconnected,
    /// A timer fired.
    Timer(Timer),
    /// New records are in the store.
    RecordsEnqueued,
    /// The answer to [`Action::LoadRecords`]: records with ids above `after`, in id order, at
    /// most `limit`.
    RecordsLoaded(Vec<QueuedRecord>),
    /// [`Action::LoadRecords`] failed; the session tries again after a pause.
    LoadFailed,
    /// A task handed out by [`Action::RunTask`] / [`Action::FetchTasks`] is finished (or was
    /// not found); it may be handed out again if the platform asks again.
    TaskFinished(String),
    /// The device's network switched on or off (a simulator's outage, a vendor's flight mode).
    Network(bool),
    /// The firmware changed: later heartbeats report this version.
    FirmwareInstalled(String),
}

/// A task to run: pushed by the platform (with its param) or found through T_GET_TASKS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOrder {
    pub taskid: String,
    pub apicode: String,
    /// The signed task param (JSON text; may be empty).
    pub param: String,
}

/// A record the platform acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    /// Its queue id.
    pub id: i64,
    pub record_time: i64,
    /// The platform's record id (empty if the acknowledgement carried none).
    pub record_id: String,
    /// The platform had it already (a resend after a lost acknowledgement).
    pub duplicate: bool,
}

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// No connection; a reconnect may be scheduled.
    Offline,
    /// A connection attempt is in progress.
    Connecting,
    /// Connected, waiting for C_AUTH's answer.
    Authenticating,
    /// Authenticated: heartbeats and sign-ins flow.
    Ready,
}

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Open a TCP connection; answer with [`Event::Connected`] or [`Event::ConnectFailed`].
    Connect,
    /// Write this packet on the connection.
    Send(Box<Packet>),
    /// Close the connection; then feed [`Event::Disconnected`].
    Close,
    /// (Re)arm a timer.
    Schedule(Timer, Duration),
    /// Disarm a timer.
    Cancel(Timer),
    /// Load queued records with ids above `after`, at most `limit`; answer with
    /// [`Event::RecordsLoaded`] or [`Event::LoadFailed`].
    LoadRecords { after: i64, limit: usize },
    /// The platform acknowledged this record: delete it from the queue.
    Ack(Acked),
    /// The platform refused this record for good: move it to the dead letters.
    DeadLetter { id: i64, error: ProtocolError },
    /// Run this pushed task (its sign verified).
    RunTask(TaskOrder),
    /// Fetch these tasks with T_GET_TASKS and run them.
    FetchTasks(Vec<String>),
    /// A new token, for the HTTP task calls.
    Token(Secret),
    /// The device clock is off by this much; stamp requests with `now + offset_ms`.
    ClockCorrected { offset_ms: i64 },
    /// Online (authenticated) or offline now.
    State(SessionState),
    /// The platform refused the device itself (credentials revoked, device disabled, bad
    /// credentials): the operator must act; the session keeps retrying slowly.
    Refused(ProtocolError),
}

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

    /// Decrypts JWE responses (vendors that registered an RSA key, PROTOCOL.md §6).
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

    // --- the queue -------------------------------------------------------------------------

    fn pump(&mut self, now: i64) {
        if self.state != SessionState::Ready || self.paused {
            return;
        }
        while self.in_flight.len() < self.cfg.window {
            // The byte budget keeps a window of photo records from holding hundreds of
            // megabytes of a gate's memory; records without photos fill the whole window.
            let next = self.pending.first_key_value().map(|(_, r)| r.photo_len());
            if next.is_some_and(|n| {
                !self.in_flight.is_empty() && self.in_flight_bytes + n > self.cfg.window_bytes
            }) {
                break;
            }
            let Some((id, record)) = self.pending.pop_first() else {
                break;
            };
            let mut req = self.request(ApiCode::SignIn, now);
            req.param = Some(record.wire_param());
            if self.send(req, ApiCode::SignIn, Kind::SignIn(id), now) {
                self.in_flight_bytes += record.photo_len();
                self.in_flight.insert(id, record);
            } else {
                self.actions.push(Action::DeadLetter {
                    id,
                    error: ProtocolError::with_detail(
                        ErrorCode::ParamInvalid,
                        "the device could not sign this record",
                    ),
                });
            }
        }
        self.maybe_load();
    }

    fn maybe_load(&mut self) {
        let low = self.pending.len() < self.cfg.window.max(1);
        if low && self.loader.requested.is_none() && !self.loader.exhausted {
            let limit = self.cfg.load_batch.max(1);
            self.loader.requested = Some((limit, self.loader.generation));
            self.actions.push(Action::LoadRecords {
                after: self.loader.highest,
                limit,
            });
        }
    }

    fn on_loaded(&mut self, now: i64, records: Vec<QueuedRecord>) {
        let Some((limit, generation)) = self.loader.requested.take() else {
            return;
        };
        let short = records.len() < limit;
        for r in records {
            self.loader.highest = self.loader.highest.max(r.id);
            if !self.in_flight.contains_key(&r.id) {
                self.pending.insert(r.id, r);
            }
        }
        // Exhausted only if nothing was enqueued since the load was asked for.
        self.loader.exhausted = short && generation == self.loader.generation;
        self.pump(now);
    }

    fn pause(&mut self) {
        if !self.paused {
            self.paused = true;
            let delay = self.cfg.retry.delay(self.transient_failures, &mut self.rng);
            self.transient_failures = self.transient_failures.saturating_add(1);
            self.actions.push(Action::Schedule(Timer::Resume, delay));
        }
    }

    // --- answers ---------------------------------------------------------------------------

    fn on_packet(&mut self, now: i64, p: Packet) {
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
        let Some(platform) = e.detail.as_deref().and_then(platform_time) else {
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

/// The last `yyyyMMddHHmmss` in a 400_05 detail ("设备时间 …，平台时间 …").
pub(crate) fn platform_time(detail: &str) -> Option<Timestamp> {
    let bytes = detail.as_bytes();
    let mut end = bytes.len();
    while end >= 14 {
        let start = end - 14;
        let run = &bytes[start..end];
        let bounded = start == 0 || !bytes[start - 1].is_ascii_digit();
        if run.iter().all(u8::is_ascii_digit) && bounded {
            return std::str::from_utf8(run)
                .ok()
                .and_then(|s| Timestamp::parse_wire(s).ok());
        }
        end -= 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_protocol::params::SignInParam;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_750_000_000_000;

    fn config() -> SessionConfig {
        let mut c = SessionConfig::new("SN-1", "id-1", Secret::new("key-1"), Secret::new(SECRET));
        c.window = 4;
        c.load_batch = 8;
        c
    }

    fn record(id: i64) -> QueuedRecord {
        QueuedRecord {
            id,
            param: SignInParam {
                person_id: format!("p{id}"),
                r#type: 1,
                bit_type: None,
                qr_code_info: None,
                img: None,
                record_time: NOW - 1000 + id,
                temperature: None,
                iris_info: None,
                coordinate: None,
            },
            photo: None,
        }
    }

    fn pkt(p: Packet) -> Event {
        Event::Packet(Box::new(p))
    }

    /// The platform's signed answer to a request packet.
    fn answer(req: &Packet, outcome: Result<Option<String>, ProtocolError>) -> Packet {
        let r = Request::from_packet(req.clone());
        let mut resp = Response::to(&r, outcome);
        resp.sign_with(req.apicode.parse().unwrap(), SECRET);
        resp.to_packet()
    }

    fn sent(actions: &[Action]) -> Vec<Packet> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(p) => Some((**p).clone()),
                _ => None,
            })
            .collect()
    }

    fn sign_in_ids(packets: &[Packet]) -> Vec<String> {
        packets
            .iter()
            .filter(|p| p.apicode == "C_SIGN_IN")
            .map(|p| params::parse::<SignInParam>(&p.param).unwrap().person_id)
            .collect()
    }

    /// A session that is connected, authenticated and has loaded `n` records.
    fn ready_with(n: i64) -> (Session, Vec<Action>) {
        ready_loaded(config(), (1..=n).map(record).collect())
    }

    /// A session with `cfg` that is connected, authenticated and has loaded `records`.
    fn ready_loaded(cfg: SessionConfig, records: Vec<QueuedRecord>) -> (Session, Vec<Action>) {
        let mut s = Session::new(cfg, Rng::seeded(1));
        let a = s.handle(NOW, Event::Start);
        assert!(matches!(a.last(), Some(Action::Connect)));
        let a = s.handle(NOW, Event::Connected);
        let auth = sent(&a).pop().unwrap();
        assert_eq!(auth.apicode, "C_AUTH");
        assert_eq!(auth.access_id, "id-1");
        assert!(
            Request::from_packet(auth.clone())
                .check(
                    rollcall_protocol::envelope::Transport::Tcp,
                    Timestamp::from_epoch_ms(NOW),
                    300
                )
                .is_ok()
        );
        let a = s.handle(
            NOW,
            pkt(answer(&auth, Ok(Some(r#"{"token":"tok"}"#.into())))),
        );
        assert_eq!(s.state(), SessionState::Ready);
        assert!(a.iter().any(|x| matches!(x, Action::Token(_))));
        assert!(sent(&a).iter().any(|p| p.apicode == "C_HEARTBEAT"));
        let (after, limit) = a
            .iter()
            .find_map(|x| match x {
                Action::LoadRecords { after, limit } => Some((*after, *limit)),
                _ => None,
            })
            .expect("asks the store for records");
        assert_eq!((after, limit), (0, 8));
        let a = s.handle(NOW, Event::RecordsLoaded(records));
        (s, a)
    }

    #[test]
    fn photo_bytes_in_flight_are_bounded_but_one_record_always_goes() {
        let mut cfg = config();
        cfg.window_bytes = 2_500;
        let with_photo = |id: i64, len: usize| QueuedRecord {
            photo: Some(vec![0xff; len]),
            ..record(id)
        };
        let records = vec![
            with_photo(1, 1_000),
            with_photo(2, 1_000),
            with_photo(3, 1_000),
            record(4),
        ];
        let (mut s, a) = ready_loaded(cfg.clone(), records);
        let out = sent(&a);
        // 2,000 bytes in flight; a third photo would make 3,000 > 2,500.
        assert_eq!(sign_in_ids(&out), ["p1", "p2"]);
        let a = s.handle(
            NOW,
            pkt(answer(
                &out[0],
                Ok(Some(r#"{"recordId":"9","duplicate":false}"#.into())),
            )),
        );
        // One answered frees its bytes: the third goes, and the photo-less fourth fits too.
        assert_eq!(sign_in_ids(&sent(&a)), ["p3", "p4"]);

        // A photo larger than the whole budget still goes when nothing else is in flight.
        let (_, a) = ready_loaded(cfg, vec![with_photo(1, 10_000), with_photo(2, 10)]);
        assert_eq!(sign_in_ids(&sent(&a)), ["p1"]);
    }

    #[test]
    fn a_window_of_sign_ins_is_pipelined_in_queue_order() {
        let (mut s, a) = ready_with(6);
        let out = sent(&a);
        // Four in flight before any answer: not stop-and-wait.
        assert_eq!(sign_in_ids(&out), ["p1", "p2", "p3", "p4"]);
        let seqs: Vec<u64> = out.iter().map(|p| p.seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "distinct, rising seqs"
        );
        assert_eq!(s.in_flight(), 4);
        // Answer the first: acked, and the fifth goes out.
        let a = s.handle(
            NOW,
            pkt(answer(
                &out[0],
                Ok(Some(r#"{"recordId":"99","duplicate":false}"#.into())),
            )),
        );
        let acked: Vec<&Acked> = a
            .iter()
            .filter_map(|x| match x {
                Action::Ack(k) => Some(k),
                _ => None,
            })
            .collect();
        assert_eq!(acked.len(), 1);
        assert_eq!((acked[0].id, acked[0].record_id.as_str()), (1, "99"));
        assert_eq!(sign_in_ids(&sent(&a)), ["p5"]);
    }

    #[test]
    fn in_flight_records_are_handed_back_on_disconnect_and_go_first() {
        let (mut s, a) = ready_with(6);
        let out = sent(&a);
        // p1 is acknowledged; the connection drops with p2..p4 in flight.
        s.handle(
            NOW,
            pkt(answer(&out[0], Ok(Some(r#"{"recordId":"1"}"#.into())))),
        );
        let a = s.handle(NOW, Event::Disconnected);
        assert_eq!(s.state(), SessionState::Offline);
        assert_eq!(s.in_flight(), 0);
        assert_eq!(s.pending(), 5, "p2..p6 wait");
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::Schedule(Timer::Reconnect, _)))
        );
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::State(SessionState::Offline)))
        );
        // Reconnect, re-authenticate: p2, p3, p4, p5 go out, in that order.
        let a = s.handle(NOW + 1000, Event::Timer(Timer::Reconnect));
        assert!(a.iter().any(|x| matches!(x, Action::Connect)));
        let a = s.handle(NOW + 1000, Event::Connected);
        let auth = sent(&a).pop().unwrap();
        let a = s.handle(
            NOW + 1000,
            pkt(answer(&auth, Ok(Some(r#"{"token":"t2"}"#.into())))),
        );
        let out = sent(&a);
        assert_eq!(sign_in_ids(&out), ["p2", "p3", "p4", "p5"]);
        assert!(
            out.iter()
                .all(|p| p.apicode != "C_SIGN_IN" || p.token == "t2")
        );
    }

    #[test]
    fn reconnect_delays_grow_with_jitter() {
        let mut s = Session::new(config(), Rng::seeded(3));
        s.handle(NOW, Event::Start);
        let mut delays = Vec::new();
        for _ in 0..6 {
            let a = s.handle(NOW, Event::ConnectFailed);
            let d = a
                .iter()
                .find_map(|x| match x {
                    Action::Schedule(Timer::Reconnect, d) => Some(*d),
                    _ => None,
                })
                .unwrap();
            delays.push(d);
            s.handle(NOW, Event::Timer(Timer::Reconnect));
        }
        assert!(delays[5] > delays[0] * 4, "{delays:?}");
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
    }

    #[test]
    fn a_permanent_refusal_dead_letters_one_record_and_the_queue_moves_on() {
        let (mut s, a) = ready_with(5);
        let out = sent(&a);
        let refused = ProtocolError::with_detail(ErrorCode::AttendanceType, "type=3");
        let a = s.handle(NOW, pkt(answer(&out[0], Err(refused))));
        assert!(a.iter().any(
            |x| matches!(x, Action::DeadLetter { id: 1, error } if error.code == ErrorCode::AttendanceType)
        ));
        assert_eq!(sign_in_ids(&sent(&a)), ["p5"], "the next record goes out");
    }

    #[test]
    fn an_unsigned_permanent_error_is_not_trusted() {
        let (mut s, a) = ready_with(5);
        let out = sent(&a);
        let mut forged = answer(&out[0], Err(ErrorCode::ParamInvalid.into()));
        forged.sign.clear();
        let a = s.handle(NOW, pkt(forged));
        assert!(!a.iter().any(|x| matches!(x, Action::DeadLetter { .. })));
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::Schedule(Timer::Resume, _)))
        );
    }

    #[test]
    fn a_transient_failure_pauses_then_resends_the_same_record() {
        let (mut s, a) = ready_with(4);
        let out = sent(&a);
        let a = s.handle(NOW, pkt(answer(&out[0], Err(ErrorCode::Internal.into()))));
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::Schedule(Timer::Resume, _)))
        );
        assert!(sent(&a).is_empty(), "paused");
        // The rest of the window is acknowledged meanwhile.
        for p in &out[1..] {
            s.handle(NOW, pkt(answer(p, Ok(Some(r#"{"recordId":"5"}"#.into())))));
        }
        let a = s.handle(NOW + 500, Event::Timer(Timer::Resume));
        assert_eq!(sign_in_ids(&sent(&a)), ["p1"]);
    }

    #[test]
    fn an_expired_token_re_authenticates_and_resends() {
        let (mut s, a) = ready_with(2);
        let out = sent(&a);
        let a = s.handle(
            NOW,
            pkt(answer(&out[0], Err(ErrorCode::TokenNotFound.into()))),
        );
        assert_eq!(s.state(), SessionState::Authenticating);
        let auth = sent(&a)
            .into_iter()
            .find(|p| p.apicode == "C_AUTH")
            .unwrap();
        // p2 was sent with the old token too.
        s.handle(
            NOW,
            pkt(answer(&out[1], Err(ErrorCode::TokenNotFound.into()))),
        );
        let a = s.handle(
            NOW,
            pkt(answer(&auth, Ok(Some(r#"{"token":"fresh"}"#.into())))),
        );
        let again = sent(&a);
        assert_eq!(sign_in_ids(&again), ["p1", "p2"]);
        assert!(
            again
                .iter()
                .filter(|p| p.apicode == "C_SIGN_IN")
                .all(|p| p.token == "fresh")
        );
    }

    #[test]
    fn clock_skew_is_corrected_from_the_platform_time() {
        let mut s = Session::new(config(), Rng::seeded(1));
        s.handle(NOW, Event::Start);
        let a = s.handle(NOW, Event::Connected);
        let auth = sent(&a).pop().unwrap();
        let platform = Timestamp::from_epoch_ms(NOW + 3_600_000).to_wire();
        let err = ProtocolError::with_detail(
            ErrorCode::TimestampSkew,
            format!("设备时间 {}，平台时间 {platform}", auth.time_stamp),
        );
        let a = s.handle(NOW, pkt(answer(&auth, Err(err))));
        assert!(a.iter().any(|x| matches!(x, Action::ClockCorrected { .. })));
        let again = sent(&a).pop().unwrap();
        assert_eq!(again.apicode, "C_AUTH");
        assert_eq!(again.time_stamp, platform);
    }

    #[test]
    fn heartbeats_hand_out_each_task_once() {
        let (mut s, _) = ready_with(0);
        let a = s.handle(NOW, Event::Timer(Timer::Heartbeat));
        let hb = sent(&a)
            .into_iter()
            .find(|p| p.apicode == "C_HEARTBEAT")
            .unwrap();
        let a = s.handle(
            NOW,
            pkt(answer(&hb, Ok(Some(r#"{"taskids":["11","12"]}"#.into())))),
        );
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::FetchTasks(ids) if ids == &["11", "12"]))
        );
        // The next heartbeat lists 12 again (still running) and 13.
        let a = s.handle(NOW + 30_000, Event::Timer(Timer::Heartbeat));
        let hb = sent(&a).pop().unwrap();
        let a = s.handle(
            NOW,
            pkt(answer(&hb, Ok(Some(r#"{"taskids":["12","13"]}"#.into())))),
        );
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::FetchTasks(ids) if ids == &["13"]))
        );
        s.handle(NOW, Event::TaskFinished("12".into()));
        let a = s.handle(NOW + 60_000, Event::Timer(Timer::Heartbeat));
        let hb = sent(&a).pop().unwrap();
        let a = s.handle(
            NOW,
            pkt(answer(&hb, Ok(Some(r#"{"taskids":["12"]}"#.into())))),
        );
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::FetchTasks(ids) if ids == &["12"]))
        );
    }

    #[test]
    fn pushed_commands_run_only_when_their_sign_verifies() {
        let (mut s, _) = ready_with(0);
        let cmd = Command {
            version: PROTOCOL_VERSION.into(),
            sn: "SN-1".into(),
            apicode: ApiCode::SendPerson,
            taskid: "777".into(),
            time_stamp: Timestamp::from_epoch_ms(NOW).to_wire(),
            param: "{}".into(),
        };
        let forged = cmd.to_packet("another secret");
        assert!(s.handle(NOW, pkt(forged)).is_empty());
        let a = s.handle(NOW, pkt(cmd.to_packet(SECRET)));
        assert!(a.iter().any(
            |x| matches!(x, Action::RunTask(t) if t.taskid == "777" && t.apicode == "T_SEND_PERSON")
        ));
        // Pushed twice: handed out once.
        assert!(s.handle(NOW, pkt(cmd.to_packet(SECRET))).is_empty());
    }

    #[test]
    fn the_watchdog_closes_a_silent_connection() {
        let (mut s, _) = ready_with(1);
        let a = s.handle(NOW + 1_000, Event::Timer(Timer::Watchdog));
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::Schedule(Timer::Watchdog, _)))
        );
        let a = s.handle(NOW + 31_000, Event::Timer(Timer::Watchdog));
        assert!(a.iter().any(|x| matches!(x, Action::Close)));
    }

    #[test]
    fn loading_stops_when_the_store_is_drained_and_resumes_on_enqueue() {
        let (mut s, a) = ready_with(2);
        // Two records (< limit 8): exhausted, no further load.
        assert!(!a.iter().any(|x| matches!(x, Action::LoadRecords { .. })));
        let a = s.handle(NOW, Event::RecordsEnqueued);
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::LoadRecords { after: 2, .. }))
        );
    }

    #[test]
    fn an_enqueue_during_a_load_is_not_missed() {
        let mut s = Session::new(config(), Rng::seeded(1));
        s.handle(NOW, Event::Start);
        let a = s.handle(NOW, Event::Connected);
        let auth = sent(&a).pop().unwrap();
        s.handle(NOW, pkt(answer(&auth, Ok(Some(r#"{"token":"t"}"#.into())))));
        // A record arrives while the (empty) load is outstanding.
        s.handle(NOW, Event::RecordsEnqueued);
        let a = s.handle(NOW, Event::RecordsLoaded(Vec::new()));
        assert!(
            a.iter()
                .any(|x| matches!(x, Action::LoadRecords { after: 0, .. }))
        );
    }

    #[test]
    fn the_network_switch_closes_and_reopens() {
        let (mut s, _) = ready_with(3);
        let a = s.handle(NOW, Event::Network(false));
        assert!(a.iter().any(|x| matches!(x, Action::Close)));
        let a = s.handle(NOW, Event::Disconnected);
        assert!(
            !a.iter()
                .any(|x| matches!(x, Action::Schedule(Timer::Reconnect, _)))
        );
        assert_eq!(s.pending(), 3);
        let a = s.handle(NOW, Event::Network(true));
        assert!(a.iter().any(|x| matches!(x, Action::Connect)));
    }

    #[test]
    fn a_revoked_credential_is_reported_and_retried_slowly() {
        let mut s = Session::new(config(), Rng::seeded(1));
        s.handle(NOW, Event::Start);
        let a = s.handle(NOW, Event::Connected);
        let auth = sent(&a).pop().unwrap();
        let a = s.handle(
            NOW,
            pkt(answer(&auth, Err(ErrorCode::CredentialsRevoked.into()))),
        );
        assert!(a.iter().any(|x| matches!(x, Action::Refused(_))));
        let a = s.handle(NOW, Event::Disconnected);
        assert!(a.iter().any(
            |x| matches!(x, Action::Schedule(Timer::Reconnect, d) if *d == Duration::from_secs(60))
        ));
    }

    #[test]
    fn platform_time_is_read_from_the_detail() {
        let t = platform_time("设备时间 20240101000000，平台时间 20240101080000").unwrap();
        assert_eq!(t.to_wire(), "20240101080000");
        assert_eq!(platform_time("no time"), None);
    }
}
