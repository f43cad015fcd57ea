//! The session's vocabulary: the events the driver feeds it and the actions it returns.

use std::time::Duration;

use rollcall_protocol::ids::Secret;
use rollcall_protocol::{Packet, ProtocolError};

use crate::record::QueuedRecord;

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
