//! What a running device tells an application (or a simulator) that subscribed
//! ([`crate::DeviceHandle::subscribe`]): the driver and the task runner both send them.

use rollcall_protocol::ProtocolError;
use rollcall_protocol::params::TaskOutcome;

/// Something that happened, for an application (or a simulator) that wants to know.
#[derive(Debug, Clone)]
pub enum DeviceEvent {
    /// Authenticated: the device is online.
    Online,
    /// The connection is gone.
    Offline,
    /// The platform acknowledged a record (it left the queue).
    Acked {
        /// Its queue id.
        id: i64,
        record_time: i64,
        record_id: String,
        duplicate: bool,
        /// Device time of the acknowledgement (epoch ms).
        acked_at: i64,
    },
    /// The platform refused a record for good; it is in the dead letters.
    DeadLettered { id: i64, error: ProtocolError },
    /// A task finished and was logged for reporting.
    TaskFinished {
        taskid: String,
        apicode: String,
        outcome: TaskOutcome,
    },
    /// The platform refused the device itself (credentials, disabled): an operator must act.
    Refused(ProtocolError),
}
